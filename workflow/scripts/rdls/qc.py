"""Items that quality control left out: one table for the whole workflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

EXCLUSION_COLUMNS = ["item_id", "kind", "step", "reason"]


def collect_exclusions(tables, *, out) -> pd.DataFrame:
    """Merge the branches' exclusion tables (``item_id``, ``kind``, ``step``, ``reason``)."""
    frames = [pd.read_csv(t, sep="\t", dtype=str, keep_default_na=False) for t in tables]
    merged = pd.concat([pd.DataFrame(columns=EXCLUSION_COLUMNS), *frames], ignore_index=True)
    merged = merged[EXCLUSION_COLUMNS].sort_values(["kind", "item_id"], kind="stable")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    merged.to_csv(out, sep="\t", index=False)
    return merged
