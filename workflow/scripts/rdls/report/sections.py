"""One builder per section of the report: the run's files in, a :class:`Section` of HTML out.

Every builder takes the run's :class:`~rdls.report._files.Files` and the config and tolerates
missing files: a figure or table that is absent becomes a notice naming it, so one missing
output never hides the rest. Captions (:mod:`rdls.report.captions`) state the method and the
config values used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rdls.compare import NO_STRUCTURE, nothing_to_compare, subtype_levels
from rdls.report import captions
from rdls.report import cards as card_logic
from rdls.report._files import Files
from rdls.report._html import (
    Column,
    Section,
    bullet_list,
    ci_text,
    details,
    esc,
    figure,
    figure_uri,
    fmt_fixed,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_ratio,
    grid,
    is_missing,
    natural_sorted,
    notice,
    paragraph,
    png_bytes_uri,
    subtype_colours,
    table,
)
from rdls.report.captions import cfg

log = logging.getLogger(__name__)

BRANCH_TITLES = {
    "imaging": "Imaging",
    "subtypes": "Subtype discovery",
    "survival": "Survival and the recurrence risk score",
    "wsi": "Pathology: whole-slide images",
    "bulk": "Bulk RNA-seq",
    "scrna": "Single-cell RNA-seq",
}
_SHEET_OF = {"imaging": "mri", "wsi": "slides", "scrna": "scrna", "bulk": "bulk"}
_NEEDS = {"subtypes": "imaging", "survival": "subtypes"}
COHORT_ORDER = ("training", "internal_validation", "external_validation", "biological")
WSI_METRICS = {
    "lymphocyte_density_mm2": "Lymphocytes per mm\u00b2",
    "intratumoral_lymphocyte_density_mm2": "Intratumoral lymphocytes per mm\u00b2",
    "stromal_lymphocyte_density_mm2": "Stromal lymphocytes per mm\u00b2",
    "margin_lymphocyte_density_mm2": "Margin-band lymphocytes per mm\u00b2",
    "exclusion_index": "Exclusion index",
    "lymphocyte_distance_um": "Lymphocyte distance to epithelium (\u00b5m, median)",
    "stroma_fraction": "Stroma fraction",
    "tumour_stroma_ratio": "Tumour-stroma ratio",
    "immune_phenotype": "Immune phenotype (slides)",
}
BULK_SCORES = {
    "immune_score": "Immune score",
    "stromal_score": "Stromal score",
    "estimate_score": "ESTIMATE score",
}


# --- shared helpers ------------------------------------------------------------------------


def branch_off_reason(branch: str, config: Mapping, branches: Mapping[str, bool]) -> str:
    """Why a branch did not run, in the words of the config."""
    if cfg(config, f"{branch}.activate") is False:
        return f"switched off in the config ({branch}: activate: false)"
    needed = _NEEDS.get(branch)
    if needed and not branches.get(needed, False):
        return f"it needs the {BRANCH_TITLES[needed].lower()} branch, which did not run"
    if branch in _SHEET_OF:
        return (
            f"the {_SHEET_OF[branch]} sheet has no rows, or this version of the workflow does "
            "not run the branch"
        )
    return "the branch did not run"


def off_section(branch: str, anchor: str, config: Mapping, branches: Mapping[str, bool]) -> Section:
    """The section of a branch that did not run: why, from the config."""
    reason = branch_off_reason(branch, config, branches)
    text = f"Not in this report: {reason}. The rest of the report is unaffected."
    return Section(anchor, BRANCH_TITLES[branch], notice(text))


def missing(what: str) -> str:
    return notice(f"No {what} in this run's results.", kind="warning")


def cohort_order(cohorts) -> list[str]:
    """The study's cohorts in their usual order, then any others in natural order."""
    cohorts = list(cohorts)
    known = [c for c in COHORT_ORDER if c in cohorts]
    return known + natural_sorted(c for c in cohorts if c not in COHORT_ORDER)


NO_SUBTYPES = "No significant subtypes"


def no_subtypes_reason(files: Files) -> str:
    """Why the run has no subtypes to compare, ``""`` where it has.

    The consensus step's own message (with its numbers: the p-value of each k) where its
    structure.json says there is no structure; otherwise why the assignments cannot be
    compared (fewer than two subtypes).
    """
    structure = files.json("consensus_structure")
    if structure is not None and structure.get("structure") is False:
        return str(structure.get("message") or NO_SUBTYPES)
    assignments = files.table("assignments")
    if assignments is None or "subtype" not in assignments.columns or assignments.empty:
        return ""
    return nothing_to_compare(assignments["subtype"])


def no_subtypes_notice(reason: str) -> str:
    """The visible statement: "No significant subtypes" and the numbers behind it."""
    text = reason[:1].upper() + reason[1:]
    if not text.lower().startswith(NO_SUBTYPES.lower()):
        text = f"{NO_SUBTYPES}: {text}"
    return notice(text, kind="warning")


def nothing_to_compare_notice(what: str, reason: str) -> str:
    """A section's word on why it compares nothing by subtype."""
    return notice(f"{what}: nothing to compare by subtype ({_first_clause(reason)}).")


def _first_clause(reason: str) -> str:
    """The head of a reason, for a sentence that repeats it ("no significant subtypes")."""
    head = reason.split(":")[0].strip().rstrip(".")
    return head[:1].lower() + head[1:]


def subtypes_of(files: Files) -> list[str]:
    for key in ("assignments", "subtype_rates"):
        frame = files.table(key)
        if frame is not None and "subtype" in frame.columns:
            return subtype_levels(frame["subtype"])
    return []


def _h3(anchor: str, title: str) -> str:
    return f'<h3 id="{esc(anchor)}">{esc(title)}</h3>'


def _hr_ci(hr, low, high) -> str:
    return ci_text(hr, low, high, formatter=fmt_ratio)


def _auc_ci(value, low, high) -> str:
    return ci_text(value, low, high, formatter=fmt_fixed)


def _is_true(series: pd.Series) -> pd.Series:
    return series.astype(str).str.lower().isin(["true", "1", "yes"])


def _no_flags(frame: pd.DataFrame) -> pd.Series:
    if "qc_flags" not in frame.columns:
        return pd.Series(True, index=frame.index)
    return frame["qc_flags"].isna() | (frame["qc_flags"].astype(str).str.strip() == "")


def tests_wide(tests: pd.DataFrame, *, labels: Mapping[str, str] | None = None):
    """One row per quantity from a long tests table (an overall row and pairwise rows).

    Returns the wide table (medians, the overall test's statistic and p, an adjusted p per
    pair) and its columns for :func:`~rdls.report._html.table`. The test's name moves into the
    statistic's header when every row has the same test.
    """
    name = str(tests.columns[0])
    p_column = next((c for c in ("p_value", "pvalue") if c in tests.columns), None)
    adj_column = next((c for c in ("p_adjusted", "padj") if c in tests.columns), None)
    has_comparison = "comparison" in tests.columns
    medians = [c for c in tests.columns if c.startswith("median_")]
    rows, pairs = [], []
    for quantity, group in tests.groupby(name, sort=False):
        is_pair = group["comparison"].astype(str).str.contains(" vs ") if has_comparison else None
        overall = group[~is_pair] if has_comparison else group
        row = {"quantity": (labels or {}).get(quantity, quantity)}
        if len(overall):
            first = overall.iloc[0]
            row.update({c: first[c] for c in medians})
            row["test"] = first.get("test")
            row["statistic"] = first.get("statistic")
            row["p"] = first[p_column] if p_column else None
        if has_comparison and adj_column:
            for _, pair in group[is_pair].iterrows():
                key = str(pair["comparison"])
                if key not in pairs:
                    pairs.append(key)
                row[key] = pair[adj_column]
        rows.append(row)
    wide = pd.DataFrame(rows)
    columns: dict[str, str | Column] = {"quantity": ""}
    columns.update({c: f"Median {c[len('median_') :]}" for c in medians})
    columns.update({"test": "Test", "statistic": "Statistic", "p": Column("p", fmt_p)})
    if "test" in wide.columns and wide["test"].nunique(dropna=False) == 1:
        test = wide["test"].iloc[0]
        del columns["test"]
        columns["statistic"] = "Statistic" if is_missing(test) else f"{test} statistic"
    columns.update({pair: Column(f"{pair} (adj. p)", fmt_p) for pair in pairs})
    return wide, columns


# --- overview ------------------------------------------------------------------------------


def overview_section(files: Files, config: Mapping, branches: Mapping[str, bool]) -> Section:
    """The cohort, the branches that ran (and why others did not), QC exclusions, the config."""
    if cfg(config, "demo.activate"):
        what = (
            f"the synthetic demo cohort (scale {cfg(config, 'demo.scale')}, seed "
            f"{cfg(config, 'seed')}), whose planted truth the tests check"
        )
    else:
        what = f"the cohort of the sheets ({cfg(config, 'sheets.subjects', 'subjects sheet')})"
    parts = [
        paragraph(
            f"This report covers {what}. Every number, table and sentence is computed from this "
            "run's results; nothing is fixed text."
        )
    ]
    if branches.get("subtypes", False) and (reason := no_subtypes_reason(files)):
        parts.insert(0, no_subtypes_notice(reason))
    ran = []
    for branch, on in branches.items():
        status = "ran" if on else f"not run ({branch_off_reason(branch, config, branches)})"
        ran.append(f"{BRANCH_TITLES[branch]}: {status}")
    parts.append("<h3>Branches</h3>" + bullet_list(ran))

    parts.append(_h3("overview-cohorts", "Cohorts"))
    overview = files.table("cohort_overview")
    if overview is None:
        parts.append(missing("cohort overview (results/cohort/overview.tsv)"))
    else:
        columns = {
            "cohort": "Cohort",
            "subjects": "Subjects",
            "centres": "Centres",
            "with_mri": "MRI",
            "slides": "Slides",
            "scrna_samples": "scRNA-seq",
            "bulk_samples": "Bulk RNA-seq",
            "with_follow_up": "With follow-up",
            "events": "Events",
            "median_follow_up_months": "Median follow-up (months)",
            "rfs_at_60_months": Column("RFS at 60 months", fmt_pct),
        }
        caption = captions.cohort_overview(config)
        parts.append(
            table(overview, caption=caption, columns=columns, source=_src("cohort_overview"))
        )
    caption = "Cohort overview: subjects, modalities and recurrence-free survival per cohort."
    parts.append(figure(files.path("cohort_figure"), caption))

    parts.append(_h3("overview-qc", "Quality control exclusions"))
    parts.append(exclusions_html(files.table("qc_exclusions"), config))
    config_text = f'<pre class="config">{esc(dump_config(config))}</pre>'
    parts.append(details("Configuration of this run", config_text))
    subsections = [("overview-cohorts", "Cohorts"), ("overview-qc", "QC exclusions")]
    return Section("overview", "Cohort and quality control", "".join(parts), subsections)


def exclusions_html(exclusions: pd.DataFrame | None, config: Mapping) -> str:
    allow = str(cfg(config, "qc.allow_exclusions")).lower()
    if exclusions is None:
        return missing("QC exclusion table (results/qc/exclusions.tsv)")
    if exclusions.empty:
        return paragraph(f"No item was excluded by quality control (qc.allow_exclusions: {allow}).")
    counts = exclusions.groupby(["kind", "step"]).size().rename("items").reset_index()
    summary = "; ".join(f"{r.items} {r.kind}(s) at {r.step}" for r in counts.itertuples())
    text = paragraph(
        f"{len(exclusions)} item(s) were left out by quality control (qc.allow_exclusions: "
        f"{allow}): {summary}."
    )
    columns = {"item_id": "Item", "kind": "Kind", "step": "Step", "reason": "Reason"}
    caption = "Every item excluded by QC, with the step and the reason."
    return text + table(
        exclusions, caption=caption, columns=columns, max_rows=100, source=_src("qc_exclusions")
    )


def dump_config(config: Mapping) -> str:
    """The config as YAML (JSON where PyYAML is missing)."""
    plain = _plain(config)
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is in every env
        import json

        return json.dumps(plain, indent=2)
    return yaml.safe_dump(plain, sort_keys=False, default_flow_style=None)


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _src(key: str) -> str:
    from rdls.report.inputs import FILES

    return f"results/{FILES[key][0]}"


# --- cards ---------------------------------------------------------------------------------


def card_inputs(files: Files, config: Mapping) -> card_logic.CardInputs:
    """The tables the cards read, from the run's files."""
    return card_logic.CardInputs(
        assignments=files.table("assignments"),
        rates=files.table("subtype_rates"),
        hazard_ratios=files.table("cox_table"),
        risk_scores=files.table("risk_scores"),
        wsi_tests=files.table("wsi_by_subtype"),
        slide_metrics=files.table("slide_metrics"),
        bulk_scores=files.table("bulk_scores"),
        bulk_score_tests=files.table("bulk_score_tests"),
        gsea=files.tables("gsea"),
        deconvolution=files.table("deconvolution"),
        deconvolution_tests=files.table("deconvolution_tests"),
        scrna_tests=files.table("scrna_tests"),
        scrna_composition=files.table("scrna_composition"),
        survival_summaries=files.tables("km_summary"),
        covariates=captions.cox_covariates(config),
    )


def cards_section(files: Files, config: Mapping, branches: Mapping[str, bool]) -> Section:
    """A card per subtype, written from the numbers of every branch that ran."""
    title = "Subtypes at a glance"
    if not branches.get("subtypes", False):
        reason = branch_off_reason("subtypes", config, branches)
        return Section("cards", title, notice(f"No subtypes in this run: {reason}."))
    if reason := no_subtypes_reason(files):
        return Section("cards", title, no_subtypes_notice(reason) + no_subtypes_card(reason))
    facts = card_logic.biology_cards(card_inputs(files, config))
    if not facts:
        return Section("cards", title, missing("subtypes (results/subtypes/assignments.tsv)"))
    intro = paragraph(
        "Each card is written from this run's tables: where the subtype stands among the "
        "subtypes (lowest, highest, tied), its summary value against the next subtype's, and "
        f"the test behind it (significance at {card_logic.ALPHA:g}; Hallmark sets at GSEA FDR "
        f"< {captions.GSEA_FDR:g}). A branch that did not run gives no sentence."
    )
    return Section("cards", title, intro + render_cards(facts))


def no_subtypes_card(reason: str) -> str:
    """The one card of a run without subtypes: why there is no card per subtype."""
    text = (
        f"Consensus clustering of the training cohort found no subtypes that hold against a "
        f"null without clusters: {reason} Every subject's subtype is therefore 'none', and "
        "there is no card per subtype. Survival is reported for the whole cohort (Cox with "
        "the clinical covariates alone, no recurrence risk score); the pathology, bulk and "
        "single-cell sections describe all samples and test nothing by subtype."
    )
    return (
        f'<div class="cards"><article class="card"><h3>{esc(NO_SUBTYPES)}</h3>'
        f"<dl><dt>Why there are no subtype cards</dt><dd><p>{esc(text)}</p></dd></dl>"
        "</article></div>"
    )


def render_cards(facts: Mapping[str, Sequence[card_logic.Fact]]) -> str:
    """The cards as HTML: one per subtype in its colour, facts grouped by topic."""
    colours = subtype_colours(facts)
    blocks = []
    for subtype, subtype_facts in facts.items():
        topics: dict[str, list[str]] = {}
        for fact in subtype_facts:
            topics.setdefault(fact.topic, []).append(fact.text)
        body = "".join(
            f"<dt>{esc(topic)}</dt><dd>" + "".join(f"<p>{esc(t)}</p>" for t in texts) + "</dd>"
            for topic, texts in topics.items()
        )
        body = body or "<dd><p>No numbers available for this subtype.</p></dd>"
        blocks.append(
            f'<article class="card" style="--subtype:{esc(colours[subtype])}">'
            f"<h3>{esc(subtype)}</h3><dl>{body}</dl></article>"
        )
    return '<div class="cards">' + "".join(blocks) + "</div>"


# --- subtype discovery ---------------------------------------------------------------------


def subtypes_section(files: Files, config: Mapping) -> Section:
    """Consensus clustering, the choice of k, naming, assignment in every cohort, Table 1."""
    parts = [_h3("subtypes-k", "The choice of k"), choice_of_k_html(files, config)]
    if reason := no_subtypes_reason(files):
        parts.insert(0, no_subtypes_notice(reason))
    parts.append(_h3("subtypes-naming", "Naming and assignment"))
    parts.append(assignment_html(files, config))
    parts.append(_h3("subtypes-table-one", "Table 1: clinical characteristics by subtype"))
    path = files.path("table_one")
    fragment = extract_table_one(path.read_text(encoding="utf-8")) if path else None
    if fragment:
        parts.append(details("Table 1 by cohort (click to open)", fragment))
    else:
        parts.append(missing("Table 1 (results/subtypes/table_one.html)"))
    subsections = [
        ("subtypes-k", "The choice of k"),
        ("subtypes-naming", "Naming and assignment"),
        ("subtypes-table-one", "Table 1"),
    ]
    return Section("subtypes", BRANCH_TITLES["subtypes"], "".join(parts), subsections)


def choice_of_k_html(files: Files, config: Mapping) -> str:
    parts = []
    rule = captions.k_rule(config)
    summary = files.table("consensus_summary")
    structure = files.json("consensus_structure")
    if structure is not None and structure.get("structure") and structure.get("message"):
        parts.append(paragraph(str(structure["message"])))  # the k found, with its numbers
    if summary is None or summary.empty:
        parts.append(missing("consensus summary (results/subtypes/consensus/summary.tsv)"))
    else:
        chosen = summary[_is_true(summary["chosen"])] if "chosen" in summary.columns else None
        if chosen is not None and len(chosen):
            row = chosen.iloc[0]
            others = summary[summary["k"] != row["k"]].sort_values("pac")
            text = (
                f"k = {int(row['k'])}: PAC {fmt_num(row['pac'])}, silhouette "
                f"{fmt_num(row['silhouette'])}, smallest cluster "
                f"{fmt_num(row['min_cluster_size'])} subjects"
            )
            if len(others):
                runner = others.iloc[0]
                text += f" (next lowest PAC {fmt_num(runner['pac'])} at k = {int(runner['k'])})"
            parts.append(paragraph(f"{text}; {rule}."))
        columns = {
            "k": "k",
            "pac": "PAC",
            "cdf_area": "CDF area",
            "delta_area": "\u0394 area",
            "silhouette": "Silhouette",
            "min_cluster_size": "Smallest cluster",
            "mean_cluster_consensus": "Mean cluster consensus",
            "null_pac_mean": "Null PAC",
            "rcsi": "RCSI",
            "p_value": Column("p", fmt_p),
            "p_adjusted": Column("Holm-adjusted p", fmt_p),
            "eligible": "Eligible",
            "significant": "Significant",
            "chosen": "Chosen",
        }
        caption = captions.consensus(config)
        parts.append(
            table(summary, caption=caption, columns=columns, source=_src("consensus_summary"))
        )
    parts.append(
        figure(
            files.path("consensus_k"),
            f"Choice of k: the data's PAC against the null datasets', RCSI and p-values, CDF area "
            f"and silhouette by k; {rule}.",
        )
    )
    parts.append(
        figure(
            files.path("consensus_heatmaps"),
            "Consensus matrices for each k (subjects ordered by their consensus cluster); a clean "
            "block diagonal means stable clusters.",
        )
    )
    caption = "Cumulative distribution of the consensus values for each k."
    parts.append(figure(files.path("consensus_cdf"), caption, size="half"))
    return "".join(parts)


def assignment_html(files: Files, config: Mapping) -> str:
    parts = []
    rates = files.table("subtype_rates")
    stability = files.table("consensus_stability")
    if rates is not None and not no_subtypes_reason(files):
        columns = {
            "subtype": "Subtype",
            "n": "Subjects",
            "n_followup": "With follow-up",
            "events": "Events",
            "person_months": "Person-months",
            "rate_per_100_person_years": "Rate per 100 person-years",
        }
        parts.append(
            table(rates, caption=captions.NAMING, columns=columns, source=_src("subtype_rates"))
        )
        if stability is not None and len(stability):
            columns = {
                "subtype": "Subtype",
                "n": "Subjects",
                "jaccard_mean": "Mean Jaccard",
                "jaccard_sd": "SD",
                "dissolved": Column("Dissolved", fmt_pct),
                "verdict": "Verdict",
            }
            caption, source = captions.STABILITY, _src("consensus_stability")
            parts.append(table(stability, caption=caption, columns=columns, source=source))
    assignments = files.table("assignments")
    if assignments is not None and len(assignments):
        shown, subtypes = subtype_counts(assignments)
        caption = (
            "Subjects per subtype and cohort (share of the cohort). Training subjects keep their "
            "consensus subtype; the other cohorts are assigned by the classifier."
        )
        columns = {"cohort": "Cohort", **{s: s for s in subtypes}, "total": "Total"}
        parts.append(table(shown, caption=caption, columns=columns, source=_src("assignments")))
    cv = files.table("classifier_cv")
    cv_notes = _notes(cv)
    if cv_notes:
        parts.append(notice(f"Classifier: {'; '.join(cv_notes).rstrip('.')}."))
    elif cv is not None and len(cv):
        folds = cv.groupby("classifier", sort=False)["balanced_accuracy"]
        summary = folds.agg(["mean", "std", "min"]).reset_index()
        columns = {
            "classifier": "Classifier",
            "mean": "Mean balanced accuracy",
            "std": "SD",
            "min": "Worst fold",
        }
        caption = captions.classifier(config)
        parts.append(table(summary, caption=caption, columns=columns, source=_src("classifier_cv")))
    parts.append(calibration_html(files, config))
    agreement = files.table("agreement")
    if agreement is not None:
        columns = {
            "cohort": "Cohort",
            "n": "Subjects",
            "k": "k",
            "ari": "ARI",
            "kappa": "Cohen's \u03ba",
            "note": "Note",
        }
        caption = captions.agreement(config)
        parts.append(table(agreement, caption=caption, columns=columns, source=_src("agreement")))
    igp = files.table("in_group_proportion")
    if igp is not None:
        columns = {
            "cohort": "Cohort",
            "subtype": "Subtype",
            "n": "Subjects",
            "igp": "IGP",
            "share": Column("Share of cohort", fmt_pct),
            **({"note": "Note"} if _notes(igp) else {}),
        }
        body = table(
            igp, caption=captions.IN_GROUP, columns=columns, source=_src("in_group_proportion")
        )
        parts.append(details("In-group proportions", body))
    selection = files.table("feature_selection")
    if selection is not None and "kept" in selection.columns:
        kept = selection[_is_true(selection["kept"])]
        families = kept.groupby("family").size() if "family" in kept.columns else pd.Series()
        by_family = ", ".join(f"{n} {f}" for f, n in families.items())
        parts.append(
            paragraph(
                f"Features clustered: {len(kept)} of {len(selection)} after dropping "
                "near-constant features and the later of pairs correlated beyond |r| = "
                f"{cfg(config, 'subtypes.selection.max_abs_correlation')}"
                + (f" ({by_family})." if by_family else ".")
            )
        )
    return "".join(parts)


def _notes(frame: pd.DataFrame | None) -> list[str]:
    """The distinct non-empty entries of a table's ``note`` column."""
    if frame is None or "note" not in frame.columns:
        return []
    return list(dict.fromkeys(n for n in frame["note"].dropna().astype(str) if n.strip()))


def calibration_html(files: Files, config: Mapping) -> str:
    """The assignment probabilities' calibration (out of fold in training: Brier score,
    log-loss, ECE before and after), the subjects flagged uncertain in each cohort, and the
    reliability diagram. Empty without a fitted classifier (its notice says why)."""
    calibration = files.table("classifier_calibration")
    if calibration is None or "stage" not in calibration.columns:
        return missing("calibration (results/subtypes/classifier/calibration.tsv)")
    stages = calibration.dropna(subset=["stage"]).set_index("stage")
    if not {"uncalibrated", "calibrated"} <= set(stages.index):
        return ""
    before, after = stages.loc["uncalibrated"], stages.loc["calibrated"]
    method = str(after["method"])
    how = {
        "temperature": f"temperature scaling (T = {fmt_num(after['temperature'])}; above 1 the "
        "classifier was overconfident)",
        "none": "no calibration (the classifier's own probabilities)",
    }.get(method, f"{method} calibration (one map per subtype)")
    threshold = fmt_num(after["min_confidence"])
    parts = [
        paragraph(
            f"Assignment probabilities: {how}, fitted on the {after['classifier']} "
            f"classifier's out-of-fold scores in the {fmt_num(after['folds'])} training folds. "
            "Out of fold (each fold mapped by a calibration fitted without it), before \u2192 "
            f"after: Brier score {fmt_fixed(before['brier'])} \u2192 {fmt_fixed(after['brier'])} "
            f"(0 is perfect, 2 the worst), log-loss {fmt_fixed(before['log_loss'])} \u2192 "
            f"{fmt_fixed(after['log_loss'])}, expected calibration error "
            f"{fmt_fixed(before['ece'])} \u2192 {fmt_fixed(after['ece'])}; mean confidence "
            f"{fmt_fixed(after['mean_confidence'])} for an accuracy of "
            f"{fmt_fixed(after['accuracy'])}. {fmt_num(after['n_uncertain'])} of "
            f"{fmt_num(after['n'])} training subjects fall below min_confidence {threshold} "
            f"out of fold; {fmt_pct(after['accuracy_uncertain'])} of them were assigned their "
            f"consensus subtype, against {fmt_pct(after['accuracy_confident'])} of the others."
        )
    ]
    assignments = files.table("assignments")
    if assignments is not None and {"uncertain", "cohort"} <= set(assignments.columns):
        flagged = assignments.assign(flagged=_is_true(assignments["uncertain"]))
        counts = flagged.groupby("cohort").agg(
            subjects=("flagged", "size"),
            uncertain=("flagged", "sum"),
            median_confidence=("confidence", "median"),
        )
        counts = counts.reindex(cohort_order(counts.index)).reset_index()
        counts["share"] = counts["uncertain"] / counts["subjects"]
        columns = {
            "cohort": "Cohort",
            "subjects": "Subjects",
            "uncertain": "Uncertain",
            "share": Column("Share", fmt_pct),
            "median_confidence": "Median confidence",
        }
        caption = (
            f"Subjects flagged uncertain (confidence below {threshold}): the classifier's "
            "calibrated probability of the assigned subtype; in training, where subtypes come "
            "from consensus clustering, the subject's item consensus."
        )
        parts.append(table(counts, caption=caption, columns=columns, source=_src("assignments")))
    parts.append(figure(files.path("classifier_reliability"), captions.reliability(config)))
    return "".join(parts)


def subtype_counts(assignments: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Subjects per cohort (rows) and subtype (columns) as 'n (share)', with totals."""
    counts = pd.crosstab(assignments["cohort"], assignments["subtype"])
    subtypes = natural_sorted(counts.columns)
    counts = counts[subtypes].reindex(cohort_order(counts.index))
    totals = counts.sum(axis=1)
    shown = pd.DataFrame({"cohort": counts.index})
    for subtype in subtypes:
        shown[subtype] = [
            f"{n} ({fmt_pct(n / t)})" if t else "0"
            for n, t in zip(counts[subtype], totals, strict=True)
        ]
    shown["total"] = totals.to_numpy()
    return shown, subtypes


def extract_table_one(text: str) -> str | None:
    """The ``<div class="table-one">`` fragment of Table 1's page (written by rdls, escaped)."""
    start = text.find('<div class="table-one">')
    end = text.rfind("</div>")
    return text[start : end + len("</div>")] if start >= 0 and end > start else None


# --- imaging -------------------------------------------------------------------------------


def imaging_section(files: Files, config: Mapping) -> Section:
    """Harmonisation and stability, the encoder's training, tumour examples per subtype."""
    parts = []
    harmonisation = files.table("harmonisation")
    if harmonisation is not None:
        columns = {
            "family": "Family",
            "cohort": "Cohort",
            "subjects": "Subjects",
            "features_in": "Features",
            "features_stable": "Stable",
            "method": "Harmonisation",
            "centres": "Centres",
            "centre_balanced_accuracy_before": "Centre predictable, before",
            "centre_balanced_accuracy_after": "after",
            "chance": "Chance",
            "fitted_in_training": "Fitted in training",
            "estimated_from_own_images": "From own images",
            "unharmonised": "Unharmonised",
            "notes": "Notes",
        }
        caption = captions.harmonisation(config)
        parts.append(
            table(harmonisation, caption=caption, columns=columns, source=_src("harmonisation"))
        )
    else:
        parts.append(missing("harmonisation table (results/imaging/harmonisation.tsv)"))
    curve = files.path("training_curve")
    parts.append(figure(curve, captions.training_curve(config), size="half"))
    parts.append(_h3("imaging-examples", "Tumour examples per subtype"))
    if reason := no_subtypes_reason(files):
        parts.append(nothing_to_compare_notice("Tumour examples", reason))
    parts.append(subtype_montage_html(files, config))
    subsections = [("imaging-examples", "Examples per subtype")]
    return Section("imaging", BRANCH_TITLES["imaging"], "".join(parts), subsections)


def subtype_montage_html(files: Files, config: Mapping, *, per_subtype: int = 6) -> str:
    """The most confidently assigned subjects' tumours per subtype; per-cohort QC montages
    where subtypes did not run."""
    from rdls.report import montage

    crops = files.per_item("crops")
    assignments = files.table("assignments")
    if crops and assignments is not None:
        available: set[str] = set()
        for path in crops.values():
            with np.load(path) as data:
                available |= {str(s) for s in data["subject_id"]}
        examples = montage.pick_examples(assignments, available=available, per_subtype=per_subtype)
        wanted = {s for subjects in examples.values() for s in subjects}
        loaded = montage.load_crops(list(crops.values()), wanted)
        if loaded:
            uri = png_bytes_uri(montage.subtype_montage_png(loaded, examples))
            caption = captions.subtype_montage(config, per_subtype=per_subtype)
            return figure_uri(uri, caption, alt="tumour examples per subtype")
    montages = files.per_item("montages")
    if montages:
        cohort = cohort_order(montages)[0]
        caption = (
            f"Every subject's tumour crop in the {cohort} cohort (QC montage; subtypes did not "
            "run, so there are no examples per subtype)."
        )
        return figure(montages[cohort], caption)
    return missing("preprocessed tumour crops (results/imaging/crops/)")


# --- survival ------------------------------------------------------------------------------


def survival_section(files: Files, config: Mapping) -> Section:
    """KM per cohort, multivariable Cox, the RRS, clinical vs clinical + RRS."""
    parts = [_h3("survival-km", "Kaplan-Meier by subtype")]
    if reason := no_subtypes_reason(files):
        parts.append(
            nothing_to_compare_notice("Survival", reason)
            + paragraph(
                "The Kaplan-Meier curves are the whole cohort's, the Cox models hold the "
                "clinical covariates alone, and there is no recurrence risk score (it screens "
                "the features of the high-risk subtype), so the model comparison is the "
                "clinical model alone."
            )
        )
    parts.append(km_html(files, config))
    parts += [_h3("survival-cox", "Multivariable Cox"), cox_html(files, config)]
    parts += [_h3("survival-rrs", "Recurrence risk score (RRS)"), rrs_html(files, config)]
    parts += [_h3("survival-comparison", "Clinical model vs clinical + RRS")]
    parts.append(comparison_html(files, config))
    subsections = [
        ("survival-km", "Kaplan-Meier by subtype"),
        ("survival-cox", "Multivariable Cox"),
        ("survival-rrs", "Recurrence risk score"),
        ("survival-comparison", "Clinical vs clinical + RRS"),
    ]
    return Section("survival", BRANCH_TITLES["survival"], "".join(parts), subsections)


def km_html(files: Files, config: Mapping) -> str:
    km = files.per_item("km_figures")
    if not km:
        return missing("Kaplan-Meier figures (results/survival/km/)")
    parts = [grid([figure(km[c], captions.km(config, c), size="small") for c in cohort_order(km)])]
    logrank = files.tables("km_logrank")
    rows = [
        {"cohort": cohort, **row}
        for cohort in cohort_order(logrank)
        for row in logrank[cohort].to_dict("records")
    ]
    if rows:
        columns = {
            "cohort": "Cohort",
            "comparison": "Comparison",
            "statistic": "\u03c7\u00b2",
            "df": "df",
            "p_value": "p",
            "p_adjusted": "Adjusted p",
        }
        if _notes(pd.DataFrame(rows)):
            columns["note"] = "Note"
        source = "results/survival/km/{cohort}_logrank.tsv"
        parts.append(
            table(
                pd.DataFrame(rows),
                caption=captions.LOGRANK,
                columns=columns,
                index_header=False,
                max_rows=None,
                source=source,
            )
        )
    summaries = files.tables("km_summary")
    if summaries:
        parts.append(rfs_summary_html(summaries, config))
    at_risk = files.tables("km_at_risk")
    if at_risk:
        blocks = "".join(
            table(at_risk[c], caption=f"{c}: numbers at risk by month.", max_rows=None)
            for c in cohort_order(at_risk)
        )
        parts.append(details("Numbers at risk (tables)", blocks))
    return "".join(parts)


def rfs_summary_html(summaries: Mapping[str, pd.DataFrame], config: Mapping) -> str:
    """Per cohort and subtype: subjects, events, median RFS and RFS at the horizon (95% CI)."""
    horizon = cfg(config, "survival.horizon_months")
    rows = []
    for cohort in cohort_order(summaries):
        for x in summaries[cohort].itertuples():
            median = x.median_survival
            rows.append(
                {
                    "cohort": cohort,
                    "subtype": x.subtype,
                    "n": x.n,
                    "events": x.events,
                    "median": "not reached"
                    if not np.isfinite(median)
                    else ci_text(median, x.median_ci_lower, x.median_ci_upper),
                    "at_horizon": ci_text(x.survival, x.ci_lower, x.ci_upper, formatter=fmt_pct),
                }
            )
    columns = {"cohort": "Cohort", "subtype": "Subtype", "n": "Subjects", "events": "Events",
               "median": "Median RFS, months (95% CI)",
               "at_horizon": f"RFS at {horizon} months (95% CI)"}  # fmt: skip
    caption = (
        "Recurrence-free survival per subtype and cohort (Kaplan-Meier; log-log intervals). A "
        "median is 'not reached' while survival stays above one half; an upper bound of inf "
        "means the interval is open."
    )
    return table(pd.DataFrame(rows), caption=caption, columns=columns, index_header=False,
                 max_rows=None, source="results/survival/km/{cohort}_summary.tsv")  # fmt: skip


def cox_html(files: Files, config: Mapping) -> str:
    parts = [figure(files.path("cox_forest"), captions.forest(config), size="half")]
    cox = files.table("cox_table")
    if cox is None:
        return parts[0] + missing("Cox table (results/survival/cox/hazard_ratios.tsv)")
    parts.append(cox_table_html(cox, config=config, subtypes=subtypes_of(files)))
    notes = cox["note"].fillna("").astype(str) if "note" in cox.columns else pd.Series()
    distinct = sorted({n for n in notes if n.strip()})
    if distinct:
        items = [
            f"{', '.join(cohort_order(cox.loc[notes == n, 'cohort'].unique()))}: {n}"
            for n in distinct
        ]
        parts.append("<h4>Notes of the fits</h4>" + bullet_list(items))
    if "missing" in cox.columns and cox["missing"].fillna(0).gt(0).any():
        counts = cox.drop_duplicates("cohort").set_index("cohort")["missing"].fillna(0)
        text = ", ".join(f"{c} {int(counts[c])}" for c in cohort_order(counts.index))
        parts.append(paragraph(
            f"Complete cases: subjects without every covariate are left out of the Cox models "
            f"({text})."))  # fmt: skip
    ph = files.table("cox_ph")
    if ph is not None and len(ph) and "term" in ph.columns:
        parts.append(paragraph(proportional_hazards_text(ph)))
    return "".join(parts)


def cox_table_html(cox: pd.DataFrame, *, config: Mapping, subtypes: Sequence[str] = ()) -> str:
    """Subtype hazard ratios per cohort up front; every term in a collapsed table."""
    shown = cox.copy()
    shown["hr_ci"] = [_hr_ci(r.hazard_ratio, r.ci_lower, r.ci_upper) for r in shown.itertuples()]
    columns = {
        "cohort": "Cohort",
        "term": "Term",
        "hr_ci": "HR (95% CI)",
        "p_value": "p",
        "n": "Subjects",
        "events": "Events",
    }
    caption = captions.cox(config, reference=reference_level(cox, subtypes))
    subtype_rows = shown[shown["term"].astype(str).str.startswith("subtype[")]
    if subtype_rows.empty:  # no subtype term (no significant subtypes): every term up front
        caption = "Multivariable Cox model of each cohort: the clinical covariates alone."
        return table(shown, caption=caption, columns=columns, index_header=False,
                     max_rows=None, source=_src("cox_table"))  # fmt: skip
    html = table(
        subtype_rows,
        caption=caption,
        columns=columns,
        index_header=False,
        max_rows=None,
        source=_src("cox_table"),
    )
    every = table(
        shown,
        caption="Every term of every cohort's model.",
        columns=columns,
        index_header=False,
        max_rows=None,
    )
    return html + details("All terms of the Cox models", every)


def reference_level(cox: pd.DataFrame, subtypes: Sequence[str]) -> str | None:
    """The subtype without a term in the Cox table: the models' reference level."""
    terms = cox["term"].astype(str)
    levels = {m["level"] for t in terms if (m := card_logic.SUBTYPE_TERM.match(t))}
    absent = [s for s in subtypes if s not in levels]
    return absent[0] if len(absent) == 1 else None


def proportional_hazards_text(ph: pd.DataFrame) -> str:
    """The global Schoenfeld test per cohort and the terms below 0.05."""
    overall = ph[ph["term"] == "GLOBAL"]
    terms = ph[ph["term"] != "GLOBAL"]
    flagged = terms[pd.to_numeric(terms["p_value"], errors="coerce") < 0.05]
    text = "Proportional hazards (Schoenfeld residuals against rank-transformed time): "
    text += "; ".join(f"{r.cohort} global p = {fmt_p(r.p_value)}" for r in overall.itertuples())
    if len(flagged):
        listed = ", ".join(
            f"{r.term} in {r.cohort} ({fmt_p(r.p_value)})" for r in flagged.itertuples()
        )
        return f"{text}. Terms with p < 0.05: {listed}."
    return f"{text}; no term with p < 0.05."


def _cutoff_p(model: Mapping) -> str:
    p = model.get("cutoff_p_value")
    if p is None:
        return ""
    return (
        f"; permutation p of the maximally selected log-rank statistic {fmt_p(p)}, the search "
        "for the best cut included"
    )


def rrs_html(files: Files, config: Mapping) -> str:
    parts = []
    model = files.json("rrs_model")
    if model is not None and not model.get("features"):
        reason = "; ".join(model.get("notes", [])) or "the locked RRS has no features"
        parts.append(notice(reason[:1].upper() + reason[1:] + "."))
    elif model is not None:
        coefficients = pd.Series(model.get("coefficients", {}), dtype=float)
        coefficients = coefficients.reindex(coefficients.abs().sort_values(ascending=False).index)
        frame = pd.DataFrame({"feature": coefficients.index, "coefficient": coefficients.values})
        parts.append(
            paragraph(
                f"The locked RRS: {len(frame)} feature(s), cut-off {fmt_num(model.get('cutoff'))} "
                f"({model.get('cutoff_method', 'n/a')}{_cutoff_p(model)}). {captions.rrs(config)}"
            )
        )
        if notes := model.get("notes"):
            text = "; ".join(notes)
            parts.append(notice(text[:1].upper() + text[1:] + "."))
        columns = {"feature": "Feature", "coefficient": "Coefficient"}
        caption = "Locked coefficients of the RRS (standardised features), by absolute size."
        parts.append(table(frame, caption=caption, columns=columns, source=_src("rrs_model")))
    else:
        parts.append(missing("locked RRS model (results/survival/rrs/model.json)"))
    groups = files.table("rrs_groups")
    no_rrs = model is not None and not model.get("features")
    if groups is not None and no_rrs:  # no groups to compare, the note says why
        columns = {"cohort": "Cohort", "n": "Subjects", "events": "Events", "note": "Note"}
        caption = "RRS groups per cohort: none, for the reason in the note."
        parts.append(table(groups, caption=caption, columns=columns, source=_src("rrs_groups")))
    elif groups is not None:
        shown = groups.copy()
        shown["hr_ci"] = [
            _hr_ci(x.hazard_ratio, x.ci_lower, x.ci_upper) for x in shown.itertuples()
        ]
        columns = {
            "cohort": "Cohort",
            "n": "Subjects",
            "events": "Events",
            "n_high": "High RRS",
            "hr_ci": "HR (95% CI)",
            "p_value": "p",
            "logrank_p": "Log-rank p",
            **({"note": "Note"} if _notes(groups) else {}),
        }
        caption = (
            "High vs low RRS group per cohort: Cox hazard ratio (95% CI, Wald p) and log-rank p."
        )
        parts.append(table(shown, caption=caption, columns=columns, source=_src("rrs_groups")))
    caption = (
        "RRS penalty by cross-validated partial-likelihood deviance (mean \u00b1 SE); the chosen "
        "penalty marked."
    )
    figures = [figure(files.path("rrs_cv"), caption, size="small")]
    rrs_km = files.per_item("rrs_km")
    for cohort in cohort_order(rrs_km):
        caption = f"{cohort}: recurrence-free survival of the low and high RRS groups."
        figures.append(figure(rrs_km[cohort], caption, size="small"))
    parts.append(grid(figures))
    return "".join(parts)


def comparison_html(files: Files, config: Mapping) -> str:
    horizon = cfg(config, "survival.horizon_months")
    auc = files.table("auc")
    parts = []
    difference = files.table("auc_difference")
    if notes := _notes(difference):  # one model (no RRS): no difference, the note says why
        text = "; ".join(notes)
        parts.append(notice(text[:1].upper() + text[1:] + "."))
        difference = None
    if auc is not None and len(auc):
        frame, models = auc_wide(auc, difference)
        columns = {
            "cohort": "Cohort",
            "n": "Subjects",
            "events": f"Events by {horizon} months",
            **{m: f"AUC {m} (95% CI)" for m in models},
        }
        if difference is not None:
            columns.update({"difference": "Difference (95% CI)", "p": Column("Paired p", fmt_p)})
        parts.append(
            table(frame, caption=captions.auc(config), columns=columns, source=_src("auc"))
        )
        if "note" in auc.columns:
            reasons = auc[auc["note"].fillna("").astype(str).str.strip() != ""]
            for row in reasons.drop_duplicates("cohort").itertuples():
                parts.append(notice(f"{row.cohort}: no AUC at {horizon} months ({row.note})."))
    else:
        parts.append(missing("AUC table (results/survival/comparison/auc.tsv)"))
    if (fitted := files.table("comparison_models")) is not None and len(fitted):
        parts += [notice(f"{model}: {note}.") for model, note in _model_notes(fitted)]
    if (optimism := files.table("optimism")) is not None and len(optimism):
        parts.append(optimism_html(optimism, config))
    cindex = files.table("cindex")
    if cindex is not None and len(cindex):
        shown = cindex.copy()
        shown["harrell_ci"] = [
            _auc_ci(x.harrell, x.harrell_ci_lower, x.harrell_ci_upper) for x in shown.itertuples()
        ]
        shown["uno_ci"] = [
            _auc_ci(x.uno, x.uno_ci_lower, x.uno_ci_upper) for x in shown.itertuples()
        ]
        columns = {
            "cohort": "Cohort",
            "model": "Model",
            "harrell_ci": "Harrell's C (95% CI)",
            "uno_ci": "Uno's C (95% CI)",
        }
        caption = "Harrell's and Uno's C-index with bootstrap 95% CIs."
        parts.append(
            table(
                shown, caption=caption, columns=columns, index_header=False, source=_src("cindex")
            )
        )
    caption = (
        f"AUC at {horizon} months with 95% CI, per cohort and model; p of the paired test "
        "(timeROC's) above each cohort."
    )
    parts.append(figure(files.path("auc_figure"), caption, size="half"))
    parts.append(figure(files.path("roc_figure"), f"ROC curves at {horizon} months, per cohort."))
    if (summary := files.table("calibration_summary")) is not None and len(summary):
        parts.append(calibration_summary_html(summary, config))
    parts.append(figure(files.path("calibration_figure"), captions.calibration(config)))
    parts.append(figure(files.path("decision_figure"), captions.decision_curve(config)))
    caption = (
        "Nomogram of the locked model (clinical + RRS where there is an RRS): points per "
        "covariate, their total, and the risk of recurrence by "
        f"{cfg(config, 'survival.horizon_months')} months it gives; coefficients and baseline "
        "hazard as locked in training."
    )
    parts.append(figure(files.path("nomogram_figure"), caption))
    return "".join(parts)


def optimism_html(optimism: pd.DataFrame, config: Mapping) -> str:
    """Training figures side by side: apparent and optimism-corrected, per model."""
    labels = {"Dxy": "Somers' Dxy", "C": "Harrell's C", "R2": "Nagelkerke R\u00b2",
              "Slope": "Calibration slope", "D": "Discrimination index D",
              "AUC": f"AUC at {cfg(config, 'survival.horizon_months')} months"}  # fmt: skip
    shown = optimism.assign(measure=optimism["measure"].map(labels).fillna(optimism["measure"]))
    resamples = int(optimism["resamples"].max()) if "resamples" in optimism else 0
    caption = (
        "Training cohort: apparent performance (the models scored on the subjects they were "
        "fitted to) and Harrell's bootstrap optimism-corrected performance (the fit repeated in "
        f"{resamples} resamples, each scored on the full cohort; rms validate's measures)."
    )
    columns = {"model": "Model", "measure": "Measure", "apparent": "Apparent",
               "optimism": "Optimism", "corrected": "Corrected"}  # fmt: skip
    parts = [table(shown, caption=caption, columns=columns, index_header=False,
                   source=_src("optimism"))]  # fmt: skip
    parts += [notice(f"{model}: {note}.") for model, note in _model_notes(optimism)]
    return "".join(parts)


def calibration_summary_html(summary: pd.DataFrame, config: Mapping) -> str:
    """Per cohort and model: calibration slope, observed/expected by the horizon, ICI."""
    shown = summary.copy()
    shown["slope_ci"] = [
        _auc_ci(x.slope, x.slope_ci_lower, x.slope_ci_upper) for x in shown.itertuples()
    ]
    shown["oe_ci"] = [_auc_ci(x.oe_ratio, x.oe_ci_lower, x.oe_ci_upper) for x in shown.itertuples()]
    horizon = cfg(config, "survival.horizon_months")
    columns = {"cohort": "Cohort", "model": "Model", "slope_ci": "Slope (95% CI)",
               "observed": f"Observed risk by {horizon} months", "expected": "Mean predicted",
               "oe_ci": "O/E (95% CI)", "ici": "ICI", "e90": "E90"}  # fmt: skip
    caption = (
        "Calibration: slope of the linear predictor in each cohort (1 ideal; below 1, "
        "predictions too extreme), observed (1 - Kaplan-Meier) against mean predicted risk by "
        f"{horizon} months and their ratio, and the smoothed curve's integrated calibration "
        "index (mean absolute gap; E90 its 90th percentile). Training values are apparent."
    )
    return table(shown, caption=caption, columns=columns, index_header=False,
                 source=_src("calibration_summary"))  # fmt: skip


def _model_notes(frame: pd.DataFrame) -> list[tuple[str, str]]:
    if "note" not in frame.columns:
        return []
    noted = frame[frame["note"].fillna("").astype(str).str.strip() != ""]
    return list(dict.fromkeys(zip(noted["model"], noted["note"], strict=True)))


def auc_wide(auc: pd.DataFrame, difference: pd.DataFrame | None) -> tuple[pd.DataFrame, list]:
    """One row per cohort: each model's AUC (95% CI), the difference and its paired p."""
    models = list(dict.fromkeys(auc["model"]))
    rows = []
    for cohort in cohort_order(auc["cohort"].unique()):
        block = auc[auc["cohort"] == cohort].set_index("model")
        row = {"cohort": cohort}
        for model in block.index:
            x = block.loc[model]
            row[model] = _auc_ci(x["auc"], x["ci_lower"], x["ci_upper"])
        row["n"] = block["n"].iloc[0] if "n" in block.columns else None
        row["events"] = block["events_by_horizon"].iloc[0] if "events_by_horizon" in block else None
        if difference is not None:
            d = difference[difference["cohort"] == cohort]
            if len(d):
                d = d.iloc[0]
                row["difference"] = _auc_ci(d["difference"], d["ci_lower"], d["ci_upper"])
                row["p"] = d["p_value"]
        rows.append(row)
    return pd.DataFrame(rows), models


# --- pathology -----------------------------------------------------------------------------


def pathology_section(files: Files, config: Mapping) -> Section:
    """Lymphocyte and stroma metrics by subtype, tests, and a representative heatmap each."""
    parts = []
    metrics = files.table("slide_metrics")
    if metrics is not None:
        flagged = int((~_no_flags(metrics)).sum())
        parts.append(
            paragraph(
                f"{len(metrics)} slide(s) of {metrics['subject_id'].nunique()} subject(s); "
                f"{flagged} with QC flags. {captions.wsi_method(config)}"
            )
        )
    else:
        parts.append(missing("slide metrics (results/wsi/slide_metrics.tsv)"))
    parts.append(_h3("wsi-by-subtype", "Lymphocytes and stroma by subtype"))
    by_subtype = files.table("wsi_by_subtype")
    if by_subtype is not None and (reason := no_subtypes_reason(files)):
        parts.append(nothing_to_compare_notice("Slide metrics", reason))
    elif by_subtype is not None:
        wide, columns = tests_wide(by_subtype, labels=WSI_METRICS)
        parts.append(
            table(
                wide,
                caption=captions.WSI_BY_SUBTYPE,
                columns=columns,
                max_rows=None,
                source=_src("wsi_by_subtype"),
            )
        )
    elif files.given("wsi_by_subtype"):
        parts.append(missing("comparison by subtype (results/wsi/by_subtype.tsv)"))
    else:
        parts.append(notice("No comparison by subtype: the subtypes did not run."))
    if files.given("wsi_by_subtype_figure"):
        caption = "Slide metrics by subtype (boxplots, one point per subject)."
        if no_subtypes_reason(files):
            caption = "Slide metrics of all slides (boxplots; no subtypes to compare)."
        parts.append(figure(files.path("wsi_by_subtype_figure"), caption))
    parts.append(_h3("wsi-heatmaps", "Example heatmaps"))
    parts.append(example_heatmaps_html(files))
    subsections = [("wsi-by-subtype", "Metrics by subtype"), ("wsi-heatmaps", "Example heatmaps")]
    return Section("pathology", BRANCH_TITLES["wsi"], "".join(parts), subsections)


def example_heatmaps_html(files: Files, *, per_subtype: int = 1) -> str:
    """Per subtype, the slide closest to its subtype's median intratumoral lymphocyte density
    (slides with QC flags left out)."""
    heatmaps = files.per_item("heatmaps")
    metrics = files.table("slide_metrics")
    if not heatmaps or metrics is None:
        return missing("slide heatmaps (results/wsi/heatmaps/)")
    metric = "intratumoral_lymphocyte_density_mm2"
    slides = metrics[metrics["slide_id"].astype(str).isin(heatmaps) & _no_flags(metrics)].copy()
    assignments = files.table("assignments")
    if assignments is not None:
        slides = slides.merge(assignments[["subject_id", "subtype"]], on="subject_id", how="left")
    else:
        slides["subtype"] = "all slides"
    slides["subtype"] = slides["subtype"].fillna("no subtype").replace(NO_STRUCTURE, "all slides")
    figures = []
    for subtype in natural_sorted(slides["subtype"].unique()):
        rows = slides[slides["subtype"] == subtype].copy()
        values = pd.to_numeric(rows[metric], errors="coerce") if metric in rows else None
        if values is not None and values.notna().any():
            rows["distance"] = (values - values.median()).abs()
            rows = rows.sort_values(["distance", "slide_id"])
        for row in rows.head(per_subtype).to_dict("records"):
            caption = (
                f"{subtype}: slide {row['slide_id']} (subject {row['subject_id']}); intratumoral "
                f"lymphocytes {fmt_num(row.get(metric))} per mm\u00b2, stroma fraction "
                f"{fmt_num(row.get('stroma_fraction'))}."
            )
            figures.append(figure(heatmaps[str(row["slide_id"])], caption, size="small"))
    if not figures:
        return missing("heatmap of a slide without QC flags")
    intro = paragraph(
        "Lymphocyte density per tile and the pixel-level epithelium, stroma and lumen, over the "
        "thumbnail of the slide closest to its subtype's median intratumoral lymphocyte density."
    )
    return intro + grid(figures, columns=3)


# --- bulk RNA-seq --------------------------------------------------------------------------


def bulk_section(files: Files, config: Mapping) -> Section:
    """Samples, differential expression, Hallmark GSEA, immune and stromal scores and
    deconvolution by subtype."""
    pca, heatmap = captions.bulk_overview(config)
    overview = [
        figure(files.path("bulk_pca"), pca, size="small"),
        figure(files.path("bulk_heatmap"), heatmap, size="small"),
    ]
    parts = [grid(overview)]

    reason = no_subtypes_reason(files)
    if reason:
        parts.insert(0, nothing_to_compare_notice("Bulk RNA-seq", reason))
    parts.append(_h3("bulk-de", "Differential expression (DESeq2)"))
    deseq = files.tables("deseq2")
    absent = (notice("No contrast between subtypes: nothing to compare by subtype.")
              if reason else None)  # fmt: skip
    parts.append(de_html(deseq, files, config) if deseq else absent or missing("DESeq2 tables"))
    parts.append(_h3("bulk-gsea", "Hallmark gene sets (GSEA)"))
    gsea = files.tables("gsea")
    parts.append(gsea_html(gsea, config) if gsea else absent or missing("GSEA tables"))
    figures = files.per_item("gsea_figures")
    shown = [c for c in contrast_order(figures) if c.endswith("_vs_rest")] or list(figures)
    caption = "{}: normalised enrichment of the leading Hallmark sets (FDR below {} marked)."
    fdr = cfg(config, "bulk.gsea.plot_fdr", captions.GSEA_FDR)
    if shown:
        body = grid([figure(figures[c], caption.format(c, fdr), size="small") for c in shown])
        parts.append(details("GSEA figures per contrast", body))
    parts.append(_h3("bulk-scores", "Immune and stromal scores (ESTIMATE)"))
    parts.append(bulk_scores_html(files, config))
    parts.append(_h3("bulk-deconvolution", "Cell-type deconvolution"))
    parts.append(deconvolution_html(files, config))
    subsections = [
        ("bulk-de", "Differential expression"),
        ("bulk-gsea", "Hallmark gene sets"),
        ("bulk-scores", "Immune and stromal scores"),
        ("bulk-deconvolution", "Deconvolution"),
    ]
    return Section("bulk", BRANCH_TITLES["bulk"], "".join(parts), subsections)


def contrast_order(contrasts) -> list[str]:
    """One-vs-rest contrasts first, then the pairwise ones, each in natural order."""
    rest = natural_sorted(c for c in contrasts if c.endswith("_vs_rest"))
    return rest + natural_sorted(c for c in contrasts if c not in rest)


def de_html(deseq: Mapping[str, pd.DataFrame], files: Files, config: Mapping, *, top=10) -> str:
    alpha = float(cfg(config, "bulk.deseq2.alpha", 0.05) or 0.05)
    order = contrast_order(deseq)
    rows = []
    for contrast in order:
        frame = deseq[contrast]
        padj = pd.to_numeric(frame.get("padj"), errors="coerce")
        lfc = pd.to_numeric(frame.get("log2FoldChange"), errors="coerce")
        rows.append(
            {
                "contrast": contrast,
                "genes": len(frame),
                "up": int(((padj < alpha) & (lfc > 0)).sum()),
                "down": int(((padj < alpha) & (lfc < 0)).sum()),
            }
        )
    columns = {"contrast": "Contrast", "genes": "Genes tested", "up": "Up", "down": "Down"}
    html = table(
        pd.DataFrame(rows),
        caption=captions.deseq2(config, alpha=alpha),
        columns=columns,
        max_rows=None,
        source="results/bulk/deseq2/{contrast}.tsv",
    )
    volcanoes = files.per_item("volcanoes")
    shown = [c for c in order if c.endswith("_vs_rest")] or order
    caption = "{}: log2 fold change against \u2212log10 adjusted p."
    html += grid(
        [figure(volcanoes[c], caption.format(c), size="small") for c in shown if c in volcanoes]
    )
    blocks = []
    columns = {
        "gene": "Gene",
        "baseMean": "Mean count",
        "log2FoldChange": "log2 FC",
        "log2FoldChange_shrunk": "log2 FC (shrunk)",
        "pvalue": "p",
        "padj": "Adjusted p",
    }
    for contrast in shown:
        frame = deseq[contrast].assign(padj=lambda f: pd.to_numeric(f["padj"], errors="coerce"))
        caption = f"{contrast}: the {top} genes with the smallest adjusted p."
        blocks.append(
            table(
                frame.sort_values("padj").head(top),
                caption=caption,
                columns=columns,
                source=f"results/bulk/deseq2/{contrast}.tsv",
            )
        )
    return html + details("Top genes per contrast", "".join(blocks))


def gsea_html(gsea: Mapping[str, pd.DataFrame], config: Mapping, *, top: int = 5) -> str:
    rows = []
    for contrast in contrast_order(gsea):
        frame = gsea[contrast].copy()
        frame["nes"] = pd.to_numeric(frame.get("nes"), errors="coerce")
        frame["fdr"] = pd.to_numeric(frame.get("fdr"), errors="coerce")
        for sign, direction in ((1, "up"), (-1, "down")):
            picked = frame[frame["nes"] * sign > 0]
            picked = picked.assign(strength=sign * picked["nes"])
            picked = picked.sort_values(["fdr", "strength"], ascending=[True, False]).head(top)
            for r in picked.to_dict("records"):
                rows.append(
                    {
                        "contrast": contrast,
                        "direction": direction,
                        "term": re.sub(r"^HALLMARK_", "", str(r["term"])),
                        "nes": r["nes"],
                        "fdr": r["fdr"],
                        "size": r.get("size"),
                    }
                )
    columns = {
        "contrast": "Contrast",
        "direction": "Direction",
        "term": "Hallmark set",
        "nes": "NES",
        "fdr": "FDR",
        "size": "Genes",
    }
    return table(
        pd.DataFrame(rows),
        caption=captions.gsea(config, top=top),
        columns=columns,
        max_rows=None,
        index_header=False,
        source="results/bulk/gsea/{contrast}.tsv",
    )


def bulk_scores_html(files: Files, config: Mapping) -> str:
    caption = "Immune, stromal and ESTIMATE scores by subtype (one point per sample)."
    parts = [figure(files.path("bulk_scores_figure"), caption, size="half")]
    tests = files.table("bulk_score_tests")
    scores = files.table("bulk_scores")
    if tests is not None and no_subtypes_reason(files):
        parts.append(paragraph("Scores of all samples; no test by subtype."))
    elif tests is not None:
        wide, columns = tests_wide(tests, labels=BULK_SCORES)
        caption = captions.bulk_scores(config)
        if scores is not None and "sample_id" in scores.columns:
            caption += f" {scores['sample_id'].nunique()} samples."
        source = _src("bulk_score_tests")
        parts.append(table(wide, caption=caption, columns=columns, max_rows=None, source=source))
    return "".join(parts)


def deconvolution_html(files: Files, config: Mapping) -> str:
    caption = captions.deconvolution(config) + " Samples grouped by subtype."
    parts = [figure(files.path("deconvolution_figure"), caption, size="half")]
    fractions = files.table("deconvolution")
    tests = files.table("deconvolution_tests")
    if fractions is not None and "subtype" in fractions.columns:
        cell_types = card_logic.deconvolution_cell_types(fractions, tests)
        medians = fractions.groupby("subtype")[cell_types].median().T
        medians = medians[natural_sorted(medians.columns)]
        frame = medians.reset_index(names="cell_type")
        columns = {"cell_type": "Cell type", **{s: Column(s, fmt_pct) for s in medians.columns}}
        caption = "Median estimated fraction of each cell type by subtype (all samples)."
        source = _src("deconvolution")
        parts.append(table(frame, caption=caption, columns=columns, max_rows=None, source=source))
    if tests is not None and no_subtypes_reason(files):
        parts.append(paragraph("Fractions of all samples; no test by subtype."))
    elif tests is not None:
        wide, columns = tests_wide(tests)
        caption = (
            "Cell-type fractions by subtype: median per subtype (each subject once), "
            "Kruskal-Wallis across subtypes, pairwise Mann-Whitney U with Benjamini-Hochberg "
            "adjusted p."
        )
        source = _src("deconvolution_tests")
        parts.append(table(wide, caption=caption, columns=columns, max_rows=None, source=source))
    return "".join(parts)


# --- single-cell RNA-seq -------------------------------------------------------------------


def scrna_section(files: Files, config: Mapping) -> Section:
    """Cell types (UMAP, markers) and the composition of each subtype's samples."""
    parts = [paragraph(captions.scrna(config))]
    overview = [
        figure(
            files.path("scrna_umap"),
            "UMAP of every cell after QC and integration, coloured by annotated cell type.",
            size="small",
        ),
        figure(
            files.path("scrna_dotplot"),
            "Marker genes by cell type: dot size the share of cells expressing, colour the mean "
            "expression.",
            size="small",
        ),
    ]
    parts.append(grid(overview))
    cell_types = files.table("scrna_cell_types")
    if cell_types is not None:
        columns = {
            "leiden": "Cluster",
            "cell_type": "Cell type",
            "cells": "Cells",
            "confidence": "Confidence",
        }
        caption = (
            "Leiden clusters and the cell type each was annotated as by marker genes, with cells "
            "and annotation confidence."
        )
        body = table(
            cell_types,
            caption=caption,
            columns=columns,
            max_rows=None,
            source=_src("scrna_cell_types"),
        )
        parts.append(details("Cluster annotation", body))
    parts.append(_h3("scrna-composition", "Composition by subtype"))
    if files.given("scrna_tests") and (reason := no_subtypes_reason(files)):
        parts.append(nothing_to_compare_notice("Cell-type composition", reason))
    parts.append(composition_html(files))
    subsections = [("scrna-composition", "Composition by subtype")]
    return Section("scrna", BRANCH_TITLES["scrna"], "".join(parts), subsections)


def composition_html(files: Files) -> str:
    if not files.given("scrna_tests") and not files.given("scrna_composition"):
        return notice("No composition by subtype: the subtypes did not run.")
    parts = []
    composition = files.table("scrna_composition")
    if composition is not None:
        samples = composition.drop_duplicates("sample_id")
        per = samples.groupby("subtype").size()
        listed = ", ".join(f"{n} {s}" for s, n in per.items())
        parts.append(paragraph(f"{len(samples)} sample(s): {listed}."))
    caption = "Cell-type composition of each sample, grouped by subtype."
    parts.append(figure(files.path("scrna_composition_figure"), caption, size="half"))
    tests = files.table("scrna_tests")
    if tests is None:
        parts.append(missing("composition tests (results/scrna/by_subtype/tests.tsv)"))
    else:
        parts.append(composition_tests_html(tests))
    if files.given("scrna_signature_figure"):
        caption = (
            "Bulk subtype signatures (genes up in each subtype against the rest, DESeq2) scored "
            "on the single cells: mean score by cell type, where the subtype's bulk tumours "
            "over-express what those cells express."
        )
        parts.append(figure(files.path("scrna_signature_figure"), caption, size="half"))
    return "".join(parts)


def composition_tests_html(tests: pd.DataFrame) -> str:
    shares = [c for c in tests.columns if c.startswith("mean_fraction_")]
    columns = {"cell_type": "Cell type"}
    columns.update({c: Column(f"Mean share {c[len('mean_fraction_') :]}", fmt_pct) for c in shares})
    columns.update(
        {
            "statistic": "Kruskal-Wallis statistic",
            "pvalue": "p",
            "padj": "Adjusted p",
            "n_samples": "Samples",
            "note": "Note",
        }
    )
    if "note" in tests.columns and not tests["note"].fillna("").astype(str).str.strip().any():
        del columns["note"]
    source = _src("scrna_tests")
    return table(tests, caption=captions.SCRNA_TESTS, columns=columns, max_rows=None, source=source)
