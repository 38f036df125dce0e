import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.entropy import GaussianMixtureConditional, MixtureParams, mix_counts, quantize_weights
from lcodec.errors import InputError, ModelError


@pytest.fixture(scope="module")
def model() -> GaussianMixtureConditional:
    m = GaussianMixtureConditional()
    m.export()
    return m


def random_params(model, rng, shape=(2, 3, 4, 5, 6), mean_scale=3.0) -> MixtureParams:
    ns = model.scale_table.numel()
    logits = rng.normal(size=shape) * 2
    return MixtureParams(quantize_weights(logits, model.weight_bits, axis=1),
                         np.round(rng.normal(size=shape) * mean_scale * model.mean_steps).astype(np.int64),
                         rng.integers(0, ns, size=shape))


def test_bank_rows_are_valid(model):
    bank = model.bank()
    assert bank.shape == (model.num_mean_bins, model.scale_table.numel(), 2 * model.support + 2)
    assert (bank.sum(axis=-1) == 2**16).all() and bank.min() >= 1


def test_quantize_weights_sum_exactly():
    rng = np.random.default_rng(0)
    w = quantize_weights(rng.normal(size=(50, 5, 7)) * 10, 8, axis=1)
    assert (w >= 0).all() and (w.sum(axis=1) == 256).all()


def test_mixed_tables_valid_for_random_params(model):
    rng = np.random.default_rng(1)
    params = random_params(model, rng)
    tables, idx = model.build_tables(params)  # CodingTables validates sums and >= 1 itself
    assert idx.shape == (2, 4, 5, 6) and idx.max() < tables.num_tables
    assert (tables.counts.sum(axis=1) == 2**16).all() and tables.counts.min() >= 1
    # extreme weights: all mass on one component, zero weights elsewhere, huge mean spread
    bank = model.bank()
    comp = bank[rng.integers(0, bank.shape[0], (100, 4)), rng.integers(0, bank.shape[1], (100, 4))]
    w = np.zeros((100, 4), dtype=np.int64)
    w[:, 0] = 255
    w[np.arange(100), rng.integers(0, 4, 100)] += 1
    mixed = mix_counts(comp, w, 8)
    assert (mixed.sum(axis=1) == 2**16).all() and mixed.min() >= 1


def test_k1_mixture_equals_component_table(model):
    rng = np.random.default_rng(2)
    shape = (1, 1, 3, 4, 4)
    params = MixtureParams(np.full(shape, 256, dtype=np.int64),
                           rng.integers(-40, 40, size=shape), rng.integers(0, 32, size=shape))
    tables, idx = model.build_tables(params)
    c = model.centres(params)
    half = model.mean_range * model.mean_steps
    mbin = np.clip(params.mean_q[:, 0] - c * model.mean_steps, -half, half) + half
    bank = model.bank()
    np.testing.assert_array_equal(tables.counts[idx], bank[mbin, params.scale_idx[:, 0]])


def test_component_order_and_zero_weights_do_not_change_tables(model):
    rng = np.random.default_rng(3)
    p = random_params(model, rng)
    perm = np.array([2, 0, 1])
    q = MixtureParams(p.weights[:, perm], p.mean_q[:, perm], p.scale_idx[:, perm])
    t1, i1 = model.build_tables(p)
    t2, i2 = model.build_tables(q)
    np.testing.assert_array_equal(t1.counts[i1], t2.counts[i2])


_SUBPROCESS = """
import numpy as np, sys
from lcodec.entropy import GaussianMixtureConditional, MixtureParams, quantize_weights
m = GaussianMixtureConditional(); m.export()
rng = np.random.default_rng(7)
shape = (2, 3, 4, 5, 6)
p = MixtureParams(quantize_weights(rng.normal(size=shape) * 2, 8, axis=1),
                  np.round(rng.normal(size=shape) * 12).astype(np.int64), rng.integers(0, 32, size=shape))
t, i = m.build_tables(p)
import hashlib
print(t.sha256, hashlib.sha256(t.counts[i].astype('<i8').tobytes()).hexdigest(), m.bank().sum())
"""


def test_mixing_is_reproducible_in_subprocess(model):
    rng = np.random.default_rng(7)
    shape = (2, 3, 4, 5, 6)
    p = MixtureParams(quantize_weights(rng.normal(size=shape) * 2, 8, axis=1),
                      np.round(rng.normal(size=shape) * 12).astype(np.int64), rng.integers(0, 32, size=shape))
    t, i = model.build_tables(p)
    t_again, i_again = model.build_tables(p)
    assert t.sha256 == t_again.sha256 and np.array_equal(i, i_again)
    # batch composition: coding one item alone gives the same per-latent tables
    p0 = MixtureParams(p.weights[1:], p.mean_q[1:], p.scale_idx[1:])
    t0, i0 = model.build_tables(p0)
    np.testing.assert_array_equal(t0.counts[i0], t.counts[i[1:]])
    import hashlib

    out = subprocess.run([sys.executable, "-c", _SUBPROCESS], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=60)
    sha, per_latent, banksum = out.stdout.split()
    assert sha == t.sha256
    assert per_latent == hashlib.sha256(t.counts[i].astype("<i8").tobytes()).hexdigest()
    assert int(banksum) == model.bank().sum()


def _float_mixture_pmf(v, w, mu, s):
    """float64 mass of integer v under sum_k w_k N(mu_k, s_k) convolved with the unit box."""
    from scipy import special

    cdf = lambda x: 0.5 * special.erfc(-x / np.sqrt(2))  # noqa: E731
    return (w * (cdf((v[..., None] - mu + 0.5) / s) - cdf((v[..., None] - mu - 0.5) / s))).sum(-1)


def _two_component(model, n, seed):
    rng = np.random.default_rng(seed)
    w0 = rng.integers(40, 216, n)
    weights = np.stack([w0, 256 - w0], axis=1)
    mean_q = np.stack([rng.integers(-12, 12, n), rng.integers(-12, 12, n) + 24], axis=1)  # modes ~6 apart
    sidx = rng.integers(4, 22, (n, 2))
    shape = (1, 2, n)
    params = MixtureParams(weights.T.reshape(shape), mean_q.T.reshape(shape), sidx.T.reshape(shape))
    table = model.scale_table.numpy()
    w, mu, s = weights / 256.0, mean_q / model.mean_steps, table[sidx]
    comp = rng.random(n) < w[:, 1]
    y = np.where(comp, mu[:, 1] + s[:, 1] * rng.normal(size=n), mu[:, 0] + s[:, 0] * rng.normal(size=n))
    return params, np.round(y).reshape(1, n), (w, mu, s)


def test_round_trip_two_components_with_escapes(model):
    params, y, _ = _two_component(model, 3000, seed=11)
    y = y.copy()
    y[0, :5] = [500.0, -700.0, 65.0, -66.0, 1e6]  # out of [-R, R] around the centre: escapes
    data = model.encode(torch.from_numpy(y), params)
    y_hat = model.decode(data, params)
    np.testing.assert_array_equal(y_hat.numpy().astype(np.float64), y)
    # lower-level path: symbols and indexes through the shared coder
    tables, idx = model.build_tables(params)
    sym = y.astype(np.int64) - model.centres(params)
    assert np.array_equal(decode_symbols(encode_symbols(sym, idx, tables), idx, tables), sym.reshape(-1))


def test_coded_size_close_to_float_mixture_information(model):
    n = 20000
    params, y, (w, mu, s) = _two_component(model, n, seed=5)
    # a realistic number of distinct tables: parameters repeat (as quantized side info does)
    rep = np.arange(n) % 400
    params = MixtureParams(params.weights[..., rep], params.mean_q[..., rep], params.scale_idx[..., rep])
    w, mu, s = w[rep], mu[rep], s[rep]
    rng = np.random.default_rng(6)
    comp = rng.random(n) < w[:, 1]
    y = np.round(np.where(comp, mu[:, 1] + s[:, 1] * rng.normal(size=n),
                          mu[:, 0] + s[:, 0] * rng.normal(size=n))).reshape(1, n)
    ideal = float(-np.log2(_float_mixture_pmf(y[0], w, mu, s)).sum())
    data = model.encode(y, params)
    real = 8 * len(data)
    assert real == pytest.approx(ideal, rel=0.03)
    tables, idx = model.build_tables(params)
    est = tables.information_content(y.astype(np.int64) - model.centres(params), idx)
    assert est == pytest.approx(ideal, rel=0.01)


def test_training_likelihood_sums_to_one_and_has_gradients(model):
    torch.manual_seed(0)
    B, K, C = 1, 3, 4
    logits = torch.randn(B, K, C, 1, 1, dtype=torch.float64, requires_grad=True)
    means = (torch.randn(B, K, C, 1, 1, dtype=torch.float64) * 3).requires_grad_()
    scales = (torch.rand(B, K, C, 1, 1, dtype=torch.float64) * 4 + 0.3).requires_grad_()
    v = torch.arange(-200, 201, dtype=torch.float64).view(1, 1, 1, -1).expand(B, C, 1, 401)
    expand = lambda t: t.expand(B, K, C, 1, 401)  # noqa: E731
    lik = model.likelihood(v, expand(logits), expand(means), expand(scales))
    torch.testing.assert_close(lik.sum(-1), torch.ones(B, C, 1, dtype=torch.float64), atol=1e-6, rtol=0)

    y = torch.randn(2, C, 8, 8) * 3
    p = lambda: (torch.randn(2, K, C, 8, 8, requires_grad=True), torch.randn(2, K, C, 8, 8, requires_grad=True),  # noqa
                 (torch.rand(2, K, C, 8, 8) * 3 + 0.2).requires_grad_())
    lg, mu, sc = p()
    y_tilde, bits = model(y, lg, mu, sc, training=True)
    assert bits.shape == (2,) and torch.isfinite(bits).all() and (bits > 0).all()
    assert ((y_tilde - y).abs() <= 0.5).all()
    bits.sum().backward()
    for t in (lg, mu, sc):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    y_eval, _ = model(y, lg, mu, sc, training=False)
    assert torch.equal(y_eval, torch.round(y))


def test_invalid_params_raise(model):
    rng = np.random.default_rng(0)
    p = random_params(model, rng)
    bad = MixtureParams(p.weights + 1, p.mean_q, p.scale_idx)
    with pytest.raises(InputError):
        model.build_tables(bad)
    with pytest.raises(ModelError):
        model.build_tables(p, max_tables=3)
    with pytest.raises(ModelError):
        GaussianMixtureConditional().bank()


def test_state_dict_round_trip_keeps_bank(model):
    fresh = GaussianMixtureConditional()
    fresh.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(fresh.bank(), model.bank())
    assert math.isclose(float(fresh.scale_table[-1]), 20.0)
