"""The range coder at scale, against models written out in this file.

Many tables (1 to 1000, ragged lengths, uneven offsets, counts down to 1), many symbols
drawn from their own tables, random and uneven table assignments, escapes on both sides.
Checked against three things that do not come from ``lcodec.bitstream.coder``:

1. the stream layout of its module docstring, re-implemented here symbol by symbol in plain
   Python loops (one constriction call per symbol): the bytes must be identical;
2. the ideal information content, computed here from the integer counts (not with
   ``CodingTables.information_content``): the real length sits just above it;
3. a plain 32-bit range coder (carry-propagating, LZMA style) written here with its decoder:
   the real coder must be at least as short, and the plain one must decode its own output.
"""
from __future__ import annotations

import math

import constriction
import numpy as np
import pytest

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables

PRECISION = 16
_model = constriction.stream.model


def random_tables(num: int, seed: int) -> CodingTables:
    """``num`` tables of 2..400 entries (last = escape), very different shapes, offsets -300..50."""
    rng = np.random.default_rng(seed)
    pmfs, offsets = [], []
    for t in range(num):
        n = int(rng.integers(2, 400)) if t % 7 else int(rng.integers(2, 6))
        kind = t % 3
        if kind == 0:  # Laplace-like around a random centre
            k = np.arange(n - 1)
            pmf = np.exp(-np.abs(k - rng.uniform(0, n - 1)) / rng.uniform(0.3, 30))
        elif kind == 1:  # spiky: most mass on a few entries, the rest near zero
            pmf = rng.exponential(size=n - 1) ** 6
        else:  # flat-ish
            pmf = rng.uniform(0.5, 1.5, n - 1)
        pmfs.append(np.append(pmf / pmf.sum(), rng.choice([1e-9, 1e-4, 1e-2])))  # escape mass
        offsets.append(int(rng.integers(-300, 50)))
    return CodingTables.from_pmfs(pmfs, offsets, PRECISION)


def draw(tables: CodingTables, size: int, seed: int, escapes: float) -> tuple[np.ndarray, np.ndarray]:
    """Table indexes (Zipf-like, some tables unused) and symbols drawn from each table's own counts;
    a fraction ``escapes`` of them replaced by out-of-range values on either side."""
    rng = np.random.default_rng(seed)
    T = tables.num_tables
    weights = 1.0 / np.arange(1, T + 1) ** 0.8
    weights[rng.permutation(T)[: T // 10]] = 0.0  # a tenth of the tables is never used
    if weights.sum() == 0:
        weights[0] = 1.0
    indexes = rng.choice(T, size=size, p=weights / weights.sum())
    symbols = np.empty(size, dtype=np.int64)
    for t in np.unique(indexes):
        sel = np.flatnonzero(indexes == t)
        n = int(tables.lengths[t]) - 1  # in-range entries, escape excluded
        p = tables.counts[t, :n].astype(np.float64)
        symbols[sel] = tables.offsets[t] + rng.choice(n, size=sel.size, p=p / p.sum())
    out = rng.random(size) < escapes
    lo = tables.offsets[indexes]
    hi = lo + tables.lengths[indexes] - 2  # the largest in-range symbol
    far = rng.choice([1, 2, 3, 17, 1000, 70_000, 2**31 - 1 - 400], size=size)
    below = rng.random(size) < 0.5
    symbols[out & below] = np.maximum(lo - far, -(2**31) + 1)[out & below]
    symbols[out & ~below] = np.minimum(hi + far, 2**31 - 1)[out & ~below]
    return symbols, indexes


# ---------------------------------------------------------------- 1. the documented layout, plainly

def layout_reference(symbols: np.ndarray, indexes: np.ndarray, tables: CodingTables) -> bytes:
    """The module docstring of lcodec.bitstream.coder, one symbol at a time."""
    enc = constriction.stream.queue.RangeEncoder()
    escaped = []  # (symbol, table) in the natural order of the symbols
    for t in range(tables.num_tables):  # tables in increasing order ...
        n = int(tables.lengths[t])
        model = _model.Categorical(tables.counts[t, :n] / float(1 << PRECISION), perfect=False)
        for i in range(symbols.size):  # ... and each table's symbols in their original order
            if indexes[i] != t:
                continue
            pos = int(symbols[i]) - int(tables.offsets[t])
            if not 0 <= pos < n - 1:
                pos = n - 1  # the escape entry
            enc.encode(pos, model)
    for i in range(symbols.size):
        t = int(indexes[i])
        lo, hi = int(tables.offsets[t]), int(tables.offsets[t]) + int(tables.lengths[t]) - 2
        if not lo <= symbols[i] <= hi:
            escaped.append((int(symbols[i]), lo, hi))
    if escaped:
        classes = []
        for s, lo, hi in escaped:  # side bit: 0 below the range, 1 above
            enc.encode(int(s > hi), _model.Uniform(2))
        for s, lo, hi in escaped:  # Exp-Golomb class n of the overshoot d: n = floor(log2(d + 1))
            d = lo - 1 - s if s < lo else s - hi - 1
            n = (d + 1).bit_length() - 1
            classes.append((n, d))
            enc.encode(n, _model.Uniform(33))
        for n in sorted({c for c, _ in classes}):  # grouped by class, increasing
            rests = [(d + 1) - (1 << n) for c, d in classes if c == n]  # the n bits below the leading one
            for shift in range(0, n, 16):  # chunks of at most 16 bits, low chunk first; within a
                width = min(16, n - shift)  # class, chunk by chunk: every value's low chunk, then the next
                for rest in rests:
                    enc.encode((rest >> shift) & ((1 << width) - 1), _model.Uniform(1 << width))
    return enc.get_compressed().astype("<u4").tobytes()


def ideal_bits(symbols: np.ndarray, indexes: np.ndarray, tables: CodingTables) -> float:
    """-log2 of the probability the tables give the message, escapes' extra fields included."""
    total = 0.0
    for s, t in zip(symbols.tolist(), indexes.tolist()):
        lo, n = int(tables.offsets[t]), int(tables.lengths[t])
        pos = s - lo
        if 0 <= pos < n - 1:
            total += PRECISION - math.log2(int(tables.counts[t, pos]))
        else:
            d = lo - 1 - s if pos < 0 else pos - (n - 1)
            k = (d + 1).bit_length() - 1
            total += PRECISION - math.log2(int(tables.counts[t, n - 1])) + 1 + math.log2(33) + k
    return total


@pytest.mark.parametrize(
    "num_tables,size,escapes",
    [(1, 20_000, 0.01), (256, 30_000, 0.005), (257, 30_000, 0.005), (1000, 40_000, 0.002)],
)
def test_many_tables_round_trip_and_match_the_documented_layout(num_tables, size, escapes):
    """256 and 257 tables straddle the 8-bit/16-bit sort-key switch of the table grouping."""
    tables = random_tables(num_tables, seed=num_tables)
    symbols, indexes = draw(tables, size, seed=size + num_tables, escapes=escapes)
    if num_tables > 1:
        assert indexes.max() == num_tables - 1 or (indexes == num_tables - 1).sum() == 0
    data = encode_symbols(symbols, indexes, tables)
    np.testing.assert_array_equal(decode_symbols(data, indexes, tables), symbols)
    assert data == layout_reference(symbols, indexes, tables)
    ideal = ideal_bits(symbols, indexes, tables)
    assert ideal - 32 <= 8 * len(data) <= 1.002 * ideal + 64


def test_the_highest_table_index_is_used_on_both_sides_of_the_key_switch():
    """Indexes 0..256 all present, with table 256 (the first that needs a 16-bit key) heavily used."""
    tables = random_tables(257, seed=5)
    rng = np.random.default_rng(6)
    indexes = np.concatenate([np.arange(257), np.full(3000, 256), rng.integers(0, 257, 3000)])
    rng.shuffle(indexes)
    symbols = tables.offsets[indexes] + (rng.integers(0, 1 << 20, indexes.size) % (tables.lengths[indexes] - 1))
    data = encode_symbols(symbols, indexes, tables)
    np.testing.assert_array_equal(decode_symbols(data, indexes, tables), symbols)
    assert data == layout_reference(symbols, indexes, tables)


def test_a_large_stream_sits_just_above_its_information_content():
    """300k symbols over 120 tables, no escapes: within 0.1% + two words of the ideal length."""
    tables = random_tables(120, seed=11)
    symbols, indexes = draw(tables, 300_000, seed=12, escapes=0.0)
    data = encode_symbols(symbols, indexes, tables)
    np.testing.assert_array_equal(decode_symbols(data, indexes, tables), symbols)
    pos = symbols - tables.offsets[indexes]
    ideal = float(np.sum(PRECISION - np.log2(tables.counts[indexes, pos].astype(np.float64))))
    assert ideal - 32 <= 8 * len(data) <= 1.001 * ideal + 64


def test_swapping_two_tables_changes_the_stream_and_decoding_with_them_fails_to_match():
    """Table choice matters symbol by symbol: decoding with a different assignment gives other symbols."""
    tables = random_tables(40, seed=21)
    symbols, indexes = draw(tables, 20_000, seed=22, escapes=0.0)
    data = encode_symbols(symbols, indexes, tables)
    other = indexes.copy()
    a, b = np.unique(indexes)[:2]
    other[indexes == a], other[indexes == b] = b, a
    try:
        wrong = decode_symbols(data, other, tables)
    except Exception:  # noqa: BLE001 - a BitstreamError is also a correct outcome
        return
    assert not np.array_equal(wrong, symbols)


# ---------------------------------------------------------------- 3. a plain range coder

class PlainRangeEncoder:
    """Textbook 32-bit range coder with byte output and carry propagation (LZMA's scheme)."""

    def __init__(self) -> None:
        self.low, self.range, self.cache, self.cache_size = 0, 0xFFFFFFFF, 0, 1
        self.out = bytearray()

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low >= 1 << 32:
            carry = self.low >> 32
            temp = self.cache
            while True:
                self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.cache_size -= 1
                if not self.cache_size:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low << 8) & 0xFFFFFFFF

    def encode(self, start: int, size: int, bits: int) -> None:
        r = self.range >> bits
        self.low += r * start
        self.range = r * size
        while self.range < 1 << 24:
            self.range <<= 8
            self._shift_low()

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift_low()
        return bytes(self.out)


class PlainRangeDecoder:
    def __init__(self, data: bytes) -> None:
        self.data, self.i = data + b"\0" * 8, 5
        self.code, self.range = int.from_bytes(data[:5], "big"), 0xFFFFFFFF

    def decode(self, cumulative: np.ndarray, bits: int) -> int:
        r = self.range >> bits
        v = min(self.code // r, (1 << bits) - 1)
        s = int(np.searchsorted(cumulative, v, side="right")) - 1
        self.code -= r * int(cumulative[s])
        self.range = r * int(cumulative[s + 1] - cumulative[s])
        while self.range < 1 << 24:
            self.range <<= 8
            self.code = ((self.code << 8) | self.data[self.i]) & 0xFFFFFFFFFF
            self.i += 1
        return s


def test_not_longer_than_a_plain_range_coder_which_decodes_its_own_output():
    tables = random_tables(60, seed=31)
    symbols, indexes = draw(tables, 25_000, seed=32, escapes=0.0)
    pos = symbols - tables.offsets[indexes]
    cumulative = [np.concatenate([[0], np.cumsum(tables.counts[t, : tables.lengths[t]])])
                  for t in range(tables.num_tables)]
    order = np.argsort(indexes, kind="stable")  # the documented order: by table, then natural order
    enc = PlainRangeEncoder()
    for i in order:
        t, p = int(indexes[i]), int(pos[i])
        enc.encode(int(cumulative[t][p]), int(tables.counts[t, p]), PRECISION)
    plain = enc.finish()
    dec = PlainRangeDecoder(plain)
    back = np.array([dec.decode(cumulative[int(indexes[i])], PRECISION) for i in order])
    np.testing.assert_array_equal(back, pos[order])

    ideal = float(np.sum(PRECISION - np.log2(tables.counts[indexes, pos].astype(np.float64))))
    real = 8 * len(encode_symbols(symbols, indexes, tables))
    assert ideal <= 8 * len(plain) <= 1.01 * ideal + 64  # the plain coder is itself near-ideal
    assert real <= 8 * len(plain) + 32  # and the shipped coder is no worse than it


def test_information_content_matches_the_counts_written_out():
    """``CodingTables.information_content``: in-range symbols cost precision - log2(count); any
    out-of-range symbol (just below, just above, far) costs the escape entry only."""
    tables = random_tables(30, seed=41)
    symbols, indexes = draw(tables, 5000, seed=42, escapes=0.0)
    lo = tables.offsets[indexes]
    hi = lo + tables.lengths[indexes] - 2
    symbols[:4] = [lo[0] - 1, hi[1] + 1, hi[2] + 1000, lo[3] - 5]
    symbols[4:6] = [lo[4], hi[5]]  # both in-range ends
    want = 0.0
    for s, t in zip(symbols.tolist(), indexes.tolist()):
        n = int(tables.lengths[t])
        pos = s - int(tables.offsets[t])
        entry = pos if 0 <= pos < n - 1 else n - 1
        want += PRECISION - math.log2(int(tables.counts[t, entry]))
    assert tables.information_content(symbols, indexes) == pytest.approx(want, rel=1e-12)
    assert tables.information_content(symbols.reshape(50, 100), indexes.reshape(100, 50)) == pytest.approx(want, rel=1e-12)
