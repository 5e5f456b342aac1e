"""Rule demo_bulk: write the demo cohort's bulk RNA-seq count matrix."""

from rdls.demo import generate_bulk, plan_cohort, root_of
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
generate_bulk(
    plan_cohort(**snakemake.params.demo, seed=snakemake.params.seed),
    root=root_of(snakemake.output.truth),
)
