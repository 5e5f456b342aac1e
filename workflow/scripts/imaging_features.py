"""Rule imaging_features: adapt Snakemake's arguments to rdls.imaging.features."""

from rdls.imaging.features import assemble_features
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
families = ("radiomics", "deep")
stable = hasattr(snakemake.input, "icc_deep")  # absent when the stability filter is off
icc = {f: snakemake.input[f"icc_{f}"] for f in families} if stable else None
assemble_features(
    subjects_sheet=snakemake.input.subjects,
    status_tables=snakemake.input.status,
    radiomics=snakemake.input.radiomics,
    deep=snakemake.input.deep,
    icc_tables=icc,
    harmonisation=snakemake.params.harmonisation,
    seed=snakemake.params.seed,
    out_features={f: snakemake.output[f] for f in families},
    out_unharmonised={f: snakemake.output[f"{f}_unharmonised"] for f in families},
    out_models={f: snakemake.output[f"{f}_model"] for f in families},
    out_exclusions=snakemake.output.exclusions,
    out_harmonisation=snakemake.output.harmonisation,
)
