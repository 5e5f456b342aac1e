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


class RegionPooledResNet10(ResNet10):
    """ResNet-10 whose feature maps are pooled over the tumour and its margin at several scales.

    A single global average mixes the tumour with whatever surrounds it and keeps only the
    coarsest scale. Radiomics measures the tumour's inside (intensity, texture) and its
    boundary (shape) separately; this does the same with learned filters: after each stage
    in ``region_stages`` the feature map is averaged over the tumour (the mask channel,
    downsampled to the stage's grid) and over the margin (grid cells the tumour boundary runs
    through), and the last stage is averaged over the whole view. The pooling has no
    parameters, so the weights (and checkpoints) are exactly a :class:`ResNet10`'s.

    Output length: ``2 * sum(widths[s] for s in region_stages) + widths[-1]``.
    """

    def __init__(self, *, in_channels: int = 2, widths=(16, 32, 64, 128), region_stages=(1, 2, 3)):
        super().__init__(in_channels=in_channels, widths=widths)
        self.region_stages = tuple(int(s) for s in region_stages)
        if any(not 0 <= s < len(widths) for s in self.region_stages):
            raise ValueError(f"region_stages {region_stages} must index the {len(widths)} stages")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x[:, 1:2]
        h = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        pooled = []
        for stage, layer in enumerate(self.layers):
            h = layer(h)
            if stage in self.region_stages:
                pooled.extend(region_means(h, mask))
        pooled.append(h.mean(dim=(2, 3, 4)))
        return torch.cat(pooled, dim=1)


def region_means(features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Means of ``features`` over the tumour and over its margin, on the features' grid.

    ``mask`` (``(n, 1, x, y, z)``, 0 to 1) is area-averaged onto the grid: a cell's value is
    the share of it that is tumour. Inside weighs each cell by that share; the margin is the
    cells the boundary runs through (share strictly between 0.05 and 0.95). A region with no
    cell gives zeros rather than a division by zero.
    """
    share = F.adaptive_avg_pool3d(mask, features.shape[2:])
    margin = ((share > 0.05) & (share < 0.95)).to(features.dtype)
    dims = (2, 3, 4)
    inside = (features * share).sum(dim=dims) / share.sum(dim=dims).clamp_min(1e-3)
    edge = (features * margin).sum(dim=dims) / margin.sum(dim=dims).clamp_min(1e-3)
    return inside, edge


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
