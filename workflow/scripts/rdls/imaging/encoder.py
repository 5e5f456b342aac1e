"""The self-supervised 3D encoder of the deep features: training, embedding, checkpoints.

What the encoder sees: each subject's whole preprocessed crop, the tumour with its margin and
``context_voxels`` of surrounding tissue (the image is set to zero farther out, so the
rectum's position and the pelvis around it cannot identify a subject), with the tumour mask
as a second channel. The network is a 3D ResNet-10 whose feature maps are summarised (mean
and SD) over the tumour, its margin and the tissue just around it after the stem and the
first three stages, and averaged over the whole view after the last stage
(:class:`rdls.imaging._network.RegionPooledResNet10`): features at several scales, inside,
at the boundary and beyond it, as radiomics measures first order, texture and shape apart.

Pretext task: contrast of whole-tumour views (SimCLR, Chen et al. 2020). Two views of the
same crop, each rotated in-plane by a random angle, shifted by a few voxels, mirrored, with
the mask eroded or dilated by a voxel (rater variability) and a mild gain and noise change,
are told apart from the other tumours' views in the batch (NT-Xent). What survives these
changes and differs between tumours (size, shape, margin, signal, internal texture) is what
the features learn; position, orientation and the rater's exact outline are not. Scale and
strong intensity changes are left out on purpose: tumour size and T2 signal relative to fat
are phenotypes, not nuisances.

How it was chosen (docs/validation.md has the numbers): by criteria that do not depend on a
planted effect, namely how much of the radiomic features' leading principal components the
deep features predict, and a supervised probe on every demo variant (size, margin, texture,
intensity, mixed) together, never on one of them. The earlier patch contrast (two patches
inside one tumour) could not see size or margin at all; pooling the coarse stages alone
missed most of the margin (the margin variant's probe 0.50 untrained), which the stem's
finer grid, the SD over each region and the ring around the tumour raised to 0.64.

Views are drawn in torch as whole batches (``affine_grid``), seeded, so training is
deterministic on the CPU. A subject's embedding is the mean of the frozen encoder's output
over the crop and its three in-plane mirror images: no randomness, and independent of which
other subjects are embedded with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from rdls.errors import InputError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "rdls-encoder"
CHECKPOINT_VERSION = 2
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EncoderSettings:
    """Architecture and training of the encoder.

    Parameters
    ----------
    widths : tuple of int
        Channels of the ResNet's four stages.
    region_levels : tuple of int
        Levels (0: the stem, 1-4: the residual stages) whose feature maps are also
        summarised (mean, SD) over the tumour, its margin and the tissue around it.
    context_voxels : tuple of int
        Tissue kept around the tumour (x, y, z voxels of the preprocessed grid); the image is
        zero farther out.
    epochs, batch_size, learning_rate, weight_decay : training (AdamW)
    temperature : float
        Temperature of the NT-Xent loss.
    rotation : bool
        Rotate views in-plane by a random angle (the tumour's orientation in the slice carries
        no phenotype).
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` uses CUDA where present.
    """

    widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    region_levels: tuple[int, ...] = (0, 1, 2, 3)
    context_voxels: tuple[int, int, int] = (8, 8, 3)
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    rotation: bool = True
    device: str = "auto"

    def __post_init__(self):
        if self.device not in DEVICES:
            raise InputError(
                f"config, imaging.encoder.device: {self.device!r} is not an option; "
                f"use one of {', '.join(DEVICES)}."
            )
        if any(not 0 <= int(level) <= len(self.widths) for level in self.region_levels):
            raise InputError(
                f"config, imaging.encoder.region_levels: {list(self.region_levels)} must be "
                f"level numbers from 0 (the stem) to {len(self.widths)} (the last stage)."
            )

    @property
    def architecture(self) -> dict:
        """What a checkpoint must match: the settings that shape the weights."""
        return {"widths": list(self.widths), "in_channels": 2}

    @property
    def embedding_length(self) -> int:
        """Features per subject: region statistics of each region level, then the view's mean."""
        return len(self.feature_names())

    def feature_names(self) -> list[str]:
        """Column names saying where each feature was pooled, e.g. ``deep_l2_margin_sd_017``."""
        from rdls.imaging._network import REGIONS, STATISTICS, RegionPooledResNet10

        widths = RegionPooledResNet10.level_widths(self.widths)
        names = []
        for level in sorted(set(self.region_levels)):
            for region in REGIONS:
                for statistic in STATISTICS:
                    names += [
                        f"deep_l{level}_{region}_{statistic}_{i:03d}" for i in range(widths[level])
                    ]
        last = len(self.widths)
        names += [f"deep_l{last}_view_mean_{i:03d}" for i in range(self.widths[-1])]
        return names


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
    """The region-pooled 3D ResNet-10: two input channels (image, mask), features out."""
    from rdls.imaging._network import RegionPooledResNet10

    return RegionPooledResNet10(
        in_channels=2,
        widths=tuple(settings.widths),
        region_levels=sorted(set(settings.region_levels)),
    )


def _projection_head(width: int):
    from torch import nn

    return nn.Sequential(nn.Linear(width, 128), nn.ReLU(), nn.Linear(128, 64))


def check_context_fits(context_voxels, crop_voxels) -> None:
    """Refuse a context band wider than the crop, naming both config keys."""
    if len(context_voxels) != 3 or any(int(c) < 0 for c in context_voxels):
        raise InputError(
            f"config: imaging.encoder.context_voxels {list(context_voxels)} must be three "
            "whole numbers of voxels (x, y, z), 0 or more."
        )
    if any(int(c) >= int(s) for c, s in zip(context_voxels, crop_voxels, strict=True)):
        raise InputError(
            f"config: imaging.encoder.context_voxels {list(context_voxels)} is not smaller than "
            f"imaging.preprocess.crop_voxels {list(crop_voxels)}; the band around the tumour "
            "must fit in the crop. Lower context_voxels or enlarge the crop."
        )


def within_context(views, context_voxels):
    """``(n, 2, x, y, z)`` views with the image zeroed beyond ``context_voxels`` of the tumour.

    The band is the mask dilated by a box of ``2 * context + 1`` voxels per axis, computed as
    three one-axis max-pools (a box dilation is separable, and a 17 x 17 x 7 kernel in one go
    costs about 40 times more).
    """
    import torch
    from torch.nn import functional as F

    band = views[:, 1:2]
    for axis, radius in enumerate(context_voxels):
        radius = int(radius)
        if radius == 0:
            continue
        kernel = [1, 1, 1]
        padding = [0, 0, 0]
        kernel[axis], padding[axis] = 2 * radius + 1, radius
        band = F.max_pool3d(band, tuple(kernel), stride=1, padding=tuple(padding))
    return torch.cat([views[:, :1] * band, views[:, 1:2]], dim=1)


def augmented_views(crops, generator, *, rotation: bool = True):
    """Random views of a batch of ``(n, 2, x, y, z)`` crops, as in the module docstring.

    Every random number comes from ``generator`` (a seeded ``torch.Generator``), so a
    training run is reproducible. The mask is resampled with the image and thresholded at
    0.5, then eroded or dilated by one in-plane voxel or left as it is (one third each).
    """
    import torch
    from torch.nn import functional as F

    n = crops.shape[0]
    angle = torch.rand(n, generator=generator) * (2 * math.pi if rotation else 0.0)
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 0.1  # up to 5% of the side
    theta = torch.zeros(n, 3, 4)
    # affine_grid's coordinates run (z, y, x) for a (x, y, z) tensor: rotate the last two.
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1], theta[:, 1, 2] = torch.cos(angle), -torch.sin(angle)
    theta[:, 2, 1], theta[:, 2, 2] = torch.sin(angle), torch.cos(angle)
    theta[:, 1:, 3] = shift
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    moved = F.grid_sample(crops, grid, mode="bilinear", padding_mode="border", align_corners=False)
    image, mask = moved[:, :1], (moved[:, 1:] > 0.5).to(crops.dtype)
    in_plane = dict(kernel_size=(3, 3, 1), stride=1, padding=(1, 1, 0))
    dilated = F.max_pool3d(mask, **in_plane)
    eroded = -F.max_pool3d(-mask, **in_plane)
    choice = torch.randint(0, 3, (n, 1, 1, 1, 1), generator=generator)
    mask = torch.where(choice == 1, dilated, torch.where(choice == 2, eroded, mask))
    gain = 1.0 + (torch.rand(n, 1, 1, 1, 1, generator=generator) - 0.5) * 0.1
    image = image * gain + torch.randn(image.shape, generator=generator) * 0.02
    views = torch.cat([image, mask], dim=1)
    mirror = (torch.rand(n, generator=generator) < 0.5).view(n, 1, 1, 1, 1)
    return torch.where(mirror, views.flip(2), views)


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
    """Train the encoder by whole-tumour contrast on the training cohort's crops.

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
    check_context_fits(settings.context_voxels, crops.shape[2:])
    _seed_everything(seed)
    device = select_device(settings.device)
    encoder = build_encoder(settings).to(device)
    head = _projection_head(settings.embedding_length).to(device)
    optimiser = torch.optim.AdamW(
        [*encoder.parameters(), *head.parameters()],
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
    )
    # Views are drawn on the CPU from one seeded stream, so CUDA and CPU runs see the same.
    generator = torch.Generator().manual_seed(int(seed))
    all_crops = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32))
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
            batch = all_crops[order[first : first + batch_size]]
            first_view, second_view = (
                within_context(
                    augmented_views(batch, generator, rotation=settings.rotation),
                    settings.context_voxels,
                ).to(device)
                for _ in range(2)
            )
            loss = nt_xent(
                head(encoder(first_view)), head(encoder(second_view)),
                temperature=settings.temperature,
            )  # fmt: skip
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


def embed(encoder, crops: np.ndarray, *, settings: EncoderSettings, batch_size: int = 16):
    """One embedding per subject: the frozen encoder's features, averaged over the crop and
    its three in-plane mirror images.

    The encoder is in eval mode (batch norm with its training statistics), so a subject's
    embedding does not depend on the other subjects in its batch.

    Returns
    -------
    numpy.ndarray
        ``(n, settings.embedding_length)`` float64 embeddings in the order of ``crops``.
    """
    import torch

    check_context_fits(settings.context_voxels, crops.shape[2:])
    _seed_everything(0)
    device = select_device(settings.device)
    encoder = encoder.to(device).eval()
    out = np.zeros((len(crops), settings.embedding_length), dtype=np.float64)
    with torch.no_grad():
        for first in range(0, len(crops), batch_size):
            batch = torch.from_numpy(
                np.ascontiguousarray(crops[first : first + batch_size], dtype=np.float32)
            )
            views = within_context(batch, settings.context_voxels).to(device)
            mirrored = [views, views.flip(2), views.flip(3), views.flip(2).flip(3)]
            features = torch.stack([encoder(view).double() for view in mirrored]).mean(dim=0)
            out[first : first + len(batch)] = features.cpu().numpy()
    return out
