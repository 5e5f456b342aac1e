"""The imaging branch's rule-level steps: one function per rule, paths in and paths out.

Per-subject steps run over one shard (:mod:`rdls.imaging.shards`). Each writes a status table
with one row per subject of the shard: ``subject_id``, ``status`` (``ok`` or ``excluded``),
``step`` and ``reason``. A subject that fails a check is excluded there with its reason when
``allow_exclusions`` is true, and stops the job with the reason otherwise; later steps process
only the subjects whose status is ``ok``, and :func:`assemble_features` lists every exclusion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import QCFailure

log = logging.getLogger(__name__)

STATUS_COLUMNS = ["subject_id", "status", "step", "reason"]
FAMILIES = ("deep", "radiomics")


def _handle(failure: QCFailure, subject_id: str, *, allow_exclusions: bool) -> dict:
    if not allow_exclusions:
        raise QCFailure(
            f"{failure.reason} (qc.allow_exclusions is false; set it to true to exclude the "
            "subject and go on)",
            step=failure.step,
        ) from failure
    log.warning("subject %s excluded at %s: %s", subject_id, failure.step, failure.reason)
    return {"subject_id": subject_id, "status": "excluded", "step": failure.step,
            "reason": failure.reason}  # fmt: skip


def _ok(subject_id: str, step: str) -> dict:
    return {"subject_id": subject_id, "status": "ok", "step": step, "reason": ""}


def _write_tsv(frame: pd.DataFrame, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep="\t", index=False)


def _read_status(paths) -> pd.DataFrame:
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    frames = [pd.read_csv(p, sep="\t", dtype={"subject_id": str}, keep_default_na=False)
              for p in paths]  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=STATUS_COLUMNS)


def _passed(status: pd.DataFrame) -> list[str]:
    return status.loc[status["status"] == "ok", "subject_id"].tolist()


def ingested_paths(folder, subject_id: str) -> tuple[Path, Path]:
    """Where :func:`ingest_shard` writes a subject's canonical image and mask."""
    folder = Path(folder)
    return folder / f"{subject_id}_image.nii.gz", folder / f"{subject_id}_mask.nii.gz"


def ingest_shard(
    *, subjects: Sequence[dict], out_dir, out_table, settings: dict, allow_exclusions: bool
) -> pd.DataFrame:
    """Ingest every subject of a shard (:func:`rdls.imaging.ingest.ingest_subject`).

    Parameters
    ----------
    subjects : sequence of dict
        Rows of the mri sheet: ``subject_id``, ``image``, ``mask``, ``mask_label``.
    out_dir : path
        Folder that receives each passing subject's canonical image and mask (NIfTI,
        without any header field of the source).
    out_table : path
        Status table plus ingestion's summary (format, size, spacing, ROI volume).
    settings : dict
        :class:`rdls.imaging.ingest.IngestSettings` fields.
    """
    import SimpleITK as sitk

    from rdls.imaging.ingest import IngestSettings, ingest_subject

    ingest_settings = IngestSettings(**settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for subject in subjects:
        sid = subject["subject_id"]
        try:
            ingested = ingest_subject(
                sid,
                image_path=subject["image"],
                mask_path=subject["mask"],
                mask_label=int(subject.get("mask_label", 1)),
                settings=ingest_settings,
            )
        except QCFailure as failure:
            rows.append(_handle(failure, sid, allow_exclusions=allow_exclusions))
            continue
        image_path, mask_path = ingested_paths(out_dir, sid)
        sitk.WriteImage(ingested.image, str(image_path), useCompression=True)
        sitk.WriteImage(ingested.mask, str(mask_path), useCompression=True)
        rows.append({**_ok(sid, "ingest"), **{k: v for k, v in ingested.summary.items()
                                              if k != "subject_id"}})  # fmt: skip
        log.info("ingested %s: ROI %.0f mm3", sid, ingested.summary["roi_volume_mm3"])
    table = pd.DataFrame(rows, columns=None if rows else STATUS_COLUMNS)
    _write_tsv(table, out_table)
    return table


def preprocess_shard(
    *, ingested_table, ingested_dir, out_crops, out_table, settings: dict, allow_exclusions: bool
) -> pd.DataFrame:
    """Network inputs of a shard's passing subjects (:func:`preprocess_subject`).

    ``out_crops`` is an ``.npz`` with ``subject_id`` and ``crops`` (float16,
    ``(n, 2, x, y, z)``); the status table adds ``crop_truncated``, the share of the tumour
    that the fixed crop cut off (a tumour larger than the crop; see imaging.preprocess).
    """
    import SimpleITK as sitk

    from rdls.imaging.preprocess import PreprocessSettings, preprocess_subject

    preprocess_settings = settings_from_config(PreprocessSettings, settings)
    rows, crops, ids = [], [], []
    for sid in _passed(_read_status(ingested_table)):
        image_path, mask_path = ingested_paths(ingested_dir, sid)
        image, mask = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path))
        crop = preprocess_subject(image, mask, settings=preprocess_settings)
        total = _mask_mm3(mask)
        kept = float(crop[1].sum()) * float(np.prod(preprocess_settings.spacing_mm))
        truncated = max(0.0, 1.0 - kept / total) if total > 0 else 0.0
        if truncated > 0.05:
            log.warning(
                "subject %s: the %s-voxel crop cuts off %.0f%% of the tumour; enlarge "
                "imaging.preprocess.crop_voxels", sid, preprocess_settings.crop_voxels,
                100 * truncated,
            )  # fmt: skip
        crops.append(crop.astype(np.float16))
        ids.append(sid)
        rows.append({**_ok(sid, "preprocess"), "crop_truncated": round(truncated, 4)})
    shape = (0, 2, *preprocess_settings.crop_voxels)
    np.savez(
        out_crops,
        subject_id=np.array(ids, dtype=str),
        crops=np.stack(crops) if crops else np.zeros(shape, dtype=np.float16),
    )
    table = pd.DataFrame(rows, columns=[*STATUS_COLUMNS, "crop_truncated"])
    _write_tsv(table, out_table)
    return table


def _mask_mm3(mask) -> float:
    import SimpleITK as sitk

    voxels = float(sitk.GetArrayViewFromImage(mask).sum())
    return voxels * float(np.prod(mask.GetSpacing()))


def load_crops(paths) -> tuple[np.ndarray, list[str]]:
    """Crops and subject_ids of several shards, in the order given."""
    crops, ids = [], []
    for path in [paths] if isinstance(paths, str | Path) else paths:
        with np.load(path) as data:
            if len(data["subject_id"]):
                crops.append(data["crops"])
                ids.extend(str(s) for s in data["subject_id"])
    if not crops:
        return np.zeros((0, 2, 1, 1, 1), dtype=np.float16), []
    return np.concatenate(crops), ids


def radiomics_shard(
    *, ingested_table, ingested_dir, params_file, out_features, out_table, allow_exclusions: bool
) -> pd.DataFrame:
    """pyradiomics features of a shard's passing subjects, one row each (Parquet)."""
    import SimpleITK as sitk

    from rdls.imaging.radiomics import load_params, make_extractor

    extractor = make_extractor(load_params(params_file))
    rows, features = [], []
    for sid in _passed(_read_status(ingested_table)):
        image_path, mask_path = ingested_paths(ingested_dir, sid)
        started = time.perf_counter()
        try:
            values = _extract(extractor, sitk.ReadImage(str(image_path)),
                              sitk.ReadImage(str(mask_path)), sid)  # fmt: skip
        except QCFailure as failure:
            rows.append(_handle(failure, sid, allow_exclusions=allow_exclusions))
            continue
        features.append({"subject_id": sid, **values})
        rows.append(_ok(sid, "radiomics"))
        log.info("radiomics %s: %d features, %.2f s", sid, len(values),
                 time.perf_counter() - started)  # fmt: skip
    table = pd.DataFrame(features, columns=None if features else ["subject_id"])
    Path(out_features).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_features, index=False)
    status = pd.DataFrame(rows, columns=STATUS_COLUMNS)
    _write_tsv(status, out_table)
    return status


def _extract(extractor, image, mask, subject_id) -> dict:
    from rdls.imaging.radiomics import extract_features

    try:
        values = extract_features(extractor, image, mask, label=1)
    except ValueError as error:
        # pyradiomics refuses an ROI it cannot measure (for example too few voxels after its
        # resampling); that is a fact of this subject's mask, not a bug.
        raise QCFailure(
            f"subject {subject_id}: pyradiomics cannot measure the tumour ROI ({error}). "
            "Check the mask, or the resampling in the radiomics parameter file.",
            step="radiomics",
        ) from None
    bad = [name for name, value in values.items() if not np.isfinite(value)]
    if bad:
        raise QCFailure(
            f"subject {subject_id}: {len(bad)} radiomic features are not finite (first: "
            f"{bad[0]}); the ROI is too small or flat to measure. Check the mask.",
            step="radiomics",
        )
    return values


def train_encoder_step(
    *, crops, out_checkpoint, out_curve, out_figure, out_figure_vector, settings: dict,
    seed: int, pretrained: str | None = None,
) -> None:  # fmt: skip
    """Train the encoder on the training cohort's crops, or adopt a pretrained checkpoint."""
    from rdls.imaging.encoder import (
        load_checkpoint,
        make_checkpoint,
        save_checkpoint,
        train_encoder,
    )

    encoder_settings = _encoder_settings(settings)
    if pretrained:
        encoder = load_checkpoint(pretrained, settings=encoder_settings)
        checkpoint = make_checkpoint(
            encoder, settings=encoder_settings, seed=seed, pretrained_from=str(pretrained)
        )
        curve = []
        log.info("using the pretrained encoder %s; no training", pretrained)
    else:
        training_crops, ids = load_crops(crops)
        checkpoint, curve = train_encoder(training_crops, settings=encoder_settings, seed=seed)
        log.info("trained on %d subjects", len(ids))
    Path(out_checkpoint).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint, out_checkpoint)
    curve = pd.DataFrame(curve, columns=["epoch", "loss", "seconds"])
    _write_tsv(curve, out_curve)
    _plot_curve(curve, out_figure, out_figure_vector, pretrained=pretrained)


def _encoder_settings(settings: dict):
    from rdls.imaging.encoder import EncoderSettings

    return settings_from_config(EncoderSettings, settings)


def settings_from_config(cls, settings: dict):
    """A settings dataclass from its config block (YAML lists become the tuples it holds)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})


def _plot_curve(curve: pd.DataFrame, out_figure, out_figure_vector, *, pretrained) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(5, 3.2))
    if len(curve):
        ax.plot(curve["epoch"], curve["loss"], marker="o", markersize=3, color="#1f5f8b")
        ax.set_xlabel("epoch")
        ax.set_ylabel("NT-Xent loss (whole-tumour contrast)")
        ax.set_title(f"Encoder training: {curve['seconds'].sum():.0f} s")
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, f"pretrained encoder\n{pretrained}\n(not trained here)",
                ha="center", va="center", fontsize=8)  # fmt: skip
    figure.tight_layout()
    figure.savefig(out_figure, dpi=150)
    figure.savefig(out_figure_vector)
    plt.close(figure)


def embed_shard(*, crops, checkpoint, out_features, settings: dict) -> pd.DataFrame:
    """Deep features of a shard's subjects with the frozen encoder, one row each (Parquet)."""
    from rdls.imaging.encoder import embed, load_checkpoint

    encoder_settings = _encoder_settings(settings)
    encoder = load_checkpoint(checkpoint, settings=encoder_settings)
    shard_crops, ids = load_crops(crops)
    started = time.perf_counter()
    vectors = (
        embed(encoder, shard_crops, settings=encoder_settings)
        if ids
        else np.zeros((0, encoder_settings.embedding_length))
    )
    seconds = time.perf_counter() - started
    log.info("embedded %d subjects in %.1f s (%.1f per s)", len(ids), seconds,
             len(ids) / seconds if seconds > 0 else float("nan"))  # fmt: skip
    table = pd.DataFrame(vectors, columns=encoder_settings.feature_names())
    table.insert(0, "subject_id", ids)
    Path(out_features).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_features, index=False)
    return table


def montage_step(*, crops, out_figure, title: str) -> None:
    """QC montage of every crop of one cohort."""
    from rdls.imaging.preprocess import write_montage

    cohort_crops, ids = load_crops(crops)
    order = np.argsort(ids)
    write_montage(cohort_crops[order].astype(np.float32), [ids[i] for i in order], out_figure,
                  title=title)  # fmt: skip
