"""rdls.wsi.nuclei on drawn tiles: one nucleus per drawn nucleus, classes by cytology, matching."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk, ellipse

from rdls.errors import InputError
from rdls.wsi.nuclei import (
    NUCLEUS_CLASSES,
    NUCLEUS_COLUMNS,
    NucleusSettings,
    classify,
    detect,
    match_points,
    measure,
    segment,
)

# Optical densities of a drawn tile, as separate_stains gives them on real H&E.
CYTOPLASM_H, CYTOPLASM_E = 0.10, 0.25
LYMPHOCYTE_H = 1.0
TUMOUR_H, NUCLEOLUS_H = 0.35, 1.0
FIBROBLAST_H = 0.9
SIDE_UM = 128.0


def draw(shapes, *, mpp):
    """Haematoxylin and eosin images of a 128 um tile with ``shapes`` painted in.

    ``shapes``: (kind, centre_um (row, col), semi-axes_um (a, b), angle, od) tuples, kind
    "disk" or "ellipse"; sizes in microns, so the same list draws the same tissue at any mpp.
    """
    side = round(SIDE_UM / mpp)
    h = np.full((side, side), CYTOPLASM_H, dtype=np.float32)
    e = np.full((side, side), CYTOPLASM_E, dtype=np.float32)
    for kind, (r, c), (a, b), angle, od in shapes:
        if kind == "disk":
            rr, cc = disk((r / mpp, c / mpp), a / mpp, shape=h.shape)
        else:
            rr, cc = ellipse(r / mpp, c / mpp, a / mpp, b / mpp, shape=h.shape, rotation=angle)
        h[rr, cc] = od
        e[rr, cc] = 0.05
    return h, e


def lymphocyte(r, c):
    return ("disk", (r, c), (3.4, 3.4), 0.0, LYMPHOCYTE_H)


def tumour_with_nucleolus(r, c):
    return [
        ("ellipse", (r, c), (5.5, 4.5), 0.3, TUMOUR_H),
        ("disk", (r + 1.0, c - 1.0), (1.2, 1.2), 0.0, NUCLEOLUS_H),
    ]


def fibroblast(r, c):
    return ("ellipse", (r, c), (1.6, 7.0), 0.2, FIBROBLAST_H)


MIXED = [
    *tumour_with_nucleolus(25, 25), *tumour_with_nucleolus(25, 60),
    *tumour_with_nucleolus(60, 25), lymphocyte(60, 60), lymphocyte(60, 80),
    lymphocyte(95, 25), lymphocyte(100, 100), fibroblast(100, 60), fibroblast(20, 100),
]  # fmt: skip
# Expected class of the object nearest each drawn centre (rows, cols in um).
MIXED_TRUTH = [
    ((25, 25), "tumour"), ((25, 60), "tumour"), ((60, 25), "tumour"),
    ((60, 60), "lymphocyte"), ((60, 80), "lymphocyte"), ((95, 25), "lymphocyte"),
    ((100, 100), "lymphocyte"), ((100, 60), "fibroblast"), ((20, 100), "fibroblast"),
]  # fmt: skip


def classes_at(nuclei, centres_um, *, mpp):
    """Class of the detected nucleus nearest each centre, and its distance in um."""
    found = []
    for r, c in centres_um:
        distance = np.hypot(nuclei["row"] * mpp - r, nuclei["col"] * mpp - c)
        nearest = int(np.argmin(distance))
        found.append((nuclei["nucleus_class"].iloc[nearest], float(distance.iloc[nearest])))
    return found


def test_pale_nucleus_with_dark_nucleolus_is_one_tumour_nucleus():
    h, e = draw(tumour_with_nucleolus(32, 32), mpp=0.5)
    labels, nuclei = detect(h, e, mpp=0.5)
    assert len(nuclei) == 1
    row = nuclei.iloc[0]
    assert row["nucleus_class"] == "tumour"
    # The whole pale nucleus (pi * 5.5 * 4.5 = 78 um2), not the nucleolus (4.5 um2).
    assert 60 <= row["area_um2"] <= 100
    assert abs(row["row"] * 0.5 - 32) < 1.5 and abs(row["col"] * 0.5 - 32) < 1.5
    assert labels.max() == 1


def test_nucleoli_among_lymphocytes_do_not_become_lymphocytes():
    # With dark lymphocytes setting the threshold, only the nucleoli of the tumour nuclei
    # clear it; they must still grow into their pale nuclei.
    h, e = draw(MIXED, mpp=0.5)
    _, nuclei = detect(h, e, mpp=0.5)
    counts = nuclei["nucleus_class"].value_counts()
    assert counts.get("lymphocyte", 0) == 4
    assert counts.get("tumour", 0) == 3


def test_mixed_tile_classes_follow_cytology():
    h, e = draw(MIXED, mpp=0.5)
    _, nuclei = detect(h, e, mpp=0.5)
    found = classes_at(nuclei, [c for c, _ in MIXED_TRUTH], mpp=0.5)
    assert [f[0] for f in found] == [t for _, t in MIXED_TRUTH]
    assert max(f[1] for f in found) < 2.0
    assert len(nuclei) == len(MIXED_TRUTH)


def test_small_dark_round_discs_are_lymphocytes():
    centres = [(r, c) for r in (20, 50, 80, 110) for c in (20, 50, 80, 110)]
    h, e = draw([lymphocyte(r, c) for r, c in centres], mpp=0.5)
    _, nuclei = detect(h, e, mpp=0.5)
    assert len(nuclei) == 16
    assert (nuclei["nucleus_class"] == "lymphocyte").all()
    assert nuclei["area_um2"].between(30, 45).all()  # pi * 3.4^2 = 36 um2
    assert (nuclei["roundness"] > 0.9).all()


def test_elongated_thin_dark_ellipses_are_fibroblasts():
    centres = [(r, c) for r in (20, 60, 100) for c in (25, 65, 105)]
    h, e = draw([fibroblast(r, c) for r, c in centres], mpp=0.5)
    _, nuclei = detect(h, e, mpp=0.5)
    assert len(nuclei) == 9
    assert (nuclei["nucleus_class"] == "fibroblast").all()
    assert (nuclei["roundness"] < 0.35).all()


def test_touching_lymphocytes_are_split():
    # Pairs and a row of three, centres 6.5 um apart (radius 3.4 um: they overlap).
    shapes = [lymphocyte(30, 30), lymphocyte(30, 36.5), lymphocyte(80, 30), lymphocyte(86.5, 30),
              lymphocyte(60, 70), lymphocyte(60, 76.5), lymphocyte(60, 83)]  # fmt: skip
    h, e = draw(shapes, mpp=0.5)
    _, nuclei = detect(h, e, mpp=0.5)
    assert len(nuclei) == 7
    assert (nuclei["nucleus_class"] == "lymphocyte").all()


@pytest.mark.parametrize("mpp", [0.25, 0.5])
def test_same_drawing_gives_same_classes_at_any_resolution(mpp):
    h, e = draw(MIXED, mpp=mpp)
    _, nuclei = detect(h, e, mpp=mpp)
    found = classes_at(nuclei, [c for c, _ in MIXED_TRUTH], mpp=mpp)
    assert [f[0] for f in found] == [t for _, t in MIXED_TRUTH]
    lymphocytes = nuclei[nuclei["nucleus_class"] == "lymphocyte"]
    assert lymphocytes["area_um2"].between(30, 45).all()


def test_faint_texture_and_debris_give_no_lymphocytes():
    rng = np.random.default_rng(0)
    h = (CYTOPLASM_H + 0.05 * rng.standard_normal((256, 256))).astype(np.float32).clip(0)
    e = np.full_like(h, CYTOPLASM_E)
    _, nuclei = detect(h, e, mpp=0.5)
    assert (nuclei["nucleus_class"] != "lymphocyte").all()
    # Specks of 1 um: too small for any nucleus.
    h2, e2 = draw([("disk", (r, c), (0.8, 0.8), 0.0, 1.0) for r in (30, 90) for c in (30, 90)],
                  mpp=0.5)  # fmt: skip
    _, specks = detect(h2, e2, mpp=0.5)
    assert (specks["nucleus_class"] == "other").all()


def test_measure_columns_and_empty_tile():
    h, e = draw(MIXED, mpp=0.5)
    labels = segment(h, mpp=0.5)
    nuclei = measure(labels, h, e, mpp=0.5)
    assert tuple(nuclei.columns) == NUCLEUS_COLUMNS
    assert len(nuclei) == labels.max()
    assert set(classify(nuclei)) <= set(NUCLEUS_CLASSES)
    blank = np.zeros((64, 64), dtype=np.float32)
    labels, empty = detect(blank, blank, mpp=0.5)
    assert labels.max() == 0 and len(empty) == 0 and "nucleus_class" in empty.columns


def test_detect_is_fast_on_a_256_px_tile():
    h, e = draw(MIXED * 1, mpp=0.5)
    detect(h, e, mpp=0.5)
    start = time.perf_counter()
    for _ in range(10):
        detect(h, e, mpp=0.5)
    assert (time.perf_counter() - start) / 10 < 0.05


def points(rows):
    return pd.DataFrame(rows, columns=["x", "y", "class"])


def test_match_points_counts_by_hand():
    truth = points([(10, 10, "lymphocyte"), (50, 50, "lymphocyte"), (90, 90, "lymphocyte"),
                    (10, 90, "tumor_epithelial"), (90, 10, "stromal")])  # fmt: skip
    detected = points([
        (12, 11, "lymphocyte"),   # matches truth lymphocyte: TP
        (50, 55, "tumour"),       # matches truth lymphocyte, wrong class: FN
        (11, 88, "lymphocyte"),   # matches truth tumour: FP
        (200, 200, "lymphocyte"),  # nothing near: FP (unmatched)
        (91, 12, "fibroblast"),   # matches stromal
        (13, 12, "lymphocyte"),   # second detection near the first truth point: FP
    ])  # fmt: skip
    result = match_points(detected, truth, radius_px=6)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 3, 2)
    assert result["precision"] == pytest.approx(1 / 4)
    assert result["recall"] == pytest.approx(1 / 3)
    assert result["f1"] == pytest.approx(2 / 7)  # 2 tp / (2 tp + fp + fn)
    assert result["n_matched"] == 4
    confusion = result["confusion"]
    assert confusion.loc["lymphocyte", "lymphocyte"] == 1
    assert confusion.loc["lymphocyte", "tumour"] == 1
    assert confusion.loc["lymphocyte", "unmatched"] == 1  # (90, 90) has no detection
    assert confusion.loc["tumor_epithelial", "lymphocyte"] == 1
    assert confusion.loc["stromal", "fibroblast"] == 1
    assert confusion.loc["unmatched", "lymphocyte"] == 2
    assert int(confusion.to_numpy().sum()) == 4 + 2 + 1  # matches, extra detections, missed


def test_match_points_is_one_to_one_and_optimal():
    # Greedy nearest-first would pair d0 with t1 (distance 1) and leave t0 alone;
    # the optimal assignment matches both.
    truth = points([(0, 0, "lymphocyte"), (4, 0, "lymphocyte")])
    detected = points([(3, 0, "lymphocyte"), (8, 0, "lymphocyte")])
    result = match_points(detected, truth, radius_px=4.5)
    assert (result["tp"], result["fp"], result["fn"]) == (2, 0, 0)
    # Identical positions (distance 0) still match.
    same = match_points(truth, truth, radius_px=1)
    assert same["tp"] == 2 and same["f1"] == 1.0
    empty = match_points(points([]), truth, radius_px=3)
    assert (empty["tp"], empty["fn"]) == (0, 2) and np.isnan(empty["precision"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"smooth_um": 0}, "NucleusSettings.smooth_um must be a positive number, got 0"),
        ({"min_contrast": -0.1}, "NucleusSettings.min_contrast must be a positive number"),
        ({"max_area_um2": float("nan")}, "max_area_um2 must be a positive number, got nan"),
        ({"low_fraction": "high"}, "low_fraction must be a positive number, got 'high'"),
        ({"tumour_min_area_um2": True}, "tumour_min_area_um2 must be a positive number"),
        ({"min_threshold": 0.7}, "min_threshold (0.7) must be below max_threshold (0.6)"),
        ({"min_area_um2": 300.0}, "min_area_um2 (300.0) must be below max_area_um2 (200.0)"),
        (
            {"lymphocyte_min_area_um2": 90.0},
            "lymphocyte_min_area_um2 (90.0) must be below lymphocyte_max_area_um2 (80.0)",
        ),
        ({"low_fraction": 1.5}, "NucleusSettings.low_fraction must be at most 1, got 1.5"),
        ({"pale_fraction": 2.0}, "NucleusSettings.pale_fraction must be at most 1, got 2.0"),
        ({"lymphocyte_min_roundness": 1.2}, "lymphocyte_min_roundness must be at most 1"),
        ({"fibroblast_max_roundness": 3.0}, "fibroblast_max_roundness must be at most 1"),
        ({"lymphocyte_min_relative": 1.1}, "lymphocyte_min_relative must be at most 1"),
    ],
)
def test_settings_errors_name_the_setting_and_the_fix(options, message):
    with pytest.raises(InputError) as error:
        NucleusSettings(**options)
    assert message in str(error.value)


def test_bad_arguments_raise():
    h = np.zeros((32, 32), dtype=np.float32)
    with pytest.raises(ValueError, match="mpp"):
        segment(h, mpp=0)
    with pytest.raises(ValueError, match="same shape"):
        measure(np.zeros((16, 16), dtype=np.int32), h, h, mpp=0.5)
    with pytest.raises(ValueError, match="radius_px"):
        match_points(points([]), points([]), radius_px=0)
