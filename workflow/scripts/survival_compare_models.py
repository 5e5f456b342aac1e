"""Rule survival_compare_models: adapt Snakemake's arguments to rdls.survival.steps."""

from rdls.runtime import log_to_file
from rdls.survival.steps import compare_step

TABLES = ("models", "auc", "auc_difference", "cindex", "calibration", "decision_curve", "roc",
          "predictions", "optimism", "calibration_summary", "calibration_curve")  # fmt: skip
log_to_file(snakemake.log[0])
out = snakemake.output
compare_step(
    scores=snakemake.input.scores,
    rrs_model=snakemake.input.rrs_model,
    features=snakemake.input.features,
    assignments=snakemake.input.assignments,
    radiomics=snakemake.input.radiomics,
    subjects_sheet=snakemake.input.subjects,
    covariates=snakemake.params.covariates,
    cohorts=snakemake.params.cohorts,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    out_tables={name: out[name] for name in TABLES},
    out_locked=out.locked,
    out_figures={
        "auc": (out.auc_figure, out.vectors[0]),
        "roc": (out.roc_figure, out.vectors[1]),
        "calibration": (out.calibration_figure, out.vectors[2]),
        "decision_curve": (out.decision_figure, out.vectors[3]),
        "nomogram": (out.nomogram, out.vectors[4]),
    },
)
