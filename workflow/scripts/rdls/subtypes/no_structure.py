"""The classifier and the assignments when consensus clustering finds no significant subtypes.

Then every training subject's consensus subtype is ``"none"`` and
``results/subtypes/consensus/structure.json`` says why, with the numbers. Nothing is fitted:
the classifier file records "no structure" and the reason, so that ``snakemake predict`` can say
so; every subject's subtype is ``"none"`` (source ``no_structure``, confidence empty); the
agreement and in-group-proportion tables carry a note row per cohort instead of numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from rdls.compare import NO_STRUCTURE, nothing_to_compare, subtype_levels

SOURCE = "no_structure"
CV_COLUMNS = ["classifier", "fold", "balanced_accuracy", "note"]
IGP_COLUMNS = ["cohort", "subtype", "n", "igp", "share", "note"]


def has_subtypes(training_subtypes: Iterable) -> bool:
    """Whether the training cohort's consensus subtypes hold at least two subtypes."""
    return len(subtype_levels(training_subtypes)) >= 2


def read_structure(path: str | Path | None) -> dict | None:
    """``structure.json`` of the consensus step, or None where it is not given."""
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def no_structure_message(structure: Mapping | None, subtypes: Iterable) -> str:
    """Why there are no subtypes: the consensus step's own message (with its numbers) where
    ``structure`` says there is no structure, else why ``subtypes`` cannot be compared."""
    if structure and structure.get("structure") is False and structure.get("message"):
        return str(structure["message"])
    return nothing_to_compare(subtypes) or "fewer than two subtypes"


def no_structure_model(message: str) -> dict:
    """The classifier file's content without subtypes: it says so, and why."""
    return {"structure": False, "subtype": NO_STRUCTURE, "classes": [], "message": message}


def is_no_structure(model) -> bool:
    """Whether a loaded classifier file is :func:`no_structure_model`'s record."""
    return isinstance(model, Mapping) and model.get("structure") is False


def write_no_classifier(*, message: str, out_model: str | Path, out_cv: str | Path) -> None:
    """The classifier's outputs without subtypes: the "no structure" record and a note row."""
    joblib.dump(no_structure_model(message), out_model)
    row = {"classifier": "none", "note": f"no classifier fitted: {message}"}
    note = pd.DataFrame([row]).reindex(columns=CV_COLUMNS)
    note.to_csv(out_cv, sep="\t", index=False)


def no_structure_assignments(cohort: pd.Series) -> pd.DataFrame:
    """Every subject (``cohort`` indexed by subject_id) with subtype ``"none"``."""
    return pd.DataFrame(
        {
            "subject_id": cohort.index.astype(str),
            "cohort": cohort.to_numpy(),
            "subtype": NO_STRUCTURE,
            "confidence": np.nan,
            "source": SOURCE,
        }
    )


def note_tables(assignments: pd.DataFrame, *, message: str, training: str):
    """The agreement and in-group-proportion tables as note rows, one per cohort.

    Returns
    -------
    agreement, igp : pandas.DataFrame
        ``agreement`` has a row per cohort but ``training`` (``n`` and the note; no k, ARI
        or kappa), ``igp`` a row per cohort (``subtype`` "none", ``n``, ``share`` 1 and the
        note; no IGP).
    """
    note = f"not computed: {message}"
    sizes = assignments.groupby("cohort", sort=False).size()
    rows = [{"cohort": c, "n": int(n), "note": note} for c, n in sizes.items()]
    agreement = pd.DataFrame([r for r in rows if r["cohort"] != training])
    igp = pd.DataFrame(rows).assign(subtype=NO_STRUCTURE, share=1.0).reindex(columns=IGP_COLUMNS)
    return agreement, igp
