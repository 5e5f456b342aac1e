"""Rule wsi_summary: adapt Snakemake's arguments to rdls.wsi.steps."""

from rdls.runtime import log_to_file
from rdls.wsi.steps import summary_step

log_to_file(snakemake.log[0])
summary_step(
    metrics=snakemake.input.metrics,
    status=snakemake.input.status,
    slides_sheet=snakemake.input.slides,
    out_metrics=snakemake.output.metrics,
    out_exclusions=snakemake.output.exclusions,
)
