"""The encoder's network and loss in plain torch: a 3D ResNet-10 and NT-Xent.

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
