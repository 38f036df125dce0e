"""Motion vector coding (lcodec.entropy.motion_vectors): exact round trips, the encoder's table
choice, the stored tables, damaged sections."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lcodec.bitstream.coder import encode_symbols
from lcodec.entropy.motion_vectors import PREDICTORS, RATIOS, MotionVectorModel, geometric_tables
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.motion import joint_predictor, median_predictor


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (5, 8)])
def test_round_trip(shape):
    model = MotionVectorModel(33)
    g = torch.Generator().manual_seed(sum(shape))
    for mv in (torch.randint(-33, 34, (*shape, 2), generator=g), torch.zeros(*shape, 2, dtype=torch.long),
               torch.full((*shape, 2), -33)):
        for col in (None, torch.randint(-33, 34, (*shape, 2), generator=g), (mv + 1).clamp(-33, 33)):
            data = model.encode(mv, col)
            assert torch.equal(model.decode(data, shape, col, "test"), mv)


def test_the_encoder_writes_the_cheapest_table_for_each_component():
    model = MotionVectorModel(33)
    g = torch.Generator().manual_seed(1)
    mv = torch.stack([torch.randint(-1, 2, (6, 9), generator=g), torch.randint(-30, 31, (6, 9), generator=g)], -1)
    data = model.encode(mv)
    col = torch.zeros_like(mv)  # no previous field: the co-located vectors are zero
    d = (mv - (median_predictor(mv), col, joint_predictor(mv, col))[data[0]]).reshape(-1, 2).numpy()
    for c in range(2):
        costs = [model.tables.information_content(d[:, c], np.full(len(d), t)) for t in range(len(RATIOS))]
        assert data[1 + c] == int(np.argmin(costs))
    assert data[1] < data[2]  # small differences choose a steeper law than wide ones


def _bits(model, d: np.ndarray) -> float:
    return sum(min(model.tables.information_content(d[:, c], np.full(len(d), t)) for t in range(len(RATIOS)))
               for c in range(2))


def test_the_encoder_writes_the_cheapest_predictor():
    """A field that repeats the previous one is predicted in time; a smooth field that does not is
    predicted in space; each choice is the one of least information content."""
    model = MotionVectorModel(33)
    g = torch.Generator().manual_seed(3)
    rough = torch.randint(-20, 21, (6, 8, 2), generator=g)
    smooth = torch.tensor([5, -3]).expand(6, 8, 2).clone()
    for mv, col, want in ((rough, rough, "temporal"), (smooth, rough, "spatial")):
        data = model.encode(mv, col)
        costs = [_bits(model, (mv - p).reshape(-1, 2).numpy())
                 for p in (median_predictor(mv), col, joint_predictor(mv, col))]
        assert data[0] == int(np.argmin(costs)) == PREDICTORS.index(want), costs


def test_joint_predictor_follows_its_definition():
    g = torch.Generator().manual_seed(4)
    mv, col = torch.randint(-9, 10, (4, 5, 2), generator=g), torch.randint(-9, 10, (4, 5, 2), generator=g)
    got = joint_predictor(mv, col)
    for i in range(4):
        for j in range(5):
            c = col[i, j].tolist()
            a = mv[i, j - 1].tolist() if j else c
            b = mv[i - 1, j].tolist() if i else c
            assert got[i, j].tolist() == [sorted((a[k], b[k], c[k]))[1] for k in range(2)]


def test_a_smooth_field_costs_far_less_than_a_random_one():
    model = MotionVectorModel(33)
    smooth = torch.tensor([4, -6]).expand(8, 10, 2)
    noisy = torch.randint(-33, 34, (8, 10, 2), generator=torch.Generator().manual_seed(2))
    assert len(model.encode(smooth)) * 10 < len(model.encode(noisy))


def test_tables_are_geometric_and_the_shipped_ones_are_the_built_ones():
    import lcodec

    tables = geometric_tables(66)
    assert (tables.counts.sum(1) == 2**tables.precision).all()
    assert (tables.offsets == -66).all() and (tables.lengths == 134).all()
    for t, (num, den) in enumerate(RATIOS):
        c = tables.counts[t, :133].astype(float)
        centre = c[66]
        assert c[65] == c[67] and abs(c[67] / centre - num / den) < 0.01 + 2 / centre  # r**1 at the centre
    shipped = lcodec.load("walloc-video-mc", 1).motion.tables
    assert shipped.sha256 == tables.sha256


def test_damaged_sections_are_refused():
    model = MotionVectorModel(33)
    data = model.encode(torch.zeros(2, 2, 2, dtype=torch.long))
    for bad in (bytes([len(PREDICTORS)]) + data[1:], data[:1] + bytes([len(RATIOS)]) + data[2:],
                data[:2] + bytes([len(RATIOS)]) + data[3:], data[:2]):
        with pytest.raises(BitstreamError, match="predictor or table"):
            model.decode(bad, (2, 2), None, "frame 1")
    # a difference that takes the first vector beyond the search range (the table still has it), by
    # each predictor
    for mode in range(len(PREDICTORS)):
        beyond = bytes([mode, 5, 5]) + encode_symbols(np.array([34, 0, 0, 0]), np.full(4, 5), model.tables)
        with pytest.raises(BitstreamError, match="search range"):
            model.decode(beyond, (1, 2), None, "frame 1")


def test_the_encoder_refuses_a_field_beyond_its_limit():
    with pytest.raises(ModelError, match="within"):
        MotionVectorModel(5).encode(torch.full((1, 1, 2), 6))
    with pytest.raises(ModelError):
        MotionVectorModel(5).load_tables(geometric_tables(66).to_state())
