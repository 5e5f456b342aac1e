"""Rule cohort_overview: adapt Snakemake's arguments to rdls.cohort.write_overview."""

from rdls.cohort import write_overview
from rdls.runtime import log_to_file
from rdls.sheets import SHEET_NAMES

log_to_file(snakemake.log[0])
write_overview(
    sheets={name: snakemake.input[name] for name in SHEET_NAMES},
    covariates=snakemake.params.covariates,
    out_table=snakemake.output.table,
    out_figure=snakemake.output.figure,
    out_figure_vector=snakemake.output.figure_vector,
)
