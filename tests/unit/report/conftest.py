"""A small results tree with every file the report reads, and the default config."""

from pathlib import Path

import pytest
import yaml

from rdls.config import validate_config
from tests.conftest import REPO
from tests.unit.report.fixtures import write_results


@pytest.fixture(scope="session")
def config() -> dict:
    """The project's config as a run sees it (validated, defaults filled)."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return validate_config(raw, source="config/config.yaml")


@pytest.fixture(scope="session")
def results_tree(tmp_path_factory) -> tuple[Path, dict]:
    """The fixture results folder and its report inputs (read-only: tests copy to change)."""
    root = tmp_path_factory.mktemp("report") / "results"
    return root, write_results(root)


@pytest.fixture
def inputs(results_tree) -> dict:
    return dict(results_tree[1])
