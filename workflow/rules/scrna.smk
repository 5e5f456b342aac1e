"""Single-cell RNA-seq: QC per sample, integration, cell types, composition by subtype
(DESIGN.md: scrna).

One QC job per sample, so a new sample reruns its own QC and the joint steps; integration,
clustering and annotation need every sample at once.
"""

if SCRNA:

    wildcard_constraints:
        sample="|".join(SCRNA_SAMPLES),

    rule scrna_qc:
        """Cells' counts, genes and mitochondrial share, Scrublet doublets (one sample)."""
        input:
            counts=scrna_sample_path,
            code=rdls_sources("scrna.steps", "scrna.qc", "scrna._io", "scrna._settings"),
        output:
            h5ad="results/scrna/qc/{sample}.h5ad",
            metrics="results/scrna/qc/{sample}.tsv",
            figure=report(
                "results/scrna/qc/{sample}.png",
                caption="../report/scrna_qc.rst",
                category="Single-cell RNA-seq",
                subcategory="QC",
                labels={"sample": "{sample}"},
            ),
        log:
            "logs/scrna/qc/{sample}.log",
        benchmark:
            "benchmarks/scrna/qc/{sample}.tsv"
        conda:
            "../envs/scrna.yaml"
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            row=scrna_sample_row,
            settings=config["scrna"]["qc"],
            seed=config["seed"],
            allow_exclusions=ALLOW_EXCLUSIONS,
        script:
            "../scripts/scrna_qc.py"

    rule scrna_qc_summary:
        """Every sample's QC numbers in one table; the excluded samples with their reasons."""
        input:
            metrics=expand("results/scrna/qc/{sample}.tsv", sample=SCRNA_SAMPLES),
            code=rdls_sources("scrna.steps"),
        output:
            summary=report(
                "results/scrna/qc/summary.tsv",
                caption="../report/scrna_qc.rst",
                category="Single-cell RNA-seq",
                subcategory="QC",
                labels={"table": "QC per sample"},
            ),
            exclusions="results/scrna/qc_exclusions.tsv",
        log:
            "logs/scrna/qc/summary.log",
        benchmark:
            "benchmarks/scrna/qc/summary.tsv"
        conda:
            "../envs/scrna.yaml"
        script:
            "../scripts/scrna_qc_summary.py"

    rule scrna_integrate:
        """Normalise, variable genes, PCA, Harmony across patients, Leiden clusters, UMAP."""
        input:
            h5ad=expand("results/scrna/qc/{sample}.h5ad", sample=SCRNA_SAMPLES),
            code=rdls_sources("scrna.steps", "scrna.integrate", "scrna._settings", "scrna._plots"),
        output:
            h5ad="results/scrna/integrated.h5ad",
            umap=report(
                "results/scrna/umap.png",
                caption="../report/scrna_integrate.rst",
                category="Single-cell RNA-seq",
                labels={"figure": "UMAP by sample and cluster"},
            ),
        log:
            "logs/scrna/integrate.log",
        benchmark:
            "benchmarks/scrna/integrate.tsv"
        conda:
            "../envs/scrna.yaml"
        threads: 2
        resources:
            mem_mb=8000,
            runtime=60,
        params:
            samples=SCRNA_SAMPLES,
            settings=config["scrna"]["integrate"],
            seed=config["seed"],
        script:
            "../scripts/scrna_integrate.py"

    rule scrna_annotate:
        """results/scrna/annotated.h5ad: cell types from marker genes, by cluster majority."""
        input:
            h5ad="results/scrna/integrated.h5ad",
            markers=resource(config["scrna"]["markers"]),
            assignments=scrna_assignments(),
            code=rdls_sources("scrna.steps", "scrna.annotate", "scrna._settings", "scrna._plots"),
        output:
            h5ad="results/scrna/annotated.h5ad",
            cell_types=report(
                "results/scrna/cell_types.tsv",
                caption="../report/scrna_annotate.rst",
                category="Single-cell RNA-seq",
                labels={"table": "cell type per cluster"},
            ),
            dotplot=report(
                "results/scrna/dotplot.png",
                caption="../report/scrna_annotate.rst",
                category="Single-cell RNA-seq",
                labels={"figure": "marker dot plot"},
            ),
        log:
            "logs/scrna/annotate.log",
        benchmark:
            "benchmarks/scrna/annotate.tsv"
        conda:
            "../envs/scrna.yaml"
        resources:
            mem_mb=8000,
            runtime=30,
        params:
            settings=config["scrna"]["annotate"],
            seed=config["seed"],
        script:
            "../scripts/scrna_annotate.py"

    if SUBTYPES:

        rule scrna_by_subtype:
            """Cell-type composition per sample by subtype; bulk subtype signatures on cells."""
            input:
                h5ad="results/scrna/annotated.h5ad",
                signatures=scrna_signature_tables,
                code=rdls_sources("scrna.steps", "scrna.composition", "scrna._plots", "compare"),
            output:
                composition=report(
                    "results/scrna/by_subtype/composition.tsv",
                    caption="../report/scrna_by_subtype.rst",
                    category="Single-cell RNA-seq",
                    subcategory="By subtype",
                    labels={"table": "composition per sample"},
                ),
                tests=report(
                    "results/scrna/by_subtype/tests.tsv",
                    caption="../report/scrna_by_subtype.rst",
                    category="Single-cell RNA-seq",
                    subcategory="By subtype",
                    labels={"table": "composition tests"},
                ),
                bars=report(
                    "results/scrna/by_subtype/composition.png",
                    caption="../report/scrna_by_subtype.rst",
                    category="Single-cell RNA-seq",
                    subcategory="By subtype",
                    labels={"figure": "composition by subtype"},
                ),
                signature_scores="results/scrna/by_subtype/signature_scores.tsv",
                signature_figure=report(
                    "results/scrna/by_subtype/signature_scores.png",
                    caption="../report/scrna_by_subtype.rst",
                    category="Single-cell RNA-seq",
                    subcategory="By subtype",
                    labels={"figure": "subtype signatures on cells"},
                ),
            log:
                "logs/scrna/by_subtype.log",
            benchmark:
                "benchmarks/scrna/by_subtype.tsv"
            conda:
                "../envs/scrna.yaml"
            resources:
                mem_mb=4000,
                runtime=30,
            params:
                settings=config["scrna"]["by_subtype"],
                seed=config["seed"],
            script:
                "../scripts/scrna_by_subtype.py"
