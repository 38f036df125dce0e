"""The factorized prior's density network, likelihood and exported tables against references
written here from Ballé et al. 2018 (appendix 6.1): per channel, the CDF's logit is
H_K(...H_1(y)), H_k(v) = softplus(M_k) v + b_k (+ tanh(a_k) * tanh(.) for k < K)."""
import math

import numpy as np
import pytest
import torch

from lcodec.entropy.factorized import FactorizedPrior


def randomised(channels=3, filters=(3, 3, 3), seed=0) -> FactorizedPrior:
    torch.manual_seed(seed)
    prior = FactorizedPrior(channels, filters)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return prior


def reference_logit(prior: FactorizedPrior, c: int, y: np.ndarray) -> np.ndarray:
    """The density network of channel c at the points y, in numpy float64."""
    softplus = lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)  # noqa: E731
    v = np.asarray(y, dtype=np.float64)[None, :]  # (1, N)
    layers = len(prior.matrices)
    for k in range(layers):
        m = prior.matrices[k].detach().double().numpy()[c]
        b = prior.biases[k].detach().double().numpy()[c]
        v = softplus(m) @ v + b
        if k < layers - 1:
            a = prior.factors[k].detach().double().numpy()[c]
            v = v + np.tanh(a) * np.tanh(v)
    return v[0]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("filters", [(3, 3, 3), (2, 4)])
def test_cdf_network_matches_the_paper(filters):
    prior = randomised(filters=filters).double()
    y = np.linspace(-6, 6, 25)
    v = torch.from_numpy(y).expand(3, 1, -1).contiguous()
    got = prior._logits_cdf(v).detach().numpy()
    assert got.shape == (3, 1, 25)
    for c in range(3):
        np.testing.assert_allclose(got[c, 0], reference_logit(prior, c, y), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("init_scale,filters", [(10.0, (3, 3, 3)), (2.0, (3, 3, 3)), (4.0, (5,))])
def test_initial_density_is_a_logistic_of_width_init_scale(init_scale, filters):
    """With the factors at 0 the network is linear: slope prod softplus(M_k) = 1 / init_scale."""
    torch.manual_seed(0)
    prior = FactorizedPrior(2, filters, init_scale=init_scale).double()
    assert len(prior.matrices) == len(filters) + 1 and len(prior.factors) == len(filters)
    assert [tuple(m.shape) for m in prior.matrices] == [(2, o, i) for i, o in zip((1, *filters), (*filters, 1))]
    assert all(float(f.detach().abs().sum()) == 0 for f in prior.factors)
    assert all(float(b.detach().abs().max()) <= 0.5 for b in prior.biases)
    y = torch.tensor([-3.0, 0.0, 5.0], dtype=torch.float64)
    v = y.expand(2, 1, -1).contiguous()
    logit = prior._logits_cdf(v).detach()
    slope = (logit[..., 2] - logit[..., 0]) / 8.0
    torch.testing.assert_close(slope, torch.full_like(slope, 1 / init_scale), rtol=1e-6, atol=0)  # float32 init
    # the default is init_scale = 10
    default = FactorizedPrior(1).double()
    lg = default._logits_cdf(torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)).detach()
    assert float(lg[0, 0, 1] - lg[0, 0, 0]) == pytest.approx(0.1, rel=1e-6)


def test_likelihood_is_the_cdf_difference_per_channel_and_floored():
    prior = randomised(channels=3).double()
    torch.manual_seed(1)
    y = torch.randn(2, 3, 4, 5, dtype=torch.float64) * 4
    y[0, 1, 0, 0] = 400.0  # far in a tail: floored at 1e-9
    got = prior.likelihood(y).detach().numpy()
    assert got.shape == (2, 3, 4, 5)
    for c in range(3):
        vals = y[:, c].reshape(-1).numpy()
        ref = sigmoid(reference_logit(prior, c, vals + 0.5)) - sigmoid(reference_logit(prior, c, vals - 0.5))
        ref = np.maximum(np.abs(ref), 1e-9)
        np.testing.assert_allclose(got[:, c].reshape(-1), ref, rtol=1e-7, atol=1e-15)
    assert got[0, 1, 0, 0] == pytest.approx(1e-9)


def test_likelihood_keeps_relative_precision_in_both_tails():
    """Far in the upper tail sigmoid(upper) - sigmoid(lower) cancels; the mirrored evaluation does not."""
    torch.manual_seed(0)
    prior = FactorizedPrior(1, init_scale=1.0).double()
    with torch.no_grad():
        for b in prior.biases:
            b.zero_()
    for y0 in (18.0, -18.0):  # logistic(0, 1): mass of [y0 - 1/2, y0 + 1/2] ~ e^-18 (1 - e^-1) ...
        p = float(prior.likelihood(torch.tensor([[y0]], dtype=torch.float64)).detach())
        a, b = abs(y0) - 0.5, abs(y0) + 0.5
        exact = 1 / (1 + math.exp(a)) - 1 / (1 + math.exp(b))
        assert p == pytest.approx(exact, rel=1e-6)


def test_forward_modes():
    prior = randomised(channels=2)
    y = torch.randn(3, 2, 4) * 3
    prior.eval()
    y_t, bits = prior(y)
    assert torch.equal(y_t, torch.round(y))
    torch.testing.assert_close(bits, -torch.log2(prior.likelihood(torch.round(y))).flatten(1).sum(1))
    prior.train()
    y_n, _ = prior(y)
    d = y_n - y
    assert d.abs().max() <= 0.5 and d.std() > 0.2
    y_e, _ = prior(y, training=False)
    assert torch.equal(y_e, torch.round(y))
    prior.eval()
    y_tr, _ = prior(y, training=True)
    assert not torch.equal(y_tr, torch.round(y))


@pytest.mark.parametrize("tail_mass", [1e-7, 1e-3])
def test_exported_tables_hold_the_smallest_range_and_the_cdf_differences(tail_mass):
    prior = randomised(channels=3)
    with torch.no_grad():  # channel widths ~2, ~10, ~40
        for c, w in enumerate((2.0, 10.0, 40.0)):
            prior.matrices[0][c].mul_(0.0).add_(math.log(math.expm1(1 / w)))
    tables = prior.export_tables(tail_mass=tail_mass)
    assert prior.matrices[0].dtype == torch.float32  # the module goes back to float32
    p64 = prior.double()
    for c in range(3):
        lo, n = int(tables.offsets[c]), int(tables.lengths[c]) - 1  # symbols lo .. lo + n - 1, then the escape
        cdf = lambda x: sigmoid(reference_logit(p64, c, np.asarray(x, dtype=np.float64)))  # noqa: E731
        # all but tail_mass inside, and no smaller interval would do: dropping an end leaves too much out
        below, above = cdf([lo - 0.5])[0], 1 - cdf([lo + n - 0.5])[0]
        assert below <= tail_mass / 2 + 1e-12 and above <= tail_mass / 2 + 1e-12
        assert cdf([lo + 0.5])[0] > tail_mass / 2 or 1 - cdf([lo + n - 1.5])[0] > tail_mass / 2
        pmf = np.diff(cdf(np.arange(lo, lo + n + 1) - 0.5))
        counts = tables.counts[c, :n].astype(np.float64)
        total = float(1 << tables.precision)
        # quantize_pmf: p * (total - entries) + 1, plus at most 2 settling counts
        diff = counts - pmf * total
        assert (diff <= 3).all() and (diff >= -pmf * (n + 1) - 1e-9).all()
    prior.float()


def test_export_clips_the_range_to_max_symbols():
    torch.manual_seed(0)
    wide = FactorizedPrior(1, init_scale=500.0)  # far wider than 64 symbols
    tables = wide.export_tables(max_symbols=64)
    assert int(tables.offsets[0]) >= -32 and int(tables.offsets[0]) + int(tables.lengths[0]) - 1 <= 33
    # the mass beyond the grid is in the escape entry
    assert tables.counts[0, int(tables.lengths[0]) - 1] > 0.5 * (1 << tables.precision)
