"""The spatiotemporal entropy model (``lcodec.entropy.temporal``) on its own, small and fast: every
piece of the module docstring's scheme checked against references written here (integer heads as
int64 correlations, Gaussian bin masses in float64, block sums as loops), exact round trips,
causality (per slice and per frame), the block-flag layout, the refusals and the weights' entries."""
from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch

from lcodec.entropy.channel_context import ChannelContext
from lcodec.entropy.hyperprior import HyperpriorConfig, MeanScaleHyperprior
from lcodec.entropy.temporal import (CONTEXT_CLAMP, FrameState, TemporalConfig, TemporalHyperprior,
                                     state_features)
from lcodec.errors import BitstreamError, ModelError
from tests.entropy.references import exact_head_ref as shared_head_ref

C, SLICES, CS, HID, NS = 4, 2, 2, 8, 12
HYPER = HyperpriorConfig(hyper_channels=3, analysis_hidden=8, index_hidden=HID, num_scales=NS, min_scale=0.2,
                         max_scale=20.0, context_slices=SLICES, context_hidden=0)
LIKELIHOOD_FLOOR = 1e-9  # GaussianConditional's documented default likelihood bound


def make_base(rates=2, seed=0, hyper=HYPER, channels=C) -> MeanScaleHyperprior:
    torch.manual_seed(seed)
    base = MeanScaleHyperprior(channels, hyper, rates=rates)
    with torch.no_grad():
        base.h_a[2].weight.mul_(6)  # z spread over several integers
        torch.nn.init.normal_(base.h_m[2].weight, std=0.3)  # non-zero, non-integer means
        base.h_m[2].bias.normal_(0, 0.5)
        gen = torch.Generator().manual_seed(seed + 3)
        for head in base.context.heads:
            head.weight.mul_(8)  # every table in use
            head.bias.add_(torch.randn(head.bias.shape, generator=gen))  # not the heads' initial bias
            ctx = head.weight[:, HID:]  # the earlier slices matter (init_from_head left them zero)
            ctx.copy_(torch.randn(ctx.shape, generator=gen) * 0.6)
        if base.rate_priors is not None:
            for r, prior in enumerate(base.rate_priors):  # the rate points' z priors differ
                for p in prior.parameters():
                    p.add_(0.2 * r)
    base.eval()
    base.export()
    return base


def make(block=4, rates=2, seed=0, temporal_weights=True) -> TemporalHyperprior:
    base = make_base(rates, seed)
    tm = TemporalHyperprior(base, TemporalConfig(context_slices=SLICES, block=block))
    if temporal_weights:  # the temporal context (|k(t-1)|) changes the tables
        gen = torch.Generator().manual_seed(seed + 7)
        with torch.no_grad():
            for head in tm.context.heads:
                cols = head.weight[:, HID : HID + CS]
                cols.copy_(torch.randn(cols.shape, generator=gen) * 0.6)
    return tm.eval()


def frame(shape=(2, C, 6, 10), seed=1, spread=3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * spread


def random_state(shape, seed=2, lo=-4, hi=5) -> torch.Tensor:
    return torch.randint(lo, hi, shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ references
def feats(k: torch.Tensor) -> torch.Tensor:
    """16 * min(|k|, 15), the heads' documented fixed-point context input."""
    return k.abs().clamp(max=15) * 16


def exact_head_ref(conv, x: torch.Tensor) -> torch.Tensor:
    return shared_head_ref(conv, x, NS)


def bits_ref(sym: torch.Tensor, idx: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """-log2 of the unit bin's mass around ``sym`` under N(0, table[idx]) in float64 (floor 1e-9)."""
    v = sym.double().abs()
    s = table.double()[idx]
    p = 0.5 * torch.erfc((v - 0.5) / (s * math.sqrt(2))) - 0.5 * torch.erfc((v + 0.5) / (s * math.sqrt(2)))
    return -torch.log2(p.clamp_min(LIKELIHOOD_FLOOR))


def block_sums(per_pos: torch.Tensor, b: int) -> torch.Tensor:
    """(B, h, w) -> (B, ceil(h/b), ceil(w/b)) sums over each b x b block (partial at the edges)."""
    n, h, w = per_pos.shape
    out = torch.zeros(n, -(-h // b), -(-w // b), dtype=per_pos.dtype)
    for i in range(h):
        for j in range(w):
            out[:, i // b, j // b] += per_pos[:, i, j]
    return out


def reference(tm: TemporalHyperprior, y64: torch.Tensor, prev_k: torch.Tensor):
    """The module docstring's scheme in float64 with int64 heads: z, k, both modes' indexes and
    symbols per slice, per-block bits of each mode, the flags (temporal strictly cheaper)."""
    base, b = tm.base, tm.cfg.block
    m64 = copy.deepcopy(base).double()
    with torch.no_grad():
        z = torch.round(m64.h_a(y64))
        means = m64.h_m(z)
    k = torch.round(y64 - means).long()
    hidden = base.hidden(z.long())
    table = base.gaussian.scale_table
    ks = list(k.split(CS, 1))
    intra_idx, temp_idx, intra_bits, temp_bits = [], [], 0, 0
    for s in range(SLICES):
        rows = slice(s * CS, (s + 1) * CS)
        earlier = [feats(t) for t in ks[:s]]
        intra_idx.append(exact_head_ref(base.context.heads[s], torch.cat([hidden.long(), *earlier], 1)))
        temp_idx.append(exact_head_ref(tm.context.heads[s],
                                       torch.cat([hidden.long(), feats(prev_k[:, rows]), *earlier], 1)))
        intra_bits = intra_bits + bits_ref(ks[s], intra_idx[s], table).sum(1)
        temp_bits = temp_bits + bits_ref(ks[s] - prev_k[:, rows], temp_idx[s], table).sum(1)
    intra_blocks, temp_blocks = block_sums(intra_bits, b), block_sums(temp_bits, b)
    flags = temp_blocks < intra_blocks
    pos = torch.zeros(k.shape[0], 1, *k.shape[2:], dtype=torch.bool)
    for i in range(k.shape[2]):
        for j in range(k.shape[3]):
            pos[:, 0, i, j] = flags[:, i // b, j // b]
    symbols = [torch.where(pos, ks[s] - prev_k[:, s * CS : (s + 1) * CS], ks[s]) for s in range(SLICES)]
    indexes = [torch.where(pos, temp_idx[s], intra_idx[s]) for s in range(SLICES)]
    # the decoded latents add the fixed-point means (tested against PyTorch in test_exact_means.py)
    return dict(z=z.long(), means=means, recon=base.reconstruction_means(z.long()), k=k, hidden=hidden, intra_idx=intra_idx, temp_idx=temp_idx,
                intra_blocks=intra_blocks, temp_blocks=temp_blocks, flags=flags, pos=pos, symbols=symbols,
                indexes=indexes)


def packbits_ref(flags: torch.Tensor) -> bytes:
    """One bit per block in (batch, row, column) order, the first in each byte's most significant bit."""
    bits = flags.reshape(-1).tolist()
    out = bytearray(-(-len(bits) // 8))
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


# ------------------------------------------------------------------ small pieces and defaults
def test_documented_defaults_and_constants():
    cfg = TemporalConfig()
    assert cfg.context_slices == 4 and cfg.block == 4
    assert cfg.to_dict() == {"context_slices": 4, "block": 4}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.block = 2  # type: ignore[misc]
    assert CONTEXT_CLAMP == 15
    assert TemporalHyperprior.downsample == 2
    state = FrameState(torch.zeros(1), torch.ones(1, dtype=torch.long))
    assert FrameState._fields == ("y_hat", "k")
    y_hat, k = state
    assert y_hat is state.y_hat and k is state.k


def test_state_features_is_sixteen_times_the_clamped_magnitude():
    k = torch.arange(-40, 41)
    got = state_features(k)
    assert torch.equal(got, torch.tensor([16 * min(abs(v), 15) for v in range(-40, 41)]))
    kf = torch.tensor([[-16.0, 3.0], [15.0, -0.0]])
    assert torch.equal(state_features(kf), torch.tensor([[240.0, 48.0], [240.0, 0.0]]))


def test_blocks_are_ceilings_and_expand_repeats_each_flag_over_its_block():
    for block in (2, 3, 4):
        tm = make(block=block)
        for h, w in ((6, 10), (8, 8), (2, 14)):
            assert tm.blocks((2, C, h, w)) == (math.ceil(h / block), math.ceil(w / block))
            rows, cols = tm.blocks((2, C, h, w))
            flags = torch.rand(2, 1, rows, cols, generator=torch.Generator().manual_seed(h * w)) < 0.5
            got = tm._expand(flags, (2, C, h, w))
            assert got.shape == (2, 1, h, w)
            for n in range(2):
                for i in range(h):
                    for j in range(w):
                        assert bool(got[n, 0, i, j]) == bool(flags[n, 0, i // block, j // block])


def test_flag_bytes_one_bit_per_block_rounded_up():
    tm = make(block=4)
    assert tm._flag_bytes((2, C, 6, 10)) == 2  # 2 items * 2 * 3 blocks = 12 bits
    assert tm._flag_bytes((1, C, 8, 8)) == 1  # 4 bits
    assert tm._flag_bytes((4, C, 8, 8)) == 2  # 16 bits: exactly two bytes
    assert tm._flag_bytes((1, C, 34, 2)) == 2  # 9 rows of blocks: 9 bits


# ------------------------------------------------------------------ construction
def test_constructor_refuses_bases_it_cannot_extend():
    torch.manual_seed(0)
    plain = MeanScaleHyperprior(C, dataclasses.replace(HYPER, context_slices=0))
    with pytest.raises(ModelError, match="extends a 2-D hyperprior whose channel context only picks tables"):
        TemporalHyperprior(plain, TemporalConfig(context_slices=SLICES))
    one_d = MeanScaleHyperprior(C, dataclasses.replace(HYPER, context_slices=0), dims=1)
    with pytest.raises(ModelError, match="extends a 2-D hyperprior"):
        TemporalHyperprior(one_d, TemporalConfig(context_slices=SLICES))
    with_means = MeanScaleHyperprior(C, dataclasses.replace(HYPER, context_hidden=4))
    with pytest.raises(ModelError, match="channel context only picks tables"):
        TemporalHyperprior(with_means, TemporalConfig(context_slices=SLICES))
    mixture = MeanScaleHyperprior(C, dataclasses.replace(HYPER, context_mixture=True))
    with pytest.raises(ModelError, match="extends a 2-D hyperprior"):
        TemporalHyperprior(mixture, TemporalConfig(context_slices=SLICES))
    base = make_base()
    with pytest.raises(ModelError, match="the base codes 2 slices, the config says 4"):
        TemporalHyperprior(base)  # the default config: 4 slices
    four = MeanScaleHyperprior(8, dataclasses.replace(HYPER, context_slices=4))
    assert TemporalHyperprior(four).cfg == TemporalConfig()  # default config fits a 4-slice base


def test_own_tensors_are_the_temporal_heads_only_and_the_base_is_shared():
    base = make_base()
    tm = TemporalHyperprior(base, TemporalConfig(context_slices=SLICES, block=4))
    assert tm.base is base and tm.channels == C
    assert "base" not in dict(tm.named_children())
    assert set(tm.state_dict()) == {f"context.heads.{s}.{p}" for s in range(SLICES) for p in ("weight", "bias")}
    ctx = tm.context
    assert isinstance(ctx, ChannelContext) and ctx.extra and len(ctx.means) == 0
    assert (ctx.slices, ctx.width, ctx.hidden_channels) == (SLICES, CS, HID)
    for s, head in enumerate(ctx.heads):  # hidden, this slice's |k(t-1)|, the earlier slices
        assert (head.in_channels, head.out_channels, head.out_max) == (HID + CS * (s + 1), CS, NS - 1)
    assert tm.num_sections == 1 + SLICES == base.num_sections(0)


def test_init_from_base_copies_the_base_heads_blind_to_the_temporal_context():
    tm = make(temporal_weights=True)
    tm.init_from_base()
    for ours, theirs in zip(tm.context.heads, tm.base.context.heads):
        assert torch.equal(ours.weight[:, :HID], theirs.weight[:, :HID])
        assert ours.weight[:, HID : HID + CS].abs().sum() == 0
        assert torch.equal(ours.weight[:, HID + CS :], theirs.weight[:, HID:])
        assert torch.equal(ours.bias, theirs.bias)
    # hence: whatever the previous state, the temporal heads pick the intra heads' tables
    y64 = frame()
    prev = random_state(y64.shape, lo=-30, hi=30)
    ref = reference(tm, y64, prev)
    assert all(torch.equal(a, b) for a, b in zip(ref["temp_idx"], ref["intra_idx"]))
    assert len(torch.cat(ref["intra_idx"]).unique()) > 4
    z, k, hidden, _ = tm._analyse(y64, prev)
    for mode in (False, True):
        flags = torch.full((2, 1, 6, 10), mode)
        _, idx, _ = tm._code(hidden, prev, flags, lambda s, i, o: k[:, s * CS : (s + 1) * CS] - o)
        assert all(torch.equal(a, b) for a, b in zip(idx, ref["intra_idx"]))


# ------------------------------------------------------------------ exact pieces
@pytest.mark.parametrize("block,shape", [(4, (2, C, 6, 10)), (2, (1, C, 8, 4)), (3, (2, C, 4, 8))])
def test_analyse_picks_the_cheaper_mode_per_block(block, shape):
    tm = make(block=block)
    y64 = frame(shape)
    k_true = reference(tm, y64, torch.zeros(shape, dtype=torch.long))["k"]
    prev = random_state(shape, lo=-6, hi=7)
    keep = torch.rand(shape[0], 1, *shape[2:], generator=torch.Generator().manual_seed(9)) < 0.5
    prev = torch.where(keep, k_true, prev)  # a mix of repeated and unrelated positions
    ref = reference(tm, y64, prev)
    z, k, hidden, flags = tm._analyse(y64, prev)
    assert torch.equal(z, ref["z"]) and torch.equal(k, ref["k"])
    assert torch.equal(hidden, ref["hidden"].double())
    assert flags.dtype == torch.bool and flags.shape == (shape[0], 1, *tm.blocks(shape))
    assert torch.equal(flags[:, 0], ref["flags"])
    assert 0 < int(ref["flags"].sum()) < ref["flags"].numel()  # both modes occur


def test_code_runs_each_slice_with_its_modes_heads_and_offsets():
    tm = make(block=2)
    y64 = frame()
    prev = random_state(y64.shape)
    ref = reference(tm, y64, prev)
    k, hidden = ref["k"], ref["hidden"].double()
    pos = torch.rand(2, 1, 6, 10, generator=torch.Generator().manual_seed(4)) < 0.5
    seen = []

    def symbol_of(s, index, offset):
        seen.append((s, index.clone(), offset.clone()))
        return k[:, s * CS : (s + 1) * CS] - offset

    symbols, indexes, states = tm._code(hidden, prev, pos, symbol_of)
    assert [s for s, _, _ in seen] == list(range(SLICES))
    for s in range(SLICES):
        rows = slice(s * CS, (s + 1) * CS)
        want_idx = torch.where(pos, ref["temp_idx"][s], ref["intra_idx"][s])
        want_off = torch.where(pos, prev[:, rows], 0)
        assert torch.equal(seen[s][1], want_idx) and torch.equal(indexes[s], want_idx)
        assert torch.equal(seen[s][2], want_off)
        assert torch.equal(symbols[s], k[:, rows] - want_off)
        assert torch.equal(states[s], k[:, rows])  # the state is the symbol plus its offset
    for mode, key in ((True, "temp_idx"), (False, "intra_idx")):  # one mode everywhere
        everywhere = torch.full((2, 1, 6, 10), mode)
        _, idx, _ = tm._code(hidden, prev, everywhere, lambda s, i, o: k[:, s * CS : (s + 1) * CS] - o)
        assert all(torch.equal(a, b) for a, b in zip(idx, ref[key]))
    assert not torch.equal(ref["temp_idx"][1], ref["intra_idx"][1])  # the modes' tables differ


def test_a_slices_tables_do_not_depend_on_its_own_or_later_slices():
    tm = make()
    y64 = frame()
    prev = random_state(y64.shape)
    ref = reference(tm, y64, prev)
    k, hidden = ref["k"], ref["hidden"].double()
    flags = torch.rand(2, 1, 6, 10, generator=torch.Generator().manual_seed(3)) < 0.5

    def run(k_states, prev_k):
        return tm._code(hidden, prev_k, flags, lambda s, i, o: k_states[:, s * CS : (s + 1) * CS] - o)[1]

    base_idx = run(k, prev)
    k2 = k.clone()
    k2[:, CS:] = random_state(k2[:, CS:].shape, seed=11, lo=-9, hi=9)  # slice 1's states change
    changed = run(k2, prev)
    assert torch.equal(changed[0], base_idx[0]) and torch.equal(changed[1], base_idx[1])
    k3 = k.clone()
    k3[:, :CS] = random_state(k3[:, :CS].shape, seed=12, lo=-9, hi=9)  # slice 0's states change
    assert torch.equal(run(k3, prev)[0], base_idx[0]) and not torch.equal(run(k3, prev)[1], base_idx[1])
    p2 = prev.clone()
    p2[:, CS:] = random_state(p2[:, CS:].shape, seed=13, lo=-9, hi=9)  # slice 1's previous state only
    moved = run(k, p2)
    assert torch.equal(moved[0], base_idx[0]) and not torch.equal(moved[1], base_idx[1])


def test_encode_writes_the_flags_then_z_then_the_slices_of_the_chosen_modes():
    tm = make(block=4)
    y64 = frame()
    k_true = reference(tm, y64, torch.zeros(y64.shape, dtype=torch.long))["k"]
    prev = torch.where(torch.rand(2, 1, 6, 10, generator=torch.Generator().manual_seed(5)) < 0.5,
                       k_true, random_state(y64.shape))
    ref = reference(tm, y64, prev)
    sections, state = tm.encode(y64, prev, 1)
    assert len(sections) == tm.num_sections == 3
    nflag = math.ceil(2 * 2 * 3 / 8)
    assert sections[0][:nflag] == packbits_ref(ref["flags"])
    assert torch.equal(state.k, ref["k"]) and state.k.dtype == torch.int64
    assert state.y_hat.dtype == torch.float64
    assert torch.equal(state.y_hat, ref["k"].double() + ref["recon"])
    base = tm.base
    z, read = base.readers((sections[0][nflag:], *sections[1:]), tuple(y64.shape), 1, "test")
    assert torch.equal(z, ref["z"])
    for s in range(SLICES):  # the payloads decode to the chosen modes' symbols under their tables
        assert torch.equal(read(s, ref["indexes"][s]), ref["symbols"][s])


@pytest.mark.parametrize("block,shape,rate", [(4, (2, C, 6, 10), 1), (2, (1, C, 4, 8), 0), (4, (3, C, 8, 6), 0)])
def test_round_trip_is_exact_and_reconstructs_as_the_intra_model(block, shape, rate):
    tm = make(block=block)
    y64 = frame(shape)
    k_true = reference(tm, y64, torch.zeros(shape, dtype=torch.long))["k"]
    prev = torch.where(torch.rand(shape[0], 1, *shape[2:], generator=torch.Generator().manual_seed(8)) < 0.5,
                       k_true, random_state(shape))
    sections, enc = tm.encode(y64, prev, rate)
    dec = tm.decode(sections, shape, prev, rate)
    assert isinstance(dec, FrameState)
    assert torch.equal(dec.k, enc.k) and torch.equal(dec.y_hat, enc.y_hat)
    # the rate depends on the mode, never the reconstruction: as the intra model decodes the frame
    intra = tm.base.decode(tm.base.encode(y64, rate, C)[0], shape, rate, C, "intra")
    assert torch.equal(dec.y_hat, intra)


def test_a_repeated_frame_takes_the_temporal_mode_wherever_it_has_non_zero_states():
    """With the heads as initialised (blind to |k(t-1)|) a static frame's temporal symbols are all
    zero under the intra tables: strictly cheaper exactly in the blocks holding a non-zero state."""
    tm = make(block=2, temporal_weights=False)
    with torch.no_grad():  # means zero, so that small latents give sparse states
        tm.base.h_m[2].weight.zero_()
        tm.base.h_m[2].bias.zero_()
    y64 = frame((2, C, 6, 10), spread=0.25)
    k = reference(tm, y64, torch.zeros(y64.shape, dtype=torch.long))["k"]
    _, _, _, flags = tm._analyse(y64, k)
    nonzero = block_sums((k != 0).sum(1).double(), 2) > 0
    assert 0 < int(nonzero.sum()) < nonzero.numel()
    assert torch.equal(flags[:, 0], nonzero)
    sections, state = tm.encode(y64, k, 0)
    assert torch.equal(tm.decode(sections, tuple(y64.shape), k, 0).k, k)
    still, fresh = tm.estimate_bits(y64, k, 0)["y"], tm.estimate_bits(y64, torch.zeros_like(k), 0)["y"]
    assert still < fresh
    # a previous state of zeros makes both modes cost the same: ties go to the intra mode
    _, _, _, tie = tm._analyse(y64, torch.zeros_like(k))
    assert not tie.any()


def test_frames_decode_in_order_from_the_decoders_own_states():
    """A chain of frames: each frame is coded against the previous frame's state only, and the
    decoder, holding only what it decoded, rebuilds every state; a later frame never changes an
    earlier frame's sections."""
    tm = make(block=2)
    shape = (1, C, 4, 6)
    frames = [frame(shape, seed=20)]
    for t in range(1, 4):  # small changes from frame to frame
        frames.append(frames[-1] + 0.6 * frame(shape, seed=20 + t))
    prev, streams, states = torch.zeros(shape, dtype=torch.long), [], []
    for y in frames:
        sections, state = tm.encode(y, prev, 0)
        streams.append(sections)
        states.append(state)
        prev = state.k
    again = tm.encode(frames[0], torch.zeros(shape, dtype=torch.long), 0)[0]
    assert again == streams[0]
    prev = torch.zeros(shape, dtype=torch.long)
    for t, sections in enumerate(streams):
        dec = tm.decode(sections, shape, prev, 0, what=f"frame {t}")
        assert torch.equal(dec.k, states[t].k) and torch.equal(dec.y_hat, states[t].y_hat)
        prev = dec.k
    # the wrong previous state does not decode the frame's states (the stream depends on it)
    try:
        wrong = tm.decode(streams[2], shape, states[0].k, 0)
    except BitstreamError:
        pass
    else:
        assert not torch.equal(wrong.k, states[2].k)


def test_estimate_bits_is_the_cheaper_mode_per_block():
    tm = make(block=4)
    y64 = frame()
    prev = random_state(y64.shape)
    ref = reference(tm, y64, prev)
    est = tm.estimate_bits(y64, prev, 1)
    assert set(est) == {"y", "z", "flags"}
    want_y = float(torch.minimum(ref["intra_blocks"], ref["temp_blocks"]).sum())
    assert est["y"] == pytest.approx(want_y, rel=1e-9)
    prior = tm.base.rate_priors[1]
    with torch.no_grad():
        want_z = float(-torch.log2(prior.likelihood(ref["z"].float())).sum())
    assert est["z"] == pytest.approx(want_z, rel=1e-6)
    assert est["flags"] == 8.0 * 2
    sections, _ = tm.encode(y64, prev, 1)
    y_bytes = sum(map(len, sections[1:]))
    assert 0.7 * 8 * y_bytes <= est["y"] <= 1.3 * 8 * y_bytes + 64


# ------------------------------------------------------------------ refusals
def test_encode_and_decode_refuse_bad_shapes_and_rates():
    tm = make()
    y64 = frame()
    prev = random_state(y64.shape)
    for shape in ((2, C, 6), (2, C + 1, 6, 10), (2, C, 5, 10), (2, C, 6, 9)):
        with pytest.raises(ModelError, match=r"temporal prior codes \(B, 4, even h, even w\) latents, got"):
            tm.encode(frame(shape), prev, 0)
        with pytest.raises(ModelError, match="even h, even w"):
            tm.decode([b""] * 3, shape, prev, 0)
    for rate in (2, -1):
        with pytest.raises(ModelError, match=rf"rate point {rate} outside 0..1"):
            tm.encode(y64, prev, rate)
        with pytest.raises(ModelError, match=rf"rate point {rate} outside 0..1"):
            tm.decode([b""] * 3, tuple(y64.shape), prev, rate)
    no_rates = TemporalHyperprior(make_base(rates=0), TemporalConfig(context_slices=SLICES))
    no_rates._check((2, C, 6, 10), 5)  # a single z prior: the rate only picks nothing


def test_decode_refuses_wrong_section_counts_and_truncated_flags():
    tm = make()
    y64 = frame()
    prev = random_state(y64.shape)
    shape = tuple(y64.shape)
    sections, _ = tm.encode(y64, prev, 0)
    with pytest.raises(ModelError, match="frame: expected 3 sections, got 2"):
        tm.decode(sections[:2], shape, prev, 0)
    with pytest.raises(ModelError, match="clip 7: expected 3 sections, got 4"):
        tm.decode([*sections, b""], shape, prev, 0, what="clip 7")
    with pytest.raises(BitstreamError, match="clip 7: its block flags are truncated"):
        tm.decode([sections[0][:1], *sections[1:]], shape, prev, 0, what="clip 7")
    with pytest.raises(BitstreamError, match=r"side information"):
        tm.decode([sections[0][:2], *sections[1:]], shape, prev, 0)  # the flags and no z
    with pytest.raises(BitstreamError, match="too short"):
        tm.decode([sections[0], sections[1][:2], sections[2]], shape, prev, 0)
    big = (2, C, 60, 100)  # a much larger declared grid: its flags present, z far too short for it
    padded = [bytes(tm._flag_bytes(big)) + sections[0][2:], *sections[1:]]
    with pytest.raises(BitstreamError, match=r"too short for the declared frame \(side information\)"):
        tm.decode(padded, big, torch.zeros(big, dtype=torch.long), 0)


# ------------------------------------------------------------------ training path
def temporal64(tm: TemporalHyperprior) -> TemporalHyperprior:
    """The same model in float64 (the training path's heads then compute exact integers)."""
    base64 = copy.deepcopy(tm.base).double()
    t64 = TemporalHyperprior(base64, tm.cfg)
    t64.load_state_dict(tm.state_dict())
    return t64.double().eval()


@pytest.mark.parametrize("block,shape", [(4, (2, C, 8, 12)), (2, (3, C, 6, 4))])
def test_forward_charges_each_block_its_cheaper_mode(block, shape):
    tm = make(block=block)
    y64 = frame(shape)
    k_true = reference(tm, y64, torch.zeros(shape, dtype=torch.long))["k"]
    prev = torch.where(torch.rand(shape[0], 1, *shape[2:], generator=torch.Generator().manual_seed(6)) < 0.5,
                       k_true, random_state(shape))
    ref = reference(tm, y64, prev)
    t64 = temporal64(tm)
    rates = torch.tensor([1, 0, 1][: shape[0]])
    y_hat, bits = t64(y64, prev.double(), rates)
    assert set(bits) == {"y", "z"} and bits["y"].shape == bits["z"].shape == (shape[0],)
    want_y = torch.minimum(ref["intra_blocks"], ref["temp_blocks"]).flatten(1).sum(1)
    torch.testing.assert_close(bits["y"], want_y, rtol=1e-12, atol=1e-9)
    for i, r in enumerate(rates.tolist()):  # z's bits: the rounded z under the item's rate prior
        with torch.no_grad():
            want_z = -torch.log2(t64.base.rate_priors[r].likelihood(ref["z"][i : i + 1].double())).sum()
        torch.testing.assert_close(bits["z"][i], want_z)
    assert not torch.allclose(bits["z"][0], bits["z"][1])  # the two rate points' priors differ
    torch.testing.assert_close(y_hat, ref["k"].double() + ref["means"], rtol=0, atol=1e-12)  # training: float means
    _, enc = tm.encode(y64, prev, 0)
    assert torch.equal(enc.y_hat, ref["k"].double() + ref["recon"])  # coding: the fixed-point means


def test_forward_charges_z_as_the_rounded_z_even_when_training():
    """The z bits are of the rounded symbols: with the base's prior in training mode (noisy bits)
    two latents with the same round(h_a(y)) cost the same under the same noise."""
    t64 = temporal64(make(block=2)).train()
    t64.base.train()  # not a submodule: its prior's noisy training path on explicitly
    shape = (2, C, 6, 4)
    y64 = frame(shape)
    nudged = y64 + 1e-4 * frame(shape, seed=33)
    with torch.no_grad():
        za, zb = t64.base.h_a(y64), t64.base.h_a(nudged)
    assert torch.equal(torch.round(za), torch.round(zb)) and not torch.equal(za, zb)
    prev = random_state(shape)
    runs = []
    for y in (y64, nudged):
        torch.manual_seed(0)
        runs.append(t64(y, prev.double(), torch.tensor([0, 1]))[1]["z"])
    assert torch.equal(runs[0], runs[1])


def test_forward_charges_partial_edge_blocks_their_own_bits():
    tm = make(block=4)
    shape = (1, C, 6, 10)  # blocks of 2 and 4 rows, 4 and 2 columns at the edges
    y64 = frame(shape)
    prev = random_state(shape)
    ref = reference(tm, y64, prev)
    _, bits = temporal64(tm)(y64, prev.double(), torch.tensor([0]))
    want_y = torch.minimum(ref["intra_blocks"], ref["temp_blocks"]).flatten(1).sum(1)
    torch.testing.assert_close(bits["y"], want_y, rtol=1e-9, atol=1e-9)


def test_forward_trains_the_temporal_heads_only():
    tm = make(block=2).train()
    shape = (2, C, 8, 6)
    y64 = frame(shape)
    k_true = reference(tm, y64, torch.zeros(shape, dtype=torch.long))["k"]
    prev = torch.where(torch.rand(2, 1, 8, 6, generator=torch.Generator().manual_seed(2)) < 0.5,
                       k_true, random_state(shape))
    y = y64.float().requires_grad_()
    _, bits = tm(y, prev.float(), torch.tensor([0, 1]))
    bits["y"].sum().backward()
    for head in tm.context.heads:
        assert head.weight.grad is not None and head.weight.grad[:, HID : HID + CS].abs().sum() > 0
        assert head.bias.grad is not None
    assert all(p.grad is None for p in tm.base.parameters())  # the base is frozen


# ------------------------------------------------------------------ weights
def test_entries_round_trip_and_refuse_other_configs():
    tm = make(block=2)
    entries = tm.state_entries()
    assert entries == {"temporal_config": {"context_slices": SLICES, "block": 2}}
    other = TemporalHyperprior(make_base(seed=4), TemporalConfig(context_slices=SLICES, block=2))
    other.load_entries(entries)
    assert other.cfg == tm.cfg
    with pytest.raises(ModelError, match="weights lack the temporal prior's config"):
        other.load_entries({"hyper_config": {}})
    with pytest.raises(ModelError, match="weights were trained for"):
        other.load_entries({"temporal_config": {"context_slices": SLICES, "block": 4}})
    with pytest.raises(ModelError, match="unknown TemporalConfig keys"):
        other.load_entries({"temporal_config": {"context_slices": SLICES, "block": 2, "extra": 1}})
    assert other.cfg == TemporalConfig(context_slices=SLICES, block=2)  # a refusal changes nothing
