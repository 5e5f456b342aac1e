"""Scoring new subjects with the locked models (DESIGN.md: predict).

`snakemake predict --config predict='{subjects: new.tsv}'` runs the run's imaging steps on the
subjects of that sheet and applies, unchanged, everything the run fitted and saved: the ComBat
model of each family (a centre the run did not have is estimated from the sheet's subjects at
it), the stability filter, the subtype feature selection and classifier, the RRS with its
cut-off and the clinical + RRS model. It never retrains: the saved files are inputs, so the
run's own rules make them first where they are missing.
"""

if SUBTYPES:

    rule predict:
        """Subtype, confidence, RRS, risk group and recurrence probability of new subjects."""
        input:
            unpack(predict_sheet_inputs),
            **predict_harmonisation_models(),
            **predict_survival_models(),
            selection="results/subtypes/features/selection.json",
            classifier="results/subtypes/classifier/model.joblib",
            checkpoint="results/imaging/encoder/encoder.pt",
            params=config["imaging"]["radiomics"]["params"],
            code=rdls_sources(
                "predict.steps",
                "predict.sheet",
                "predict.harmonise",
                "imaging.harmonise",
                "imaging.steps",
                "subtypes.selection",
                "subtypes.classifier",
                "survival.rrs",
                "survival.compare",
                "survival.cox",
            ),
        output:
            predictions=report(
                "results/predict/predictions.tsv",
                caption="../report/predict.rst",
                category="Prediction",
                labels={"table": "new subjects scored with the locked models"},
            ),
            harmonisation="results/predict/harmonisation.tsv",
            work=directory("results/predict/work"),
        log:
            "logs/predict/score.log",
        benchmark:
            "benchmarks/predict/score.tsv"
        conda:
            "../envs/predict.yaml"
        resources:
            mem_mb=4000,
            runtime=60,
        params:
            families=config["subtypes"]["families"],
            covariates=COVARIATES,
            imaging={key: config["imaging"][key] for key in ("ingest", "preprocess", "encoder")},
            allow_exclusions=ALLOW_EXCLUSIONS,
            unseen_centre=PREDICT["unseen_centre"],
            min_subjects_per_centre=config["imaging"]["harmonisation"]["min_subjects_per_centre"],
        script:
            "../scripts/predict_score.py"
