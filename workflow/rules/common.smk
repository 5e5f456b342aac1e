"""Validation of the config and sheets at parse time, and the input functions of all rules."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

import rdls.demo
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
    DEMO_ROOT = f"{config['demo']['outdir']}/{config['demo']['scale']}"
    DEMO_PLAN = rdls.demo.plan_cohort(scale=config["demo"]["scale"], seed=config["seed"])
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
    truth = ["subjects", "hazard_coefficients", "mri", "slides", "bulk_genes", "scrna_cells"]
    return [*SHEETS.values(), *[demo_truth(name) for name in truth]]


def all_targets():
    return [
        *demo_targets(),
        "results/cohort/overview.tsv",
        "results/cohort/overview.png",
    ]
