"""Rule bulk_gsea: adapt Snakemake's arguments to rdls.bulk.steps."""

from rdls.bulk.steps import gsea_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
gsea_step(
    de_table=snakemake.input.table,
    gmt=snakemake.input.gmt,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    out_table=snakemake.output.table,
    out_png=snakemake.output.figure,
)
