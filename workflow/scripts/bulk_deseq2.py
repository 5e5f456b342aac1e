"""Rule bulk_deseq2: adapt Snakemake's arguments to rdls.bulk.steps."""

from rdls.bulk.steps import deseq2_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
deseq2_step(
    counts=snakemake.input.counts,
    sheet=snakemake.input.sheet,
    subjects=snakemake.input.subjects,
    assignments=snakemake.input.assignments,
    contrast=snakemake.wildcards.contrast,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    out_table=snakemake.output.table,
    out_volcano_png=snakemake.output.volcano,
    out_ma_png=snakemake.output.ma,
)
