"""A small results tree with every file the report reads, numbers planted, in a second.

PNGs are solid-colour images drawn with Pillow; tables have the workflow's columns, with
planted values whose sentences the card tests and the browser test know in advance:

- RDLS1: lowest intratumoral lymphocyte density (median 100 vs 300 in RDLS3), highest
  exclusion index; lowest immune score;
- RDLS2: highest intratumoral lymphocyte density and immune score; interferon-gamma response
  the most enriched Hallmark set; most CD8 T cells;
- RDLS3: highest stroma fraction, stromal score and fibroblast share.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.report.inputs import discover_inputs

SUBTYPES = ("RDLS1", "RDLS2", "RDLS3")
COHORTS = ("training", "external_validation")
CONTRASTS = ("RDLS1_vs_rest", "RDLS2_vs_rest", "RDLS3_vs_rest", "RDLS1_vs_RDLS2")
SLIDES = ("H0001", "H0002", "H0003")
ALL_ON = {b: True for b in ("imaging", "subtypes", "survival", "wsi", "scrna", "bulk")}


def png(path: Path, *, size=(120, 80), colour=(0, 114, 178)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="PNG")
    return path


def tsv(path: Path, frame: pd.DataFrame | dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(frame).to_csv(path, sep="\t", index=False)
    return path


def write_results(root: Path) -> dict:
    """Write the tree under ``root`` (the results folder) and return its report inputs."""
    root = Path(root)
    subjects = [f"S{i:04d}" for i in range(1, 19)]
    subtype_of = {s: SUBTYPES[i % 3] for i, s in enumerate(subjects)}
    cohort_of = {s: COHORTS[0] if i < 12 else COHORTS[1] for i, s in enumerate(subjects)}

    # cohort and QC
    tsv(
        root / "cohort/overview.tsv",
        {
            "cohort": [*COHORTS, "all"],
            "subjects": [12, 6, 18],
            "centres": ["A,B", "C", "A,B,C"],
            "with_mri": [12, 6, 18],
            "slides": [3, 0, 3],
            "scrna_samples": [3, 0, 3],
            "bulk_samples": [6, 0, 6],
            "with_follow_up": [12, 6, 18],
            "events": [5, 2, 7],
            "median_follow_up_months": [60.5, 48.2, 58.0],
            "rfs_at_60_months": [0.61, 0.7, 0.64],
        },
    )
    png(root / "cohort/overview.png", size=(400, 200))
    tsv(
        root / "qc/exclusions.tsv",
        {
            "item_id": ["S0099", "H0009"],
            "kind": ["subject", "slide"],
            "step": ["mri_ingest", "wsi_tissue"],
            "reason": ["mask is empty", "less tissue than 0.1 mm2 <script>alert(1)</script>"],
        },
    )

    # imaging
    tsv(
        root / "imaging/harmonisation.tsv",
        {
            "family": ["deep", "radiomics"],
            "subjects": [18, 18],
            "features_in": [128, 1026],
            "features_stable": [40, 300],
            "method": ["combat"] * 2,
            "reference_centre": ["A"] * 2,
            "centres": [3, 3],
            "centre_balanced_accuracy_before": [0.4, 0.9],
            "centre_balanced_accuracy_after": [0.3, 0.35],
            "chance": [1 / 3] * 2,
            "notes": ["", ""],
        },
    )
    png(root / "imaging/encoder/training_curve.png")
    for cohort in COHORTS:
        png(root / f"imaging/montages/{cohort}.png")
    rng = np.random.default_rng(0)
    for shard, members in (
        ("training-00", subjects[:12]),
        ("external_validation-00", subjects[12:]),
    ):
        crops = rng.random((len(members), 2, 16, 16, 4)).astype(np.float16)
        crops[:, 1] = 0
        crops[:, 1, 5:11, 5:11, 1:3] = 1
        (root / "imaging/crops").mkdir(parents=True, exist_ok=True)
        np.savez(root / f"imaging/crops/{shard}.npz", subject_id=np.array(members), crops=crops)

    # subtypes
    tsv(
        root / "subtypes/assignments.tsv",
        {
            "subject_id": subjects,
            "cohort": [cohort_of[s] for s in subjects],
            "subtype": [subtype_of[s] for s in subjects],
            "confidence": np.linspace(0.99, 0.5, len(subjects)),
            # below min_confidence 0.6: the last four subjects, all external (4 of 6)
            "uncertain": np.linspace(0.99, 0.5, len(subjects)) < 0.6,
            "source": [
                "consensus" if cohort_of[s] == "training" else "classifier" for s in subjects
            ],
        },
    )
    tsv(
        root / "subtypes/consensus/summary.tsv",
        {
            "k": [2, 3, 4],
            "pac": [0.4, 0.05, 0.2],
            "cdf_area": [0.4, 0.6, 0.7],
            "delta_area": [0.4, 0.5, 0.1],
            "silhouette": [0.8, 0.95, 0.7],
            "min_cluster_size": [5, 4, 2],
            "mean_cluster_consensus": [0.9, 0.97, 0.8],
            "null_pac_mean": [0.45, 0.4, 0.35],
            "rcsi": [0.12, 2.08, 0.56],
            "p_value": [0.3, 0.0004, 0.02],
            "p_adjusted": [0.3, 0.0012, 0.04],
            "eligible": [True, True, False],
            "significant": [False, True, True],
            "chosen": [False, True, False],
        },
    )
    (root / "subtypes/consensus/structure.json").write_text(
        json.dumps(
            {
                "structure": True,
                "k": 3,
                "k_rule": "rcsi",
                "alpha": 0.05,
                "message": "3 subtypes (rcsi): PAC 0.050 against 0.400 in 25 null datasets.",
            }
        )
    )
    tsv(
        root / "subtypes/consensus/stability.tsv",
        {
            "subtype": list(SUBTYPES),
            "n": [4, 4, 4],
            "jaccard_mean": [0.91, 0.8, 0.66],
            "jaccard_sd": [0.05, 0.1, 0.2],
            "dissolved": [0.0, 0.02, 0.2],
            "verdict": ["highly stable", "stable", "pattern"],
        },
    )
    for name in ("k_selection", "heatmaps", "cdf"):
        png(root / f"subtypes/consensus/{name}.png")
    tsv(
        root / "subtypes/consensus/subtype_rates.tsv",
        {
            "cluster": [0, 2, 1],
            "subtype": list(SUBTYPES),
            "n": [4, 4, 4],
            "n_followup": [4, 4, 4],
            "events": [3, 1, 1],
            "person_months": [200.0, 260.0, 240.0],
            "rate_per_100_person_years": [18.0, 4.6, 5.0],
        },
    )
    tsv(
        root / "subtypes/features/selection.tsv",
        {
            "feature": ["deep_000", "deep_001", "original_shape_Flatness"],
            "family": ["deep", "deep", "radiomics"],
            "kept": [True, False, True],
            "reason": ["kept", "correlated with deep_000", "kept"],
            "p_value": [None] * 3,
        },
    )
    tsv(
        root / "subtypes/classifier/cross_validation.tsv",
        {
            "classifier": ["nearest_centroid"] * 2 + ["logistic"] * 2,
            "fold": [1, 2, 1, 2],
            "balanced_accuracy": [0.9, 1.0, 0.95, 0.95],
        },
    )
    tsv(
        root / "subtypes/classifier/calibration.tsv",
        {
            "classifier": ["nearest_centroid"] * 2,
            "stage": ["uncalibrated", "calibrated"],
            "method": ["none", "temperature"],
            "temperature": [1.0, 3.6],
            "folds": [5, 5],
            "min_confidence": [0.6, 0.6],
            "n": [12, 12],
            "accuracy": [0.9167, 0.9167],
            "balanced_accuracy": [0.9167, 0.9167],
            "mean_confidence": [0.998, 0.905],
            "brier": [0.1598, 0.1102],
            "log_loss": [2.31, 0.284],
            "ece": [0.081, 0.042],
            "n_uncertain": [0, 2],
            "accuracy_uncertain": [np.nan, 0.5],
            "accuracy_confident": [0.9167, 1.0],
            "note": [None, None],
        },
    )
    png(root / "subtypes/classifier/reliability.png")
    tsv(
        root / "subtypes/agreement.tsv",
        {
            "cohort": ["external_validation"],
            "n": [6],
            "k": [3],
            "ari": [0.8],
            "kappa": [0.85],
            "note": [""],
        },
    )
    tsv(
        root / "subtypes/in_group_proportion.tsv",
        {
            "cohort": ["training"] * 3,
            "subtype": list(SUBTYPES),
            "n": [4, 4, 4],
            "igp": [1.0, 0.9, 0.8],
            "share": [1 / 3] * 3,
        },
    )
    (root / "subtypes/table_one.html").write_text(
        '<!DOCTYPE html><html><body><h1>Table 1</h1><div class="table-one"><table>'
        "<caption>Table 1: training (n = 12)</caption><tr><th>n</th><td>12</td></tr></table>"
        "</div></body></html>"
    )

    # survival
    for cohort in COHORTS:
        png(root / f"survival/km/{cohort}.png")
        png(root / f"survival/rrs/km_{cohort}.png")
        tsv(
            root / f"survival/km/{cohort}_logrank.tsv",
            {
                "comparison": ["overall", "RDLS1 vs RDLS2"],
                "statistic": [6.1, 5.0],
                "df": [2, 1],
                "p_value": [0.047, 0.025],
                "p_adjusted": [None, 0.075],
            },
        )
        tsv(
            root / f"survival/km/{cohort}_at_risk.tsv",
            {"group": list(SUBTYPES), "0.0": [4, 4, 4], "12.0": [3, 4, 4]},
        )
        tsv(
            root / f"survival/km/{cohort}_summary.tsv",
            {
                "subtype": list(SUBTYPES),
                "n": [4, 4, 4],
                "events": [3, 1, 2],
                "horizon": [60.0] * 3,
                "survival": [0.25, 0.75, 0.5],
                "ci_lower": [0.05, 0.4, 0.2],
                "ci_upper": [0.55, 0.9, 0.8],
                "median_survival": [30.0, float("inf"), 58.0],
                "median_ci_lower": [12.0, 40.0, 20.0],
                "median_ci_upper": [float("inf"), float("inf"), float("inf")],
            },
        )
    hr_rows = []
    for cohort in COHORTS:
        for term, hr, low, high, p in (
            ("subtype[RDLS2]", 0.5, 0.29, 0.82, 0.004),
            ("subtype[RDLS3]", 0.75, 0.4, 1.4, 0.36),
            ("age", 1.01, 0.98, 1.04, 0.5),
        ):
            hr_rows.append(
                {
                    "cohort": cohort,
                    "term": term,
                    "coef": np.log(hr),
                    "se": 0.2,
                    "hazard_ratio": hr,
                    "ci_lower": low,
                    "ci_upper": high,
                    "p_value": p,
                    "n": 12,
                    "events": 5,
                    "note": "",
                }
            )
    tsv(root / "survival/cox/hazard_ratios.tsv", pd.DataFrame(hr_rows))
    tsv(
        root / "survival/cox/proportional_hazards.tsv",
        {
            "cohort": ["training", "training"],
            "term": ["age", "GLOBAL"],
            "statistic": [0.2, 1.0],
            "df": [1, 3],
            "p_value": [0.6, 0.8],
        },
    )
    png(root / "survival/cox/forest.png")
    tsv(
        root / "survival/risk_scores.tsv",
        {
            "subject_id": subjects,
            "cohort": [cohort_of[s] for s in subjects],
            "rrs": np.linspace(1, -1, len(subjects)),
            "rrs_group": ["high" if subtype_of[s] == "RDLS1" else "low" for s in subjects],
        },
    )
    (root / "survival/rrs").mkdir(parents=True, exist_ok=True)
    (root / "survival/rrs/model.json").write_text(
        json.dumps(
            {
                "features": ["deep_000", "original_shape_Flatness"],
                "coefficients": {"deep_000": 0.4, "original_shape_Flatness": -0.2},
                "cutoff": 0.1,
                "cutoff_method": "maxstat",
            }
        )
    )
    tsv(root / "survival/rrs/coefficients.tsv", {"feature": ["deep_000"], "coefficient": [0.4]})
    png(root / "survival/rrs/cross_validation.png")
    tsv(
        root / "survival/rrs/groups.tsv",
        {
            "cohort": list(COHORTS),
            "n": [12, 6],
            "events": [5, 2],
            "n_high": [4, 2],
            "hazard_ratio": [3.2, 2.1],
            "ci_lower": [1.7, 0.5],
            "ci_upper": [6.0, 9.0],
            "p_value": [0.0003, 0.3],
            "logrank_p": [0.0001, 0.28],
        },
    )
    tsv(
        root / "survival/comparison/auc.tsv",
        {
            "cohort": [c for c in COHORTS for _ in (0, 1)],
            "model": ["clinical", "clinical + RRS"] * 2,
            "horizon": [60.0] * 4,
            "auc": [0.799, 0.834, 0.780, 0.825],
            "ci_lower": [0.7, 0.75, 0.6, 0.7],
            "ci_upper": [0.88, 0.9, 0.9, 0.93],
            "n": [12, 12, 6, 6],
            "events_by_horizon": [4, 4, 2, 2],
        },
    )
    tsv(
        root / "survival/comparison/auc_difference.tsv",
        {
            "cohort": list(COHORTS),
            "model_a": ["clinical"] * 2,
            "model_b": ["clinical + RRS"] * 2,
            "difference": [0.035, 0.045],
            "ci_lower": [-0.01, 0.002],
            "ci_upper": [0.08, 0.09],
            "p_value": [0.12, 0.04],
        },
    )
    tsv(
        root / "survival/comparison/cindex.tsv",
        {
            "cohort": list(COHORTS),
            "model": ["clinical"] * 2,
            "harrell": [0.7, 0.68],
            "harrell_ci_lower": [0.6, 0.5],
            "harrell_ci_upper": [0.8, 0.8],
            "uno": [0.69, 0.66],
            "uno_ci_lower": [0.6, 0.5],
            "uno_ci_upper": [0.8, 0.8],
        },
    )
    tsv(
        root / "survival/comparison/models.tsv",
        {
            "model": ["clinical", "clinical + RRS"],
            "covariate": ["age", "rrs"],
            "coef": [0.01, 0.8],
            "hazard_ratio": [1.01, 2.2],
            "note": ["6.0 training events per variable: below 10, expect overfitting"] * 2,
        },
    )
    tsv(
        root / "survival/comparison/calibration_summary.tsv",
        {
            "cohort": list(COHORTS),
            "model": ["clinical"] * 2,
            "slope": [1.0, 0.81],
            "slope_ci_lower": [0.7, 0.5],
            "slope_ci_upper": [1.3, 1.12],
            "observed": [0.3, 0.28],
            "expected": [0.3, 0.33],
            "oe_ratio": [1.0, 0.85],
            "oe_ci_lower": [0.8, 0.6],
            "oe_ci_upper": [1.2, 1.2],
            "ici": [0.01, 0.05],
            "e50": [0.01, 0.04],
            "e90": [0.02, 0.09],
            "note": ["", ""],
        },
    )
    tsv(
        root / "survival/comparison/optimism.tsv",
        {
            "model": ["clinical"] * 2 + ["clinical + RRS"] * 2,
            "measure": ["C", "Slope"] * 2,
            "apparent": [0.70, 1.0, 0.76, 1.0],
            "optimism": [0.03, 0.12, None, None],
            "corrected": [0.67, 0.88, None, None],
            "resamples": [200, 200, 0, 0],
            "note": ["", ""] + ["apparent only: the RRS is not repeated"] * 2,
        },
    )
    for name in ("auc", "roc", "calibration", "decision_curve", "nomogram"):
        png(root / f"survival/comparison/{name}.png")

    # whole-slide images
    slide_subjects = [subjects[0], subjects[1], subjects[2]]  # RDLS1, RDLS2, RDLS3
    tsv(
        root / "wsi/slide_metrics.tsv",
        {
            "slide_id": list(SLIDES),
            "subject_id": slide_subjects,
            "tissue_mm2": [1.0, 1.2, 0.9],
            "tiles": [40, 50, 35],
            "lymphocyte_density_mm2": [300.0, 1800.0, 500.0],
            "intratumoral_lymphocyte_density_mm2": [100.0, 900.0, 300.0],
            "stromal_lymphocyte_density_mm2": [400.0, 1000.0, 450.0],
            "exclusion_index": [4.0, 1.1, 1.5],
            "stroma_fraction": [0.3, 0.35, 0.75],
            "tumour_stroma_ratio": [2.3, 1.9, 0.33],
            "immune_phenotype": ["excluded", "inflamed", "desert"],
            "qc_flags": ["", "", ""],
        },
    )
    for slide in SLIDES:
        png(root / f"wsi/heatmaps/{slide}.png", colour=(213, 94, 0))
    wsi_rows = []
    for metric, medians, p in (
        ("intratumoral_lymphocyte_density_mm2", (100.0, 900.0, 300.0), 1e-5),
        ("exclusion_index", (4.0, 1.1, 1.5), 2e-4),
        ("stroma_fraction", (0.3, 0.35, 0.75), 3e-3),
    ):
        wsi_rows.append(
            {
                "metric": metric,
                "comparison": "all",
                "test": "Kruskal-Wallis",
                **{f"median_{s}": m for s, m in zip(SUBTYPES, medians, strict=True)},
                "statistic": 20.0,
                "p_value": p,
                "p_adjusted": None,
            }
        )
        for a, b in (("RDLS1", "RDLS2"), ("RDLS1", "RDLS3"), ("RDLS2", "RDLS3")):
            wsi_rows.append(
                {
                    "metric": metric,
                    "comparison": f"{a} vs {b}",
                    "test": "Mann-Whitney U",
                    "statistic": 1.0,
                    "p_value": 0.004,
                    "p_adjusted": 0.006,
                }
            )
    tsv(root / "wsi/by_subtype.tsv", pd.DataFrame(wsi_rows))
    png(root / "wsi/by_subtype.png")

    # single-cell RNA-seq
    png(root / "scrna/umap.png")
    png(root / "scrna/dotplot.png")
    tsv(
        root / "scrna/cell_types.tsv",
        {
            "leiden": ["0", "1", "2"],
            "cell_type": ["CD8 T cell", "Fibroblast", "Epithelial"],
            "cells": [300, 200, 500],
            "confidence": [0.9, 0.8, 0.95],
        },
    )
    shares = {"RDLS1": (0.05, 0.25, 0.70), "RDLS2": (0.40, 0.10, 0.50), "RDLS3": (0.10, 0.45, 0.45)}
    rows = []
    for i, subtype in enumerate(SUBTYPES):
        for cell_type, share in zip(
            ("CD8 T cell", "Fibroblast", "Epithelial"), shares[subtype], strict=True
        ):
            rows.append(
                {
                    "sample_id": f"sc{i}",
                    "subject_id": subjects[i],
                    "subtype": subtype,
                    "cell_type": cell_type,
                    "cells": int(1000 * share),
                    "fraction": share,
                }
            )
    tsv(root / "scrna/by_subtype/composition.tsv", pd.DataFrame(rows))
    tsv(
        root / "scrna/by_subtype/tests.tsv",
        {
            "cell_type": ["CD8 T cell", "Epithelial", "Fibroblast"],
            "test": ["Kruskal-Wallis"] * 3,
            "statistic": [5.0, 1.0, 4.0],
            "pvalue": [0.01, 0.6, 0.02],
            "padj": [0.03, 0.6, 0.03],
            "n_samples": [3, 3, 3],
            "note": ["", "", ""],
            **{f"mean_fraction_{s}": [shares[s][0], shares[s][2], shares[s][1]] for s in SUBTYPES},
        },
    )
    png(root / "scrna/by_subtype/composition.png")
    png(root / "scrna/by_subtype/signature_scores.png")

    # bulk RNA-seq
    png(root / "bulk/overview/pca.png")
    png(root / "bulk/overview/heatmap.png")
    # summaries beside the per-contrast tables must not pass for contrasts
    tsv(root / "bulk/deseq2/summary.tsv", {"contrast": list(CONTRASTS), "up": [2] * 4})
    tsv(root / "bulk/gsea/summary.tsv", {"contrast": list(CONTRASTS), "term": ["x"] * 4})
    for contrast in CONTRASTS:
        tsv(
            root / f"bulk/deseq2/{contrast}.tsv",
            {
                "gene": ["CD8A", "COL1A1", "EPCAM", "GZMB"],
                "baseMean": [100.0, 500.0, 900.0, 50.0],
                "log2FoldChange": [2.0, -1.5, 0.1, 1.2],
                "lfcSE": [0.3] * 4,
                "pvalue": [1e-8, 1e-5, 0.8, 0.01],
                "padj": [1e-7, 1e-4, 0.9, 0.03],
                "log2FoldChange_shrunk": [1.8, -1.3, 0.05, 1.0],
            },
        )
        png(root / f"bulk/deseq2/{contrast}_volcano.png")
        png(root / f"bulk/deseq2/{contrast}_ma.png")
        png(root / f"bulk/gsea/{contrast}.png")
    gsea = {
        "RDLS1_vs_rest": [
            ("HALLMARK_TGF_BETA_SIGNALING", 1.2, 0.30),
            ("HALLMARK_INTERFERON_GAMMA_RESPONSE", -2.0, 0.001),
        ],
        "RDLS2_vs_rest": [
            ("HALLMARK_INTERFERON_GAMMA_RESPONSE", 2.1, 0.001),
            ("HALLMARK_ALLOGRAFT_REJECTION", 1.8, 0.01),
            ("HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION", -1.5, 0.05),
        ],
        "RDLS3_vs_rest": [
            ("HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION", 2.4, 0.0005),
            ("HALLMARK_ANGIOGENESIS", 1.6, 0.04),
        ],
        "RDLS1_vs_RDLS2": [("HALLMARK_INTERFERON_GAMMA_RESPONSE", -2.2, 0.001)],
    }
    for contrast, terms in gsea.items():
        tsv(
            root / f"bulk/gsea/{contrast}.tsv",
            {
                "term": [t for t, _, _ in terms],
                "nes": [n for _, n, _ in terms],
                "pvalue": [f / 2 for _, _, f in terms],
                "fdr": [f for _, _, f in terms],
                "leading_edge": ["CD8A;GZMB"] * len(terms),
                "size": [200] * len(terms),
            },
        )
    samples = [f"B{i:02d}" for i in range(6)]
    bulk_subtypes = [SUBTYPES[i % 3] for i in range(6)]
    immune = {"RDLS1": -500.0, "RDLS2": 800.0, "RDLS3": 100.0}
    stromal = {"RDLS1": 0.0, "RDLS2": 100.0, "RDLS3": 900.0}
    tsv(
        root / "bulk/scores/scores.tsv",
        {
            "sample_id": samples,
            "subject_id": subjects[:6],
            "subtype": bulk_subtypes,
            "immune_score": [immune[s] for s in bulk_subtypes],
            "stromal_score": [stromal[s] for s in bulk_subtypes],
            "estimate_score": [immune[s] + stromal[s] for s in bulk_subtypes],
        },
    )
    score_rows = []
    for score, medians in (("immune_score", immune), ("stromal_score", stromal)):
        score_rows.append(
            {
                "metric": score,
                "comparison": "all",
                "test": "Kruskal-Wallis",
                "statistic": 4.5,
                "p_value": 0.01,
                "p_adjusted": None,
                **{f"median_{s}": medians[s] for s in SUBTYPES},
            }
        )
        score_rows.append(
            {
                "metric": score,
                "comparison": "RDLS1 vs RDLS2",
                "test": "Mann-Whitney U",
                "statistic": 0.0,
                "p_value": 0.02,
                "p_adjusted": 0.04,
            }
        )
    tsv(root / "bulk/scores/tests.tsv", pd.DataFrame(score_rows))
    png(root / "bulk/scores/scores.png")
    fractions = {"RDLS1": (0.05, 0.2), "RDLS2": (0.3, 0.1), "RDLS3": (0.1, 0.5)}
    tsv(
        root / "bulk/deconvolution/fractions.tsv",
        {
            "sample_id": samples,
            "subject_id": subjects[:6],
            "subtype": bulk_subtypes,
            "CD8_T": [fractions[s][0] for s in bulk_subtypes],
            "Fibroblast": [fractions[s][1] for s in bulk_subtypes],
            "fit_correlation": [0.9] * 6,
        },
    )
    tsv(
        root / "bulk/deconvolution/tests.tsv",
        {
            "metric": ["CD8_T", "CD8_T", "Fibroblast"],
            "comparison": ["all", "RDLS1 vs RDLS2", "all"],
            "test": ["Kruskal-Wallis", "Mann-Whitney U", "Kruskal-Wallis"],
            "statistic": [4.0, 0.0, 4.2],
            "p_value": [0.01, 0.1, 0.008],
            "p_adjusted": [None, 0.1, None],
            "median_RDLS1": [0.05, None, 0.2],
            "median_RDLS2": [0.3, None, 0.1],
            "median_RDLS3": [0.1, None, 0.5],
        },
    )
    png(root / "bulk/deconvolution/fractions.png")
    return discover_inputs(root)
