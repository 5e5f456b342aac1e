"""Rule mri_embed: adapt Snakemake's arguments to rdls.imaging.steps.embed_shard."""

import torch

from rdls.imaging.steps import embed_shard
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
embed_shard(
    crops=snakemake.input.crops,
    checkpoint=snakemake.input.checkpoint,
    out_features=snakemake.output.features,
    settings=snakemake.params.settings,
)
