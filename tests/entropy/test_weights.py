"""The weights entropy model of codecs fitted at encode time (lcodec.entropy.weights): exact coding
with in-stream tables, and the fitting loss's rate estimate against an independent Laplace."""
import math

import numpy as np
import pytest
import torch

from lcodec.entropy.weights import (MAX_ENTRIES, TABLE_PRECISION, WeightPrior, decode_integer_tensors,
                                    encode_integer_tensors, uniform_counts)
from lcodec.errors import BitstreamError


def _tensors(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    laplace = torch.distributions.Laplace(0.0, 3.0).sample((40, 30)).round().to(torch.int64)
    wide = torch.randint(-5000, 5000, (64,), generator=g)  # wider than one table: escapes
    outliers = torch.zeros(500, dtype=torch.int64)
    outliers[::97] = torch.tensor([10**6, -(10**6), 3, -70000, 12, 1])
    return [laplace, torch.zeros(7, 3, dtype=torch.int64), wide, outliers, torch.tensor([5]),
            torch.full((9,), -2, dtype=torch.int64), torch.randint(0, 2, (3, 3, 3), generator=g)]


def test_integer_tensors_round_trip_exactly():
    tensors = _tensors()
    data = encode_integer_tensors(tensors)
    got = decode_integer_tensors(data, [tuple(t.shape) for t in tensors])
    for a, b in zip(tensors, got):
        assert b.dtype == torch.int64 and torch.equal(a, b)


def test_tables_travel_in_the_section_and_follow_the_data():
    """No stored tables: a peaked tensor costs far fewer bits than a flat one of the same range,
    and an all-zero tensor costs only its one-byte table kind."""
    n = 4000
    peaked = torch.zeros(n, dtype=torch.int64)
    peaked[:40] = torch.arange(-20, 20)
    flat = torch.arange(n, dtype=torch.int64) % 40 - 20
    assert len(encode_integer_tensors([peaked])) < len(encode_integer_tensors([flat])) / 10
    # entropy bound for the flat tensor: n * log2(40) bits; the coder should be within a few percent + tables
    assert 8 * len(encode_integer_tensors([flat])) < n * math.log2(40) * 1.03 + 8 * 64
    assert len(encode_integer_tensors([torch.zeros(1000, dtype=torch.int64)])) == 1


def test_uniform_counts_sum_to_the_precision():
    for n in (1, 2, 3, 100, MAX_ENTRIES):
        c = uniform_counts(n)
        assert c.size == n + 1 and c.sum() == 1 << TABLE_PRECISION and c.min() >= 1
        assert c.max() - c.min() <= 1


def test_damaged_sections_raise_bitstream_errors():
    tensors = _tensors()
    shapes = [tuple(t.shape) for t in tensors]
    data = encode_integer_tensors(tensors)
    for bad in (b"", data[:3], bytes([7]) + data[1:], bytes([0, 0x80])):
        with pytest.raises(BitstreamError):
            decode_integer_tensors(bad, shapes)
    # a histogram whose counts exceed the precision
    with pytest.raises(BitstreamError, match="precision|entries"):
        decode_integer_tensors(bytes([0, 0, 2, 0xFF, 0x7F, 1]), [(4,)])


def _reference_bits(v: np.ndarray, b: float) -> float:
    """-log2 of the Laplace(0, b) mass of [v - 1/2, v + 1/2], from its CDF (no shared code)."""
    def cdf(t):
        return np.where(t < 0, 0.5 * np.exp(t / b), 1 - 0.5 * np.exp(-t / b))

    return float(-np.log2(cdf(v + 0.5) - cdf(v - 0.5)).sum())


@pytest.mark.parametrize("b", [0.3, 2.0, 15.0])
def test_rate_estimate_is_the_laplace_bin_mass(b):
    prior = WeightPrior(1, init_scale=b)
    v = torch.tensor([0.0, 0.2, -0.4, 0.5, -0.7, 1.0, 3.3, -12.0], dtype=torch.float64)
    got = prior.bits([v.float()], noise=False).item()
    assert got == pytest.approx(_reference_bits(v.numpy(), b), rel=1e-4)


def test_rate_estimate_has_finite_gradients_far_in_the_tails():
    """Large weights (a fitted network's integers reach thousands) must not turn the gradient into
    NaN (an exp overflowing in the unused branch of a select does)."""
    prior = WeightPrior(1, init_scale=0.2)
    v = torch.tensor([0.1, 40.0, -900.0, 5000.0], requires_grad=True)
    bits = prior.bits([v])
    bits.backward()
    assert torch.isfinite(bits) and torch.isfinite(v.grad).all() and torch.isfinite(prior.log_scale.grad).all()
    assert v.grad[1] > 0 and v.grad[2] < 0  # bigger magnitude, more bits
