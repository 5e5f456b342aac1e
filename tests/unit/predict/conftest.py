"""A miniature run, written as the workflow writes it, whose models the predict tests apply.

Fourteen synthetic subjects at three centres go through the imaging steps; ComBat, the
subtype feature selection and classifier are fitted as in the workflow; an RRS and the clinical
models are locked as rrs_fit and survival_compare_models lock them (small, fixed numbers where
fitting would need a larger cohort).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

COVARIATES = ["age", "sex", "t_stage", "cea_ng_ml"]
PREPROCESS = {"crop_voxels": [40, 40, 12], "n4": False}
ENCODER = {"widths": [4, 8, 8, 8], "context_voxels": [4, 4, 1], "epochs": 1, "batch_size": 4}
IMAGING = {"ingest": {}, "preprocess": PREPROCESS, "encoder": ENCODER}
SELECTION = {"prognostic_filter": False, "max_abs_correlation": 0.95,
             "near_constant_fraction": 0.95, "family_weighting": "equal"}  # fmt: skip
SEED = 3
HARMONISATION = {"method": "combat", "reference_centre": None, "min_subjects_per_centre": 3,
                 "unseen_centre": "error"}  # fmt: skip
HORIZON = 24.0
PARAMS = """\
setting:
  binWidth: 25
  label: 1
imageType:
  Original: {}
featureClass:
  shape:
  firstorder:
"""
# Training at every centre, the external cohort at A and B only (four each at least: ComBat).
CENTRES = list("AABBCCAABBCC") + list("AB")
COHORTS = ["training"] * 9 + ["external_validation"] * 5
SUBTYPES = ["RDLS1", "RDLS2", "RDLS3"]


@dataclass
class MiniRun:
    root: Path
    subjects: pd.DataFrame  # the subjects sheet, with image and mask paths
    paths: dict  # predict_step's keyword arguments for the locked files
    selected: pd.DataFrame  # the run's selected, scaled features
    classifier: object
    rrs: object
    fits: dict  # lifelines fits of the clinical models, by name
    design_matrix: pd.DataFrame

    def external(self) -> pd.DataFrame:
        return self.subjects[self.subjects["cohort"] == "external_validation"]

    def write_sheet(self, rows: pd.DataFrame, name: str = "new.tsv") -> Path:
        path = self.root / name
        rows.to_csv(path, sep="\t", index=False)
        return path

    def sheet_rows(self, subjects: pd.DataFrame) -> pd.DataFrame:
        return subjects[["subject_id", "centre", "image", "mask", *COVARIATES]]


@pytest.fixture(scope="session")
def mini_run(tmp_path_factory) -> MiniRun:
    import joblib

    from rdls.demo._mri import write_subject_mri
    from rdls.demo._plan import item_rng
    from rdls.imaging.features import assemble_features
    from rdls.imaging.steps import (
        embed_shard,
        ingest_shard,
        preprocess_shard,
        radiomics_shard,
        train_encoder_step,
    )
    from rdls.subtypes.classifier import fit_assignment_model
    from rdls.subtypes.steps import features_step, read_selected
    from rdls.survival.compare import fit_survival_model, lock_model
    from rdls.survival.cox import design_matrix
    from rdls.survival.rrs import RRSModel
    from rdls.survival.steps import clinical_design

    root = tmp_path_factory.mktemp("mini_run")
    rng = np.random.default_rng(7)
    rows = []
    for i, (centre, cohort) in enumerate(zip(CENTRES, COHORTS, strict=True)):
        sid = f"S{i:02d}"
        image, mask = root / "mri" / f"{sid}.nii.gz", root / "mri" / f"{sid}_mask.nii.gz"
        image.parent.mkdir(exist_ok=True)
        subtype = SUBTYPES[i % 3]
        write_subject_mri(subtype=subtype, centre=centre, image_path=image, mask_path=mask,
                          shape=(64, 64, 16), rng=item_rng(1, "mri", i))  # fmt: skip
        rows.append({
            "subject_id": sid, "cohort": cohort, "centre": centre, "planted": subtype,
            "image": str(image), "mask": str(mask), "mask_label": 1,
            "age": float(rng.integers(40, 80)), "sex": ["male", "female"][i % 2],
            # T4 never occurs in training: the locked model has no coefficient for it.
            "t_stage": ["T2", "T3"][(i // 2) % 2], "cea_ng_ml": round(float(rng.uniform(1, 20)), 1),
            "rfs_months": round(float(rng.uniform(6, 60)), 1), "rfs_event": int(i % 3 != 1),
        })  # fmt: skip
    subjects = pd.DataFrame(rows)
    sheet = root / "subjects.tsv"
    subjects[["subject_id", "cohort", "centre", *COVARIATES, "rfs_months", "rfs_event"]].to_csv(
        sheet, sep="\t", index=False
    )
    run = root / "run"
    shard = [{k: row[k] for k in ("subject_id", "image", "mask", "mask_label")} for row in rows]
    ingest_shard(subjects=shard, out_dir=run / "ingested", out_table=run / "ingested.tsv",
                 settings={}, allow_exclusions=False)  # fmt: skip
    preprocess_shard(ingested_table=run / "ingested.tsv", ingested_dir=run / "ingested",
                     out_crops=run / "crops.npz", out_table=run / "crops.tsv",
                     settings=PREPROCESS, allow_exclusions=False)  # fmt: skip
    params = root / "params.yaml"
    params.write_text(PARAMS)
    radiomics_shard(ingested_table=run / "ingested.tsv", ingested_dir=run / "ingested",
                    params_file=params, out_features=run / "radiomics.parquet",
                    out_table=run / "radiomics.tsv", allow_exclusions=False)  # fmt: skip
    train_encoder_step(crops=[run / "crops.npz"], out_checkpoint=run / "encoder.pt",
                       out_curve=run / "curve.tsv", out_figure=run / "curve.png",
                       out_figure_vector=run / "curve.svg", settings=ENCODER,
                       seed=SEED)  # fmt: skip
    embed_shard(crops=run / "crops.npz", checkpoint=run / "encoder.pt",
                out_features=run / "deep.parquet", settings=ENCODER)  # fmt: skip
    families = ("radiomics", "deep")
    harmonised = {f: run / "features" / f"{f}.parquet" for f in families}
    unharmonised = {f: run / "features" / "unharmonised" / f"{f}.parquet" for f in families}
    models = {f: run / "harmonisation" / f"{f}.json" for f in families}
    assemble_features(
        subjects_sheet=sheet,
        status_tables=[run / "ingested.tsv", run / "crops.tsv", run / "radiomics.tsv"],
        radiomics=[run / "radiomics.parquet"],
        deep=[run / "deep.parquet"],
        icc_tables=None,
        harmonisation=HARMONISATION,
        seed=SEED,
        out_features=harmonised,
        out_unharmonised=unharmonised,
        out_models=models,
        out_exclusions=run / "exclusions.tsv",
        out_harmonisation=run / "harmonisation.tsv",
    )
    # The stability filter keeps a subset: here every other radiomic feature.
    table = pd.read_parquet(harmonised["radiomics"])
    table.drop(columns=list(table.columns[3::2])).to_parquet(harmonised["radiomics"])
    features_step(
        feature_tables=harmonised,
        subjects_sheet=sheet,
        settings=SELECTION,
        out_features=run / "selected.parquet",
        out_selection=run / "selection.json",
        out_table=run / "selection.tsv",
    )
    selected, cohort = read_selected(run / "selected.parquet")
    training = subjects.set_index("subject_id").loc[cohort.index[cohort == "training"]]
    classifier = fit_assignment_model(
        selected.loc[training.index], training["planted"], candidates=["nearest_centroid"],
        folds=2, seed=SEED,
    )  # fmt: skip
    joblib.dump(classifier, run / "classifier.joblib")
    first, second = list(selected.columns[:2])
    rrs = RRSModel(features=[first, second], mean={first: 0.1, second: -0.2},
                   scale={first: 1.5, second: 0.8}, coefficients={first: 0.7, second: -0.4},
                   alpha=0.1, l1_ratio=1.0, cutoff=0.05, cutoff_method="median")  # fmt: skip
    (run / "rrs.json").write_text(json.dumps(rrs.to_dict()))
    frame = subjects.set_index("subject_id")
    design = clinical_design(frame.loc[training.index], covariates=COVARIATES,
                             log2=["cea_ng_ml"])  # fmt: skip
    matrix = design_matrix(design, frame).assign(rrs=rrs.score(selected.loc[frame.index]))
    fits, locked = {}, {}
    for name, columns in (("clinical", design.terms), ("clinical + RRS", [*design.terms, "rrs"])):
        fits[name] = fit_survival_model(matrix[columns], frame["rfs_months"],
                                        frame["rfs_event"], penalizer=0.1)  # fmt: skip
        locked[name] = lock_model(fits[name], horizon=HORIZON)
    (run / "locked_models.json").write_text(
        json.dumps({"design": design.to_dict(), "models": locked})
    )
    return MiniRun(
        root=root,
        subjects=subjects,
        paths={
            "harmonisation": models,
            "selection": run / "selection.json",
            "classifier": run / "classifier.joblib",
            "checkpoint": run / "encoder.pt",
            "params_file": params,
            "rrs_model": run / "rrs.json",
            "clinical_models": run / "locked_models.json",
        },
        selected=selected,
        classifier=classifier,
        rrs=rrs,
        fits=fits,
        design_matrix=matrix,
    )
