"""Rule demo_slides: write the demo cohort's whole-slide images."""

from rdls.demo import generate_slides, plan_cohort, root_of
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
generate_slides(
    plan_cohort(**snakemake.params.demo, seed=snakemake.params.seed),
    root=root_of(snakemake.output.truth),
    threads=snakemake.threads,
)
