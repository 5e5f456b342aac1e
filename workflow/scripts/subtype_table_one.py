"""Rule subtype_table_one: adapt Snakemake's arguments to rdls.subtypes.steps."""

from rdls.runtime import log_to_file
from rdls.subtypes.steps import table_one_step

log_to_file(snakemake.log[0])
table_one_step(
    assignments=snakemake.input.assignments,
    subjects_sheet=snakemake.input.subjects,
    covariates=snakemake.params.covariates,
    out_table=snakemake.output.table,
    out_html=snakemake.output.html,
)
