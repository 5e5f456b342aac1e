"""The recurrence risk score (RRS): a penalised Cox model on the high-risk subtype's features.

Three steps, each a pure function that the rules call with tables:

1. ``high_risk_features`` picks the imaging features that differ between the high-risk subtype
   and the rest (Mann-Whitney U, Benjamini-Hochberg).
2. ``fit_rrs`` fits an elastic-net Cox model (scikit-survival's ``CoxnetSurvivalAnalysis``, a
   port of glmnet's coordinate descent) on those features, standardised with the training
   cohort's mean and standard deviation, and chooses the penalty by K-fold cross-validation of
   the partial-likelihood deviance, as R's ``cv.glmnet(family = "cox", type.measure =
   "deviance", grouped = TRUE)``.
3. ``choose_cutoff`` splits the score into high and low risk at the median or at the maximally
   selected log-rank statistic (Lausen and Schumacher, Biometrics 1992; R's ``maxstat``).

``RRSModel`` holds everything a new subject's score needs (features, training mean and scale,
coefficients, cut-off) and round-trips through a JSON-serialisable ``dict``, so that the
validation cohorts are scored with the locked training model.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, mannwhitneyu

from rdls.errors import InputError, some
from rdls.survival.km import nelson_aalen_at

log = logging.getLogger(__name__)

RULES = ("1se", "min")
WHEN_EMPTY = ("empty", "largest_nonzero")
CUTOFF_METHODS = ("maxstat", "median")


# ---------------------------------------------------------------------------------------------
# Feature selection


def high_risk_features(
    X: pd.DataFrame,
    is_high_risk: pd.Series,
    *,
    fdr: float = 0.05,
    max_features: int = 50,
    quiet: bool = False,
) -> pd.DataFrame:
    """Features that differ between the high-risk subtype and the other subjects.

    Each feature is compared between the two groups with a two-sided Mann-Whitney U test;
    p-values are adjusted over all features with Benjamini-Hochberg.

    Parameters
    ----------
    X : pandas.DataFrame
        Subjects x features (training cohort), finite numbers.
    is_high_risk : pandas.Series
        True for subjects of the high-risk subtype, indexed like ``X``.
    fdr : float
        Features with a BH-adjusted p-value below ``fdr`` are candidates (1: every feature).
    max_features : int
        At most this many candidates, those with the largest ``|effect|``, are selected.
    quiet : bool
        Do not log a screen that keeps nothing (the folds of a cross-validation).

    Returns
    -------
    pandas.DataFrame
        One row per feature, ordered by p-value: ``feature``, ``effect`` (rank-biserial
        correlation, ``2 U / (n_high n_rest) - 1``: positive when the feature is higher in the
        high-risk subtype), ``p_value``, ``p_adjusted`` and ``selected`` (none where no
        feature passes ``fdr``: a result, logged, not an error).

    Raises
    ------
    InputError
        Non-finite values, labels that do not match ``X``, or a group with fewer than two
        subjects.
    """
    if not 0 < fdr <= 1:
        raise ValueError(f"fdr must lie in (0, 1], got {fdr}")
    if max_features < 1:
        raise ValueError(f"max_features must be at least 1, got {max_features}")
    values = _feature_matrix(X, where="features")
    high = _aligned(is_high_risk, X.index, name="is_high_risk")
    if high.isna().any():
        raise InputError(
            f"is_high_risk is missing for subjects {some(high.index[high.isna()], quote=False)}; "
            "label every subject True or False."
        )
    high = high.astype(bool).to_numpy()
    n_high, n_rest = int(high.sum()), int((~high).sum())
    if min(n_high, n_rest) < 2:
        raise InputError(
            f"the high-risk subtype has {n_high} subjects and the rest {n_rest}; both groups "
            "need at least 2 to compare features. Check the subtype assignments."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        u, p = mannwhitneyu(values[high], values[~high], alternative="two-sided", axis=0)
    u = np.atleast_1d(np.asarray(u, dtype=float))
    p = np.atleast_1d(np.asarray(p, dtype=float))
    constant = np.ptp(values, axis=0) == 0
    effect = np.where(constant, 0.0, 2.0 * u / (n_high * n_rest) - 1.0)
    p = np.where(constant | ~np.isfinite(p), 1.0, p)
    table = pd.DataFrame(
        {
            "feature": list(X.columns),
            "effect": effect,
            "p_value": p,
            "p_adjusted": false_discovery_control(p, method="bh"),
        }
    )
    candidates = (table["p_adjusted"] < fdr) | (fdr >= 1)
    if not candidates.any() and not quiet:
        best = table.loc[table["p_adjusted"].idxmin()]
        log.warning(
            "no feature differs between the high-risk subtype (%d subjects) and the rest (%d) "
            "at FDR < %g: the smallest adjusted p-value is %.3g (feature %r)",
            n_high, n_rest, fdr, best["p_adjusted"], best["feature"],
        )  # fmt: skip
    keep = table.loc[candidates, "effect"].abs().sort_values(ascending=False, kind="mergesort")
    table["selected"] = table.index.isin(keep.index[:max_features])
    order = np.lexsort((-table["effect"].abs().to_numpy(), table["p_value"].to_numpy()))
    return table.iloc[order].reset_index(drop=True)


@contextmanager
def _quiet_log():
    """Silence this module's log for the hundreds of refits of a bootstrap or repeated CV,
    whose empty fits are counted in their own tables, not worth a warning each."""
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def candidate_screen(
    X: pd.DataFrame, is_high_risk: pd.Series, *, fdr: float, max_features: int
) -> Callable[[np.ndarray], list[str]]:
    """:func:`high_risk_features` as a function of the rows it may see, for ``fit_rrs``.

    ``screen(rows)`` screens the subjects at positions ``rows`` of ``X`` and returns the
    selected features; a set of rows whose high-risk group has fewer than two subjects keeps
    none. Results are kept, so that repeated splits do not screen the same rows twice.
    """
    kept: dict[bytes, list[str]] = {}

    def screen(rows: np.ndarray) -> list[str]:
        key = np.asarray(rows, dtype=np.int64).tobytes()
        if key not in kept:
            try:
                table = high_risk_features(X.iloc[rows], is_high_risk.iloc[rows], fdr=fdr,
                                           max_features=max_features, quiet=True)  # fmt: skip
            except InputError:
                kept[key] = []
            else:
                kept[key] = table.loc[table["selected"], "feature"].astype(str).tolist()
        return kept[key]

    return screen


# ---------------------------------------------------------------------------------------------
# The model


@dataclass
class RRSModel:
    """Everything needed to score a new subject with the recurrence risk score.

    The score is the Cox linear predictor ``sum_j coefficients[j] * (x_j - mean[j]) /
    scale[j]``; ``features`` lists only the features with a non-zero coefficient (those a
    subject must have), in the training table's column order. ``scale`` is the training
    standard deviation (``ddof=0``, as glmnet's standardisation).
    """

    features: list[str]
    mean: dict[str, float]
    scale: dict[str, float]
    coefficients: dict[str, float]
    alpha: float
    l1_ratio: float
    cutoff: float | None = None
    cutoff_method: str = "none"
    notes: list[str] = field(default_factory=list)
    cutoff_p_value: float | None = None

    @classmethod
    def without_features(cls, reason: str) -> RRSModel:
        """The RRS where there is none to fit (no significant subtypes, so no high-risk
        subtype to screen features against): no features, no cut-off, ``reason`` in notes."""
        return cls(features=[], mean={}, scale={}, coefficients={}, alpha=0.0, l1_ratio=1.0,
                   notes=[reason])  # fmt: skip

    @property
    def empty(self) -> bool:
        """True for :meth:`without_features`' model: it scores nobody."""
        return not self.features

    def score(self, X: pd.DataFrame) -> pd.Series:
        """The RRS of each row of ``X`` (a Series named ``rrs`` with ``X``'s index).

        Raises
        ------
        InputError
            A model feature missing from ``X``, or a missing/non-finite value in one.
        """
        missing = [f for f in self.features if f not in X.columns]
        if missing:
            raise InputError(
                f"the RRS needs feature column(s) {', '.join(map(repr, missing))}, which the "
                "table to score lacks. Score a table with the same imaging features as the "
                "training cohort."
            )
        block = X[self.features].apply(pd.to_numeric, errors="coerce").astype(float)
        bad = ~np.isfinite(block.to_numpy())
        if bad.any():
            rows = block.index[bad.any(axis=1)]
            cols = block.columns[bad.any(axis=0)]
            raise InputError(
                f"cannot score subjects {some(rows, quote=False)}: missing or non-finite values in "
                f"{', '.join(map(repr, cols))}. Impute or leave those subjects out."
            )
        values = block.to_numpy()
        mean = np.array([self.mean[f] for f in self.features])
        scale = np.array([self.scale[f] for f in self.features])
        coef = np.array([self.coefficients[f] for f in self.features])
        return pd.Series(((values - mean) / scale) @ coef, index=X.index, name="rrs")

    def group(self, scores) -> pd.Series:
        """``"high"`` where the score exceeds the cut-off, else ``"low"``."""
        if self.cutoff is None:
            raise InputError(
                "this RRS model has no cut-off yet; choose one with choose_cutoff and set it "
                "with RRSModel.with_cutoff."
            )
        s = pd.Series(scores, dtype=float) if not isinstance(scores, pd.Series) else scores
        if s.isna().any():
            raise InputError(f"RRS missing for subjects {some(s.index[s.isna()], quote=False)}")
        return pd.Series(
            np.where(s.to_numpy(dtype=float) > self.cutoff, "high", "low"),
            index=s.index,
            name="rrs_group",
        )

    def with_cutoff(self, cutoff: float, method: str, p_value: float | None = None) -> RRSModel:
        """A copy with the cut-off set (and its permutation p-value, where computed)."""
        return replace(
            self,
            cutoff=float(cutoff),
            cutoff_method=str(method),
            cutoff_p_value=None if p_value is None else float(p_value),
        )

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (plain floats, lists and dicts)."""
        out = asdict(self)
        for key in ("mean", "scale", "coefficients"):
            out[key] = {str(k): float(v) for k, v in out[key].items()}
        out["features"] = [str(f) for f in self.features]
        out["alpha"] = float(self.alpha)
        out["l1_ratio"] = float(self.l1_ratio)
        out["cutoff"] = None if self.cutoff is None else float(self.cutoff)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> RRSModel:
        """Rebuild a model written by ``to_dict``."""
        needed = ("features", "mean", "scale", "coefficients", "alpha", "l1_ratio")
        missing = [k for k in needed if k not in data]
        if missing:
            raise InputError(
                f"RRS model file lacks key(s) {', '.join(missing)}; refit the model (rule "
                "rrs_fit) rather than editing the file."
            )
        features = list(data["features"])
        for key in ("mean", "scale", "coefficients"):
            absent = [f for f in features if f not in data[key]]
            if absent:
                raise InputError(
                    f"RRS model file: {key!r} lacks feature(s) {', '.join(absent)}; refit the "
                    "model."
                )
        cutoff = data.get("cutoff")
        return cls(
            features=features,
            mean={f: float(data["mean"][f]) for f in features},
            scale={f: float(data["scale"][f]) for f in features},
            coefficients={f: float(data["coefficients"][f]) for f in features},
            alpha=float(data["alpha"]),
            l1_ratio=float(data["l1_ratio"]),
            cutoff=None if cutoff is None else float(cutoff),
            cutoff_method=str(data.get("cutoff_method", "none")),
            notes=list(data.get("notes", [])),
            cutoff_p_value=data.get("cutoff_p_value"),
        )


def fit_rrs(
    X: pd.DataFrame,
    time,
    event,
    *,
    l1_ratio: float = 1.0,
    folds: int = 5,
    n_alphas: int = 100,
    alpha_min_ratio: float = 0.01,
    rule: str = "1se",
    when_empty: str = "empty",
    screen: Callable[[np.ndarray], Sequence[str]] | None = None,
    seed: int,
) -> tuple[RRSModel, pd.DataFrame]:
    """Fit the RRS: an elastic-net Cox model with the penalty chosen by cross-validation.

    Features are standardised with the training mean and standard deviation (``ddof=0``), so
    coefficients are per standard deviation. The penalty path (``n_alphas`` values from the
    smallest alpha that keeps every coefficient at zero down to ``alpha_min_ratio`` times it;
    glmnet may stop the path early once the fit stops improving) is fitted on all subjects and,
    with the same alphas, on each of ``folds`` training splits (``StratifiedKFold`` on the
    event, shuffled with a seed derived from ``seed``).

    The cross-validated deviance is glmnet's *grouped* one (Verweij and van Houwelingen, Stat
    Med 1994): for fold k with coefficients b_-k fitted without it, ``D_full(b_-k) -
    D_-k(b_-k)``, where ``D = 2 (l_saturated - l)`` is the Breslow partial-likelihood
    deviance on all subjects or on those outside the fold. Per fold it is divided by the
    fold's events; ``mean_deviance`` is the event-weighted mean over folds and ``se`` the
    event-weighted standard deviation over ``sqrt(folds - 1)``, exactly as ``cv.glmnet``.
    Unlike glmnet, each fold reuses the full training standardisation. Where a fold's path
    stops early, its last coefficients carry on to the smaller alphas.

    ``alpha_min`` minimises ``mean_deviance``; ``alpha_1se`` is the largest alpha whose mean
    deviance is within one ``se`` of that minimum. ``rule`` picks one. If the chosen alpha
    keeps no feature, the cross-validation says that no feature earns its place: the RRS is
    empty (no features, the reason in ``RRSModel.notes``), unless ``when_empty`` is
    ``"largest_nonzero"``, which uses the largest alpha that keeps one (with a warning).

    Parameters
    ----------
    X : pandas.DataFrame
        Training subjects x candidate features (finite numbers, none constant).
    time, event : array-like
        Follow-up (months) and event (0/1), aligned with ``X`` (Series are aligned by index).
    l1_ratio : float
        Elastic-net mixing in (0, 1]: 1 is the lasso.
    folds : int
        Number of cross-validation folds (2 to the number of events).
    n_alphas, alpha_min_ratio : int, float
        The penalty path.
    rule : {"1se", "min"}
        Which cross-validated alpha the model uses.
    when_empty : {"empty", "largest_nonzero"}
        What a chosen alpha that keeps no feature gives: an empty RRS, or the largest alpha
        that keeps one (a documented fallback, not the cross-validation's choice).
    screen : callable, optional
        The candidate screen: given the positions of the training rows to screen on, the
        names of the columns of ``X`` that enter the model. It is run on every fold's
        training rows as well as on all rows, so that the cross-validated deviance judges the
        whole procedure, the screen included (a screen run once outside the folds has seen
        the held-out subjects). None: every column of ``X`` is a candidate.
    seed : int
        Seeds the fold split.

    Returns
    -------
    model : RRSModel
        Without a cut-off (see ``choose_cutoff``).
    cv : pandas.DataFrame
        One row per alpha (descending): ``alpha``, ``mean_deviance``, ``se``, ``n_nonzero``,
        ``is_min``, ``is_1se``, ``chosen``.
    """
    from sklearn.model_selection import KFold, StratifiedKFold
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if when_empty not in WHEN_EMPTY:
        raise ValueError(f"when_empty must be one of {', '.join(WHEN_EMPTY)}, got {when_empty!r}")
    if not 0 < l1_ratio <= 1:
        raise ValueError(f"l1_ratio must lie in (0, 1], got {l1_ratio}")
    values = _feature_matrix(X, where="RRS training features")
    t, e = _survival(time, event, X.index, where="RRS training cohort")
    n_events = int(e.sum())
    if folds < 2 or folds > n_events:
        raise InputError(
            f"folds = {folds} but the training cohort has {n_events} events; use between 2 and "
            "the number of events."
        )
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    names = [str(c) for c in X.columns]

    def columns_of(rows: np.ndarray) -> np.ndarray:
        if screen is None:
            return np.arange(len(names))
        return np.array([names.index(str(c)) for c in screen(rows)], dtype=int)

    candidates = columns_of(np.arange(len(t)))
    if len(candidates) == 0:
        raise InputError("the candidate screen keeps no feature of the training cohort.")
    constant = [names[j] for j in candidates if scale[j] == 0]
    if constant:
        raise InputError(
            f"feature(s) {', '.join(map(repr, constant))} are constant in the training cohort; "
            "drop them from the RRS candidates."
        )
    z = (values - mean) / np.where(scale == 0, 1.0, scale)
    y = Surv.from_arrays(event=e, time=t)

    def coxnet(alphas=None):
        return CoxnetSurvivalAnalysis(
            l1_ratio=l1_ratio,
            n_alphas=n_alphas,
            alpha_min_ratio=alpha_min_ratio,
            alphas=alphas,
        )

    try:
        full = coxnet().fit(z[:, candidates], y)
    except ArithmeticError as exc:
        raise InputError(
            f"the Coxnet path failed ({exc}); raise alpha_min_ratio (now {alpha_min_ratio})."
        ) from exc
    alphas = full.alphas_
    coef = full.coef_

    random_state = int(np.random.default_rng([seed, 0x525253]).integers(2**31 - 1))
    n_censored = len(e) - n_events
    splitter = (
        StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
        if n_censored >= folds
        else KFold(n_splits=folds, shuffle=True, random_state=random_state)
    )
    dev_sat_full = _saturated_loglik(t, e)
    cvraw = np.empty((folds, len(alphas)))
    fold_events = np.empty(folds)
    fold_candidates = []
    for k, (train, held) in enumerate(splitter.split(z, e.astype(int))):
        chosen_here = columns_of(train)
        fold_candidates.append(len(chosen_here))
        if len(chosen_here) == 0:  # the fold's screen keeps nothing: its model is no score
            eta = np.zeros((len(t), len(alphas)))
        else:
            try:
                with warnings.catch_warnings():  # a fold of noise may keep nothing: a result
                    warnings.filterwarnings("ignore", message="all coefficients are zero")
                    fit = coxnet(alphas).fit(z[train][:, chosen_here], y[train])
            except ArithmeticError as exc:
                raise InputError(
                    f"a cross-validation fit failed ({exc}); raise alpha_min_ratio (now "
                    f"{alpha_min_ratio}) or use fewer folds."
                ) from exc
            b = fit.coef_
            if b.shape[1] < len(alphas):  # the fold's path stopped early: carry its last on
                b = np.hstack([b, np.repeat(b[:, -1:], len(alphas) - b.shape[1], axis=1)])
            eta = z[:, chosen_here] @ b
        dev_full = 2.0 * (dev_sat_full - _cox_loglik(eta, t, e))
        dev_train = 2.0 * (
            _saturated_loglik(t[train], e[train]) - _cox_loglik(eta[train], t[train], e[train])
        )
        fold_events[k] = e[held].sum()
        cvraw[k] = (dev_full - dev_train) / fold_events[k]
    w = fold_events / fold_events.sum()
    cvm = w @ cvraw
    cvsd = np.sqrt((w @ (cvraw - cvm) ** 2) / (folds - 1))

    nonzero = (np.abs(coef) > 0).sum(axis=0)
    i_min = int(np.argmin(cvm))
    i_1se = int(np.flatnonzero(cvm <= cvm[i_min] + cvsd[i_min])[0])
    chosen = i_1se if rule == "1se" else i_min
    notes = []
    if nonzero[chosen] == 0 and when_empty == "largest_nonzero" and (nonzero > 0).any():
        fallback = int(np.flatnonzero(nonzero > 0)[0])
        note = (
            f"the {rule} alpha ({alphas[chosen]:.4g}) keeps no feature; using the largest alpha "
            f"that keeps one ({alphas[fallback]:.4g}, {nonzero[fallback]} feature(s)) as "
            "survival.rrs.when_empty asks: its features are not the cross-validation's choice"
        )
        log.warning(note)
        notes.append(note)
        chosen = fallback
    elif nonzero[chosen] == 0:
        notes.append(
            f"empty RRS: the cross-validated penalty ({rule}, alpha {alphas[chosen]:.4g}) keeps "
            "no feature, so no imaging feature improves on no score at all in this training "
            "cohort; the comparison is the clinical model alone (survival.rrs.when_empty: "
            "largest_nonzero forces one)"
        )
        log.warning(notes[-1])

    cv = pd.DataFrame(
        {
            "alpha": alphas,
            "mean_deviance": cvm,
            "se": cvsd,
            "n_nonzero": nonzero,
            "is_min": np.arange(len(alphas)) == i_min,
            "is_1se": np.arange(len(alphas)) == i_1se,
            "chosen": np.arange(len(alphas)) == chosen,
        }
    )
    if screen is not None:
        log.info("RRS cross-validation: the screen kept %s candidates in the folds (%d on all "
                 "training subjects)", fold_candidates, len(candidates))  # fmt: skip
    keep = np.flatnonzero(coef[:, chosen] != 0)
    columns = candidates[keep]
    features = [names[j] for j in columns]
    model = RRSModel(
        features=features,
        mean={f: float(mean[j]) for f, j in zip(features, columns, strict=True)},
        scale={f: float(scale[j]) for f, j in zip(features, columns, strict=True)},
        coefficients={f: float(coef[j, chosen]) for f, j in zip(features, keep, strict=True)},
        alpha=float(alphas[chosen]),
        l1_ratio=float(l1_ratio),
        notes=notes,
    )
    log.info(
        "RRS: alpha %.4g (%s), %d of %d features: %s",
        model.alpha,
        rule,
        len(features),
        len(candidates),
        ", ".join(f"{f} {c:+.3f}" for f, c in model.coefficients.items()),
    )
    return model, cv


def rrs_chain(
    clinical: list[str],
    features: list[str],
    *,
    high_risk: str,
    fdr: float,
    max_features: int,
    seed: int,
    **options,
):
    """The whole clinical + RRS procedure as one function, for the optimism bootstrap.

    ``fit(X, time, event)`` screens ``features`` for the high-risk subtype (the boolean column
    ``high_risk`` of ``X``), fits the cross-validated Coxnet RRS on the candidates (the screen
    repeated inside every fold) and then the
    Cox model of the ``clinical`` columns plus the RRS (as rms ``validate`` refits it); it
    returns the linear predictor of any rows of ``X``. A resample whose screen or penalty
    keeps no feature gives the clinical model with an RRS of 0, as the workflow would.
    ``options`` go to :func:`fit_rrs`.
    """
    from rdls.survival.optimism import refit_cox

    def fit(X: pd.DataFrame, time, event):
        X = X.reset_index(drop=True)  # a bootstrap resample repeats subjects
        t, e = np.asarray(time, float), np.asarray(event).astype(int)
        with warnings.catch_warnings(), _quiet_log():
            warnings.simplefilter("ignore")
            screen = candidate_screen(X[features], X[high_risk].astype(bool), fdr=fdr,
                                      max_features=max_features)  # fmt: skip
            model = RRSModel.without_features("no candidate")
            if screen(np.arange(len(X))):
                model, _ = fit_rrs(X[features], t, e, seed=seed, screen=screen, **options)

        def score(rows: pd.DataFrame) -> pd.Series:
            if model.empty:
                return pd.Series(0.0, index=rows.index)
            return model.score(rows)

        columns = clinical if model.empty else [*clinical, "rrs"]
        cox = refit_cox(columns)(X.assign(rrs=score(X)), t, e)
        return lambda rows: cox(rows.assign(rrs=score(rows)))

    return fit


def selection_frequency(
    X: pd.DataFrame, time, event, *, repeats: int, seed: int, **options
) -> pd.DataFrame:
    """How often each feature is kept over ``repeats`` cross-validation splits.

    ``fit_rrs`` is repeated with fold splits seeded ``[seed, r]``; a feature kept in most
    repeats is a stable choice, one kept in a few is a coin toss between near-equal penalties.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``selected`` (repeats that kept it), ``frequency``; plus a row
        ``feature = "(none)"`` counting the repeats whose RRS was empty. Sorted by frequency.
    """
    screen = options.get("screen")
    names = screen(np.arange(len(X))) if screen is not None else X.columns
    kept = dict.fromkeys(map(str, names), 0)
    empty = 0
    for r in range(repeats):
        with warnings.catch_warnings(), _quiet_log():
            warnings.simplefilter("ignore")
            split_seed = int(np.random.default_rng([seed, r]).integers(2**31))
            model, _ = fit_rrs(X, time, event, seed=split_seed, **options)
        empty += model.empty
        for feature in model.features:
            kept[feature] += 1
    table = pd.DataFrame({"feature": [*kept, "(none)"], "selected": [*kept.values(), empty]})
    table["frequency"] = table["selected"] / max(repeats, 1)
    return table.sort_values("selected", ascending=False, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# The cut-off


def choose_cutoff(
    scores, time, event, *, method: str = "maxstat", min_group_fraction: float = 0.2
) -> tuple[float, pd.DataFrame]:
    """The RRS value that splits subjects into low (``<= cutoff``) and high risk.

    ``"median"`` takes the median score. ``"maxstat"`` scans every observed score as a cut
    point that leaves at least ``min_group_fraction`` of the subjects in each group and takes
    the one with the largest standardised log-rank statistic (Lausen and Schumacher 1992; R's
    ``maxstat.test(smethod = "LogRank")``): with log-rank scores ``a_i = event_i - H(t_i)``
    (``H`` the Nelson-Aalen cumulative hazard), ``|S - E(S)| / sqrt(V(S))`` for ``S`` the
    sum of ``a`` in the low group and E, V its permutation mean and variance. The maximum is
    optimistic; :func:`cutoff_permutation_p` gives its p-value.

    Returns
    -------
    cutoff : float
    scan : pandas.DataFrame
        ``cutoff``, ``statistic``, ``low_n``, ``high_n`` for every admissible cut point (one
        row for ``"median"``).
    """
    if method not in CUTOFF_METHODS:
        raise ValueError(f"method must be one of {', '.join(CUTOFF_METHODS)}, got {method!r}")
    if not 0 < min_group_fraction <= 0.5:
        raise ValueError(f"min_group_fraction must lie in (0, 0.5], got {min_group_fraction}")
    s = pd.Series(scores)
    if s.isna().any() or not np.isfinite(s.to_numpy(dtype=float)).all():
        raise InputError(
            f"RRS missing or non-finite for subjects {some(s.index[s.isna()], quote=False)}"
        )
    t, e = _survival(time, event, s.index, where="cut-off cohort")
    x = s.to_numpy(dtype=float)
    n = len(x)
    a = e - nelson_aalen_at(t, e)
    ss = ((a - a.mean()) ** 2).sum()
    if ss == 0:
        raise InputError("the cut-off cohort has no usable events; a log-rank cut needs some.")

    def statistic(low_count: np.ndarray, low_sum: np.ndarray) -> np.ndarray:
        m = low_count.astype(float)
        var = m * (n - m) / (n * (n - 1)) * ss
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs(low_sum - m * a.mean()) / np.sqrt(var)

    if method == "median":
        cutoff = float(np.median(x))
        low = x <= cutoff
        stat = statistic(np.array([low.sum()]), np.array([a[low].sum()]))
        scan = pd.DataFrame(
            {"cutoff": [cutoff], "statistic": stat, "low_n": [int(low.sum())]}
        ).assign(high_n=lambda d: n - d["low_n"])
        return cutoff, scan

    order = np.argsort(x, kind="mergesort")
    xs, cum = x[order], np.cumsum(a[order])
    last = np.r_[xs[1:] != xs[:-1], True]  # last position of each distinct value
    low_n = np.flatnonzero(last) + 1
    minimum = math.ceil(min_group_fraction * n - 1e-9)
    ok = (low_n >= minimum) & (n - low_n >= minimum)
    if not ok.any():
        raise InputError(
            f"no cut point leaves {min_group_fraction:.0%} of the {n} subjects in each group "
            "(too many tied scores); lower min_group_fraction or use method 'median'."
        )
    idx = np.flatnonzero(last)[ok]
    scan = pd.DataFrame(
        {
            "cutoff": xs[idx],
            "statistic": statistic(low_n[ok], cum[idx]),
            "low_n": low_n[ok],
            "high_n": n - low_n[ok],
        }
    )
    best = int(scan["statistic"].to_numpy().argmax())
    return float(scan["cutoff"].iloc[best]), scan


def cutoff_permutation_p(
    scores,
    time,
    event,
    *,
    min_group_fraction: float = 0.2,
    n_permutations: int = 1000,
    seed: int,
) -> float:
    """Permutation p-value of the maximally selected log-rank statistic.

    The largest statistic over all admissible cut points is compared with its distribution
    when the outcomes are shuffled across the scores (each shuffle scans every cut point
    again), so that the search for the best cut is part of the null: ``(1 + #{max* >= max}) /
    (1 + n_permutations)``. The uncorrected log-rank p of the chosen cut is far smaller
    (Altman et al., JNCI 1994).
    """
    _, scan = choose_cutoff(scores, time, event, method="maxstat",
                            min_group_fraction=min_group_fraction)  # fmt: skip
    observed = float(scan["statistic"].max())
    s = pd.Series(scores)
    t, e = _survival(time, event, s.index, where="cut-off cohort")
    x = s.to_numpy(dtype=float)
    n = len(x)
    a = e - nelson_aalen_at(t, e)
    ss = ((a - a.mean()) ** 2).sum()
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    last = np.r_[xs[1:] != xs[:-1], True]
    low_n = np.flatnonzero(last) + 1
    minimum = math.ceil(min_group_fraction * n - 1e-9)
    ok = (low_n >= minimum) & (n - low_n >= minimum)
    idx, m = np.flatnonzero(last)[ok], low_n[ok].astype(float)
    sd = np.sqrt(m * (n - m) / (n * (n - 1)) * ss)
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, n_permutations, 256):
        size = min(256, n_permutations - start)
        shuffled = rng.permuted(np.broadcast_to(a, (size, n)), axis=1)
        cum = np.cumsum(shuffled, axis=1)[:, idx]
        maxima = (np.abs(cum - m * a.mean()) / sd).max(axis=1)
        exceed += int((maxima >= observed - 1e-12).sum())
    return (1 + exceed) / (1 + n_permutations)


# ---------------------------------------------------------------------------------------------
# Helpers


def _cox_loglik(eta: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Breslow log partial likelihood of each column of ``eta`` (subjects x fits)."""
    eta = np.asarray(eta, dtype=float)
    single = eta.ndim == 1
    if single:
        eta = eta[:, None]
    order = np.argsort(time, kind="mergesort")
    ts, es, eta = time[order], event[order].astype(bool), eta[order]
    shift = eta.max(axis=0)
    risk = np.exp(eta - shift)
    at_risk = np.cumsum(risk[::-1], axis=0)[::-1]  # sum over t_j >= t_(i) within sorted order
    first = np.searchsorted(ts, ts, side="left")  # ties share the whole tied risk set
    log_denominator = np.log(at_risk[first[es]]) + shift
    out = (eta[es] - log_denominator).sum(axis=0)
    return out[0] if single else out


def _saturated_loglik(time: np.ndarray, event: np.ndarray) -> float:
    """glmnet's saturated Cox log-likelihood: ``-sum d_k log d_k`` over tied event times."""
    _, d = np.unique(time[event.astype(bool)], return_counts=True)
    return float(-(d * np.log(d)).sum())


def _feature_matrix(X: pd.DataFrame, *, where: str) -> np.ndarray:
    if not isinstance(X, pd.DataFrame) or X.shape[1] == 0 or X.shape[0] == 0:
        raise InputError(f"{where}: expected a non-empty table of subjects x features.")
    numeric = [pd.api.types.is_numeric_dtype(dtype) for dtype in X.dtypes]
    non_numeric = [c for c, ok in zip(X.columns, numeric, strict=True) if not ok]
    if non_numeric:
        raise InputError(
            f"{where}: column(s) {some(non_numeric)} are not numeric; encode or drop them."
        )
    values = X.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        subjects = some(X.index[bad.any(1)], quote=False)
        raise InputError(
            f"{where}: missing or non-finite values for subjects {subjects} "
            f"in column(s) {some(X.columns[bad.any(0)])}. Impute them or leave those subjects "
            "out."
        )
    return values


def _aligned(values, index: pd.Index, *, name: str) -> pd.Series:
    if isinstance(values, pd.Series):
        if values.index.equals(index):
            return values
        missing = index.difference(values.index)
        if len(missing):
            raise InputError(
                f"{name} lacks subjects {some(missing, quote=False)}; align it with X."
            )
        return values.loc[index]
    arr = np.asarray(values)
    if arr.shape != (len(index),):
        raise InputError(f"{name} has {arr.size} values for {len(index)} subjects.")
    return pd.Series(arr, index=index)


def _survival(time, event, index: pd.Index, *, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Float times and boolean events aligned with ``index``, checked."""
    t = _aligned(time, index, name=f"{where}: time")
    e = _aligned(event, index, name=f"{where}: event")
    t = pd.to_numeric(t, errors="coerce").astype(float)
    e_num = pd.to_numeric(e.astype(float) if e.dtype == bool else e, errors="coerce")
    bad = t.isna() | ~np.isfinite(t) | e_num.isna()
    if bad.any():
        subjects = some(index[bad], quote=False)
        raise InputError(
            f"{where}: follow-up time or event missing for subjects {subjects}; "
            "complete rfs_months and rfs_event or leave those subjects out."
        )
    if (t < 0).any():
        raise InputError(
            f"{where}: negative follow-up time for subjects {some(index[t < 0], quote=False)}."
        )
    if not e_num.isin([0, 1]).all():
        odd = index[~e_num.isin([0, 1])]
        raise InputError(
            f"{where}: event must be 0 or 1; subjects {some(odd, quote=False)} have other values."
        )
    e_arr = e_num.to_numpy(dtype=float).astype(bool)
    if not e_arr.any():
        raise InputError(f"{where}: no events; survival models need at least one.")
    return t.to_numpy(), e_arr
