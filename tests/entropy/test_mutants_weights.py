"""Contract tests for the weights entropy model's section format and table choice, written against
mutation run 5's survivors: the byte layout of the module docstring parsed by a reader written
here, the table choice against a cost computed here, and the cost estimate against real payloads."""
import math

import numpy as np
import pytest
import torch

from lcodec.bitstream import varint as V
from lcodec.bitstream.tables import quantize_pmf
from lcodec.entropy import weights as W
from lcodec.entropy.weights import (HISTOGRAM, MAX_ENTRIES, TABLE_PRECISION, UNIFORM, ZERO, WeightPrior,
                                    decode_integer_tensors, encode_integer_tensors, uniform_counts)
from lcodec.errors import BitstreamError


def leb128(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v >> 7 else 0))
        v >>= 7
        if not v:
            return bytes(out)


def read_leb128(data: bytes, pos: int) -> tuple[int, int]:
    v, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, pos


def parse_header(data: bytes, pos: int = 0):
    """(kind, lo, n, counts or None, end position) of one tensor's table (module docstring layout)."""
    kind = data[pos]
    pos += 1
    if kind == ZERO:
        return kind, None, None, None, pos
    u, pos = read_leb128(data, pos)
    lo = u // 2 if u % 2 == 0 else -(u + 1) // 2
    n, pos = read_leb128(data, pos)
    counts = None
    if kind == HISTOGRAM:
        counts = []
        for _ in range(n):
            c, pos = read_leb128(data, pos)
            counts.append(c)
    return kind, lo, n, counts, pos


def test_varints_are_leb128_and_zigzag_maps_small_magnitudes_to_small_codes():
    """lcodec.bitstream.varint, through the damaged-section message this module gives it."""
    for v in (0, 1, 127, 128, 300, 16383, 16384, 2**40 + 5):
        out = bytearray()
        V.put_varint(out, v)
        assert bytes(out) == leb128(v)
        assert V.get_varint(bytes(out) + b"\x05", 0, W._DAMAGED) == (v, len(out))
    assert leb128(300) == b"\xac\x02"
    with pytest.raises(ValueError, match="negative"):
        V.put_varint(bytearray(), -1)
    expected = {0: 0, -1: 1, 1: 2, -2: 3, 2: 4, -3: 5, 1000: 2000, -1000: 1999}
    for v, u in expected.items():
        assert V.zigzag(v) == u and V.unzigzag(u) == v
    with pytest.raises(BitstreamError, match="runs past its end"):
        V.get_varint(b"\x80\x80", 0, W._DAMAGED)
    with pytest.raises(BitstreamError, match="runs past its end"):
        V.get_varint(b"\xff" * 12, 0, W._DAMAGED)  # more than 64 bits of continuation
    with pytest.raises(BitstreamError, match="runs past its end"):
        V.get_varint(b"\xff" * 10 + b"\x01", 0, W._DAMAGED)  # an 11th byte: beyond 64 bits
    assert V.get_varint(b"\xff" * 9 + b"\x01", 0, W._DAMAGED)[0] == 2**64 - 1  # exactly 64 bits is fine


def reference_cost(s: np.ndarray, kind: int, lo: int, counts: np.ndarray) -> float:
    """Header bits + ideal code bits of s under (lo, counts with the escape last) + escape bits as
    the coder writes them (a side bit, a length class of 33, then the overshoot's bits)."""
    n = counts.size - 1
    head = 1 + len(leb128(2 * lo if lo >= 0 else -2 * lo - 1)) + len(leb128(n))
    if kind == HISTOGRAM:
        head += sum(len(leb128(int(c))) for c in counts[:-1])
    bits = 0.0
    for v in s.tolist():
        if lo <= v < lo + n:
            bits += TABLE_PRECISION - math.log2(counts[v - lo])
        else:
            d = lo - 1 - v if v < lo else v - lo - n
            bits += TABLE_PRECISION - math.log2(counts[-1]) + 1 + math.log2(33) + math.floor(math.log2(d + 1))
    return 8 * head + bits


def reference_histogram(s: np.ndarray) -> tuple[int, np.ndarray]:
    lo, hi = int(s.min()), int(s.max())
    if hi - lo + 1 > MAX_ENTRIES:
        lo, hi = (int(v) for v in np.quantile(s, [0.001, 0.999]).round())
        hi = min(hi, lo + MAX_ENTRIES - 1)
    inside = s[(s >= lo) & (s <= hi)]
    hist = np.bincount(inside - lo, minlength=hi - lo + 1).astype(np.float64)
    escaped = float(((s < lo) | (s > hi)).sum())
    return lo, quantize_pmf(np.append(hist + 1e-3, escaped + 1e-3), TABLE_PRECISION)


CASES = {
    "peaked": lambda g: np.round(g.laplace(0, 1.5, 3000)).astype(np.int64),
    "flat": lambda g: g.integers(-7, 9, 3000),
    "few": lambda g: np.array([3, -2, 5]),
    "wide": lambda g: np.concatenate([np.round(g.laplace(0, 2, 4000)), [5000, -3000, 2500]]).astype(np.int64),
    "very wide": lambda g: g.integers(-20000, 20000, 500),
    "one value": lambda g: np.full(50, -4),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_chosen_table_is_the_cheaper_of_the_two_and_its_header_is_as_documented(name):
    s = CASES[name](np.random.default_rng(3))
    data = encode_integer_tensors([torch.from_numpy(s)])
    kind, lo, n, counts, end = parse_header(data)
    assert kind in (HISTOGRAM, UNIFORM) and 1 <= n <= MAX_ENTRIES
    # both candidates, from the docstring
    lo_u = int(s.min())
    n_u = min(int(s.max()) - lo_u + 1, MAX_ENTRIES)
    uniform_cost = reference_cost(s, UNIFORM, lo_u, uniform_counts(n_u))
    lo_h, hist = reference_histogram(s)
    hist_cost = reference_cost(s, HISTOGRAM, lo_h, hist)
    if kind == UNIFORM:
        assert (lo, n) == (lo_u, n_u) and uniform_cost <= hist_cost + 1e-6
    else:
        assert lo == lo_h and counts == hist[:-1].tolist() and hist_cost <= uniform_cost + 1e-6
    # the estimate is the payload: header bytes exact, range-coded body within a few bytes
    est = min(uniform_cost, hist_cost)
    assert abs(8 * len(data) - est) <= 8 * 6 + 0.002 * est
    got = decode_integer_tensors(data, [s.shape])[0]
    np.testing.assert_array_equal(got.numpy(), s)


def test_the_library_cost_matches_the_reference_cost():
    g = np.random.default_rng(4)
    for s in (CASES["wide"](g), CASES["peaked"](g), CASES["very wide"](g)):
        for lo, counts in ((int(s.min()) + 3, uniform_counts(50)), reference_histogram(s)):
            lib = W._bits(counts, s, lo)
            n = counts.size - 1
            head_bits = 8 * (1 + len(leb128(2 * lo if lo >= 0 else -2 * lo - 1)) + len(leb128(n)))
            assert lib == pytest.approx(reference_cost(s, UNIFORM, lo, counts) - head_bits, rel=1e-12)


def test_all_zero_and_empty_tensors_take_one_byte_and_code_no_symbols():
    z = torch.zeros(5, 4, dtype=torch.int64)
    e = torch.zeros(0, dtype=torch.int64)
    assert encode_integer_tensors([z]) == bytes([ZERO]) and encode_integer_tensors([e]) == bytes([ZERO])
    kind, lo, counts, head = W._choose(np.zeros(3, dtype=np.int64))
    assert (kind, lo, counts, head) == (ZERO, 0, None, bytes([ZERO]))
    # a zero tensor between two coded ones: its values come back zero and the others keep theirs
    a, b = torch.tensor([1, -1, 2]), torch.tensor([[7, 7], [8, 9]])
    out = decode_integer_tensors(encode_integer_tensors([a, z, b]), [(3,), (5, 4), (2, 2)])
    assert torch.equal(out[0], a) and torch.equal(out[1], z) and torch.equal(out[2], b)
    assert out[1].dtype == torch.int64 and out[1].shape == (5, 4)


def test_decoder_refuses_damaged_tables_with_their_own_messages():
    shapes = [(4,)]
    with pytest.raises(BitstreamError, match="too short"):
        decode_integer_tensors(b"", shapes)
    with pytest.raises(BitstreamError, match="unknown table kind 3"):
        decode_integer_tensors(bytes([3, 0, 1]), shapes)
    with pytest.raises(BitstreamError, match=r"declares 0 entries \(1 \.\. 1024\)"):
        decode_integer_tensors(bytes([UNIFORM, 0, 0]), shapes)
    too_many = bytearray([UNIFORM, 0])
    V.put_varint(too_many, MAX_ENTRIES + 1)
    with pytest.raises(BitstreamError, match="declares 1025 entries"):
        decode_integer_tensors(bytes(too_many), shapes)
    ok = bytearray([UNIFORM, 0])
    V.put_varint(ok, MAX_ENTRIES)  # the largest table is allowed (then the payload runs out)
    with pytest.raises(BitstreamError, match="too short for the declared network weights"):
        decode_integer_tensors(bytes(ok), shapes)  # ... but its 4 symbols of 10 bits need a body
    # histogram counts: exactly the precision leaves the escape 0 counts: refused
    full = bytearray([HISTOGRAM, 0, 1])
    V.put_varint(full, 1 << TABLE_PRECISION)
    with pytest.raises(BitstreamError, match="do not sum to its precision"):
        decode_integer_tensors(bytes(full), shapes)
    # a second tensor's header missing
    one = encode_integer_tensors([torch.tensor([1, 2, 3, 4])])
    kind, lo, n, counts, end = parse_header(one)
    with pytest.raises(BitstreamError):
        decode_integer_tensors(one[:end], [(4,), (4,)])


def test_histogram_escape_entry_counts_the_values_outside_its_range():
    g = np.random.default_rng(5)
    s = np.concatenate([np.round(g.laplace(0, 3, 20000)), [9000] * 10, [-9000] * 10]).astype(np.int64)
    kind, lo, counts, head = W._choose(s)
    assert kind == HISTOGRAM and counts.size - 1 <= MAX_ENTRIES
    lo_ref, ref = reference_histogram(s)
    assert lo == lo_ref and counts.tolist() == ref.tolist()
    hi = lo + counts.size - 2
    assert hi < 9000 and lo > -9000  # the far values escape
    # the end entries count only the values that are really there (not the clipped ones)
    assert counts[0] < counts[-1] + 2**TABLE_PRECISION // 100


def test_weight_prior_defaults_and_noise():
    prior = WeightPrior(3)
    np.testing.assert_allclose(prior.log_scale.detach().numpy(), np.log([2.0, 2.0, 2.0]), rtol=1e-6)
    v = [torch.zeros(2000), torch.full((10,), 3.0)]
    exact = prior.bits(v, noise=False)
    torch.manual_seed(0)
    noisy = prior.bits(v)  # noise is the default
    assert not torch.equal(noisy, exact)
    # uniform noise in [-1/2, 1/2): the zeros' bins spread over [-1, 1]: more bits, but not many more
    assert exact < noisy < exact + 2000
    tiny = WeightPrior(1, init_scale=1e-4)  # the scale is floored at 0.05
    floor = WeightPrior(1, init_scale=0.05)
    x = [torch.tensor([0.0, 1.0, -2.0])]
    torch.testing.assert_close(tiny.bits(x, noise=False), floor.bits(x, noise=False))
    assert prior.bits([], noise=False).item() == 0.0
    # each tensor is charged under its own scale
    two = WeightPrior(2)
    with torch.no_grad():
        two.log_scale[1] = math.log(0.3)
    a = torch.tensor([0.0, 2.0, -1.0])
    total = two.bits([a, a], noise=False)
    separate = WeightPrior(1, 2.0).bits([a], noise=False) + WeightPrior(1, 0.3).bits([a], noise=False)
    torch.testing.assert_close(total, separate)


def test_histograms_wider_than_max_entries_clip_to_the_central_quantiles():
    g = np.random.default_rng(6)
    # mostly small values and a thin wide spread: the histogram wins, over a clipped range
    s = np.concatenate([np.round(g.laplace(0, 1, 30000)), g.integers(-5000, 5000, 600)]).astype(np.int64)
    kind, lo, counts, head = W._choose(s)
    assert kind == HISTOGRAM
    q_lo, q_hi = (int(v) for v in np.quantile(s, [0.001, 0.999]).round())
    assert q_hi - q_lo + 1 > MAX_ENTRIES  # the case under test
    assert lo == q_lo and counts.size - 1 == MAX_ENTRIES  # from the low quantile, MAX_ENTRIES wide
    lo_ref, ref = reference_histogram(s)
    assert counts.tolist() == ref.tolist()
    # exactly MAX_ENTRIES values wide: the whole range, no clipping
    t = np.concatenate([np.zeros(5000, np.int64), [-300, -300 + MAX_ENTRIES - 1]])
    kind, lo, counts, _ = W._choose(t)
    assert kind == HISTOGRAM and lo == -300 and counts.size - 1 == MAX_ENTRIES
    # one wider: clipped to the quantiles
    t2 = np.concatenate([np.zeros(5000, np.int64), [-300, -300 + MAX_ENTRIES]])
    kind, lo, counts, _ = W._choose(t2)
    assert kind == HISTOGRAM and counts.size - 1 < MAX_ENTRIES
