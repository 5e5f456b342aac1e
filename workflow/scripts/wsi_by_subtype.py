"""Rule wsi_by_subtype: adapt Snakemake's arguments to rdls.wsi.steps."""

from rdls.runtime import log_to_file
from rdls.wsi.steps import by_subtype_step

log_to_file(snakemake.log[0])
by_subtype_step(
    metrics=snakemake.input.metrics,
    assignments=snakemake.input.assignments,
    out_table=snakemake.output.table,
    out_figure=(snakemake.output.figure, snakemake.output.figure_vector),
)
