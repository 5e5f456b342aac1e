"""Rule imaging_stability: adapt Snakemake's arguments to rdls.imaging.features."""

import torch

from rdls.imaging.features import stability_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
stability = snakemake.params.stability
stability_step(
    ingested_tables=snakemake.input.tables,
    ingested_dirs=snakemake.input.folders,
    checkpoint=snakemake.input.checkpoint,
    params_file=snakemake.input.params,
    preprocess=snakemake.params.preprocess,
    encoder=snakemake.params.encoder,
    subjects=stability["subjects"],
    threshold=stability["icc_threshold"],
    kind=stability["icc_kind"],
    seed=snakemake.params.seed,
    out_radiomics=snakemake.output.radiomics,
    out_deep=snakemake.output.deep,
    threads=snakemake.threads,
)
