"""The encoder's network and loss in plain torch: a 3D ResNet-10, its region pooling, NT-Xent.

The architecture is MONAI's ``ResNet`` with basic blocks, layers ``[1, 1, 1, 1]`` and the
parameter-free shortcut (type A) of He et al. 2016; the loss is SimCLR's NT-Xent (Chen et al.
2020), as MONAI's ``ContrastiveLoss``. They are written out here because importing MONAI
costs about 4.3 s on top of torch's 2.4 s in every job (measured on the 2-core machine), and
the per-shard embedding jobs would spend more time importing than embedding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(channels)
        self.stride = stride
        self.extra_channels = channels - in_channels

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # Type A: subsample and pad the new channels with zeros; no parameters.
        if self.stride != 1:
            x = F.avg_pool3d(x, kernel_size=1, stride=self.stride)
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, 0, 0, self.extra_channels))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet10(nn.Module):
    """3D ResNet-10 that returns globally average-pooled features (``widths[-1]`` long).

    The stem strides in-plane only (kernel 7 x 7 x 3): slices are about three times thicker
    than pixels, so the grid is already coarse along z.
    """

    def __init__(self, *, in_channels: int = 2, widths=(16, 32, 64, 128)):
        super().__init__()
        self.conv1 = nn.Conv3d(
            in_channels, widths[0], (7, 7, 3), stride=(2, 2, 1), padding=(3, 3, 1), bias=False
        )
        self.bn1 = nn.BatchNorm3d(widths[0])
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1)
        layers, previous = [], widths[0]
        for stage, width in enumerate(widths):
            layers.append(_BasicBlock(previous, width, stride=1 if stage == 0 else 2))
            previous = width
        self.layers = nn.Sequential(*layers)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layers(x).mean(dim=(2, 3, 4))


REGIONS = ("tumour", "margin", "around")
STATISTICS = ("mean", "sd")


class RegionPooledResNet10(ResNet10):
    """ResNet-10 whose feature maps are pooled over the tumour, its margin and its
    surroundings, at several scales.

    A single global average mixes the tumour with whatever surrounds it and keeps only the
    coarsest scale. Radiomics measures the tumour's inside (first order, texture) and its
    boundary (shape) separately; this does the same with learned filters. After each level
    in ``region_levels`` (0: the stem, 2 voxels per cell in-plane; 1-4: the four residual
    stages, 4 to 32 voxels per cell) the feature map is summarised by its mean and standard
    deviation over three regions of the level's grid (:func:`region_statistics`): the tumour,
    its margin (the cells the boundary runs through) and the ring of cells just outside it,
    where spiculation and strands into the fat lie. The last stage is also averaged over the
    whole view. The pooling has no parameters, so the weights (and checkpoints) are exactly a
    :class:`ResNet10`'s.
    """

    def __init__(
        self, *, in_channels: int = 2, widths=(16, 32, 64, 128), region_levels=(0, 1, 2, 3)
    ):
        super().__init__(in_channels=in_channels, widths=widths)
        self.region_levels = tuple(int(level) for level in region_levels)
        if any(not 0 <= level <= len(widths) for level in self.region_levels):
            raise ValueError(f"region_levels {region_levels} must be 0 (the stem) to {len(widths)}")

    @staticmethod
    def level_widths(widths) -> tuple[int, ...]:
        """Channels of each level: the stem's, then each stage's."""
        return (widths[0], *widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x[:, 1:2]
        h = F.relu(self.bn1(self.conv1(x)))
        pooled = region_statistics(h, mask) if 0 in self.region_levels else []
        h = self.maxpool(h)
        for stage, layer in enumerate(self.layers, start=1):
            h = layer(h)
            if stage in self.region_levels:
                pooled.extend(region_statistics(h, mask))
        pooled.append(h.mean(dim=(2, 3, 4)))
        return torch.cat(pooled, dim=1)


def region_statistics(features: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Mean and SD of ``features`` over the tumour, its margin and around it, on their grid.

    ``mask`` (``(n, 1, x, y, z)``, 0 to 1) is area-averaged onto the grid: a cell's value is
    the share of it that is tumour. The tumour weighs each cell by that share; the margin is
    the cells the boundary runs through (share strictly between 0.05 and 0.95); around is
    the cells next to the tumour (26-neighbours) that hold none of it. A region without
    cells gives zeros rather than a division by zero.

    Returns
    -------
    list of torch.Tensor
        ``(n, channels)`` each, in the order of :data:`REGIONS` x :data:`STATISTICS`.
    """
    share = F.adaptive_avg_pool3d(mask, features.shape[2:])
    touched = (share > 0.05).to(features.dtype)
    margin = touched * (share < 0.95).to(features.dtype)
    around = F.max_pool3d(touched, 3, stride=1, padding=1) * (1 - touched)
    dims = (2, 3, 4)
    out = []
    for weight in (share, margin, around):
        total = weight.sum(dim=dims).clamp_min(1e-3)
        mean = (features * weight).sum(dim=dims) / total
        spread = ((features - mean[..., None, None, None]) ** 2 * weight).sum(dim=dims) / total
        out += [mean, torch.sqrt(spread + 1e-8)]
    return out


def nt_xent(first: torch.Tensor, second: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy over a batch of positive pairs.

    Row ``i`` of ``first`` and of ``second`` are two views of one item; every other row of
    either is a negative.
    """
    n = first.shape[0]
    z = F.normalize(torch.cat([first, second]), dim=1)
    similarity = z @ z.T / temperature
    similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device),
                                        float("-inf"))  # fmt: skip
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(similarity, targets)
