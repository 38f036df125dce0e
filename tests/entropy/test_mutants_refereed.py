"""The float64 referee's pieces against PyTorch's own float64 convolutions, and the refereed
rounding forced through its exact path everywhere (the margin widened to 1/2)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.entropy import refereed
from lcodec.entropy.refereed import (analyse_refereed, conv_at_elements, conv_at_positions, conv_transpose64,
                                     round_refereed)


def seeded_conv(*args, seed=0, **kwargs) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(*args, **kwargs)
    with torch.no_grad():
        conv.bias.normal_()
    return conv


def test_round_refereed_asks_the_referee_only_near_boundaries_and_beyond_2_20():
    v = torch.tensor([[0.1, 0.4999, 0.5004, 1.7], [-2.4995, 3.0, 2.0**21 + 0.3, -0.51]], dtype=torch.float64)
    approx = v + torch.tensor([[0.0, 2e-4, -3e-4, 1e-4], [1e-4, 0.0, 0.0, 0.0]], dtype=torch.float64)
    asked = []

    def exact_at(index):
        asked.append(index.clone())
        return v[tuple(index.T)]

    out = round_refereed(approx, 1e-3, exact_at)
    assert out.dtype == torch.int64 and torch.equal(out, torch.round(v).long())
    idx = asked[0].tolist()
    # near a boundary (|frac - 1/2| < margin): 0.4999, 0.5004, -2.4995; beyond 2**20: 2**21 + 0.3
    assert sorted(map(tuple, idx)) == [(0, 1), (0, 2), (1, 0), (1, 2)]
    assert len(asked) == 1
    asked.clear()
    assert torch.equal(round_refereed(torch.tensor([0.2, 1.3]), 1e-3, exact_at), torch.tensor([0, 1]))
    assert asked == []  # nothing near a boundary: the referee is never called
    # a wider margin sends more values to the referee
    w = torch.tensor([0.55, 0.2])
    out = round_refereed(torch.tensor([0.45, 0.2]), 0.1, lambda index: asked.append(index) or w[index[:, 0]])
    assert asked[0].tolist() == [[0]] and out.tolist() == [1, 0]


def test_conv_at_positions_and_elements_equal_conv2d_in_float64():
    conv = seeded_conv(3, 5, (3, 5), stride=(2, 1), padding=(1, 2))
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    ref = F.conv2d(x, conv.weight.double(), conv.bias.double(), stride=(2, 1), padding=(1, 2))
    g = torch.Generator().manual_seed(1)
    pos = torch.stack([torch.randint(0, 2, (20,), generator=g), torch.randint(0, ref.shape[2], (20,), generator=g),
                       torch.randint(0, ref.shape[3], (20,), generator=g)], 1)
    got = conv_at_positions(x, conv, pos)
    assert got.dtype == torch.float64 and got.shape == (20, 5)
    torch.testing.assert_close(got, ref[pos[:, 0], :, pos[:, 1], pos[:, 2]], rtol=1e-12, atol=1e-12)
    index = torch.stack([pos[:, 0], torch.randint(0, 5, (20,), generator=g), pos[:, 1], pos[:, 2]], 1)
    got_e = conv_at_elements(x, conv, index)
    torch.testing.assert_close(got_e, ref[tuple(index.T)], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s,p,op", [(4, 2, 1, 0), (5, 2, 2, 1), (3, 1, 1, 0), ((4, 3), (2, 3), (1, 0), (1, 2))])
def test_conv_transpose64_equals_pytorchs_float64(k, s, p, op):
    torch.manual_seed(2)
    up = nn.ConvTranspose2d(3, 4, k, stride=s, padding=p, output_padding=op)
    with torch.no_grad():
        up.bias.normal_()
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    ref = F.conv_transpose2d(x, up.weight.double(), up.bias.double(), stride=s, padding=p, output_padding=op)
    got = conv_transpose64(x, up)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("margin", [refereed.Z_MARGIN, 0.5])
def test_analyse_refereed_gives_the_float64_integers_even_when_every_value_is_refereed(margin, monkeypatch):
    torch.manual_seed(3)
    h_a = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.GELU(), nn.Conv2d(6, 3, 5, stride=2, padding=2))
    with torch.no_grad():
        h_a[2].weight.mul_(8)
        h_a[0].bias.normal_()
        h_a[2].bias.normal_()
    monkeypatch.setattr(refereed, "Z_MARGIN", margin)  # 0.5: every value goes through exact_at
    y = torch.randn(2, 4, 9, 6, dtype=torch.float64) * 3
    ref = torch.round(h_a.double()(y)).long()
    h_a.float()
    got = analyse_refereed(h_a, y)
    assert got.dtype == torch.int64 and got.shape == (2, 3, 5, 3)
    assert torch.equal(got, ref) and len(ref.unique()) > 5
