"""Float32 with a float64 referee (``lcodec.entropy.refereed``): the encoder's fast side path
must give the float64 path's integers. The golden streams check the bytes end to end."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lcodec
from lcodec.entropy.refereed import (SYMBOL_MARGIN, Z_MARGIN, conv_at_elements, conv_at_positions,
                                    conv_transpose64, round_refereed)
from lcodec.models.cpu import run_on_cpu


def test_round_refereed_asks_the_referee_exactly_near_boundaries():
    g = torch.Generator().manual_seed(0)
    exact = torch.randn(4, 50, 20, generator=g, dtype=torch.float64) * 5
    exact[0, :10, 0] = torch.arange(10) + 0.5 + torch.linspace(-4e-4, 4e-4, 10, dtype=torch.float64)  # near ties
    noise = (torch.rand(exact.shape, generator=g, dtype=torch.float64) - 0.5) * 1e-3  # |error| < margin 1e-3
    asked = []

    def referee(index):
        asked.append(index)
        return exact[tuple(index.T)]

    out = round_refereed((exact + noise).float(), 1e-3, referee)
    assert out.dtype == torch.int64 and torch.equal(out, torch.round(exact).long())
    (index,) = asked
    assert len(index) < 0.01 * exact.numel()  # the referee only sees values near a boundary
    assert {tuple(r) for r in index.tolist()} >= {(0, k, 0) for k in range(10)}
    # without the referee (margin 0) the same noise flips some near-tie values
    assert not torch.equal(round_refereed((exact + noise).float(), 0.0, referee), torch.round(exact).long())


@pytest.mark.parametrize("kernel,stride", [(3, 1), (5, 2)])
def test_conv_at_elements_and_positions_match_the_full_convolution(kernel, stride):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, kernel, stride=stride, padding=kernel // 2)
    x = torch.randn(2, 6, 9, 11, dtype=torch.float64)
    full = F.conv2d(x, conv.weight.double(), conv.bias.double(), stride=stride, padding=kernel // 2)
    index = torch.stack(torch.meshgrid(*[torch.arange(n) for n in full.shape], indexing="ij"), -1).reshape(-1, 4)
    torch.testing.assert_close(conv_at_elements(x, conv, index), full[tuple(index.T)], rtol=0, atol=1e-12)
    pos = index[index[:, 1] == 0][:, [0, 2, 3]]
    torch.testing.assert_close(conv_at_positions(x, conv, pos), full.permute(0, 2, 3, 1).reshape(-1, 5),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["walloc-rgb-light", "walloc-rgb-rd"])
@pytest.mark.parametrize("quality", [1, 6])
def test_shipped_ladders_refereed_integers_equal_float64_with_a_4x_margin(name, quality, photo):
    codec = lcodec.load(name, quality)
    with torch.no_grad():
        y64 = codec.analyse64(photo.double())
        a64 = run_on_cpu(codec.entropy.h_a, y64)
        z = codec.entropy.hyper_analysis(y64)
        assert torch.equal(z, torch.round(a64).long())
        v64 = y64 - codec.entropy.means(z)
        assert torch.equal(codec.entropy.symbols(y64, z), torch.round(v64).long())
        # the float32 errors the margins must cover, with room to spare
        assert (run_on_cpu(codec.entropy.h_a, y64.float()).double() - a64).abs().max() < Z_MARGIN / 4
        up, act, conv = codec.entropy.h_m
        hidden = act(run_on_cpu(up, z.double()))
        assert ((y64.float() - run_on_cpu(conv, hidden.float())).double() - v64).abs().max() < SYMBOL_MARGIN / 4


@pytest.mark.parametrize("kernel,stride,padding", [(4, 2, 1), (5, 2, 2), (3, 3, 1)])
def test_conv_transpose64_matches_torch(kernel, stride, padding):
    torch.manual_seed(0)
    up = nn.ConvTranspose2d(5, 7, kernel, stride=stride, padding=padding)
    x = torch.randint(-20, 21, (2, 5, 6, 9)).double()
    ref = F.conv_transpose2d(x, up.weight.double(), up.bias.double(), stride=stride, padding=padding)
    torch.testing.assert_close(conv_transpose64(x, up), ref, rtol=0, atol=1e-12)
