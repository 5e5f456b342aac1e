"""Rule mri_preprocess: adapt Snakemake's arguments to rdls.imaging.steps.preprocess_shard."""

from rdls.imaging.steps import preprocess_shard
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
preprocess_shard(
    ingested_table=snakemake.input.table,
    ingested_dir=snakemake.input.folder,
    out_crops=snakemake.output.crops,
    out_table=snakemake.output.table,
    settings=snakemake.params.settings,
    allow_exclusions=snakemake.params.allow_exclusions,
)
