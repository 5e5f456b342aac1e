"""The subtype-biology report: every branch's results and a card per subtype, in one page.

The input function asks for every file the report shows, for the branches that run, so that
Snakemake builds them first and reruns the report when any of them changes.
"""


rule report_subtype_biology:
    """results/report/subtype_biology.html: one self-contained page of every branch's results."""
    input:
        unpack(report_subtype_biology_inputs),
        unpack(report_subtype_biology_contrasts),
        code=rdls_sources(
            "report.build",
            "report.sections",
            "report.cards",
            "report.captions",
            "report.montage",
            "report.inputs",
            "report._html",
            "report._files",
            "report.provenance",
            "compare",
        ),
    output:
        html=report(
            "results/report/subtype_biology.html",
            caption="../report/report_subtype_biology.rst",
            category="Report",
            labels={"report": "subtype biology"},
        ),
    log:
        "logs/report/subtype_biology.log",
    benchmark:
        "benchmarks/report/subtype_biology.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        branches=report_branches(),
        settings=config,
    script:
        "../scripts/report_subtype_biology.py"


RUN_STARTED = time.monotonic()


onsuccess:
    # Where to look first, and how long the run took; the job listing above is long.
    minutes = (time.monotonic() - RUN_STARTED) / 60
    page = Path("results/report/subtype_biology.html")
    where = (
        f"the subtype-biology report is {page}"
        if page.is_file()
        else "no subtype-biology report yet (target results/report/subtype_biology.html)"
    )
    print(f"rdls: finished in {minutes:.1f} min; {where}; `snakemake --report report.zip` "
          "writes Snakemake's own report.")  # fmt: skip
