"""Rule scrna_by_subtype: adapt Snakemake's arguments to rdls.scrna.steps."""

from pathlib import Path

from rdls.runtime import log_to_file
from rdls.scrna.steps import by_subtype_step

log_to_file(snakemake.log[0])
by_subtype_step(
    annotated_h5ad=snakemake.input.h5ad,
    # results/bulk/deseq2/<contrast>.tsv: the contrast is the file's stem.
    signatures={Path(path).stem: path for path in snakemake.input.signatures},
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    out_composition=snakemake.output.composition,
    out_tests=snakemake.output.tests,
    out_bars_png=snakemake.output.bars,
    out_signature_scores=snakemake.output.signature_scores,
    out_signature_png=snakemake.output.signature_figure,
)
