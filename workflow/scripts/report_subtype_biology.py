"""Rule report_subtype_biology: adapt Snakemake's arguments to rdls.report.build."""

from rdls.report.build import build_report
from rdls.runtime import log_to_file

log_to_file(snakemake.log[0])
build_report(
    inputs={name: files for name, files in snakemake.input.items() if name != "code"},
    config=snakemake.params.settings,
    branches=snakemake.params.branches,
    out_html=snakemake.output.html,
)
