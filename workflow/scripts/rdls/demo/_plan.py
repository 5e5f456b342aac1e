"""The demo cohort's plan: who the subjects are, what each one has, and the planted truth.

The plan holds everything that is cheap to draw (sheets, clinical data, survival, which
subject has which modality) so that the workflow can read the demo's sheets at parse time
without generating a single image. The heavy files (MRI volumes, slides, count matrices) are
written by the modality generators from this plan, each item from its own random stream, so
any item can be regenerated alone and in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SUBTYPES = ("RDLS1", "RDLS2", "RDLS3")
COHORTS = ("training", "internal_validation", "external_validation", "biological")

# Planted proportional-hazards model for recurrence-free survival (log hazard ratios).
# RDLS1 is the reference; HR 0.5 and 0.75 follow the study's direction and size.
HAZARD_COEFFICIENTS = {
    "subtype_RDLS2": float(np.log(0.50)),
    "subtype_RDLS3": float(np.log(0.75)),
    "t_stage_T3": float(np.log(1.40)),
    "t_stage_T4": float(np.log(2.00)),
    "n_stage_N1": float(np.log(1.50)),
    "n_stage_N2": float(np.log(2.20)),
    "log2_cea": float(np.log(1.15)),
}
BASELINE_HAZARD_PER_MONTH = 0.0045
SUBTYPE_PROPORTIONS = (0.35, 0.30, 0.35)

# demo.centre_case_mix: subtype proportions (RDLS1, RDLS2, RDLS3) that differ strongly by
# centre, as referral patterns make them differ between hospitals. The two training centres
# are each other's mirror (60% against 20% of RDLS1 and RDLS3), the external centre is
# dominated by RDLS2, and the biological cohort's centre keeps the pooled proportions so that
# its scRNA samples still cover every subtype at the tiny scale.
CASE_MIX_PROPORTIONS = {
    "A": (0.60, 0.20, 0.20),
    "B": (0.20, 0.20, 0.60),
    "C": (0.20, 0.60, 0.20),
    "D": SUBTYPE_PROPORTIONS,
}

# Centres differ in scanner (MRI intensity, spacing, noise) and slide scanner resolution.
# Training and internal validation share centres A and B; external validation is centre C;
# the biological cohort is centre D.
CENTRES = {
    "A": {"intensity_scale": 1.00, "spacing_mm": (0.70, 0.70, 3.0), "noise_sd": 0.030,
          "bias_strength": 0.15, "slide_mpp": 0.5000},
    "B": {"intensity_scale": 1.35, "spacing_mm": (0.65, 0.65, 3.3), "noise_sd": 0.050,
          "bias_strength": 0.25, "slide_mpp": 0.4990},
    "C": {"intensity_scale": 0.80, "spacing_mm": (0.75, 0.75, 3.0), "noise_sd": 0.040,
          "bias_strength": 0.20, "slide_mpp": 0.5034},
    "D": {"intensity_scale": 1.10, "spacing_mm": (0.70, 0.70, 3.5), "noise_sd": 0.035,
          "bias_strength": 0.18, "slide_mpp": 0.4990},
}  # fmt: skip
COHORT_CENTRES = {
    "training": ("A", "B"),
    "internal_validation": ("A", "B"),
    "external_validation": ("C",),
    "biological": ("D",),
}

# Random streams: one per modality, so that generating slides never shifts the MRI draws.
STREAMS = {"plan": 0, "mri": 1, "slides": 2, "bulk": 3, "scrna": 4, "dicom": 5, "missing": 6}
#: Share of subjects whose value the demo's clinical sheet leaves blank, as a registry would
#: (missing completely at random; survival is drawn from the full values first).
MISSING_SHARE = {"cea_ng_ml": 0.05, "n_stage": 0.03}


@dataclass(frozen=True)
class Scale:
    """Sizes of one demo scale."""

    name: str
    subjects_per_cohort: dict[str, int]
    training_slides: int  # slides from training subjects, on top of one per biological subject
    bulk_samples: int  # drawn from the biological cohort
    bulk_genes: int
    scrna_samples: int  # drawn from the biological cohort
    cells_per_sample: int
    scrna_genes: int
    slide_size_px: tuple[int, int]  # width, height at level 0
    mri_shape: tuple[int, int, int] = (96, 96, 24)  # x, y, z voxels
    dicom_subjects: int = 2

    @property
    def n_subjects(self) -> int:
        return sum(self.subjects_per_cohort.values())


SCALES = {
    "tiny": Scale(
        name="tiny",
        subjects_per_cohort={"training": 24, "internal_validation": 10,
                             "external_validation": 14, "biological": 12},
        training_slides=0, bulk_samples=12, bulk_genes=2000,
        scrna_samples=3, cells_per_sample=400, scrna_genes=1000,
        slide_size_px=(2048, 1536),
    ),
    "default": Scale(
        name="default",
        subjects_per_cohort={"training": 150, "internal_validation": 50,
                             "external_validation": 60, "biological": 40},
        training_slides=20, bulk_samples=40, bulk_genes=4000,
        scrna_samples=6, cells_per_sample=1500, scrna_genes=2000,
        slide_size_px=(4096, 3072),
    ),
    "paper": Scale(
        name="paper",
        subjects_per_cohort={"training": 931, "internal_validation": 365,
                             "external_validation": 492, "biological": 272},
        training_slides=137, bulk_samples=83, bulk_genes=20000,
        scrna_samples=7, cells_per_sample=5000, scrna_genes=3000,
        slide_size_px=(8192, 6144),
    ),
}  # fmt: skip


def item_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """Independent random stream for one item of one modality."""
    return np.random.default_rng([int(seed), STREAMS[stream], int(index)])


@dataclass
class DemoPlan:
    """Sheets and truth of one demo cohort; paths are relative to the demo's root folder."""

    scale: Scale
    seed: int
    subjects: pd.DataFrame
    mri: pd.DataFrame
    slides: pd.DataFrame
    scrna: pd.DataFrame
    bulk: pd.DataFrame
    truth_subjects: pd.DataFrame
    hazard_coefficients: pd.DataFrame
    sheets: dict[str, pd.DataFrame] = field(init=False)
    mri_signal: str = "mixed"
    centre_case_mix: bool = False

    @property
    def subtype_of(self) -> pd.Series:
        """Planted subtype by subject_id."""
        return self.truth_subjects.set_index("subject_id")["subtype"]

    @property
    def centre_of(self) -> pd.Series:
        """Centre by subject_id."""
        return self.subjects.set_index("subject_id")["centre"]

    @property
    def subtype_proportions(self) -> pd.DataFrame:
        """Planted subtype proportions per centre, beside the subjects actually drawn."""
        planted = CASE_MIX_PROPORTIONS if self.centre_case_mix else None
        counts = pd.crosstab(self.truth_subjects["centre"], self.truth_subjects["subtype"])
        rows = []
        for centre in CENTRES:
            proportions = planted[centre] if planted else SUBTYPE_PROPORTIONS
            n = int(counts.loc[centre].sum()) if centre in counts.index else 0
            for subtype, proportion in zip(SUBTYPES, proportions, strict=True):
                drawn = int(counts.loc[centre, subtype]) if n and subtype in counts else 0
                rows.append({"centre": centre, "subtype": subtype,
                             "planted_proportion": proportion, "n_subjects": drawn,
                             "observed_proportion": drawn / n if n else float("nan")})  # fmt: skip
        return pd.DataFrame(rows)

    @property
    def settings(self) -> pd.DataFrame:
        """The options this cohort was drawn with, as a two-column table."""
        return pd.DataFrame(
            {
                "setting": ["scale", "seed", "mri_signal", "centre_case_mix"],
                "value": [self.scale.name, self.seed, self.mri_signal, self.centre_case_mix],
            }
        )

    def __post_init__(self) -> None:
        self.sheets = {
            "subjects": self.subjects,
            "mri": self.mri,
            "slides": self.slides,
            "scrna": self.scrna,
            "bulk": self.bulk,
        }


def get_scale(name: str) -> Scale:
    try:
        return SCALES[name]
    except KeyError:
        raise ValueError(
            f"unknown demo scale {name!r}; choose one of {', '.join(SCALES)}"
        ) from None


def plan_cohort(
    *,
    scale: str = "default",
    seed: int = 42,
    mri_signal: str = "mixed",
    centre_case_mix: bool = False,
) -> DemoPlan:
    """Draw the demo cohort's subjects, clinical data, survival and modality assignments.

    Parameters
    ----------
    scale : str
        A key of ``SCALES``.
    seed : int
        The one seed of every random draw.
    mri_signal : str
        A value of ``MRI_SIGNALS``: how the subtypes differ in the MRI (only the MRI
        generator reads it; the plan carries it so that every generator gets one plan).
    centre_case_mix : bool
        False: every centre draws subtypes with ``SUBTYPE_PROPORTIONS``. True: with
        ``CASE_MIX_PROPORTIONS`` of the subject's centre. Survival, slides and RNA follow the
        subject's subtype either way.
    """
    from rdls.demo._mri_variants import check_mri_signal

    check_mri_signal(mri_signal)
    spec = get_scale(scale)
    rng = item_rng(seed, "plan", 0)

    rows = []
    for cohort in COHORTS:
        for _ in range(spec.subjects_per_cohort[cohort]):
            rows.append({"cohort": cohort})
    subjects = pd.DataFrame(rows)
    n = len(subjects)
    subjects.insert(0, "subject_id", [f"S{i + 1:04d}" for i in range(n)])
    subjects["centre"] = [rng.choice(COHORT_CENTRES[c]) for c in subjects["cohort"]]
    if centre_case_mix:
        # The same one uniform per subject that rng.choice uses, so that the clinical and
        # survival draws after it stay on the same stream; only the cut points move.
        cumulative = np.cumsum([CASE_MIX_PROPORTIONS[c] for c in subjects["centre"]], axis=1)
        uniform = rng.random(n)
        subtype_index = np.minimum((uniform[:, None] >= cumulative).sum(axis=1), 2)
    else:
        subtype_index = rng.choice(3, size=n, p=SUBTYPE_PROPORTIONS)
    subtype = np.array(SUBTYPES)[subtype_index]

    clinical = _draw_clinical(rng, subtype_index)
    subjects = pd.concat([subjects, clinical], axis=1)
    design = _hazard_design(subjects, subtype)
    beta = pd.Series(HAZARD_COEFFICIENTS)
    linear_predictor = design[beta.index].to_numpy() @ beta.to_numpy()
    months, event = _draw_survival(rng, linear_predictor)
    subjects["rfs_months"] = np.round(months, 2)
    subjects["rfs_event"] = event
    subjects = _blank_some_values(subjects, item_rng(seed, "missing", 0))

    truth = pd.DataFrame(
        {
            "subject_id": subjects["subject_id"],
            "cohort": subjects["cohort"],
            "centre": subjects["centre"],
            "subtype": subtype,
            "linear_predictor": linear_predictor,
        }
    )

    mri = _mri_sheet(subjects, spec)
    slides = _slides_sheet(rng, subjects, spec)
    bulk = _bulk_sheet(rng, subjects, spec)
    scrna = _scrna_sheet(rng, subjects, subtype, spec)
    coefficients = pd.DataFrame(
        {
            "term": beta.index,
            "log_hazard_ratio": beta.to_numpy(),
            "hazard_ratio": np.exp(beta.to_numpy()),
        }
    )
    return DemoPlan(
        scale=spec,
        seed=seed,
        subjects=subjects,
        mri=mri,
        slides=slides,
        scrna=scrna,
        bulk=bulk,
        truth_subjects=truth,
        hazard_coefficients=coefficients,
        mri_signal=mri_signal,
        centre_case_mix=bool(centre_case_mix),
    )


def _draw_clinical(rng: np.random.Generator, subtype_index: np.ndarray) -> pd.DataFrame:
    """Clinical covariates, weakly associated with subtype (RDLS1 a little more advanced)."""
    n = len(subtype_index)
    shift = np.array([0.35, -0.25, 0.0])[subtype_index]  # latent stage shift by subtype
    age = np.clip(rng.normal(63, 11, n), 28, 90).round().astype(int)
    sex = rng.choice(["male", "female"], size=n, p=[0.63, 0.37])
    t_latent = rng.normal(shift, 1.0)
    t_stage = np.select(
        [t_latent < -1.6, t_latent < -0.6, t_latent < 1.1], ["T1", "T2", "T3"], "T4"
    )
    n_latent = 0.5 * t_latent + rng.normal(0.0, 0.9, n)
    n_stage = np.select([n_latent < -0.1, n_latent < 0.9], ["N0", "N1"], "N2")
    cea = np.round(np.exp(rng.normal(1.3 + 0.25 * shift, 0.9)), 2)
    distance = np.round(np.clip(rng.gamma(4.0, 1.7, n), 0.5, 15.0), 1)
    diff_latent = 0.4 * shift + rng.normal(0.0, 1.0, n)
    differentiation = np.select(
        [diff_latent < -0.9, diff_latent < 0.9], ["well", "moderate"], "poor"
    )
    return pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "t_stage": t_stage,
            "n_stage": n_stage,
            "cea_ng_ml": cea,
            "distance_anal_verge_cm": distance,
            "differentiation": differentiation,
        }
    )


def _blank_some_values(subjects: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A few clinical values left blank (``MISSING_SHARE``), drawn on their own stream so
    that every other draw of the demo stays as it was."""
    out = subjects.copy()
    for column, share in MISSING_SHARE.items():
        blank = rng.random(len(out)) < share
        out[column] = out[column].where(~blank)
    return out


def _hazard_design(subjects: pd.DataFrame, subtype: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subtype_RDLS2": (subtype == "RDLS2").astype(float),
            "subtype_RDLS3": (subtype == "RDLS3").astype(float),
            "t_stage_T3": (subjects["t_stage"] == "T3").astype(float),
            "t_stage_T4": (subjects["t_stage"] == "T4").astype(float),
            "n_stage_N1": (subjects["n_stage"] == "N1").astype(float),
            "n_stage_N2": (subjects["n_stage"] == "N2").astype(float),
            "log2_cea": np.log2(subjects["cea_ng_ml"].to_numpy()),
        }
    )


def _draw_survival(
    rng: np.random.Generator, linear_predictor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exponential event times under the planted hazards, with realistic censoring.

    Follow-up ends at a uniform administrative horizon (accrual over 5 years, analysis at
    9 years) or at loss to follow-up (exponential, about 4% a year), whichever comes first.
    """
    n = len(linear_predictor)
    hazard = BASELINE_HAZARD_PER_MONTH * np.exp(linear_predictor)
    event_time = rng.exponential(1.0 / hazard)
    administrative = rng.uniform(48.0, 108.0, n)
    lost = rng.exponential(12.0 / 0.04, n)
    censor_time = np.minimum(administrative, lost)
    months = np.minimum(event_time, censor_time)
    event = (event_time <= censor_time).astype(int)
    return np.maximum(months, 0.5), event


def _mri_sheet(subjects: pd.DataFrame, spec: Scale) -> pd.DataFrame:
    """One T2-weighted series per subject; the first few training subjects come as DICOM."""
    rows = []
    training = subjects.index[subjects["cohort"] == "training"][: spec.dicom_subjects]
    for i, sid in enumerate(subjects["subject_id"]):
        image = f"mri/{sid}_t2w_dicom" if i in training else f"mri/{sid}_t2w.nii.gz"
        rows.append(
            {
                "subject_id": sid,
                "sequence": "T2W",
                "image": image,
                "mask": f"mri/{sid}_tumour_mask.nii.gz",
                "mask_label": 1,
            }
        )
    return pd.DataFrame(rows)


def _slides_sheet(rng: np.random.Generator, subjects: pd.DataFrame, spec: Scale) -> pd.DataFrame:
    biological = subjects.loc[subjects["cohort"] == "biological", "subject_id"].tolist()
    training = subjects.loc[subjects["cohort"] == "training", "subject_id"].to_numpy()
    extra = sorted(rng.choice(training, size=spec.training_slides, replace=False).tolist())
    with_slides = sorted(biological + extra)
    return pd.DataFrame(
        {
            "slide_id": [f"H{i + 1:04d}" for i in range(len(with_slides))],
            "subject_id": with_slides,
            "path": [f"slides/H{i + 1:04d}.tiff" for i in range(len(with_slides))],
        }
    )


def _bulk_sheet(rng: np.random.Generator, subjects: pd.DataFrame, spec: Scale) -> pd.DataFrame:
    biological = subjects.loc[subjects["cohort"] == "biological", "subject_id"].to_numpy()
    chosen = sorted(
        rng.choice(biological, size=min(spec.bulk_samples, len(biological)), replace=False)
    )
    batches = ["batch1", "batch2"]
    return pd.DataFrame(
        {
            "sample_id": [f"B{i + 1:03d}" for i in range(len(chosen))],
            "subject_id": chosen,
            "batch": [batches[i % 2] for i in range(len(chosen))],
        }
    )


def _scrna_sheet(
    rng: np.random.Generator, subjects: pd.DataFrame, subtype: np.ndarray, spec: Scale
) -> pd.DataFrame:
    """scRNA samples from the biological cohort, every subtype represented."""
    is_bio = (subjects["cohort"] == "biological").to_numpy()
    chosen: list[str] = []
    for k, name in enumerate(SUBTYPES):
        pool = subjects.loc[is_bio & (subtype == name), "subject_id"].to_numpy()
        take = spec.scrna_samples // 3 + (1 if k < spec.scrna_samples % 3 else 0)
        chosen += rng.choice(pool, size=min(take, len(pool)), replace=False).tolist()
    chosen = sorted(chosen)
    rows = []
    for i, sid in enumerate(chosen):
        sample_id = f"SC{i + 1:02d}"
        # Most samples as 10x HDF5, every third as a 10x mtx folder: both formats users bring.
        if i % 3 == 2:
            rows.append({"sample_id": sample_id, "subject_id": sid,
                         "path": f"scrna/{sample_id}_filtered_feature_bc_matrix",
                         "format": "10x_mtx"})  # fmt: skip
        else:
            rows.append({"sample_id": sample_id, "subject_id": sid,
                         "path": f"scrna/{sample_id}_filtered_feature_bc_matrix.h5",
                         "format": "10x_h5"})  # fmt: skip
    return pd.DataFrame(rows)
