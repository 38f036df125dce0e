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


def test_any_shape_is_coded_flat_and_decoded_as_int64():
    """Symbols and indexes of any (equal) shape are coded in flat order; decode returns int64
    (its docstring), escapes included."""
    tables = laplace_tables()
    rng = np.random.default_rng(3)
    symbols = rng.integers(-15, 16, (6, 7)).astype(np.int32)
    indexes = rng.integers(0, 4, (6, 7))
    data = encode_symbols(symbols, indexes, tables)
    assert data == encode_symbols(symbols.reshape(-1), indexes.reshape(-1), tables)
    out = decode_symbols(data, indexes, tables)
    assert out.dtype == np.int64 and out.tolist() == symbols.reshape(-1).tolist()


def test_table_indexes_past_the_16_bit_key_switch_keep_their_own_tables():
    """Table 65536 needs a key wider than 16 bits: its symbols must still be grouped as its own
    table, after table 65535 (layout in the module docstring), not folded onto table 0."""
    import constriction

    T = 65537
    counts = np.tile([40000, 25000, 536], (T, 1))
    counts[1::2] = [1000, 64000, 536]  # odd tables favour entry 1: a wrong grouping changes the bytes
    tables = CodingTables(16, counts, np.zeros(T, dtype=np.int64), np.full(T, 3))
    rng = np.random.default_rng(4)
    indexes = rng.choice([0, 1, 65535, 65536], 400)
    symbols = rng.integers(0, 2, 400)
    data = encode_symbols(symbols, indexes, tables)
    enc = constriction.stream.queue.RangeEncoder()  # the layout written out: tables in increasing order
    for t in sorted(set(indexes.tolist())):
        model = constriction.stream.model.Categorical(tables.counts[t] / 2.0**16, perfect=False)
        enc.encode(symbols[indexes == t].astype(np.int32), model)
    assert data == enc.get_compressed().astype("<u4").tobytes()
    assert decode_symbols(data, indexes, tables).tolist() == symbols.tolist()


def test_error_messages_name_the_problem():
    tables = laplace_tables()
    with pytest.raises(InputError, match="symbols must be integers"):
        encode_symbols(np.array([0.5]), np.array([0]), tables)
    with pytest.raises(BitstreamError, match="range-coded data is corrupted"):
        decode_symbols(b"\xff\xff\xff\xff" * 2, np.zeros(50_000, dtype=int), tables)
