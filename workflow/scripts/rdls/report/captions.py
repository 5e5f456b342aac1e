"""Captions of the report's tables and figures: the method and the config values used.

Each function takes the run's config and returns plain text (escaped where it is rendered).
Values come from the config the run used, so a caption never states a default the run did not
use; a key the config lacks reads as "n/a".
"""

from __future__ import annotations

from collections.abc import Mapping

from rdls.report._html import fmt_pct

GSEA_FDR = 0.25  # GSEA's customary threshold for exploratory enrichment


def cfg(config: Mapping, dotted: str, default=None):
    """``config["a"]["b"]`` for ``"a.b"``; ``default`` where any key is missing."""
    value = config
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return default
        value = value[key]
    return value


def _v(config: Mapping, dotted: str) -> str:
    value = cfg(config, dotted)
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return and_join(value) or "none"
    return str(value)


def _pct(config: Mapping, dotted: str) -> str:
    value = cfg(config, dotted)
    return "n/a" if value is None else fmt_pct(value)


def and_join(values) -> str:
    values = [str(v) for v in (values or [])]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def cox_covariates(config: Mapping) -> list[str]:
    """The clinical covariates as the Cox models enter them (log2 where configured)."""
    log2 = set(cfg(config, "survival.log2_covariates", []) or [])
    covariates = cfg(config, "clinical.covariates", []) or []
    return [f"log2({c})" if c in log2 else str(c) for c in covariates]


def cohort_overview(config: Mapping) -> str:
    covariates = ", ".join(cfg(config, "clinical.covariates", []) or []) or "none"
    return (
        "Subjects and samples per cohort from the sample sheets. Events are recurrences; median "
        "follow-up by reverse Kaplan-Meier; recurrence-free survival (RFS) at 60 months by "
        f"Kaplan-Meier (lifelines). Clinical covariates: {covariates}."
    )


def consensus(config: Mapping) -> str:
    c = "subtypes.consensus"
    return (
        "Consensus clustering (Monti et al. 2003) of the training cohort: "
        f"{_v(config, c + '.reps')} resamplings of {_pct(config, c + '.item_fraction')} of the "
        f"subjects for k = {_v(config, c + '.k_min')} to {_v(config, c + '.k_max')}, each "
        f"clustered by {_v(config, c + '.algorithms')} and pooled into one consensus matrix per "
        f"k (seed {_v(config, 'seed')}); feature families {_v(config, 'subtypes.families')}. "
        "PAC: proportion of ambiguous clustering (lower is more stable); CDF area and its "
        "relative change; mean silhouette of the consensus clusters."
    )


def k_rule(config: Mapping) -> str:
    c = "subtypes.consensus"
    if cfg(config, c + ".k"):
        return f"k fixed at {_v(config, c + '.k')} in the config"
    interval = "-".join(str(v) for v in cfg(config, c + ".pac_interval", []) or [])
    return (
        f"k chosen by the '{_v(config, c + '.k_rule')}' rule among k whose smallest cluster "
        f"holds at least {_pct(config, c + '.min_cluster_fraction')} of training subjects (PAC "
        f"interval {interval or 'n/a'})"
    )


STABILITY = (
    "Bootstrap stability of each subtype (Hennig 2007, R's clusterboot): the training cohort "
    "resampled and reclustered, each subtype's best Jaccard match averaged; 'dissolved' is the "
    "share of resamples with a best match of 0.5 or less. Verdicts: highly stable from 0.85, "
    "stable from 0.75, a pattern from 0.6, unstable below."
)

NAMING = (
    "Naming rule: clusters ranked by recurrence rate in training (events per person-time): "
    "RDLS1 the highest, RDLS2 the lowest, RDLS3 and beyond the rest in decreasing rate."
)


def classifier(config: Mapping) -> str:
    return (
        f"Classifier chosen by {_v(config, 'subtypes.classifier.folds')}-fold stratified "
        "cross-validation in training among "
        f"{_v(config, 'subtypes.classifier.candidates')} (balanced accuracy; ties go to the "
        "earlier candidate)."
    )


def reliability(config: Mapping) -> str:
    return (
        "Reliability diagram of the assignment probabilities, out of fold in training: "
        "accuracy (share assigned their consensus subtype) against the mean probability of the "
        "assigned subtype, in ten equal-width bins, before (grey) and after (blue) "
        f"{_v(config, 'subtypes.classifier.calibration')} calibration; the diagonal is perfect "
        "calibration, the bars below count the subjects per bin, the dotted line is "
        f"min_confidence {_v(config, 'subtypes.classifier.min_confidence')}."
    )


def agreement(config: Mapping) -> str:
    return (
        "Agreement of the classifier's labels with an independent consensus clustering inside "
        f"each other cohort ({_v(config, 'subtypes.validation_reps')} resamplings, same k): "
        "adjusted Rand index and Cohen's kappa (clusters matched by the Hungarian algorithm)."
    )


IN_GROUP = (
    "In-group proportion (Kapp and Tibshirani 2007): share of a subtype's members whose "
    "nearest neighbour has the same subtype."
)


def harmonisation(config: Mapping) -> str:
    i = "imaging"
    reference = cfg(config, i + ".harmonisation.reference_centre") or "the largest in training"
    return (
        f"Radiomic (pyradiomics, {_v(config, i + '.radiomics.params')}) and deep features "
        f"(self-supervised 3D ResNet-10, {_v(config, i + '.encoder.epochs')} epochs) per "
        f"family. Harmonisation: {_v(config, i + '.harmonisation.method')} onto reference "
        f"centre {reference}, fitted on the training cohort only; a centre training lacks is "
        "estimated from its own subjects' images (no outcome used). Centre predictability is "
        "the cross-validated balanced accuracy of predicting the centre from the features "
        "(chance: one over the number of centres), for all subjects and per cohort (a "
        "validation cohort pooled with the training cohort). "
        f"Stable features: {_v(config, i + '.stability.icc_kind')} \u2265 "
        f"{_v(config, i + '.stability.icc_threshold')} under mask erosion/dilation and a "
        f"simulated re-scan of {_v(config, i + '.stability.subjects')} training subjects."
    )


def training_curve(config: Mapping) -> str:
    return (
        "Self-supervised encoder: patch-contrast (NT-Xent, temperature "
        f"{_v(config, 'imaging.encoder.temperature')}) loss by epoch on the training cohort."
    )


def subtype_montage(config: Mapping, *, per_subtype: int) -> str:
    spacing = "\u00d7".join(str(v) for v in cfg(config, "imaging.preprocess.spacing_mm", []))
    return (
        f"The {per_subtype} most confidently assigned subjects of each subtype (all cohorts): "
        "T2-weighted slice with the largest tumour area after preprocessing "
        f"({spacing or 'n/a'} mm grid, {_v(config, 'imaging.preprocess.normalisation')} "
        "normalisation), tumour mask outlined in the subtype's colour."
    )


def km(config: Mapping, cohort: str) -> str:
    return (
        f"{cohort}: recurrence-free survival by subtype, 95% confidence bands, numbers at risk "
        f"every {_v(config, 'survival.at_risk_every_months')} months."
    )


LOGRANK = (
    "Log-rank tests of recurrence-free survival by subtype: overall, and pairwise with "
    "Benjamini-Hochberg adjustment within each cohort."
)


def cox(config: Mapping, *, reference: str | None) -> str:
    covariates = ", ".join(cox_covariates(config)) or "none"
    return (
        f"Hazard ratios of recurrence for each subtype vs {reference or 'the reference'}, "
        f"multivariable Cox models adjusted for {covariates} (lifelines, Efron ties; complete "
        "cases; Wald p)."
    )


def forest(config: Mapping) -> str:
    covariates = ", ".join(cox_covariates(config)) or "none"
    return (
        "Hazard ratios (95% CI, log scale) of the multivariable Cox model in each cohort: "
        f"subtype and {covariates}."
    )


def rrs(config: Mapping) -> str:
    r = "survival.rrs"
    return (
        "Candidate features set RDLS1 apart in training (Mann-Whitney, BH-adjusted p < "
        f"{_v(config, r + '.fdr')}, at most {_v(config, r + '.max_features')}); Coxnet (l1 "
        f"ratio {_v(config, r + '.l1_ratio')}) with the penalty chosen by "
        f"{_v(config, r + '.folds')}-fold cross-validated deviance "
        f"({_v(config, r + '.penalty_rule')} rule); cut-off {_v(config, r + '.cutoff')} (at "
        f"least {_pct(config, r + '.min_group_fraction')} per group), locked in training and "
        "applied unchanged elsewhere."
    )


def auc(config: Mapping) -> str:
    covariates = ", ".join(cox_covariates(config)) or "none"
    return (
        f"Time-dependent AUC at {_v(config, 'survival.horizon_months')} months "
        "(cumulative/dynamic; cases weighted by the inverse probability of censoring, "
        "estimated by Kaplan-Meier in each cohort, as timeROC's marginal weighting) with 95% "
        "CIs from the estimator's iid representation; difference (second minus first model) "
        "with its paired test (timeROC's compare). Clinical "
        f"model: {covariates}; both models fitted in training (training values are apparent)."
    )


def calibration(config: Mapping) -> str:
    return (
        f"Calibration at {_v(config, 'survival.horizon_months')} months: predicted risk against "
        "Kaplan-Meier observed risk (95% CI) in "
        f"{_v(config, 'survival.comparison.calibration_groups')} groups of predicted risk, per "
        "cohort."
    )


def decision_curve(config: Mapping) -> str:
    return (
        f"Decision curves at {_v(config, 'survival.horizon_months')} months: net benefit for "
        f"risk thresholds up to {_v(config, 'survival.comparison.max_threshold')}, against "
        "treating all or none, per cohort."
    )


def wsi_method(config: Mapping) -> str:
    w = "wsi"
    override = (
        "; a user tile classifier overrules the compartment of the tiles it calls stroma, "
        "other or background"
        if cfg(config, w + ".quantify.classifier.checkpoint")
        else ""
    )
    c = w + ".quantify.compartments"
    p = w + ".phenotype"
    return (
        f"Tiles of {_v(config, w + '.tiles.size_px')} px at {_v(config, w + '.tiles.mpp')} "
        f"\u00b5m per pixel with at least {_pct(config, w + '.tiles.min_tissue_fraction')} "
        f"tissue ({_v(config, w + '.tissue.method')} tissue detection). Nuclei classified one "
        "by one (lymphocyte, tumour, fibroblast, other); epithelium drawn at the pixel level "
        f"from the tumour nuclei (gaps up to {_v(config, c + '.nest_gap_um')} \u00b5m closed), "
        "the rest of the tissue stroma; lymphocytes are intratumoral inside epithelium, "
        f"in the margin band within {_v(config, c + '.margin_um')} \u00b5m of it{override}. "
        f"Immune phenotype: desert below {_v(config, p + '.desert_max_density_mm2')} "
        "lymphocytes per mm\u00b2 of tissue, excluded from a stromal/intratumoral density "
        f"ratio of {_v(config, p + '.excluded_min_index')}, else inflamed (Chen and Mellman "
        f"2017). Stain normalisation {_v(config, w + '.quantify.stain_normalisation')}."
    )


WSI_BY_SUBTYPE = (
    "Slide metrics by subtype (slides of one subject averaged): median per subtype, "
    "Kruskal-Wallis across subtypes, and pairwise Mann-Whitney U tests with Benjamini-Hochberg "
    "adjusted p (SciPy)."
)


def bulk_overview(config: Mapping) -> tuple[str, str]:
    """Captions of the PCA and of the heatmap."""
    o = "bulk.overview"
    pca = (
        f"Principal components of the variance-stabilised counts (genes with at least "
        f"{_v(config, o + '.min_count')} reads; the {_v(config, o + '.pca_top_genes')} most "
        "variable), samples coloured by subtype."
    )
    heatmap = (
        f"The {_v(config, o + '.heatmap_genes_per_contrast')} top genes of each contrast at "
        f"adjusted p < {_v(config, o + '.alpha')} (variance-stabilised, scaled), samples grouped "
        "by subtype."
    )
    return pca, heatmap


def deseq2(config: Mapping, *, alpha: float) -> str:
    d = "bulk.deseq2"
    covariates = cfg(config, d + ".covariates") or []
    design = " + ".join([*map(str, covariates), "subtype"])
    return (
        f"Genes differentially expressed at BH-adjusted p < {alpha:g} per contrast (PyDESeq2, "
        f"design ~ {design}, Wald test; genes with at least {_v(config, d + '.min_count')} reads "
        f"in as many samples as the smallest group; {_v(config, d + '.fit_type')} dispersion "
        f"trend; Cook's refit {_v(config, d + '.refit_cooks')}, independent filtering "
        f"{_v(config, d + '.independent_filter')}; apeGLM-shrunk log2 fold changes "
        f"{_v(config, d + '.lfc_shrink')}). 'X_vs_rest' is one subtype against all others, "
        "'X_vs_Y' two subtypes with Y the reference; up = higher in the first."
    )


def gsea(config: Mapping, *, top: int) -> str:
    g = "bulk.gsea"
    return (
        f"The {top} most significant Hallmark gene sets in each direction per contrast: "
        f"preranked GSEA (gseapy) of {_v(config, g + '.gene_sets')}, genes ranked by "
        f"{_v(config, g + '.rank_by')}, {_v(config, g + '.permutations')} permutations (seed "
        f"{_v(config, 'seed')}), sets of {_v(config, g + '.min_size')} to "
        f"{_v(config, g + '.max_size')} genes. NES: normalised enrichment score; FDR < "
        f"{GSEA_FDR:g} is GSEA's customary threshold."
    )


def bulk_scores(config: Mapping) -> str:
    s = "bulk.scores"
    return (
        "ESTIMATE immune and stromal scores: single-sample GSEA of "
        f"{_v(config, s + '.immune_set')} and {_v(config, s + '.stromal_set')} "
        f"({_v(config, s + '.gene_sets')}, at least {_v(config, s + '.min_genes')} genes "
        "present) on log2(CPM + 1); the ESTIMATE score is their sum. By subtype: median per "
        "subtype (each subject once), Kruskal-Wallis across subtypes, pairwise Mann-Whitney U "
        "with Benjamini-Hochberg adjusted p."
    )


def deconvolution(config: Mapping) -> str:
    d = "bulk.deconvolution"
    excluded = cfg(config, d + ".exclude_cell_types") or []
    left_out = f"; left out: {and_join(excluded)}" if excluded else ""
    return (
        "Cell-type fractions of each bulk sample by non-negative least squares on a "
        f"single-cell signature: the {_v(config, d + '.genes_per_type')} most specific genes "
        f"per cell type, at least {_v(config, d + '.min_fold_change')}-fold above the next type "
        f"and {_v(config, d + '.min_cpm')} CPM in their own, cell types with at least "
        f"{_v(config, d + '.min_cells')} cells{left_out}."
    )


def scrna(config: Mapping) -> str:
    q, i = "scrna.qc", "scrna.integrate"
    doublets = (
        f"doublets removed by Scrublet (expected rate {_v(config, q + '.expected_doublet_rate')})"
        if cfg(config, q + ".doublets")
        else "no doublet removal"
    )
    return (
        f"Cells pass QC as {_v(config, q + '.method')} outliers ({_v(config, q + '.n_mads')} "
        f"MADs) with floors of {_v(config, q + '.min_counts')} UMIs and "
        f"{_v(config, q + '.min_genes')} genes and at most "
        f"{_pct(config, q + '.max_mito_fraction')} mitochondrial UMIs; {doublets}. Integration "
        f"{_v(config, i + '.method')} across samples on {_v(config, i + '.n_top_genes')} highly "
        f"variable genes and {_v(config, i + '.n_pcs')} principal components; Leiden clusters "
        f"at resolution {_v(config, i + '.resolution')}; cell types from marker genes "
        f"({_v(config, 'scrna.markers')}) by cluster majority (scanpy)."
    )


SCRNA_TESTS = (
    "Share of each cell type by subtype: mean over samples, Kruskal-Wallis across subtypes on "
    "one value per sample (cells of one patient are not independent), Benjamini-Hochberg "
    "adjusted over cell types."
)
