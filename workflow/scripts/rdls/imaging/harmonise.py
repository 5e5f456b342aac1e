"""Centre (scanner) harmonisation of imaging features: ComBat locked on the training cohort.

ComBat (Johnson et al., Biostatistics 2007) models feature ``j`` of a subject at centre ``c``
as the reference's mean and spread plus the centre's additive (``gamma``) and multiplicative
(``delta``) shift, shrunk by empirical Bayes across features. With a reference centre (the
"reference batch" of Zhang et al., BMC Bioinformatics 2018; inmoose's ``ref_batch``), the
standardisation uses the reference centre's mean and variance only, so each other centre's
``gamma*`` and ``delta*`` depend on nothing but the reference's subjects and that centre's
own: harmonising a centre is the per-feature affine map

    z = (x - grand_mean) / sqrt(var_pooled)
    h = grand_mean + sqrt(var_pooled) * (z - gamma*) / sqrt(delta*)

and the reference centre's map is the identity.

:func:`fit_combat` fits the model on the training cohort's subjects only and
:class:`ComBatModel` saves it (grand mean, pooled variance, each centre's ``gamma*`` and
``delta*``); every other subject is mapped with the saved parameters, one subject at a time at
a training centre, so adding a validation subject changes nobody else's features. A centre the
training cohort did not have is estimated from its own subjects' features only
(:func:`estimate_centre`): the training model stays fixed, the centre's location and scale are
shrunk with ComBat's own empirical Bayes (whose priors are per centre, across features), and
no outcome is used. Because of the reference standardisation this is exactly what ComBat
would have given that centre had it been fitted together with the training cohort (the unit
tests check it against inmoose to 1e-12). A centre with fewer than
``min_subjects_per_centre`` subjects is refused, or left unharmonised when the config says so.

The estimation follows inmoose's ``pycombat_norm`` (parametric priors, its iteration and
stopping rule) so that the saved model reproduces inmoose's output on the training cohort;
:func:`fit_combat` checks it on every run.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

log = logging.getLogger(__name__)

# ComBat estimates a centre's mean and variance; with fewer training subjects it cannot.
MIN_SUBJECTS_PER_CENTRE = 2
UNSEEN_CENTRE = ("error", "unharmonised")
TRAINING = "training"
# The subjects sheet's cohorts (its schema's enum), in the order tables list them.
COHORT_ORDER = (TRAINING, "internal_validation", "external_validation", "biological")
FORMAT = "rdls.combat/1"
# How each centre of a saved model is harmonised.
REFERENCE, FITTED, OWN_IMAGES, UNHARMONISED = "reference", "training", "own_images", "unharmonised"
# inmoose's pycombat_norm: relative change at which the empirical-Bayes iteration stops.
CONVERGENCE = 1e-4
MAX_ITERATIONS = 1_000_000
# The saved model must reproduce inmoose on the training cohort to this fraction of each
# feature's spread (float64 rounding is about 1e-15 of it).
INMOOSE_TOLERANCE = 1e-8


@dataclass
class CentreFit:
    """How one centre is harmonised.

    Attributes
    ----------
    source : str
        ``reference`` (identity), ``training`` (fitted on the training cohort),
        ``own_images`` (estimated from the centre's own subjects, the training model fixed)
        or ``unharmonised`` (left as it is; ``reason`` says why).
    subjects : int
        The subjects the estimate rests on (for ``unharmonised``: the centre's subjects).
    gamma, delta : numpy.ndarray or None
        ``gamma*`` and ``delta*`` per harmonised feature (``training`` and ``own_images``).
    iterations : int
        Empirical-Bayes iterations until convergence.
    reason : str
    """

    source: str
    subjects: int
    gamma: np.ndarray | None = None
    delta: np.ndarray | None = None
    iterations: int = 0
    reason: str = ""

    def to_dict(self) -> dict:
        out = {"source": self.source, "subjects": int(self.subjects)}
        if self.gamma is not None:
            out.update(gamma_star=[float(v) for v in self.gamma],
                       delta_star=[float(v) for v in self.delta],
                       iterations=int(self.iterations))  # fmt: skip
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> CentreFit:
        gamma = data.get("gamma_star")
        return cls(
            source=str(data["source"]),
            subjects=int(data["subjects"]),
            gamma=None if gamma is None else np.asarray(gamma, dtype=float),
            delta=None if gamma is None else np.asarray(data["delta_star"], dtype=float),
            iterations=int(data.get("iterations", 0)),
            reason=str(data.get("reason", "")),
        )


@dataclass
class ComBatModel:
    """A family's ComBat model: the training fit and each centre's location and scale.

    Attributes
    ----------
    family : str
    method : str
        ``combat`` or ``none`` (every centre the identity).
    reference : str
        The reference centre (empty for ``none``).
    features : list of str
        Every feature of the family, in the order the tables have them.
    harmonised : list of str
        The features ComBat harmonises (the others, constant within the reference or a
        training centre, are left as they are everywhere).
    grand_mean, var_pooled : numpy.ndarray
        The reference centre's training mean and (population) variance of each harmonised
        feature.
    centres : dict
        Centre -> :class:`CentreFit`.
    notes : list of str
    inmoose_deviation : float
        Largest difference, relative to the feature's spread, between the saved model applied
        to the training cohort and inmoose's ``pycombat_norm`` on it (NaN: not checked).
    """

    family: str
    method: str
    reference: str
    features: list[str]
    harmonised: list[str] = field(default_factory=list)
    grand_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    var_pooled: np.ndarray = field(default_factory=lambda: np.zeros(0))
    centres: dict[str, CentreFit] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    inmoose_deviation: float = float("nan")

    def centres_by_source(self, source: str) -> list[str]:
        return sorted(c for c, fit in self.centres.items() if fit.source == source)

    def affine(self, centre: str) -> tuple[np.ndarray, np.ndarray]:
        """``(slope, intercept)`` of the centre's map over :attr:`features`."""
        slope = np.ones(len(self.features))
        intercept = np.zeros(len(self.features))
        fit = self.centres.get(centre)
        if self.method != "combat" or fit is None or fit.gamma is None:
            return slope, intercept
        columns = [self.features.index(f) for f in self.harmonised]
        b = 1.0 / np.sqrt(fit.delta)
        slope[columns] = b
        intercept[columns] = self.grand_mean * (1.0 - b) - np.sqrt(self.var_pooled) * fit.gamma * b
        return slope, intercept

    def apply(self, features: pd.DataFrame, centre: pd.Series) -> pd.DataFrame:
        """Harmonise subjects with the saved parameters, each one alone.

        Parameters
        ----------
        features : pandas.DataFrame
            Subjects by unharmonised features; must hold every feature in :attr:`features`.
        centre : pandas.Series
            Each subject's centre; every centre must be in :attr:`centres` (add an unseen
            one first with :func:`estimate_centre`) unless the method is ``none``.

        Returns
        -------
        pandas.DataFrame
            Same index, columns :attr:`features`. Subjects at the reference centre, at an
            ``unharmonised`` centre, and features ComBat does not harmonise keep their values
            exactly.
        """
        missing = [f for f in self.features if f not in features.columns]
        if missing:
            raise InputError(
                f"{self.family} features: {len(missing)} feature(s) of the saved harmonisation "
                f"missing from the table: {some(missing)}. Extract the features with the "
                "run's settings (imaging config and radiomics parameter file unchanged)."
            )
        out = features[self.features].astype(float).copy()
        if self.method != "combat" or not self.harmonised:
            return out
        centre = centre.loc[features.index].astype(str)
        unknown = sorted(set(centre) - set(self.centres))
        if unknown:
            raise ValueError(
                f"{self.family}: centre(s) {some(unknown)} have no harmonisation in the model; "
                "estimate them first (estimate_centre)"
            )
        values = out[self.harmonised].to_numpy(dtype=float)
        scale = np.sqrt(self.var_pooled)
        for name in sorted(set(centre)):
            fit = self.centres[name]
            if fit.gamma is None:  # the reference, or left unharmonised: kept exactly
                continue
            rows = (centre == name).to_numpy()
            standardised = (values[rows] - self.grand_mean) / scale
            adjusted = (standardised - fit.gamma) / np.sqrt(fit.delta)
            values[rows] = adjusted * scale + self.grand_mean
        out[self.harmonised] = values
        return out

    def to_dict(self) -> dict:
        import inmoose

        import rdls

        return {
            "format": FORMAT,
            "family": self.family,
            "method": self.method,
            "reference_centre": self.reference,
            "features": list(self.features),
            "harmonised_features": list(self.harmonised),
            "grand_mean": [float(v) for v in self.grand_mean],
            "var_pooled": [float(v) for v in self.var_pooled],
            "centres": {name: fit.to_dict() for name, fit in sorted(self.centres.items())},
            "notes": list(self.notes),
            "inmoose_max_relative_deviation": _json_float(self.inmoose_deviation),
            "versions": {
                "rdls": rdls.__version__,
                "inmoose": inmoose.__version__,
                "numpy": np.__version__,
            },
        }

    @classmethod
    def from_dict(
        cls, data: Mapping, *, source: str | Path = "the harmonisation model"
    ) -> ComBatModel:
        if data.get("format") != FORMAT:
            raise InputError(
                f"{source}: not a saved rdls ComBat model (format {data.get('format')!r}, "
                f"expected {FORMAT!r}); rerun the rule imaging_features to write it."
            )
        deviation = data.get("inmoose_max_relative_deviation")
        return cls(
            family=str(data["family"]),
            method=str(data["method"]),
            reference=str(data["reference_centre"]),
            features=[str(f) for f in data["features"]],
            harmonised=[str(f) for f in data["harmonised_features"]],
            grand_mean=np.asarray(data["grand_mean"], dtype=float),
            var_pooled=np.asarray(data["var_pooled"], dtype=float),
            centres={str(k): CentreFit.from_dict(v) for k, v in data["centres"].items()},
            notes=[str(n) for n in data.get("notes", [])],
            inmoose_deviation=float("nan") if deviation is None else float(deviation),
        )

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # json writes floats with repr: the numbers round-trip exactly.
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ComBatModel:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(
                f"{path}: cannot read the saved harmonisation model ({error}); rerun the rule "
                "imaging_features to write it."
            ) from None
        return cls.from_dict(data, source=path)


def _json_float(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def identity_model(family: str, features: Iterable[str]) -> ComBatModel:
    """The model of ``method: none``: every centre kept as it is."""
    return ComBatModel(family=family, method="none", reference="", features=list(features))


def location_scale(standardised: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """ComBat's empirical-Bayes ``gamma*`` and ``delta*`` of one centre.

    Parameters
    ----------
    standardised : numpy.ndarray
        The centre's subjects x features, standardised with the model's grand mean and pooled
        variance.

    Returns
    -------
    gamma, delta : numpy.ndarray
        Per feature. The priors are the centre's own, across its features (a normal prior on
        ``gamma`` and an inverse-gamma prior on ``delta`` by the method of moments), as in
        ComBat; the iteration and its stopping rule are inmoose's ``it_sol``.
    iterations : int
    """
    s = np.asarray(standardised, dtype=float)
    n = s.shape[0]
    g_hat = s.mean(axis=0)
    d_hat = s.var(axis=0)  # population variance, as inmoose
    g_bar, t2 = g_hat.mean(), g_hat.var()
    m, s2 = d_hat.mean(), d_hat.var()
    if not (s2 > 0 and t2 > 0):
        # Priors need spread across features (one feature, or identical ones): no shrinkage.
        return g_hat, np.where(d_hat > 0, d_hat, 1.0), 0
    a = (2 * s2 + m * m) / s2
    b = (m * s2 + m**3) / s2
    t2_n = t2 * n
    t2_n_g_hat = t2_n * g_hat
    g_old, d_old = g_hat.copy(), d_hat.copy()
    change, count = 1.0, 0
    with np.errstate(divide="ignore", invalid="ignore"):
        while change > CONVERGENCE and count < MAX_ITERATIONS:
            g_new = (t2_n_g_hat + d_old * g_bar) / (t2_n + d_old)
            sum2 = ((s - g_new) ** 2).sum(axis=0)
            d_new = (0.5 * sum2 + b) / (0.5 * n + a - 1)
            # inmoose's relative change (signed denominators, as there), so that the
            # iteration stops where inmoose's does.
            change = max(np.amax(np.abs(g_new - g_old) / g_old),
                         np.amax(np.abs(d_new - d_old) / d_old))  # fmt: skip
            g_old, d_old = g_new, d_new
            count += 1
    return g_new, d_new, count


def fit_combat(
    features: pd.DataFrame,
    centre: pd.Series,
    *,
    reference: str,
    family: str = "features",
    check_inmoose: bool = True,
) -> ComBatModel:
    """Fit ComBat with a reference centre on the training cohort's subjects.

    Parameters
    ----------
    features : pandas.DataFrame
        The training subjects x features, finite values.
    centre : pandas.Series
        Each subject's centre.
    reference : str
        The centre whose values are kept.
    family : str
        For messages and the record.
    check_inmoose : bool
        Compare the saved model applied to these subjects with inmoose's ``pycombat_norm``
        (``ref_batch``) and record the largest difference; a difference above
        :data:`INMOOSE_TOLERANCE` of a feature's spread is a bug and raises.

    Returns
    -------
    ComBatModel
        Centres with fewer than :data:`MIN_SUBJECTS_PER_CENTRE` training subjects are left
        unharmonised (noted), as are features constant within the reference or a fitted
        centre (ComBat would divide by their zero variance).
    """
    centre = centre.loc[features.index].astype(str)
    counts = centre.value_counts()
    if counts.get(reference, 0) < MIN_SUBJECTS_PER_CENTRE:
        raise ValueError(
            f"reference centre {reference!r} has fewer than {MIN_SUBJECTS_PER_CENTRE} training "
            "subjects"
        )
    model = ComBatModel(family=family, method="combat", reference=reference,
                        features=[str(c) for c in features.columns])  # fmt: skip
    small = sorted(c for c in counts.index if counts[c] < MIN_SUBJECTS_PER_CENTRE)
    if small:
        model.notes.append(
            f"training centre(s) {', '.join(small)} have fewer than {MIN_SUBJECTS_PER_CENTRE} "
            "subjects and are left unharmonised"
        )
    for name in small:
        model.centres[name] = CentreFit(
            UNHARMONISED, int(counts[name]),
            reason=f"fewer than {MIN_SUBJECTS_PER_CENTRE} training subjects",
        )  # fmt: skip
    rows = ~centre.isin(small)
    block = features.loc[rows].astype(float)
    fitted = centre[rows]
    if block.empty or fitted.nunique() < 1:
        return model
    spread = block.groupby(fitted).std(ddof=0).min(axis=0)
    usable = [c for c in model.features if spread[c] > 0]
    constant = len(model.features) - len(usable)
    if constant:
        model.notes.append(
            f"{constant} features constant within a training centre are left unharmonised"
        )
    model.harmonised = usable
    at_reference = block.loc[fitted == reference, usable].to_numpy(dtype=float)
    model.grand_mean = at_reference.mean(axis=0)
    model.var_pooled = ((at_reference - model.grand_mean) ** 2).mean(axis=0)
    model.centres[reference] = CentreFit(REFERENCE, int(counts[reference]))
    for name in sorted(set(fitted) - {reference}):
        values = block.loc[fitted == name, usable].to_numpy(dtype=float)
        model.centres[name] = _estimate(model, values, source=FITTED)
    for note in model.notes:
        log.warning("ComBat %s: %s", family, note)
    if check_inmoose and fitted.nunique() >= 2 and usable:
        model.inmoose_deviation = _inmoose_deviation(model, block[usable], fitted)
        log.info("ComBat %s: the saved model reproduces inmoose on the training cohort to "
                 "%.2g of a feature's spread", family, model.inmoose_deviation)  # fmt: skip
        if not model.inmoose_deviation <= INMOOSE_TOLERANCE:
            raise RuntimeError(
                f"ComBat {family}: the saved model differs from inmoose's pycombat_norm on the "
                f"training cohort by {model.inmoose_deviation:.3g} of a feature's spread"
            )
    return model


def _estimate(model: ComBatModel, values: np.ndarray, *, source: str) -> CentreFit:
    standardised = (values - model.grand_mean) / np.sqrt(model.var_pooled)
    gamma, delta, iterations = location_scale(standardised)
    return CentreFit(source, len(values), gamma=gamma, delta=delta, iterations=iterations)


def _inmoose_deviation(model: ComBatModel, block: pd.DataFrame, centre: pd.Series) -> float:
    from inmoose.pycombat import pycombat_norm

    # inmoose divides by the reference's zero location while it iterates; harmless there.
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.asarray(
            pycombat_norm(block.T, centre.to_numpy(), ref_batch=model.reference), dtype=float
        ).T
    harmonised = model.apply(block.reindex(columns=model.features, fill_value=0.0), centre)
    got = harmonised[model.harmonised].to_numpy(dtype=float)
    spread = np.std(expected, axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    return float(np.max(np.abs(got - expected) / spread, initial=0.0))


def estimate_centre(
    model: ComBatModel, features: pd.DataFrame, *, source: str = OWN_IMAGES
) -> CentreFit:
    """A centre the training cohort did not have, from its own subjects' features only.

    The training model (grand mean, pooled variance, reference) stays fixed; the centre's
    ``gamma*`` and ``delta*`` come from its subjects with ComBat's empirical Bayes
    (:func:`location_scale`). No outcome or subtype is used.
    """
    if model.method != "combat" or not model.harmonised:
        return CentreFit(source, len(features))
    values = features[model.harmonised].to_numpy(dtype=float)
    return _estimate(model, values, source=source)


def reference_centre(centre: pd.Series, cohort: pd.Series, *, training: str = TRAINING) -> str:
    """The training cohort's largest centre (ties broken by name), ComBat's default reference."""
    counts = centre[cohort == training].value_counts()
    if counts.empty:
        raise ValueError("no training-cohort subject to choose a reference centre from")
    return sorted(counts.index[counts == counts.max()])[0]


def small_unseen_centres(
    centre: pd.Series, cohort: pd.Series, *, min_subjects: int, training: str = TRAINING
) -> dict[str, tuple[int, str]]:
    """Centres without training subjects and with fewer than ``min_subjects`` subjects.

    Returns ``{centre: (subjects, their cohorts)}``.
    """
    centre = centre.astype(str)
    unseen = centre[~centre.isin(set(centre[cohort == training]))]
    return {
        str(name): (len(members), ", ".join(sorted(set(cohort[members.index]))))
        for name, members in unseen.groupby(unseen)
        if len(members) < min_subjects
    }


def unseen_centre_message(
    small: Mapping[str, tuple[int, str]], *, known_centres: Iterable[str], min_subjects: int,
    where: str, known_as: str = "the training cohort",
    option: str = "imaging.harmonisation.unseen_centre",
) -> str:  # fmt: skip
    """The refusal of centres too small to estimate from their own images: what and the fix.

    ``small`` maps each centre to its number of subjects and who they are (cohorts, IDs).
    """
    lines = [
        f"- centre {name!r} ({members}): {n} subject(s)"
        for name, (n, members) in sorted(small.items())
    ]
    return (
        f"{where}: {len(small)} centre(s) did not occur in {known_as} (centres "
        f"{', '.join(sorted(known_centres))}) and have fewer subjects than "
        f"imaging.harmonisation.min_subjects_per_centre ({min_subjects}), too few to estimate "
        "their scanner shift (ComBat location and scale) from their own images:\n"
        + "\n".join(lines)
        + "\nAdd subjects of that centre, or spell the centre as in the training cohort if it "
        "is one of its centres, or lower imaging.harmonisation.min_subjects_per_centre "
        f"(estimates from fewer subjects are noisier), or set {option}: unharmonised to use "
        "that centre's features unharmonised."
    )


def check_unseen_centres(
    subjects: pd.DataFrame, *, with_mri: Iterable[str], settings: Mapping, source: str
) -> None:
    """Refuse at start centres too small to harmonise from their own images.

    ``settings`` is the config's ``imaging.harmonisation`` block. Counts the subjects with an
    MRI; the run checks again after quality control, which may exclude some.
    """
    if settings.get("method", "combat") != "combat":
        return
    if settings.get("unseen_centre", "error") != "error":
        return
    imaged = subjects[subjects["subject_id"].isin(set(with_mri))]
    minimum = int(settings.get("min_subjects_per_centre", 20))
    small = small_unseen_centres(imaged["centre"], imaged["cohort"], min_subjects=minimum)
    if small:
        training = set(imaged.loc[imaged["cohort"] == TRAINING, "centre"].astype(str))
        raise InputError(
            unseen_centre_message(
                small,
                known_centres=training,
                min_subjects=minimum,
                where=f"{source}, column 'centre'",
            )
        )


def harmonise_cohort(
    features: pd.DataFrame,
    meta: pd.DataFrame,
    *,
    family: str,
    method: str = "combat",
    reference: str | None = None,
    min_subjects_per_centre: int = 20,
    unseen_centre: str = "error",
    training: str = TRAINING,
) -> tuple[pd.DataFrame, ComBatModel]:
    """Fit ComBat on the training cohort, estimate unseen centres, harmonise every subject.

    Parameters
    ----------
    features : pandas.DataFrame
        Every subject x the family's features, unharmonised.
    meta : pandas.DataFrame
        ``cohort`` and ``centre`` of every subject (same index).
    family : str
    method : {"combat", "none"}
    reference : str or None
        A training centre (the config's ``reference_centre``); None picks the training
        cohort's largest.
    min_subjects_per_centre : int
        Fewest subjects from which a centre absent from training is estimated.
    unseen_centre : {"error", "unharmonised"}
        A smaller unseen centre stops the run (error) or keeps its features unharmonised.

    Returns
    -------
    harmonised : pandas.DataFrame
    model : ComBatModel
        The training fit plus every unseen centre's estimate or ``unharmonised`` entry.
    """
    if unseen_centre not in UNSEEN_CENTRE:
        raise ValueError(f"unseen_centre must be one of {UNSEEN_CENTRE}, got {unseen_centre!r}")
    if method == "none":
        return features.astype(float).copy(), identity_model(family, features.columns)
    centre = meta.loc[features.index, "centre"].astype(str)
    cohort = meta.loc[features.index, "cohort"].astype(str)
    is_training = (cohort == training).to_numpy()
    if not is_training.any():
        raise InputError(
            f"{family} features: no training-cohort subject has them, so ComBat cannot be "
            "fitted; the subjects sheet needs training subjects with an MRI."
        )
    reference = reference or reference_centre(centre, cohort, training=training)
    at_reference = int((centre[is_training] == reference).sum())
    if at_reference < MIN_SUBJECTS_PER_CENTRE:
        raise InputError(
            f"imaging.harmonisation.reference_centre: {reference!r} has {at_reference} training "
            f"subject(s) with features; the reference's mean and variance need at least "
            f"{MIN_SUBJECTS_PER_CENTRE} (training centres: "
            f"{', '.join(sorted(set(centre[is_training])))}). Name a larger one, or null for "
            "the largest."
        )
    model = fit_combat(features[is_training], centre[is_training], reference=reference,
                       family=family)  # fmt: skip
    small = small_unseen_centres(centre, cohort, min_subjects=min_subjects_per_centre,
                                 training=training)  # fmt: skip
    if small and unseen_centre == "error":
        raise InputError(
            unseen_centre_message(
                small,
                known_centres=set(centre[is_training]),
                min_subjects=min_subjects_per_centre,
                where=f"{family} features after quality control",
            )
        )
    for name in sorted(set(centre) - set(model.centres)):
        members = features[(centre == name).to_numpy()]
        if name in small:
            model.centres[name] = CentreFit(
                UNHARMONISED, len(members),
                reason=f"not in training and fewer than {min_subjects_per_centre} subjects",
            )  # fmt: skip
            note = (f"centre {name} ({len(members)} subjects, not in training) is left "
                    "unharmonised (imaging.harmonisation.unseen_centre: unharmonised)")  # fmt: skip
            model.notes.append(note)
            log.warning("ComBat %s: %s", family, note)
            continue
        model.centres[name] = estimate_centre(model, members)
        log.info("ComBat %s: centre %s (not in training) estimated from its own %d subjects",
                 family, name, len(members))  # fmt: skip
    return model.apply(features, centre), model


def centre_predictability(features: pd.DataFrame, centre: pd.Series, *, seed: int) -> float:
    """Cross-validated balanced accuracy of predicting the centre from the features.

    Chance is one over the number of centres; harmonisation should bring it towards chance.
    Logistic regression on standardised features, stratified 5-fold cross-validation (fewer
    folds when a centre is small); centres with fewer than 2 subjects are left out. NaN when
    fewer than two centres remain.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    centre = centre.loc[features.index].astype(str)
    counts = centre.value_counts()
    keep = centre.isin(counts.index[counts >= 2])
    if centre[keep].nunique() < 2:
        return float("nan")
    folds = int(min(5, counts[counts >= 2].min()))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    scores = cross_val_score(
        model,
        features.loc[keep].to_numpy(dtype=float),
        centre[keep].to_numpy(),
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        scoring="balanced_accuracy",
    )
    return float(np.mean(scores))
