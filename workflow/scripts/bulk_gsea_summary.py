"""Rule bulk_gsea_summary: adapt Snakemake's arguments to rdls.bulk.steps."""

from pathlib import Path

from rdls.bulk.steps import gsea_summary_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
gsea_summary_step(
    tables={Path(path).stem: path for path in snakemake.input.tables},
    fdr=snakemake.params.fdr,
    out_summary=snakemake.output[0],
    assignments=snakemake.input.assignments,
)
