"""Rule mri_montage: adapt Snakemake's arguments to rdls.imaging.steps.montage_step."""

from rdls.imaging.steps import montage_step
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
montage_step(
    crops=snakemake.input.crops,
    out_figure=snakemake.output[0],
    title=f"Tumour crops, {snakemake.wildcards.cohort} cohort (central slice, mask outlined)",
)
