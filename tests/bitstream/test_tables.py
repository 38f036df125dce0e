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
