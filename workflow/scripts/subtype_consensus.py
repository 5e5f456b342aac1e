"""Rule subtype_consensus: adapt Snakemake's arguments to rdls.subtypes.steps."""

from rdls.runtime import log_to_file
from rdls.subtypes.steps import consensus_step

log_to_file(snakemake.log[0])
out = snakemake.output
consensus_step(
    features=snakemake.input.features,
    subjects_sheet=snakemake.input.subjects,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    out_summary=out.summary,
    out_cdf=out.cdf,
    out_labels=out.labels,
    out_training=out.training,
    out_rates=out.rates,
    out_stability=out.stability,
    out_structure=out.structure,
    out_figures={
        "heatmaps": (out.heatmaps, out.heatmaps_vector),
        "cdf": (out.cdf_figure, out.cdf_vector),
        "k_selection": (out.k_figure, out.k_vector),
    },
)
