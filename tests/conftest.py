"""Shared fixtures: paths to the project and to the real validation data beside it."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real validation data not found at {SHARED_DATA} (see DESIGN.md)")
    return SHARED_DATA
