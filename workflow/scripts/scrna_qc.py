"""Rule scrna_qc: adapt Snakemake's arguments to rdls.scrna.steps."""

from rdls.runtime import log_to_file
from rdls.scrna.steps import qc_step

log_to_file(snakemake.log[0])
row = snakemake.params.row
qc_step(
    sample_id=snakemake.wildcards.sample,
    subject_id=row["subject_id"],
    path=snakemake.input.counts,
    fmt=row["format"],
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    allow_exclusions=snakemake.params.allow_exclusions,
    out_h5ad=snakemake.output.h5ad,
    out_metrics=snakemake.output.metrics,
    out_png=snakemake.output.figure,
)
