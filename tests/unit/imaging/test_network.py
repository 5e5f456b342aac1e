"""rdls.imaging._network: the plain-torch ResNet-10 and NT-Xent equal MONAI's.

MONAI is installed for the tests only; the module rewrites its ``ResNet`` and
``ContrastiveLoss`` to spare every embedding job MONAI's import time. These tests hold the
rewrite to the original: the same parameters, the same outputs with the same weights, and
the same loss.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rdls.imaging._network import ResNet10, nt_xent

monai_nets = pytest.importorskip("monai.networks.nets")
monai_losses = pytest.importorskip("monai.losses")

WIDTHS = (16, 32, 64, 128)
# The input of the tests: batch 2, two channels, a small (x, y, z) patch.
INPUT_SHAPE = (2, 2, 32, 32, 8)


def _monai_resnet10():
    return monai_nets.ResNet(
        block="basic",
        layers=[1, 1, 1, 1],
        block_inplanes=list(WIDTHS),
        spatial_dims=3,
        n_input_channels=2,
        conv1_t_size=(7, 7, 3),
        conv1_t_stride=(2, 2, 1),
        shortcut_type="A",
        feed_forward=False,
    )


def _parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- ResNet10 -------------------------------------------------------------------------------


def test_resnet10_has_monai_resnet10_parameter_count_and_shapes():
    torch.manual_seed(0)
    ours, theirs = ResNet10(in_channels=2, widths=WIDTHS), _monai_resnet10()

    assert _parameter_count(ours) == _parameter_count(theirs)
    # Same tensors in the same order (names differ: layers.0 against layer1.0).
    ours_shapes = [tuple(t.shape) for t in ours.state_dict().values()]
    theirs_shapes = [tuple(t.shape) for t in theirs.state_dict().values()]
    assert ours_shapes == theirs_shapes
    # The type A shortcut has no parameters: only convolutions and batch norms.
    assert _parameter_count(ours) == 2 * 16 * 7 * 7 * 3 + 2 * 16 + sum(
        9 * 3 * (a * b + b * b) + 4 * b for a, b in zip((16, *WIDTHS[:-1]), WIDTHS, strict=True)
    )


def test_resnet10_output_is_pooled_last_width_like_monai():
    torch.manual_seed(1)
    x = torch.randn(*INPUT_SHAPE)
    ours, theirs = ResNet10(in_channels=2, widths=WIDTHS).eval(), _monai_resnet10().eval()
    with torch.no_grad():
        out, expected = ours(x), theirs(x)

    assert out.shape == expected.shape == (INPUT_SHAPE[0], WIDTHS[-1])


def test_resnet10_with_monai_weights_computes_monai_outputs():
    torch.manual_seed(2)
    theirs = _monai_resnet10()
    # Non-trivial batch-norm statistics, so that eval mode uses them.
    for module in theirs.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    ours = ResNet10(in_channels=2, widths=WIDTHS)
    ours.load_state_dict(
        dict(zip(ours.state_dict(), theirs.state_dict().values(), strict=True)), strict=True
    )
    x = torch.randn(*INPUT_SHAPE)
    with torch.no_grad():
        out, expected = ours.eval()(x), theirs.eval()(x)
        train_out, train_expected = ours.train()(x), theirs.train()(x)

    assert float(expected.abs().max()) > 0.01  # not a trivially zero comparison
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(train_out, train_expected, rtol=1e-5, atol=1e-6)


def test_resnet10_keeps_odd_and_thin_inputs():
    # Thin slabs (z = 4) and odd in-plane sizes pass through every stride-2 stage.
    torch.manual_seed(3)
    net = ResNet10(in_channels=2, widths=(4, 8, 8, 8)).eval()
    with torch.no_grad():
        out = net(torch.randn(3, 2, 17, 15, 4))
    assert out.shape == (3, 8)
    assert torch.isfinite(out).all()


# --- NT-Xent ------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.05, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("batch", [2, 5, 16])
def test_nt_xent_equals_monai_contrastive_loss(temperature, batch):
    generator = torch.Generator().manual_seed(batch * 1000 + int(temperature * 100))
    first = torch.randn(batch, 24, generator=generator)
    second = torch.randn(batch, 24, generator=generator)
    # MONAI's loss takes cosine similarities of the raw inputs, which equal those of the
    # normalised inputs; it is given unnormalised inputs to hold nt_xent's normalisation too.
    expected = monai_losses.ContrastiveLoss(temperature=temperature)(first, second)

    loss = nt_xent(first, second, temperature=temperature)

    assert loss.shape == ()
    assert abs(float(loss) - float(expected)) <= 1e-5


def test_nt_xent_is_low_for_identical_distinct_views_and_high_for_random_views():
    batch, dims, temperature = 8, 32, 0.2
    generator = torch.Generator().manual_seed(11)
    # Identical views of mutually orthogonal items: each positive has similarity 1, every
    # negative 0, so the loss is log(1 + (2n - 2) exp(-1 / t)), near 0.
    items = torch.eye(batch, dims) * 3.0
    identical = float(nt_xent(items, items.clone(), temperature=temperature))
    random = float(
        nt_xent(
            torch.randn(batch, dims, generator=generator),
            torch.randn(batch, dims, generator=generator),
            temperature=temperature,
        )
    )

    assert identical == pytest.approx(
        math.log(1 + (2 * batch - 2) * math.exp(-1 / temperature)), rel=1e-5
    )
    assert identical < 0.1
    # Random views: the positive is no closer than any of the 2n - 2 negatives, so the loss
    # lies near log(2n - 1) = 2.7.
    assert random > 0.8 * math.log(2 * batch - 1)
    assert random > 20 * identical


def test_nt_xent_gradient_flows_to_both_views():
    generator = torch.Generator().manual_seed(12)
    first = torch.randn(4, 8, generator=generator, requires_grad=True)
    second = torch.randn(4, 8, generator=generator, requires_grad=True)
    nt_xent(first, second, temperature=0.2).backward()
    assert torch.isfinite(first.grad).all() and float(first.grad.abs().sum()) > 0
    assert torch.isfinite(second.grad).all() and float(second.grad.abs().sum()) > 0


def test_region_statistics_separate_tumour_margin_and_surroundings():
    from rdls.imaging._network import region_statistics

    # A 4 x 4 x 1 grid from an 8 x 8 x 1 mask: the tumour fills cell (1, 1) and half of (2, 1).
    mask = torch.zeros(1, 1, 8, 8, 1)
    mask[0, 0, 2:4, 2:4] = 1.0
    mask[0, 0, 4:5, 2:4] = 1.0
    features = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4, 1)

    (t_mean, t_sd, m_mean, m_sd, a_mean, a_sd) = region_statistics(features, mask)

    # Tumour: cell 5 (share 1) and cell 9 (share 0.5), weighted by share.
    assert t_mean.item() == pytest.approx((5 * 1 + 9 * 0.5) / 1.5)
    # Margin: only cell 9 is crossed by the boundary.
    assert m_mean.item() == pytest.approx(9.0) and m_sd.item() == pytest.approx(0.0, abs=1e-3)
    # Around: the 26-neighbours of cells 5 and 9 that hold no tumour.
    around = [0, 1, 2, 4, 6, 8, 10, 12, 13, 14]
    assert a_mean.item() == pytest.approx(np.mean(around))
    assert a_sd.item() == pytest.approx(np.std(around), rel=1e-4)
    assert t_sd.item() == pytest.approx(
        np.sqrt((1 * (5 - t_mean.item()) ** 2 + 0.5 * (9 - t_mean.item()) ** 2) / 1.5), rel=1e-4
    )


def test_region_pooled_network_keeps_resnet10_weights_and_names_its_features():
    from rdls.imaging._network import RegionPooledResNet10

    plain, pooled = ResNet10(widths=(4, 8, 8, 8)), RegionPooledResNet10(widths=(4, 8, 8, 8))
    assert plain.state_dict().keys() == pooled.state_dict().keys()
    out = pooled(torch.rand(2, 2, 24, 24, 8))
    assert out.shape == (2, 3 * 2 * (4 + 4 + 8 + 8) + 8)
    with pytest.raises(ValueError, match="region_levels"):
        RegionPooledResNet10(widths=(4, 8, 8, 8), region_levels=(5,))
