"""Scoring new subjects with the models a run locked (DESIGN.md: predict).

A sheet of new subjects (``workflow/schemas/sheets/predict.schema.yaml``) goes through the
run's own imaging steps and then, unchanged, through everything the run fitted and saved: the
ComBat harmonisation (:mod:`rdls.predict.harmonise`), the stability filter, the subtype
feature selection and classifier, the recurrence risk score with its cut-off, and the
clinical + RRS Cox model.
Nothing is refitted. :mod:`rdls.predict.sheet` is light (parse time); :mod:`rdls.predict.steps`
imports the imaging and model libraries when it runs.
"""
