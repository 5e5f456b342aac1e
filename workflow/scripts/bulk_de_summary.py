"""Rule bulk_de_summary: adapt Snakemake's arguments to rdls.bulk.steps."""

from pathlib import Path

from rdls.bulk.steps import de_summary_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
de_summary_step(
    # results/bulk/deseq2/<contrast>.tsv: the contrast is the file's stem.
    tables={Path(path).stem: path for path in snakemake.input.tables},
    alpha=snakemake.params.alpha,
    out_summary=snakemake.output[0],
    assignments=snakemake.input.assignments,
)
