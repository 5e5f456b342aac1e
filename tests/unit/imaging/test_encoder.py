"""rdls.imaging.encoder: reproducible training, subject-wise embeddings, safe checkpoints.

Everything runs on six tiny synthetic crops with a tiny network (widths 4-8-8-8), so that a
training of two epochs takes well under a second on the CPU.
"""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from rdls.errors import InputError
from rdls.imaging.encoder import (
    EncoderSettings,
    augmented_views,
    build_encoder,
    check_context_fits,
    embed,
    load_checkpoint,
    save_checkpoint,
    select_device,
    train_encoder,
    within_context,
)

SETTINGS = EncoderSettings(
    widths=(4, 8, 8, 8),
    context_voxels=(4, 4, 1),
    epochs=2,
    batch_size=4,
    device="cpu",
)
# Mean and SD over three regions at the stem and stages 1-3 (4 + 4 + 8 + 8 channels), then
# the view's mean of the last stage (8).
EMBEDDING_LENGTH = 3 * 2 * (4 + 4 + 8 + 8) + 8
CROP_SHAPE = (2, 24, 24, 8)


def _crops(n: int = 6, seed: int = 0) -> np.ndarray:
    """``(n, 2, 24, 24, 8)`` crops: a random image and a cylindrical tumour blob as mask."""
    rng = np.random.default_rng(seed)
    crops = np.zeros((n, *CROP_SHAPE), dtype=np.float32)
    crops[:, 0] = rng.random((n, *CROP_SHAPE[1:]))
    x, y, z = np.meshgrid(*(np.arange(s) for s in CROP_SHAPE[1:]), indexing="ij")
    for i in range(n):
        cx, cy = rng.uniform(8, 16, size=2)
        radius = rng.uniform(3, 5)
        crops[i, 1] = ((x - cx) ** 2 + (y - cy) ** 2 <= radius**2) & (z >= 2) & (z <= 5)
        crops[i, 0] += crops[i, 1] * (0.2 * i)  # tumours of different brightness
    return crops


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Tiny tensors: a second thread only waits on the first (and on a busy machine, long).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _restore_deterministic_flag():
    # The encoder turns on torch's deterministic algorithms process-wide; put it back.
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return _crops()


@pytest.fixture(scope="module")
def trained(crops):
    before = torch.are_deterministic_algorithms_enabled()
    checkpoint, curve = train_encoder(crops, settings=SETTINGS, seed=1)
    torch.use_deterministic_algorithms(before)
    return checkpoint, curve


@pytest.fixture
def checkpoint_path(trained, tmp_path):
    path = tmp_path / "encoder.pt"
    save_checkpoint(trained[0], path)
    return path


def _frozen(state_dict, settings=SETTINGS):
    encoder = build_encoder(settings)
    encoder.load_state_dict(state_dict)
    return encoder.eval()


def _load_error(path, settings=SETTINGS) -> str:
    with pytest.raises(InputError) as caught:
        load_checkpoint(path, settings=settings)
    message = str(caught.value)
    assert str(path) in message
    return message


# --- training -------------------------------------------------------------------------------


def test_training_twice_with_one_seed_is_bit_identical(crops, trained):
    checkpoint, curve = trained
    again, curve_again = train_encoder(crops, settings=SETTINGS, seed=1)

    assert checkpoint["state_dict"].keys() == again["state_dict"].keys()
    for key, tensor in checkpoint["state_dict"].items():
        assert torch.equal(tensor, again["state_dict"][key]), key
    assert [row["loss"] for row in curve] == [row["loss"] for row in curve_again]


def test_another_seed_trains_other_weights(crops, trained):
    other, other_curve = train_encoder(crops, settings=SETTINGS, seed=2)

    differing = [
        key
        for key, tensor in trained[0]["state_dict"].items()
        if tensor.is_floating_point() and not torch.equal(tensor, other["state_dict"][key])
    ]
    assert "conv1.weight" in differing
    assert len(differing) >= 10
    assert [row["loss"] for row in trained[1]] != [row["loss"] for row in other_curve]


def test_curve_has_one_finite_row_per_epoch(trained):
    _, curve = trained

    assert [row["epoch"] for row in curve] == [1, 2]
    for row in curve:
        assert set(row) == {"epoch", "loss", "seconds"}
        assert np.isfinite(row["loss"])
        # NT-Xent of a batch of 4 pairs lies between 0 and well above log(7) = 1.95.
        assert 0 < row["loss"] < 5
        assert row["seconds"] >= 0


def test_checkpoint_records_format_architecture_and_plain_settings(trained):
    checkpoint, _ = trained

    assert checkpoint["format"] == "rdls-encoder"
    assert checkpoint["version"] == 2
    assert checkpoint["seed"] == 1
    assert checkpoint["architecture"] == {"widths": [4, 8, 8, 8], "in_channels": 2}
    assert checkpoint["settings"]["context_voxels"] == [4, 4, 1]
    assert all(t.device.type == "cpu" for t in checkpoint["state_dict"].values())


def test_training_on_one_crop_is_refused(crops):
    with pytest.raises(InputError, match="at least 2 training subjects that passed QC, got 1"):
        train_encoder(crops[:1], settings=SETTINGS, seed=1)


# --- embedding ------------------------------------------------------------------------------


def test_embedding_is_deterministic_and_shaped(crops, trained):
    encoder = _frozen(trained[0]["state_dict"])

    first = embed(encoder, crops, settings=SETTINGS)
    second = embed(encoder, crops, settings=SETTINGS)

    assert first.shape == (6, EMBEDDING_LENGTH) == (6, SETTINGS.embedding_length)
    assert len(SETTINGS.feature_names()) == EMBEDDING_LENGTH
    assert SETTINGS.feature_names()[0] == "deep_l0_tumour_mean_000"
    assert SETTINGS.feature_names()[4] == "deep_l0_tumour_sd_000"
    assert SETTINGS.feature_names()[-1] == "deep_l4_view_mean_007"
    assert first.dtype == np.float64
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)
    # Subjects differ from one another (the embedding is not a constant).
    assert np.ptp(first, axis=0).max() > 1e-3


def test_subject_embedding_does_not_depend_on_its_company_or_order(crops, trained):
    encoder = _frozen(trained[0]["state_dict"])
    everyone = embed(encoder, crops, settings=SETTINGS)

    picked = [4, 1, 3]
    some = embed(encoder, crops[picked], settings=SETTINGS)
    alone = embed(encoder, crops[2:3], settings=SETTINGS)

    # float32 convolutions over batches of another size sum in another order: ~1e-6 relative.
    np.testing.assert_allclose(some, everyone[picked], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(alone[0], everyone[2], rtol=1e-5, atol=1e-8)


def test_embedding_is_the_same_for_a_mirrored_tumour(crops, trained):
    """The embedding averages the four in-plane mirror images: a mirrored crop gives the same."""
    encoder = _frozen(trained[0]["state_dict"])
    base = embed(encoder, crops[:2], settings=SETTINGS)
    mirrored = embed(encoder, np.ascontiguousarray(crops[:2, :, ::-1]), settings=SETTINGS)
    np.testing.assert_allclose(mirrored, base, rtol=1e-5, atol=1e-7)


def test_embedding_ignores_tissue_beyond_the_context_band(crops, trained):
    encoder = _frozen(trained[0]["state_dict"])
    changed = crops[:1].copy()
    changed[0, 0, 0, 0, :] += 5.0  # a corner row, far from the tumour (centre 8-16)
    np.testing.assert_array_equal(
        embed(encoder, changed, settings=SETTINGS), embed(encoder, crops[:1], settings=SETTINGS)
    )
    near = crops[:1].copy()
    near[0, 0][crops[0, 1] > 0.5] += 0.5  # the tumour's own signal
    assert not np.allclose(
        embed(encoder, near, settings=SETTINGS), embed(encoder, crops[:1], settings=SETTINGS)
    )


def test_saved_and_loaded_checkpoint_embeds_identically(crops, trained, checkpoint_path):
    before = embed(_frozen(trained[0]["state_dict"]), crops, settings=SETTINGS)

    loaded = load_checkpoint(checkpoint_path, settings=SETTINGS)

    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    np.testing.assert_array_equal(embed(loaded, crops, settings=SETTINGS), before)


def test_bare_state_dict_of_the_same_network_loads(crops, trained, tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(_frozen(trained[0]["state_dict"]).state_dict(), path)

    loaded = load_checkpoint(path, settings=SETTINGS)

    for key, tensor in trained[0]["state_dict"].items():
        assert torch.equal(loaded.state_dict()[key], tensor), key


# --- checkpoints that are refused -------------------------------------------------------------


def test_missing_checkpoint_is_refused(tmp_path):
    message = _load_error(tmp_path / "nowhere.pt")
    assert "does not exist" in message


def test_file_that_is_not_a_torch_file_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    message = _load_error(path)
    assert "could not be loaded safely" in message


class _Pickled:
    """A class that weights-only loading must not import."""

    def __init__(self):
        self.weights = torch.zeros(2)


def test_pickled_object_is_refused_by_weights_only_loading(tmp_path):
    path = tmp_path / "object.pt"
    torch.save({"model": _Pickled()}, path)
    # The file is a valid pickle that ordinary (unsafe) loading would execute.
    assert isinstance(torch.load(path, weights_only=False)["model"], _Pickled)

    message = _load_error(path)
    assert "could not be loaded safely (weights only)" in message
    assert "UnpicklingError" in message


def test_plain_pickle_of_code_is_refused(tmp_path):
    path = tmp_path / "code.pt"
    with open(path, "wb") as handle:
        pickle.dump({"fn": print}, handle, protocol=2)
    message = _load_error(path)
    assert "could not be loaded safely" in message


def test_dict_of_non_tensors_is_refused(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"weights": [1.0, 2.0]}, path)
    message = _load_error(path)
    assert "neither an rdls encoder nor a state dict of tensors" in message


def test_state_dict_of_wrong_shapes_names_tensor_and_both_shapes(trained, tmp_path):
    path = tmp_path / "narrow.pt"
    torch.save(trained[0]["state_dict"], path)  # widths 4-8-8-8

    message = _load_error(path, settings=replace(SETTINGS, widths=(4, 8, 8, 16)))

    assert "'layers.3.conv1.weight' has shape (8, 8, 3, 3, 3)" in message
    assert "needs (16, 8, 3, 3, 3)" in message


def test_rdls_checkpoint_with_a_misshapen_tensor_names_it(trained, tmp_path):
    checkpoint = dict(trained[0])
    checkpoint["state_dict"] = {**checkpoint["state_dict"], "bn1.weight": torch.ones(5)}
    path = tmp_path / "misshapen.pt"
    save_checkpoint(checkpoint, path)

    message = _load_error(path)

    assert "'bn1.weight' has shape (5,) where the encoder (imaging.encoder.widths) needs (4,)" in (
        message
    )


def test_missing_and_unexpected_tensors_are_named(trained, tmp_path):
    state = dict(trained[0]["state_dict"])
    del state["conv1.weight"]
    state["head.weight"] = torch.zeros(3)
    path = tmp_path / "keys.pt"
    torch.save(state, path)

    message = _load_error(path)

    assert "missing 1 tensors (first: conv1.weight)" in message
    assert "1 unexpected tensors (first: head.weight)" in message


def test_rdls_checkpoint_of_other_widths_loads_to_something_the_settings_can_embed(
    crops, checkpoint_path
):
    """A checkpoint trained with widths 4-8-8-8, configured widths 4-8-8-16.

    Either answer is acceptable: refuse it with an InputError that names the path, or return
    an encoder that :func:`embed` accepts with the same settings. Today load_checkpoint
    adopts the checkpoint's widths silently and embed fails with numpy's "could not
    broadcast input array from shape (8,) into shape (16,)".
    """
    wider = replace(SETTINGS, widths=(4, 8, 8, 16))
    try:
        encoder = load_checkpoint(checkpoint_path, settings=wider)
    except InputError as error:
        assert str(checkpoint_path) in str(error)
        return
    vectors = embed(encoder, crops, settings=wider)
    assert np.isfinite(vectors).all()


# --- devices and settings -------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_without_cuda_is_refused():
    with pytest.raises(InputError, match="'cuda' was asked for but torch sees no CUDA device"):
        select_device("cuda")


def test_cpu_and_auto_without_cuda_select_the_cpu():
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected


def test_unknown_device_is_refused():
    with pytest.raises(InputError, match=r"imaging\.encoder\.device: 'tpu' is not an option"):
        EncoderSettings(device="tpu")


# --- views and context -------------------------------------------------------------------


def test_context_band_keeps_the_tumour_and_its_surroundings_only():
    crop = np.zeros((1, 2, 24, 24, 8), dtype=np.float32)
    crop[0, 0] = 1.0
    crop[0, 1, 10:14, 10:14, 3:5] = 1.0
    kept = within_context(torch.from_numpy(crop), (2, 3, 1)).numpy()[0]

    np.testing.assert_array_equal(kept[1], crop[0, 1])  # the mask is untouched
    image = kept[0]
    assert image[8:16, 7:17, 2:6].min() == 1.0  # tumour +2 in x, +3 in y, +1 in z
    assert image.sum() == 8 * 10 * 4
    assert image[7].sum() == 0 and image[:, 17].sum() == 0 and image[:, :, 6].sum() == 0


def test_context_wider_than_the_crop_is_refused_naming_both_keys():
    with pytest.raises(
        InputError, match=r"context_voxels \[8, 8, 16\].*crop_voxels \[64, 64, 16\]"
    ):
        check_context_fits((8, 8, 16), (64, 64, 16))
    with pytest.raises(InputError, match="three whole numbers"):
        check_context_fits((8, 8), (64, 64, 16))
    check_context_fits((8, 8, 3), (64, 64, 16))


def test_region_level_outside_the_network_is_refused():
    with pytest.raises(InputError, match=r"region_levels: \[1, 5\]"):
        EncoderSettings(region_levels=(1, 5))


def test_views_are_seeded_and_keep_size_signal_and_a_binary_mask():
    # Tumours of 7-10 voxels' radius over 6 slices, as the demo's at 1 mm.
    shape = (6, 2, 40, 40, 10)
    crops = np.zeros(shape, dtype=np.float32)
    x, y, z = np.meshgrid(*(np.arange(s) for s in shape[2:]), indexing="ij")
    rng = np.random.default_rng(0)
    for i in range(shape[0]):
        radius = rng.uniform(7, 10)
        crops[i, 1] = ((x - 20) ** 2 + (y - 20) ** 2 <= radius**2) & (z >= 2) & (z <= 7)
        crops[i, 0] = 0.3 + 0.1 * i * crops[i, 1]
    batch = torch.from_numpy(crops)
    first = augmented_views(batch, torch.Generator().manual_seed(3))
    again = augmented_views(batch, torch.Generator().manual_seed(3))
    other = augmented_views(batch, torch.Generator().manual_seed(4))

    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.equal(first, other)
    assert set(torch.unique(first[:, 1]).tolist()) <= {0.0, 1.0}
    # Rotation, a one-voxel erosion or dilation (by a 3 x 3 box: up to 1.4 voxels on the
    # diagonals) and a small shift change a 7-10-voxel tumour's area by at most
    # ((r +- 1.4) / r)^2, much less than a scale augmentation would: size stays a phenotype.
    area = batch[:, 1].sum(dim=(1, 2, 3))
    ratio = first[:, 1].sum(dim=(1, 2, 3)) / area
    assert ratio.min() > 0.6 and ratio.max() < 1.45
    # The tumour's signal moves by the gain (5% at most) and the noise, not more; the median
    # inside the view's mask, because a dilated mask takes in a ring of the surroundings.
    for view, crop in zip(first, crops, strict=True):
        signal = float(view[0][view[1] > 0.5].median())
        assert signal == pytest.approx(float(crop[0][crop[1] > 0.5][0]), rel=0.1)


# --- CPU against CUDA -------------------------------------------------------------------------

# Largest tolerated |CUDA - CPU| of an embedding, relative to the largest |value| of the CPU
# embedding. float32 convolutions summed in another order differ by about 1e-6 relative;
# 1e-4 leaves room for cuDNN's algorithms while catching a real difference (another view,
# another weight). torch lets cuDNN convolutions use TF32 by default (10-bit mantissa,
# about 1e-3 relative per product); if this fails by that much, TF32 is the first suspect.
CUDA_CPU_RELATIVE_TOLERANCE = 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_and_cpu_embeddings_agree(crops, trained, checkpoint_path):
    cpu = replace(SETTINGS, device="cpu")
    cuda = replace(SETTINGS, device="cuda")

    on_cpu = embed(load_checkpoint(checkpoint_path, settings=cpu), crops, settings=cpu)
    on_cuda = embed(load_checkpoint(checkpoint_path, settings=cuda), crops, settings=cuda)

    scale = float(np.abs(on_cpu).max())
    difference = float(np.abs(on_cuda - on_cpu).max())
    print(f"CUDA - CPU embedding: max |difference| {difference:.3g}, scale {scale:.3g}")
    assert scale > 0
    assert difference <= CUDA_CPU_RELATIVE_TOLERANCE * scale
