"""The imaging branch's aggregates: stability of every feature, and the final feature tables.

``results/imaging/features/{deep,radiomics}.parquet`` hold one row per subject that passed
every imaging step (``subject_id``, ``cohort``, ``centre``, then the features), harmonised
across centres when configured and reduced to the features that are stable under mask and
re-scan perturbations when configured. Every subject left out is listed with its step and
reason in the imaging exclusions table.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.imaging.steps import FAMILIES, _read_status, ingested_paths
from rdls.qc import EXCLUSION_COLUMNS

log = logging.getLogger(__name__)


def stability_step(
    *, ingested_tables, ingested_dirs, checkpoint, params_file, preprocess: dict,
    encoder: dict, subjects: int, threshold: float, kind: str, seed: int,
    out_radiomics, out_deep, threads: int = 1,
) -> None:  # fmt: skip
    """ICC of every radiomic and deep feature over perturbed readings of training subjects.

    The sample is the first ``subjects`` training subjects that passed ingestion in a fixed
    order (by a hash of their ID, so it does not follow the sheet's order). Each is measured
    as ingested, with its mask eroded and dilated by one voxel in-plane, and on a simulated
    re-scan (:func:`rdls.imaging.stability.perturb`); subjects are measured in ``threads``
    processes.
    """
    from concurrent.futures import ProcessPoolExecutor

    from rdls.imaging.encoder import embed, load_checkpoint
    from rdls.imaging.shards import shard_index
    from rdls.imaging.stability import PERTURBATIONS, stability_table
    from rdls.imaging.steps import _encoder_settings

    passed = []
    for table, folder in zip(ingested_tables, ingested_dirs, strict=True):
        status = _read_status(table)
        passed += [(sid, folder) for sid in status.loc[status["status"] == "ok", "subject_id"]]
    passed.sort(key=lambda item: (shard_index(item[0], 2**31 - 1), item[0]))
    sample = passed[:subjects]
    if len(sample) < 2:
        raise ValueError(
            f"the stability filter needs at least 2 training subjects, got {len(sample)}; "
            "set imaging.stability.activate to false for such a small cohort"
        )
    tasks = [
        {
            "subject_id": sid,
            "folder": str(folder),
            "params_file": str(params_file),
            "preprocess": preprocess,
            "seed": seed + number,
        }
        for number, (sid, folder) in enumerate(sample)
    ]
    if threads > 1:
        with ProcessPoolExecutor(max_workers=threads, initializer=_one_thread) as pool:
            readings = list(pool.map(_perturbed_readings, tasks))
    else:
        readings = [_perturbed_readings(task) for task in tasks]
    encoder_settings = _encoder_settings(encoder)
    network = load_checkpoint(checkpoint, settings=encoder_settings)
    names = list(readings[0]["radiomics"]["original"])
    radiomic = {p: np.array([[r["radiomics"][p].get(n, np.nan) for n in names]
                             for r in readings]) for p in PERTURBATIONS}  # fmt: skip
    deep = {
        p: embed(network, np.stack([r["crops"][p] for r in readings]), settings=encoder_settings)
        for p in PERTURBATIONS
    }
    tables = {
        "radiomics": stability_table(radiomic, names, threshold=threshold, kind=kind),
        "deep": stability_table(
            deep,
            encoder_settings.feature_names(),
            threshold=threshold,
            kind=kind,
        ),
    }
    for family, path in (("radiomics", out_radiomics), ("deep", out_deep)):
        table = tables[family]
        table.insert(2, "subjects", len(sample))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, sep="\t", index=False)
        log.info("%s: %d of %d features stable (%s >= %s)", family, table["kept"].sum(),
                 len(table), kind, threshold)  # fmt: skip


def _one_thread() -> None:
    """A worker process is one core's worth; nested threading only oversubscribes."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is in the imaging env
        pass


def _perturbed_readings(task: dict) -> dict:
    """Radiomic features and network input of one subject under every perturbation."""
    import SimpleITK as sitk

    from rdls.imaging.preprocess import PreprocessSettings, preprocess_subject
    from rdls.imaging.radiomics import extract_features, load_params, make_extractor
    from rdls.imaging.stability import PERTURBATIONS, perturb
    from rdls.imaging.steps import settings_from_config

    extractor = make_extractor(load_params(task["params_file"]))
    settings = settings_from_config(PreprocessSettings, task["preprocess"])
    image_path, mask_path = ingested_paths(task["folder"], task["subject_id"])
    image, mask = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path))
    radiomic, crops = {}, {}
    for p in PERTURBATIONS:
        perturbed_image, perturbed_mask = perturb(image, mask, kind=p, seed=task["seed"])
        radiomic[p] = extract_features(extractor, perturbed_image, perturbed_mask)
        crops[p] = preprocess_subject(perturbed_image, perturbed_mask, settings=settings)
    log.info("stability: subject %s measured", task["subject_id"])
    return {"subject_id": task["subject_id"], "radiomics": radiomic, "crops": crops}


def assemble_features(
    *, subjects_sheet, status_tables, radiomics, deep, icc_tables: dict | None,
    harmonisation: dict, seed: int, out_features: dict, out_unharmonised: dict,
    out_models: dict, out_exclusions, out_harmonisation,
) -> None:  # fmt: skip
    """Join the shards into one table per family, harmonise, filter and list exclusions.

    Parameters
    ----------
    subjects_sheet : path
        The subjects sheet (cohort and centre of each subject).
    status_tables : list of path
        Every status table of every shard and step.
    radiomics, deep : list of path
        The shards' feature tables (Parquet).
    icc_tables : dict or None
        ``{family: path}`` of the stability tables; ``None`` keeps every feature.
    harmonisation : dict
        The config's ``imaging.harmonisation`` block: ``method`` (``combat`` or ``none``),
        ``reference_centre`` (``None`` for the training cohort's largest),
        ``min_subjects_per_centre`` and ``unseen_centre``
        (:func:`rdls.imaging.harmonise.harmonise_cohort`).
    out_features, out_unharmonised : dict
        ``{family: path}`` of the final and of the unharmonised tables.
    out_models : dict
        ``{family: path}`` of the saved ComBat models (JSON,
        :class:`rdls.imaging.harmonise.ComBatModel`): what ``predict`` applies.
    out_harmonisation : path
        One row per family and cohort (:func:`harmonisation_report`).
    """
    from rdls.imaging.harmonise import harmonise_cohort

    subjects = pd.read_csv(subjects_sheet, sep="\t", dtype=str, keep_default_na=False)
    subjects = subjects.set_index("subject_id")[["cohort", "centre"]]
    status = _read_status(status_tables)
    excluded = status[status["status"] == "excluded"]
    tables = {
        "radiomics": _concat(radiomics),
        "deep": _concat(deep),
    }
    # A subject enters the tables only with both families: clustering on either must see
    # the same subjects.
    complete = set(tables["radiomics"].index) & set(tables["deep"].index)
    complete -= set(excluded["subject_id"])
    report = []
    for family in FAMILIES:
        unharmonised = tables[family].loc[sorted(complete)]
        meta = subjects.loc[unharmonised.index]
        _write_features(unharmonised, meta, out_unharmonised[family])
        table, model = harmonise_cohort(
            unharmonised,
            meta,
            family=family,
            method=harmonisation["method"],
            reference=harmonisation.get("reference_centre"),
            min_subjects_per_centre=int(harmonisation.get("min_subjects_per_centre", 20)),
            unseen_centre=harmonisation.get("unseen_centre", "error"),
        )
        model.save(out_models[family])
        kept_columns = list(table.columns)
        if icc_tables:
            icc = pd.read_csv(icc_tables[family], sep="\t")
            stable = set(icc.loc[icc["kept"].astype(bool), "feature"])
            kept_columns = [c for c in table.columns if c in stable]
            if not kept_columns:
                raise ValueError(
                    f"no {family} feature passed the stability filter "
                    f"({icc_tables[family]}); lower imaging.stability.icc_threshold"
                )
        _write_features(table[kept_columns], meta, out_features[family])
        rows = harmonisation_report(unharmonised, table, meta, model, seed=seed)
        rows.insert(list(rows.columns).index("features_in") + 1, "features_stable",
                    len(kept_columns))  # fmt: skip
        report.append(rows)
        overall = rows.iloc[0]
        log.info("%s: %d subjects, %d of %d features kept; centre predictability %.3f -> %.3f",
                 family, len(table), len(kept_columns), table.shape[1],
                 overall["centre_balanced_accuracy_before"],
                 overall["centre_balanced_accuracy_after"])  # fmt: skip
    pd.concat(report, ignore_index=True).to_csv(out_harmonisation, sep="\t", index=False)
    exclusions = pd.DataFrame(
        {
            "item_id": excluded["subject_id"],
            "kind": "mri",
            "step": excluded["step"],
            "reason": excluded["reason"],
        },
        columns=EXCLUSION_COLUMNS,
    )
    exclusions.to_csv(out_exclusions, sep="\t", index=False)


def harmonisation_report(
    before: pd.DataFrame, after: pd.DataFrame, meta: pd.DataFrame, model, *, seed: int
) -> pd.DataFrame:
    """How predictable the centre is before and after harmonisation, overall and per cohort.

    One row for all subjects (``cohort`` ``all``), then one per cohort: the training cohort
    alone, every other cohort pooled with the training cohort (so that a validation centre
    is told apart from the training centres it should now resemble). ``subjects`` and
    ``centres`` count the cohort's own; the last columns list its centres by how they were
    harmonised, each with the subjects its estimate rests on: fitted in training (the
    reference first), estimated from the centre's own images, or left unharmonised.
    """
    from rdls.imaging.harmonise import COHORT_ORDER, TRAINING, centre_predictability

    present = set(meta["cohort"])
    cohorts = [c for c in COHORT_ORDER if c in present] + sorted(present - set(COHORT_ORDER))
    rows = []
    for scope in ["all", *cohorts]:
        own = meta.index if scope == "all" else meta.index[meta["cohort"] == scope]
        pooled = own
        if scope not in ("all", TRAINING):
            pooled = own.union(meta.index[meta["cohort"] == TRAINING], sort=False)
        centre = meta.loc[pooled, "centre"]
        rows.append(
            {
                "family": model.family,
                "cohort": scope,
                "subjects": len(own),
                "features_in": before.shape[1],
                "method": model.method,
                "reference_centre": model.reference,
                "centres": meta.loc[own, "centre"].nunique(),
                "centre_balanced_accuracy_before": centre_predictability(
                    before.loc[pooled], centre, seed=seed
                ),
                "centre_balanced_accuracy_after": centre_predictability(
                    after.loc[pooled], centre, seed=seed
                ),
                "chance": 1.0 / max(1, centre.nunique()),
                **_centres_by_source(model, meta.loc[own, "centre"]),
                "notes": "; ".join(model.notes),
            }
        )
    return pd.DataFrame(rows)


def _centres_by_source(model, centre: pd.Series) -> dict[str, str]:
    """The centres of ``centre`` listed by how ``model`` harmonises them."""
    from rdls.imaging.harmonise import FITTED, OWN_IMAGES, REFERENCE, UNHARMONISED

    lists = {"fitted_in_training": [], "estimated_from_own_images": [], "unharmonised": []}
    if model.method != "combat":
        return {column: "" for column in lists}
    column_of = {REFERENCE: "fitted_in_training", FITTED: "fitted_in_training",
                 OWN_IMAGES: "estimated_from_own_images", UNHARMONISED: "unharmonised"}  # fmt: skip
    # The reference first, then by name.
    for name in sorted(set(centre), key=lambda c: (c != model.reference, c)):
        fit = model.centres[name]
        label = "reference, " if fit.source == REFERENCE else ""
        lists[column_of[fit.source]].append(f"{name} ({label}{fit.subjects})")
    return {column: ", ".join(names) for column, names in lists.items()}


def _concat(paths) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(index=pd.Index([], name="subject_id"))
    table = pd.concat(frames, ignore_index=True).set_index("subject_id")
    return table.astype(float)


def _write_features(table: pd.DataFrame, meta: pd.DataFrame, path) -> None:
    out = pd.concat([meta, table], axis=1).reset_index()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(path, index=False)


def feature_matrix(path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a family's table: (metadata with cohort and centre, features), by subject_id."""
    table = pd.read_parquet(path).set_index("subject_id")
    return table[["cohort", "centre"]], table.drop(columns=["cohort", "centre"])
