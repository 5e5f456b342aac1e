"""No significant subtypes: the slide metrics by subtype are a note row per metric, and the
figure shows every slide as one group under the note."""

import numpy as np
import pandas as pd

from rdls.compare import NO_SUBTYPES_NOTE
from rdls.wsi.metrics import SLIDE_METRICS
from rdls.wsi.steps import by_subtype_step
from tests.unit import no_structure as fixture


def test_slide_metrics_by_subtype_say_there_is_nothing_to_compare(tmp_path):
    subjects = fixture.subjects()
    biological = subjects[subjects["cohort"] == "biological"]["subject_id"].tolist()
    rng = np.random.default_rng(0)
    rows = []
    for i, subject in enumerate(biological):
        row = {"slide_id": f"H{i}", "subject_id": subject, "qc_flags": ""}
        row.update({m: float(rng.uniform(1, 100)) for m in SLIDE_METRICS})
        rows.append(row)
    pd.DataFrame(rows).to_csv(tmp_path / "metrics.tsv", sep="\t", index=False)
    assignments = fixture.write_assignments(tmp_path / "assignments.tsv", subjects)
    by_subtype_step(metrics=tmp_path / "metrics.tsv", assignments=assignments,
                    out_table=tmp_path / "by.tsv",
                    out_figure=(tmp_path / "by.png", tmp_path / "by.svg"))  # fmt: skip
    table = pd.read_csv(tmp_path / "by.tsv", sep="\t")
    assert table["metric"].tolist() == list(SLIDE_METRICS[2:])
    assert (table["comparison"] == "all").all() and (table["note"] == NO_SUBTYPES_NOTE).all()
    assert table[["statistic", "p_value", "p_adjusted"]].isna().all().all()
    assert not [c for c in table.columns if c.startswith("median_")]
    assert f"All slides: {NO_SUBTYPES_NOTE}" in (tmp_path / "by.svg").read_text()
