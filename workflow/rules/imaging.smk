"""Imaging branch: MRI and tumour mask -> radiomic and deep features (DESIGN.md: imaging).

Per-subject steps run per shard of subjects ({shard} = <cohort>-<nn>); the encoder is trained
once, on the training cohort's shards only, so a new validation subject reruns its own shard
and the aggregates but never the encoder.
"""

if IMAGING:

    wildcard_constraints:
        shard="|".join(MRI_SHARDS) or "no-shard",
        cohort="|".join(MRI_COHORTS) or "no-cohort",

    rule mri_ingest:
        """Read, check and canonically orient each subject's MRI and mask (one shard)."""
        input:
            unpack(mri_shard_files),
            code=rdls_sources("imaging.ingest", "imaging.steps", "errors"),
        output:
            folder=directory("results/imaging/ingested/{shard}"),
            table="results/imaging/ingested/{shard}.tsv",
        log:
            "logs/imaging/ingested/{shard}.log",
        benchmark:
            "benchmarks/imaging/ingested/{shard}.tsv"
        priority: 2
        conda:
            "../envs/imaging.yaml"
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            subjects=mri_shard_rows,
            settings=config["imaging"]["ingest"],
            allow_exclusions=ALLOW_EXCLUSIONS,
        script:
            "../scripts/mri_ingest.py"

    rule mri_preprocess:
        """Resample, normalise and crop around the tumour: the encoder's input (one shard)."""
        input:
            folder="results/imaging/ingested/{shard}",
            table="results/imaging/ingested/{shard}.tsv",
            code=rdls_sources("imaging.preprocess", "imaging.steps"),
        output:
            crops="results/imaging/crops/{shard}.npz",
            table="results/imaging/crops/{shard}.tsv",
        log:
            "logs/imaging/crops/{shard}.log",
        benchmark:
            "benchmarks/imaging/crops/{shard}.tsv"
        priority: 2
        conda:
            "../envs/imaging.yaml"
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            settings=config["imaging"]["preprocess"],
            allow_exclusions=ALLOW_EXCLUSIONS,
        script:
            "../scripts/mri_preprocess.py"

    rule mri_radiomics:
        """pyradiomics features of each subject (one shard)."""
        input:
            folder="results/imaging/ingested/{shard}",
            table="results/imaging/ingested/{shard}.tsv",
            params=config["imaging"]["radiomics"]["params"],
            code=rdls_sources("imaging.radiomics", "imaging.steps"),
        output:
            features="results/imaging/radiomics/{shard}.parquet",
            table="results/imaging/radiomics/{shard}.tsv",
        log:
            "logs/imaging/radiomics/{shard}.log",
        benchmark:
            "benchmarks/imaging/radiomics/{shard}.tsv"
        conda:
            "../envs/imaging.yaml"
        resources:
            mem_mb=2000,
            runtime=60,
        params:
            allow_exclusions=ALLOW_EXCLUSIONS,
        script:
            "../scripts/mri_radiomics.py"

    rule mri_train_encoder:
        """Self-supervised 3D encoder, trained by whole-tumour contrast on the training cohort."""
        input:
            **encoder_training_inputs(),
            code=rdls_sources("imaging.encoder", "imaging._network", "imaging.steps"),
        output:
            checkpoint="results/imaging/encoder/encoder.pt",
            curve=report(
                "results/imaging/encoder/training_curve.tsv",
                caption="../report/imaging_training_curve.rst",
                category="Imaging",
                labels={"table": "encoder training curve"},
            ),
            figure=report(
                "results/imaging/encoder/training_curve.png",
                caption="../report/imaging_training_curve.rst",
                category="Imaging",
                labels={"figure": "encoder training curve"},
            ),
            figure_vector="results/imaging/encoder/training_curve.svg",
        log:
            "logs/imaging/encoder/train.log",
        benchmark:
            "benchmarks/imaging/encoder/train.tsv"
        priority: 3
        conda:
            "../envs/imaging.yaml"
        # One thread: small 3D convolutions gain little from a second one, and the other
        # core meanwhile runs the radiomics jobs; the training cohort's crops come first
        # (priority) so that training starts early.
        threads: 1
        resources:
            mem_mb=4000,
            runtime=120,
            gpu=1 if config["imaging"]["encoder"]["device"] == "cuda" else 0,
        params:
            settings={k: v for k, v in config["imaging"]["encoder"].items() if k != "checkpoint"},
            seed=config["seed"],
        script:
            "../scripts/mri_train_encoder.py"

    rule mri_embed:
        """Deep features of each subject with the frozen encoder (one shard)."""
        input:
            crops="results/imaging/crops/{shard}.npz",
            checkpoint="results/imaging/encoder/encoder.pt",
            code=rdls_sources("imaging.encoder", "imaging._network", "imaging.steps"),
        output:
            features="results/imaging/embeddings/{shard}.parquet",
        log:
            "logs/imaging/embeddings/{shard}.log",
        benchmark:
            "benchmarks/imaging/embeddings/{shard}.tsv"
        conda:
            "../envs/imaging.yaml"
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            settings={k: v for k, v in config["imaging"]["encoder"].items() if k != "checkpoint"},
        script:
            "../scripts/mri_embed.py"

    rule mri_montage:
        """QC montage of every subject's tumour crop, one per cohort."""
        input:
            crops=mri_cohort_crops,
            code=rdls_sources("imaging.preprocess", "imaging.steps"),
        output:
            report(
                "results/imaging/montages/{cohort}.png",
                caption="../report/imaging_montage.rst",
                category="Imaging",
                subcategory="Tumour crops",
                labels={"cohort": "{cohort}"},
            ),
        log:
            "logs/imaging/montages/{cohort}.log",
        benchmark:
            "benchmarks/imaging/montages/{cohort}.tsv"
        conda:
            "../envs/imaging.yaml"
        script:
            "../scripts/mri_montage.py"

    rule imaging_stability:
        """ICC of every feature under mask erosion, dilation and a simulated re-scan."""
        input:
            tables=mri_shard_outputs("results/imaging/ingested/{shard}.tsv", cohort="training"),
            folders=mri_shard_outputs("results/imaging/ingested/{shard}", cohort="training"),
            checkpoint="results/imaging/encoder/encoder.pt",
            params=config["imaging"]["radiomics"]["params"],
            code=rdls_sources(
                "imaging.features",
                "imaging.stability",
                "imaging.radiomics",
                "imaging.encoder",
                "imaging._network",
            ),
        output:
            radiomics="results/imaging/stability/radiomics_icc.tsv",
            deep="results/imaging/stability/deep_icc.tsv",
        log:
            "logs/imaging/stability.log",
        benchmark:
            "benchmarks/imaging/stability.tsv"
        conda:
            "../envs/imaging.yaml"
        threads: 2
        resources:
            mem_mb=2000,
            runtime=60,
        params:
            preprocess=config["imaging"]["preprocess"],
            encoder={k: v for k, v in config["imaging"]["encoder"].items() if k != "checkpoint"},
            stability=config["imaging"]["stability"],
            seed=config["seed"],
        script:
            "../scripts/imaging_stability.py"

    rule imaging_features:
        """One table per feature family for all subjects: harmonised, stable features.

        ComBat is fitted on the training cohort and saved per family; every other subject is
        mapped with the saved parameters, and a centre absent from training is estimated
        from its own subjects' features.
        """
        input:
            **imaging_stability_tables(),
            subjects=SHEETS["subjects"],
            status=imaging_status_tables(),
            radiomics=mri_shard_outputs("results/imaging/radiomics/{shard}.parquet"),
            deep=mri_shard_outputs("results/imaging/embeddings/{shard}.parquet"),
            code=rdls_sources("imaging.features", "imaging.harmonise", "imaging.stability"),
        output:
            radiomics="results/imaging/features/radiomics.parquet",
            deep="results/imaging/features/deep.parquet",
            radiomics_unharmonised="results/imaging/features/unharmonised/radiomics.parquet",
            deep_unharmonised="results/imaging/features/unharmonised/deep.parquet",
            radiomics_model="results/imaging/harmonisation/radiomics.json",
            deep_model="results/imaging/harmonisation/deep.json",
            harmonisation=report(
                "results/imaging/harmonisation.tsv",
                caption="../report/imaging_features.rst",
                category="Imaging",
                labels={"table": "features, harmonisation and stability"},
            ),
            exclusions="results/imaging/qc_exclusions.tsv",
        log:
            "logs/imaging/features.log",
        benchmark:
            "benchmarks/imaging/features.tsv"
        conda:
            "../envs/imaging.yaml"
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            harmonisation=config["imaging"]["harmonisation"],
            seed=config["seed"],
        script:
            "../scripts/imaging_features.py"
