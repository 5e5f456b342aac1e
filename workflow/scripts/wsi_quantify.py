"""Rule wsi_quantify: adapt Snakemake's arguments to rdls.wsi.steps."""

from rdls.runtime import log_to_file
from rdls.wsi.steps import quantify_step

log_to_file(snakemake.log[0])
quantify_step(
    slide_id=snakemake.wildcards.slide,
    path=snakemake.input.slide,
    mpp=snakemake.params.mpp,
    tiles=snakemake.input.tiles,
    status=snakemake.input.status,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    out_tiles=snakemake.output.tiles,
    out_nuclei=snakemake.output.nuclei,
    out_metrics=snakemake.output.metrics,
    out_heatmap=snakemake.output.heatmap,
    allow_exclusions=snakemake.params.allow_exclusions,
)
