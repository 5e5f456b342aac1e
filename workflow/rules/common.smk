"""Validation of the config and sheets at parse time, and the input functions of all rules."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

import pandas as pd

import rdls.bulk.de
import rdls.compare
import rdls.demo
import rdls.errors
import rdls.imaging.encoder
import rdls.imaging.harmonise
import rdls.imaging.shards
import rdls.predict.sheet
import rdls.report.inputs
import rdls.subtypes.cohorts
import rdls.subtypes.steps
from rdls.config import validate_config
from rdls.sheets import SHEET_NAMES, load_cohort, validate_cohort

config.update(
    validate_config(config, source="the config (config/config.yaml, --configfile and --config)")
)

DEMO = config["demo"]["activate"]
COVARIATES = config["clinical"]["covariates"]

if DEMO:
    # The demo's sheets are drawn at parse time (cheap, deterministic); its image, slide and
    # count files are written by the demo_* rules, so they are not checked for existence here.
    # The variant's options name its folder (results/demo/default for the original demo,
    # results/demo/default-size for the size variant), so variants never overwrite each other.
    DEMO_OPTIONS = {
        "scale": config["demo"]["scale"],
        "mri_signal": config["demo"]["mri_signal"],
        "centre_case_mix": config["demo"]["centre_case_mix"],
    }
    DEMO_ROOT = f"{config['demo']['outdir']}/{rdls.demo.folder_name(**DEMO_OPTIONS)}"
    DEMO_PLAN = rdls.demo.plan_cohort(**DEMO_OPTIONS, seed=config["seed"])
    SHEETS = {name: f"{DEMO_ROOT}/sheets/{name}.tsv" for name in SHEET_NAMES}
    BULK_COUNTS = f"{DEMO_ROOT}/{rdls.demo.BULK_COUNTS}"
    COHORT = validate_cohort(
        rdls.demo.sheet_frames(DEMO_PLAN, root=DEMO_ROOT),
        sources=SHEETS,
        covariates=COVARIATES,
        check_files=False,
    )
else:
    SHEETS = {name: config["sheets"][name] for name in SHEET_NAMES}
    BULK_COUNTS = config["sheets"]["bulk_counts"]
    COHORT = load_cohort(SHEETS, covariates=COVARIATES, bulk_counts=BULK_COUNTS)
for note in COHORT.notes:
    print(f"sample sheets: {note}", file=sys.stderr)


IMAGING = config["imaging"]["activate"] and not COHORT.mri.empty
if config["imaging"]["activate"] and COHORT.mri.empty:
    print(f"imaging branch: the mri sheet ({SHEETS['mri']}) has no rows; skipped.", file=sys.stderr)
rdls.imaging.encoder.check_context_fits(
    config["imaging"]["encoder"]["context_voxels"], config["imaging"]["preprocess"]["crop_voxels"]
)
if IMAGING:
    # A centre absent from training is harmonised from its own images: refuse a small one now.
    rdls.imaging.harmonise.check_unseen_centres(
        COHORT.subjects,
        with_mri=COHORT.mri["subject_id"],
        settings=config["imaging"]["harmonisation"],
        source=SHEETS["subjects"],
    )
ALLOW_EXCLUSIONS = config["qc"]["allow_exclusions"]
# Shard of every subject with an MRI: a stable hash of its ID within its cohort.
MRI_SHARD_OF = rdls.imaging.shards.assign_shards(
    COHORT.mri.merge(COHORT.subjects[["subject_id", "cohort"]], on="subject_id"),
    shards_per_cohort=config["imaging"]["shards_per_cohort"],
)
MRI_SHARDS = sorted(set(MRI_SHARD_OF))
MRI_COHORTS = sorted({rdls.imaging.shards.shard_cohort(shard) for shard in MRI_SHARDS})

WSI = config["wsi"]["activate"] and not COHORT.slides.empty
SLIDE_IDS = COHORT.slides["slide_id"].tolist() if WSI else []

SCRNA = config["scrna"]["activate"] and not COHORT.scrna.empty
SCRNA_SAMPLES = COHORT.scrna["sample_id"].tolist() if SCRNA else []

SUBTYPES = IMAGING and config["subtypes"]["activate"]
if config["subtypes"]["activate"] and not IMAGING:
    print("subtypes and survival: the imaging branch does not run; skipped.", file=sys.stderr)
if SUBTYPES:
    rdls.subtypes.cohorts.check_training_cohort(
        COHORT.subjects,
        with_mri=COHORT.mri["subject_id"],
        k_max=config["subtypes"]["consensus"]["k_max"],
        source=SHEETS["subjects"],
    )
SURVIVAL = SUBTYPES and config["survival"]["activate"]
# Bulk expression is analysed by subtype, so it needs the subtypes.
BULK = config["bulk"]["activate"] and not COHORT.bulk.empty and SUBTYPES
if config["bulk"]["activate"] and not COHORT.bulk.empty and not SUBTYPES:
    print("bulk RNA-seq: the subtypes do not run; skipped.", file=sys.stderr)
# Cohorts with MRI and recurrence-free survival: survival is analysed in each of them.
SURVIVAL_COHORTS = rdls.subtypes.cohorts.cohorts_with_follow_up(
    COHORT.subjects, with_mri=COHORT.mri["subject_id"]
)


def resource(path):
    """A configured reference file: as given, or else the copy shipped in the workflow's tree.

    Relative paths are read from the working directory first, so a lab's own marker or gene
    set file wins; the default names resolve to resources/ beside the Snakefile.
    """
    if Path(path).is_absolute() or Path(path).exists():
        return path
    shipped = Path(workflow.basedir) / path
    return str(shipped) if shipped.exists() else path


def rdls_sources(*modules):
    """Package modules whose change must rerun a rule; Snakemake itself tracks only the script."""
    package = Path(workflow.basedir) / "workflow" / "scripts" / "rdls"
    return [str(package / f"{module.replace('.', '/')}.py") for module in modules]


def demo_mri_images():
    """MRI of the demo: NIfTI files, and a folder per DICOM series."""
    images = [f"{DEMO_ROOT}/{image}" for image in DEMO_PLAN.mri["image"]]
    return [path if path.endswith(".nii.gz") else directory(path) for path in images]


def demo_scrna_samples():
    """scRNA-seq of the demo: 10x HDF5 files, and a folder per 10x mtx sample."""
    return [
        (
            directory(f"{DEMO_ROOT}/{sample.path}")
            if sample.format == "10x_mtx"
            else f"{DEMO_ROOT}/{sample.path}"
        )
        for sample in DEMO_PLAN.scrna.itertuples()
    ]


def demo_truth(name):
    return f"{DEMO_ROOT}/truth/{name}.tsv"


def demo_targets():
    """The demo cohort: its sheets and each generator's truth table stand for its files."""
    if not DEMO:
        return []
    truth = ["subjects", "hazard_coefficients", "settings", "subtype_proportions", "mri",
             "slides", "bulk_genes", "scrna_cells"]  # fmt: skip
    return [*SHEETS.values(), *[demo_truth(name) for name in truth]]


def mri_shard_rows(wildcards):
    """The mri sheet's rows of one shard, as the ingest step takes them."""
    members = MRI_SHARD_OF.index[MRI_SHARD_OF == wildcards.shard]
    rows = COHORT.mri[COHORT.mri["subject_id"].isin(members)].sort_values("subject_id")
    return [
        {
            "subject_id": row.subject_id,
            "image": row.image,
            "mask": row.mask,
            "mask_label": int(row.mask_label),
        }
        for row in rows.itertuples()
    ]


def mri_shard_files(wildcards):
    """Images and masks of one shard: their change reruns the shard."""
    rows = mri_shard_rows(wildcards)
    return {
        "images": [row["image"] for row in rows],
        "masks": [row["mask"] for row in rows],
    }


def mri_shard_outputs(pattern, cohort=None):
    """One path per shard (of one cohort, or of all), from a pattern with {shard}."""
    return [
        pattern.format(shard=shard)
        for shard in MRI_SHARDS
        if cohort is None or rdls.imaging.shards.shard_cohort(shard) == cohort
    ]


def mri_cohort_crops(wildcards):
    return mri_shard_outputs("results/imaging/crops/{shard}.npz", cohort=wildcards.cohort)


def encoder_training_inputs():
    """The training cohort's crops, or the user's pretrained checkpoint instead."""
    pretrained = config["imaging"]["encoder"]["checkpoint"]
    if pretrained:
        return {"pretrained": pretrained}
    return {"crops": mri_shard_outputs("results/imaging/crops/{shard}.npz", cohort="training")}


def imaging_stability_tables():
    if not config["imaging"]["stability"]["activate"]:
        return {}
    return {
        f"icc_{family}": f"results/imaging/stability/{family}_icc.tsv"
        for family in ("radiomics", "deep")
    }


def imaging_status_tables():
    return [
        *mri_shard_outputs("results/imaging/ingested/{shard}.tsv"),
        *mri_shard_outputs("results/imaging/crops/{shard}.tsv"),
        *mri_shard_outputs("results/imaging/radiomics/{shard}.tsv"),
    ]


def imaging_targets():
    if not IMAGING:
        return []
    return [
        *[f"results/imaging/features/{family}.parquet" for family in ("radiomics", "deep")],
        "results/imaging/harmonisation.tsv",
        "results/imaging/encoder/training_curve.png",
        *[f"results/imaging/montages/{cohort}.png" for cohort in MRI_COHORTS],
    ]


def subtype_feature_tables():
    """The imaging feature families clustered, by family name."""
    return {
        family: f"results/imaging/features/{family}.parquet"
        for family in config["subtypes"]["families"]
    }


def subtypes_targets():
    if not SUBTYPES:
        return []
    return [
        "results/subtypes/assignments.tsv",
        "results/subtypes/agreement.tsv",
        "results/subtypes/table_one.html",
        "results/subtypes/consensus/k_selection.png",
        "results/subtypes/consensus/heatmaps.png",
        "results/subtypes/consensus/cdf.png",
        "results/subtypes/classifier/cross_validation.tsv",
    ]


def survival_targets():
    if not SURVIVAL:
        return []
    return [
        *[f"results/survival/km/{cohort}.png" for cohort in SURVIVAL_COHORTS],
        *[f"results/survival/rrs/km_{cohort}.png" for cohort in SURVIVAL_COHORTS],
        "results/survival/cox/forest.png",
        "results/survival/risk_scores.tsv",
        "results/survival/rrs/cross_validation.png",
        "results/survival/comparison/auc.png",
    ]


def slide_row(wildcards):
    return COHORT.slides.set_index("slide_id").loc[wildcards.slide]


def slide_path(wildcards):
    return slide_row(wildcards)["path"]


def slide_mpp(wildcards):
    """Microns per pixel from the slides sheet (None: the slide's own, or the fallback)."""
    mpp = slide_row(wildcards).get("mpp")
    return None if mpp is None or pd.isna(mpp) else float(mpp)


def wsi_classifier_checkpoint(wildcards):
    """The user's tile classifier checkpoint, an input so that a new one reruns the slides."""
    model = config["wsi"]["quantify"]["classifier"]["checkpoint"]
    return [model] if model else []


def wsi_targets():
    if not WSI:
        return []
    by_subtype = ["results/wsi/by_subtype.png"] if SUBTYPES else []
    return ["results/wsi/slide_metrics.tsv", *by_subtype]


def scrna_sample_row(wildcards):
    """The scrna sheet's row of one sample, as a plain dict."""
    return COHORT.scrna.set_index("sample_id").loc[wildcards.sample].to_dict()


def scrna_sample_path(wildcards):
    return scrna_sample_row(wildcards)["path"]


def scrna_assignments():
    """The subtypes, when that branch runs: cells then carry their subject's subtype."""
    return ["results/subtypes/assignments.tsv"] if SUBTYPES else []


def subtype_names():
    """The subtypes the run found: known once the checkpoint subtype_assign has run.

    None where consensus clustering found no significant subtypes (every subject "none"):
    then there are no bulk contrasts, and the summaries say why.
    """
    assignments = checkpoints.subtype_assign.get().output.assignments
    subtypes = rdls.subtypes.steps.read_assignments(assignments)["subtype"]
    return rdls.compare.subtype_levels(subtypes)


def bulk_contrast_names():
    return rdls.bulk.de.contrasts(subtype_names(), **config["bulk"]["contrasts"])


def bulk_de_tables(wildcards):
    return [f"results/bulk/deseq2/{c}.tsv" for c in bulk_contrast_names()]


def bulk_gsea_tables(wildcards):
    return [f"results/bulk/gsea/{c}.tsv" for c in bulk_contrast_names()]


def bulk_targets():
    if not BULK:
        return []
    targets = [
        "results/bulk/deseq2/summary.tsv",
        "results/bulk/gsea/summary.tsv",
        "results/bulk/overview/pca.png",
        "results/bulk/scores/tests.tsv",
    ]
    return targets + (["results/bulk/deconvolution/fractions.tsv"] if SCRNA else [])


def scrna_signature_tables(wildcards):
    """Each subtype's bulk DE against the rest, scored on the cells as its signature."""
    if not BULK:
        return []
    names = [c for c in bulk_contrast_names() if c.endswith("_vs_rest")]
    return [f"results/bulk/deseq2/{c}.tsv" for c in names]


def scrna_targets():
    if not SCRNA:
        return []
    targets = ["results/scrna/annotated.h5ad", "results/scrna/qc/summary.tsv"]
    return targets + (["results/scrna/by_subtype/composition.tsv"] if SUBTYPES else [])


def qc_exclusion_tables():
    """Each branch's exclusions, merged into results/qc/exclusions.tsv."""
    tables = ["results/imaging/qc_exclusions.tsv"] if IMAGING else []
    tables += ["results/scrna/qc_exclusions.tsv"] if SCRNA else []
    return tables + (["results/wsi/qc_exclusions.tsv"] if WSI else [])


def all_targets():
    return [
        *demo_targets(),
        *imaging_targets(),
        *subtypes_targets(),
        *survival_targets(),
        *wsi_targets(),
        *scrna_targets(),
        *bulk_targets(),
        "results/report/subtype_biology.html",
        "results/qc/exclusions.tsv",
        "results/cohort/overview.tsv",
        "results/cohort/overview.png",
    ]


# Scoring new subjects (workflow/rules/predict.smk).
PREDICT = config["predict"]
# The sheet is checked at parse time when given: a missing covariate or image stops the run
# before any job starts, naming the row and column.
PREDICT_SUBJECTS = (
    rdls.predict.sheet.read_predict_sheet(PREDICT["subjects"], covariates=COVARIATES)
    if PREDICT["subjects"]
    else None
)


def predict_sheet_inputs(wildcards):
    """The predict sheet and its images and masks: a change to any reruns the scoring."""
    if PREDICT_SUBJECTS is None:
        raise rdls.errors.InputError(
            "no sheet of new subjects to score: set the config key predict.subjects to a "
            "tab-separated sheet (subject_id, centre, image, mask and the clinical covariates), "
            "e.g. snakemake predict --config predict='{subjects: new_subjects.tsv}'."
        )
    return {
        "sheet": PREDICT["subjects"],
        **rdls.predict.sheet.image_files(PREDICT_SUBJECTS),
    }


def predict_harmonisation_models():
    """The run's saved ComBat model of each subtype family, by family name."""
    return {
        family: f"results/imaging/harmonisation/{family}.json"
        for family in config["subtypes"]["families"]
    }


def predict_survival_models():
    """The locked RRS and clinical models, when the survival branch runs."""
    if not SURVIVAL:
        return {}
    return {
        "rrs": "results/survival/rrs/model.json",
        "clinical": "results/survival/comparison/locked_models.json",
    }


# The subtype-biology report (workflow/rules/report.smk).
def report_branches():
    """The branches that run, by the switches above."""
    return {
        "imaging": IMAGING,
        "subtypes": SUBTYPES,
        "survival": SURVIVAL,
        "wsi": WSI,
        "scrna": SCRNA,
        "bulk": BULK,
    }


def report_bulk_contrasts():
    """The bulk RNA-seq contrasts whose tables the report shows; none when the branch is off.

    They depend on the subtypes found at run time: bulk_contrast_names() (common.smk) reads
    them once the checkpoint subtype_assign has run.
    """
    return list(bulk_contrast_names()) if report_branches()["bulk"] else []


def report_subtype_biology_inputs(wildcards):
    """Every file the subtype-biology report reads, by key (rdls.report.inputs.FILES), but
    the per-contrast bulk tables."""
    return rdls.report.inputs.report_inputs(
        branches=report_branches(),
        cohorts=MRI_COHORTS,
        survival_cohorts=SURVIVAL_COHORTS,
        shards=MRI_SHARDS,
        slides=SLIDE_IDS,
    )


def report_subtype_biology_contrasts(wildcards):
    """The per-contrast bulk tables: known once the checkpoint subtype_assign has run."""
    return rdls.report.inputs.contrast_inputs(report_bulk_contrasts())
