"""scripts/validate_subtypes.py: the table of docs/validation.md and where it is written."""

import importlib.util
import json

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location(
    "validate_subtypes", REPO / "scripts" / "validate_subtypes.py"
)
validate_subtypes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validate_subtypes)

ROW = {"variant": "size", "seed": 42, "scale": "default", "seconds": 600.0, "deep_ba": 0.85,
       "radiomics_ba": 0.8, "deep_over_radiomics": 1.0625, "r2_weighted": 0.62, "r2_mean": 0.5,
       "structure": True, "k": 3, "p_value": 0.0004, "lowest_p": 0.0004, "training_ari": 0.7,
       "external_ba": 0.9}  # fmt: skip


def test_table_has_a_row_per_run_in_variant_order_and_says_none_without_structure():
    null = {**ROW, "variant": "none", "structure": False, "k": None, "p_value": None,
            "lowest_p": 0.31, "training_ari": 0.01, "external_ba": float("nan")}  # fmt: skip
    table = validate_subtypes.markdown({"b": null, "a": ROW})
    rows = [line for line in table.splitlines() if line.startswith("| size") or
            line.startswith("| none")]  # fmt: skip
    assert rows[0].startswith("| size | 42 | 0.85 | 0.80 | 1.06 | 0.62 | 3 | 4.0e-04 | 0.70 | 0.90")
    assert rows[1].startswith("| none | 42 |") and "| none | 0.310 |" in rows[1]
    assert rows[1].rstrip().endswith("| - | 10.0 |")


def test_section_replaces_only_the_text_between_the_markers(tmp_path):
    doc = tmp_path / "validation.md"
    begin, end = validate_subtypes.BEGIN, validate_subtypes.END
    doc.write_text(f"# Title\n\nbefore\n\n{begin}\nold\n{end}\n\nafter\n")
    validate_subtypes.write_section(doc, f"{begin}\nnew\n{end}")
    assert doc.read_text() == f"# Title\n\nbefore\n\n{begin}\nnew\n{end}\n\nafter\n"


def test_unknown_variant_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        validate_subtypes.main(["--variants", "size,shape", "--workdir", str(tmp_path)])
    assert "unknown variants ['shape']" in capsys.readouterr().err


def test_report_only_rewrites_the_doc_from_stored_results(tmp_path):
    (tmp_path / "validation.json").write_text(json.dumps({"default-size-42": ROW}))
    doc = tmp_path / "doc.md"
    validate_subtypes.main(["--workdir", str(tmp_path), "--doc", str(doc), "--report-only"])
    assert "| size | 42 | 0.85" in doc.read_text()
