"""Motion vector coding (lcodec.entropy.motion_vectors): exact round trips, the encoder's table
choice, the stored tables, damaged sections."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lcodec.bitstream.coder import encode_symbols
from lcodec.entropy.motion_vectors import RATIOS, MotionVectorModel, geometric_tables
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.motion import median_predictor


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (5, 8)])
def test_round_trip(shape):
    model = MotionVectorModel(33)
    g = torch.Generator().manual_seed(sum(shape))
    for mv in (torch.randint(-33, 34, (*shape, 2), generator=g), torch.zeros(*shape, 2, dtype=torch.long),
               torch.full((*shape, 2), -33)):
        data = model.encode(mv)
        assert torch.equal(model.decode(data, shape, "test"), mv)


def test_the_encoder_writes_the_cheapest_table_for_each_component():
    model = MotionVectorModel(33)
    g = torch.Generator().manual_seed(1)
    mv = torch.stack([torch.randint(-1, 2, (6, 9), generator=g), torch.randint(-30, 31, (6, 9), generator=g)], -1)
    data = model.encode(mv)
    d = (mv - median_predictor(mv)).reshape(-1, 2).numpy()
    for c in range(2):
        costs = [model.tables.information_content(d[:, c], np.full(len(d), t)) for t in range(len(RATIOS))]
        assert data[c] == int(np.argmin(costs))
    assert data[0] < data[1]  # small differences choose a steeper law than wide ones


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
    with pytest.raises(BitstreamError, match="table"):
        model.decode(bytes([len(RATIOS)]) + data[1:], (2, 2), "frame 1")
    with pytest.raises(BitstreamError, match="table"):
        model.decode(data[:1], (2, 2), "frame 1")
    # a difference that takes the first vector beyond the search range (the table still has it)
    beyond = bytes([5, 5]) + encode_symbols(np.array([34, 0, 0, 0]), np.full(4, 5), model.tables)
    with pytest.raises(BitstreamError, match="search range"):
        model.decode(beyond, (1, 2), "frame 1")


def test_the_encoder_refuses_a_field_beyond_its_limit():
    with pytest.raises(ModelError, match="within"):
        MotionVectorModel(5).encode(torch.full((1, 1, 2), 6))
    with pytest.raises(ModelError):
        MotionVectorModel(5).load_tables(geometric_tables(66).to_state())
