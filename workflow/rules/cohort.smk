"""Overview of the cohort as the sheets describe it."""


rule cohort_overview:
    """Subjects, modalities, events and follow-up per cohort."""
    input:
        **SHEETS,
        code=rdls_sources("cohort", "sheets", "config"),
    output:
        table=report(
            "results/cohort/overview.tsv",
            caption="../report/cohort_overview.rst",
            category="Cohort",
            labels={"table": "overview"},
        ),
        figure=report(
            "results/cohort/overview.png",
            caption="../report/cohort_overview.rst",
            category="Cohort",
            labels={"figure": "overview"},
        ),
        figure_vector="results/cohort/overview.svg",
    log:
        "logs/cohort/overview.log",
    benchmark:
        "benchmarks/cohort/overview.tsv"
    conda:
        "../envs/cohort.yaml"
    params:
        covariates=COVARIATES,
    script:
        "../scripts/cohort_overview.py"
