"""Bulk RNA-seq: DESeq2 per contrast between subtypes, Hallmark GSEA, ESTIMATE immune and
stromal scores, deconvolution with the single-cell cell types (DESIGN.md: bulk).

The contrasts depend on how many subtypes the consensus found, so their jobs are known only
once the checkpoint subtype_assign has run; the input functions in common.smk ask it.
"""

if BULK:

    wildcard_constraints:
        contrast=r"[A-Za-z0-9.-]+_vs_[A-Za-z0-9.-]+",

    rule bulk_deseq2:
        """PyDESeq2 for one contrast: Wald tests, apeGLM shrinkage, volcano and MA plots."""
        input:
            counts=BULK_COUNTS,
            sheet=SHEETS["bulk"],
            subjects=SHEETS["subjects"],
            assignments="results/subtypes/assignments.tsv",
            code=rdls_sources("bulk.steps", "bulk.de", "bulk.counts", "bulk._plots"),
        output:
            table=report(
                "results/bulk/deseq2/{contrast}.tsv",
                caption="../report/bulk_deseq2.rst",
                category="Bulk RNA-seq",
                subcategory="Differential expression",
                labels={"contrast": "{contrast}", "table": "DESeq2 results"},
            ),
            volcano=report(
                "results/bulk/deseq2/{contrast}_volcano.png",
                caption="../report/bulk_deseq2.rst",
                category="Bulk RNA-seq",
                subcategory="Differential expression",
                labels={"contrast": "{contrast}", "figure": "volcano"},
            ),
            ma=report(
                "results/bulk/deseq2/{contrast}_ma.png",
                caption="../report/bulk_deseq2.rst",
                category="Bulk RNA-seq",
                subcategory="Differential expression",
                labels={"contrast": "{contrast}", "figure": "MA plot"},
            ),
        log:
            "logs/bulk/deseq2/{contrast}.log",
        benchmark:
            "benchmarks/bulk/deseq2/{contrast}.tsv"
        conda:
            "../envs/bulk.yaml"
        threads: 2
        resources:
            mem_mb=4000,
            runtime=60,
        params:
            settings=config["bulk"]["deseq2"],
        script:
            "../scripts/bulk_deseq2.py"

    rule bulk_de_summary:
        """Genes up and down per contrast, in one table (the contrasts the run made)."""
        input:
            tables=bulk_de_tables,
            # Says why there is no contrast where fewer than two subtypes were found.
            assignments="results/subtypes/assignments.tsv",
            code=rdls_sources("bulk.steps", "compare"),
        output:
            report(
                "results/bulk/deseq2/summary.tsv",
                caption="../report/bulk_deseq2.rst",
                category="Bulk RNA-seq",
                subcategory="Differential expression",
                labels={"table": "genes per contrast"},
            ),
        log:
            "logs/bulk/deseq2/summary.log",
        benchmark:
            "benchmarks/bulk/deseq2/summary.tsv"
        conda:
            "../envs/bulk.yaml"
        params:
            alpha=config["bulk"]["deseq2"]["alpha"],
        script:
            "../scripts/bulk_de_summary.py"

    rule bulk_overview:
        """Variance-stabilised counts: PCA by subtype, heatmap of the top genes per contrast."""
        input:
            counts=BULK_COUNTS,
            sheet=SHEETS["bulk"],
            assignments="results/subtypes/assignments.tsv",
            de_tables=bulk_de_tables,
            code=rdls_sources("bulk.steps", "bulk.de", "bulk.counts", "bulk._plots", "compare"),
        output:
            vst="results/bulk/overview/vst.parquet",
            pca=report(
                "results/bulk/overview/pca.png",
                caption="../report/bulk_overview.rst",
                category="Bulk RNA-seq",
                labels={"figure": "PCA by subtype"},
            ),
            heatmap=report(
                "results/bulk/overview/heatmap.png",
                caption="../report/bulk_overview.rst",
                category="Bulk RNA-seq",
                labels={"figure": "heatmap of top genes"},
            ),
        log:
            "logs/bulk/overview.log",
        benchmark:
            "benchmarks/bulk/overview.tsv"
        conda:
            "../envs/bulk.yaml"
        threads: 2
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            settings=config["bulk"]["overview"],
        script:
            "../scripts/bulk_overview.py"

    rule bulk_gsea:
        """Preranked GSEA of one contrast on the Hallmark gene sets."""
        input:
            table="results/bulk/deseq2/{contrast}.tsv",
            gmt=resource(config["bulk"]["gsea"]["gene_sets"]),
            code=rdls_sources("bulk.steps", "bulk.genesets", "bulk.de", "bulk._plots"),
        output:
            table=report(
                "results/bulk/gsea/{contrast}.tsv",
                caption="../report/bulk_gsea.rst",
                category="Bulk RNA-seq",
                subcategory="Hallmark GSEA",
                labels={"contrast": "{contrast}", "table": "GSEA"},
            ),
            figure=report(
                "results/bulk/gsea/{contrast}.png",
                caption="../report/bulk_gsea.rst",
                category="Bulk RNA-seq",
                subcategory="Hallmark GSEA",
                labels={"contrast": "{contrast}", "figure": "GSEA"},
            ),
        log:
            "logs/bulk/gsea/{contrast}.log",
        benchmark:
            "benchmarks/bulk/gsea/{contrast}.tsv"
        conda:
            "../envs/bulk.yaml"
        threads: 2
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            settings={k: v for k, v in config["bulk"]["gsea"].items() if k != "gene_sets"},
            seed=config["seed"],
        script:
            "../scripts/bulk_gsea.py"

    rule bulk_scores:
        """ESTIMATE immune and stromal scores per sample (ssGSEA), compared by subtype."""
        input:
            counts=BULK_COUNTS,
            sheet=SHEETS["bulk"],
            assignments="results/subtypes/assignments.tsv",
            gmt=resource(config["bulk"]["scores"]["gene_sets"]),
            code=rdls_sources(
                "bulk.steps",
                "bulk.genesets",
                "bulk.counts",
                "bulk.de",
                "compare",
                "bulk._plots",
            ),
        output:
            scores=report(
                "results/bulk/scores/scores.tsv",
                caption="../report/bulk_scores.rst",
                category="Bulk RNA-seq",
                subcategory="Immune and stromal scores",
                labels={"table": "scores per sample"},
            ),
            tests=report(
                "results/bulk/scores/tests.tsv",
                caption="../report/bulk_scores.rst",
                category="Bulk RNA-seq",
                subcategory="Immune and stromal scores",
                labels={"table": "tests by subtype"},
            ),
            figure=report(
                "results/bulk/scores/scores.png",
                caption="../report/bulk_scores.rst",
                category="Bulk RNA-seq",
                subcategory="Immune and stromal scores",
                labels={"figure": "scores by subtype"},
            ),
        log:
            "logs/bulk/scores.log",
        benchmark:
            "benchmarks/bulk/scores.tsv"
        conda:
            "../envs/bulk.yaml"
        threads: 2
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            settings={k: v for k, v in config["bulk"]["scores"].items() if k != "gene_sets"},
        script:
            "../scripts/bulk_scores.py"

    if SCRNA:

        rule bulk_deconvolve:
            """Cell-type fractions of each bulk sample by NNLS on a single-cell signature."""
            input:
                counts=BULK_COUNTS,
                sheet=SHEETS["bulk"],
                assignments="results/subtypes/assignments.tsv",
                h5ad="results/scrna/annotated.h5ad",
                code=rdls_sources(
                    "bulk.steps",
                    "bulk.deconvolution",
                    "bulk.counts",
                    "compare",
                    "bulk._plots",
                ),
            output:
                signature="results/bulk/deconvolution/signature.tsv",
                fractions=report(
                    "results/bulk/deconvolution/fractions.tsv",
                    caption="../report/bulk_deconvolution.rst",
                    category="Bulk RNA-seq",
                    subcategory="Deconvolution",
                    labels={"table": "fractions per sample"},
                ),
                tests=report(
                    "results/bulk/deconvolution/tests.tsv",
                    caption="../report/bulk_deconvolution.rst",
                    category="Bulk RNA-seq",
                    subcategory="Deconvolution",
                    labels={"table": "tests by subtype"},
                ),
                figure=report(
                    "results/bulk/deconvolution/fractions.png",
                    caption="../report/bulk_deconvolution.rst",
                    category="Bulk RNA-seq",
                    subcategory="Deconvolution",
                    labels={"figure": "fractions by subtype"},
                ),
            log:
                "logs/bulk/deconvolution.log",
            benchmark:
                "benchmarks/bulk/deconvolution.tsv"
            conda:
                "../envs/bulk.yaml"
            resources:
                mem_mb=4000,
                runtime=30,
            params:
                settings=config["bulk"]["deconvolution"],
            script:
                "../scripts/bulk_deconvolve.py"

    rule bulk_gsea_summary:
        """The leading Hallmark sets of every contrast, in one table."""
        input:
            tables=bulk_gsea_tables,
            assignments="results/subtypes/assignments.tsv",
            code=rdls_sources("bulk.steps", "compare"),
        output:
            report(
                "results/bulk/gsea/summary.tsv",
                caption="../report/bulk_gsea.rst",
                category="Bulk RNA-seq",
                subcategory="Hallmark GSEA",
                labels={"table": "leading sets per contrast"},
            ),
        log:
            "logs/bulk/gsea/summary.log",
        benchmark:
            "benchmarks/bulk/gsea/summary.tsv"
        conda:
            "../envs/bulk.yaml"
        params:
            fdr=config["bulk"]["gsea"]["plot_fdr"],
        script:
            "../scripts/bulk_gsea_summary.py"
