"""Whole-slide images: tissue and QC, tiles, lymphocytes and stroma per slide (DESIGN.md: wsi).

One job per slide for tissue detection and for quantification (parallel inside the slide
with the job's threads, wsi.quantify.threads); the summary and the comparison by subtype
read every slide.
"""

if WSI:

    wildcard_constraints:
        slide="|".join(SLIDE_IDS),

    rule wsi_tissue:
        """Tissue mask, QC flags, thumbnail and tile grid of one slide."""
        input:
            slide=slide_path,
            code=rdls_sources("wsi.slide", "wsi.steps", "errors"),
        output:
            tiles="results/wsi/tiles/{slide}.parquet",
            status="results/wsi/tiles/{slide}.tsv",
            thumbnail=report(
                "results/wsi/thumbnails/{slide}.png",
                caption="../report/wsi_thumbnail.rst",
                category="Whole-slide images",
                subcategory="Tissue and QC",
                labels={"slide": "{slide}"},
            ),
        log:
            "logs/wsi/tiles/{slide}.log",
        benchmark:
            "benchmarks/wsi/tiles/{slide}.tsv"
        conda:
            "../envs/wsi.yaml"
        resources:
            mem_mb=2000,
            runtime=20,
        params:
            mpp=slide_mpp,
            settings=config["wsi"],
            allow_exclusions=ALLOW_EXCLUSIONS,
        script:
            "../scripts/wsi_tissue.py"

    rule wsi_quantify:
        """Every nucleus classified and placed in its compartment; the slide's metrics."""
        input:
            slide=slide_path,
            tiles="results/wsi/tiles/{slide}.parquet",
            status="results/wsi/tiles/{slide}.tsv",
            classifier=wsi_classifier_checkpoint,
            code=rdls_sources(
                "wsi.tiles",
                "wsi.nuclei",
                "wsi.compartments",
                "wsi.metrics",
                "wsi.slide",
                "wsi.steps",
                "wsi.classifier",
            ),
        output:
            tiles="results/wsi/quantified/{slide}.parquet",
            nuclei="results/wsi/nuclei/{slide}.parquet",
            metrics="results/wsi/quantified/{slide}.tsv",
            heatmap=report(
                "results/wsi/heatmaps/{slide}.png",
                caption="../report/wsi_heatmap.rst",
                category="Whole-slide images",
                subcategory="Heatmaps",
                labels={"slide": "{slide}"},
            ),
        log:
            "logs/wsi/quantified/{slide}.log",
        benchmark:
            "benchmarks/wsi/quantified/{slide}.tsv"
        conda:
            "../envs/wsi.yaml"
        threads: config["wsi"]["quantify"]["threads"]
        resources:
            mem_mb=3000,
            runtime=60,
        params:
            mpp=slide_mpp,
            settings=config["wsi"],
            allow_exclusions=ALLOW_EXCLUSIONS,
        script:
            "../scripts/wsi_quantify.py"

    rule wsi_summary:
        """results/wsi/slide_metrics.tsv: one row per slide, QC flags and exclusions."""
        input:
            metrics=expand("results/wsi/quantified/{slide}.tsv", slide=SLIDE_IDS),
            status=expand("results/wsi/tiles/{slide}.tsv", slide=SLIDE_IDS),
            slides=SHEETS["slides"],
            code=rdls_sources("wsi.steps"),
        output:
            metrics=report(
                "results/wsi/slide_metrics.tsv",
                caption="../report/wsi_metrics.rst",
                category="Whole-slide images",
                labels={"table": "slide metrics"},
            ),
            exclusions="results/wsi/qc_exclusions.tsv",
        log:
            "logs/wsi/summary.log",
        benchmark:
            "benchmarks/wsi/summary.tsv"
        conda:
            "../envs/wsi.yaml"
        script:
            "../scripts/wsi_summary.py"

    if SUBTYPES:

        rule wsi_by_subtype:
            """Slide metrics by subtype: Kruskal-Wallis, pairwise tests and boxplots."""
            input:
                metrics="results/wsi/slide_metrics.tsv",
                assignments="results/subtypes/assignments.tsv",
                code=rdls_sources("wsi.metrics", "wsi.steps", "compare"),
            output:
                table=report(
                    "results/wsi/by_subtype.tsv",
                    caption="../report/wsi_by_subtype.rst",
                    category="Whole-slide images",
                    labels={"table": "metrics by subtype"},
                ),
                figure=report(
                    "results/wsi/by_subtype.png",
                    caption="../report/wsi_by_subtype.rst",
                    category="Whole-slide images",
                    labels={"figure": "metrics by subtype"},
                ),
                figure_vector="results/wsi/by_subtype.svg",
            log:
                "logs/wsi/by_subtype.log",
            benchmark:
                "benchmarks/wsi/by_subtype.tsv"
            conda:
                "../envs/wsi.yaml"
            script:
                "../scripts/wsi_by_subtype.py"
