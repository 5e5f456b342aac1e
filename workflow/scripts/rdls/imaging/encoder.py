"""The self-supervised 3D encoder of the deep features: training, embedding, checkpoints.

Pretext task: patch contrast within a tumour. Two sub-volumes (patches) are cut from the same
tumour at random mask voxels and distorted independently with torchio augmentations that
mimic MRI variation (bias field, motion, noise, small affine changes and in-plane rotation);
a 3D ResNet-10 learns, with the NT-Xent contrastive loss (SimCLR), to tell the pair apart
from the patches of the other tumours in the batch. What two patches of one tumour share, and
patches of other tumours do not, is the tumour's signal, texture and margin: the properties
that the subtypes differ in, while position and orientation are not shared and are unlearned.
Contrasting whole crops instead learns to identify subjects by their anatomy (measured on the
demo: ARI 0.27 against the planted subtypes, against 0.6-0.7 for patch contrast).

A subject's embedding is the mean of the frozen encoder's pooled features over a fixed number
of patches drawn from a random stream seeded by the seed and the subject_id, so it does not
depend on which other subjects are embedded with it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np

from rdls.errors import InputError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "rdls-encoder"
CHECKPOINT_VERSION = 1
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EncoderSettings:
    """Architecture and training of the encoder.

    Parameters
    ----------
    widths : tuple of int
        Channels of the ResNet's four stages; the last is the embedding's length.
    patch_voxels : tuple of int
        Size (x, y, z) of the patches cut from a crop, in voxels of the preprocessed grid.
    epochs, batch_size, learning_rate, weight_decay : training (AdamW)
    temperature : float
        Temperature of the NT-Xent loss.
    patches_per_embedding : int
        Patches averaged into one subject's embedding.
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` uses CUDA where present.
    """

    widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    patch_voxels: tuple[int, int, int] = (32, 32, 8)
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    patches_per_embedding: int = 16
    device: str = "auto"

    def __post_init__(self):
        if self.device not in DEVICES:
            raise InputError(
                f"config, imaging.encoder.device: {self.device!r} is not an option; "
                f"use one of {', '.join(DEVICES)}."
            )

    @property
    def architecture(self) -> dict:
        """What a checkpoint must match: the settings that shape the weights."""
        return {"widths": list(self.widths), "in_channels": 2}


def select_device(name: str = "auto"):
    """CUDA when asked for or, with ``"auto"``, when present; else the CPU."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "config, imaging.encoder.device: 'cuda' was asked for but torch sees no CUDA "
            "device. Install torch with CUDA (README, 'GPU') or set device to 'auto'."
        )
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def build_encoder(settings: EncoderSettings):
    """The 3D ResNet-10 backbone, two input channels (image, mask), pooled features out."""
    from rdls.imaging._network import ResNet10

    return ResNet10(in_channels=2, widths=tuple(settings.widths))


def _projection_head(width: int):
    from torch import nn

    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 64))


def _augmentation():
    """torchio transforms that mimic MRI variation between scans and scanners.

    Intensity changes are kept mild: the tumour's signal relative to fat is what the
    subtypes differ in, and a strong bias or gamma change would teach the encoder to
    ignore it.
    """
    import torchio as tio

    return tio.Compose(
        [
            tio.RandomAffine(scales=0.03, degrees=(3, 3, 180), translation=(2, 2, 1)),
            tio.RandomFlip(axes=(0, 1)),
            tio.RandomBiasField(coefficients=0.05, p=0.3),
            tio.RandomMotion(degrees=2, translation=2, num_transforms=1, p=0.2),
            tio.RandomNoise(std=(0.0, 0.02), p=0.5),
        ]
    )


def check_patch_fits(patch_voxels, crop_voxels) -> None:
    """Refuse patches larger than the crop they are cut from, naming both config keys."""
    if any(int(p) > int(c) for p, c in zip(patch_voxels, crop_voxels, strict=True)):
        raise InputError(
            f"config: imaging.encoder.patch_voxels {list(patch_voxels)} does not fit in "
            f"imaging.preprocess.crop_voxels {list(crop_voxels)}; make every patch size at "
            "most the crop size."
        )


def cut_patch(crop: np.ndarray, size, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` sub-volume of a ``(2, x, y, z)`` crop centred on a random tumour voxel."""
    check_patch_fits(size, crop.shape[1:])
    tumour = np.argwhere(crop[1] > 0.5)
    centre = tumour[rng.integers(len(tumour))] if len(tumour) else np.array(crop.shape[1:]) // 2
    start = [
        int(np.clip(centre[axis] - size[axis] // 2, 0, crop.shape[axis + 1] - size[axis]))
        for axis in range(3)
    ]
    return np.ascontiguousarray(
        crop[
            :,
            start[0] : start[0] + size[0],
            start[1] : start[1] + size[1],
            start[2] : start[2] + size[2],
        ]
    )


def _augmented_view(patch: np.ndarray, transform):
    import torch
    import torchio as tio

    subject = tio.Subject(
        image=tio.ScalarImage(tensor=torch.from_numpy(patch[:1])),
        mask=tio.LabelMap(tensor=torch.from_numpy(patch[1:] > 0.5)),
    )
    out = transform(subject)
    return torch.cat([out["image"].data.float(), out["mask"].data.float()])


def _seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    # TF32 rounds CUDA convolutions and products to about 1e-3; CPU and GPU must agree.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def train_encoder(
    crops: np.ndarray, *, settings: EncoderSettings, seed: int
) -> tuple[dict, list[dict]]:
    """Train the encoder by patch contrast on the training cohort's crops.

    Parameters
    ----------
    crops : numpy.ndarray
        ``(n, 2, x, y, z)`` preprocessed crops of the training cohort (n >= 2).
    settings : EncoderSettings
    seed : int

    Returns
    -------
    checkpoint : dict
        What :func:`save_checkpoint` writes: architecture, settings and the frozen weights.
    curve : list of dict
        One row per epoch: ``epoch``, ``loss`` (mean NT-Xent), ``seconds``.
    """
    import torch

    from rdls.imaging._network import nt_xent

    if len(crops) < 2:
        raise InputError(
            f"the encoder needs at least 2 training subjects that passed QC, got {len(crops)}; "
            "check results/qc/exclusions.tsv, or supply a pretrained checkpoint "
            "(imaging.encoder.checkpoint)."
        )
    _seed_everything(seed)
    device = select_device(settings.device)
    encoder = build_encoder(settings).to(device)
    head = _projection_head(settings.widths[-1]).to(device)
    optimiser = torch.optim.AdamW(
        [*encoder.parameters(), *head.parameters()],
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
    )
    transform = _augmentation()
    rng = np.random.default_rng([seed, 7])
    batch_size = min(settings.batch_size, len(crops))
    log.info(
        "training the encoder on %d subjects, %d epochs, batch %d, on %s",
        len(crops), settings.epochs, batch_size, device,
    )  # fmt: skip
    curve = []
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        encoder.train()
        head.train()
        order = rng.permutation(len(crops))
        losses = []
        # Full batches only: NT-Xent with a batch of one has no negatives.
        for first in range(0, len(order) - batch_size + 1, batch_size):
            batch = order[first : first + batch_size]
            views = [
                torch.stack(
                    [
                        _augmented_view(
                            cut_patch(crops[i].astype(np.float32), settings.patch_voxels, rng),
                            transform,
                        )
                        for i in batch
                    ]
                ).to(device)
                for _ in range(2)
            ]
            loss = nt_xent(
                head(encoder(views[0])), head(encoder(views[1])), temperature=settings.temperature
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        seconds = time.perf_counter() - started
        curve.append({"epoch": epoch, "loss": float(np.mean(losses)), "seconds": seconds})
        log.info("epoch %d/%d loss %.4f %.1f s", epoch, settings.epochs, curve[-1]["loss"], seconds)
    return make_checkpoint(encoder, settings=settings, seed=seed), curve


def make_checkpoint(encoder, *, settings: EncoderSettings, seed: int, **extra) -> dict:
    """What :func:`save_checkpoint` writes: format, architecture, settings and CPU weights."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "architecture": settings.architecture,
        "settings": plain(asdict(settings)),
        "seed": int(seed),
        **extra,
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
    }


def plain(value):
    """Settings as lists, ints, floats and strings, which ``weights_only`` loading accepts."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def save_checkpoint(checkpoint: dict, path) -> None:
    import torch

    torch.save(checkpoint, path)


def load_checkpoint(path, *, settings: EncoderSettings):
    """Load an encoder from a checkpoint written by rdls or supplied by the user, safely.

    ``torch.load(weights_only=True)`` refuses pickled code, so a checkpoint can carry
    tensors and plain settings only. A user's checkpoint may be rdls's format or a bare
    state dict of the same network; every missing, unexpected or misshapen tensor is
    reported by name.

    Returns
    -------
    torch.nn.Module
        The encoder in eval mode on the CPU, its weights frozen.
    """
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(
            f"encoder checkpoint '{path}' does not exist. Fix imaging.encoder.checkpoint "
            "in the config, or set it to null to train the encoder."
        ) from None
    except Exception as error:
        raise InputError(
            f"encoder checkpoint '{path}' could not be loaded safely (weights only): "
            f"{type(error).__name__}. Save the state dict with torch.save(model.state_dict())."
        ) from None
    if isinstance(loaded, dict) and loaded.get("format") == CHECKPOINT_FORMAT:
        widths = loaded.get("architecture", {}).get("widths")
        if widths is not None and tuple(widths) != tuple(settings.widths):
            raise InputError(
                f"encoder checkpoint '{path}' was trained with widths {list(widths)}, but "
                f"imaging.encoder.widths is {list(settings.widths)}. Set the config's widths "
                "to the checkpoint's, or use a checkpoint of the configured network."
            )
        state = loaded["state_dict"]
    elif isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        state = loaded
    else:
        raise InputError(
            f"encoder checkpoint '{path}' holds neither an rdls encoder nor a state dict of "
            "tensors. Save one with torch.save(model.state_dict())."
        )
    encoder = build_encoder(settings)
    _check_state(state, encoder.state_dict(), path=path)
    encoder.load_state_dict(state)
    encoder.eval()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return encoder


def _check_state(state: dict, expected: dict, *, path) -> None:
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        problems.append(f"missing {len(missing)} tensors (first: {', '.join(missing[:3])})")
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected tensors (first: {', '.join(unexpected[:3])})"
        )
    for key, tensor in expected.items():
        if key in state and tuple(state[key].shape) != tuple(tensor.shape):
            problems.append(
                f"'{key}' has shape {tuple(state[key].shape)} where the encoder "
                f"(imaging.encoder.widths) needs {tuple(tensor.shape)}"
            )
    if problems:
        raise InputError(
            f"encoder checkpoint '{path}' does not fit the configured encoder: "
            + "; ".join(problems[:6])
            + ". Use a checkpoint of the same architecture (2 input channels, ResNet-10 "
            "with imaging.encoder.widths), or set imaging.encoder.checkpoint to null."
        )


def subject_rng(seed: int, subject_id: str) -> np.random.Generator:
    """The patch stream of one subject: the same in every shard and every run."""
    digest = hashlib.sha256(str(subject_id).encode()).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


def embed(
    encoder, crops: np.ndarray, subject_ids, *, settings: EncoderSettings, seed: int
) -> np.ndarray:
    """One embedding per subject: pooled features averaged over fixed random patches.

    Returns
    -------
    numpy.ndarray
        ``(n, widths[-1])`` float64 embeddings in the order of ``subject_ids``.
    """
    import torch

    _seed_everything(seed)
    device = select_device(settings.device)
    encoder = encoder.to(device).eval()
    out = np.zeros((len(crops), settings.widths[-1]), dtype=np.float64)
    with torch.no_grad():
        for i, (crop, subject_id) in enumerate(zip(crops, subject_ids, strict=True)):
            rng = subject_rng(seed, subject_id)
            patches = np.stack(
                [
                    cut_patch(crop.astype(np.float32), settings.patch_voxels, rng)
                    for _ in range(settings.patches_per_embedding)
                ]
            )
            features = encoder(torch.from_numpy(patches).to(device))
            out[i] = features.double().mean(dim=0).cpu().numpy()
    return out
