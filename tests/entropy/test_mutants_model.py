"""Contract tests for ``lcodec.entropy.model`` (the entropy-model role and the factorized entropy
model), written for docs/results/mutation/run2_entropy.md: before them nothing under tests/entropy
covered this module, so its mutants had no covering test in the mutation run. Checked against the
module docstring: one table per channel, symbols round(y), one section, ``decode`` the exact inverse
of ``encode`` that refuses payloads far below the symbols' floor, the state round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lcodec.bitstream.tables import CodingTables
from lcodec.entropy.gaussian import gaussian_tables
from lcodec.entropy.model import FactorizedEntropyModel, channel_indexes, check_floor, require, ste_round
from lcodec.errors import BitstreamError, ModelError


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (1, 4, 2, 3), (3, 2, 2, 1, 2)])
def test_channel_indexes_are_the_channel_of_each_flat_position(shape):
    idx = channel_indexes(shape)
    assert idx.shape == (int(np.prod(shape)),)
    ref = np.indices(shape)[1].reshape(-1)  # the channel coordinate of every element, C order
    np.testing.assert_array_equal(idx, ref)


def test_check_floor_refuses_exactly_below_half_the_floor():
    check_floor(b"\x00" * 4, 64.0, "y")  # 32 bits >= 32
    check_floor(b"", 0.0, "y")
    with pytest.raises(BitstreamError, match="too short for the declared latents"):
        check_floor(b"\x00" * 4, 64.5, "latents")  # 32 < 32.25
    with pytest.raises(BitstreamError, match="payload of 0 bytes"):
        check_floor(b"", 1.0, "y")


def test_require_returns_the_tables_or_names_what_is_missing():
    t = gaussian_tables([1.0])
    assert require(t, "x") is t
    with pytest.raises(ModelError, match=r"no coding tables \(hyper z\)"):
        require(None, "hyper z")


def test_ste_round_rounds_forward_and_passes_the_gradient():
    x = torch.tensor([0.4, 0.6, -1.5, 2.5], requires_grad=True)
    y = ste_round(x)
    assert y.tolist() == [0.0, 1.0, -2.0, 2.0]
    (g,) = torch.autograd.grad((y * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum(), x)
    assert g.tolist() == [1.0, 2.0, 3.0, 4.0]


def _model(channels: int = 3) -> FactorizedEntropyModel:
    torch.manual_seed(0)
    m = FactorizedEntropyModel(channels)
    m.export()
    return m.eval()


def test_class_constants_and_sections():
    m = FactorizedEntropyModel(2)
    assert m.downsample == 1 and m.side_sections == 0 and m.per_item_rates is True
    assert m.num_sections(0) == 1 and m.num_sections(5) == 1
    assert m.tables is None and m.prior.channels == 2
    with pytest.raises(ModelError, match="factorized"):
        m.table_sets()
    with pytest.raises(ModelError, match="factorized"):
        m.state_entries()


def test_encode_decode_round_trip_of_the_carried_channels():
    m = _model(3)
    g = torch.Generator().manual_seed(1)
    y = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64) * 4
    for carried in (3, 2):
        sections, sym = m.encode(y, 0, carried)
        assert len(sections) == 1 and sym.dtype == torch.int32
        assert torch.equal(sym, torch.round(y).to(torch.int32)[:, :carried])
        dec = m.decode(sections, tuple(y.shape), 0, carried, "y")
        assert dec.dtype == torch.int32 and dec.shape == (2, carried, 4, 5)
        assert torch.equal(dec, sym)
    # the stream codes channel c with table c: decoding it with the symbols re-read in C order
    from lcodec.bitstream.coder import decode_symbols

    sections, sym = m.encode(y, 0, 3)
    flat = decode_symbols(sections[0], channel_indexes((2, 3, 4, 5)), m.tables)
    np.testing.assert_array_equal(flat, sym.numpy().reshape(-1))


def test_decode_refuses_a_payload_far_below_the_floor_and_missing_tables():
    m = _model(2)
    shape = (1, 2, 64, 64)
    floor = 64 * 64 * float(np.sum(m.tables.min_bits()[:2]))
    assert floor > 16  # each symbol costs something
    n = int(floor / 16) - 1  # bytes: 8 n < floor / 2
    with pytest.raises(BitstreamError, match="too short"):
        m.decode((b"\x00" * n,), shape, 0, 2, "y")
    with pytest.raises(ModelError):
        FactorizedEntropyModel(2).decode((b"\x00" * 100,), shape, 0, 2, "y")


def test_forward_is_straight_through_in_training_and_the_prior_in_eval():
    m = FactorizedEntropyModel(2)
    y = torch.tensor([[[[0.3, -1.7]], [[2.6, 0.5]]]], requires_grad=True)
    m.train()
    y_dec, bits = m(y)
    assert set(bits) == {"y"} and bits["y"].shape == (1,)
    assert torch.equal(y_dec.detach(), torch.round(y.detach()))  # decoder value, not the noisy one
    (g,) = torch.autograd.grad(y_dec.sum(), y)
    assert torch.equal(g, torch.ones_like(y))
    m.eval()
    y_dec, bits = m(y)
    assert torch.equal(y_dec.detach(), torch.round(y.detach()))
    ref = -torch.log2(m.prior.likelihood(torch.round(y.detach()))).sum().detach()
    assert abs(float(bits["y"].detach().sum()) - float(ref)) < 1e-4 * float(ref)


def test_state_round_trip_and_refusal_of_tables_for_another_channel_count():
    m = _model(3)
    state = m.state_entries()
    assert set(state) == {"tables"}
    assert [t.sha256 for t in m.table_sets()] == [m.tables.sha256]
    fresh = FactorizedEntropyModel(3)
    fresh.load_entries(state)
    assert isinstance(fresh.tables, CodingTables) and fresh.tables.sha256 == m.tables.sha256
    with pytest.raises(ModelError, match="do not fit"):
        FactorizedEntropyModel(2).load_entries(state)
    with pytest.raises(ModelError, match="do not fit"):
        FactorizedEntropyModel(4).load_entries(state)
