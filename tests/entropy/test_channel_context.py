"""The channel context (``lcodec.entropy.channel_context``) on its own, small and fast: the heads'
exact table indexes against an int64 correlation written here, the slice order and its causality
(slice s reads only the symbols of slices < s), the mean corrections against a float64 loop, the
training path's straight-through rounding and gradients, exact encode/decode round trips, banded
evaluation, initialisation from an index head, the refusals, and its use by the hyperprior."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch import nn

from lcodec.entropy.channel_context import CONTEXT_CLAMP, ChannelContext, _ste_round
from lcodec.entropy.gaussian import GaussianConditional, scale_table
from lcodec.entropy.hyperprior import HyperpriorConfig, MeanScaleHyperprior
from lcodec.entropy.integer_net import IntegerConv
from lcodec.errors import ModelError
from tests.entropy.references import exact_head_ref as shared_head_ref

C, S, CS, H, NS, MH = 6, 3, 2, 5, 12, 4
B, HH, WW = 2, 5, 7  # a non-square grid, batch > 1


def make(mean_hidden=MH, extra=False, seed=0, slices=S, channels=C) -> ChannelContext:
    torch.manual_seed(seed)
    ctx = ChannelContext(channels, slices, H, NS, mean_hidden=mean_hidden, extra=extra)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for head in ctx.heads:  # weights that use every table and read every input
            head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.08)
            head.bias.add_(torch.randn(head.bias.shape, generator=gen))
        for net in ctx.means:  # mean corrections that move with the residuals
            net[2].weight.copy_(torch.randn(net[2].weight.shape, generator=gen) * 0.4)
            net[2].bias.copy_(torch.randn(net[2].bias.shape, generator=gen) * 0.3)
    return ctx.eval()


def data(seed=1, b=B, h=HH, w=WW, channels=C):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(b, channels, h, w, generator=g, dtype=torch.float64) * 6
    means = torch.randn(b, channels, h, w, generator=g, dtype=torch.float64) * 2
    hidden = torch.randint(0, 256, (b, H, h, w), generator=g).double()
    return y, means, hidden


def random_symbols(shape, seed, lo=-20, hi=21, slices=S) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return list(torch.randint(lo, hi, shape, generator=g).split(shape[1] // slices, 1))


# ------------------------------------------------------------------ references
def feats(sym: torch.Tensor) -> torch.Tensor:
    return sym.abs().clamp(max=15) * 16


def exact_head_ref(conv, x: torch.Tensor) -> torch.Tensor:
    return shared_head_ref(conv, x, NS)


def indexes_ref(ctx: ChannelContext, s: int, hidden, symbols, extra=None) -> torch.Tensor:
    own = [extra[:, s * ctx.width : (s + 1) * ctx.width].long()] if extra is not None else []
    inputs = torch.cat([hidden.long(), *own, *[feats(t) for t in symbols[:s]]], 1)
    return exact_head_ref(ctx.heads[s], inputs)


def encode_ref(ctx: ChannelContext, y64, means64, hidden, extra=None):
    """The module docstring's scheme in float64: slice by slice, delta_s from the earlier decoded
    residuals r_hat = symbol + delta, symbol = round(y - mean - delta), y_hat = means + r_hat."""
    nets = [copy.deepcopy(net).double() for net in ctx.means]
    cs = ctx.width
    symbols, indexes, residuals = [], [], []
    for s in range(ctx.slices):
        rows = slice(s * cs, (s + 1) * cs)
        with torch.no_grad():
            delta = nets[s - 1](torch.cat(residuals, 1)) if s and nets else torch.zeros_like(y64[:, rows])
        indexes.append(indexes_ref(ctx, s, hidden, symbols, extra))
        sym = torch.round(y64[:, rows] - means64[:, rows] - delta)
        symbols.append(sym.long())
        residuals.append(sym + delta)
    return symbols, indexes, means64 + torch.cat(residuals, 1)


# ------------------------------------------------------------------ construction
def test_constants_and_layer_geometry_follow_the_docstring():
    assert CONTEXT_CLAMP == 15
    assert ChannelContext.band_positions == 2**15
    torch.manual_seed(0)
    for extra in (False, True):
        ctx = ChannelContext(C, S, H, NS, mean_hidden=MH, extra=extra)
        assert (ctx.channels, ctx.slices, ctx.hidden_channels, ctx.width, ctx.extra) == (C, S, H, CS, extra)
        assert len(ctx.heads) == S
        for s, head in enumerate(ctx.heads):
            assert isinstance(head, IntegerConv)
            assert head.in_channels == H + CS * (s + extra) and head.out_channels == CS
            assert head.kernel_size == 3 and head.stride == 1 and not head.transposed
            assert head.input_range == (0, 255) and head.in_frac == 4 and head.out_frac == 0
            assert head.out_max == NS - 1
            assert torch.equal(head.bias, torch.full((CS,), (NS - 1) / 2))
        assert len(ctx.means) == S - 1
        for s, net in enumerate(ctx.means, start=1):
            first, act, last = net
            assert isinstance(act, nn.GELU)
            assert (first.in_channels, first.out_channels, first.kernel_size, first.padding) == (CS * s, MH, (3, 3),
                                                                                                (1, 1))
            assert (last.in_channels, last.out_channels, last.kernel_size, last.padding) == (MH, CS, (3, 3), (1, 1))
            assert last.weight.abs().sum() == 0 and last.bias.abs().sum() == 0  # corrections start at zero
    assert len(ChannelContext(C, S, H, NS, mean_hidden=0).means) == 0
    assert len(ChannelContext(C, 2, H, NS).means[0][0].weight) == 128  # the default width


def test_constructor_refuses_too_few_or_non_dividing_slices():
    for slices in (1, 0):
        with pytest.raises(ModelError, match=rf"needs >= 2 slices dividing 6 channels, got {slices}"):
            ChannelContext(C, slices, H, NS)
    with pytest.raises(ModelError, match="needs >= 2 slices dividing 6 channels, got 4"):
        ChannelContext(C, 4, H, NS)
    assert ChannelContext(C, 6, H, NS).width == 1 and ChannelContext(C, 2, H, NS).width == 3


def test_ste_round_rounds_half_to_even_and_passes_the_gradient():
    x = torch.tensor([-2.5, -1.5, -0.5, -0.4, 0.0, 0.49, 0.5, 1.5, 2.5, 3.7], requires_grad=True)
    out = _ste_round(x)
    assert out.tolist() == [float(round(v)) for v in x.tolist()]
    g = torch.linspace(-1, 1, 10)
    (grad,) = torch.autograd.grad((out * g).sum(), x)
    assert torch.equal(grad, g)


def test_context_is_sixteen_times_the_clamped_magnitude():
    syms = [torch.arange(-30, 31).view(1, 1, 61, 1), torch.tensor([[[[15, -16, 0]]]])]
    got = ChannelContext.context(syms)
    assert len(got) == 2
    assert got[0].flatten().tolist() == [16 * min(abs(v), 15) for v in range(-30, 31)]
    assert got[1].flatten().tolist() == [240, 240, 0]
    assert ChannelContext.context([]) == []


def test_head_inputs_are_hidden_own_extra_then_earlier_slices():
    _, _, hidden = data()
    symbols = random_symbols((B, C, HH, WW), 3)
    extra = torch.randint(0, 256, (B, C, HH, WW), generator=torch.Generator().manual_seed(4)).double()
    plain, with_extra = make(), make(extra=True)
    with pytest.raises(ModelError, match="this channel context takes no extra features"):
        plain.head_inputs(1, hidden, symbols[:1], extra)
    with pytest.raises(ModelError, match="this channel context needs extra features"):
        with_extra.head_inputs(1, hidden, symbols[:1], None)
    got = plain.head_inputs(2, hidden, symbols[:2], None)
    assert len(got) == 3 and got[0] is hidden
    assert torch.equal(got[1], feats(symbols[0])) and torch.equal(got[2], feats(symbols[1]))
    got = with_extra.head_inputs(2, hidden, symbols[:2], extra)
    assert len(got) == 4 and got[0] is hidden
    assert torch.equal(got[1], extra[:, 2 * CS : 3 * CS])  # this slice's channels only
    assert torch.equal(got[2], feats(symbols[0])) and torch.equal(got[3], feats(symbols[1]))
    with pytest.raises(ModelError, match="needs extra features"):
        with_extra.indexes(0, hidden, [])


def test_init_from_head_copies_the_heads_rows_with_zero_context_weights():
    _, _, hidden = data()
    torch.manual_seed(5)
    head = IntegerConv(H, C, 3, input_range=(0, 255), in_frac=4, out_frac=0, out_max=NS - 1, bias_init=5.5)
    with torch.no_grad():
        head.weight.mul_(0.3)
        head.bias.add_(torch.randn(C))
    for extra in (False, True):
        ctx = make(extra=extra)
        ctx.init_from_head(head)
        for s, h in enumerate(ctx.heads):
            rows = slice(s * CS, (s + 1) * CS)
            assert torch.equal(h.weight[:, :H], head.weight[rows].detach())
            assert h.weight[:, H:].abs().sum() == 0
            assert torch.equal(h.bias, head.bias[rows].detach())
        # the context is then blind: every slice gets the plain head's indexes, whatever came before
        symbols = random_symbols((B, C, HH, WW), 6)
        ext = torch.randint(0, 256, (B, C, HH, WW), generator=torch.Generator().manual_seed(7)).double()
        plain = exact_head_ref(head, hidden)
        assert len(plain.unique()) > 3
        got = ctx.slice_indexes(hidden, symbols, ext if extra else None)
        assert torch.equal(torch.cat(got, 1), plain)
    ctx = make()
    for bad in (IntegerConv(H, C + 2, 3), IntegerConv(H + 1, C, 3), IntegerConv(H, C, 5)):
        with pytest.raises(ModelError, match="the index head does not match this channel context"):
            ctx.init_from_head(bad)


# ------------------------------------------------------------------ exact indexes
@pytest.mark.parametrize("extra", [False, True])
def test_indexes_equal_an_int64_correlation(extra):
    ctx = make(extra=extra)
    _, _, hidden = data()
    symbols = random_symbols((B, C, HH, WW), 8)
    ext = torch.randint(0, 256, (B, C, HH, WW), generator=torch.Generator().manual_seed(9)).double() \
        if extra else None
    seen = set()
    for s in range(S):
        got = ctx.indexes(s, hidden, symbols[:s], ext)
        assert got.dtype == torch.int64 and got.shape == (B, CS, HH, WW) and got.device.type == "cpu"
        want = indexes_ref(ctx, s, hidden, symbols, ext)
        assert torch.equal(got, want)
        seen |= set(got.unique().tolist())
    assert {0, NS - 1} <= seen and len(seen) > 5  # the clamps and the middle of the range both occur


def test_banded_evaluation_gives_the_same_indexes():
    ctx = make()
    _, _, hidden = data(h=7, w=6)
    symbols = random_symbols((B, C, 7, 6), 10)
    whole = [ctx.indexes(s, hidden, symbols[:s]) for s in range(S)]
    for positions in (1, 6, 12, 18, 5 * 6):  # one row, two, three (uneven end), five
        ctx.band_positions = positions
        assert all(torch.equal(ctx.indexes(s, hidden, symbols[:s]), whole[s]) for s in range(S)), positions
    assert all(torch.equal(w, indexes_ref(ctx, s, hidden, symbols)) for s, w in enumerate(whole))


def test_slice_indexes_read_only_the_earlier_slices():
    ctx = make()
    _, _, hidden = data()
    symbols = random_symbols((B, C, HH, WW), 11)
    got = ctx.slice_indexes(hidden, symbols)
    assert len(got) == S
    for s in range(S):
        assert torch.equal(got[s], indexes_ref(ctx, s, hidden, symbols))
    for j in range(S):  # change slice j's symbols: slices <= j keep their tables, slice j + 1's move
        changed = list(symbols)
        changed[j] = torch.randint(-20, 21, symbols[j].shape, generator=torch.Generator().manual_seed(20 + j))
        moved = ctx.slice_indexes(hidden, changed)
        for s in range(j + 1):
            assert torch.equal(moved[s], got[s]), (j, s)
        if j + 1 < S:
            assert not torch.equal(moved[j + 1], got[j + 1]), j


def test_extra_features_reach_only_their_own_slice():
    ctx = make(extra=True)
    _, _, hidden = data()
    symbols = random_symbols((B, C, HH, WW), 12)
    ext = torch.randint(0, 256, (B, C, HH, WW), generator=torch.Generator().manual_seed(13)).double()
    before = ctx.slice_indexes(hidden, symbols, ext)
    for j in range(S):
        other = ext.clone()
        other[:, j * CS : (j + 1) * CS] = torch.randint(0, 256, (B, CS, HH, WW),
                                                        generator=torch.Generator().manual_seed(30 + j)).double()
        after = ctx.slice_indexes(hidden, symbols, other)
        for s in range(S):
            assert torch.equal(after[s], before[s]) == (s != j), (j, s)


# ------------------------------------------------------------------ exact coding
@pytest.mark.parametrize("mean_hidden,extra", [(MH, False), (0, False), (MH, True)])
def test_encode_matches_the_float64_slice_loop(mean_hidden, extra):
    ctx = make(mean_hidden=mean_hidden, extra=extra)
    y64, means64, hidden = data()
    ext = torch.randint(0, 256, (B, C, HH, WW), generator=torch.Generator().manual_seed(14)).double() \
        if extra else None
    symbols, indexes, y_hat = ctx.encode(y64, means64, hidden, ext)
    ref_sym, ref_idx, ref_hat = encode_ref(ctx, y64, means64, hidden, ext)
    assert len(symbols) == len(indexes) == S
    for s in range(S):
        assert symbols[s].dtype == torch.int64 and torch.equal(symbols[s], ref_sym[s])
        assert indexes[s].dtype == torch.int64 and torch.equal(indexes[s], ref_idx[s])
    assert y_hat.dtype == torch.float64
    torch.testing.assert_close(y_hat, ref_hat, rtol=0, atol=1e-12)
    assert (y_hat - y64).abs().max() <= 0.5 + 1e-12  # every latent within half a step of its value
    if mean_hidden == 0:  # no corrections: the plain symbols round(y - means)
        assert torch.equal(torch.cat(symbols, 1), torch.round(y64 - means64).long())
        assert torch.equal(y_hat, means64 + torch.cat(symbols, 1).double())
    else:  # the corrections move the later slices' symbols
        plain = torch.round(y64 - means64).long()
        assert torch.equal(symbols[0], plain[:, :CS]) and not torch.equal(symbols[2], plain[:, 2 * CS :])


@pytest.mark.parametrize("mean_hidden,extra", [(MH, False), (0, True)])
def test_decode_inverts_encode_reading_the_slices_in_order(mean_hidden, extra):
    ctx = make(mean_hidden=mean_hidden, extra=extra)
    y64, means64, hidden = data(seed=15)
    ext = torch.randint(0, 256, (B, C, HH, WW), generator=torch.Generator().manual_seed(16)).double() \
        if extra else None
    symbols, indexes, y_hat = ctx.encode(y64, means64, hidden, ext)
    calls = []

    def read(s, idx):
        calls.append(s)
        assert torch.equal(idx, indexes[s])  # the decoder picks the encoder's tables from what it has read
        return symbols[s].clone()

    got_sym, got_hat = ctx.decode(means64, hidden, read, ext)
    assert calls == list(range(S))
    assert all(torch.equal(a, b) for a, b in zip(got_sym, symbols))
    assert torch.equal(got_hat, y_hat)


def test_decode_builds_each_slices_tables_from_the_symbols_read_so_far():
    """A decoder reading other symbols than the encoder wrote (a damaged stream) derives later
    slices' tables and means from what it read, never from the encoder's values."""
    ctx = make()
    y64, means64, hidden = data(seed=17)
    read_syms = random_symbols((B, C, HH, WW), 18, lo=-9, hi=10)
    seen = {}

    def read(s, idx):
        seen[s] = idx.clone()
        return read_syms[s].clone()

    got_sym, got_hat = ctx.decode(means64, hidden, read)
    for s in range(S):
        assert torch.equal(seen[s], indexes_ref(ctx, s, hidden, read_syms))
    nets = [copy.deepcopy(net).double() for net in ctx.means]
    residuals = []
    for s in range(S):
        with torch.no_grad():
            delta = nets[s - 1](torch.cat(residuals, 1)) if s else torch.zeros(B, CS, HH, WW, dtype=torch.float64)
        residuals.append(read_syms[s].double() + delta)
    torch.testing.assert_close(got_hat, means64 + torch.cat(residuals, 1), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ training path
def test_forward_follows_the_slice_loop_with_straight_through_rounding():
    ctx = make().double()
    y64, means64, hidden = data(seed=19)
    calls = []

    def likelihood_bits(v, scales, mean):
        calls.append((v.detach().clone(), scales.detach().clone(), mean.detach().clone()))
        return (v - mean).pow(2).flatten(1).sum(1) + scales.flatten(1).sum(1)

    y_dec, bits = ctx(y64, means64, hidden, likelihood_bits, lambda idx: idx * 1.0)
    ref_sym, ref_idx, ref_hat = encode_ref(ctx, y64, means64, hidden)
    assert len(calls) == S
    want_bits = torch.zeros(B, dtype=torch.float64)
    for s, (v, scales, mean) in enumerate(calls):
        rows = slice(s * CS, (s + 1) * CS)
        assert torch.equal(v, y64[:, rows])
        assert torch.equal(scales, ref_idx[s].double())  # the training heads give the exact indexes
        # the slice's mean: hyperprior mean plus the correction the encoder applies
        torch.testing.assert_close(y64[:, rows] - mean, y64[:, rows] - (ref_hat[:, rows] - ref_sym[s].double()),
                                   rtol=0, atol=1e-12)
        want_bits += (v - mean).pow(2).flatten(1).sum(1) + scales.flatten(1).sum(1)
    torch.testing.assert_close(bits, want_bits, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(y_dec, ref_hat, rtol=0, atol=1e-12)
    assert torch.equal(calls[0][2], means64[:, :CS])  # slice 0: no correction


def test_forward_gradients_straight_through_and_into_the_context_weights():
    ctx = make().train()
    y64, means64, hidden = data(seed=21)
    y = y64.float().requires_grad_()
    gauss = GaussianConditional(scale_table(NS, 0.2, 20.0)).train()  # noisy bits, as the hyperprior trains
    torch.manual_seed(0)
    y_dec, bits = ctx(y, means64.float(), hidden.float(), lambda v, sc, m: gauss(v, sc, m)[1],
                      gauss.scales_from_indexes)
    assert y_dec.shape == y.shape and bits.shape == (B,)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(22))
    (grad,) = torch.autograd.grad((y_dec * g).sum(), y, retain_graph=True)
    torch.testing.assert_close(grad, g)  # the rounding passes gradients straight through
    bits.sum().backward()
    for s, head in enumerate(ctx.heads):
        assert head.weight.grad is not None and head.weight.grad[:, :H].abs().sum() > 0, s
        if s:
            assert head.weight.grad[:, H:].abs().sum() > 0, s  # the context weights learn
    for net in ctx.means:
        assert net[2].weight.grad is not None and net[2].weight.grad.abs().sum() > 0


def test_forward_context_and_corrections_see_detached_symbols():
    """The earlier slices' symbols enter the heads and the mean corrections as data: the rate of
    slice s carries no gradient back to y through them."""
    ctx = make().double()
    y64, means64, hidden = data(seed=23)
    y = y64.clone().requires_grad_()
    for pick in ("scales", "means"):
        def likelihood_bits(v, scales, mean, pick=pick):
            return (scales if pick == "scales" else mean).flatten(1).sum(1)

        _, bits = ctx(y, means64, hidden, likelihood_bits, lambda idx: idx * 1.0)
        (grad,) = torch.autograd.grad(bits.sum(), y, allow_unused=True)
        assert grad is None or grad.abs().sum() == 0, pick
    # sanity: the same sum through the straight-through symbol itself does reach y
    _, bits = ctx(y, means64, hidden, lambda v, sc, m: (v - m).flatten(1).sum(1), lambda idx: idx * 1.0)
    (grad,) = torch.autograd.grad(bits.sum(), y)
    assert grad.abs().sum() > 0


# ------------------------------------------------------------------ in the hyperprior
def test_hyperprior_builds_its_context_from_the_config_and_its_index_head():
    hyper = HyperpriorConfig(hyper_channels=3, analysis_hidden=8, index_hidden=H, num_scales=NS, min_scale=0.2,
                             max_scale=20.0, context_slices=S, context_hidden=MH)
    torch.manual_seed(0)
    m = MeanScaleHyperprior(C, hyper)
    ctx = m.context
    assert type(ctx) is ChannelContext
    assert (ctx.channels, ctx.slices, ctx.hidden_channels, ctx.extra) == (C, S, H, False)
    assert ctx.heads[0].out_max == NS - 1 and ctx.means[0][0].out_channels == MH
    assert m.y_sections == S and m.num_sections(0) == 1 + S
    head = m.index_net.layers[-1]
    for s, h in enumerate(ctx.heads):
        assert torch.equal(h.weight[:, :H], head.weight[s * CS : (s + 1) * CS]) and h.weight[:, H:].abs().sum() == 0
    assert len(MeanScaleHyperprior(C, dataclasses.replace(hyper, context_hidden=0)).context.means) == 0
    assert MeanScaleHyperprior(C, dataclasses.replace(hyper, context_slices=0)).context is None
