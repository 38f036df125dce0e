import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables
from lcodec.errors import BitstreamError, InputError


def laplace_tables(num: int = 4, half: int = 10) -> CodingTables:
    pmfs = [np.append(np.exp(-np.abs(np.arange(-half, half + 1)) / (1.0 + t)), 1e-4) for t in range(num)]
    return CodingTables.from_pmfs(pmfs, [-half] * num)


def test_round_trip_with_escapes_and_extremes():
    tables = laplace_tables()
    rng = np.random.default_rng(0)
    symbols = np.round(rng.laplace(0, 3, 50_000)).astype(np.int64)
    symbols[:6] = [11, -11, 10_000, -10_000, 2**31 - 1, -(2**31 - 1)]
    indexes = rng.integers(0, 4, symbols.size)
    data = encode_symbols(symbols, indexes, tables)
    np.testing.assert_array_equal(decode_symbols(data, indexes, tables), symbols)


def test_size_tracks_ideal_information_content():
    """Real size >= ideal content under the tables, and within 1% + one word of it."""
    tables = laplace_tables()
    rng = np.random.default_rng(1)
    symbols = np.clip(np.round(rng.laplace(0, 2, 200_000)), -10, 10).astype(np.int64)  # no escapes
    indexes = rng.integers(0, 4, symbols.size)
    bits = 8 * len(encode_symbols(symbols, indexes, tables))
    ideal = tables.information_content(symbols, indexes)
    assert bits >= ideal
    assert bits <= 1.01 * ideal + 64


def test_exact_words_for_a_fixed_input():
    """The coder is a pure function of integers: pin its exact output (catches silent changes)."""
    tables = CodingTables.from_pmfs([np.array([0.6, 0.25, 0.1, 0.05])], [0])
    data = encode_symbols(np.array([0, 1, 2, 0, 0, 1, 5, -3]), np.zeros(8, dtype=int), tables)
    assert data.hex() == "918df87d1a263bae"  # two 32-bit words, little-endian
    np.testing.assert_array_equal(
        decode_symbols(data, np.zeros(8, dtype=int), tables), [0, 1, 2, 0, 0, 1, 5, -3]
    )



@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=0, max_size=200),
    st.integers(0, 3),
)
def test_round_trip_property(values, seed):
    tables = laplace_tables()
    symbols = np.array(values, dtype=np.int64)
    indexes = np.random.default_rng(seed).integers(0, 4, symbols.size)
    data = encode_symbols(symbols, indexes, tables)
    np.testing.assert_array_equal(decode_symbols(data, indexes, tables), symbols)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 5000))
def test_garbage_words_never_crash_or_hang(data, count):
    tables = laplace_tables()
    indexes = np.zeros(count, dtype=int)
    try:
        out = decode_symbols(data, indexes, tables)
    except BitstreamError:
        return
    assert out.shape == (count,)


def test_bad_arguments_are_clear_errors():
    tables = laplace_tables()
    with pytest.raises(InputError):
        encode_symbols(np.array([2**40]), np.array([0]), tables)
    with pytest.raises(InputError):
        encode_symbols(np.array([1.5]), np.array([0]), tables)
    with pytest.raises(BitstreamError):
        encode_symbols(np.array([1]), np.array([7]), tables)
    with pytest.raises(BitstreamError):
        decode_symbols(b"abc", np.array([0]), tables)


def test_limits_are_exactly_the_documented_ones():
    """Symbols must lie in [-(2**31 - 1), 2**31 - 1] (either sign: one past the limit is refused
    on each side) and table indexes in 0..T-1 (T itself is refused, on encode and decode)."""
    tables = laplace_tables(num=4)
    zero = np.array([0])
    for value in (-(2**31), 2**31):
        with pytest.raises(InputError, match="magnitude"):
            encode_symbols(np.array([value, 0]), np.array([0, 0]), tables)
    edge = np.array([-(2**31 - 1), 2**31 - 1])
    assert decode_symbols(encode_symbols(edge, np.array([3, 3]), tables), np.array([3, 3]), tables).tolist() == edge.tolist()
    with pytest.raises(BitstreamError, match=r"out of range 0\.\.3"):
        encode_symbols(zero, np.array([4]), tables)
    with pytest.raises(BitstreamError, match=r"out of range 0\.\.3"):
        encode_symbols(zero, np.array([-1]), tables)
    data = encode_symbols(zero, np.array([3]), tables)
    with pytest.raises(BitstreamError, match=r"out of range 0\.\.3"):
        decode_symbols(data, np.array([4]), tables)
    with pytest.raises(BitstreamError, match="multiple of 4"):
        decode_symbols(data[:-1], np.array([3]), tables)
    with pytest.raises(InputError, match="2 symbols but 1 table indexes"):
        encode_symbols(np.array([0, 1]), zero, tables)
