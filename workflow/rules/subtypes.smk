"""Subtypes: consensus clustering in training, names by risk, assignment everywhere else.

DESIGN.md: subtypes. The features, the clusters, the names and the classifier are all learned
on the training cohort and applied unchanged to the other cohorts.
"""

if SUBTYPES:

    rule subtype_features:
        """Features for clustering: filtered and scaled on training, applied to all."""
        input:
            **subtype_feature_tables(),
            subjects=SHEETS["subjects"],
            code=rdls_sources("subtypes.selection", "subtypes.steps"),
        output:
            features="results/subtypes/features/selected.parquet",
            selection="results/subtypes/features/selection.json",
            table=report(
                "results/subtypes/features/selection.tsv",
                caption="../report/subtype_features.rst",
                category="Subtypes",
                labels={"table": "feature selection"},
            ),
        log:
            "logs/subtypes/features.log",
        benchmark:
            "benchmarks/subtypes/features.tsv"
        conda:
            "../envs/subtypes.yaml"
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            families=config["subtypes"]["families"],
            settings=config["subtypes"]["selection"],
        script:
            "../scripts/subtype_features.py"

    rule subtype_consensus:
        """Consensus clustering of the training cohort for every k, tested against a null
        without clusters; k (or no subtypes), names and each subtype's stability."""
        input:
            features="results/subtypes/features/selected.parquet",
            subjects=SHEETS["subjects"],
            code=rdls_sources(
                "subtypes.consensus",
                "subtypes.structure",
                "subtypes.separation",
                "subtypes.stability",
                "subtypes.naming",
                "subtypes._consensus_plots",
                "subtypes.steps",
            ),
        output:
            summary=report(
                "results/subtypes/consensus/summary.tsv",
                caption="../report/subtype_consensus.rst",
                category="Subtypes",
                subcategory="Consensus clustering",
                labels={"table": "PAC against the null, RCSI and p-value by k"},
            ),
            structure=report(
                "results/subtypes/consensus/structure.json",
                caption="../report/subtype_consensus.rst",
                category="Subtypes",
                subcategory="Consensus clustering",
                labels={"table": "subtypes or no structure, with the numbers"},
            ),
            stability=report(
                "results/subtypes/consensus/stability.tsv",
                caption="../report/subtype_consensus.rst",
                category="Subtypes",
                subcategory="Consensus clustering",
                labels={"table": "bootstrap stability of each subtype (Jaccard)"},
            ),
            cdf="results/subtypes/consensus/cdf.tsv",
            labels="results/subtypes/consensus/labels.tsv",
            training=report(
                "results/subtypes/consensus/training_subtypes.tsv",
                caption="../report/subtype_consensus.rst",
                category="Subtypes",
                subcategory="Consensus clustering",
                labels={"table": "training subtypes and their recurrence rates"},
            ),
            rates=report(
                "results/subtypes/consensus/subtype_rates.tsv",
                caption="../report/subtype_consensus.rst",
                category="Subtypes",
                subcategory="Consensus clustering",
                labels={"table": "recurrence rate of each subtype (naming rule)"},
            ),
            heatmaps=report(
                "results/subtypes/consensus/heatmaps.png",
                caption="../report/subtype_consensus.rst",
                category="Subtypes",
                subcategory="Consensus clustering",
                labels={"figure": "consensus matrices"},
            ),
            heatmaps_vector="results/subtypes/consensus/heatmaps.svg",
            cdf_figure=report(
                "results/subtypes/consensus/cdf.png",
                caption="../report/subtype_consensus.rst",
                category="Subtypes",
                subcategory="Consensus clustering",
                labels={"figure": "consensus CDF"},
            ),
            cdf_vector="results/subtypes/consensus/cdf.svg",
            k_figure=report(
                "results/subtypes/consensus/k_selection.png",
                caption="../report/subtype_consensus.rst",
                category="Subtypes",
                subcategory="Consensus clustering",
                labels={"figure": "choice of k"},
            ),
            k_vector="results/subtypes/consensus/k_selection.svg",
        log:
            "logs/subtypes/consensus.log",
        benchmark:
            "benchmarks/subtypes/consensus.tsv"
        conda:
            "../envs/subtypes.yaml"
        # the null datasets are clustered in parallel
        threads: 4
        resources:
            mem_mb=4000,
            runtime=60,
        params:
            settings=config["subtypes"]["consensus"],
            seed=config["seed"],
        script:
            "../scripts/subtype_consensus.py"

    rule subtype_classifier:
        """The classifier that assigns subtypes outside training, chosen by cross-validation."""
        input:
            features="results/subtypes/features/selected.parquet",
            training="results/subtypes/consensus/training_subtypes.tsv",
            # Without significant subtypes no classifier is fitted; its file says why.
            structure="results/subtypes/consensus/structure.json",
            code=rdls_sources(
                "subtypes.classifier",
                "subtypes.calibration",
                "subtypes._classifier_plots",
                "subtypes.no_structure",
                "subtypes.steps",
                "compare",
            ),
        output:
            model="results/subtypes/classifier/model.joblib",
            cv=report(
                "results/subtypes/classifier/cross_validation.tsv",
                caption="../report/subtype_assignment.rst",
                category="Subtypes",
                subcategory="Assignment",
                labels={"table": "classifier cross-validation"},
            ),
            calibration=report(
                "results/subtypes/classifier/calibration.tsv",
                caption="../report/subtype_calibration.rst",
                category="Subtypes",
                subcategory="Assignment",
                labels={"table": "calibration: Brier score, log-loss, ECE"},
            ),
            reliability="results/subtypes/classifier/reliability.tsv",
            reliability_figure=report(
                "results/subtypes/classifier/reliability.png",
                caption="../report/subtype_calibration.rst",
                category="Subtypes",
                subcategory="Assignment",
                labels={"figure": "reliability diagram"},
            ),
            reliability_vector="results/subtypes/classifier/reliability.svg",
        log:
            "logs/subtypes/classifier.log",
        benchmark:
            "benchmarks/subtypes/classifier.tsv"
        conda:
            "../envs/subtypes.yaml"
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            settings=config["subtypes"]["classifier"],
            seed=config["seed"],
        script:
            "../scripts/subtype_classifier.py"

    # A checkpoint: the bulk contrasts depend on the subtypes it finds.
    checkpoint subtype_assign:
        """results/subtypes/assignments.tsv, with agreement checks in each other cohort."""
        input:
            features="results/subtypes/features/selected.parquet",
            training="results/subtypes/consensus/training_subtypes.tsv",
            model="results/subtypes/classifier/model.joblib",
            code=rdls_sources(
                "subtypes.classifier",
                "subtypes.calibration",
                "subtypes.consensus",
                "subtypes.no_structure",
                "subtypes.steps",
                "compare",
            ),
        output:
            assignments=report(
                "results/subtypes/assignments.tsv",
                caption="../report/subtype_assignment.rst",
                category="Subtypes",
                subcategory="Assignment",
                labels={"table": "subtype of every subject"},
            ),
            agreement=report(
                "results/subtypes/agreement.tsv",
                caption="../report/subtype_assignment.rst",
                category="Subtypes",
                subcategory="Assignment",
                labels={"table": "agreement with independent clustering"},
            ),
            igp=report(
                "results/subtypes/in_group_proportion.tsv",
                caption="../report/subtype_assignment.rst",
                category="Subtypes",
                subcategory="Assignment",
                labels={"table": "in-group proportion"},
            ),
        log:
            "logs/subtypes/assign.log",
        benchmark:
            "benchmarks/subtypes/assign.tsv"
        conda:
            "../envs/subtypes.yaml"
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            consensus=config["subtypes"]["consensus"],
            reps=config["subtypes"]["validation_reps"],
            seed=config["seed"],
        script:
            "../scripts/subtype_assign.py"

    rule subtype_table_one:
        """Table 1: clinical characteristics by subtype in each cohort, with tests."""
        input:
            assignments="results/subtypes/assignments.tsv",
            subjects=SHEETS["subjects"],
            code=rdls_sources("subtypes.table_one", "subtypes.steps", "compare"),
        output:
            table=report(
                "results/subtypes/table_one.tsv",
                caption="../report/subtype_table_one.rst",
                category="Subtypes",
                labels={"table": "Table 1 (TSV)"},
            ),
            html=report(
                "results/subtypes/table_one.html",
                caption="../report/subtype_table_one.rst",
                category="Subtypes",
                labels={"table": "Table 1"},
            ),
        log:
            "logs/subtypes/table_one.log",
        benchmark:
            "benchmarks/subtypes/table_one.tsv"
        conda:
            "../envs/subtypes.yaml"
        params:
            covariates=COVARIATES,
        script:
            "../scripts/subtype_table_one.py"
