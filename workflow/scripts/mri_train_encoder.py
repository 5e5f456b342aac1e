"""Rule mri_train_encoder: adapt Snakemake's arguments to rdls.imaging.steps."""

import torch

from rdls.imaging.steps import train_encoder_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train_encoder_step(
    crops=snakemake.input.get("crops", []),
    pretrained=snakemake.input.get("pretrained"),
    out_checkpoint=snakemake.output.checkpoint,
    out_curve=snakemake.output.curve,
    out_figure=snakemake.output.figure,
    out_figure_vector=snakemake.output.figure_vector,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
)
