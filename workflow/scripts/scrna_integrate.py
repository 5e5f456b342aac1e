"""Rule scrna_integrate: adapt Snakemake's arguments to rdls.scrna.steps."""

from rdls.runtime import log_to_file
from rdls.scrna.steps import integrate_step

log_to_file(snakemake.log[0])
integrate_step(
    samples=dict(zip(snakemake.params.samples, snakemake.input.h5ad, strict=True)),
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    out_h5ad=snakemake.output.h5ad,
    out_umap_png=snakemake.output.umap,
)
