"""Write the demo cohort's files from its plan, one modality at a time."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from rdls.demo._plan import CENTRES, DemoPlan, item_rng, plan_cohort

log = logging.getLogger(__name__)

BULK_COUNTS = "bulk/counts.tsv"
TRUTH = "truth"
_FAKE_GIVEN = ("Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo")
_FAKE_FAMILY = ("Testperson", "Probant", "Muster", "Example")


def folder_name(*, scale: str, mri_signal: str = "mixed", centre_case_mix: bool = False) -> str:
    """The demo's subfolder of ``demo.outdir``: the scale, then any option off its default.

    ``default`` for the original demo, ``default-size`` for the size variant,
    ``default-mixed-casemix`` for the original MRI with the centre case mix, so that
    variants never overwrite each other.
    """
    parts = [scale]
    if mri_signal != "mixed" or centre_case_mix:
        parts.append(mri_signal)
    if centre_case_mix:
        parts.append("casemix")
    return "-".join(parts)


def root_of(truth_table: str | Path) -> Path:
    """The demo's root folder, from the path of one of its truth tables."""
    return Path(truth_table).parents[1]


def sheet_frames(plan: DemoPlan, *, root: str | Path) -> dict[str, pd.DataFrame]:
    """The demo's sheets as text, exactly as :func:`rdls.sheets.read_sheet` reads them back.

    Paths in the sheets are ``root`` joined with the plan's relative paths, so the sheets
    work from the folder that ``root`` is relative to (the workflow's working directory).
    """
    frames = {}
    for name, sheet in plan.sheets.items():
        sheet = sheet.copy()
        for column in ("image", "mask", "path"):
            if column in sheet.columns:
                sheet[column] = [os.path.join(str(root), p) for p in sheet[column]]
        frames[name] = sheet.astype(object).where(sheet.notna(), "").astype(str)
    return frames


def write_sheets(plan: DemoPlan, *, root: str | Path) -> dict[str, Path]:
    """Write the five sheets and the subject-level truth tables under ``root``.

    The truth tables are ``subjects.tsv``, ``hazard_coefficients.tsv``, ``settings.tsv``
    (scale, seed, mri_signal, centre_case_mix) and ``subtype_proportions.tsv`` (planted and
    drawn subtype proportions per centre).
    """
    root = Path(root)
    (root / "sheets").mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame in sheet_frames(plan, root=root).items():
        written[name] = root / "sheets" / f"{name}.tsv"
        frame.to_csv(written[name], sep="\t", index=False)
    _write_truth(plan.truth_subjects, root, "subjects.tsv")
    _write_truth(plan.hazard_coefficients, root, "hazard_coefficients.tsv")
    _write_truth(plan.settings, root, "settings.tsv")
    _write_truth(plan.subtype_proportions, root, "subtype_proportions.tsv")
    return written


def generate_mri(plan: DemoPlan, *, root: str | Path, threads: int = 1) -> pd.DataFrame:
    """Write every subject's T2-weighted volume and tumour mask; return the MRI truth.

    The tumours follow ``plan.mri_signal``; outside ``mixed`` the truth carries the variant
    and each subject's planted mechanism parameters.
    """
    root = Path(root)
    subtypes, centres = plan.subtype_of, plan.centre_of
    tasks = []
    for index, series in plan.mri.iterrows():
        sid = series["subject_id"]
        as_dicom = not series["image"].endswith(".nii.gz")
        tasks.append(
            {
                "subject_id": sid,
                "subtype": subtypes[sid],
                "centre": centres[sid],
                "image_path": str(root / series["image"]),
                "mask_path": str(root / series["mask"]),
                "shape": plan.scale.mri_shape,
                "seed": (plan.seed, index),
                "dicom_identity": _fake_identity(plan.seed, index) if as_dicom else None,
                "mri_signal": plan.mri_signal,
            }
        )
    (root / "mri").mkdir(parents=True, exist_ok=True)
    truth = pd.DataFrame(_run_parallel(_mri_task, tasks, threads, what="MRI subjects"))
    _write_truth(truth, root, "mri.tsv")
    return truth


def generate_slides(plan: DemoPlan, *, root: str | Path, threads: int = 1) -> pd.DataFrame:
    """Write every whole-slide image; return the per-slide truth (densities, stroma).

    Each slide's drawn nuclei (one row each: centre, class, compartment, size) go to the
    truth table ``slide_nuclei/<slide_id>.parquet``.
    """
    root = Path(root)
    subtypes, centres = plan.subtype_of, plan.centre_of
    nuclei = root / TRUTH / "slide_nuclei"
    tasks = [
        {
            "slide_id": slide["slide_id"],
            "subject_id": slide["subject_id"],
            "subtype": subtypes[slide["subject_id"]],
            "out_path": str(root / slide["path"]),
            "mpp": CENTRES[centres[slide["subject_id"]]]["slide_mpp"],
            "size_px": plan.scale.slide_size_px,
            "seed": (plan.seed, index),
            "nuclei_out": str(nuclei / f"{slide['slide_id']}.parquet"),
        }
        for index, slide in plan.slides.iterrows()
    ]
    (root / "slides").mkdir(parents=True, exist_ok=True)
    nuclei.mkdir(parents=True, exist_ok=True)
    truth = pd.DataFrame(_run_parallel(_slide_task, tasks, threads, what="slides"))
    _write_truth(truth, root, "slides.tsv")
    return truth


def generate_bulk(plan: DemoPlan, *, root: str | Path) -> pd.DataFrame:
    """Write the bulk RNA-seq count matrix; return the planted gene modules.

    Also writes the truth tables ``bulk_genes.tsv`` (the returned modules) and
    ``bulk_composition.tsv`` (``sample_id`` and each sample's planted cell-type fractions).
    """
    from rdls.demo._bulk import simulate_bulk

    root = Path(root)
    samples = plan.bulk.merge(plan.truth_subjects[["subject_id", "subtype"]], on="subject_id")
    (root / "bulk").mkdir(parents=True, exist_ok=True)
    cohort = simulate_bulk(
        samples=samples, n_genes=plan.scale.bulk_genes, rng=item_rng(plan.seed, "bulk", 0)
    )
    cohort.counts.to_csv(root / BULK_COUNTS, sep="\t", index=False)
    _write_truth(cohort.genes, root, "bulk_genes.tsv")
    _write_truth(cohort.composition, root, "bulk_composition.tsv")
    return cohort.genes


def generate_scrna(plan: DemoPlan, *, root: str | Path, threads: int = 1) -> pd.DataFrame:
    """Write every scRNA-seq sample in 10x format; return the planted cell types."""
    root = Path(root)
    subtypes = plan.subtype_of
    tasks = [
        {
            "sample_id": sample["sample_id"],
            "subtype": subtypes[sample["subject_id"]],
            "fmt": sample["format"],
            "out_path": str(root / sample["path"]),
            "n_cells": plan.scale.cells_per_sample,
            "n_genes": plan.scale.scrna_genes,
            "seed": (plan.seed, index),
        }
        for index, sample in plan.scrna.iterrows()
    ]
    (root / "scrna").mkdir(parents=True, exist_ok=True)
    cells = pd.concat(_run_parallel(_scrna_task, tasks, threads, what="scRNA samples"))
    _write_truth(cells, root, "scrna_cells.tsv")
    return cells


MODALITIES = ("mri", "slides", "bulk", "scrna")


def generate_cohort(
    *,
    scale: str = "default",
    seed: int = 42,
    root: str | Path,
    threads: int = 1,
    mri_signal: str = "mixed",
    centre_case_mix: bool = False,
    modalities: Iterable[str] = MODALITIES,
) -> DemoPlan:
    """Write the demo cohort (sheets, truth and the chosen modalities) under ``root``.

    ``mri_signal`` and ``centre_case_mix`` are those of :func:`plan_cohort`. Leaving out
    some of ``MODALITIES`` (for example ``("mri",)`` to work on the imaging branch alone)
    skips their files; the sheets still name them.
    """
    modalities = tuple(modalities)
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; choose from {', '.join(MODALITIES)}")
    plan = plan_cohort(
        scale=scale, seed=seed, mri_signal=mri_signal, centre_case_mix=centre_case_mix
    )
    write_sheets(plan, root=root)
    if "mri" in modalities:
        generate_mri(plan, root=root, threads=threads)
    if "slides" in modalities:
        generate_slides(plan, root=root, threads=threads)
    if "bulk" in modalities:
        generate_bulk(plan, root=root)
    if "scrna" in modalities:
        generate_scrna(plan, root=root, threads=threads)
    return plan


def _fake_identity(seed: int, index: int) -> dict[str, str]:
    """Made-up DICOM identifiers, so that privacy tests have something to find."""
    rng = item_rng(seed, "dicom", index)
    year, month, day = rng.integers(1930, 1975), rng.integers(1, 13), rng.integers(1, 29)
    return {
        "PatientName": f"{rng.choice(_FAKE_FAMILY)}^{rng.choice(_FAKE_GIVEN)}",
        "PatientID": f"MRN{rng.integers(10**6, 10**7)}",
        "PatientBirthDate": f"{year:04d}{month:02d}{day:02d}",
    }


def _write_truth(frame: pd.DataFrame, root: Path, name: str) -> None:
    (root / TRUTH).mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / TRUTH / name, sep="\t", index=False)


def _run_parallel(function: Callable, tasks: list[dict], threads: int, *, what: str) -> list:
    """Run independent item tasks in ``threads`` processes, logging progress."""
    if threads > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=threads, initializer=_single_threaded_worker) as pool:
            return _collect(pool.map(function, tasks), len(tasks), what)
    return _collect(map(function, tasks), len(tasks), what)


def _collect(results: Iterable, total: int, what: str) -> list:
    started = time.perf_counter()
    collected = []
    for done, result in enumerate(results, start=1):
        collected.append(result)
        if done == total or done % max(1, total // 10) == 0:
            elapsed = time.perf_counter() - started
            log.info("%s: %d of %d done in %.1f s", what, done, total, elapsed)
    return collected


def _single_threaded_worker() -> None:
    """Each worker process is one core's worth; nested threading only oversubscribes."""
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import SimpleITK

        SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    except ImportError:
        pass


def _mri_task(task: dict) -> dict:
    from rdls.demo._mri import write_subject_mri

    seed, index = task["seed"]
    truth = write_subject_mri(
        subtype=task["subtype"],
        centre=task["centre"],
        image_path=task["image_path"],
        mask_path=task["mask_path"],
        shape=task["shape"],
        rng=item_rng(seed, "mri", index),
        dicom_identity=task["dicom_identity"],
        mri_signal=task["mri_signal"],
    )
    return {"subject_id": task["subject_id"], **truth}


def _slide_task(task: dict) -> dict:
    from rdls.demo._slides import write_slide

    seed, index = task["seed"]
    truth = write_slide(
        out_path=task["out_path"],
        subtype=task["subtype"],
        mpp=task["mpp"],
        size_px=task["size_px"],
        rng=item_rng(seed, "slides", index),
        nuclei_out=task.get("nuclei_out"),
    )
    return {"slide_id": task["slide_id"], "subject_id": task["subject_id"],
            "subtype": task["subtype"], **truth}  # fmt: skip


def _scrna_task(task: dict) -> pd.DataFrame:
    from rdls.demo._genes import gene_universe
    from rdls.demo._scrna import write_scrna_sample

    seed, index = task["seed"]
    return write_scrna_sample(
        out_path=task["out_path"],
        fmt=task["fmt"],
        sample_id=task["sample_id"],
        subtype=task["subtype"],
        n_cells=task["n_cells"],
        genes=gene_universe(task["n_genes"]),
        rng=item_rng(seed, "scrna", index),
    )
