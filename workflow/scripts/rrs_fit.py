"""Rule rrs_fit: adapt Snakemake's arguments to rdls.survival.steps."""

from rdls.runtime import log_to_file
from rdls.survival.steps import rrs_fit_step

log_to_file(snakemake.log[0])
out = snakemake.output
rrs_fit_step(
    features=snakemake.input.features,
    assignments=snakemake.input.assignments,
    subjects_sheet=snakemake.input.subjects,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
    out_model=out.model,
    out_candidates=out.candidates,
    out_coefficients=out.coefficients,
    out_cv=out.cv,
    out_cv_figure=(out.cv_figure, out.cv_vector),
    out_cutoff_scan=out.cutoff_scan,
    out_frequency=out.frequency,
)
