"""Rule scrna_qc_summary: adapt Snakemake's arguments to rdls.scrna.steps."""

from rdls.runtime import log_to_file
from rdls.scrna.steps import qc_summary_step

log_to_file(snakemake.log[0])
qc_summary_step(
    metrics=snakemake.input.metrics,
    out_summary=snakemake.output.summary,
    out_exclusions=snakemake.output.exclusions,
)
