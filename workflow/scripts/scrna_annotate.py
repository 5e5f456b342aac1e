"""Rule scrna_annotate: adapt Snakemake's arguments to rdls.scrna.steps."""

from rdls.runtime import log_to_file
from rdls.scrna.steps import annotate_step

log_to_file(snakemake.log[0])
annotate_step(
    integrated_h5ad=snakemake.input.h5ad,
    markers=snakemake.input.markers,
    assignments=snakemake.input.assignments[0] if snakemake.input.assignments else None,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    out_h5ad=snakemake.output.h5ad,
    out_cell_types=snakemake.output.cell_types,
    out_dotplot_png=snakemake.output.dotplot,
)
