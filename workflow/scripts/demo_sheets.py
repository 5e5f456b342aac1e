"""Rule demo_sheets: write the demo cohort's sample sheets and subject-level truth."""

from rdls.demo import plan_cohort, root_of, write_sheets
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
write_sheets(
    plan_cohort(**snakemake.params.demo, seed=snakemake.params.seed),
    root=root_of(snakemake.output.subjects_truth),
)
