"""rdls.wsi.tiles on real H&E tiles (Kather et al. CRC-VAL-HE-7K): lymphocyte and stroma ranking.

PathMNIST's 28 px tiles are the 224 px, 0.5 um/px CRC-VAL-HE-7K tiles shrunk 8x (4 um/px).
At 4 um/px a lymphocyte (~7 um) is under two pixels, too few for any area or roundness, so the
tiles are upsampled back 8x (bilinear) to 224 px and analysed at 0.5 um/px, where every size
limit in square microns means what it says: a blurred lymphocyte is still a small, round, dark
blob of about its true size.

The blur merges packed lymphocytes and flattens their contrast, so these tiles take the nucleus
settings for blurred input (BLURRED): a local-contrast window of 8 um parts packed nuclei, the
core threshold is not extended (low_fraction 1), and a lymphocyte needs only 0.03 OD of
contrast to its ring, roundness 0.6 and half the darkness of the tile's darkest nuclei. With
the defaults for sharp slides the lymphocyte AUC is 0.5: no blob of the blurred tiles passes the
contrast a sharp lymphocyte has. Measured with BLURRED on the first 40 tiles per class: LYM
against the rest 0.941 (normal mucosa, whose lamina propria is full of lymphocytes and plasma
cells, 0.77); the old rule (small, round, dark; roundness >= 0.6) reached 0.97 here but only
F1 0.44 on real nuclei. Stroma against tumour 0.89 with BLURRED, and 1.0 on the seven native
224 px CRC-VAL-HE tiles with the defaults.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from rdls.wsi.nuclei import NucleusSettings
from rdls.wsi.tiles import TileSettings, quantify_tile

PATHMNIST_CLASSES = ("ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")
LYM, STR, TUM = 3, 7, 8
PER_CLASS = 40  # first tiles of each class: every class represented, test stays fast
BLURRED = TileSettings(
    nuclei=NucleusSettings(
        min_threshold=0.1, low_fraction=1.0, local_window_um=8.0, lymphocyte_min_contrast=0.03,
        lymphocyte_min_roundness=0.6, lymphocyte_min_relative=0.5,
    )
)  # fmt: skip


@pytest.fixture(scope="module")
def pathmnist(shared_data):
    path = shared_data / "wsi" / "crc_tiles_medmnist_app" / "pathmnist.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with np.load(path) as data:
        images, labels = data["test_images"], data["test_labels"].ravel()
    keep = np.concatenate([np.flatnonzero(labels == c)[:PER_CLASS] for c in range(9)])
    upsampled = [
        np.asarray(Image.fromarray(images[i]).resize((224, 224), Image.BILINEAR)) for i in keep
    ]
    return upsampled, labels[keep]


def _scores(tiles, settings, key):
    return np.array([quantify_tile(t, mpp=0.5, settings=settings)[key] for t in tiles])


def test_pathmnist_lymphocyte_score_ranks_lym_tiles_first(pathmnist):
    tiles, labels = pathmnist
    score = _scores(tiles, BLURRED, "lymphocyte_score")
    auc = roc_auc_score(labels == LYM, score)
    per_class = {
        PATHMNIST_CLASSES[c]: roc_auc_score(labels[np.isin(labels, [LYM, c])] == LYM,
                                            score[np.isin(labels, [LYM, c])])
        for c in range(9) if c != LYM
    }  # fmt: skip
    print(f"PathMNIST LYM vs rest AUC {auc:.3f}; per class " +
          ", ".join(f"{k} {v:.2f}" for k, v in per_class.items()))  # fmt: skip
    # Measured 0.941 (NORM 0.77, every other class >= 0.93); see the module's docstring.
    assert auc >= 0.93
    assert min(per_class.values()) >= 0.75
    assert sorted(per_class.values())[1] >= 0.9


def test_pathmnist_stroma_score_ranks_str_above_tum(pathmnist):
    tiles, labels = pathmnist
    chosen = np.isin(labels, [STR, TUM])
    score = _scores([t for t, c in zip(tiles, chosen, strict=True) if c], BLURRED, "stroma_score")
    auc = roc_auc_score(labels[chosen] == STR, score)
    print(f"PathMNIST STR vs TUM stroma AUC {auc:.3f}")
    assert auc >= 0.85  # measured 0.888


def test_crc_val_he_stroma_score_ranks_str_above_tum(shared_data):
    folder = shared_data / "wsi" / "crc_tiles_medmnist_app"
    paths = sorted(p for p in folder.glob("*.jpg") if p.name[:3] in ("STR", "TUM"))
    if not paths:
        pytest.skip(f"no STR/TUM tiles in {folder}")
    is_stroma = np.array([p.name.startswith("STR") for p in paths])
    score = _scores([np.asarray(Image.open(p).convert("RGB")) for p in paths], TileSettings(),
                    "stroma_score")  # fmt: skip
    auc = roc_auc_score(is_stroma, score)
    print(
        f"CRC-VAL-HE 224 px: {is_stroma.sum()} STR, {(~is_stroma).sum()} TUM, stroma AUC {auc:.3f}"
    )
    assert auc >= 0.9  # measured 1.0
