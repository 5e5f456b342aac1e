"""Rule demo_mri: write the demo cohort's T2-weighted volumes and tumour masks."""

from rdls.demo import generate_mri, plan_cohort, root_of
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
generate_mri(
    plan_cohort(**snakemake.params.demo, seed=snakemake.params.seed),
    root=root_of(snakemake.output.truth),
    threads=snakemake.threads,
)
