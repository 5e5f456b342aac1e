"""A biology card per subtype: short sentences computed from the run's tables, never fixed text.

Each fact says where a subtype stands among the subtypes (lowest, highest, tied), with the
summary value, the next subtype's value and the test behind it, so a reader can quote it. A
source that is absent gives no sentence; a subtype absent from a source that is present gets
a sentence saying so. :func:`biology_cards` is pure: tables in, sentences out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rdls.report._html import fmt_num, fmt_p, fmt_pct, fmt_ratio, is_missing, natural_sorted
from rdls.report.captions import GSEA_FDR

ALPHA = 0.05
SUBTYPE_TERM = re.compile(r"^subtype\[(?P<level>.+)\]$")

# Slide metrics with the direction worth a sentence: (column, direction, label, unit)
WSI_FACTS = (
    (
        "intratumoral_lymphocyte_density_mm2",
        "lowest",
        "intratumoral lymphocyte density",
        " per mm\u00b2",
    ),
    (
        "intratumoral_lymphocyte_density_mm2",
        "highest",
        "intratumoral lymphocyte density",
        " per mm\u00b2",
    ),
    (
        "exclusion_index",
        "highest",
        "lymphocyte exclusion index (stromal / intratumoral density)",
        "",
    ),
    ("stroma_fraction", "highest", "stroma fraction", ""),
)
BULK_SCORE_FACTS = (
    ("immune_score", "highest", "ESTIMATE immune score"),
    ("immune_score", "lowest", "ESTIMATE immune score"),
    ("stromal_score", "highest", "ESTIMATE stromal score"),
)


@dataclass(frozen=True)
class Fact:
    """One sentence of a card, under a topic (Cohort, Prognosis, Pathology, ...)."""

    topic: str
    text: str


@dataclass
class CardInputs:
    """The tables the cards are written from; any may be None (its facts are left out).

    Column names are those of the workflow's outputs (see :mod:`rdls.report.inputs`).
    """

    assignments: pd.DataFrame | None = None  # subject_id, cohort, subtype
    rates: pd.DataFrame | None = None  # subtype_rates.tsv: subtype, n, events, rate_per_100_...
    hazard_ratios: pd.DataFrame | None = None  # cox/hazard_ratios.tsv
    risk_scores: pd.DataFrame | None = None  # subject_id, cohort, rrs, rrs_group
    wsi_tests: pd.DataFrame | None = None  # wsi/by_subtype.tsv
    slide_metrics: pd.DataFrame | None = None  # wsi/slide_metrics.tsv (slides per subtype)
    bulk_scores: pd.DataFrame | None = None  # sample_id, subtype, immune_score, ...
    bulk_score_tests: pd.DataFrame | None = None  # score, comparison, ..., median_<subtype>
    gsea: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # contrast -> table
    deconvolution: pd.DataFrame | None = None  # sample_id, subtype, one column per cell type
    deconvolution_tests: pd.DataFrame | None = None
    scrna_tests: pd.DataFrame | None = None  # cell_type, ..., padj, mean_fraction_<subtype>
    scrna_composition: pd.DataFrame | None = None  # sample_id, subtype, cell_type, fraction
    # km/<cohort>_summary.tsv per cohort: subtype, n, events, horizon, survival, ci_lower, ...
    survival_summaries: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    reference_cohort: str = "training"
    covariates: Sequence[str] = ()


@dataclass(frozen=True)
class Comparison:
    """One quantity compared across subtypes: a summary per subtype and the tests."""

    values: Mapping[str, float]
    summary: str = "median"
    test: str | None = None
    p: float | None = None
    p_label: str = "p"
    pairwise: Mapping[frozenset, tuple[str, float]] = field(default_factory=dict)
    n: Mapping[str, int] = field(default_factory=dict)
    n_label: str = ""  # what n counts: slides, samples


def biology_cards(data: CardInputs, *, subtypes: Sequence[str] | None = None) -> dict:
    """The facts of every subtype's card, in the order of the topics.

    Parameters
    ----------
    data : CardInputs
        The run's tables; absent ones are skipped.
    subtypes : sequence of str, optional
        The subtypes to write cards for; default: every subtype in the tables, natural order.

    Returns
    -------
    dict of str to list of Fact
    """
    subtypes = list(subtypes) if subtypes is not None else known_subtypes(data)
    cards: dict[str, list[Fact]] = {s: [] for s in subtypes}
    for source in (
        _cohort_facts,
        _prognosis_facts,
        _pathology_facts,
        _bulk_score_facts,
        _hallmark_facts,
        _deconvolution_facts,
        _scrna_facts,
    ):
        for subtype, fact in source(data, subtypes):
            if subtype in cards:
                cards[subtype].append(fact)
    return cards


def known_subtypes(data: CardInputs) -> list[str]:
    """Every subtype named in the tables, in natural order (RDLS2 before RDLS10)."""
    found: set[str] = set()
    frames = (data.assignments, data.rates, data.bulk_scores, data.deconvolution,
              *data.survival_summaries.values())  # fmt: skip
    for frame in frames:
        if frame is not None and "subtype" in frame.columns:
            found |= {str(s) for s in frame["subtype"].dropna()}
    for frame in (data.wsi_tests, data.bulk_score_tests):
        if frame is not None:
            found |= {c[len("median_") :] for c in frame.columns if c.startswith("median_")}
    if data.scrna_tests is not None:
        found |= {
            c[len("mean_fraction_") :]
            for c in data.scrna_tests.columns
            if c.startswith("mean_fraction_")
        }
    if data.hazard_ratios is not None:
        found |= {
            m["level"]
            for t in data.hazard_ratios["term"].astype(str)
            if (m := SUBTYPE_TERM.match(t))
        }
    # not subtypes: no significant subtypes, no MRI, the whole cohort's survival
    found -= {"unassigned", "none", "all"}
    return natural_sorted(found)


# --- the generic sentence: who is lowest or highest -----------------------------------------


def extreme_facts(
    comparison: Comparison,
    *,
    direction: str,
    label: str,
    topic: str,
    unit: str = "",
    formatter=fmt_num,
) -> list[tuple[str, Fact]]:
    """A sentence for the subtype(s) with the lowest or highest value of ``comparison``.

    Subtypes without a value are left out; with fewer than two values, or all equal, there is
    nothing to say. Ties (equal values) give each tied subtype the same sentence naming the
    others. The sentence gives the value, the next subtype's, the overall test and, where
    there is one, the pairwise test against that next subtype.
    """
    if direction not in ("lowest", "highest"):
        raise ValueError(f"direction must be 'lowest' or 'highest', not {direction!r}")
    values = {s: float(v) for s, v in comparison.values.items() if _finite(v)}
    if len(values) < 2:
        return []
    pick = min if direction == "lowest" else max
    best = pick(values.values())
    winners = [s for s, v in values.items() if _same(v, best)]
    rest = {s: v for s, v in values.items() if s not in winners}
    if not rest:
        return []
    # the next subtype: first in natural order among equal runners-up
    nearest = pick(rest.values())
    runner = next(s for s in natural_sorted(rest) if _same(rest[s], nearest))
    next_word = "" if len(values) == 2 else f" (next {direction})"
    facts = []
    for subtype in winners:
        others = [s for s in winners if s != subtype]
        n_text = ""
        if subtype in comparison.n:
            n = comparison.n[subtype]
            what = comparison.n_label[:-1] if n == 1 else comparison.n_label
            n_text = f" (n = {n} {what})".replace(" )", ")")
        head = (
            f"{direction.capitalize()} {label} of the {len(values)} subtypes"
            if not others
            else f"{direction.capitalize()} {label}, tied with {_join(others)}"
        )
        text = (
            f"{head}: {comparison.summary} {formatter(values[subtype])}{unit}{n_text} vs "
            f"{formatter(rest[runner])}{unit} in {runner}{next_word}"
        )
        text += _tests_text(comparison, subtype, runner) + "."
        facts.append((subtype, Fact(topic, text)))
    return facts


def _tests_text(comparison: Comparison, subtype: str, runner: str) -> str:
    parts = []
    if comparison.test and not is_missing(comparison.p):
        p = float(comparison.p)
        flag = "" if p < ALPHA else ", not significant"
        parts.append(f"{comparison.test} across subtypes {comparison.p_label} {_p_is(p)}{flag}")
    elif comparison.test:
        parts.append(f"{comparison.test} not computed")
    pair = comparison.pairwise.get(frozenset((subtype, runner)))
    if pair is not None and not is_missing(pair[1]):
        flag = "" if float(pair[1]) < ALPHA else ", not significant"
        parts.append(f"{pair[0]} vs {runner} adjusted p {_p_is(pair[1])}{flag}")
    return "; " + "; ".join(parts) if parts else "; no test available"


def comparisons_from_tests(
    tests: pd.DataFrame,
    *,
    name_column: str | None = None,
    values: pd.DataFrame | None = None,
    value_columns: Sequence[str] = (),
    subtypes: Sequence[str] = (),
) -> dict[str, Comparison]:
    """Comparisons by quantity from a tests table of the workflow's shape.

    The table has one overall row per quantity (``comparison`` = ``all``, or no comparison
    column) with ``test``, a p-value (``p_value`` or ``pvalue``) and ``median_<subtype>``
    columns, and optionally pairwise rows (``comparison`` = ``A vs B``) with an adjusted
    p-value (``p_adjusted`` or ``padj``). Where the medians are missing, they are computed from
    ``values`` (one row per sample with a ``subtype`` column and the quantities as columns).
    """
    name_column = name_column or str(tests.columns[0])
    p_column = _first(tests, ("p_value", "pvalue"))
    adj_column = _first(tests, ("p_adjusted", "padj"))
    has_comparison = "comparison" in tests.columns
    medians = _medians(values, value_columns) if values is not None else {}
    result: dict[str, Comparison] = {}
    for name, rows in tests.groupby(name_column, sort=False):
        name = str(name)
        overall = (
            rows[rows["comparison"].astype(str).str.lower() == "all"] if has_comparison else rows
        )
        row = overall.iloc[0] if len(overall) else None
        by_subtype = {}
        if row is not None:
            by_subtype = {
                c[len("median_") :]: row[c]
                for c in tests.columns
                if c.startswith("median_") and _finite(row[c])
            }
        if not by_subtype and name in medians:
            by_subtype = medians[name]
        pairwise = {}
        if has_comparison and adj_column:
            for _, pair in rows[rows["comparison"].astype(str).str.contains(" vs ")].iterrows():
                a, b = (part.strip() for part in str(pair["comparison"]).split(" vs ", 1))
                pairwise[frozenset((a, b))] = (
                    str(pair.get("test", "pairwise test")),
                    pair[adj_column],
                )
        result[name] = Comparison(
            values=by_subtype,
            test=None if row is None else _text(row.get("test")) or "test",
            p=None if row is None or p_column is None else row[p_column],
            pairwise=pairwise,
        )
    for name, by_subtype in medians.items():  # quantities without a test row
        result.setdefault(name, Comparison(values=by_subtype))
    return result


def _medians(values: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, float]]:
    if values is None or "subtype" not in values.columns:
        return {}
    typed = values[values["subtype"].notna() & (values["subtype"].astype(str) != "unassigned")]
    out = {}
    for column in columns:
        if column in typed.columns:
            medians = (
                pd.to_numeric(typed[column], errors="coerce").groupby(typed["subtype"]).median()
            )
            out[column] = {str(s): float(v) for s, v in medians.items() if _finite(v)}
    return out


# --- the sources -----------------------------------------------------------------------------


def _cohort_facts(data: CardInputs, subtypes: Sequence[str]):
    facts = []
    if data.assignments is not None and len(data.assignments):
        table = data.assignments
        reference = table[table["cohort"].astype(str) == data.reference_cohort]
        for subtype in subtypes:
            n_all = int((table["subtype"] == subtype).sum())
            text = f"{n_all} subject(s) assigned across {table['cohort'].nunique()} cohort(s)"
            if len(reference):
                n_ref = int((reference["subtype"] == subtype).sum())
                text += (
                    f", {n_ref} of {len(reference)} in {data.reference_cohort} "
                    f"({fmt_pct(n_ref / len(reference))})"
                )
            facts.append((subtype, Fact("Cohort", text + ".")))
    if data.rates is not None and len(data.rates):
        rates = data.rates.set_index(data.rates["subtype"].astype(str))
        rate_column = _first(rates, ("rate_per_100_person_years",))
        if rate_column:
            values = {
                s: float(rates.loc[s, rate_column])
                for s in rates.index
                if _finite(rates.loc[s, rate_column])
            }
            for subtype in subtypes:
                if subtype not in values:
                    continue
                row = rates.loc[subtype]
                rank = _rank_words(values, subtype)
                text = (
                    f"Recurrence in {data.reference_cohort}: {fmt_num(row.get('events'))} "
                    f"event(s) in {fmt_num(row.get('n'))} subjects, "
                    f"{fmt_num(values[subtype])} per 100 person-years, {rank} (the naming rule "
                    "ranks subtypes by this rate)."
                )
                facts.append((subtype, Fact("Cohort", text)))
    return facts


def _prognosis_facts(data: CardInputs, subtypes: Sequence[str]):
    facts = []
    table = data.hazard_ratios
    if table is not None and len(table) and "term" in table.columns:
        terms = table[table["term"].astype(str).str.match(SUBTYPE_TERM)].copy()
        terms["level"] = terms["term"].astype(str).str.extract(SUBTYPE_TERM)["level"]
        levels = set(terms["level"])
        references = [s for s in subtypes if s not in levels]
        reference = references[0] if len(references) == 1 else None
        adjusted = f", adjusted for {', '.join(data.covariates)}" if data.covariates else ""
        cohorts = list(dict.fromkeys(table["cohort"].astype(str)))
        for subtype in subtypes:
            if subtype == reference:
                text = f"Reference level of the multivariable Cox models{adjusted}."
                facts.append((subtype, Fact("Prognosis", text)))
                continue
            rows = terms[terms["level"] == subtype]
            if not rows.empty:
                text = _hazard_ratios_text(rows, cohorts, reference=reference, adjusted=adjusted)
                facts.append((subtype, Fact("Prognosis", text)))
    facts += _validation_survival_facts(data, subtypes)
    if data.risk_scores is not None and data.assignments is not None:
        joined = data.assignments[["subject_id", "subtype"]].merge(
            data.risk_scores[["subject_id", "rrs_group"]], on="subject_id"
        )
        for subtype in subtypes:
            rows = joined[joined["subtype"] == subtype]
            if len(rows):
                high = float((rows["rrs_group"].astype(str) == "high").mean())
                facts.append(
                    (
                        subtype,
                        Fact(
                            "Prognosis",
                            f"{fmt_pct(high)} of its {len(rows)} "
                            "subjects fall in the high recurrence-risk-score "
                            "group.",
                        ),
                    )
                )
    return facts


def _validation_survival_facts(data: CardInputs, subtypes: Sequence[str]):
    """Recurrence-free survival by the horizon in each cohort but the one the names come from.

    The subtypes are named by their recurrence rate in the reference (training) cohort, so
    which is worst there holds by construction; a directional claim (worst, best) is only
    evidence in the other cohorts, and is made from them.
    """
    facts = []
    cohorts = [c for c in data.survival_summaries if c != data.reference_cohort]
    per_subtype: dict[str, list[str]] = {s: [] for s in subtypes}
    horizon = None
    for cohort in cohorts:
        table = data.survival_summaries[cohort]
        if table is None or "survival" not in table.columns:
            continue
        table = table.set_index(table["subtype"].astype(str))
        values = {s: float(v) for s, v in table["survival"].items() if _finite(v)}
        if "horizon" in table.columns and len(table) and _finite(table["horizon"].iloc[0]):
            horizon = float(table["horizon"].iloc[0])
        for subtype in subtypes:
            if subtype not in values:
                continue
            row = table.loc[subtype]
            rank = _rank_words(values, subtype) if len(values) > 1 else "the only subtype"
            interval = ""
            if _finite(row.get("ci_lower")) and _finite(row.get("ci_upper")):
                interval = f" ({fmt_pct(row['ci_lower'])}\u2013{fmt_pct(row['ci_upper'])})"
            per_subtype[subtype].append(
                f"{fmt_pct(values[subtype])}{interval} in {cohort} (n = {fmt_num(row.get('n'))}, "
                f"{rank} there)"
            )
    when = f"by {fmt_num(horizon)} months" if horizon is not None else "by the horizon"
    for subtype, parts in per_subtype.items():
        if parts:
            text = (
                f"Recurrence-free survival {when} in the cohorts its name was not drawn from "
                f"(Kaplan-Meier): {'; '.join(parts)}."
            )
            facts.append((subtype, Fact("Prognosis", text)))
    return facts


def _hazard_ratios_text(rows: pd.DataFrame, cohorts, *, reference, adjusted: str) -> str:
    """HR (95% CI) per cohort, p in the first; the cohorts without an estimate named once."""
    estimated, not_estimated, notes = [], [], []
    for cohort in cohorts:
        row = rows[rows["cohort"].astype(str) == cohort]
        if row.empty:
            continue
        row = row.iloc[0]
        if _finite(row.get("hazard_ratio")):
            # the subtypes are named by their training recurrence: the direction of a training
            # hazard ratio holds by construction; the validation cohorts are the evidence
            apparent = " (apparent: names from training recurrence)" if cohort == "training" else ""
            estimated.append(f"{_hr_text(row, full=not estimated)} in {cohort}{apparent}")
        else:
            not_estimated.append(cohort)
            notes.append(_text(row.get("note")))
    versus = f" vs {reference}" if reference else ""
    text = f"Hazard ratio of recurrence{versus} (multivariable Cox{adjusted}): "
    text += "; ".join(estimated)
    if not_estimated:
        why = notes[0] if len(set(notes)) == 1 and notes[0] else "see the notes of the Cox fits"
        if len(not_estimated) > 1 and len(set(notes)) > 1:
            why = "too few events for the model's terms, or see the notes of the Cox fits"
        text += ("; " if estimated else "") + f"not estimated in {_join(not_estimated)} ({why})"
    return text + "."


def _hr_text(row: pd.Series, *, full: bool) -> str:
    """``HR (95% CI low–high, p = …)``; without the words "95% CI" unless ``full``."""
    hr = fmt_ratio(row.get("hazard_ratio"))
    low, high = fmt_ratio(row.get("ci_lower")), fmt_ratio(row.get("ci_upper"))
    p = f", p {_p_is(row.get('p_value'))}" if _finite(row.get("p_value")) else ""
    return f"{hr} ({'95% CI ' if full else ''}{low}\u2013{high}{p})"


def _pathology_facts(data: CardInputs, subtypes: Sequence[str]):
    if data.wsi_tests is None or not len(data.wsi_tests):
        return []
    counts = _slides_per_subtype(data)
    comparisons = comparisons_from_tests(data.wsi_tests, name_column="metric")
    facts = []
    for column, direction, label, unit in WSI_FACTS:
        if column in comparisons:
            comparison = comparisons[column]
            comparison = Comparison(**{**comparison.__dict__, "n": counts, "n_label": "slides"})
            facts += extreme_facts(
                comparison, direction=direction, label=label, topic="Pathology", unit=unit
            )
    facts += _phenotype_facts(data)
    facts += _absent(
        comparisons,
        subtypes,
        "Pathology",
        "No slide of this subtype has slide metrics (none analysed, or all failed QC).",
    )
    return facts


def _phenotype_facts(data: CardInputs) -> list[tuple[str, Fact]]:
    """Each subtype's commonest immune phenotype and on how many of its slides."""
    if data.slide_metrics is None or data.assignments is None:
        return []
    if "immune_phenotype" not in data.slide_metrics.columns:
        return []
    slides = data.slide_metrics.merge(data.assignments[["subject_id", "subtype"]], on="subject_id")
    slides = slides[slides["immune_phenotype"].isin(["inflamed", "excluded", "desert"])]
    facts = []
    for subtype, group in slides.groupby("subtype"):
        counts = group["immune_phenotype"].value_counts()
        facts.append(
            (
                str(subtype),
                Fact(
                    "Pathology",
                    f"Immune phenotype {counts.index[0]} on {counts.iloc[0]} of {len(group)} "
                    "slides (Chen and Mellman's inflamed, excluded or desert, from the "
                    "lymphocyte densities in epithelium and stroma).",
                ),
            )
        )
    return facts


def _slides_per_subtype(data: CardInputs) -> dict[str, int]:
    if data.slide_metrics is None or data.assignments is None:
        return {}
    slides = data.slide_metrics.merge(data.assignments[["subject_id", "subtype"]], on="subject_id")
    if "qc_flags" in slides.columns:
        slides = slides[slides["qc_flags"].isna() | (slides["qc_flags"].astype(str) == "")]
    counts = slides.groupby("subtype")["slide_id"].nunique()
    return {str(s): int(n) for s, n in counts.items()}


def _bulk_score_facts(data: CardInputs, subtypes: Sequence[str]):
    if data.bulk_score_tests is None and data.bulk_scores is None:
        return []
    columns = [c for c, _, _ in BULK_SCORE_FACTS]
    if data.bulk_score_tests is not None and len(data.bulk_score_tests):
        comparisons = comparisons_from_tests(
            data.bulk_score_tests, values=data.bulk_scores, value_columns=columns
        )
    else:
        comparisons = {
            c: Comparison(values=v) for c, v in _medians(data.bulk_scores, columns).items()
        }
    facts = []
    for column, direction, label in BULK_SCORE_FACTS:
        if column in comparisons:
            facts += extreme_facts(
                comparisons[column], direction=direction, label=label, topic="Bulk RNA-seq"
            )
    facts += _absent(
        {c: comparisons[c] for c in columns if c in comparisons},
        subtypes,
        "Bulk RNA-seq",
        "No bulk RNA-seq sample of this subtype.",
    )
    return facts


def _hallmark_facts(data: CardInputs, subtypes: Sequence[str], *, top: int = 3):
    facts = []
    for subtype in subtypes:
        table, sign, against = _gsea_for(data.gsea, subtype, subtypes)
        if table is None:
            continue
        if not {"term", "nes"} <= set(table.columns):
            continue
        fdr_column = _first(table, ("fdr", "padj", "qvalue", "fdr_q_value"))
        frame = table.assign(score=sign * pd.to_numeric(table["nes"], errors="coerce"))
        frame = frame[frame["score"] > 0]
        if fdr_column:
            frame = frame.assign(fdr=pd.to_numeric(frame[fdr_column], errors="coerce"))
            significant = frame[frame["fdr"] < GSEA_FDR]
        else:
            significant = frame
        ranked = significant.sort_values(["score"], ascending=False).head(top)
        if ranked.empty:
            text = (
                f"No Hallmark set enriched vs {against} at FDR < {GSEA_FDR:g} (GSEA on "
                "DESeq2 statistics)."
            )
        else:
            listed = ", ".join(
                f"{_term(r.term)} (NES {fmt_num(r.score, digits=2)}"
                + (f", FDR {fmt_p(r.fdr)})" if fdr_column else ")")
                for r in ranked.itertuples()
            )
            text = f"Most enriched Hallmark sets vs {against}: {listed}."
        facts.append((subtype, Fact("Bulk RNA-seq", text)))
    return facts


def _gsea_for(gsea: Mapping[str, pd.DataFrame], subtype: str, subtypes: Sequence[str]):
    """The GSEA table that sets ``subtype`` apart, the sign of its NES and what it is against."""
    if f"{subtype}_vs_rest" in gsea:
        return gsea[f"{subtype}_vs_rest"], 1.0, "the other subtypes"
    others = [s for s in subtypes if s != subtype]
    if len(others) == 1:
        other = others[0]
        if f"{subtype}_vs_{other}" in gsea:
            return gsea[f"{subtype}_vs_{other}"], 1.0, other
        if f"{other}_vs_{subtype}" in gsea:
            return gsea[f"{other}_vs_{subtype}"], -1.0, other
    return None, 1.0, ""


def _term(term: str) -> str:
    return re.sub(r"^HALLMARK_", "", str(term))


def _deconvolution_facts(data: CardInputs, subtypes: Sequence[str], *, top: int = 2):
    fractions = data.deconvolution
    if fractions is None or "subtype" not in fractions.columns:
        return []
    cell_types = deconvolution_cell_types(fractions, data.deconvolution_tests)
    tests = data.deconvolution_tests
    if tests is not None and len(tests):
        # the tests' medians (each subject once) where given, else the samples'
        comparisons = comparisons_from_tests(tests, values=fractions, value_columns=cell_types)
    else:
        comparisons = {c: Comparison(values=v) for c, v in _medians(fractions, cell_types).items()}
    return _leading(
        comparisons,
        subtypes,
        topic="Bulk RNA-seq",
        top=top,
        label="estimated {} fraction (deconvolution)",
        formatter=fmt_pct,
    )


def deconvolution_cell_types(fractions: pd.DataFrame, tests: pd.DataFrame | None) -> list[str]:
    """The cell-type columns of the fractions: those the tests compare, else every numeric
    column but the IDs and the fit's diagnostics."""
    if tests is not None and len(tests):
        named = list(dict.fromkeys(tests.iloc[:, 0].astype(str)))
        return [c for c in named if c in fractions.columns]
    skip = {"sample_id", "subject_id", "subtype", "cohort", "fit_correlation", "residual"}
    return [
        c
        for c in fractions.columns
        if c not in skip and pd.api.types.is_numeric_dtype(fractions[c])
    ]


def _scrna_facts(data: CardInputs, subtypes: Sequence[str], *, top: int = 2):
    comparisons = {}
    tests = data.scrna_tests
    if tests is not None and len(tests):
        for _, row in tests.iterrows():
            values = {
                c[len("mean_fraction_") :]: row[c]
                for c in tests.columns
                if c.startswith("mean_fraction_") and _finite(row[c])
            }
            p_column = _first(tests, ("padj", "p_adjusted"))
            comparisons[str(row["cell_type"])] = Comparison(
                values=values,
                summary="mean",
                test=_text(row.get("test")) or None,
                p=row[p_column] if p_column else None,
                p_label="BH-adjusted p",
            )
    elif data.scrna_composition is not None:
        table = data.scrna_composition
        typed = table[table["subtype"].astype(str) != "unassigned"]
        means = typed.groupby(["cell_type", "subtype"])["fraction"].mean().unstack()
        for cell_type, row in means.iterrows():
            comparisons[str(cell_type)] = Comparison(
                values={str(s): v for s, v in row.items() if _finite(v)}, summary="mean"
            )
    if not comparisons:
        return []
    facts = []
    for subtype in subtypes:
        shares = {
            c: comp.values[subtype] for c, comp in comparisons.items() if subtype in comp.values
        }
        if not shares:
            continue
        ranked = sorted(shares, key=lambda c: (-float(shares[c]), c))[:3]
        listed = ", ".join(f"{c} {fmt_pct(shares[c])}" for c in ranked)
        facts.append(
            (
                subtype,
                Fact(
                    "Single-cell RNA-seq",
                    f"Most abundant cell types (mean share of a sample's cells): {listed}.",
                ),
            )
        )
    facts += _leading(
        comparisons,
        subtypes,
        topic="Single-cell RNA-seq",
        top=top,
        label="{} share",
        formatter=fmt_pct,
    )
    facts += _absent(
        comparisons, subtypes, "Single-cell RNA-seq", "No single-cell sample of this subtype."
    )
    return facts


def _leading(comparisons: Mapping[str, Comparison], subtypes, *, topic, top, label, formatter):
    """Per subtype, the cell types in which it leads all subtypes, most significant first.

    ``label`` has a ``{}`` for the cell type.
    """
    leads: dict[str, list[tuple[float, str, str]]] = {s: [] for s in subtypes}
    for cell_type, comparison in comparisons.items():
        for subtype, fact in extreme_facts(
            comparison,
            direction="highest",
            label=label.format(cell_type),
            topic=topic,
            formatter=formatter,
        ):
            p = float(comparison.p) if _finite(comparison.p) else math.inf
            if subtype in leads:
                leads[subtype].append((p, cell_type, fact.text))
    facts = []
    for subtype, found in leads.items():
        for _, _, text in sorted(found)[:top]:
            facts.append((subtype, Fact(topic, text)))
    return facts


def _absent(comparisons: Mapping[str, Comparison], subtypes, topic: str, text: str):
    if not comparisons:
        return []
    present = set().union(*(set(c.values) for c in comparisons.values()))
    if not present:
        return []
    return [(s, Fact(topic, text)) for s in subtypes if s not in present]


# --- small helpers -------------------------------------------------------------------------


def _p_is(p) -> str:
    """``= 0.012``, or ``< 0.001`` for a p of 0 (below a permutation test's resolution)."""
    text = fmt_p(p)
    return text if text.startswith("<") else f"= {text}"


def _finite(value) -> bool:
    try:
        return value is not None and bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _first(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in frame.columns), None)


def _text(value) -> str:
    return "" if is_missing(value) else str(value).strip()


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _rank_words(values: Mapping[str, float], subtype: str) -> str:
    """Where ``subtype`` ranks: 'the highest of the 3 subtypes', 'intermediate among the 3
    subtypes', 'the 2nd highest of the 4 subtypes'; ties share a rank and say so."""
    value = values[subtype]
    higher = sum(1 for v in values.values() if v > value and not _same(v, value))
    lower = sum(1 for v in values.values() if v < value and not _same(v, value))
    tied = sum(1 for v in values.values() if _same(v, value)) > 1
    of = f"of the {len(values)} subtypes"
    prefix = "tied for " if tied else ""
    if higher == 0:
        return f"{prefix}the highest {of}"
    if lower == 0:
        return f"{prefix}the lowest {of}"
    if len(values) == 3 and not tied:
        return f"intermediate among the {len(values)} subtypes"
    ordinal = {1: "2nd", 2: "3rd"}.get(higher, f"{higher + 1}th")
    return f"{prefix}the {ordinal} highest {of}"
