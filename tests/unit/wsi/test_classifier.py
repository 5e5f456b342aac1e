"""rdls.wsi.classifier: a user's torch tile classifier decides the compartments, and every way
its configuration can be wrong fails naming the key and the fix."""

import numpy as np
import pytest
import torch

from rdls.config import validate_config
from rdls.demo._slides import write_slide
from rdls.errors import InputError
from rdls.wsi.classifier import ClassifierSettings, classify_tiles
from rdls.wsi.slide import open_slide, thumbnail, tile_grid, tissue_mask
from rdls.wsi.steps import quantify_slide


class _PinkOrPurple(torch.nn.Module):
    """Logits [purple, pink, glass]: red minus blue, and brightness for glass."""

    def forward(self, x):
        red, blue = x[:, 0].mean(dim=(1, 2)), x[:, 2].mean(dim=(1, 2))
        bright = x.mean(dim=(1, 2, 3))
        pink = 20 * (red - blue)
        return torch.stack([-pink, pink, 40 * (bright - 0.9)], dim=1)


CLASSES = [
    {"name": "TUM", "compartment": "tumour"},
    {"name": "STR", "compartment": "stroma"},
    {"name": "BACK", "compartment": "background"},
]


# torch 2.13 deprecates TorchScript, which users' older checkpoints still are.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")


@pytest.fixture(scope="module", params=["export", "torchscript"])
def checkpoint(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    if request.param == "export":
        program = torch.export.export(
            _PinkOrPurple(),
            (torch.zeros(2, 3, 32, 32),),
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
        path = folder / "pink_or_purple.pt2"
        torch.export.save(program, str(path))
    else:
        path = folder / "pink_or_purple.pt"
        torch.jit.save(torch.jit.script(_PinkOrPurple()), str(path))
    return path


def _settings(checkpoint, classes=CLASSES, **options):
    config = {"checkpoint": str(checkpoint), "classes": classes, "mean": [0, 0, 0],
              "std": [1, 1, 1], "input_px": 32, **options}  # fmt: skip
    return ClassifierSettings.from_config(config)


def _tile(rgb, size=64):
    return np.full((size, size, 3), rgb, dtype=np.uint8)


def test_tiles_get_the_class_and_compartment_the_checkpoint_gives(checkpoint):
    tiles = [_tile((230, 140, 180)), _tile((110, 60, 160)), _tile((250, 250, 250))]
    result = classify_tiles(tiles, _settings(checkpoint, batch_size=2))
    assert list(result["classifier_class"]) == ["STR", "TUM", "BACK"]
    assert list(result["compartment"]) == ["stroma", "tumour", "background"]
    assert np.all(result["classifier_probability"] > 0.5)


def test_no_checkpoint_means_the_pixel_compartments_alone():
    assert ClassifierSettings.from_config({"checkpoint": None, "classes": []}) is None
    assert ClassifierSettings.from_config(None) is None


def test_a_slide_quantified_with_the_checkpoint_carries_its_classes(checkpoint, tmp_path):
    path = tmp_path / "demo.tiff"
    write_slide(out_path=path, subtype="RDLS3", mpp=0.5, size_px=(1024, 768),
                rng=np.random.default_rng(1))  # fmt: skip
    slide, info = open_slide(path)
    with slide:
        thumb = thumbnail(slide, info, mpp=16.0)
    grid = tile_grid(tissue_mask(thumb, mpp=16.0), info=info, mask_mpp=16.0, tile_px=128,
                     tile_mpp=0.5, overlap_px=0, min_tissue_fraction=0.5)  # fmt: skip
    settings = {"stain_normalisation": "none",
                "classifier": {"checkpoint": str(checkpoint), "classes": CLASSES,
                               "mean": [0, 0, 0], "std": [1, 1, 1], "input_px": 32}}  # fmt: skip
    table, nuclei, _ = quantify_slide(path, grid, slide_mpp=0.5, tile_px=128, tile_mpp=0.5,
                                      settings=settings)  # fmt: skip
    assert len(table) == len(grid) > 0
    assert set(table["compartment"]) <= {"tumour", "stroma", "background"}
    assert table["classifier_probability"].between(0, 1).all()
    plain, plain_nuclei, _ = quantify_slide(path, grid, slide_mpp=0.5, tile_px=128, tile_mpp=0.5,
                                            settings={"stain_normalisation": "none"})  # fmt: skip
    assert "compartment" not in plain.columns
    # The nuclei are classified the same way with or without the classifier; only their
    # compartment follows it: nothing stays epithelium on a tile it calls stroma.
    assert table["n_lymphocytes"].tolist() == plain["n_lymphocytes"].tolist()
    assert nuclei["nucleus_class"].tolist() == plain_nuclei["nucleus_class"].tolist()
    stroma_tiles = np.flatnonzero(table["compartment"].to_numpy() == "stroma")
    on_stroma = nuclei[nuclei["tile"].isin(stroma_tiles)]
    assert not (on_stroma["compartment"] == "epithelium").any()
    assert (table.loc[table["compartment"] == "stroma", "epithelium_mm2"] == 0).all()


def test_missing_checkpoint_names_the_key_and_the_fix(tmp_path):
    with pytest.raises(InputError, match=r"checkpoint: file .*missing\.pt' does not exist.*null"):
        classify_tiles([_tile((200, 100, 150))], _settings(tmp_path / "missing.pt"))


@pytest.mark.parametrize(("name", "kind"), [("weights.pt", "TorchScript model"),
                                             ("weights.pt2", "torch.export program")])  # fmt: skip
def test_a_state_dict_is_not_a_model_with_its_architecture(tmp_path, name, kind):
    path = tmp_path / name
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(InputError, match=rf"not a {kind}.*torch\.export\.save"):
        classify_tiles([_tile((200, 100, 150))], _settings(path))


def test_classes_that_do_not_match_the_outputs_fail(checkpoint):
    with pytest.raises(InputError, match=r"output of shape \(1, 3\), but classes lists 2"):
        classify_tiles([_tile((200, 100, 150))], _settings(checkpoint, classes=CLASSES[:2]))


def test_unknown_compartment_and_empty_classes_fail(checkpoint):
    bad = [*CLASSES[:2], {"name": "X", "compartment": "mucus"}]
    with pytest.raises(InputError, match=r"unknown compartment\(s\) mucus; use tumour"):
        _settings(checkpoint, classes=bad)
    with pytest.raises(InputError, match="classes is empty"):
        _settings(checkpoint, classes=[])


def test_config_refuses_a_checkpoint_without_classes(checkpoint):
    config = {"wsi": {"quantify": {"classifier": {"checkpoint": str(checkpoint)}}}}
    with pytest.raises(InputError, match="checkpoint is set but classes is empty"):
        validate_config(config)
