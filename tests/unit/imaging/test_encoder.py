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
    build_encoder,
    cut_patch,
    embed,
    load_checkpoint,
    save_checkpoint,
    select_device,
    train_encoder,
)

SETTINGS = EncoderSettings(
    widths=(4, 8, 8, 8),
    patch_voxels=(16, 16, 4),
    epochs=2,
    batch_size=4,
    patches_per_embedding=2,
    device="cpu",
)
CROP_SHAPE = (2, 24, 24, 8)
IDS = [f"S{i:02d}" for i in range(6)]


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
    assert checkpoint["version"] == 1
    assert checkpoint["seed"] == 1
    assert checkpoint["architecture"] == {"widths": [4, 8, 8, 8], "in_channels": 2}
    assert checkpoint["settings"]["patch_voxels"] == [16, 16, 4]
    assert all(t.device.type == "cpu" for t in checkpoint["state_dict"].values())


def test_training_on_one_crop_is_refused(crops):
    with pytest.raises(InputError, match="at least 2 training subjects that passed QC, got 1"):
        train_encoder(crops[:1], settings=SETTINGS, seed=1)


# --- embedding ------------------------------------------------------------------------------


def test_embedding_is_deterministic_and_shaped(crops, trained):
    encoder = _frozen(trained[0]["state_dict"])

    first = embed(encoder, crops, IDS, settings=SETTINGS, seed=5)
    second = embed(encoder, crops, IDS, settings=SETTINGS, seed=5)

    assert first.shape == (6, 8)
    assert first.dtype == np.float64
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)
    # Subjects differ from one another (the embedding is not a constant).
    assert np.ptp(first, axis=0).max() > 1e-3


def test_subject_embedding_does_not_depend_on_its_company_or_order(crops, trained):
    encoder = _frozen(trained[0]["state_dict"])
    everyone = embed(encoder, crops, IDS, settings=SETTINGS, seed=5)

    picked = [4, 1, 3]
    some = embed(encoder, crops[picked], [IDS[i] for i in picked], settings=SETTINGS, seed=5)
    alone = embed(encoder, crops[2:3], [IDS[2]], settings=SETTINGS, seed=5)

    np.testing.assert_array_equal(some, everyone[picked])
    np.testing.assert_array_equal(alone[0], everyone[2])


def test_embedding_follows_the_subject_id_and_the_seed(crops, trained):
    encoder = _frozen(trained[0]["state_dict"])
    base = embed(encoder, crops[:1], ["S00"], settings=SETTINGS, seed=5)

    renamed = embed(encoder, crops[:1], ["another-id"], settings=SETTINGS, seed=5)
    reseeded = embed(encoder, crops[:1], ["S00"], settings=SETTINGS, seed=6)

    # Another ID or seed draws other patches of the same tumour: a different average.
    assert not np.array_equal(base, renamed)
    assert not np.array_equal(base, reseeded)


def test_saved_and_loaded_checkpoint_embeds_identically(crops, trained, checkpoint_path):
    before = embed(_frozen(trained[0]["state_dict"]), crops, IDS, settings=SETTINGS, seed=5)

    loaded = load_checkpoint(checkpoint_path, settings=SETTINGS)

    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    np.testing.assert_array_equal(embed(loaded, crops, IDS, settings=SETTINGS, seed=5), before)


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
    vectors = embed(encoder, crops, IDS, settings=wider, seed=5)
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


# --- patches ----------------------------------------------------------------------------------


def test_cut_patch_has_requested_size_and_holds_tumour(crops):
    rng = np.random.default_rng(3)
    for crop in crops:
        for _ in range(5):
            patch = cut_patch(crop, (16, 16, 4), rng)
            assert patch.shape == (2, 16, 16, 4)
            assert patch.flags.c_contiguous
            assert patch[1].sum() > 0


def test_cut_patch_is_centred_on_a_tumour_voxel_and_clipped_at_edges():
    crop = np.zeros(CROP_SHAPE, dtype=np.float32)
    crop[0] = np.arange(24)[:, None, None]  # image value = x index
    crop[1, 23, 0, 7] = 1  # the only tumour voxel, in a corner
    patch = cut_patch(crop, (8, 8, 4), np.random.default_rng(0))

    assert patch.shape == (2, 8, 8, 4)
    # Clipped to the last 8 x positions: the corner voxel is inside.
    np.testing.assert_array_equal(patch[0, :, 0, 0], np.arange(16, 24))
    assert patch[1, 7, 0, 3] == 1

    crop[1, 23, 0, 7] = 0
    crop[1, 12, 12, 4] = 1
    centred = cut_patch(crop, (8, 8, 4), np.random.default_rng(0))
    np.testing.assert_array_equal(centred[0, :, 0, 0], np.arange(8, 16))
    assert centred[1, 4, 4, 2] == 1


def test_cut_patch_without_tumour_takes_the_centre():
    crop = np.zeros(CROP_SHAPE, dtype=np.float32)
    crop[0] = np.arange(24)[:, None, None]
    patch = cut_patch(crop, (8, 8, 4), np.random.default_rng(0))
    assert patch.shape == (2, 8, 8, 4)
    np.testing.assert_array_equal(patch[0, :, 0, 0], np.arange(8, 16))


def test_patch_larger_than_the_crop_is_not_cut_to_another_size():
    """patch_voxels (32, 32, 8) from a crop of 24 x 24 x 8: refuse, or return the size asked.

    Today the start is clipped to a negative index and the slice returns the last 8 voxels
    of each axis: a (2, 8, 8, 8) patch, silently, for every subject alike, so the encoder
    trains and embeds on patches of the wrong size without an error.
    """
    crop = _crops(1)[0]
    try:
        patch = cut_patch(crop, (32, 32, 8), np.random.default_rng(0))
    except ValueError:  # InputError is a ValueError
        return
    assert patch.shape == (2, 32, 32, 8)


# --- CPU against CUDA -------------------------------------------------------------------------

# Largest tolerated |CUDA - CPU| of an embedding, relative to the largest |value| of the CPU
# embedding. float32 convolutions summed in another order differ by about 1e-6 relative;
# 1e-4 leaves room for cuDNN's algorithms while catching a real difference (another patch,
# another weight). torch lets cuDNN convolutions use TF32 by default (10-bit mantissa,
# about 1e-3 relative per product); if this fails by that much, TF32 is the first suspect.
CUDA_CPU_RELATIVE_TOLERANCE = 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_and_cpu_embeddings_agree(crops, trained, checkpoint_path):
    cpu = replace(SETTINGS, device="cpu")
    cuda = replace(SETTINGS, device="cuda")

    on_cpu = embed(load_checkpoint(checkpoint_path, settings=cpu), crops, IDS, settings=cpu, seed=5)
    on_cuda = embed(
        load_checkpoint(checkpoint_path, settings=cuda), crops, IDS, settings=cuda, seed=5
    )

    scale = float(np.abs(on_cpu).max())
    difference = float(np.abs(on_cuda - on_cpu).max())
    print(f"CUDA - CPU embedding: max |difference| {difference:.3g}, scale {scale:.3g}")
    assert scale > 0
    assert difference <= CUDA_CPU_RELATIVE_TOLERANCE * scale
