"""Rule subtype_classifier: adapt Snakemake's arguments to rdls.subtypes.steps."""

from rdls.runtime import log_to_file
from rdls.subtypes.steps import classifier_step

log_to_file(snakemake.log[0])
classifier_step(
    features=snakemake.input.features,
    training_subtypes=snakemake.input.training,
    structure=snakemake.input.structure,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    out_model=snakemake.output.model,
    out_cv=snakemake.output.cv,
    out_calibration=snakemake.output.calibration,
    out_reliability=snakemake.output.reliability,
    out_reliability_figure=snakemake.output.reliability_figure,
    out_reliability_vector=snakemake.output.reliability_vector,
)
