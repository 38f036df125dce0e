import numpy as np
import pytest

from lcodec.bitstream.tables import CodingTables, quantize_pmf
from lcodec.errors import ModelError


@pytest.mark.parametrize("n", [2, 3, 17, 300, 2048])
def test_quantize_pmf_sums_exactly_and_keeps_every_symbol(n):
    rng = np.random.default_rng(n)
    pmf = rng.exponential(size=n) ** 4  # very uneven, some almost zero
    pmf[rng.integers(n)] = 0.0
    counts = quantize_pmf(pmf, 16)
    assert counts.sum() == 2**16
    assert counts.min() >= 1
    # close to the ideal: the large entries keep their share within a few counts
    ideal = pmf / pmf.sum() * 2**16
    assert np.abs(counts - ideal).max() <= n + 2


def test_quantize_rejects_degenerate_pmfs():
    with pytest.raises(ModelError):
        quantize_pmf(np.array([1.0]))
    with pytest.raises(ModelError):
        quantize_pmf(np.zeros(5))
    with pytest.raises(ModelError):
        quantize_pmf(np.array([np.nan, 1.0]))


def test_tables_are_immutable_validated_and_hashed():
    t = CodingTables.from_pmfs([np.array([0.5, 0.3, 0.2]), np.array([0.9, 0.1])], [-1, 0])
    assert t.lengths.tolist() == [3, 2]
    assert t.counts[1, 2] == 0  # padding
    with pytest.raises(ValueError):
        t.counts[0, 0] = 5
    same = CodingTables(t.precision, t.counts.copy(), t.offsets.copy(), t.lengths.copy())
    assert same.sha256 == t.sha256
    changed = t.counts.copy()
    changed[0, 0] += 1
    changed[0, 1] -= 1
    assert CodingTables(t.precision, changed, t.offsets, t.lengths).sha256 != t.sha256
    bad = t.counts.copy()
    bad[0, 0] += 1
    with pytest.raises(ModelError):
        CodingTables(t.precision, bad, t.offsets, t.lengths)  # row no longer sums to 2^16


def test_state_round_trip_packs_ragged_rows_and_reads_the_padded_layout():
    t = CodingTables.from_pmfs([np.array([0.5, 0.3, 0.2]), np.full(40, 1 / 40)], [-1, -20])
    state = t.to_state()
    assert state["packed"].numel() == 3 + 40 and "counts" not in state  # no padding stored
    back = CodingTables.from_state(state)
    assert back.sha256 == t.sha256 and np.array_equal(back.counts, t.counts)
    import torch

    padded = {**{k: v for k, v in state.items() if k not in ("packed", "width")},
              "counts": torch.from_numpy(t.counts.astype(np.int32))}  # the layout of earlier weight files
    assert CodingTables.from_state(padded).sha256 == t.sha256
    with pytest.raises(ModelError, match="inconsistent"):
        CodingTables.from_state({**state, "packed": state["packed"][:-1]})


def test_state_is_int32_counts_and_int64_indexes_and_each_inconsistency_is_named():
    """to_state's documented layout (packed int32 counts, int64 offsets and lengths, the padded
    width), and from_state refusing every way the packed counts can disagree with the lengths."""
    import torch

    t = CodingTables.from_pmfs([np.array([0.5, 0.3, 0.2]), np.full(5, 0.2)], [-1, 7])
    state = t.to_state()
    assert state["packed"].dtype == torch.int32
    assert state["offsets"].dtype == torch.int64 and state["lengths"].dtype == torch.int64
    assert state["width"] == 5 and state["precision"] == 16
    assert state["offsets"].tolist() == [-1, 7] and state["lengths"].tolist() == [3, 5]
    assert state["packed"].tolist() == [*t.counts[0, :3].tolist(), *t.counts[1].tolist()]
    # a row longer than the stored width, with the packed size still matching the lengths
    wide = {**state, "lengths": torch.tensor([2, 6]), "packed": torch.ones(8, dtype=torch.int32)}
    with pytest.raises(ModelError, match="inconsistent"):
        CodingTables.from_state(wide)
    # an empty row (length 0), the packed size again matching
    empty = {**state, "lengths": torch.tensor([0, 5]), "packed": state["packed"][3:]}
    with pytest.raises(ModelError, match="inconsistent"):
        CodingTables.from_state(empty)
    with pytest.raises(ModelError, match="inconsistent"):  # one count too many
        CodingTables.from_state({**state, "packed": torch.cat([state["packed"], state["packed"][:1]])})


def _good():
    """Two valid tables: lengths 3 and 2 in a width of 3, precision 4 (rows sum to 16)."""
    return np.array([[8, 5, 3], [15, 1, 0]]), np.array([-1, 0]), np.array([3, 2])


@pytest.mark.parametrize("case, match", [
    ("counts_1d", "disagree in shape"),
    ("more_count_rows", "disagree in shape"),
    ("fewer_lengths", "disagree in shape"),
    ("length_1", "invalid lengths"),
    ("length_past_width", "invalid lengths"),
    ("zero_count_in_range", "needs >= 1 count"),
    ("padding_not_zero", "padding must be 0"),
    ("row_sum", "sum to exactly"),
])
def test_each_validation_rule_alone_is_refused_by_name(case, match):
    """The class docstring's invariants, each broken on its own (every other rule still holds)."""
    counts, offsets, lengths = _good()
    if case == "counts_1d":
        counts, offsets, lengths = counts[0], offsets[:1], lengths[:1]
    elif case == "more_count_rows":
        counts = np.vstack([counts, counts[:1]])
    elif case == "fewer_lengths":
        lengths = lengths[:1]
    elif case == "length_1":
        counts, lengths = np.array([[8, 5, 3], [16, 0, 0]]), np.array([3, 1])
    elif case == "length_past_width":
        lengths = np.array([4, 2])
    elif case == "zero_count_in_range":
        counts = np.array([[8, 8, 0], [15, 1, 0]])
    elif case == "padding_not_zero":
        counts = np.array([[8, 5, 3], [14, 1, 1]])
    elif case == "row_sum":
        counts = np.array([[8, 5, 4], [15, 1, 0]])
    with pytest.raises(ModelError, match=match):
        CodingTables(4, counts, offsets, lengths)
    CodingTables(4, *_good())  # the unbroken tables are accepted


def test_inputs_of_any_integer_dtype_and_shape_are_held_as_flat_int64():
    """The documented types: counts (T, Lmax) int64, offsets and lengths (T,) int64, whatever
    the caller passed (int32, uint8, a column of offsets)."""
    counts, offsets, lengths = _good()
    t = CodingTables(4, counts.astype(np.int32), offsets.reshape(2, 1).astype(np.int16),
                     lengths.reshape(2, 1).astype(np.uint8))
    for arr in (t.counts, t.offsets, t.lengths):
        assert arr.dtype == np.int64
    assert t.offsets.shape == (2,) and t.lengths.shape == (2,) and t.counts.shape == (2, 3)
    assert t.sha256 == CodingTables(4, *_good()).sha256
    # the flat offsets index per symbol: table 1's symbol 0 sits at entry 0 (15 counts of 16)
    assert t.information_content(np.array([0]), np.array([1])) == pytest.approx(4 - np.log2(15))


def test_quantize_pmf_worked_example_settles_the_deficit_on_the_largest_entries():
    """Docstring: every entry gets floor(p * (2**prec - n)) + 1 counts, the rest goes to the
    largest entries, one count each, ties broken by index. Worked by hand at precision 4:
    p = (0.5, 0.3, 0.2): floor(6.5) + 1, floor(3.9) + 1, floor(2.6) + 1 = 7, 4, 3 (14 of 16),
    so the two largest entries get one more: 8, 5, 3."""
    counts = quantize_pmf(np.array([0.5, 0.3, 0.2]), 4)
    assert counts.tolist() == [8, 5, 3] and counts.dtype == np.int64
    # order by probability, not by position: the largest entry last
    assert quantize_pmf(np.array([0.2, 0.3, 0.5]), 4).tolist() == [3, 5, 8]
    # integer weights are a pmf too (normalised, not integer-divided)
    assert quantize_pmf(np.array([5, 3, 2]), 4).tolist() == [8, 5, 3]


def test_quantize_pmf_breaks_ties_by_index():
    """100 equal entries at precision 12: 40 counts each (floor(3996 / 100) + 1), 96 left over,
    which go to the first 96 entries (ties broken by index, whatever the sort's internals)."""
    counts = quantize_pmf(np.full(100, 0.01), 12)
    assert counts[:96].tolist() == [41] * 96 and counts[96:].tolist() == [40] * 4


def test_quantize_pmf_entry_limit_is_half_the_total_inclusive():
    """2..2**precision / 2 entries: exactly half is accepted, one more is refused, by name."""
    assert quantize_pmf(np.ones(8), 4).tolist() == [2] * 8
    with pytest.raises(ModelError, match=r"needs 2\.\.8 entries, got 9"):
        quantize_pmf(np.ones(9), 4)
    with pytest.raises(ModelError, match="no finite positive mass"):
        quantize_pmf(np.zeros(3), 4)


def test_from_pmfs_uses_its_precision_and_min_bits_is_the_cheapest_symbol():
    t = CodingTables.from_pmfs([np.array([0.5, 0.3, 0.2]), np.array([0.9, 0.1])], [-1, 0], precision=4)
    assert t.precision == 4 and t.counts.sum(axis=1).tolist() == [16, 16]
    assert t.counts.tolist() == [[8, 5, 3], [14, 2, 0]]
    # min_bits: precision - log2(largest count of the row)
    np.testing.assert_allclose(t.min_bits(), [4 - np.log2(8), 4 - np.log2(14)])
