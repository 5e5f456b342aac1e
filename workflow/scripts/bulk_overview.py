"""Rule bulk_overview: adapt Snakemake's arguments to rdls.bulk.steps."""

from pathlib import Path

from rdls.bulk.steps import overview_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
overview_step(
    counts=snakemake.input.counts,
    sheet=snakemake.input.sheet,
    assignments=snakemake.input.assignments,
    de_tables={Path(path).stem: path for path in snakemake.input.de_tables},
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    out_vst=snakemake.output.vst,
    out_pca_png=snakemake.output.pca,
    out_heatmap_png=snakemake.output.heatmap,
)
