"""Rule mri_radiomics: adapt Snakemake's arguments to rdls.imaging.steps.radiomics_shard."""

from rdls.imaging.steps import radiomics_shard
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
radiomics_shard(
    ingested_table=snakemake.input.table,
    ingested_dir=snakemake.input.folder,
    params_file=snakemake.input.params,
    out_features=snakemake.output.features,
    out_table=snakemake.output.table,
    allow_exclusions=snakemake.params.allow_exclusions,
)
