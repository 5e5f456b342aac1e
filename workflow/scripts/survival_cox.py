"""Rule survival_cox: adapt Snakemake's arguments to rdls.survival.steps."""

from rdls.runtime import log_to_file
from rdls.survival.steps import cox_step

log_to_file(snakemake.log[0])
cox_step(
    assignments=snakemake.input.assignments,
    subjects_sheet=snakemake.input.subjects,
    covariates=snakemake.params.covariates,
    cohorts=snakemake.params.cohorts,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    out_table=snakemake.output.table,
    out_ph_test=snakemake.output.ph_test,
    out_forest=(snakemake.output.forest, snakemake.output.forest_vector),
)
