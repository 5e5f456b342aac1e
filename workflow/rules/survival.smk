"""Survival: Kaplan-Meier and Cox by subtype, the recurrence risk score, model comparison.

DESIGN.md: survival. Every model (Cox, RRS coefficients and cut-off, the clinical models) is
fitted on the training cohort and applied unchanged to the validation cohorts.
"""

if SURVIVAL:

    wildcard_constraints:
        survival_cohort="|".join(SURVIVAL_COHORTS),

    rule survival_km:
        """Kaplan-Meier curves by subtype with numbers at risk and log-rank tests (one cohort)."""
        input:
            assignments="results/subtypes/assignments.tsv",
            subjects=SHEETS["subjects"],
            code=rdls_sources("survival.km", "survival._plots", "survival.steps", "compare"),
        output:
            figure=report(
                "results/survival/km/{survival_cohort}.png",
                caption="../report/survival_km.rst",
                category="Survival",
                subcategory="Kaplan-Meier by subtype",
                labels={"cohort": "{survival_cohort}"},
            ),
            figure_vector="results/survival/km/{survival_cohort}.svg",
            curves="results/survival/km/{survival_cohort}_curves.tsv",
            at_risk="results/survival/km/{survival_cohort}_at_risk.tsv",
            logrank=report(
                "results/survival/km/{survival_cohort}_logrank.tsv",
                caption="../report/survival_km.rst",
                category="Survival",
                subcategory="Kaplan-Meier by subtype",
                labels={"cohort": "{survival_cohort}", "table": "log-rank tests"},
            ),
            summary=report(
                "results/survival/km/{survival_cohort}_summary.tsv",
                caption="../report/survival_km.rst",
                category="Survival",
                subcategory="Kaplan-Meier by subtype",
                labels={"cohort": "{survival_cohort}", "table": "median and horizon RFS"},
            ),
        log:
            "logs/survival/km/{survival_cohort}.log",
        benchmark:
            "benchmarks/survival/km/{survival_cohort}.tsv"
        conda:
            "../envs/survival.yaml"
        params:
            settings=config["survival"],
        script:
            "../scripts/survival_km.py"

    rule survival_cox:
        """Multivariable Cox model (subtype + clinical covariates) in each cohort."""
        input:
            assignments="results/subtypes/assignments.tsv",
            subjects=SHEETS["subjects"],
            code=rdls_sources(
                "survival.cox",
                "survival.ph_test",
                "survival.firth",
                "survival.imputation",
                "survival.km",
                "survival._plots",
                "survival.steps",
                "compare",
            ),
        output:
            table=report(
                "results/survival/cox/hazard_ratios.tsv",
                caption="../report/survival_cox.rst",
                category="Survival",
                subcategory="Multivariable Cox",
                labels={"table": "hazard ratios"},
            ),
            ph_test=report(
                "results/survival/cox/proportional_hazards.tsv",
                caption="../report/survival_cox.rst",
                category="Survival",
                subcategory="Multivariable Cox",
                labels={"table": "proportional-hazards check"},
            ),
            forest=report(
                "results/survival/cox/forest.png",
                caption="../report/survival_cox.rst",
                category="Survival",
                subcategory="Multivariable Cox",
                labels={"figure": "forest plot"},
            ),
            forest_vector="results/survival/cox/forest.svg",
        log:
            "logs/survival/cox.log",
        benchmark:
            "benchmarks/survival/cox.tsv"
        conda:
            "../envs/survival.yaml"
        params:
            covariates=COVARIATES,
            cohorts=SURVIVAL_COHORTS,
            settings=config["survival"],
            seed=config["seed"],
        script:
            "../scripts/survival_cox.py"

    rule rrs_fit:
        """The recurrence risk score: Coxnet on RDLS1 features, coefficients and cut-off locked."""
        input:
            features="results/subtypes/features/selected.parquet",
            assignments="results/subtypes/assignments.tsv",
            subjects=SHEETS["subjects"],
            code=rdls_sources(
                "survival.rrs",
                "survival.km",
                "survival._compare_plots",
                "survival._plots",
                "survival.steps",
                "compare",
            ),
        output:
            model="results/survival/rrs/model.json",
            candidates=report(
                "results/survival/rrs/candidate_features.tsv",
                caption="../report/survival_rrs.rst",
                category="Survival",
                subcategory="Recurrence risk score",
                labels={"table": "candidate features (RDLS1 vs rest)"},
            ),
            coefficients=report(
                "results/survival/rrs/coefficients.tsv",
                caption="../report/survival_rrs.rst",
                category="Survival",
                subcategory="Recurrence risk score",
                labels={"table": "locked coefficients"},
            ),
            cv="results/survival/rrs/cross_validation.tsv",
            cv_figure=report(
                "results/survival/rrs/cross_validation.png",
                caption="../report/survival_rrs.rst",
                category="Survival",
                subcategory="Recurrence risk score",
                labels={"figure": "penalty by cross-validation"},
            ),
            cv_vector="results/survival/rrs/cross_validation.svg",
            cutoff_scan="results/survival/rrs/cutoff_scan.tsv",
            frequency=report(
                "results/survival/rrs/selection_frequency.tsv",
                caption="../report/survival_rrs.rst",
                category="Survival",
                subcategory="Recurrence risk score",
                labels={"table": "selection over repeated cross-validation"},
            ),
        log:
            "logs/survival/rrs_fit.log",
        benchmark:
            "benchmarks/survival/rrs_fit.tsv"
        conda:
            "../envs/survival.yaml"
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            settings=config["survival"]["rrs"],
            seed=config["seed"],
        script:
            "../scripts/rrs_fit.py"

    rule rrs_score:
        """RRS and risk group of every subject; hazard ratio and log-rank of the groups."""
        input:
            features="results/subtypes/features/selected.parquet",
            model="results/survival/rrs/model.json",
            subjects=SHEETS["subjects"],
            code=rdls_sources(
                "survival.rrs",
                "survival.km",
                "survival.cox",
                "survival.ph_test",
                "survival.firth",
                "survival.steps",
            ),
        output:
            scores=report(
                "results/survival/risk_scores.tsv",
                caption="../report/survival_rrs.rst",
                category="Survival",
                subcategory="Recurrence risk score",
                labels={"table": "RRS of every subject"},
            ),
            groups=report(
                "results/survival/rrs/groups.tsv",
                caption="../report/survival_rrs.rst",
                category="Survival",
                subcategory="Recurrence risk score",
                labels={"table": "RRS groups: HR and log-rank"},
            ),
        log:
            "logs/survival/rrs_score.log",
        benchmark:
            "benchmarks/survival/rrs_score.tsv"
        conda:
            "../envs/survival.yaml"
        params:
            cohorts=SURVIVAL_COHORTS,
        script:
            "../scripts/rrs_score.py"

    rule rrs_km:
        """Kaplan-Meier curves of the low and high RRS groups (one cohort)."""
        input:
            scores="results/survival/risk_scores.tsv",
            groups="results/survival/rrs/groups.tsv",
            subjects=SHEETS["subjects"],
            code=rdls_sources("survival._plots", "survival.steps"),
        output:
            figure=report(
                "results/survival/rrs/km_{survival_cohort}.png",
                caption="../report/survival_rrs.rst",
                category="Survival",
                subcategory="Recurrence risk score",
                labels={"cohort": "{survival_cohort}", "figure": "Kaplan-Meier by RRS group"},
            ),
            figure_vector="results/survival/rrs/km_{survival_cohort}.svg",
        log:
            "logs/survival/rrs_km/{survival_cohort}.log",
        benchmark:
            "benchmarks/survival/rrs_km/{survival_cohort}.tsv"
        conda:
            "../envs/survival.yaml"
        params:
            settings=config["survival"],
        script:
            "../scripts/rrs_km.py"

    rule survival_compare_models:
        """Clinical model vs clinical + RRS: time-dependent AUC, C-index, calibration, DCA."""
        input:
            scores="results/survival/risk_scores.tsv",
            rrs_model="results/survival/rrs/model.json",
            features="results/subtypes/features/selected.parquet",
            assignments="results/subtypes/assignments.tsv",
            radiomics="results/imaging/features/unharmonised/radiomics.parquet",
            subjects=SHEETS["subjects"],
            code=rdls_sources(
                "survival.compare",
                "survival.rrs",
                "survival.td_auc",
                "survival.optimism",
                "survival.calibration",
                "survival._efron",
                "survival.nomogram",
                "survival._compare_plots",
                "survival.cox",
                "survival.steps",
            ),
        output:
            models="results/survival/comparison/models.tsv",
            locked="results/survival/comparison/locked_models.json",
            predictions="results/survival/comparison/predictions.tsv",
            auc=report(
                "results/survival/comparison/auc.tsv",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"table": "time-dependent AUC"},
            ),
            auc_difference=report(
                "results/survival/comparison/auc_difference.tsv",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"table": "paired AUC difference"},
            ),
            optimism=report(
                "results/survival/comparison/optimism.tsv",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"table": "training: apparent and optimism-corrected"},
            ),
            cindex=report(
                "results/survival/comparison/cindex.tsv",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"table": "C-index (Harrell, Uno)"},
            ),
            calibration="results/survival/comparison/calibration.tsv",
            calibration_summary=report(
                "results/survival/comparison/calibration_summary.tsv",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"table": "calibration slope, observed/expected, ICI"},
            ),
            calibration_curve="results/survival/comparison/calibration_curve.tsv",
            decision_curve="results/survival/comparison/decision_curve.tsv",
            roc="results/survival/comparison/roc.tsv",
            auc_figure=report(
                "results/survival/comparison/auc.png",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"figure": "AUC with 95% CI"},
            ),
            roc_figure=report(
                "results/survival/comparison/roc.png",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"figure": "ROC at the horizon"},
            ),
            calibration_figure=report(
                "results/survival/comparison/calibration.png",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"figure": "calibration at the horizon"},
            ),
            decision_figure=report(
                "results/survival/comparison/decision_curve.png",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"figure": "decision curves"},
            ),
            vectors=multiext(
                "results/survival/comparison/",
                "auc.svg",
                "roc.svg",
                "calibration.svg",
                "decision_curve.svg",
                "nomogram.svg",
            ),
            nomogram=report(
                "results/survival/comparison/nomogram.png",
                caption="../report/survival_comparison.rst",
                category="Survival",
                subcategory="Clinical vs clinical + RRS",
                labels={"figure": "nomogram of the locked model"},
            ),
        log:
            "logs/survival/compare_models.log",
        benchmark:
            "benchmarks/survival/compare_models.tsv"
        conda:
            "../envs/survival.yaml"
        threads: 2
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            covariates=COVARIATES,
            cohorts=SURVIVAL_COHORTS,
            settings=config["survival"],
            seed=config["seed"],
        script:
            "../scripts/survival_compare_models.py"
