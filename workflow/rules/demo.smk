"""The synthetic demo cohort, generated only when the config selects it (demo.activate)."""

if DEMO:

    rule demo_sheets:
        """Sample sheets and subject-level truth (subtypes, hazard coefficients) of the demo."""
        input:
            code=rdls_sources("demo._plan", "demo._generate", "demo._mri_variants"),
        output:
            sheets=list(SHEETS.values()),
            subjects_truth=demo_truth("subjects"),
            hazard_truth=demo_truth("hazard_coefficients"),
            settings_truth=demo_truth("settings"),
            proportions_truth=demo_truth("subtype_proportions"),
        log:
            "logs/demo/sheets.log",
        benchmark:
            "benchmarks/demo/sheets.tsv"
        conda:
            "../envs/demo.yaml"
        params:
            demo=DEMO_OPTIONS,
            seed=config["seed"],
        script:
            "../scripts/demo_sheets.py"

    rule demo_mri:
        """T2-weighted volumes and tumour masks of every demo subject (NIfTI, some DICOM)."""
        input:
            code=rdls_sources("demo._plan", "demo._generate", "demo._mri", "demo._mri_variants"),
        output:
            images=demo_mri_images(),
            masks=[f"{DEMO_ROOT}/{mask}" for mask in DEMO_PLAN.mri["mask"]],
            truth=demo_truth("mri"),
        log:
            "logs/demo/mri.log",
        benchmark:
            "benchmarks/demo/mri.tsv"
        conda:
            "../envs/demo.yaml"
        threads: 2
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            demo=DEMO_OPTIONS,
            seed=config["seed"],
        script:
            "../scripts/demo_mri.py"

    rule demo_slides:
        """Pyramidal H&E-like whole-slide images of the demo (tiled TIFF that OpenSlide reads)."""
        input:
            code=rdls_sources("demo._plan", "demo._generate", "demo._slides", "wsi.pyramid"),
        output:
            slides=[f"{DEMO_ROOT}/{path}" for path in DEMO_PLAN.slides["path"]],
            truth=demo_truth("slides"),
            nuclei=[
                f"{DEMO_ROOT}/truth/slide_nuclei/{slide}.parquet"
                for slide in DEMO_PLAN.slides["slide_id"]
            ],
        log:
            "logs/demo/slides.log",
        benchmark:
            "benchmarks/demo/slides.tsv"
        conda:
            "../envs/demo.yaml"
        threads: 2
        resources:
            mem_mb=4000,
            runtime=60,
        params:
            demo=DEMO_OPTIONS,
            seed=config["seed"],
        script:
            "../scripts/demo_slides.py"

    rule demo_bulk:
        """Bulk RNA-seq raw counts of the demo with planted subtype modules."""
        input:
            code=rdls_sources(
                "demo._plan", "demo._generate", "demo._genes", "demo._bulk", "demo._scrna"
            ),
        output:
            counts=BULK_COUNTS,
            truth=demo_truth("bulk_genes"),
            composition=demo_truth("bulk_composition"),
        log:
            "logs/demo/bulk.log",
        benchmark:
            "benchmarks/demo/bulk.tsv"
        conda:
            "../envs/demo.yaml"
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            demo=DEMO_OPTIONS,
            seed=config["seed"],
        script:
            "../scripts/demo_bulk.py"

    rule demo_scrna:
        """scRNA-seq count matrices of the demo in 10x formats, with planted cell types."""
        input:
            code=rdls_sources("demo._plan", "demo._generate", "demo._genes", "demo._scrna"),
        output:
            samples=demo_scrna_samples(),
            truth=demo_truth("scrna_cells"),
        log:
            "logs/demo/scrna.log",
        benchmark:
            "benchmarks/demo/scrna.tsv"
        conda:
            "../envs/demo.yaml"
        threads: 2
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            demo=DEMO_OPTIONS,
            seed=config["seed"],
        script:
            "../scripts/demo_scrna.py"
