"""The run's centre harmonisation, locked: one affine map per centre and feature.

ComBat (:func:`rdls.imaging.harmonise.combat`) with a reference centre standardises every
feature on the reference centre's mean and spread, removes each centre's empirical-Bayes
location and scale, and maps back: for centre ``c`` and feature ``j`` the harmonised value is
``intercept[c, j] + slope[c, j] * x`` exactly, with the reference centre's map the identity.
The run does not keep ComBat's estimates, but it keeps every subject's feature before and
after (``results/imaging/features/unharmonised/`` and ``results/imaging/features/``), so the
map of each centre is recovered by least squares on that centre's subjects, and checked to
reproduce them to rounding error. A new subject at a centre is then harmonised exactly as the
run harmonised that centre's own subjects.

Where a centre cannot identify its map (a single subject, or a feature constant within the
centre), ComBat left the values as they were (rdls's ComBat harmonises neither centres with
fewer than 2 subjects nor features constant within a centre), so the map is the identity; a
degenerate centre whose values ComBat did change would contradict that and is reported.
A centre the run never saw has no map: ComBat estimates each centre's shift from that
centre's own subjects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

log = logging.getLogger(__name__)

# A recovered map must reproduce the run's harmonised values to this fraction of the
# feature's spread across the cohort (float64 rounding is about 1e-15 of it).
EXACT_TOLERANCE = 1e-6
UNSEEN_CENTRE = ("error", "reference")
MAP_COLUMNS = ["family", "centre", "feature", "subjects", "slope", "intercept",
               "max_abs_residual", "relative_residual", "kind"]  # fmt: skip


@dataclass
class LockedHarmonisation:
    """Per centre and feature: ``harmonised = intercept + slope * unharmonised``.

    Attributes
    ----------
    family : str
        The feature family (``deep``, ``radiomics``).
    features : list of str
        The features kept by the run (harmonised table's columns), in order.
    slope, intercept : pandas.DataFrame
        Centres x ``features``.
    maps : pandas.DataFrame
        One row per centre and feature (:data:`MAP_COLUMNS`): the recovered map, how many
        subjects it rests on, the largest absolute and relative residual on them, and
        ``kind``: ``fitted``, ``identity`` (ComBat left the values as they were) or
        ``degenerate`` (not identifiable from the centre's subjects; see the module notes).
    method : str
        The run's harmonisation method (``combat`` or ``none``).
    reference : str
        The reference centre (empty when the method is ``none``).
    notes : list of str
    """

    family: str
    features: list[str]
    slope: pd.DataFrame
    intercept: pd.DataFrame
    maps: pd.DataFrame
    method: str = "combat"
    reference: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def centres(self) -> list[str]:
        return list(self.slope.index)

    def apply(
        self, features: pd.DataFrame, centre: pd.Series, *, unseen_centre: str = "error"
    ) -> tuple[pd.DataFrame, pd.Series]:
        """Harmonise new subjects' unharmonised features with the locked maps.

        Parameters
        ----------
        features : pandas.DataFrame
            Subjects (index ``subject_id``) by unharmonised features; must hold every
            feature in :attr:`features` (others are ignored).
        centre : pandas.Series
            Each subject's centre, indexed like ``features``.
        unseen_centre : {"error", "reference"}
            A centre the run did not have: stop, or leave the subject's features as they
            are, as if scanned at the reference centre (noted per subject).

        Returns
        -------
        harmonised : pandas.DataFrame
            Same index, columns :attr:`features`.
        notes : pandas.Series
            Per subject, what was done unusually (empty string otherwise).
        """
        if unseen_centre not in UNSEEN_CENTRE:
            raise ValueError(f"unseen_centre must be one of {UNSEEN_CENTRE}, got {unseen_centre!r}")
        missing = [f for f in self.features if f not in features.columns]
        if missing:
            raise InputError(
                f"{self.family} features: {len(missing)} feature(s) of the run missing from "
                f"the new subjects' table: {some(missing)}. Extract the features with the "
                "run's settings (imaging config and radiomics parameter file unchanged)."
            )
        centre = centre.loc[features.index].astype(str)
        notes = pd.Series("", index=features.index, dtype=object)
        unseen = ~centre.isin(self.centres)
        if unseen.any() and self.method != "none":
            names = sorted(set(centre[unseen]))
            if unseen_centre == "error":
                raise InputError(
                    f"centre(s) {some(names)} (subjects {some(centre.index[unseen])}) did "
                    f"not occur in the cohort whose {self.family} features were harmonised "
                    f"(centres: {', '.join(self.centres)}). ComBat estimates each centre's "
                    "scanner shift from that centre's own subjects, so a new centre has no "
                    "locked harmonisation. Spell the centre as in the subjects sheet if it is "
                    "one of these; otherwise add subjects of that centre to the cohort and "
                    "rerun the workflow, or set predict.unseen_centre: reference to score "
                    "them unharmonised, as if scanned at the reference centre "
                    f"({self.reference})."
                )
            notes[unseen] = (
                f"centre not in the cohort: {self.family} features left unharmonised "
                f"(reference centre {self.reference})"
            )
        values = features[self.features].to_numpy(dtype=float)
        slope = np.ones_like(values)
        intercept = np.zeros_like(values)
        seen = (~unseen).to_numpy()
        if seen.any():
            slope[seen] = self.slope.loc[centre[seen]].to_numpy(dtype=float)
            intercept[seen] = self.intercept.loc[centre[seen]].to_numpy(dtype=float)
        harmonised = pd.DataFrame(
            intercept + slope * values, index=features.index.copy(), columns=self.features
        )
        return harmonised, notes


def recover_harmonisation(
    unharmonised: pd.DataFrame,
    harmonised: pd.DataFrame,
    centre: pd.Series,
    *,
    family: str,
    method: str = "combat",
    reference: str = "",
    tolerance: float = EXACT_TOLERANCE,
) -> LockedHarmonisation:
    """The per-centre affine maps that took the run's features to its harmonised ones.

    Parameters
    ----------
    unharmonised : pandas.DataFrame
        The run's subjects (index ``subject_id``) by every feature, before harmonisation.
    harmonised : pandas.DataFrame
        The same subjects by the kept features, after harmonisation.
    centre : pandas.Series
        Each subject's centre.
    family, method, reference : str
        For messages and the record (``method`` ``none``: every map must be the identity).
    tolerance : float
        Largest residual allowed on the run's subjects, relative to the feature's standard
        deviation across the cohort.

    Raises
    ------
    rdls.errors.InputError
        The tables do not hold the same subjects or features, or a map does not reproduce
        the run's harmonised values (the harmonisation was not affine per centre, or the
        tables come from different runs).
    """
    features = [str(c) for c in harmonised.columns]
    absent = [f for f in features if f not in unharmonised.columns]
    if absent:
        raise InputError(
            f"{family}: harmonised feature(s) {some(absent)} are not in the unharmonised "
            "table; the two tables come from different runs. Rerun imaging_features."
        )
    ids = harmonised.index
    if set(ids) != set(unharmonised.index) or not set(ids) <= set(centre.index):
        raise InputError(
            f"{family}: the harmonised and unharmonised tables (and the subjects' centres) do "
            "not hold the same subjects; they come from different runs. Rerun imaging_features."
        )
    x_all = unharmonised.loc[ids, features].to_numpy(dtype=float)
    h_all = harmonised[features].to_numpy(dtype=float)
    spread = np.nanstd(h_all, axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    centres = centre.loc[ids].astype(str).to_numpy()
    names = sorted(set(centres))
    slope = pd.DataFrame(1.0, index=names, columns=features)
    intercept = pd.DataFrame(0.0, index=names, columns=features)
    rows = []
    worst = (0.0, "", "")
    for name in names:
        member = centres == name
        x, h = x_all[member], h_all[member]
        n = int(member.sum())
        x_mean, h_mean = x.mean(axis=0), h.mean(axis=0)
        dx = x - x_mean
        sxx = (dx**2).sum(axis=0)
        sxy = (dx * (h - h_mean)).sum(axis=0)
        identifiable = sxx > (1e-12 * np.maximum(np.abs(x_mean), 1.0)) ** 2 * n
        b = np.where(identifiable, sxy / np.where(identifiable, sxx, 1.0), 1.0)
        a = np.where(identifiable, h_mean - b * x_mean, (h - x).mean(axis=0))
        residual = np.abs(h - (a + b * x)).max(axis=0)
        relative = residual / spread
        unchanged = np.abs(h - x).max(axis=0) / spread <= tolerance
        kind = np.where(unchanged, "identity", np.where(identifiable, "fitted", "degenerate"))
        b = np.where(unchanged, 1.0, b)
        a = np.where(unchanged, 0.0, a)
        slope.loc[name] = b
        intercept.loc[name] = a
        bad = ~unchanged & (relative > tolerance)
        if bad.any():
            j = int(np.argmax(np.where(bad, relative, -1.0)))
            raise InputError(
                f"{family} harmonisation at centre {name!r} is not an affine map of the "
                f"unharmonised features: feature {features[j]!r} misses by "
                f"{relative[j]:.3g} of its spread ({int(bad.sum())} feature(s) in all). The "
                "locked harmonisation cannot be recovered from these tables; rerun "
                "imaging_features (with harmonisation method combat or none)."
            )
        if relative.max(initial=0.0) > worst[0]:
            j = int(np.argmax(relative))
            worst = (float(relative[j]), name, features[j])
        rows.append(
            pd.DataFrame(
                {
                    "family": family,
                    "centre": name,
                    "feature": features,
                    "subjects": n,
                    "slope": b,
                    "intercept": a,
                    "max_abs_residual": residual,
                    "relative_residual": relative,
                    "kind": kind,
                }
            )
        )
    maps = pd.concat(rows, ignore_index=True)[MAP_COLUMNS]
    notes = []
    degenerate = maps[maps["kind"] == "degenerate"]
    if len(degenerate):
        notes.append(
            f"{len(degenerate)} centre-feature map(s) not identifiable (a single subject or a "
            f"constant feature at the centre) but changed by harmonisation, e.g. centre "
            f"{degenerate['centre'].iloc[0]!r}, feature {degenerate['feature'].iloc[0]!r}; "
            "they reproduce the cohort's values but a new subject's value there is shifted "
            "only"
        )
    if method == "none" and (maps["kind"] != "identity").any():
        raise InputError(
            f"{family}: the run's harmonisation method is 'none' but its harmonised features "
            "differ from the unharmonised ones; the tables come from different runs. Rerun "
            "imaging_features."
        )
    log.info(
        "%s: %d centre(s) x %d feature(s) recovered; largest residual %.2g of a feature's "
        "spread (centre %s, %s)", family, len(names), len(features), *worst,
    )  # fmt: skip
    for note in notes:
        log.warning("%s: %s", family, note)
    return LockedHarmonisation(
        family=family,
        features=features,
        slope=slope,
        intercept=intercept,
        maps=maps,
        method=method,
        reference=reference,
        notes=notes,
    )
