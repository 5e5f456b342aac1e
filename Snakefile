"""rdls: radiomics-based deep-learning subtypes of rectal cancer (see README.md)."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/imaging.smk"
include: "workflow/rules/subtypes.smk"
include: "workflow/rules/survival.smk"
include: "workflow/rules/wsi.smk"
include: "workflow/rules/scrna.smk"
include: "workflow/rules/bulk.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/qc.smk"


rule all:
    default_target: True
    input:
        all_targets(),
