"""Contract tests for the scale-mixture context written against mutation run 5/6's survivors: the
component PMF against scipy, the constructor's defaults and limits, the training rate against a
mixture written here from the module docstring, its spread gradient, and the integer mixing."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from lcodec.entropy.gaussian import indexes_to_scales, scale_table
from lcodec.entropy.mixture import mix_counts
from lcodec.entropy.scale_mixture import ScaleMixtureContext, _symmetric_pmf
from lcodec.errors import ModelError

SCALES = scale_table(24, 0.2, 30.0)


def make(**kwargs) -> ScaleMixtureContext:
    torch.manual_seed(0)
    return ScaleMixtureContext(4, 2, 6, SCALES, **kwargs)


@pytest.mark.parametrize("sigma,half", [(0.3, 2), (1.7, 5), (12.0, 8)])
def test_symmetric_pmf_is_the_normal_bins_and_both_tails(sigma, half):
    pmf = _symmetric_pmf(sigma, half)
    k = np.arange(-half, half + 1)
    ref = stats.norm.cdf(k + 0.5, 0, sigma) - stats.norm.cdf(k - 0.5, 0, sigma)
    assert pmf.shape == (2 * half + 2,)
    np.testing.assert_allclose(pmf[:-1], ref, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pmf[-1], 2 * stats.norm.sf(half + 0.5, 0, sigma), rtol=1e-9, atol=1e-300)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)


def test_constructor_defaults_limits_and_heads():
    c = make()
    assert c.spreads == (4, 8, 12, 16) and c.weight_levels == 8 and c.tail_mass == 1e-9
    assert c.mixture_max == int(np.flatnonzero(SCALES <= 9.0)[-1])
    assert c.scale_table.dtype == torch.float64 and c.spread_values.tolist() == [4, 8, 12, 16]
    assert c.num_tables == 24 + (c.mixture_max + 1) * 4 * 7
    for h in c.spread_heads:
        assert h.out_max == 3 and float(h.weight.detach().abs().sum()) == 0
        assert torch.allclose(h.bias.detach(), torch.full_like(h.bias, 1.5))
    for h in c.weight_heads:
        assert h.out_max == 7 and float(h.weight.detach().abs().sum()) == 0
        assert torch.allclose(h.bias.detach(), torch.full_like(h.bias, 8 - 1.4))
    assert len(c.spread_heads) == len(c.weight_heads) == 2
    assert c.spread_heads[1].weight.shape[1] == 6 + 2  # hidden + the earlier slice's channels
    # the limits, inclusive
    ScaleMixtureContext(4, 2, 6, SCALES, spreads=(1, 2), weight_levels=2, mixture_max_scale=float(SCALES[0]))
    assert make(mixture_max_scale=float(SCALES[5])).mixture_max == 5
    for bad in ({"spreads": ()}, {"spreads": (0, 4)}, {"weight_levels": 1}, {"mixture_max_scale": float(SCALES[0]) * 0.99}):
        with pytest.raises(ModelError, match="spreads must be >= 1, weight_levels >= 2"):
            make(**bad)


def reference_bits(c, symbols, a, d, w):
    """-log2 of lam N(0, s_a) + (1 - lam) N(0, s_b) on the symbol's unit bin (module docstring)."""
    top = len(SCALES) - 1
    out = np.empty(symbols.shape)
    for i, (s, ai, di, wi) in enumerate(zip(symbols.tolist(), a.tolist(), d.tolist(), w.tolist())):
        sa, sb = SCALES[ai], SCALES[min(ai + c.spreads[di], top)]
        lam = 1.0 if ai > c.mixture_max else (wi + 1) / c.weight_levels
        mass = lambda sc: stats.norm.cdf(abs(s) + 0.5, 0, sc) - stats.norm.cdf(abs(s) - 0.5, 0, sc)  # noqa: E731
        out[i] = -math.log2(max(lam * mass(sa) + (1 - lam) * mass(sb), 1e-9))
    return out


def test_symbol_bits_are_the_mixture_the_integers_pick():
    c = make()
    rng = np.random.default_rng(1)
    n = 200
    a = torch.from_numpy(rng.integers(0, 24, n)).double()
    d = torch.from_numpy(rng.integers(0, 4, n)).double()
    w = torch.from_numpy(rng.integers(0, 8, n)).double()
    sym = torch.from_numpy(np.round(rng.normal(size=n) * 6)).double()
    got = c.symbol_bits(sym, a, d, w)
    ref = reference_bits(c, sym.numpy(), a.long().numpy(), d.long().numpy(), w.long().numpy())
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6, atol=1e-9)
    assert ((a > c.mixture_max) & (w < 7)).any()  # the single-Gaussian override is exercised


def test_symbol_bits_gradient_in_the_spread_is_the_linear_interpolation():
    c = make()
    sym = torch.tensor([0.0, 3.0, -7.0, 12.0], dtype=torch.float64)
    a = torch.tensor([2.0, 4.0, 1.0, 3.0], dtype=torch.float64, requires_grad=True)
    d = torch.tensor([1.0, 0.0, 2.0, 1.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([3.0, 0.0, 5.0, 6.0], dtype=torch.float64)
    c.symbol_bits(sym, a, d, w).sum().backward()
    # reference: b = a + spread[d] as a free variable; d moves b by (16 - 4) / 3 per step
    table = c.scale_table
    b = (a.detach() + c.spread_values[d.detach().long()].double()).requires_grad_()
    lam = (w + 1) / 8
    from lcodec.entropy.scale_mixture import _bin_mass
    p = lam * _bin_mass(sym, indexes_to_scales(a.detach(), table)) + (1 - lam) * _bin_mass(sym, indexes_to_scales(b, table))
    (-torch.log2(p)).sum().backward()
    torch.testing.assert_close(d.grad, b.grad * (16 - 4) / 3)
    assert (d.grad.abs() > 0).all()


def test_symbol_bits_clamp_the_wide_scale_but_keep_its_gradient():
    c = make()
    top = len(SCALES) - 1
    a = torch.tensor([float(top - 2)], dtype=torch.float64, requires_grad=True)  # a + 16 is beyond the table
    d = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.0], dtype=torch.float64)
    sym = torch.tensor([40.0], dtype=torch.float64)
    bits = c.symbol_bits(sym, a, d, w)
    ref = reference_bits(c, np.array([40.0]), np.array([top - 2]), np.array([3]), np.array([0]))
    np.testing.assert_allclose(bits.detach().numpy(), ref, rtol=1e-6)
    bits.sum().backward()
    assert torch.isfinite(d.grad).all()


@pytest.mark.parametrize("levels", [8, 6])
def test_integer_mixing_of_two_components(levels):
    c = make(weight_levels=levels)
    comp = np.stack([np.array([100, 65000, 436], dtype=np.int64), np.array([30000, 5536, 30000], dtype=np.int64)])
    for w in range(levels - 1):
        weights = np.array([[w + 1, levels - 1 - w]], dtype=np.int64)
        mixed = c._mix(comp, weights, 16)
        assert mixed.sum() == 1 << 16 and mixed.min() >= 1
        exact = (weights[0, :, None] * comp).sum(0) / levels  # the mixture, before integer rounding
        assert np.abs(mixed - exact).max() <= 3
        if levels == 8:  # a power of two: the integer mixing of lcodec.entropy.mixture, exactly
            np.testing.assert_array_equal(mixed, mix_counts(comp[None], weights, 3, 16)[0])


def test_forward_rounds_symbols_straight_through_and_sums_each_slices_bits():
    c = make()
    torch.manual_seed(2)
    y = (torch.randn(2, 4, 3, 5) * 4).requires_grad_()
    means = torch.randn(2, 4, 3, 5)
    hidden = torch.randint(0, 200, (2, 6, 3, 5)).float()
    y_dec, bits = c(y, means, hidden)
    torch.testing.assert_close(y_dec, torch.round(y.detach() - means) + means)
    g = torch.randn_like(y_dec)
    (y_dec * g).sum().backward()
    torch.testing.assert_close(y.grad, g)  # straight through
    sym = torch.round(y.detach() - means)
    total = torch.zeros(2)
    prev = []
    for s in range(2):
        rows = slice(2 * s, 2 * s + 2)
        a, d, w = c._params(s, torch.cat([hidden, *c.context(prev)], 1))
        total = total + c.symbol_bits(sym[:, rows], a, d, w).flatten(1).sum(1)
        prev.append(sym[:, rows])
    torch.testing.assert_close(bits.detach(), total.detach())
    assert bits.shape == (2,)
