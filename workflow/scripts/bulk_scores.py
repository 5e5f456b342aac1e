"""Rule bulk_scores: adapt Snakemake's arguments to rdls.bulk.steps."""

from rdls.bulk.steps import scores_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
scores_step(
    counts=snakemake.input.counts,
    sheet=snakemake.input.sheet,
    assignments=snakemake.input.assignments,
    gmt=snakemake.input.gmt,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    out_scores=snakemake.output.scores,
    out_tests=snakemake.output.tests,
    out_png=snakemake.output.figure,
)
