"""Channel-conditional hyperprior (``HyperpriorConfig.context_slices``): exact, decodable, and
the plain hyperprior when its context weights are zero."""
import dataclasses

import pytest
import torch

from lcodec.codecs.assembly import ComposedCodec
from lcodec.bitstream.container import read_container
from lcodec.codecs.walloc import VR_HYPER, VR_LADDER, ladder_codec
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.walloc import WallocConfig
from tests.conftest import with_one_and_two_threads
from tests.codecs.parts import analyse, decompress_symbols, latent_symbols

CFG = WallocConfig(levels=3, wavelet="sym4", latent_channels=48, decoder_channels=32, decoder_blocks=1)
HYPER = dataclasses.replace(VR_HYPER, hyper_channels=16, analysis_hidden=32, index_hidden=24, context_slices=4,
                            context_hidden=16)


def _codec(photo, hyper=HYPER, seed=0, context_weights=True) -> ComposedCodec:
    torch.manual_seed(seed)
    codec = ladder_codec(CFG, hyper, VR_LADDER, name="walloc-rgb-light", quality=3)
    crops = [photo[0, :, r : r + 128, c : c + 128] for r in (0, 64, 160) for c in (0, 128, 256)]
    codec.init_from_data(crops)
    with torch.no_grad():
        codec.entropy.h_a[2].weight.mul_(4)
        codec.entropy.index_net.layers[-1].weight.mul_(4)
        if codec.entropy.context is not None:
            codec.entropy.context.init_from_head(codec.entropy.index_net.layers[-1])
            if context_weights:  # make the context matter: heads read it, means move with it
                for head in codec.entropy.context.heads[1:]:
                    head.weight[:, HYPER.index_hidden :].normal_(0, 0.05)
                for net in codec.entropy.context.means:
                    torch.nn.init.normal_(net[2].weight, std=0.02)
    codec.eval()
    codec.export()
    return codec


@pytest.fixture(scope="module")
def cc(photo):
    return _codec(photo)


def test_round_trip_is_exact_and_sections_are_per_slice(cc, photo):
    data = cc.compress(photo)
    c = read_container(data)
    assert len(c.sections) == 1 + HYPER.context_slices
    y_sym, z = latent_symbols(cc, photo)
    got_y, got_z, shape = decompress_symbols(cc, data)
    assert torch.equal(got_y, y_sym) and torch.equal(got_z, z) and tuple(shape) == tuple(photo.shape)
    y_hat, _ = cc.decompress_latents(data)
    assert torch.equal(y_hat, cc.encode_latents(photo))  # the decoder rebuilds the encoder's latents
    x_hat = cc.decompress(data)
    assert x_hat.shape == photo.shape and torch.isfinite(x_hat).all()
    bits = cc.estimate_bits(photo)
    assert abs(8 * sum(len(s) for s in c.sections) - bits) < 0.05 * bits + 256


def test_context_changes_tables_and_means(cc, photo):
    """With non-zero context weights the later slices' indexes and means depend on earlier symbols."""
    y64, z = analyse(cc, photo)
    symbols, indexes, y_hat = cc.entropy.context_encode(y64, z)
    plain = cc.entropy.index_net.forward_exact(z).to(torch.int64)
    width = cc.entropy.context.width
    assert torch.equal(indexes[0], plain[:, :width])  # slice 0 has no context
    assert not torch.equal(indexes[3], plain[:, 3 * width :])
    assert not torch.allclose(y_hat[:, width : 2 * width], symbols[1].double() + cc.entropy.reconstruction_means(z)[:, width : 2 * width])


def test_zero_context_is_the_plain_hyperprior(photo):
    """Right after init_from_head (context weights zero) the context codec codes y exactly as the
    plain hyperprior with the same weights: same symbols, same indexes, same reconstruction."""
    plain = _codec(photo, hyper=dataclasses.replace(HYPER, context_slices=0))
    cc = _codec(photo, context_weights=False)
    state = {k: v for k, v in cc.state_dict().items() if not k.startswith("context.")}
    assert state.keys() == plain.state_dict().keys()
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in state.items())
    y_plain, z_plain = latent_symbols(plain, photo)
    y_cc, z_cc = latent_symbols(cc, photo)
    assert torch.equal(y_plain, y_cc) and torch.equal(z_plain, z_cc)
    y64, z = analyse(cc, photo)
    assert torch.equal(torch.cat(cc.entropy.context_encode(y64, z)[1], 1), plain.entropy.table_indexes(z))
    torch.testing.assert_close(cc.decompress(cc.compress(photo)), plain.decompress(plain.compress(photo)))


def test_bytes_do_not_depend_on_thread_count(cc, photo):
    one, two = with_one_and_two_threads(lambda: cc.compress(photo))
    assert one == two


def test_training_path_reaches_the_context(photo):
    cc = _codec(photo)
    cc.train()
    out = cc(photo[..., :128, :128])
    loss, shown = cc.rd_loss(out, photo[..., :128, :128], 1.0)
    loss.backward()
    assert torch.isfinite(loss) and shown["bpp"] > 0
    assert cc.entropy.context.heads[2].weight.grad.abs().sum() > 0
    assert cc.entropy.context.means[0][2].weight.grad.abs().sum() > 0


def test_truncated_slice_and_wrong_section_count_are_refused(cc, photo):
    from lcodec.bitstream.container import write_container

    c = read_container(cc.compress(photo))
    short = dataclasses.replace(c, sections=(*c.sections[:3], c.sections[3][:4], c.sections[4]))
    with pytest.raises(BitstreamError):
        cc.decompress(write_container(short))
    with pytest.raises(BitstreamError, match="sections"):
        cc.decompress(write_container(dataclasses.replace(c, sections=c.sections[:2])))


def test_slices_must_divide_the_channels():
    with pytest.raises(ModelError, match="slices"):
        ladder_codec(CFG, dataclasses.replace(HYPER, context_slices=5), VR_LADDER,
                                name="walloc-rgb-light", quality=1)


def test_banded_heads_give_the_same_indexes(cc, photo):
    """The exact heads run in bands of rows (bounded memory); bands must not change an index."""
    y64, z = analyse(cc, photo)
    whole = cc.entropy.context_encode(y64, z)[1]
    cc.entropy.context.band_positions = 3 * y64.shape[-1]  # three rows per band
    try:
        banded = cc.entropy.context_encode(y64, z)[1]
    finally:
        del cc.entropy.context.band_positions
    assert all(torch.equal(a, b) for a, b in zip(whole, banded))


def test_tables_only_context_takes_the_refereed_symbols_and_matches_float64(photo):
    """Without mean corrections the encoder gets every symbol from the refereed float32 path at
    once; symbols, indexes and y_hat equal the slice-by-slice float64 encoder's."""
    codec = _codec(photo, hyper=dataclasses.replace(HYPER, context_hidden=0))
    assert not codec.entropy.context.means
    y64, z = analyse(codec, photo)
    fast_sym, fast_idx, fast_hat = codec.entropy.context_encode(y64, z)
    ref_sym, ref_idx, ref_hat = codec.entropy.context.encode(y64, codec.entropy.means(z), codec.entropy.hidden(z))
    assert all(torch.equal(a, b) for a, b in zip(fast_sym, ref_sym))
    assert all(torch.equal(a, b) for a, b in zip(fast_idx, ref_idx))
    assert torch.equal(fast_hat, torch.cat(ref_sym, 1).double() + codec.entropy.reconstruction_means(z))
    assert codec.entropy.context_encode(y64, z, y_hat=False)[2] is None
    data = codec.compress(photo)
    got_y, _, _ = decompress_symbols(codec, data)
    assert torch.equal(got_y, torch.cat(ref_sym, 1))
