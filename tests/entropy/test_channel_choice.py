"""ChannelChoiceHyperprior (lcodec/entropy/channel_choice.py) against its docstring: exact code
lengths of the range coder, the combined table set, a choice that never costs more than either
pure option, any choice decoding exactly, and clear refusals of damaged streams and weights."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables
from lcodec.entropy.channel_choice import ChannelChoiceHyperprior, code_lengths, combine_tables
from lcodec.entropy.hyperprior import HyperpriorConfig, MeanScaleHyperprior
from lcodec.entropy.model import channel_indexes
from lcodec.errors import BitstreamError, ModelError

HYPER = HyperpriorConfig(hyper_channels=4, analysis_hidden=8, index_hidden=8, num_scales=12, min_scale=0.1,
                         max_scale=20.0, mean_groups=1, family="laplace", tail_mass=1e-4)
C = 6


# ------------------------------------------------------------------ code lengths
def test_code_lengths_by_hand():
    # precision 4: counts 8/4/3/1 of 16 -> 1, 2, log2(16/3) and 4 bits; entry 3 is the escape
    t = CodingTables(4, np.array([[8, 4, 3, 1]]), np.array([-1]), np.array([4]))
    bits = code_lengths(t, np.array([-1, 0, 1]), np.zeros(3, dtype=np.int64))
    assert bits == pytest.approx([1.0, 2.0, math.log2(16 / 3)])
    # escapes: the escape entry (4 bits) + a side bit + log2(33) for the class + floor(log2(d + 1)) bits,
    # d the overshoot: symbol 2 is just past the range (d = 0), -2 just below it (d = 0), 9 has d = 7
    esc = 4 + 1 + math.log2(33)
    bits = code_lengths(t, np.array([2, -2, 9, -9]), np.zeros(4, dtype=np.int64))
    assert bits == pytest.approx([esc, esc, esc + 3, esc + 3])


def _random_tables(rng, n, precision=12):
    pmfs = [rng.dirichlet(np.full(int(rng.integers(3, 9)), 0.7)) for _ in range(n)]
    return CodingTables.from_pmfs(pmfs, [int(rng.integers(-4, 1)) for _ in range(n)], precision)


def test_code_lengths_add_up_to_the_coders_output():
    rng = np.random.default_rng(0)
    tables = _random_tables(rng, 5)
    indexes = rng.integers(0, 5, 20000)
    symbols = rng.integers(-6, 9, 20000)  # many escapes, both sides, several classes
    assert (symbols < tables.offsets[indexes]).any() and (symbols >= tables.offsets[indexes] + tables.lengths[indexes] - 1).any()
    ideal = code_lengths(tables, symbols, indexes).sum()
    coded = 8 * len(encode_symbols(symbols, indexes, tables))
    assert ideal <= coded <= ideal * 1.001 + 64


def test_combined_tables_keep_both_sets_in_order():
    rng = np.random.default_rng(1)
    a, b = _random_tables(rng, 3), _random_tables(rng, 4)
    both = combine_tables(a, b)
    assert both.num_tables == 7 and both.precision == a.precision
    for t in range(7):
        src, i = (a, t) if t < 3 else (b, t - 3)
        n = int(src.lengths[i])
        assert both.offsets[t] == src.offsets[i] and both.lengths[t] == n
        assert np.array_equal(both.counts[t, :n], src.counts[i, :n]) and not both.counts[t, n:].any()
    symbols, idx = rng.integers(-3, 5, 500), rng.integers(0, 4, 500)
    assert np.array_equal(decode_symbols(encode_symbols(symbols, idx + 3, both), idx + 3, both), symbols)
    assert encode_symbols(symbols, idx + 3, both) == encode_symbols(symbols, idx, b)
    with pytest.raises(ModelError, match="precision 12 and 10"):
        combine_tables(a, _random_tables(rng, 1, precision=10))


# ------------------------------------------------------------------ the model
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ChannelChoiceHyperprior(C, HYPER, dims=1).eval()
    with torch.no_grad():
        m.h_m[2].bias.normal_(0, 0.3)  # non-zero means: the hyperprior's symbols are round(y - mean)
    m.export()
    return m


def _latents(seed, items=2, positions=64):
    """Channels 0-2 loud in the first half and silent after (the hyperprior's case), 3-5 steady."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(items, C, positions, generator=g, dtype=torch.float64)
    y[:, :3, : positions // 2] *= 12
    y[:, :3, positions // 2:] *= 0.05
    return y


def _force(monkeypatch, model, choice_fn):
    monkeypatch.setattr(model, "choose", lambda hs, hi, plain: choice_fn(hs.shape[:2]))


def test_the_choice_is_never_worse_than_either_pure_option(model, monkeypatch):
    for seed in range(4):
        y = _latents(seed)
        chosen = len(model.encode(y, 0, C)[0][2])
        with monkeypatch.context() as m:
            _force(m, model, lambda s: torch.zeros(s, dtype=torch.bool))
            all_hp = len(model.encode(y, 0, C)[0][2])
            _force(m, model, lambda s: torch.ones(s, dtype=torch.bool))
            all_own = len(model.encode(y, 0, C)[0][2])
        assert chosen <= min(all_hp, all_own) + 8  # + the coder's word granularity
    # and it is a real choice here: neither pure option is best for every channel
    z = model.hyper_analysis(_latents(0))
    choice = model.choice_encode(_latents(0), z, C)[0]
    assert choice.any() and not choice.all()


def test_the_choice_compares_each_channels_exact_cost(model):
    y = _latents(5)
    z = model.hyper_analysis(y)
    hp_sym, hp_idx = model.symbols(y, z), model.table_indexes(z)
    plain = torch.round(y).to(torch.int64)
    choice = model.choose(hp_sym, hp_idx, plain)
    for b in range(y.shape[0]):
        for c in range(C):
            hp_bits = code_lengths(model.y_tables, hp_sym[b, c].numpy(), hp_idx[b, c].numpy()).sum()
            own_bits = code_lengths(model.channel_tables, plain[b, c].numpy(), np.full(y.shape[-1], c)).sum()
            assert bool(choice[b, c]) == (own_bits < hp_bits)


@pytest.mark.parametrize("carried", [C, 4])
def test_any_choice_decodes_exactly(model, monkeypatch, carried):
    y = _latents(7, items=3)
    g = torch.Generator().manual_seed(carried)
    _force(monkeypatch, model, lambda s: torch.rand(s, generator=g) < 0.5)
    sections, _ = model.encode(y, 0, C if carried == C else carried)
    g.manual_seed(carried)
    _, y_hat = model.encode(y, 0, carried, write=False)
    decoded = model.decode(sections, tuple(y.shape), 0, carried, "test stream")
    assert torch.equal(decoded, y_hat) and decoded.shape == (3, carried, y.shape[-1])
    g.manual_seed(carried)
    choice = torch.rand((3, carried), generator=g) < 0.5
    z = model.hyper_analysis(y)
    # the symbols use the float64 means; the decoded latents add the fixed-point ones
    hp = torch.round(y[:, :carried] - model.means(z)[:, :carried]) + model.reconstruction_means(z)[:, :carried]
    want = torch.where(choice[..., None], torch.round(y[:, :carried]), hp)
    assert torch.equal(decoded, want)  # own-table channels: round(y); the others: round(y - mean) + mean
    assert len(sections[1]) == (3 * carried + 7) // 8


def test_estimate_is_the_chosen_code_length_and_the_side_bits(model):
    y = _latents(3)
    sections, _ = model.encode(y, 0, C)
    est = model.estimate_bits(y, 0, C)
    assert abs(8 * len(sections[2]) - est["y"]) <= 0.01 * est["y"] + 32
    plain = MeanScaleHyperprior.estimate_bits(model, y, 0, C)["z"]  # the hyperprior's own z estimate
    assert est["z"] == plain + y.shape[0] * C  # + one choice bit per item and channel
    assert abs(8 * len(sections[0]) - plain) <= 0.05 * plain + 32


def test_each_channel_is_coded_with_the_table_the_choice_names(model, monkeypatch):
    """All channels on their own tables: y's section is exactly round(y) coded with channel c's table
    for channel c; all on the hyperprior's: exactly its symbols with its indexes and tables."""
    y = _latents(4)
    z = model.hyper_analysis(y)
    with monkeypatch.context() as m:
        _force(m, model, lambda s: torch.ones(s, dtype=torch.bool))
        own = model.encode(y, 0, C)[0][2]
        _force(m, model, lambda s: torch.zeros(s, dtype=torch.bool))
        hp = model.encode(y, 0, C)[0][2]
    plain = torch.round(y).to(torch.int64).numpy()
    assert own == encode_symbols(plain.reshape(-1), channel_indexes(plain.shape), model.channel_tables)
    assert hp == encode_symbols(model.symbols(y, z).numpy().reshape(-1), model.table_indexes(z).numpy().reshape(-1),
                                model.y_tables)


def test_damaged_streams_are_refused(model):
    y = _latents(2)
    z_payload, choice, y_payload = model.encode(y, 0, C)[0]
    shape = tuple(y.shape)
    with pytest.raises(BitstreamError, match="2 sections"):
        model.decode((z_payload, y_payload), shape, 0, C, "s")
    with pytest.raises(BitstreamError, match=r"holds 3 bytes, 2 item\(s\) x 6 channels need 2"):
        model.decode((z_payload, choice + b"\0", y_payload), shape, 0, C, "s")
    for bit in range(4):  # 12 choice bits, MSB first: the last byte's 4 low bits are padding
        with pytest.raises(BitstreamError, match="padding bits are not zero"):
            model.decode((z_payload, choice[:1] + bytes([choice[1] | (1 << bit)]), y_payload), shape, 0, C, "s")
    with pytest.raises(BitstreamError):
        model.decode((z_payload, choice, y_payload[: len(y_payload) // 4]), shape, 0, C, "s")
    with pytest.raises(BitstreamError):
        model.decode((z_payload[:1], choice, y_payload), shape, 0, C, "s")


# ------------------------------------------------------------------ weights
def test_weights_entries_round_trip_and_refusals(model):
    state = model.state_entries()
    assert CodingTables.from_state(state["channel_tables"]).sha256 == model.channel_tables.sha256
    assert model.table_sets()[-1] is model.channel_tables and len(model.table_sets()) == 3
    fresh = ChannelChoiceHyperprior(C, HYPER, dims=1)
    fresh.load_entries(state)
    assert fresh.channel_tables.sha256 == model.channel_tables.sha256 and fresh.y_tables.sha256 == model.y_tables.sha256
    refusals = [
        ({k: v for k, v in state.items() if k != "channel_tables"}, "lack the channel tables"),
        ({**state, "channel_tables": ChannelChoiceHyperprior(C + 1, HYPER, dims=1).channel_prior.export_tables().to_state()},
         "7 stored channel tables for 6 latent channels"),
        ({**state, "channel_tables": CodingTables.from_pmfs([np.full(3, 1 / 3)] * C, [0] * C, 12).to_state()},
         "differ in precision"),
    ]
    for bad, message in refusals:
        other = ChannelChoiceHyperprior(C, HYPER, dims=1)
        with pytest.raises(ModelError, match=message):
            other.load_entries(bad)
        assert other.channel_tables is None and other.y_tables is None  # nothing half-loaded


def test_export_freezes_the_channel_prior_and_the_context_is_refused():
    m = ChannelChoiceHyperprior(C, HYPER, dims=1)
    with pytest.raises(ModelError, match="no coding tables"):
        m.table_sets()
    m.export()
    assert m.channel_tables.sha256 == m.channel_prior.export_tables().sha256
    with pytest.raises(ModelError, match="without the channel context"):
        ChannelChoiceHyperprior(8, HyperpriorConfig(context_slices=2), dims=2)


def test_sections_side_information_and_a_whole_number_of_choice_bytes(model):
    assert model.num_sections(0) == 3 and model.side_sections == 2  # z and the choice are side information
    y = _latents(6, items=2)
    z_payload, choice, y_payload = model.encode(y, 0, 4)[0]  # 2 items x 4 channels: exactly one byte
    assert len(choice) == 1
    assert model.decode((z_payload, choice, y_payload), tuple(y.shape), 0, 4, "s").shape == (2, 4, y.shape[-1])
    with pytest.raises(BitstreamError, match="holds 2 bytes"):
        model.decode((z_payload, choice + b"\0", y_payload), tuple(y.shape), 0, 4, "s")


def test_a_side_information_section_below_its_floor_is_refused_by_name(model):
    y = _latents(8, positions=512)
    z_payload, choice, y_payload = model.encode(y, 0, C)[0]
    zshape = model.hyper_shape(tuple(y.shape))
    floor_bits = math.prod(zshape) // zshape[1] * float(np.sum(model.z_tables(0).min_bits()))
    assert 8 * len(z_payload) >= floor_bits > 64  # a real stream clears the floor; half of it is refused
    short = z_payload[: int(floor_bits / 2 / 8) // 4 * 4 - 4]
    with pytest.raises(BitstreamError, match=r"too short for the declared s \(side information\)"):
        model.decode((short, choice, y_payload), tuple(y.shape), 0, C, "s")


def test_new_tables_are_used_after_a_second_export():
    m = ChannelChoiceHyperprior(C, HYPER, dims=1).eval()
    m.export()
    first = m.combined()
    assert m.combined() is first  # cached while the tables stay the same
    with torch.no_grad():
        for p in m.channel_prior.parameters():
            p.add_(0.5)
    m.export()  # new channel tables (new objects), same hyperprior tables
    second = m.combined()
    assert second is not first and second.sha256 == combine_tables(m.y_tables, m.channel_tables).sha256
    m.y_tables = combine_tables(m.y_tables, CodingTables.from_pmfs([np.full(3, 1 / 3)], [0], 16))
    assert m.combined().num_tables == m.y_tables.num_tables + C  # a new y table set is picked up too
