import math

import numpy as np
import pytest
import torch

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.entropy import GaussianConditional, gaussian_tables, indexes_to_scales, scale_table
from lcodec.errors import ModelError


def quantized_gaussian_entropy(sigma: float, half: int = 4000) -> float:
    """Entropy (bits) of round(X), X ~ N(0, sigma), from a float64 pmf over a wide grid."""
    k = np.arange(-half, half + 1, dtype=np.float64)
    cdf = lambda v: 0.5 * np.vectorize(math.erfc)(-v / sigma / math.sqrt(2))  # noqa: E731
    p = cdf(k + 0.5) - cdf(k - 0.5)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_scale_table_is_log_spaced_float64():
    t = scale_table()
    assert t.dtype == np.float64 and t.shape == (64,)
    assert t[0] == pytest.approx(0.11) and t[-1] == pytest.approx(256.0)
    np.testing.assert_allclose(np.diff(np.log(t)), np.log(256 / 0.11) / 63, rtol=1e-12)
    with pytest.raises(ModelError):
        scale_table(1)


def test_tables_rows_sum_to_precision_and_are_symmetric():
    scales = scale_table()
    tables = gaussian_tables(scales)
    assert tables.num_tables == 64 and tables.precision == 16
    for t in range(tables.num_tables):
        row = tables.counts[t, : tables.lengths[t]]
        assert row.sum() == 2**16 and row.min() >= 1
        assert tables.counts[t, tables.lengths[t]:].sum() == 0
    # symbols -K..K plus escape: offset -K and length 2K + 2
    np.testing.assert_array_equal(tables.lengths, -2 * tables.offsets + 2)
    assert (np.diff(tables.lengths) >= 0).all() and tables.lengths[0] < tables.lengths[-1]
    # the tail outside -K..K holds at most tail_mass: K grows like 6.1 sigma for tail_mass 1e-9
    assert -tables.offsets[-1] == pytest.approx(6.11 * 256, rel=0.01)
    # built from floats once, deterministically: same content hash every time
    assert gaussian_tables(scales).sha256 == tables.sha256
    with pytest.raises(ModelError):
        gaussian_tables([1.0, -2.0])


@pytest.mark.parametrize("sigma", [0.3, 1.0, 4.0, 30.0])
def test_information_content_of_gaussian_samples_is_near_the_entropy(sigma):
    rng = np.random.default_rng(0)
    n = 20000
    symbols = np.round(rng.normal(0.0, sigma, n)).astype(np.int64)
    tables = gaussian_tables([sigma])
    bits = tables.information_content(symbols, np.zeros(n, dtype=np.int64)) / n
    ideal = quantized_gaussian_entropy(sigma)
    # sampling noise of the mean code length is ~ std/sqrt(n) < 0.01 bits here
    assert abs(bits - ideal) <= 0.01 * ideal + 0.02, (bits, ideal)


def test_escape_codes_large_values_and_round_trips():
    tables = gaussian_tables(scale_table())
    rng = np.random.default_rng(1)
    indexes = rng.integers(0, 64, 500)
    symbols = np.round(rng.normal(0, scale_table()[indexes])).astype(np.int64)
    symbols[::50] = [10**6, -10**6, 4000, -4000, 2, -2, 2**31 - 1, -(2**31 - 1), 1565, -1565]
    indexes[::50] = [0, 0, 63, 63, 0, 0, 10, 10, 63, 63]  # beyond the tables' ranges
    payload = encode_symbols(symbols, indexes, tables)
    np.testing.assert_array_equal(decode_symbols(payload, indexes, tables), symbols)


def test_likelihood_is_a_distribution_and_numerically_safe():
    gc = GaussianConditional()
    grid = torch.arange(-2000, 2001, dtype=torch.float64).view(-1, 1)
    scales = torch.tensor([[0.05, 0.11, 0.7, 3.0, 100.0]], dtype=torch.float64)
    means = torch.tensor([[0.0, 0.3, -0.5, 2.25, 10.0]], dtype=torch.float64)
    p = gc.likelihood(grid + torch.round(means), scales.expand(grid.shape[0], -1), means)
    # each of the 4001 bins is floored at the likelihood bound 1e-9: the sum exceeds 1 by < 4.1e-6
    torch.testing.assert_close(p.sum(dim=0), torch.ones(5, dtype=torch.float64), atol=5e-6, rtol=0)
    # far tails and tiny scales: bounded likelihood, finite gradients
    y = torch.tensor([0.0, 1e4, -1e4, 0.4], requires_grad=True)
    s = torch.tensor([1e-3, 0.2, 50.0, 1e-6], requires_grad=True)
    lik = gc.likelihood(y, s)
    assert (lik >= 1e-9).all() and (lik <= 1).all()
    (-torch.log2(lik)).sum().backward()
    assert torch.isfinite(y.grad).all() and torch.isfinite(s.grad).all()


def test_training_adds_noise_and_eval_rounds_around_the_means():
    gc = GaussianConditional()
    y = torch.full((2, 3, 4, 4), 0.3)
    means = torch.full_like(y, 0.6)
    scales = torch.full_like(y, 2.0)
    y_noisy, bits = gc(y, scales, means, training=True)
    assert not torch.equal(y_noisy, torch.round(y_noisy)) and bits.shape == (2,)
    y_hat, bits = gc(y, scales, means, training=False)
    symbols = gc.symbols(y, means)
    assert symbols.dtype == torch.int64 and torch.equal(symbols, torch.zeros_like(symbols))  # round(-0.3)
    torch.testing.assert_close(y_hat, gc.reconstruct(symbols, means))
    torch.testing.assert_close(y_hat, means)
    assert bits.shape == (2,) and (bits > 0).all()


def test_indexes_map_to_table_scales_with_a_gradient():
    gc = GaussianConditional()
    idx = torch.tensor([0.0, 10.0, 63.0], requires_grad=True)
    s = gc.scales_from_indexes(idx)
    torch.testing.assert_close(s, gc.scale_table[[0, 10, 63]].float())
    s.sum().backward()
    assert (idx.grad > 0).all()
    int_idx = torch.tensor([[1, 2], [3, 63]])
    torch.testing.assert_close(gc.scales_from_indexes(int_idx), gc.scale_table[int_idx].float())


def test_estimated_bits_match_the_range_coded_payload():
    gc = GaussianConditional().eval()
    tables = gc.tables()
    assert tables.sha256 == gaussian_tables(scale_table()).sha256
    g = torch.Generator().manual_seed(0)
    indexes = torch.randint(8, 56, (2, 4, 32, 32), generator=g)
    scales = gc.scales_from_indexes(indexes)
    means = torch.randn(indexes.shape, generator=g) * 3
    y = means + torch.randn(indexes.shape, generator=g) * scales
    _, bits = gc(y, scales, means)
    symbols = gc.symbols(y, means)
    payload = encode_symbols(symbols.numpy().reshape(-1), indexes.numpy().reshape(-1), tables)
    decoded = decode_symbols(payload, indexes.numpy().reshape(-1), tables).reshape(symbols.shape)
    np.testing.assert_array_equal(decoded, symbols.numpy())
    estimate = float(bits.sum())
    assert abs(8 * len(payload) - estimate) <= 0.01 * estimate + 64


def test_indexes_to_scales_gradient_is_the_centred_log_difference_of_the_table():
    """Docstring contract of ``indexes_to_scales``: the value is exactly ``table[round(i)]`` and the
    gradient is d scale / d index = scale * (log t[k+1] - log t[k-1]) / 2 inside the table, the
    one-sided difference (log t[1] - log t[0], log t[n-1] - log t[n-2]) at its ends. Checked in
    float64 against that formula written out here, on an unevenly spaced table so that a forward,
    backward or undivided difference gives a different number."""
    table = torch.tensor([0.11, 0.2, 0.5, 0.6, 1.5, 4.0, 4.5], dtype=torch.float64)
    t = table.numpy()
    n = t.size
    idx = torch.tensor([0.0, 0.4, 1.0, 2.2, 2.6, 3.0, 4.0, 5.49, 6.0], dtype=torch.float64, requires_grad=True)
    s = indexes_to_scales(idx, table)
    k = np.clip(np.round(idx.detach().numpy()), 0, n - 1).astype(int)
    np.testing.assert_array_equal(s.detach().numpy(), t[k])
    grad = torch.autograd.grad(s.sum(), idx)[0].numpy()
    expected = []
    for j in k:
        lo, hi = max(j - 1, 0), min(j + 1, n - 1)
        expected.append(t[j] * (np.log(t[hi]) - np.log(t[lo])) / (hi - lo))
    np.testing.assert_allclose(grad, expected, rtol=1e-12)
    # a weighted loss: the chain rule carries the upstream gradient through unchanged
    w = torch.linspace(-2.0, 3.0, idx.numel(), dtype=torch.float64)
    grad_w = torch.autograd.grad((w * indexes_to_scales(idx, table)).sum(), idx)[0].numpy()
    np.testing.assert_allclose(grad_w, w.numpy() * np.array(expected), rtol=1e-12)


# ---------------------------------------------------------------- the Laplace family
def _laplace_bin_mass(v: np.ndarray, mean: float, b: float) -> np.ndarray:
    """Independent reference: scipy's Laplace CDF differenced over the unit bin around v."""
    from scipy.stats import laplace

    return laplace.cdf(v + 0.5, loc=mean, scale=b) - laplace.cdf(v - 0.5, loc=mean, scale=b)


@pytest.mark.parametrize("b", [0.11, 0.4, 2.0, 37.0])
def test_laplace_likelihood_is_the_laplace_bin_mass(b):
    gc = GaussianConditional(family="laplace")
    rng = np.random.default_rng(3)
    mean = 0.37
    v = np.concatenate([np.round(rng.laplace(mean, b, 200)) + rng.uniform(-0.5, 0.5, 200), [mean, mean + 0.49]])
    got = gc.likelihood(torch.from_numpy(v), torch.full((v.size,), b, dtype=torch.float64),
                        torch.full((v.size,), mean, dtype=torch.float64)).numpy()
    want = np.maximum(_laplace_bin_mass(v, mean, b), 1e-9)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    # a distribution over the integer grid, whatever the mean
    grid = torch.arange(-3000, 3001, dtype=torch.float64)
    p = gc.likelihood(grid + 0.0, torch.full_like(grid, b), torch.full_like(grid, 0.25))
    assert abs(float(p.sum()) - 1) < 7e-6


def test_laplace_tables_follow_the_laplace_pmf_and_tail():
    from lcodec.entropy.gaussian import laplace_tables

    scales = scale_table(16, 0.11, 64.0)
    tables = laplace_tables(scales, tail_mass=1e-6)
    for t, b in enumerate(scales):
        half = -int(tables.offsets[t])
        assert half == max(1, math.ceil(b * math.log(1e6) - 0.5))  # P(|X| > K + 1/2) <= 1e-6
        row = tables.counts[t, : tables.lengths[t]].astype(np.float64)
        assert row.sum() == 2**16 and row.min() >= 1 and tables.lengths[t] == 2 * half + 2
        pmf = _laplace_bin_mass(np.arange(-half, half + 1, dtype=np.float64), 0.0, b)
        # quantized to 16 bits (every entry >= 1 count): coding Laplace symbols with the table
        # costs at most 0.3% more than their entropy (KL divergence of the pmf from the table)
        q = row[:-1] / 2**16
        entropy, kl = float(-(pmf * np.log2(pmf)).sum()), float((pmf * np.log2(pmf / q)).sum())
        assert kl <= 0.003 * entropy + 1e-3, (b, kl, entropy)
    gc = GaussianConditional(scales, family="laplace", tail_mass=1e-6)
    assert gc.tables().sha256 == tables.sha256 != gaussian_tables(scales, 1e-6).sha256
    with pytest.raises(ModelError, match="family"):
        GaussianConditional(family="cauchy")


def test_laplace_samples_cost_their_entropy_and_round_trip():
    from lcodec.entropy.gaussian import laplace_tables

    rng = np.random.default_rng(4)
    scales = scale_table(16, 0.11, 64.0)
    indexes = rng.integers(0, 16, 30000)
    symbols = np.round(rng.laplace(0.0, scales[indexes])).astype(np.int64)
    symbols[::997] = 5000  # escapes
    tables = laplace_tables(scales, tail_mass=1e-6)
    payload = encode_symbols(symbols, indexes, tables)
    np.testing.assert_array_equal(decode_symbols(payload, indexes, tables), symbols)
    gc = GaussianConditional(scales, family="laplace")
    ideal = -np.log2(_laplace_bin_mass(symbols.astype(np.float64), 0.0, scales[indexes]).clip(1e-300))
    normal = symbols != 5000
    coded = tables.information_content(symbols[normal], indexes[normal])
    assert abs(coded - ideal[normal].sum()) <= 0.01 * ideal[normal].sum()
    est = -torch.log2(gc.likelihood(torch.from_numpy(symbols[normal]).double(),
                                    torch.from_numpy(scales[indexes[normal]]))).sum()
    assert abs(float(est) - ideal[normal].sum()) <= 1e-6 * ideal[normal].sum()


@pytest.mark.parametrize("scales,tail", [([], 1e-6), ([1.0, 0.0], 1e-6), ([1.0, -2.0], 1e-6), ([float("inf")], 1e-6),
                                         ([float("nan")], 1e-6), ([1.0], 0.0), ([1.0], 1.0), ([1.0], 1.5)])
def test_laplace_tables_refuse_bad_scales_and_tail_mass(scales, tail):
    from lcodec.entropy.gaussian import laplace_tables

    with pytest.raises(ModelError, match="scales|tail_mass"):
        laplace_tables(scales, tail_mass=tail)


def test_laplace_tables_keep_at_least_one_symbol_each_side():
    """K = max(1, ceil(b ln(1/tail) - 1/2)): a scale so small that K would be 0 still codes -1, 0, 1."""
    from lcodec.entropy.gaussian import laplace_tables

    tables = laplace_tables([0.04, 0.05], tail_mass=1e-5)  # b ln(1e5) - 1/2 = -0.04 and +0.08
    assert list(tables.offsets) == [-1, -1] and list(tables.lengths) == [4, 4]
