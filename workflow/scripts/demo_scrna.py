"""Rule demo_scrna: write the demo cohort's scRNA-seq samples."""

from rdls.demo import generate_scrna, plan_cohort, root_of
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
generate_scrna(
    plan_cohort(**snakemake.params.demo, seed=snakemake.params.seed),
    root=root_of(snakemake.output.truth),
    threads=snakemake.threads,
)
