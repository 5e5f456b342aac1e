"""Multiple imputation of missing covariates by chained equations, pooled by Rubin's rules.

Each covariate with missing values is imputed in turn from the others by predictive mean
matching (statsmodels' ``MICEData``: a linear model with its coefficients drawn from their
sampling distribution, and an observed value taken from the nearest predicted donors), so an
imputed value is always one that was observed: a T stage stays a T stage. Categorical
covariates enter as their level's position in the design (ordinal stages are ordered; a
binary covariate has two), as in mice's ``pmm`` for ordered factors. The outcome enters the
imputation models as the event indicator and the Nelson-Aalen cumulative hazard at the
subject's time (White & Royston, Stat Med 2009): leaving it out biases the hazard ratios
towards 1. The Cox models fitted to the ``m`` completed data sets are pooled by Rubin's rules
with Barnard & Rubin's (1999) degrees of freedom, as R's ``mice::pool``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from rdls.errors import InputError
from rdls.survival.km import nelson_aalen_at

#: Donors a predictive-mean match draws from (mice's default).
DONORS = 5


def impute_chained(
    frame: pd.DataFrame,
    *,
    covariates: Sequence[str],
    levels: dict[str, Sequence[str]],
    time: str,
    event: str,
    m: int,
    seed: int,
    iterations: int = 10,
) -> list[pd.DataFrame]:
    """``m`` completed copies of ``frame``, its missing ``covariates`` imputed.

    Parameters
    ----------
    levels : dict
        The levels of each categorical covariate, in their order (the design's); a value
        outside them is refused.
    iterations : int
        Cycles through the covariates in each imputation's own chain (mice's ``maxit``: 5;
        10 leaves room for the chain to settle).

    Raises
    ------
    rdls.errors.InputError
        A covariate has no observed value, or a categorical value is not among its levels.
    """
    from statsmodels.imputation.mice import MICEData

    if m < 2:
        raise InputError(f"multiple imputation needs at least 2 imputations, not {m}.")
    coded = pd.DataFrame(index=frame.index)
    for number, column in enumerate(covariates):
        values = frame[column]
        if values.notna().sum() == 0:
            raise InputError(
                f"multiple imputation: covariate {column!r} has no observed value in this "
                "cohort; leave it out of clinical: covariates."
            )
        if column in levels:
            order = [str(level) for level in levels[column]]
            text = values.map(lambda v: v if pd.isna(v) else str(v))
            unknown = sorted(set(text.dropna()) - set(order))
            if unknown:
                raise InputError(
                    f"multiple imputation: covariate {column!r} has value(s) {unknown} "
                    f"outside its levels {order}."
                )
            values = text.map({level: float(i) for i, level in enumerate(order)})
        coded[f"v{number}"] = pd.to_numeric(values, errors="raise").astype(float)
    coded["event"] = frame[event].astype(float)
    coded["hazard"] = nelson_aalen_at(frame[time].to_numpy(float), frame[event].to_numpy(float))
    if not coded.isna().any().any():
        return [frame.copy() for _ in range(m)]
    completed = []
    for draw in range(m):
        chain = MICEData(coded.reset_index(drop=True), k_pmm=DONORS, rng=seed + draw)
        chain.update_all(iterations)
        filled = frame.copy()
        for number, column in enumerate(covariates):
            values = chain.data[f"v{number}"].to_numpy()
            if column in levels:
                order = [str(level) for level in levels[column]]
                values = [order[round(v)] for v in values]
            filled[column] = pd.Series(values, index=frame.index).astype(
                object if column in levels else float
            )
        completed.append(filled)
    return completed


def pool_rubin(
    coefs: np.ndarray, variances: np.ndarray, *, complete_df: float, level: float = 0.95
) -> pd.DataFrame:
    """Rubin's rules for ``m`` fits (rows) of the same terms (columns).

    Returns one row per term: the pooled ``coef``, its total-variance ``se``, the ``df`` of
    Barnard & Rubin (1999) given the complete-data ``complete_df``, the t interval of the
    coefficient, the p-value of it being 0, and the fraction of missing information ``fmi``
    (mice's ``lambda``: the share of the variance that is between imputations).
    """
    coefs, variances = np.atleast_2d(coefs), np.atleast_2d(variances)
    m = len(coefs)
    if m < 2:
        raise InputError("Rubin's rules need the fits of at least 2 imputations.")
    estimate = coefs.mean(axis=0)
    within = variances.mean(axis=0)
    between = coefs.var(axis=0, ddof=1)
    total = within + (1 + 1 / m) * between
    share = np.where(total > 0, (1 + 1 / m) * between / total, 0.0)
    with np.errstate(divide="ignore"):
        old = (m - 1) / np.maximum(share, 1e-300) ** 2
        observed = (complete_df + 1) / (complete_df + 3) * complete_df * (1 - share)
        df = 1 / (1 / old + 1 / observed)
    se = np.sqrt(total)
    quantile = stats.t.ppf((1 + level) / 2, df)
    return pd.DataFrame(
        {
            "coef": estimate,
            "se": se,
            "df": df,
            "ci_lower": estimate - quantile * se,
            "ci_upper": estimate + quantile * se,
            "p_value": 2 * stats.t.sf(np.abs(estimate) / se, df),
            "fmi": share,
        }
    )
