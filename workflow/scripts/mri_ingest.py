"""Rule mri_ingest: adapt Snakemake's arguments to rdls.imaging.steps.ingest_shard."""

from rdls.imaging.steps import ingest_shard
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
ingest_shard(
    subjects=snakemake.params.subjects,
    out_dir=snakemake.output.folder,
    out_table=snakemake.output.table,
    settings=snakemake.params.settings,
    allow_exclusions=snakemake.params.allow_exclusions,
)
