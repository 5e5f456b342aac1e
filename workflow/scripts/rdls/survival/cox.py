"""Cox proportional-hazards models with a design fitted once and applied unchanged elsewhere.

``make_design`` decides, on the training cohort, how each clinical covariate becomes numbers
(which levels a categorical has and which is the reference, which skewed covariates are taken
as log2); ``design_matrix`` applies that decision to any cohort and refuses what the training
cohort did not have. ``fit_cox`` fits lifelines' ``CoxPHFitter`` on complete cases, which
handles tied times by Efron's method (R's ``coxph`` default), and tests proportional hazards by
the score test of survival 3.x's ``cox.zph`` (:mod:`rdls.survival.ph_test`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError

from rdls.errors import InputError
from rdls.survival.km import check_survival, natural_key
from rdls.survival.ph_test import cox_zph

log = logging.getLogger(__name__)

_SHOWN = 5
SPARSE_REASON = "too few training events"
SET_REASON = "as set in survival.merge_levels"


@dataclass
class CoxDesign:
    """How clinical covariates become the columns of a Cox model.

    Attributes
    ----------
    terms : list of str
        The design-matrix columns, in order: ``f"{col}[{level}]"`` for each non-reference
        level of a categorical, ``f"log2({col})"`` for a log2 covariate, ``col`` otherwise.
    categorical_levels : dict
        Levels (as strings, in the training cohort's order) of each categorical covariate.
    reference : dict
        The reference level of each categorical covariate (its hazard ratio is 1).
    log2 : list of str
        Covariates entered as log2 of their value.
    covariates : list of str
        The source columns, in order.
    merged : dict
        Per categorical covariate, the levels merged into another: original level -> merged
        level; as the user's map says (:func:`merge_levels_as_set`) or because they had no
        events in training (:func:`merge_sparse_levels`).
    merge_reasons : dict
        Per categorical covariate, why each merged level was made (merged level -> reason).
    """

    terms: list[str]
    categorical_levels: dict[str, list[str]]
    reference: dict[str, str]
    log2: list[str]
    covariates: list[str] = field(default_factory=list)
    merged: dict[str, dict[str, str]] = field(default_factory=dict)
    merge_reasons: dict[str, dict[str, str]] = field(default_factory=dict)

    def merge_notes(self) -> list[str]:
        """One sentence per merged level, for tables and logs."""
        notes = []
        for column, mapping in self.merged.items():
            for into in dict.fromkeys(mapping.values()):
                parts = " and ".join(level for level, to in mapping.items() if to == into)
                reason = self.merge_reasons.get(column, {}).get(into, SPARSE_REASON)
                notes.append(f"{column}: {parts} merged into {into} ({reason})")
        return notes

    def to_dict(self) -> dict:
        """A JSON/YAML-ready copy, read back by :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CoxDesign:
        return cls(**data)


@dataclass
class CoxResult:
    """A fitted Cox model and what a report needs from it.

    Attributes
    ----------
    table : pandas.DataFrame
        ``term``, ``coef``, ``se``, ``hazard_ratio``, ``ci_lower``, ``ci_upper`` (95%, of the
        hazard ratio) and ``p_value`` (Wald; for a Firth fit profile-likelihood interval and
        likelihood-ratio p-value), one row per design term.
    ph_test : pandas.DataFrame
        ``term``, ``statistic``, ``df`` and ``p_value`` of the score test of proportional
        hazards (``cox.zph``, survival 3.x) per covariate (a categorical's levels pooled) and
        a ``GLOBAL`` row.
    n, events : int
        Subjects and events in the fit.
    dropped_missing : int
        Rows of the input left out for a missing time, event or covariate.
    concordance : float
        Harrell's C of the fitted linear predictor on the fitted data.
    model : lifelines.CoxPHFitter or None
        None for a Firth fit.
    """

    table: pd.DataFrame
    ph_test: pd.DataFrame
    n: int
    events: int
    dropped_missing: int
    concordance: float
    model: CoxPHFitter | None


def make_design(
    frame: pd.DataFrame,
    *,
    covariates: list[str],
    categorical: list[str] | None = None,
    log2: Sequence[str] = (),
    reference: dict[str, str] | None = None,
) -> CoxDesign:
    """Decide, on ``frame`` (the training cohort), how each covariate is encoded.

    Parameters
    ----------
    frame : pandas.DataFrame
        The training cohort; missing values are ignored here.
    covariates : list of str
        Columns to enter the model, in order.
    categorical : list of str, optional
        Covariates to one-hot encode; by default the non-numeric ones (a numeric code such as
        a T stage 1-4 stays numeric unless named here).
    log2 : sequence of str
        Numeric covariates with a skewed, positive distribution (CEA) entered as log2.
    reference : dict, optional
        Reference level per categorical covariate (pass ``{"subtype": "RDLS1"}``); by
        default the first level in natural order ("RDLS2" before "RDLS10"), or the first
        category of a pandas categorical.

    Raises
    ------
    rdls.errors.InputError
        A covariate is absent or constant, a reference level does not occur, a log2
        covariate is not numeric or has values at or below zero.
    """
    missing = [c for c in [*covariates, *(categorical or []), *log2] if c not in frame.columns]
    if missing:
        raise InputError(
            f"covariates {missing} are not columns of the table (columns: "
            f"{', '.join(map(str, frame.columns))}). Fix the covariate names in the config."
        )
    for name, names in (("categorical", categorical or []), ("log2", log2)):
        stray = [c for c in names if c not in covariates]
        if stray:
            raise InputError(
                f"{name} covariates {stray} are not in covariates {list(covariates)}. "
                "List them under covariates too, or remove them."
            )
    if categorical is None:
        categorical = [c for c in covariates if not pd.api.types.is_numeric_dtype(frame[c])]
    reference = dict(reference or {})
    stray = [c for c in reference if c not in categorical]
    if stray:
        raise InputError(
            f"reference levels are given for {stray}, which are not categorical covariates "
            f"({categorical}). Name them as categorical, or drop the reference."
        )
    both = [c for c in log2 if c in categorical]
    if both:
        raise InputError(f"covariates {both} cannot be both categorical and log2; choose one.")

    terms: list[str] = []
    levels: dict[str, list[str]] = {}
    refs: dict[str, str] = {}
    for column in covariates:
        values = frame[column].dropna()
        if column in categorical:
            found = _category_levels(frame[column])
            if len(found) < 2:
                raise InputError(
                    f"categorical covariate {column!r} has {len(found)} level(s) ({found}) in "
                    "the training cohort; a hazard ratio needs at least two. Leave it out."
                )
            ref = _level_text(reference.get(column, found[0]))
            if ref not in found:
                raise InputError(
                    f"reference level {ref!r} of covariate {column!r} does not occur in the "
                    f"training cohort (levels: {found}). Choose one of these."
                )
            levels[column] = found
            refs[column] = ref
            terms += [f"{column}[{level}]" for level in found if level != ref]
            continue
        numbers = _numeric(frame[column], column, frame)
        if numbers.nunique() < 2:
            raise InputError(
                f"covariate {column!r} takes {numbers.nunique()} distinct value(s) in the "
                "training cohort; a constant has no hazard ratio. Leave it out."
            )
        if column in log2:
            _check_positive(frame.loc[values.index], numbers.loc[values.index], column)
            terms.append(f"log2({column})")
        else:
            terms.append(column)
    return CoxDesign(
        terms=terms,
        categorical_levels=levels,
        reference=refs,
        log2=list(log2),
        covariates=list(covariates),
    )


def design_matrix(design: CoxDesign, frame: pd.DataFrame) -> pd.DataFrame:
    """The numeric columns ``design.terms`` of ``frame`` (same index; missing stays NaN).

    Raises
    ------
    rdls.errors.InputError
        A covariate column is absent, a categorical takes a level the training cohort did
        not have, a numeric covariate is not a number, or a log2 covariate is not positive.
    """
    absent = [c for c in design.covariates if c not in frame.columns]
    if absent:
        raise InputError(
            f"covariates {absent} of the Cox design are not columns of this table. Add them; "
            "the model was fitted with them."
        )
    out = {}
    for column in design.covariates:
        if column in design.categorical_levels:
            known = design.categorical_levels[column]
            values = _merge_levels(frame[column], design.merged.get(column, {}))
            unseen = values.notna() & ~values.isin(known)
            if unseen.any():
                level = values[unseen].iloc[0]
                raise InputError(
                    f"covariate {column!r}: level {level!r} ({unseen.sum()} rows, e.g. "
                    f"{_ids(frame)[unseen].iloc[0]}) did not occur in the training cohort "
                    f"(known levels: {known}). Recode it to a known level or leave those "
                    "rows out."
                )
            for level in known:
                if level == design.reference[column]:
                    continue
                out[f"{column}[{level}]"] = np.where(
                    values.isna(), np.nan, (values == level).astype(float)
                )
            continue
        numbers = _numeric(frame[column], column, frame)
        if column in design.log2:
            _check_positive(frame, numbers, column)
            out[f"log2({column})"] = np.log2(numbers)
        else:
            out[column] = numbers
    matrix = pd.DataFrame(out, index=frame.index)
    return matrix[design.terms]


def merged_values(design: CoxDesign, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its categorical covariates recoded to the design's merged levels."""
    out = frame.copy()
    for column, merged in design.merged.items():
        out[column] = _merge_levels(frame[column], merged)
    return out


def _merge_levels(values: pd.Series, merged: dict[str, str]) -> pd.Series:
    return values.map(lambda v: v if pd.isna(v) else merged.get(_level_text(v), _level_text(v)))


def merge_levels_as_set(
    design: CoxDesign, mapping: dict[str, dict[str, str]], *, keep: Sequence[str] = ("subtype",)
) -> CoxDesign:
    """Merge categorical levels as ``mapping`` says: ``{covariate: {level: merged level}}``.

    The user's map (``survival.merge_levels``) comes before the merge of sparse levels, and
    is noted in every table as set by them. A level the map leaves out stays as it is.

    Raises
    ------
    rdls.errors.InputError
        A covariate that is not a categorical one of the design, or one of ``keep`` (the
        subtype); a level the training cohort does not have; a map that leaves fewer than two
        levels.
    """
    levels = dict(design.categorical_levels)
    reference = dict(design.reference)
    merged = {c: dict(m) for c, m in design.merged.items()}
    reasons = {c: dict(r) for c, r in design.merge_reasons.items()}
    for column, recode in mapping.items():
        if column in keep:
            raise InputError(
                f"survival.merge_levels: {column!r} is the quantity the models estimate; its "
                "levels are never merged. Remove it from the map."
            )
        if column not in levels:
            raise InputError(
                f"survival.merge_levels: {column!r} is not a categorical covariate of the Cox "
                f"models (those are {sorted(set(levels) - set(keep))}). Check its spelling "
                "against clinical.covariates."
            )
        recode = {str(k): str(v) for k, v in recode.items()}
        unknown = sorted(set(recode) - set(levels[column]))
        if unknown:
            raise InputError(
                f"survival.merge_levels: {column!r} has no level(s) {unknown} in the training "
                f"cohort (its levels are {levels[column]}). Use those names."
            )
        labels = list(dict.fromkeys(recode.get(level, level) for level in levels[column]))
        if len(labels) < 2:
            raise InputError(
                f"survival.merge_levels: the map merges every level of {column!r} into one, "
                "which leaves nothing to compare. Leave the covariate out instead."
            )
        merged[column] = {lev: to for lev, to in recode.items() if to != lev}
        reasons.setdefault(column, {}).update(dict.fromkeys(merged[column].values(), SET_REASON))
        reference[column] = recode.get(reference[column], reference[column])
        levels[column] = labels
    return replace(design, terms=_terms(design, levels, reference), categorical_levels=levels,
                   reference=reference, merged=merged, merge_reasons=reasons)  # fmt: skip


def _terms(design: CoxDesign, levels: dict, reference: dict) -> list[str]:
    terms = []
    for column in design.covariates:
        if column in levels:
            terms += [f"{column}[{lev}]" for lev in levels[column] if lev != reference[column]]
        else:
            terms.append(f"log2({column})" if column in design.log2 else column)
    return terms


def merge_sparse_levels(
    design: CoxDesign,
    frame: pd.DataFrame,
    *,
    event: str,
    min_events: int = 1,
    keep: Sequence[str] = ("subtype",),
) -> CoxDesign:
    """Merge each categorical level with fewer than ``min_events`` training events into a
    neighbour, so that no hazard ratio runs off to zero or infinity.

    Levels are merged in their natural order (T1 with T2, N2 with N1): the first level into
    the second, the last into the one before, a middle one into its neighbour with fewer
    subjects, until every level has ``min_events`` or two levels remain. The merged level is
    named by its parts (``"T1+T2"``); it is the reference where one of its parts was.
    Covariates in ``keep`` (the subtype, the quantity of interest) are never merged.

    Parameters
    ----------
    frame : pandas.DataFrame
        The training cohort, with the covariates and the ``event`` column (0/1).
    """
    if event not in frame.columns:
        raise InputError(f"merge of sparse levels: the table has no event column {event!r}.")
    levels = dict(design.categorical_levels)
    reference = dict(design.reference)
    merged = {c: dict(m) for c, m in design.merged.items()}
    reasons = {c: dict(r) for c, r in design.merge_reasons.items()}
    for column in design.categorical_levels:
        if column in keep:
            continue
        values = _merge_levels(frame[column], design.merged.get(column, {}))
        events = frame[event].fillna(0).astype(float)
        labels = list(levels[column])
        origin = {label: [label] for label in labels}
        while len(labels) > 2:
            counts = {lab: events[values.isin(origin[lab])].sum() for lab in labels}
            sparse = [lab for lab in labels if counts[lab] < min_events]
            if not sparse:
                break
            i = labels.index(sparse[0])
            if i == 0:
                j = 1
            elif i == len(labels) - 1:
                j = i - 1
            else:
                sizes = [values.isin(origin[labels[k]]).sum() for k in (i - 1, i + 1)]
                j = i - 1 if sizes[0] <= sizes[1] else i + 1
            low, high = sorted((i, j))
            joined = f"{labels[low]}+{labels[high]}"
            origin[joined] = origin.pop(labels[low]) + origin.pop(labels[high])
            labels[low : high + 1] = [joined]
        if len(labels) == len(levels[column]):
            continue
        mapping = {o: lab for lab in labels for o in origin[lab] if o != lab}
        earlier = {o: mapping.get(lab, lab) for o, lab in merged.get(column, {}).items()}
        merged[column] = {**earlier, **mapping}
        reasons.setdefault(column, {}).update(dict.fromkeys(mapping.values(), SPARSE_REASON))
        reference[column] = next(lab for lab in labels if reference[column] in origin[lab])
        levels[column] = labels
    return replace(design, terms=_terms(design, levels, reference), categorical_levels=levels,
                   reference=reference, merged=merged, merge_reasons=reasons)  # fmt: skip


def fit_cox(
    frame: pd.DataFrame,
    *,
    time: str,
    event: str,
    design: CoxDesign,
    penalizer: float = 0.0,
    firth: bool = False,
    ph_transform: str = "km",
) -> CoxResult:
    """Fit a Cox model of ``time``/``event`` on ``design`` over the complete cases of ``frame``.

    Ties are handled by Efron's method (lifelines' only choice; R's ``coxph`` default), so
    coefficients agree with ``coxph`` to its printed precision. Rows missing the time, the
    event or any covariate are left out, counted in ``dropped_missing`` and logged.

    Parameters
    ----------
    penalizer : float
        Ridge penalty on the coefficients (lifelines' ``penalizer``, ``l1_ratio`` 0); 0 fits
        the ordinary partial likelihood.
    firth : bool
        Fit by Firth's penalised likelihood instead (:mod:`rdls.survival.firth`): finite
        estimates where a level has no events, with profile penalised-likelihood intervals
        and likelihood-ratio p-values. Its proportional-hazards test is not computed (no
        reference defines one for a Firth fit): ``ph_test`` is empty.
    ph_transform : {"km", "identity", "rank", "log"}
        Time transform of the proportional-hazards test (``cox.zph``'s ``transform``).

    Raises
    ------
    rdls.errors.InputError
        Follow-up is unusable (see ``check_survival``), no events remain, a level of a
        categorical covariate has no events or no subjects (its hazard ratio is infinite or
        undefined) when unpenalised, or the fit does not converge.
    """
    followed = check_survival(frame, time=time, event=event, where="Cox model data")
    matrix = design_matrix(design, followed)
    complete = matrix.notna().all(axis=1)
    dropped = len(frame) - int(complete.sum())
    if dropped:
        log.info(
            "Cox model: %d of %d rows left out for a missing time, event or covariate",
            dropped,
            len(frame),
        )
    data = matrix.loc[complete].astype(float)
    data["__time"] = followed.loc[complete, time].to_numpy(float)
    data["__event"] = followed.loc[complete, event].to_numpy(int)
    events = int(data["__event"].sum())
    if events == 0:
        raise InputError(
            f"Cox model: none of the {len(data)} complete cases has an event; there is "
            "nothing to fit. Check the event column."
        )
    if firth:
        return _fit_firth(design, data, dropped=dropped)
    if penalizer == 0:
        _check_estimable(design, followed.loc[complete], data)
    model = CoxPHFitter(penalizer=penalizer)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(data, duration_col="__time", event_col="__event")
    except ConvergenceError as error:
        reason = str(error).split("Please see")[0].strip()
        raise InputError(
            f"Cox model did not converge on {len(data)} subjects with {events} events "
            f"(terms {design.terms}): {reason} A covariate may separate "
            "events perfectly or two covariates may be collinear; leave one out, merge "
            "sparse levels, or set a small penalizer (0.01)."
        ) from error
    for message in dict.fromkeys(str(w.message).strip() for w in caught):
        log.warning("Cox model (terms %s): %s", design.terms, message)
    summary = model.summary.loc[design.terms]
    table = pd.DataFrame(
        {
            "term": design.terms,
            "coef": summary["coef"].to_numpy(),
            "se": summary["se(coef)"].to_numpy(),
            "hazard_ratio": summary["exp(coef)"].to_numpy(),
            "ci_lower": summary["exp(coef) lower 95%"].to_numpy(),
            "ci_upper": summary["exp(coef) upper 95%"].to_numpy(),
            "p_value": summary["p"].to_numpy(),
        }
    )
    return CoxResult(
        table=table,
        ph_test=_ph_test(model, data, design, penalizer=penalizer, transform=ph_transform),
        n=len(data),
        events=events,
        dropped_missing=dropped,
        concordance=float(model.concordance_index_),
        model=model,
    )


def hazard_table(terms, *, coef, se, ci_lower, ci_upper, p_value) -> pd.DataFrame:
    """``CoxResult.table`` from log hazard ratios and their bounds (exponentiated here)."""
    return pd.DataFrame(
        {
            "term": list(terms),
            "coef": np.asarray(coef, float),
            "se": np.asarray(se, float),
            "hazard_ratio": np.exp(coef),
            "ci_lower": np.exp(ci_lower),
            "ci_upper": np.exp(ci_upper),
            "p_value": np.asarray(p_value, float),
        }
    )


def _fit_firth(design: CoxDesign, data: pd.DataFrame, *, dropped: int) -> CoxResult:
    from rdls.survival.firth import firth_fit
    from rdls.survival.optimism import harrell_c

    x = data[design.terms].to_numpy(float)
    time, event = data["__time"].to_numpy(float), data["__event"].to_numpy(float)
    fit = firth_fit(x, time, event)
    table = hazard_table(design.terms, coef=fit.coef, se=fit.se, ci_lower=fit.ci_lower,
                         ci_upper=fit.ci_upper, p_value=fit.p_value)  # fmt: skip
    return CoxResult(
        table=table,
        ph_test=pd.DataFrame(columns=["term", "statistic", "df", "p_value"]),
        n=len(data),
        events=int(event.sum()),
        dropped_missing=dropped,
        concordance=harrell_c(x @ fit.coef, time, event),
        model=None,
    )


def _ph_test(
    model: CoxPHFitter, data: pd.DataFrame, design: CoxDesign, *, penalizer: float, transform: str
) -> pd.DataFrame:
    """``cox.zph`` of the fitted model: one row per covariate, a categorical's columns pooled."""
    terms = {}
    for column in design.covariates:
        if column in design.categorical_levels:
            levels = design.categorical_levels[column]
            reference = design.reference[column]
            terms[column] = [f"{column}[{level}]" for level in levels if level != reference]
        else:
            name = f"log2({column})" if column in design.log2 else column
            terms[name] = [name]
    penalty = None
    if penalizer > 0:  # lifelines' ridge: n * penalizer / 2 * sum((beta * sd)^2)
        spread = model._norm_std[design.terms].to_numpy()
        penalty = np.diag(len(data) * penalizer * spread**2)
    return cox_zph(
        data[design.terms],
        data["__time"],
        data["__event"],
        model.params_[design.terms].to_numpy(),
        terms=terms,
        transform=transform,
        penalty_hessian=penalty,
    )


def _check_estimable(design: CoxDesign, source: pd.DataFrame, data: pd.DataFrame) -> None:
    """Refuse levels with no subjects or no events: their hazard ratio is not finite."""
    for column, levels in design.categorical_levels.items():
        merged = design.merged.get(column, {})
        values = source[column].map(lambda v, m=merged: m.get(_level_text(v), _level_text(v)))
        for level in levels:
            rows = (values == level).to_numpy()
            role = "reference level" if level == design.reference[column] else "level"
            if not rows.any():
                raise InputError(
                    f"Cox model: {role} {level!r} of covariate {column!r} has no subjects "
                    "with complete data; its hazard ratio is undefined. Merge it with another "
                    "level or set a penalizer."
                )
            if data["__event"].to_numpy()[rows].sum() == 0:
                raise InputError(
                    f"Cox model: {role} {level!r} of covariate {column!r} has no events among "
                    f"its {rows.sum()} subjects, so its hazard ratio is not finite and the fit "
                    "cannot converge. Merge the level with another, leave the covariate out, "
                    "or set a small penalizer (0.01)."
                )


def _category_levels(column: pd.Series) -> list[str]:
    present = column.dropna()
    if isinstance(column.dtype, pd.CategoricalDtype):
        seen = set(present)
        return [_level_text(c) for c in column.cat.categories if c in seen]
    try:
        ordered = sorted(pd.unique(present), key=natural_key)
    except TypeError:
        ordered = sorted(pd.unique(present), key=str)
    return list(dict.fromkeys(_level_text(v) for v in ordered))


def _level_text(value) -> str:
    """A level as text: 2.0 (an integer code in a column with gaps) reads as "2"."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _numeric(values: pd.Series, column: str, frame: pd.DataFrame | None = None) -> pd.Series:
    if values.dtype == bool:
        return values.astype(float)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        ids = _ids(frame if frame is not None else values.to_frame())[bad]
        raise InputError(
            f"covariate {column!r} is numeric but {bad.sum()} values are not numbers (e.g. "
            f"{values[bad].iloc[0]!r} for {', '.join(ids.iloc[:_SHOWN])}). Fix the values, or "
            "name the covariate as categorical."
        )
    return numbers.astype(float)


def _check_positive(frame: pd.DataFrame, numbers: pd.Series, column: str) -> None:
    bad = numbers <= 0
    if bad.any():
        ids = _ids(frame)[bad]
        raise InputError(
            f"covariate {column!r} is entered as log2 but {bad.sum()} values are zero or "
            f"negative (subjects {', '.join(ids.iloc[:_SHOWN])}; smallest "
            f"{numbers[bad].min():g}). Fix the values, or enter {column!r} untransformed."
        )


def _ids(frame: pd.DataFrame) -> pd.Series:
    if "subject_id" in frame.columns:
        return frame["subject_id"].astype(str)
    return pd.Series(frame.index.astype(str), index=frame.index)
