"""Rule subtype_assign: adapt Snakemake's arguments to rdls.subtypes.steps."""

from rdls.runtime import log_to_file
from rdls.subtypes.steps import assign_step

log_to_file(snakemake.log[0])
assign_step(
    features=snakemake.input.features,
    training_subtypes=snakemake.input.training,
    model=snakemake.input.model,
    consensus_settings=snakemake.params.consensus,
    reps=snakemake.params.reps,
    seed=snakemake.params.seed,
    out_assignments=snakemake.output.assignments,
    out_agreement=snakemake.output.agreement,
    out_igp=snakemake.output.igp,
)
