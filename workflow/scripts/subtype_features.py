"""Rule subtype_features: adapt Snakemake's arguments to rdls.subtypes.steps."""

from rdls.runtime import log_to_file
from rdls.subtypes.steps import features_step

log_to_file(snakemake.log[0])
features_step(
    feature_tables={family: snakemake.input[family] for family in snakemake.params.families},
    subjects_sheet=snakemake.input.subjects,
    settings=snakemake.params.settings,
    out_features=snakemake.output.features,
    out_selection=snakemake.output.selection,
    out_table=snakemake.output.table,
)
