"""Contract tests for ``lcodec.entropy.mixture`` written against mutation run 5's survivors.

Each quantity is checked against an independent reference computed here (scipy's normal
distribution, a plain-loop largest-remainder rounding), not against the module's own output.
"""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from lcodec.entropy import GaussianMixtureConditional, MixtureParams, component_bank, quantize_weights
from lcodec.entropy.gaussian import LIKELIHOOD_BOUND, scale_table
from lcodec.entropy.mixture import _quantize_weights_torch, _tail
from lcodec.errors import InputError, ModelError
from tests.entropy.test_mixture import random_params


def reference_bank_pmf(scales, mean_steps, mean_range, support):
    """Float PMFs (2M + 1, S, 2R + 2) of N(mu, s) over the unit bins -R..R plus the escape mass."""
    m_half = mean_range * mean_steps
    out = np.empty((2 * m_half + 1, len(scales), 2 * support + 2))
    v = np.arange(-support, support + 1)
    for j in range(2 * m_half + 1):
        mu = (j - m_half) / mean_steps
        for t, s in enumerate(scales):
            out[j, t, :-1] = stats.norm.cdf(v + 0.5, mu, s) - stats.norm.cdf(v - 0.5, mu, s)
            out[j, t, -1] = stats.norm.cdf(-support - 0.5, mu, s) + stats.norm.sf(support + 0.5, mu, s)
    return out


def assert_counts_match(counts, pmf, precision=16):
    """quantize_pmf's contract: each count is p * (2**P - n) + 1 plus at most two settling counts."""
    n = pmf.shape[-1]
    expected = pmf * ((1 << precision) - n) + 1
    assert (counts.sum(axis=-1) == 1 << precision).all()
    assert np.abs(counts - expected).max() <= 3.0


@pytest.mark.parametrize("mean_steps,mean_range,support", [(4, 2, 16), (2, 1, 6), (1, 0, 3)])
def test_component_bank_matches_scipy_normal_bins_and_escape(mean_steps, mean_range, support):
    scales = np.array([0.11, 0.4, 1.3, 4.0, 9.0])  # small to wide: wide ones put mass in the escape
    bank = component_bank(scales, mean_steps, mean_range, support)
    ref = reference_bank_pmf(scales, mean_steps, mean_range, support)
    assert bank.shape == ref.shape and bank.dtype == np.int64
    assert_counts_match(bank, ref)
    assert ref[..., -1].max() > 0.05  # the escape entry is really exercised by this grid


def test_component_bank_defaults_are_quarter_steps_over_plus_minus_8_and_support_64():
    scales = np.array([0.5, 2.0])
    bank = component_bank(scales)
    assert bank.shape == (2 * 8 * 4 + 1, 2, 2 * 64 + 2)
    assert_counts_match(bank, reference_bank_pmf(scales, 4, 8, 64))
    assert_counts_match(component_bank([[0.5], [2.0]]), reference_bank_pmf(scales, 4, 8, 64))  # any shape


@pytest.mark.parametrize("scales", [[], [1.0, np.inf], [1.0, np.nan], [0.0, 1.0], [-1.0, 1.0]])
def test_component_bank_rejects_bad_scales(scales):
    with pytest.raises(ModelError, match="positive finite scales"):
        component_bank(np.array(scales, dtype=np.float64))


def test_component_bank_grid_limits():
    component_bank([1.0], mean_steps=1, mean_range=0, support=1, precision=8)  # the smallest legal grid
    component_bank([1.0], support=63, precision=8)  # 2R + 2 = 128 = 2**8 / 2: the largest table allowed
    for kwargs in ({"mean_steps": 0}, {"mean_range": -1}, {"support": 0}, {"support": 64, "precision": 8}):
        with pytest.raises(ModelError, match="invalid mean grid or support"):
            component_bank([1.0], **kwargs)


def test_tail_is_the_normal_survival_function():
    x = np.array([0.0, 0.3, 1.0, 2.5, 7.0])
    for sigma in (0.2, 1.0, 3.0):
        np.testing.assert_allclose(_tail(x, sigma), stats.norm.sf(x, 0.0, sigma), rtol=1e-12)


def reference_largest_remainder(p, total):
    """Plain loop: floor, then +1 to the largest fractional parts, ties to the lower index."""
    t = [pi * total for pi in p]
    w = [math.floor(x) for x in t]
    deficit = total - sum(w)
    order = sorted(range(len(p)), key=lambda i: (-(t[i] - w[i]), i))
    for i in order[:deficit]:
        w[i] += 1
    return w


def test_quantize_weights_matches_a_plain_largest_remainder_reference():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(40, 4)) * 3
    for bits in (8, 5):
        w = quantize_weights(logits, bits, axis=1)
        assert w.dtype == np.int64
        for row, lg in zip(w, logits):
            p = np.exp(lg - lg.max())
            p /= p.sum()
            assert row.tolist() == reference_largest_remainder(p.tolist(), 1 << bits)
    assert (quantize_weights(logits) == quantize_weights(logits, 8, 1)).all()  # defaults: 8 bits, axis 1


def test_quantize_weights_other_axis_and_ties_go_to_the_lower_index():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(3, 5, 4)) * 2
    np.testing.assert_array_equal(quantize_weights(logits, 8, axis=2),
                                  np.moveaxis(quantize_weights(np.moveaxis(logits, 2, 1), 8, axis=1), 1, 2))
    np.testing.assert_array_equal(quantize_weights(logits, 8, axis=-1), quantize_weights(logits, 8, axis=2))
    # equal logits: 256 / 3 = 85.33 each; the one spare count goes to component 0
    assert quantize_weights(np.zeros((1, 3)), 8).tolist() == [[86, 85, 85]]
    assert quantize_weights(np.zeros((3, 1)), 8, axis=0).ravel().tolist() == [86, 85, 85]
    # huge logits must not overflow (the max is subtracted first)
    assert quantize_weights(np.array([[1000.0, 999.0]]), 8).sum() == 256
    assert quantize_weights(np.array([[1000, 1000]], dtype=np.int64), 8).tolist() == [[128, 128]]


def test_quantize_weights_torch_equals_the_numpy_reference():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(6, 3, 2, 5)) * 2
    logits[0, :, 0, 0] = 0.0  # an exact three-way tie
    p = torch.softmax(torch.from_numpy(logits).float(), dim=1)
    w = _quantize_weights_torch(p, 8, dim=1)
    assert w.dtype == torch.float32
    np.testing.assert_array_equal(w.numpy(), quantize_weights(logits, 8, axis=1))
    w2 = _quantize_weights_torch(p.movedim(1, 3), 6, dim=3)
    np.testing.assert_array_equal(w2.numpy(), np.moveaxis(quantize_weights(logits, 6, axis=1), 1, 3))
    w_default = _quantize_weights_torch(p, 8)  # dim defaults to 1 (components)
    np.testing.assert_array_equal(w_default.numpy(), w.numpy())


def test_constructor_defaults_match_the_docstring():
    m = GaussianMixtureConditional()
    np.testing.assert_allclose(m.scale_table.numpy(), scale_table(32, 0.11, 20.0))
    assert m.scale_table.dtype == torch.float64
    assert (m.weight_bits, m.mean_steps, m.mean_range, m.support, m.precision) == (8, 4, 8, 64, 16)
    assert m.num_mean_bins == 65 and m.likelihood_bound == LIKELIHOOD_BOUND
    custom = GaussianMixtureConditional([[0.5, 1.0], [2.0, 4.0]])  # any shape, flattened
    assert custom.scale_table.tolist() == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize("scales", [[1.0], [1.0, np.inf], [0.0, 1.0], [-1.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
def test_constructor_rejects_bad_scale_tables(scales):
    with pytest.raises(ModelError, match="strictly increasing scales"):
        GaussianMixtureConditional(scales)


def test_constructor_parameter_limits():
    for ok in ({"weight_bits": 1}, {"weight_bits": 16}, {"mean_steps": 1}, {"mean_range": 0}, {"support": 1}):
        GaussianMixtureConditional([0.5, 1.0], **ok)
    for bad in ({"weight_bits": 0}, {"weight_bits": 17}, {"mean_steps": 0}, {"mean_range": -1}, {"support": 0}):
        with pytest.raises(ModelError, match="invalid weight_bits"):
            GaussianMixtureConditional([0.5, 1.0], **bad)


def reference_likelihood(y, logits, means, scales, table, bits, steps, quantize):
    """Mixture mass of [y - 1/2, y + 1/2] from scipy, with the coded (integer) parameters if asked."""
    y, logits, means, scales = (np.asarray(a, dtype=np.float64) for a in (y, logits, means, scales))
    if quantize:
        pi = quantize_weights(logits, bits, axis=1) / float(1 << bits)
        means = np.round(means * steps) / steps
        log_t = np.log(table)
        idx = np.searchsorted((log_t[1:] + log_t[:-1]) / 2, np.log(np.maximum(scales, table[0])))
        s = table[idx]
    else:
        pi = np.exp(logits - logits.max(axis=1, keepdims=True))
        pi /= pi.sum(axis=1, keepdims=True)
        s = np.maximum(scales, table[0])
    yy = y[:, None]
    mass = stats.norm.cdf(yy + 0.5, means, s) - stats.norm.cdf(yy - 0.5, means, s)
    return np.maximum((pi * mass).sum(axis=1), LIKELIHOOD_BOUND)


@pytest.mark.parametrize("quantize", [True, False])
def test_likelihood_matches_a_scipy_mixture(quantize):
    m = GaussianMixtureConditional()
    rng = np.random.default_rng(8)
    shape = (2, 3, 4, 5)
    y = rng.normal(size=(2, 4, 5)) * 3
    logits, means = rng.normal(size=shape) * 2, rng.normal(size=shape) * 3
    scales = np.exp(rng.uniform(np.log(0.05), np.log(30.0), size=shape))  # some below the table's floor
    got = m.likelihood(*(torch.from_numpy(a) for a in (y, logits, means, scales)), quantize=quantize)
    ref = reference_likelihood(y, logits, means, scales, m.scale_table.numpy(), 8, 4, quantize)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6, atol=1e-12)
    if quantize:  # the default quantizes: training sees the coded model
        default = m.likelihood(*(torch.from_numpy(a) for a in (y, logits, means, scales)))
        np.testing.assert_array_equal(default.numpy(), got.numpy())


def test_likelihood_gradients_flow_through_the_quantized_parameters():
    m = GaussianMixtureConditional()
    rng = np.random.default_rng(9)
    shape = (1, 2, 3, 3)
    y = torch.from_numpy(rng.normal(size=(1, 3, 3)))
    logits, means = (torch.from_numpy(rng.normal(size=shape)).requires_grad_() for _ in range(2))
    scales = torch.from_numpy(rng.uniform(0.5, 3.0, size=shape)).requires_grad_()
    m.likelihood(y, logits, means, scales).sum().backward()
    # straight-through: the gradients are those of the unquantized expression at the quantized point
    for g in (logits.grad, means.grad, scales.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_quantized_scales_value_and_log_domain_gradient():
    m = GaussianMixtureConditional()
    table = m.scale_table.numpy()
    s = torch.tensor([0.01, 0.3, 1.0, 7.7, 100.0], dtype=torch.float64, requires_grad=True)
    q = m._quantized_scales(s)
    log_t = np.log(table)
    s_np = np.maximum(s.detach().numpy(), table[0])
    ref = table[np.argmin(np.abs(log_t[None, :] - np.log(s_np)[:, None]), axis=1)]  # nearest in log space
    np.testing.assert_allclose(q.detach().numpy(), ref, rtol=1e-12)
    assert q.dtype == torch.float64
    q.sum().backward()
    inside = (s.detach() > table[0]).numpy()
    np.testing.assert_allclose(s.grad.numpy()[inside], (ref / s.detach().numpy())[inside], rtol=1e-9)
    q32 = m._quantized_scales(torch.tensor([1.0]))
    assert q32.dtype == torch.float32


def test_likelihood_rejects_mismatched_parameter_shapes():
    m = GaussianMixtureConditional()
    y = torch.zeros(2, 4, 5)
    good = torch.zeros(2, 3, 4, 5)
    bad_cases = [
        (torch.zeros(2, 2, 4, 5), good, good),  # weights differ from means
        (good, good, torch.zeros(2, 2, 4, 5)),  # scales differ from means
        (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)),  # one dim short
        (torch.zeros(1, 3, 4, 5), torch.zeros(1, 3, 4, 5), torch.zeros(1, 3, 4, 5)),  # batch differs
        (torch.zeros(2, 3, 4, 6), torch.zeros(2, 3, 4, 6), torch.zeros(2, 3, 4, 6)),  # spatial differs
    ]
    for w, mu, s in bad_cases:
        with pytest.raises(InputError, match=r"mixture params must be \(B, K, \*y.shape\[1:\]\), got .* for y "
                                             r"\(2, 4, 5\)"):
            m.likelihood(y, w, mu, s)


def test_forward_rounds_in_eval_and_adds_bounded_noise_in_training():
    m = GaussianMixtureConditional()
    rng = np.random.default_rng(10)
    y = torch.from_numpy(rng.normal(size=(2, 3, 4)) * 4)
    logits, means = torch.zeros(2, 2, 3, 4, dtype=torch.float64), torch.zeros(2, 2, 3, 4, dtype=torch.float64)
    scales = torch.full((2, 2, 3, 4), 3.0, dtype=torch.float64)
    m.eval()
    y_hat, bits = m(y, logits, means, scales)
    assert torch.equal(y_hat, torch.round(y))
    lik = m.likelihood(torch.round(y), logits, means, scales)
    torch.testing.assert_close(bits, -torch.log2(lik).flatten(1).sum(dim=1))
    y_tr, _ = m(y, logits, means, scales, training=True)
    d = y_tr - y
    assert d.abs().max() <= 0.5 and d.abs().min() > 0 and d.max() > 0.2 and d.min() < -0.2
    m.train()
    y_tr2, _ = m(y, logits, means, scales)
    assert not torch.equal(y_tr2, torch.round(y)) and (y_tr2 - y).abs().max() <= 0.5
    y_ev, _ = m(y, logits, means, scales, training=False)  # the argument overrides the module's mode
    assert torch.equal(y_ev, torch.round(y))


def test_state_dict_of_a_built_bank_loads_into_a_fresh_model_under_a_prefix():
    src = torch.nn.Sequential(GaussianMixtureConditional([0.5, 1.0, 2.0], support=8))
    src[0].export()
    dst = torch.nn.Sequential(GaussianMixtureConditional([0.5, 1.0, 2.0], support=8))
    dst.load_state_dict(src.state_dict())
    np.testing.assert_array_equal(dst[0].bank(), src[0].bank())
    with pytest.raises(RuntimeError):  # strict loading still reports missing keys
        GaussianMixtureConditional([0.5, 1.0, 2.0]).load_state_dict({}, strict=True)


# ---------------------------------------------------------------- run 5, second pass
def test_component_bank_rows_sum_to_the_requested_precision():
    bank = component_bank([0.5, 2.0], mean_steps=1, mean_range=1, support=20, precision=12)
    assert (bank.sum(axis=-1) == 1 << 12).all()
    assert_counts_match(bank, reference_bank_pmf([0.5, 2.0], 1, 1, 20), precision=12)
    small = component_bank([1.0], mean_steps=1, mean_range=0, support=1, precision=8)
    assert (small.sum(axis=-1) == 256).all()


def test_model_precision_reaches_the_mixed_tables():
    m = GaussianMixtureConditional([0.5, 1.0, 2.0], support=16, precision=12)
    m.export()
    rng = np.random.default_rng(11)
    p = MixtureParams(quantize_weights(rng.normal(size=(1, 2, 3, 4)), 8), rng.integers(-8, 8, (1, 2, 3, 4)),
                      rng.integers(0, 3, (1, 2, 3, 4)))
    tables, _ = m.build_tables(p)
    assert (tables.counts.sum(axis=1) == 1 << 12).all()
    assert m.bank().dtype == np.int64 and (m.bank().sum(axis=-1) == 1 << 12).all()


def test_quantize_weights_rows_are_stabilised_separately():
    w = quantize_weights(np.array([[1000.0, 999.0], [0.0, -1.0]]), 8)
    assert w[0].tolist() == w[1].tolist() == reference_largest_remainder(
        (np.exp([0.0, -1.0]) / np.exp([0.0, -1.0]).sum()).tolist(), 256)


def test_centres_round_the_weighted_mean_half_up():
    from fractions import Fraction
    m = GaussianMixtureConditional()
    rng = np.random.default_rng(12)
    w = quantize_weights(rng.normal(size=(3, 3, 5)) * 2, 8)
    mean_q = rng.integers(-60, 60, (3, 3, 5))
    mean_q[0, :, 0] = 2  # every mean 2/4 = 0.5: half rounds up to 1
    mean_q[0, :, 1] = -2  # -0.5 rounds up to 0
    c = m.centres(MixtureParams(w, mean_q, np.zeros_like(mean_q)))
    for b in range(3):
        for i in range(5):
            x = sum(Fraction(int(w[b, k, i]) * int(mean_q[b, k, i]), 256 * 4) for k in range(3))
            assert c[b, i] == math.floor(x + Fraction(1, 2))
    assert c[0, 0] == 1 and c[0, 1] == 0


def test_zero_weight_components_do_not_split_tables():
    m = GaussianMixtureConditional()
    m.export()
    w = np.array([[[256, 256]], [[0, 0]]])  # (B=1, K=2, N=2): component 1 has zero weight
    p1 = MixtureParams(w.reshape(1, 2, 2), np.array([[[0, 4]], [[40, -37]]]).reshape(1, 2, 2),
                       np.array([[[5, 5]], [[3, 30]]]).reshape(1, 2, 2))
    tables, idx = m.build_tables(p1)
    # means 0 and 1 are both at their integer centres: one table, shifted by the centre
    assert tables.num_tables == 1 and idx.tolist() == [[0, 0]]
    assert m.centres(p1).tolist() == [[0, 1]]
    # same first component at both latents: one table, whatever the zero-weight component holds
    p2 = MixtureParams(w.reshape(1, 2, 2), np.array([[[4, 4]], [[40, -37]]]).reshape(1, 2, 2),
                       np.array([[[5, 5]], [[3, 30]]]).reshape(1, 2, 2))
    tables2, idx2 = m.build_tables(p2)
    assert tables2.num_tables == 1 and idx2.tolist() == [[0, 0]]


def test_params_are_checked_at_their_limits():
    m = GaussianMixtureConditional()
    m.export()
    ns = m.scale_table.numel()
    good = dict(weights=np.full((1, 1, 2), 256), mean_q=np.zeros((1, 1, 2), np.int64), scale_idx=np.zeros((1, 1, 2), np.int64))
    m.build_tables(MixtureParams(**good))
    m.build_tables(MixtureParams(**{**good, "scale_idx": np.full((1, 1, 2), ns - 1)}))
    m.build_tables(MixtureParams(**{**good, "mean_q": np.full((1, 1, 2), 2**40)}))
    bad = [({"scale_idx": np.full((1, 1, 2), ns)}, "scale index or mean out of range"),
           ({"scale_idx": np.full((1, 1, 2), -1)}, "scale index or mean out of range"),
           ({"mean_q": np.full((1, 1, 2), 2**40 + 1)}, "scale index or mean out of range"),
           ({"mean_q": np.zeros((1, 1, 3), np.int64)}, "must share one shape"),
           ({"scale_idx": np.zeros((1, 1, 3), np.int64)}, "must share one shape"),
           ({"weights": np.full((1, 1, 2), 255)}, "sum to 2\\*\\*8"),
           ({"weights": np.array([[[300, 256]], [[-44, 0]]]).reshape(1, 2, 2),
             "mean_q": np.zeros((1, 2, 2), np.int64), "scale_idx": np.zeros((1, 2, 2), np.int64)}, ">= 0")]
    for change, message in bad:
        with pytest.raises(InputError, match=message):
            m.build_tables(MixtureParams(**{**good, **change}))
    with pytest.raises(InputError, match="must share one shape"):
        m.build_tables(MixtureParams(np.full(2, 256), np.zeros(2, np.int64), np.zeros(2, np.int64)))  # 1-D


def test_max_tables_is_inclusive_and_reaches_encode_and_decode():
    m = GaussianMixtureConditional()
    m.export()
    rng = np.random.default_rng(13)
    p = random_params(m, rng, shape=(1, 2, 1, 2, 3))
    tables, _ = m.build_tables(p)
    u = tables.num_tables
    assert u > 2
    m.build_tables(p, max_tables=u)
    with pytest.raises(ModelError, match=f"{u} distinct mixture tables exceed max_tables={u - 1}"):
        m.build_tables(p, max_tables=u - 1)
    y = torch.from_numpy(rng.normal(size=(1, 1, 2, 3)) * 3)
    with pytest.raises(ModelError, match="exceed max_tables"):
        m.encode(y, p, max_tables=u - 1)
    data = m.encode(y, p, max_tables=u)
    with pytest.raises(ModelError, match="exceed max_tables"):
        m.decode(data, p, max_tables=u - 1)
    out = m.decode(data, p, max_tables=u)
    assert out.dtype == torch.float32 and out.shape == (1, 1, 2, 3)
    assert torch.equal(out, torch.round(y).float())
    assert torch.equal(m.decode(m.encode(y.numpy(), p), p), out)  # numpy latents too


def test_encode_refuses_mismatched_or_non_finite_latents():
    m = GaussianMixtureConditional()
    m.export()
    p = random_params(m, np.random.default_rng(14), shape=(1, 2, 1, 2, 3))
    with pytest.raises(InputError, match=r"latents \(1, 1, 3, 2\) do not match parameters \(1, 1, 2, 3\)"):
        m.encode(torch.zeros(1, 1, 3, 2), p)
    y = torch.zeros(1, 1, 2, 3)
    y[0, 0, 1, 1] = float("nan")
    with pytest.raises(InputError, match="latents must be finite"):
        m.encode(y, p)
    with pytest.raises(ModelError, match=r"component tables not built: call export\(\)"):
        GaussianMixtureConditional().build_tables(p)


def test_likelihood_gradient_in_the_logits_is_that_of_the_soft_weights():
    m = GaussianMixtureConditional()
    rng = np.random.default_rng(15)
    shape = (1, 3, 2, 2)
    y = torch.from_numpy(rng.normal(size=(1, 2, 2)) * 2)
    logits = torch.from_numpy(rng.normal(size=shape)).requires_grad_()
    means = torch.from_numpy(rng.normal(size=shape))
    scales = torch.from_numpy(rng.uniform(0.5, 3.0, size=shape))
    m.likelihood(y, logits, means, scales).sum().backward()
    # reference: the component masses at the coded (quantized) means and scales are constants;
    # the weights' gradient is softmax's
    params = m.quantize_params(logits.detach(), means, scales)
    mu_q = torch.from_numpy(params.mean_q / 4.0)
    s_q = m.scale_table[torch.from_numpy(params.scale_idx)]
    yy = y.unsqueeze(1)
    normal = torch.distributions.Normal(mu_q, s_q)
    mass = normal.cdf(yy + 0.5) - normal.cdf(yy - 0.5)
    logits2 = logits.detach().clone().requires_grad_()
    (torch.softmax(logits2, 1) * mass).sum().backward()
    torch.testing.assert_close(logits.grad, logits2.grad, rtol=1e-6, atol=1e-12)
