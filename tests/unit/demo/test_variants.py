"""Demo variants: the original stays bit-identical, each variant plants one MRI mechanism."""

import hashlib
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from lifelines import CoxPHFitter
from scipy.stats import chi2_contingency, kruskal
from skimage.measure import marching_cubes, mesh_surface_area

from rdls.config import validate_config
from rdls.demo import (
    CASE_MIX_PROPORTIONS,
    MRI_SIGNALS,
    folder_name,
    generate_mri,
    plan_cohort,
    sheet_frames,
)
from rdls.demo._mri import write_subject_mri
from rdls.demo._mri_variants import SHARED, phenotype
from rdls.demo._plan import HAZARD_COEFFICIENTS, SUBTYPE_PROPORTIONS, SUBTYPES, item_rng
from rdls.errors import InputError
from tests.conftest import REPO

# Reference digests of the original (mixed) demo, computed from the code at commit 6882406
# (before the variants existed) with the same hashing as below: sha256 over the five sheets
# (root "demo"), the subject truth and the hazard coefficients as TSV text; and over every
# image and mask array of the tiny cohort (seed 42) in the mri sheet's order, and the text
# of truth/mri.tsv. The arrays are int16/uint8 voxels read back with SimpleITK.
PLAN_DIGESTS = {
    "tiny": "9194f98afb83b8dd79c74e116094fceb19f741138873ef84c8e2b08909abc43a",
    "default": "3f632ef2d4c10c603b92bad62df1120328a7217e6cca0fb3f01953c8b1b7c520",
}
# The same, since the demo leaves a few clinical values blank (issue 18).
BLANKED_PLAN_DIGESTS = {
    "tiny": "cba9b73124776e4d274f89a15b5ec6a9661ade933cd1e01cc8f2c1e086762050",
    "default": "7031e67f320c5545c475aef687ed0cd600a637cf9f0500c4856f798e40b929d1",
}
TINY_MRI_ARRAYS_DIGEST = "09066fa60bac6ecda88fe066957f33f40839a2f2a1a2c6cbfac9490bebdcfd27"
TINY_MRI_TRUTH_DIGEST = "0473c7ec92fc2a1104b6c65d32047d02737339111defcb7d5f124a3612aaae6d"

SHAPE = (96, 96, 24)
PER_SUBTYPE = 15
VARIANTS = [v for v in MRI_SIGNALS if v != "mixed"]


def _read(path: Path) -> np.ndarray:
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path)))
        return sitk.GetArrayFromImage(reader.Execute())
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.parametrize("scale", ["tiny", "default"])
def test_mixed_plan_is_bit_identical_to_the_original_demo(scale, monkeypatch):
    # The original demo had no blank clinical value: without the blanks (drawn on a stream of
    # their own) every sheet and truth is as it was.
    monkeypatch.setattr("rdls.demo._plan.MISSING_SHARE", {})
    plan = plan_cohort(scale=scale, seed=42)  # mixed, no case mix: the defaults
    assert plan_digest(plan) == PLAN_DIGESTS[scale]


@pytest.mark.parametrize("scale", ["tiny", "default"])
def test_the_blank_values_are_the_only_change_to_the_plan(scale, monkeypatch):
    plan = plan_cohort(scale=scale, seed=42)
    assert plan_digest(plan) == BLANKED_PLAN_DIGESTS[scale]
    monkeypatch.setattr("rdls.demo._plan.MISSING_SHARE", {})
    full = plan_cohort(scale=scale, seed=42).subjects
    blank = plan.subjects.isna()
    assert set(blank.columns[blank.any()]) == {"cea_ng_ml", "n_stage"}
    pd.testing.assert_frame_equal(plan.subjects.where(~blank, full), full)
    assert 0.02 < blank["cea_ng_ml"].mean() < 0.08 and 0 < blank["n_stage"].mean() < 0.06


def plan_digest(plan) -> str:
    digest = hashlib.sha256()
    for frame in sheet_frames(plan, root="demo").values():
        digest.update(frame.to_csv(sep="\t", index=False).encode())
    for frame in (plan.truth_subjects, plan.hazard_coefficients):
        digest.update(frame.to_csv(sep="\t", index=False).encode())
    return digest.hexdigest()


def test_mixed_mri_is_bit_identical_to_the_original_demo(tmp_path):
    plan = plan_cohort(scale="tiny", seed=42, mri_signal="mixed")
    generate_mri(plan, root=tmp_path, threads=2)
    digest = hashlib.sha256()
    for row in plan.mri.itertuples():
        digest.update(_read(tmp_path / row.image).tobytes())
        digest.update(_read(tmp_path / row.mask).tobytes())
    assert digest.hexdigest() == TINY_MRI_ARRAYS_DIGEST
    truth = (tmp_path / "truth" / "mri.tsv").read_bytes()
    assert hashlib.sha256(truth).hexdigest() == TINY_MRI_TRUTH_DIGEST


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_varies_one_mechanism_and_shares_the_others(variant):
    mechanisms = [f.name for f in fields(SHARED)]
    for mechanism in mechanisms:
        drawn = [getattr(phenotype(variant, subtype), mechanism) for subtype in SUBTYPES]
        if mechanism == variant:
            assert len(set(drawn)) == 3  # a distribution of its own per subtype
        else:
            assert drawn == [getattr(SHARED, mechanism)] * 3


def _features(image_path, mask_path):
    """Mask volume, sphericity, and tumour mean and sd on the 1st-99th percentile scale."""
    mask_image = sitk.ReadImage(str(mask_path))
    mask = sitk.GetArrayFromImage(mask_image).astype(bool)
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path))).astype(float)
    low, high = np.percentile(image, [1, 99])
    scaled = (image - low) / (high - low)
    spacing_zyx = mask_image.GetSpacing()[::-1]
    volume = mask.sum() * np.prod(spacing_zyx)
    vertices, faces, _, _ = marching_cubes(np.pad(mask, 1).astype(float), 0.5, spacing=spacing_zyx)
    sphericity = np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / mesh_surface_area(vertices, faces)
    return {
        "volume": volume,
        "sphericity": sphericity,
        "mean": scaled[mask].mean(),
        "sd": scaled[mask].std(),
    }


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Fifteen subjects per subtype for every variant, at centres A and B alternately."""
    folder = tmp_path_factory.mktemp("variants")
    tables = {}
    for variant in VARIANTS:
        rows = []
        for k, subtype in enumerate(SUBTYPES):
            for i in range(PER_SUBTYPE):
                image, mask = folder / "image.nii.gz", folder / "mask.nii.gz"
                truth = write_subject_mri(
                    subtype=subtype,
                    centre="AB"[i % 2],
                    image_path=image,
                    mask_path=mask,
                    shape=SHAPE,
                    rng=item_rng(7, "mri", 100 * k + i),
                    mri_signal=variant,
                )
                rows.append({**truth, **_features(image, mask)})
        tables[variant] = pd.DataFrame(rows)
    return tables


def _kruskal(table, column):
    return kruskal(*[group[column] for _, group in table.groupby("subtype")]).pvalue


def _medians(table, column):
    return table.groupby("subtype")[column].median()


@pytest.mark.parametrize("variant", VARIANTS)
def test_truth_records_the_variant_and_its_planted_parameters(samples, variant):
    table = samples[variant]
    assert (table["mri_signal"] == variant).all()
    for column in ("planted_diameter_mm", "margin_type", "n_spikes", "n_strands",
                   "texture_type", "texture_sd", "core_contrast", "band_depth",
                   "tumour_signal"):  # fmt: skip
        assert table[column].notna().all(), column


def test_size_variant_differs_in_volume_only(samples):
    table = samples["size"]
    planted = _medians(table, "planted_diameter_mm")
    assert planted["RDLS2"] < planted["RDLS3"] < planted["RDLS1"]
    volume = _medians(table, "volume")
    assert volume["RDLS2"] < volume["RDLS3"] < volume["RDLS1"]
    assert _kruskal(table, "volume") < 0.01
    assert _kruskal(table, "tumour_signal") > 0.05


def test_margin_variant_plants_smooth_lobulated_and_spiculated_margins(samples):
    table = samples["margin"]
    types = table.groupby("subtype")["margin_type"].unique().map(list).to_dict()
    assert types == {"RDLS1": ["spiculated"], "RDLS2": ["smooth"], "RDLS3": ["lobulated"]}
    # Strands into the fat only from spiculated margins, and most of those have some.
    strands = table.groupby("subtype")["n_strands"]
    assert strands.max()[["RDLS2", "RDLS3"]].eq(0).all() and strands.min()["RDLS1"] > 0
    sphericity = _medians(table, "sphericity")
    assert sphericity["RDLS2"] > sphericity["RDLS3"] and sphericity["RDLS2"] > sphericity["RDLS1"]
    assert _kruskal(table, "sphericity") < 0.01
    assert _kruskal(table, "planted_diameter_mm") > 0.05


def test_texture_variant_differs_in_heterogeneity_at_the_same_mean(samples):
    table = samples["texture"]
    types = table.groupby("subtype")["texture_type"].unique().map(list).to_dict()
    assert types == {"RDLS1": ["core"], "RDLS2": ["homogeneous"], "RDLS3": ["bands"]}
    sd = _medians(table, "sd")
    assert sd["RDLS2"] < sd["RDLS1"] and sd["RDLS2"] < sd["RDLS3"]
    assert _kruskal(table, "sd") < 0.01
    assert _kruskal(table, "tumour_signal") > 0.05
    assert _kruskal(table, "volume") > 0.05


def test_intensity_variant_differs_in_mean_signal(samples):
    table = samples["intensity"]
    planted = _medians(table, "tumour_signal")
    assert planted["RDLS3"] < planted["RDLS1"] < planted["RDLS2"]
    mean = _medians(table, "mean")
    assert mean["RDLS3"] < mean["RDLS1"] < mean["RDLS2"]
    assert _kruskal(table, "mean") < 0.01
    assert _kruskal(table, "volume") > 0.05


def test_none_variant_carries_no_subtype(samples):
    table = samples["none"]
    assert set(table["margin_type"]) == {"shared"} and set(table["texture_type"]) == {"shared"}
    for column in ("volume", "mean", "sd", "sphericity"):
        assert _kruskal(table, column) > 0.05, column


def test_unknown_variant_is_refused_by_the_config_the_plan_and_the_generator(tmp_path):
    with pytest.raises(InputError, match="mri_signal"):
        validate_config({"demo": {"mri_signal": "shape"}})
    with pytest.raises(InputError, match="centre_case_mix"):
        validate_config({"demo": {"centre_case_mix": "yes"}})
    with pytest.raises(ValueError, match=r"unknown variant 'shape'.*mixed, size, margin"):
        plan_cohort(scale="tiny", mri_signal="shape")
    with pytest.raises(ValueError, match="unknown variant 'shape'"):
        write_subject_mri(subtype="RDLS1", centre="A", image_path=tmp_path / "i.nii.gz",
                          mask_path=tmp_path / "m.nii.gz", shape=SHAPE,
                          rng=item_rng(1, "mri", 0), mri_signal="shape")  # fmt: skip


def test_variant_folders_keep_the_default_paths():
    assert folder_name(scale="default") == "default"
    assert folder_name(scale="tiny", mri_signal="size") == "tiny-size"
    assert folder_name(scale="default", centre_case_mix=True) == "default-mixed-casemix"
    assert folder_name(scale="default", mri_signal="none", centre_case_mix=True) == (
        "default-none-casemix"
    )


def test_case_mix_draws_each_centre_with_its_own_proportions():
    plan = plan_cohort(scale="paper", seed=42, centre_case_mix=True)
    table = plan.subtype_proportions
    totals = plan.truth_subjects["centre"].value_counts()
    assert len(table) == 12  # 4 centres x 3 subtypes
    for row in table.itertuples():
        assert (
            row.planted_proportion == CASE_MIX_PROPORTIONS[row.centre][SUBTYPES.index(row.subtype)]
        )
        # Within 3.5 binomial standard errors of the planted proportion.
        p, n = row.planted_proportion, totals[row.centre]
        assert abs(row.observed_proportion - p) < 3.5 * np.sqrt(p * (1 - p) / n), row
    training = plan.truth_subjects.query("cohort == 'training'")
    assert chi2_contingency(pd.crosstab(training["centre"], training["subtype"])).pvalue < 1e-6


def test_without_case_mix_every_centre_has_the_pooled_proportions():
    table = plan_cohort(scale="tiny", seed=42).subtype_proportions
    for centre, rows in table.groupby("centre"):
        assert tuple(rows["planted_proportion"]) == SUBTYPE_PROPORTIONS, centre


def test_case_mix_survival_still_follows_the_subtype():
    plan = plan_cohort(scale="paper", seed=42, centre_case_mix=True)
    subjects = plan.subjects.merge(plan.truth_subjects[["subject_id", "subtype"]])
    design = pd.DataFrame(
        {
            "months": subjects["rfs_months"],
            "event": subjects["rfs_event"],
            "subtype_RDLS2": (subjects["subtype"] == "RDLS2").astype(float),
            "subtype_RDLS3": (subjects["subtype"] == "RDLS3").astype(float),
            "centre_B": (subjects["centre"] == "B").astype(float),
        }
    )
    fitted = CoxPHFitter().fit(design, "months", "event")
    interval = fitted.confidence_intervals_
    for term in ("subtype_RDLS2", "subtype_RDLS3"):
        low, high = interval.loc[term]
        # Stage and CEA are left out, so the interval is widened by a margin for them.
        assert low - 0.2 <= HAZARD_COEFFICIENTS[term] <= high + 0.2, term
    assert fitted.params_["subtype_RDLS2"] < -0.3


def test_cli_writes_a_variant_with_its_settings_and_only_the_chosen_modalities(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "rdls.demo", "--scale", "tiny", "--seed", "3", "--out", "demo",
         "--mri-signal", "margin", "--centre-case-mix", "--modalities", "mri"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO / "workflow" / "scripts"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    truth = tmp_path / "demo" / "truth"
    settings = pd.read_csv(truth / "settings.tsv", sep="\t", index_col="setting")["value"]
    assert settings.to_dict() == {"scale": "tiny", "seed": "3", "mri_signal": "margin",
                                  "centre_case_mix": "True"}  # fmt: skip
    mri = pd.read_csv(truth / "mri.tsv", sep="\t")
    assert len(mri) == 60 and (mri["mri_signal"] == "margin").all()
    proportions = pd.read_csv(truth / "subtype_proportions.tsv", sep="\t")
    assert proportions["planted_proportion"].max() == 0.60
    assert not (tmp_path / "demo" / "slides").exists()
    assert not (tmp_path / "demo" / "bulk").exists()
