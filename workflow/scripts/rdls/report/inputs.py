"""Every file the subtype-biology report reads, by branch (standard library only).

The workflow's input function calls :func:`report_inputs` at parse time with the branches that
run and the items they run over (cohorts, shards, slides, contrasts), so that Snakemake builds
everything the report shows and reruns the report when any of it changes. Per-item files come
as lists; :func:`items` reads the item back from each path with the same pattern.
:func:`discover_inputs` does the same for a results folder that already exists (rendering a
report outside Snakemake, and tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

BRANCHES = ("imaging", "subtypes", "survival", "wsi", "scrna", "bulk")

# Deconvolution uses the single-cell cell types as its reference.
_DECONVOLUTION = ("bulk", "subtypes", "scrna")
# key: (pattern under the results folder, branches that must run, item list it expands over)
# Items: cohorts (with MRI), survival_cohorts, shards (MRI shards), slides, contrasts.
FILES: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    # cohort and QC: always
    "cohort_overview": ("cohort/overview.tsv", (), None),
    "cohort_figure": ("cohort/overview.png", (), None),
    "qc_exclusions": ("qc/exclusions.tsv", (), None),
    # imaging
    "harmonisation": ("imaging/harmonisation.tsv", ("imaging",), None),
    "training_curve": ("imaging/encoder/training_curve.png", ("imaging",), None),
    "montages": ("imaging/montages/{cohort}.png", ("imaging",), "cohorts"),
    "crops": ("imaging/crops/{shard}.npz", ("imaging", "subtypes"), "shards"),
    # subtypes
    "assignments": ("subtypes/assignments.tsv", ("subtypes",), None),
    "consensus_summary": ("subtypes/consensus/summary.tsv", ("subtypes",), None),
    "consensus_structure": ("subtypes/consensus/structure.json", ("subtypes",), None),
    "consensus_stability": ("subtypes/consensus/stability.tsv", ("subtypes",), None),
    "consensus_k": ("subtypes/consensus/k_selection.png", ("subtypes",), None),
    "consensus_heatmaps": ("subtypes/consensus/heatmaps.png", ("subtypes",), None),
    "consensus_cdf": ("subtypes/consensus/cdf.png", ("subtypes",), None),
    "subtype_rates": ("subtypes/consensus/subtype_rates.tsv", ("subtypes",), None),
    "feature_selection": ("subtypes/features/selection.tsv", ("subtypes",), None),
    "classifier_cv": ("subtypes/classifier/cross_validation.tsv", ("subtypes",), None),
    "classifier_calibration": ("subtypes/classifier/calibration.tsv", ("subtypes",), None),
    "classifier_reliability": ("subtypes/classifier/reliability.png", ("subtypes",), None),
    "agreement": ("subtypes/agreement.tsv", ("subtypes",), None),
    "in_group_proportion": ("subtypes/in_group_proportion.tsv", ("subtypes",), None),
    "table_one": ("subtypes/table_one.html", ("subtypes",), None),
    # survival
    "km_figures": ("survival/km/{cohort}.png", ("survival",), "survival_cohorts"),
    "km_logrank": ("survival/km/{cohort}_logrank.tsv", ("survival",), "survival_cohorts"),
    "km_at_risk": ("survival/km/{cohort}_at_risk.tsv", ("survival",), "survival_cohorts"),
    "km_summary": ("survival/km/{cohort}_summary.tsv", ("survival",), "survival_cohorts"),
    "cox_table": ("survival/cox/hazard_ratios.tsv", ("survival",), None),
    "cox_ph": ("survival/cox/proportional_hazards.tsv", ("survival",), None),
    "cox_forest": ("survival/cox/forest.png", ("survival",), None),
    "risk_scores": ("survival/risk_scores.tsv", ("survival",), None),
    "rrs_model": ("survival/rrs/model.json", ("survival",), None),
    "rrs_coefficients": ("survival/rrs/coefficients.tsv", ("survival",), None),
    "rrs_cv": ("survival/rrs/cross_validation.png", ("survival",), None),
    "rrs_groups": ("survival/rrs/groups.tsv", ("survival",), None),
    "rrs_km": ("survival/rrs/km_{cohort}.png", ("survival",), "survival_cohorts"),
    "auc": ("survival/comparison/auc.tsv", ("survival",), None),
    "auc_difference": ("survival/comparison/auc_difference.tsv", ("survival",), None),
    "cindex": ("survival/comparison/cindex.tsv", ("survival",), None),
    "optimism": ("survival/comparison/optimism.tsv", ("survival",), None),
    "comparison_models": ("survival/comparison/models.tsv", ("survival",), None),
    "calibration_summary": ("survival/comparison/calibration_summary.tsv", ("survival",), None),
    "auc_figure": ("survival/comparison/auc.png", ("survival",), None),
    "roc_figure": ("survival/comparison/roc.png", ("survival",), None),
    "calibration_figure": ("survival/comparison/calibration.png", ("survival",), None),
    "decision_figure": ("survival/comparison/decision_curve.png", ("survival",), None),
    "nomogram_figure": ("survival/comparison/nomogram.png", ("survival",), None),
    # whole-slide images
    "slide_metrics": ("wsi/slide_metrics.tsv", ("wsi",), None),
    "heatmaps": ("wsi/heatmaps/{slide}.png", ("wsi",), "slides"),
    "wsi_by_subtype": ("wsi/by_subtype.tsv", ("wsi", "subtypes"), None),
    "wsi_by_subtype_figure": ("wsi/by_subtype.png", ("wsi", "subtypes"), None),
    # single-cell RNA-seq
    "scrna_umap": ("scrna/umap.png", ("scrna",), None),
    "scrna_dotplot": ("scrna/dotplot.png", ("scrna",), None),
    "scrna_cell_types": ("scrna/cell_types.tsv", ("scrna",), None),
    "scrna_composition": ("scrna/by_subtype/composition.tsv", ("scrna", "subtypes"), None),
    "scrna_tests": ("scrna/by_subtype/tests.tsv", ("scrna", "subtypes"), None),
    "scrna_composition_figure": ("scrna/by_subtype/composition.png", ("scrna", "subtypes"), None),
    "scrna_signature_figure": (
        "scrna/by_subtype/signature_scores.png",
        ("scrna", "subtypes"),
        None,
    ),
    # bulk RNA-seq
    "bulk_pca": ("bulk/overview/pca.png", ("bulk",), None),
    "bulk_heatmap": ("bulk/overview/heatmap.png", ("bulk",), None),
    "deseq2": ("bulk/deseq2/{contrast}.tsv", ("bulk", "subtypes"), "contrasts"),
    "volcanoes": ("bulk/deseq2/{contrast}_volcano.png", ("bulk", "subtypes"), "contrasts"),
    "gsea": ("bulk/gsea/{contrast}.tsv", ("bulk", "subtypes"), "contrasts"),
    "gsea_figures": ("bulk/gsea/{contrast}.png", ("bulk", "subtypes"), "contrasts"),
    "bulk_scores": ("bulk/scores/scores.tsv", ("bulk", "subtypes"), None),
    "bulk_score_tests": ("bulk/scores/tests.tsv", ("bulk", "subtypes"), None),
    "bulk_scores_figure": ("bulk/scores/scores.png", ("bulk", "subtypes"), None),
    "deconvolution": ("bulk/deconvolution/fractions.tsv", _DECONVOLUTION, None),
    "deconvolution_tests": ("bulk/deconvolution/tests.tsv", _DECONVOLUTION, None),
    "deconvolution_figure": ("bulk/deconvolution/fractions.png", _DECONVOLUTION, None),
}

# Shown only where the per-subtype montage cannot be made (subtypes off): QC montages.
_ONLY_WITHOUT = {"montages": "subtypes"}
_WILDCARD = re.compile(r"\{(\w+)\}")
# What an item looks like where the folder holds other files too (deseq2/summary.tsv).
_ITEM = {"contrast": r"[^/]+?_vs_[^/]+?"}


def report_inputs(
    *,
    branches: Mapping[str, bool],
    cohorts: Sequence[str] = (),
    survival_cohorts: Sequence[str] = (),
    shards: Sequence[str] = (),
    slides: Sequence[str] = (),
    contrasts: Sequence[str] = (),
    root: str = "results",
) -> dict[str, str | list[str]]:
    """The files the report reads for the branches that run, by key.

    Parameters
    ----------
    branches : mapping of branch name to bool
        Which of ``BRANCHES`` run (missing names count as off).
    cohorts, survival_cohorts, shards, slides, contrasts : sequences of str
        The items of per-item files: cohorts with MRI, cohorts analysed for survival, MRI
        shards, slide IDs and bulk contrasts.
    root : str
        The results folder.

    Returns
    -------
    dict
        Key to path, or to a list of paths for per-item files; keys with no file are left out.

    Examples
    --------
    >>> report_inputs(branches={"wsi": True}, slides=["H1"])["heatmaps"]
    ['results/wsi/heatmaps/H1.png']
    """
    unknown = sorted(set(branches) - set(BRANCHES))
    if unknown:
        raise ValueError(f"unknown branch(es) {unknown}; the report knows {list(BRANCHES)}")
    lists = {
        "cohorts": cohorts,
        "survival_cohorts": survival_cohorts,
        "shards": shards,
        "slides": slides,
        "contrasts": contrasts,
    }
    inputs: dict[str, str | list[str]] = {}
    for key, (pattern, needs, over) in FILES.items():
        if not all(branches.get(branch, False) for branch in needs):
            continue
        if key in _ONLY_WITHOUT and branches.get(_ONLY_WITHOUT[key], False):
            continue
        path = f"{root}/{pattern}"
        if over is None:
            inputs[key] = path
            continue
        values = list(dict.fromkeys(str(v) for v in lists[over]))
        if values:
            (name,) = _WILDCARD.findall(pattern)
            inputs[key] = [path.replace(f"{{{name}}}", value) for value in values]
    return inputs


def contrast_inputs(contrasts: Sequence[str], *, root: str = "results") -> dict[str, list[str]]:
    """The per-contrast bulk files alone (known only once the subtypes are): the workflow asks
    for them through a second input function, so that the rest of the report's inputs are
    scheduled without waiting for the subtypes."""
    bulk = {"bulk": True, "subtypes": True}
    return {
        key: paths
        for key, paths in report_inputs(branches=bulk, contrasts=contrasts, root=root).items()
        if FILES[key][2] == "contrasts"
    }


def discover_inputs(
    results: str | Path, *, branches: Mapping[str, bool] | None = None
) -> dict[str, str | list[str]]:
    """The report's files that exist under ``results`` (every branch, or those on).

    Per-item files are found by globbing their pattern; an item is whatever the wildcard
    matches (``survival/km/{cohort}.png`` finds ``training`` in ``km/training.png``, and not
    ``training_logrank`` since that is not a PNG).
    """
    results = Path(results)
    inputs: dict[str, str | list[str]] = {}
    for key, (pattern, needs, over) in FILES.items():
        if branches is not None and not all(branches.get(b, False) for b in needs):
            continue
        if over is None:
            if (results / pattern).is_file():
                inputs[key] = str(results / pattern)
            continue
        found = sorted(str(p) for p in results.glob(_WILDCARD.sub("*", pattern)) if p.is_file())
        found = [p for p in found if _item(p, pattern) is not None]
        if found:
            inputs[key] = found
    # Per-cohort QC montages stand in only where there is no per-subtype montage.
    if "crops" in inputs and "assignments" in inputs:
        inputs.pop("montages", None)
    return inputs


def items(paths: str | Iterable[str] | None, key: str) -> dict[str, str]:
    """Per-item files of ``key`` by item, read back from their paths with the key's pattern.

    Examples
    --------
    >>> items(["results/survival/km/training.png"], "km_figures")
    {'training': 'results/survival/km/training.png'}
    """
    if paths is None:
        return {}
    pattern = FILES[key][0]
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    found = {}
    for path in paths:
        item = _item(str(path), pattern)
        if item is None:
            raise ValueError(f"{path} does not match the pattern {pattern} of '{key}'")
        found[item] = str(path)
    return found


def _item(path: str, pattern: str) -> str | None:
    parts = _WILDCARD.split(pattern)
    # parts alternate literal, wildcard name, literal: one wildcard per pattern
    item = _ITEM.get(parts[1], r"[^/]+?")
    regex = re.escape(parts[0]) + f"(?P<item>{item})" + re.escape(parts[2])
    match = re.search(r"(?:^|/)" + regex + r"$", path.replace("\\", "/"))
    if match is None:
        return None
    return match.group("item")
