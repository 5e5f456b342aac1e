"""Rule rrs_score: adapt Snakemake's arguments to rdls.survival.steps."""

from rdls.runtime import log_to_file
from rdls.survival.steps import rrs_score_step

log_to_file(snakemake.log[0])
rrs_score_step(
    features=snakemake.input.features,
    model=snakemake.input.model,
    subjects_sheet=snakemake.input.subjects,
    cohorts=snakemake.params.cohorts,
    out_scores=snakemake.output.scores,
    out_groups=snakemake.output.groups,
)
