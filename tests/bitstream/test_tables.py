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
