"""Rule qc_exclusions: adapt Snakemake's arguments to rdls.qc.collect_exclusions."""

from rdls.qc import collect_exclusions
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
collect_exclusions(snakemake.input.tables, out=snakemake.output[0])
