"""config/README.md documents every sheet column that the schemas define, and no other."""

import re

import pytest

from rdls.config import load_schema
from rdls.sheets import SHEET_NAMES


@pytest.fixture(scope="module")
def sections(repo):
    text = (repo / "config" / "README.md").read_text()
    parts = re.split(r"^## (\w+)\.tsv$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("name", SHEET_NAMES)
def test_sheet_columns_are_documented(sections, name):
    documented = re.findall(r"^\| (\w+) \|", sections[name], flags=re.MULTILINE)
    documented = [column for column in documented if column != "column"]
    assert documented == list(load_schema(f"sheets/{name}")["properties"])


@pytest.mark.parametrize("name", SHEET_NAMES)
def test_template_sheets_carry_the_schema_header(repo, name):
    header = (repo / "config" / f"{name}.tsv").read_text().splitlines()[0].split("\t")
    schema = load_schema(f"sheets/{name}")
    assert set(schema["required"]) <= set(header) <= set(schema["properties"])
