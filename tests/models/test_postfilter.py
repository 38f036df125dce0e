"""Decoder-side post-filter: identity until fitted, banded = whole image, told the rate, and in a
ladder it moves only the reconstruction (same bytes, same symbols)."""
import dataclasses

import pytest
import torch

from lcodec.codecs.assembly import ComposedCodec
from lcodec.codecs.walloc import VR_HYPER, VR_LADDER, ladder_codec
from lcodec.errors import ModelError
from lcodec.models.postfilter import PostFilter
from lcodec.models.walloc import WallocConfig
from tests.codecs.parts import decompress_symbols, latent_symbols


def _trained_like(rates: int = 6, seed: int = 0) -> PostFilter:
    torch.manual_seed(seed)
    pf = PostFilter(rates, channels=8, layers=3)
    with torch.no_grad():
        torch.nn.init.normal_(pf.last.weight, std=0.05)
        pf.rate_bias.normal_(0, 0.5)
    return pf.eval()


def test_untrained_filter_is_the_identity():
    x = torch.rand(2, 3, 20, 30)
    assert torch.equal(PostFilter(6).eval()(x, 3), x)


def test_banded_filtering_equals_the_whole_image():
    pf = _trained_like()
    x = torch.rand(1, 3, 70, 41)
    pf.train()
    whole = pf(x, 2).detach()  # training mode filters the whole image at once
    pf.eval()
    pf.band_rows = 16  # five bands, the last one short
    torch.testing.assert_close(pf(x, 2), whole, rtol=0, atol=1e-6)


def test_the_rate_changes_the_correction_per_item():
    pf = _trained_like()
    x = torch.rand(1, 3, 16, 16).expand(2, -1, -1, -1)
    both = pf(x, torch.tensor([0, 5]))
    assert not torch.allclose(both[0], both[1])
    torch.testing.assert_close(both[1:], pf(x[:1], 5))


def test_bad_shapes_and_configs_are_refused():
    with pytest.raises(ModelError, match="expects"):
        PostFilter(6)(torch.rand(1, 1, 8, 8), 0)
    with pytest.raises(ModelError):
        PostFilter(6, layers=1)


def test_in_a_ladder_it_changes_the_reconstruction_only(photo):
    cfg = WallocConfig(levels=3, wavelet="sym4", latent_channels=48, decoder_channels=32, decoder_blocks=1)
    hyper = dataclasses.replace(VR_HYPER, hyper_channels=16, analysis_hidden=32, index_hidden=24)

    def make(postfilter: int) -> ComposedCodec:
        torch.manual_seed(0)
        codec = ladder_codec(cfg, hyper, dataclasses.replace(VR_LADDER, postfilter=postfilter),
                                        name="walloc-rgb-light", quality=2)
        codec.init_from_data([photo[0, :, :128, :128], photo[0, :, 128:256, 128:256]])
        if codec.postfilter is not None:
            with torch.no_grad():
                torch.nn.init.normal_(codec.postfilter.last.weight, std=0.01)
        codec.eval()
        codec.export()
        return codec

    plain, filtered = make(0), make(8)
    x = photo[..., :96, :160]
    data = filtered.compress(x)
    assert torch.equal(decompress_symbols(filtered, data)[0], latent_symbols(plain, x)[0])
    out, base = filtered.decompress(data), plain.decompress(plain.compress(x))
    assert out.shape == x.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert not torch.equal(out, base)
    again = ladder_codec(cfg, hyper, dataclasses.replace(VR_LADDER, postfilter=8),
                                    name="walloc-rgb-light", quality=2)
    again.load_weights(filtered.weights_state())
    assert torch.equal(again.decompress(data), out)
