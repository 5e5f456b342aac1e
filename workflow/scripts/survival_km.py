"""Rule survival_km: adapt Snakemake's arguments to rdls.survival.steps."""

from rdls.runtime import log_to_file
from rdls.survival.steps import km_step

log_to_file(snakemake.log[0])
km_step(
    cohort=snakemake.wildcards.survival_cohort,
    assignments=snakemake.input.assignments,
    subjects_sheet=snakemake.input.subjects,
    settings=snakemake.params.settings,
    out_figure=(snakemake.output.figure, snakemake.output.figure_vector),
    out_curves=snakemake.output.curves,
    out_at_risk=snakemake.output.at_risk,
    out_logrank=snakemake.output.logrank,
    out_summary=snakemake.output.summary,
)
