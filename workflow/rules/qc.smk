"""Items left out by quality control, from every branch, in one table."""


rule qc_exclusions:
    """results/qc/exclusions.tsv: item_id, kind, step and reason of every excluded item."""
    input:
        tables=qc_exclusion_tables(),
        code=rdls_sources("qc"),
    output:
        report(
            "results/qc/exclusions.tsv",
            caption="../report/qc_exclusions.rst",
            category="Cohort",
            labels={"table": "QC exclusions"},
        ),
    log:
        "logs/qc/exclusions.log",
    benchmark:
        "benchmarks/qc/exclusions.tsv"
    conda:
        "../envs/cohort.yaml"
    script:
        "../scripts/qc_exclusions.py"
