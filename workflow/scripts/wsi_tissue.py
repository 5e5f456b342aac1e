"""Rule wsi_tissue: adapt Snakemake's arguments to rdls.wsi.steps."""

from rdls.runtime import log_to_file
from rdls.wsi.steps import tissue_step

log_to_file(snakemake.log[0])
tissue_step(
    slide_id=snakemake.wildcards.slide,
    path=snakemake.input.slide,
    mpp=snakemake.params.mpp,
    settings=snakemake.params.settings,
    allow_exclusions=snakemake.params.allow_exclusions,
    out_tiles=snakemake.output.tiles,
    out_status=snakemake.output.status,
    out_thumbnail=snakemake.output.thumbnail,
)
