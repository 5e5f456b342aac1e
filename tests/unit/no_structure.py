"""A small cohort whose consensus clustering found no significant subtypes, written as the
subtype rules write it (every subject "none", structure.json saying why with its numbers),
for the unit tests of each branch's "nothing to compare by subtype" path."""

import json

import numpy as np
import pandas as pd

MESSAGE = (
    "No significant subtypes: no k in 2..4 gains over the null reference "
    "(p = 0.41, 0.63, 0.72 for k = 2, 3, 4; alpha 0.05)."
)
STRUCTURE = {
    "structure": False,
    "k": None,
    "k_rule": "rcsi",
    "alpha": 0.05,
    "p_values": {"2": 0.41, "3": 0.63, "4": 0.72},
    "rcsi": {"2": 0.01, "3": -0.02, "4": -0.03},
    "message": MESSAGE,
}
COHORTS = {"training": 60, "internal_validation": 20, "external_validation": 30, "biological": 8}
COVARIATES = ["age", "sex", "t_stage", "cea_ng_ml"]


def subjects(seed: int = 0) -> pd.DataFrame:
    """Subjects of four cohorts with clinical covariates and recurrence-free survival (none
    for the biological cohort); recurrence depends on T stage only (T4 five times T2's hazard)."""
    rng = np.random.default_rng(seed)
    cohorts = [c for c, n in COHORTS.items() for _ in range(n)]
    n = len(cohorts)
    t_stage = rng.choice(["T2", "T3", "T4"], size=n, p=[0.3, 0.5, 0.2])
    hazard = 0.01 * np.where(t_stage == "T4", 5.0, np.where(t_stage == "T3", 1.5, 1.0))
    time = rng.exponential(1 / hazard)
    censor = rng.uniform(36, 120, n)
    frame = pd.DataFrame(
        {
            "subject_id": [f"S{i:03d}" for i in range(n)],
            "cohort": cohorts,
            "centre": rng.choice(["A", "B"], size=n),
            "age": rng.integers(35, 85, n).astype(float),
            "sex": rng.choice(["male", "female"], size=n),
            "t_stage": t_stage,
            "cea_ng_ml": np.round(rng.lognormal(1.2, 0.8, n), 1),
            "rfs_months": np.round(np.minimum(time, censor), 1),
            "rfs_event": (time <= censor).astype(float),
        }
    )
    biological = frame["cohort"] == "biological"
    frame.loc[biological, ["rfs_months", "rfs_event"]] = np.nan
    return frame


def write_subjects(path, frame: pd.DataFrame | None = None):
    frame = subjects() if frame is None else frame
    frame = frame.astype({"rfs_event": "Int64"})
    frame.to_csv(path, sep="\t", index=False)
    return path


def assignments(frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """results/subtypes/assignments.tsv without structure: every subject "none"."""
    frame = subjects() if frame is None else frame
    return pd.DataFrame(
        {
            "subject_id": frame["subject_id"],
            "cohort": frame["cohort"],
            "subtype": "none",
            "confidence": np.nan,
            "source": "no_structure",
        }
    )


def write_assignments(path, frame: pd.DataFrame | None = None):
    assignments(frame).to_csv(path, sep="\t", index=False)
    return path


def write_structure(path):
    path.write_text(json.dumps(STRUCTURE, indent=1))
    return path


def features(frame: pd.DataFrame | None = None, *, n_features: int = 12, seed: int = 1):
    """results/subtypes/features/selected.parquet: standardised features without clusters."""
    frame = subjects() if frame is None else frame
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(len(frame), n_features))
    table = pd.DataFrame(values, columns=[f"f{j:02d}" for j in range(n_features)])
    table.insert(0, "cohort", frame["cohort"].to_numpy())
    table.insert(0, "subject_id", frame["subject_id"].to_numpy())
    return table


def write_features(path, frame: pd.DataFrame | None = None):
    features(frame).to_parquet(path, index=False)
    return path


def write_training(path, frame: pd.DataFrame | None = None):
    """The consensus step's training table without structure: subtype "none", cluster 0."""
    frame = subjects() if frame is None else frame
    training = frame[frame["cohort"] == "training"]
    pd.DataFrame(
        {
            "subject_id": training["subject_id"],
            "cluster": 0,
            "subtype": "none",
            "confidence": np.nan,
        }
    ).to_csv(path, sep="\t", index=False)
    return path
