"""Gaussian scale-mixture context (``lcodec.entropy.scale_mixture``): its stored integer tables are
the mixtures the training path charges, table choice is exact, and a codec built on it codes
the same symbols as the single-Gaussian context with the same transform."""
import dataclasses

import numpy as np
import pytest
import torch

from lcodec.codecs.assembly import ComposedCodec
from lcodec.bitstream.tables import CodingTables
from lcodec.codecs.walloc import VR_HYPER, VR_LADDER, ladder_codec
from lcodec.entropy.gaussian import gaussian_tables, scale_table
from lcodec.entropy.scale_mixture import ScaleMixtureContext
from lcodec.errors import ModelError
from lcodec.models.walloc import WallocConfig
from tests.conftest import with_one_and_two_threads
from tests.codecs.parts import analyse, decompress_symbols, latent_symbols

SCALES = scale_table(24, 0.11, 64.0)


def _ctx(seed: int = 0) -> ScaleMixtureContext:
    torch.manual_seed(seed)
    ctx = ScaleMixtureContext(16, 4, 8, SCALES, spreads=(2, 4, 6), weight_levels=8, mixture_max_scale=SCALES[14])
    with torch.no_grad():  # make every head read its inputs
        for heads, std in ((ctx.heads, 0.3), (ctx.spread_heads, 0.05), (ctx.weight_heads, 0.1)):
            for h in heads:
                h.weight.normal_(0, std)
        for h in ctx.weight_heads:
            h.bias.fill_(3.0)
    return ctx


@pytest.fixture(scope="module")
def ctx():
    return _ctx()


@pytest.fixture(scope="module")
def tables(ctx):
    return ctx.tables()


def test_tables_hold_the_gaussians_then_every_mixture(ctx, tables):
    assert isinstance(tables, CodingTables) and tables.num_tables == ctx.num_tables
    assert ctx.num_tables == 24 + 15 * 3 * 7
    single = gaussian_tables(SCALES)
    t = single.num_tables
    assert np.array_equal(tables.counts[:t, : single.counts.shape[1]], single.counts)
    assert np.array_equal(tables.offsets[:t], single.offsets) and np.array_equal(tables.lengths[:t], single.lengths)


def test_table_index_is_a_bijection_onto_the_mixtures(ctx):
    a, d, w = torch.meshgrid(torch.arange(24), torch.arange(3), torch.arange(8), indexing="ij")
    idx = ctx.table_index(a, d, w)
    single = (w == 7) | (a > 14)
    assert torch.equal(idx[single], a[single])  # one Gaussian: the plain table of scale a
    mixed = idx[~single]
    assert mixed.unique().numel() == mixed.numel() == 15 * 3 * 7
    assert int(mixed.min()) == 24 and int(mixed.max()) == ctx.num_tables - 1


@pytest.mark.parametrize("a,d,w", [(0, 0, 0), (3, 1, 5), (10, 2, 2), (14, 2, 6), (20, 1, 3), (7, 0, 7)])
def test_training_bits_are_the_stored_tables_bits(ctx, tables, a, d, w):
    """What the fit minimises is what the coder spends: -log2 of the stored integer table,
    up to its 16-bit quantization, for every symbol in the table's range."""
    idx = int(ctx.table_index(torch.tensor(a), torch.tensor(d), torch.tensor(w)))
    n = int(tables.lengths[idx]) - 1
    symbols = torch.arange(n, dtype=torch.float64) + int(tables.offsets[idx])
    coded = tables.counts[idx, :n]
    stored = 16 - np.log2(coded.astype(np.float64))
    full = lambda v: torch.full_like(symbols, float(v))  # noqa: E731
    trained = ctx.symbol_bits(symbols, full(a), full(d), full(w)).numpy()
    probable = coded > 2**16 * 1e-2  # where rounding to whole counts moves the bits by < 0.01
    assert probable.any()
    np.testing.assert_allclose(stored[probable], trained[probable], atol=0.01)
    assert np.abs(2.0**-stored - 2.0**-trained).sum() < 0.01  # total variation over the whole table
    if w < 7 and a <= 14:  # a real mixture: heavier-tailed than its narrow component alone
        edge = -int(tables.offsets[a])  # the narrow table's last symbol
        assert coded[edge - int(tables.offsets[idx])] > tables.counts[a, 2 * edge]


def test_exact_indexes_match_the_training_heads(ctx):
    """The exact integer heads give the training path's integers (float64 training path here, so
    no float32 rounding can differ), through ``table_index``."""
    g = torch.Generator().manual_seed(1)
    hidden = torch.randint(0, 256, (2, 8, 6, 7), generator=g).double()
    symbols = [torch.randint(-4, 5, (2, 4, 6, 7), generator=g) for _ in range(3)]
    model = _ctx().double()
    for s in range(4):
        inputs = torch.cat([hidden, *[c.double() for c in model.context(symbols[:s])]], 1)
        a, d, w = (h[s](inputs).detach() for h in (model.heads, model.spread_heads, model.weight_heads))
        want = model.table_index(a, d, w)
        assert torch.equal(model.indexes(s, hidden, symbols[:s]), want)
    assert want.unique().numel() > 10  # the heads picked many different tables


def test_training_path_reaches_every_head(ctx):
    model = _ctx()
    y = torch.randn(2, 16, 6, 7) * 3
    hidden = torch.randint(0, 256, (2, 8, 6, 7)).float()
    _, bits = model(y, torch.zeros_like(y), hidden)
    bits.sum().backward()
    assert torch.isfinite(bits).all() and (bits > 0).all()
    for heads in (model.heads, model.spread_heads, model.weight_heads):
        assert heads[2].weight.grad.abs().sum() > 0


def test_invalid_grids_are_refused():
    with pytest.raises(ModelError):
        ScaleMixtureContext(16, 4, 8, SCALES, spreads=(0, 2))
    with pytest.raises(ModelError):
        ScaleMixtureContext(16, 4, 8, SCALES, mixture_max_scale=0.1)


# ------------------------------------------------------------------ in a codec
CFG = WallocConfig(levels=3, wavelet="sym4", latent_channels=48, decoder_channels=32, decoder_blocks=1)
HYPER = dataclasses.replace(VR_HYPER, hyper_channels=16, analysis_hidden=32, index_hidden=24, num_scales=40,
                            context_slices=4, context_hidden=0)


def _codec(photo, mixture: bool) -> ComposedCodec:
    torch.manual_seed(0)
    codec = ladder_codec(CFG, dataclasses.replace(HYPER, context_mixture=mixture), VR_LADDER,
                                    name="walloc-rgb-light", quality=3)
    crops = [photo[0, :, r : r + 128, c : c + 128] for r in (0, 64, 160) for c in (0, 128, 256)]
    codec.init_from_data(crops)
    with torch.no_grad():
        codec.entropy.h_a[2].weight.mul_(4)
        codec.entropy.index_net.layers[-1].weight.mul_(4)
        codec.entropy.context.init_from_head(codec.entropy.index_net.layers[-1])
        if mixture:
            for heads in (codec.entropy.context.spread_heads, codec.entropy.context.weight_heads):
                for h in heads:
                    h.weight.normal_(0, 0.02)
    codec.eval()
    codec.export()
    return codec


@pytest.fixture(scope="module")
def pair(photo):
    return _codec(photo, False), _codec(photo, True)


def test_mixture_codec_round_trips_and_reconstructs_as_the_gaussian_one(pair, photo):
    """Same transform and side path: the same symbols and the same reconstruction; only the
    tables (so the bytes) differ."""
    gauss, mix = pair
    data = mix.compress(photo)
    y_sym, z = latent_symbols(mix, photo)
    got_y, got_z, _ = decompress_symbols(mix, data)
    assert torch.equal(got_y, y_sym) and torch.equal(got_z, z)
    assert torch.equal(y_sym, latent_symbols(gauss, photo)[0])
    assert torch.equal(mix.decompress(data), gauss.decompress(gauss.compress(photo)))
    idx = torch.cat(mix.entropy.context_encode(*analyse(mix, photo), y_hat=False)[1], 1)
    assert int(idx.max()) >= HYPER.num_scales  # some latents really are coded with a mixture
    bits = mix.estimate_bits(photo)
    assert abs(8 * len(data) - bits) < 0.05 * bits + 512


def test_mixture_bytes_do_not_depend_on_thread_count(pair, photo):
    one, two = with_one_and_two_threads(lambda: pair[1].compress(photo))
    assert one == two


def test_mixture_weights_round_trip(pair, photo, tmp_path):
    mix = pair[1]
    state = mix.weights_state()
    again = ladder_codec(CFG, dataclasses.replace(HYPER, context_mixture=True), VR_LADDER,
                                    name="walloc-rgb-light", quality=3)
    again.load_weights(state)
    assert again.weights_hash == mix.weights_hash
    assert again.compress(photo) == mix.compress(photo)


def test_mixture_needs_a_tables_only_context():
    with pytest.raises(ModelError, match="context_mixture"):
        ladder_codec(CFG, dataclasses.replace(HYPER, context_mixture=True, context_hidden=8), VR_LADDER,
                                name="walloc-rgb-light", quality=3)
