"""Rule rrs_km: adapt Snakemake's arguments to rdls.survival.steps."""

from rdls.runtime import log_to_file
from rdls.survival.steps import rrs_km_step

log_to_file(snakemake.log[0])
rrs_km_step(
    cohort=snakemake.wildcards.survival_cohort,
    scores=snakemake.input.scores,
    groups=snakemake.input.groups,
    subjects_sheet=snakemake.input.subjects,
    settings=snakemake.params.settings,
    out_figure=(snakemake.output.figure, snakemake.output.figure_vector),
)
