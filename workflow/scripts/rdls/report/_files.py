"""The report's inputs as the section builders use them: paths by key, tables read once."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from rdls.report.inputs import FILES, items

log = logging.getLogger(__name__)


class Files:
    """The files given to the report, by the keys of :data:`rdls.report.inputs.FILES`.

    A key that was not given, or whose file does not exist, reads as ``None`` (or ``{}`` for
    per-item files), so that a section can say what it lacks instead of failing.
    """

    def __init__(self, inputs: Mapping[str, str | Path | Sequence[str | Path]]):
        unknown = sorted(set(inputs) - set(FILES))
        if unknown:
            raise ValueError(f"the report does not read input(s) {unknown}; known: {list(FILES)}")
        self._inputs = dict(inputs)
        self._tables: dict[str, pd.DataFrame | None] = {}

    def given(self, key: str) -> bool:
        return key in self._inputs

    def path(self, key: str) -> Path | None:
        """The file of a single-file key, or None when not given or absent."""
        value = self._inputs.get(key)
        if value is None:
            return None
        if not isinstance(value, str | Path):
            value = list(value)
            if len(value) != 1:
                raise ValueError(f"input '{key}' is one file, got {len(value)}")
            value = value[0]
        path = Path(value)
        return path if path.is_file() else None

    def per_item(self, key: str) -> dict[str, Path]:
        """Per-item files of ``key`` that exist, by item (cohort, slide, contrast...)."""
        value = self._inputs.get(key)
        if value is None:
            return {}
        return {item: Path(p) for item, p in items(value, key).items() if Path(p).is_file()}

    def table(self, key: str) -> pd.DataFrame | None:
        """The TSV of ``key`` as a DataFrame (read once), or None."""
        if key not in self._tables:
            path = self.path(key)
            self._tables[key] = read_tsv(path) if path is not None else None
        return self._tables[key]

    def tables(self, key: str) -> dict[str, pd.DataFrame]:
        return {item: read_tsv(path) for item, path in self.per_item(key).items()}

    def json(self, key: str) -> dict | None:
        path = self.path(key)
        return json.loads(path.read_text()) if path is not None else None


def read_tsv(path: str | Path) -> pd.DataFrame:
    """A tab-separated table; IDs stay text (subject and slide IDs, cohort names)."""
    return pd.read_csv(path, sep="\t", dtype={column: str for column in _TEXT_COLUMNS})


_TEXT_COLUMNS = (
    "subject_id",
    "slide_id",
    "sample_id",
    "cohort",
    "subtype",
    "item_id",
    "term",
    "contrast",
    "cell_type",
    "leiden",
)
