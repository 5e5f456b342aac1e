"""Rule bulk_deconvolve: adapt Snakemake's arguments to rdls.bulk.steps."""

from rdls.bulk.steps import deconvolve_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
deconvolve_step(
    counts=snakemake.input.counts,
    sheet=snakemake.input.sheet,
    assignments=snakemake.input.assignments,
    annotated_h5ad=snakemake.input.h5ad,
    settings=snakemake.params.settings,
    out_signature=snakemake.output.signature,
    out_fractions=snakemake.output.fractions,
    out_tests=snakemake.output.tests,
    out_png=snakemake.output.figure,
)
