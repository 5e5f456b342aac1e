"""Rule predict: adapt Snakemake's arguments to rdls.predict.steps.predict_step."""

from rdls.predict.steps import predict_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
families = snakemake.params.families
predict_step(
    sheet=snakemake.input.sheet,
    covariates=snakemake.params.covariates,
    harmonisation={family: snakemake.input[family] for family in families},
    selection=snakemake.input.selection,
    classifier=snakemake.input.classifier,
    checkpoint=snakemake.input.checkpoint,
    params_file=snakemake.input.params,
    rrs_model=snakemake.input.get("rrs"),
    clinical_models=snakemake.input.get("clinical"),
    imaging=snakemake.params.imaging,
    allow_exclusions=snakemake.params.allow_exclusions,
    unseen_centre=snakemake.params.unseen_centre,
    min_subjects_per_centre=snakemake.params.min_subjects_per_centre,
    out_predictions=snakemake.output.predictions,
    out_harmonisation=snakemake.output.harmonisation,
    out_work=snakemake.output.work,
)
