"""Contract tests for ``lcodec.entropy.gaussian`` written against the surviving mutants of the
mutation run of docs/results/mutation/run2_entropy.md. Each test checks a documented property
(docstring, the maths of the module docstring, an independent scipy reference), not today's
output: argument validation of ``scale_table`` / ``gaussian_tables`` / ``GaussianConditional``,
the tail rule ``K_t`` and the bin masses of ``gaussian_tables``, the two bounds of the
likelihood, the lower-bound gradient, and the dtypes of ``symbols`` / ``reconstruct`` /
``indexes_to_scales``."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from lcodec.entropy.gaussian import (
    LIKELIHOOD_BOUND,
    SCALE_BOUND,
    GaussianConditional,
    _lower_bound,
    gaussian_tables,
    indexes_to_scales,
    laplace_tables,
    scale_table,
)
from lcodec.errors import ModelError

def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1.3e-6, atol: float = 1e-5) -> None:
    """torch.testing.assert_close without its slow first import: same shape and dtype, values close."""
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol)



# ------------------------------------------------------------------ scale_table
@pytest.mark.parametrize("args", [(1, 0.11, 256.0), (0, 0.11, 256.0), (8, 0.0, 1.0), (8, -1.0, 1.0),
                                  (8, 2.0, 2.0), (8, 3.0, 2.0), (8, 0.11, float("inf"))])
def test_scale_table_refuses_what_its_message_says(args):
    with pytest.raises(ModelError, match="num >= 2 and 0 < min_scale < max_scale"):
        scale_table(*args)


def test_scale_table_accepts_the_smallest_valid_arguments_and_hits_both_ends():
    t = scale_table(2, 1e-3, 1e-3 * (1 + 1e-9))
    assert t.shape == (2,) and t.dtype == np.float64
    t = scale_table(5, 0.5, 8.0)  # log-spaced: 0.5, 1, 2, 4, 8
    np.testing.assert_allclose(t, [0.5, 1.0, 2.0, 4.0, 8.0], rtol=1e-13)
    # defaults documented in the signature: 64 scales from SCALE_BOUND = 0.11 to 256
    np.testing.assert_array_equal(scale_table(), scale_table(64, 0.11, 256.0))


# ------------------------------------------------------------------ gaussian_tables
@pytest.mark.parametrize("scales,tail", [([], 1e-6), ([1.0, 0.0], 1e-6), ([1.0, -2.0], 1e-6), ([float("inf")], 1e-6),
                                         ([float("nan")], 1e-6), ([1.0], 0.0), ([1.0], 1.0), ([1.0], 1.5),
                                         ([1.0], -0.1)])
def test_gaussian_tables_refuse_bad_scales_and_tail_mass(scales, tail):
    with pytest.raises(ModelError, match="scales|tail_mass"):
        gaussian_tables(scales, tail_mass=tail)


def _smallest_k(sigma: float, tail: float) -> int:
    """Docstring rule, by search: the smallest K >= 1 with P(|X| > K + 1/2) <= tail, X ~ N(0, sigma)."""
    k = 1
    while 2 * norm.sf((k + 0.5) / sigma) > tail:
        k += 1
    return k


@pytest.mark.parametrize("tail", [1e-3, 1e-9])
def test_gaussian_tables_cover_the_smallest_range_holding_all_but_tail_mass(tail):
    sigmas = [0.02, 0.13, 0.7, 1.9, 5.3, 21.0]
    tables = gaussian_tables(sigmas, tail_mass=tail)
    for t, s in enumerate(sigmas):
        k = _smallest_k(s, tail)
        assert int(tables.offsets[t]) == -k, (s, tail)
        assert int(tables.lengths[t]) == 2 * k + 2


@pytest.mark.parametrize("tail", [1e-6, 0.05, 0.3])
@pytest.mark.parametrize("sigma", [0.11, 0.45, 1.0, 3.7, 40.0])
def test_gaussian_table_counts_are_the_quantized_bin_masses(sigma, tail):
    """Entry k holds Phi((k + 1/2)/s) - Phi((k - 1/2)/s) (scipy's norm, another formula), escape last
    with P(|X| > K + 1/2); after quantization each count is within (entries + 2) of mass * 2**precision.
    A large tail mass makes the escape entry thousands of counts, so its formula is checked too."""
    for precision in (12, 16):
        tables = gaussian_tables([sigma], tail_mass=tail, precision=precision)
        assert tables.precision == precision
        k = -int(tables.offsets[0])
        n = int(tables.lengths[0])
        v = np.arange(-k, k + 1, dtype=np.float64)
        mass = norm.cdf((v + 0.5) / sigma) - norm.cdf((v - 0.5) / sigma)
        pmf = np.append(mass, 2 * norm.sf((k + 0.5) / sigma))
        counts = tables.counts[0, :n].astype(np.float64)
        assert counts.sum() == 2**precision
        np.testing.assert_allclose(counts, pmf * 2**precision, atol=n + 2, rtol=0)
        # symmetric about 0 up to the one count each that quantize_pmf settles on the largest entries
        assert np.abs(counts[: n - 1] - counts[: n - 1][::-1]).max() <= 1


def test_gaussian_tables_centre_bin_is_the_whole_bin_around_zero():
    """For a wide Gaussian the three middle bins hold nearly equal mass; a centre entry built from
    half a bin (or the bin to one side) would stand out by a factor 2."""
    s = 50.0
    tables = gaussian_tables([s], tail_mass=1e-6)
    k = -int(tables.offsets[0])
    c = tables.counts[0]
    assert c[k] == pytest.approx(2**16 * (norm.cdf(0.5 / s) - norm.cdf(-0.5 / s)), abs=3)
    assert abs(int(c[k]) - int(c[k + 1])) <= 2 and abs(int(c[k]) - int(c[k - 1])) <= 2


@pytest.mark.parametrize("tail", [1e-6, 0.05, 0.3])
@pytest.mark.parametrize("b", [0.11, 0.5, 1.0, 3.7, 40.0])
def test_laplace_table_counts_are_the_quantized_bin_masses_and_escape(b, tail):
    """laplace_tables docstring: symbols -K..K with K = max(1, ceil(b ln(1/tail) - 1/2)), bin masses of
    L(0, b) (scipy's cdf here), then the escape P(|X| > K + 1/2) = exp(-(K + 1/2)/b)."""
    from scipy.stats import laplace

    for precision in (12, 16):
        tables = laplace_tables([b], tail_mass=tail, precision=precision)
        assert tables.precision == precision
        k = -int(tables.offsets[0])
        assert k == max(1, math.ceil(b * math.log(1 / tail) - 0.5))
        n = int(tables.lengths[0])
        assert n == 2 * k + 2
        v = np.arange(-k, k + 1, dtype=np.float64)
        mass = laplace.cdf(v + 0.5, scale=b) - laplace.cdf(v - 0.5, scale=b)
        pmf = np.append(mass, 2 * laplace.sf(k + 0.5, scale=b))
        counts = tables.counts[0, :n].astype(np.float64)
        np.testing.assert_allclose(counts, pmf * 2**precision, atol=n + 2, rtol=0)


@pytest.mark.parametrize("build", [gaussian_tables, laplace_tables])
def test_tables_take_any_array_of_scales_one_table_per_scale_and_default_tail_1e_minus_9(build):
    """One table per scale, whatever the array's shape (a (T, 1) column, a (2, 2) block), in C order;
    the documented default tail mass is 1e-9."""
    flat = [0.3, 1.0, 2.5, 7.0]
    ref = build(flat, 1e-9)
    assert build(np.array(flat).reshape(4, 1), 1e-9).sha256 == ref.sha256
    assert build(np.array(flat).reshape(2, 2), 1e-9).sha256 == ref.sha256
    assert build(flat).sha256 == ref.sha256
    assert build(flat).sha256 != build(flat, 1e-6).sha256


# ------------------------------------------------------------------ GaussianConditional.__init__
@pytest.mark.parametrize("scales", [[1.0], [], [0.0, 1.0], [-1.0, 1.0], [1.0, float("inf")], [float("nan"), 1.0],
                                    [1.0, 1.0], [1.0, 2.0, 2.0], [2.0, 1.0]])
def test_conditional_refuses_scale_tables_that_are_not_two_or_more_increasing_positive(scales):
    with pytest.raises(ModelError, match="strictly increasing"):
        GaussianConditional(scales)


@pytest.mark.parametrize("kw", [dict(scale_bound=0.0), dict(scale_bound=-0.1), dict(likelihood_bound=0.0),
                                dict(likelihood_bound=1.0), dict(likelihood_bound=-1e-9)])
def test_conditional_refuses_bounds_outside_their_ranges(kw):
    with pytest.raises(ModelError, match="scale_bound|likelihood_bound"):
        GaussianConditional(**kw)


@pytest.mark.parametrize("family", ["Gaussian", "normal", ""])
def test_conditional_refuses_unknown_families(family):
    with pytest.raises(ModelError, match="family"):
        GaussianConditional(family=family)


def test_conditional_stores_its_configuration():
    scales = np.array([0.2, 0.5, 3.0], dtype=np.float32)
    gc = GaussianConditional(scales, scale_bound=0.3, likelihood_bound=1e-4, tail_mass=1e-3, family="laplace")
    assert gc.family == "laplace" and gc.num_tables == 3
    assert gc.scale_bound == 0.3 and gc.likelihood_bound == 1e-4 and gc.tail_mass == 1e-3
    assert isinstance(gc.scale_bound, float) and isinstance(gc.likelihood_bound, float)
    assert isinstance(gc.tail_mass, float)
    assert gc.scale_table.dtype == torch.float64  # stored with the weights in float64
    np.testing.assert_array_equal(gc.scale_table.numpy(), scales.astype(np.float64))
    scales[0] = 0.01  # the module holds its own copy
    assert float(gc.scale_table[0]) == np.float32(0.2)
    assert "scale_table" in gc.state_dict()
    # the defaults: the default scale table, gaussian, the module constants
    d = GaussianConditional()
    np.testing.assert_array_equal(d.scale_table.numpy(), scale_table())
    assert d.family == "gaussian" and d.scale_bound == SCALE_BOUND and d.likelihood_bound == LIKELIHOOD_BOUND
    assert d.tail_mass == 1e-9
    GaussianConditional([0.5, 0.6], scale_bound=1e-12, likelihood_bound=0.999)  # valid edges


def test_tables_use_the_family_tail_mass_and_precision_of_the_module():
    scales = [0.3, 1.0, 4.0]
    g = GaussianConditional(scales, tail_mass=1e-3)
    assert g.tables().sha256 == gaussian_tables(scales, 1e-3).sha256
    assert g.tables(precision=12).sha256 == gaussian_tables(scales, 1e-3, 12).sha256
    assert g.tables(precision=12).precision == 12 and g.tables().precision == 16
    lap = GaussianConditional(scales, tail_mass=1e-3, family="laplace")
    assert lap.tables(14).precision == 14
    assert lap.tables(14).sha256 == laplace_tables(scales, 1e-3, 14).sha256


# ------------------------------------------------------------------ likelihood and its bounds
def _bin_mass(v, mean, s):
    """Mass of [v - 1/2, v + 1/2] under N(mean, s) (scipy, from the far tail: no cancellation), floored
    at the default likelihood bound 1e-9."""
    d = np.abs(v - mean)
    return np.maximum(norm.sf((d - 0.5) / s) - norm.sf((d + 0.5) / s), 1e-9)


def test_gaussian_likelihood_is_the_bin_mass_on_both_sides_of_the_mean():
    rng = np.random.default_rng(11)
    mean = rng.normal(0, 3, 400)
    s = np.exp(rng.uniform(np.log(0.2), np.log(30), 400))
    v = mean + rng.normal(0, 1, 400) * s * 2
    gc = GaussianConditional()
    got = gc.likelihood(torch.from_numpy(v), torch.from_numpy(s), torch.from_numpy(mean)).numpy()
    want = _bin_mass(v, mean, s)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-14)
    # without means: the mean is 0
    got0 = gc.likelihood(torch.from_numpy(v), torch.from_numpy(s)).numpy()
    np.testing.assert_allclose(got0, _bin_mass(v, 0.0, s), rtol=1e-7, atol=1e-14)


@pytest.mark.parametrize("family", ["gaussian", "laplace"])
def test_likelihood_floors_at_the_configured_bound_and_scales_at_the_scale_bound(family):
    gc = GaussianConditional(family=family, likelihood_bound=1e-3, scale_bound=0.5)
    y = torch.tensor([0.0, 0.3, 1.0, 2.0, 40.0, -40.0], dtype=torch.float64)
    p_small = gc.likelihood(y, torch.full_like(y, 0.01))  # below the scale bound: evaluated at 0.5
    p_bound = gc.likelihood(y, torch.full_like(y, 0.5))
    _close(p_small, p_bound, rtol=0, atol=0)
    assert float(p_bound[-1]) == 1e-3 and float(p_bound[-2]) == 1e-3  # far tails: the floor exactly
    assert (p_bound >= 1e-3).all()
    # at the scale bound itself and above it the scale is used as given
    p_above = gc.likelihood(y, torch.full_like(y, 0.8))
    assert not torch.equal(p_above[:3], p_bound[:3])


def test_laplace_likelihood_inside_the_central_bin():
    """|v - mean| < 1/2: mass of [v - 1/2, v + 1/2] which holds the mean (scipy's Laplace cdf)."""
    from scipy.stats import laplace

    gc = GaussianConditional(family="laplace")
    b = 0.9
    d = np.array([0.0, 0.1, 0.25, 0.49, 0.5, 0.51, 1.2])
    got = gc.likelihood(torch.from_numpy(d), torch.full((d.size,), b, dtype=torch.float64)).numpy()
    want = laplace.cdf(d + 0.5, scale=b) - laplace.cdf(d - 0.5, scale=b)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_lower_bound_gradient_passes_above_the_bound_or_when_pushing_up():
    """``_LowerBound``: max(x, bound); the gradient passes where x >= bound, and below the bound only
    where descent (-grad) would raise x, i.e. grad < 0."""
    x = torch.tensor([0.1, 0.5, 0.9, 0.1, 0.5, 0.9], dtype=torch.float64, requires_grad=True)
    upstream = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0], dtype=torch.float64)
    out = _lower_bound(x, 0.5)
    _close(out.detach(), torch.tensor([0.5, 0.5, 0.9, 0.5, 0.5, 0.9], dtype=torch.float64))
    (g,) = torch.autograd.grad(out, x, upstream)
    _close(g, torch.tensor([0.0, 1.0, 1.0, -1.0, -1.0, -1.0], dtype=torch.float64))
    # any positive gradient below the bound is stopped, however small; any negative one passes
    xb = torch.full((4,), 0.1, dtype=torch.float64, requires_grad=True)
    (gb,) = torch.autograd.grad(_lower_bound(xb, 0.5), xb, torch.tensor([0.5, 1e-3, -0.25, -3.0], dtype=torch.float64))
    assert gb.tolist() == [0.0, 0.0, -0.25, -3.0]
    # the gradient with respect to the bound is None (a constant), so a float32 input keeps its dtype
    x32 = torch.tensor([0.2, 2.0], requires_grad=True)
    (g32,) = torch.autograd.grad(_lower_bound(x32, 1.0).sum(), x32)
    assert g32.dtype == torch.float32 and g32.tolist() == [0.0, 1.0]


# ------------------------------------------------------------------ forward, symbols, reconstruct
def test_forward_bits_are_the_sum_of_minus_log2_likelihood_per_item():
    gc = GaussianConditional()
    g = torch.Generator().manual_seed(5)
    y = torch.randn(3, 2, 4, 5, generator=g, dtype=torch.float64) * 3
    means = torch.randn(y.shape, generator=g, dtype=torch.float64)
    scales = torch.rand(y.shape, generator=g, dtype=torch.float64) * 4 + 0.2
    y_hat, bits = gc(y, scales, means, training=False)
    _close(y_hat, torch.round(y - means) + means)
    p = _bin_mass(y_hat.numpy(), means.numpy(), scales.numpy())
    np.testing.assert_allclose(bits.numpy(), (-np.log2(p)).reshape(3, -1).sum(axis=1), rtol=1e-7)
    # without means: plain rounding
    y0, bits0 = gc(y, scales, training=False)
    _close(y0, torch.round(y))
    p0 = _bin_mass(y0.numpy(), 0.0, scales.numpy())
    np.testing.assert_allclose(bits0.numpy(), (-np.log2(p0)).reshape(3, -1).sum(axis=1), rtol=1e-7)
    # training: y + U(-1/2, 1/2), bits of the noisy values
    gc.train()
    yt, bt = gc(y, scales, means)
    assert ((yt - y).abs() <= 0.5).all() and not torch.equal(yt, torch.round(yt))
    pt = _bin_mass(yt.numpy(), means.numpy(), scales.numpy())
    np.testing.assert_allclose(bt.numpy(), (-np.log2(pt)).reshape(3, -1).sum(axis=1), rtol=1e-7)
    # the argument overrides the module's mode, both ways
    ye, _ = gc(y, scales, means, training=False)
    _close(ye, y_hat)
    gc.eval()
    yn, _ = gc(y, scales, means, training=True)
    assert not torch.equal(yn, y_hat)


def test_symbols_and_reconstruct_dtypes_and_values():
    y = torch.tensor([[0.4, -1.6, 2.5, 7.2]], dtype=torch.float64)
    m = torch.tensor([[0.1, 0.2, -0.3, 0.25]], dtype=torch.float64)
    s = GaussianConditional.symbols(y, m)
    assert s.dtype == torch.int64 and s.tolist() == [[0, -2, 3, 7]]
    s0 = GaussianConditional.symbols(y)
    assert s0.dtype == torch.int64 and s0.tolist() == [[0, -2, 2, 7]]
    r = GaussianConditional.reconstruct(s, m)
    assert r.dtype == torch.float64
    _close(r, s.double() + m)
    # float64 means: the symbols are converted to float64 directly (exact beyond float32's 2**24)
    big = torch.tensor([2**24 + 1, -(2**25 + 3)])
    rb = GaussianConditional.reconstruct(big, torch.zeros(2, dtype=torch.float64))
    assert rb.tolist() == [2**24 + 1, -(2**25 + 3)]
    r32 = GaussianConditional.reconstruct(s, m.float())
    assert r32.dtype == torch.float32
    r0 = GaussianConditional.reconstruct(s)
    assert r0.dtype == torch.float32 and r0.tolist() == [[0.0, -2.0, 3.0, 7.0]]


# ------------------------------------------------------------------ indexes_to_scales
def test_indexes_to_scales_values_dtypes_rounding_and_clamping():
    table = torch.tensor([0.11, 0.3, 1.0, 5.0], dtype=torch.float64)
    idx = torch.tensor([-3, 0, 1, 2, 3, 9])
    s = indexes_to_scales(idx, table)
    assert s.dtype == torch.float32  # integer indexes -> float32 scales
    _close(s, torch.tensor([0.11, 0.11, 0.3, 1.0, 5.0, 5.0]))
    f = torch.tensor([0.49, 0.51, 1.5, 2.4, -7.0, 3.6], dtype=torch.float64)  # no grad: the value only
    sf = indexes_to_scales(f, table)
    assert sf.dtype == torch.float64 and not sf.requires_grad
    _close(sf, torch.tensor([0.11, 0.3, 1.0, 1.0, 0.11, 5.0], dtype=torch.float64))
    f32 = f.float().requires_grad_()
    s32 = indexes_to_scales(f32, table)
    assert s32.dtype == torch.float32 and s32.requires_grad
    _close(s32.detach(), sf.float())
