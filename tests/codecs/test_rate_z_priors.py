"""One factorized z prior per rate point (``LadderConfig.rate_z_priors``): coded with that rate's
tables, trained per item, stored and reloaded, and fitted by ``lcodec.train.zprior``."""
import dataclasses

import pytest
import torch

from lcodec.codecs.assembly import ComposedCodec
from lcodec.bitstream.tables import CodingTables
from lcodec.codecs.walloc import VR_HYPER, VR_LADDER, ladder_codec
from lcodec.errors import ModelError
from lcodec.models.walloc import WallocConfig
from lcodec.train.zprior import RANGE, _bits, fit_rate_priors, z_counts
from tests.codecs.parts import decompress_symbols, latent_symbols

CFG = WallocConfig(levels=3, wavelet="sym4", latent_channels=48, decoder_channels=32, decoder_blocks=1)
HYPER = dataclasses.replace(VR_HYPER, hyper_channels=16, analysis_hidden=32, index_hidden=24)
LADDER = dataclasses.replace(VR_LADDER, rate_z_priors=True)


def _codec(photo, quality=3) -> ComposedCodec:
    torch.manual_seed(0)
    codec = ladder_codec(CFG, HYPER, LADDER, name="walloc-rgb-light", quality=quality)
    codec.init_from_data([photo[0, :, r : r + 128, c : c + 128] for r in (0, 160) for c in (0, 256)])
    with torch.no_grad():
        codec.entropy.h_a[2].weight.mul_(4)
        for r, prior in enumerate(codec.entropy.rate_priors):  # make the rate points' priors differ
            prior.biases[-1].add_(0.3 * r)
    codec.eval()
    codec.export()
    return codec


@pytest.fixture(scope="module")
def zc(photo):
    return _codec(photo)


def test_each_quality_codes_z_with_its_own_tables_and_decodes(zc, photo):
    hashes = set()
    for q in (1, 3, 6):
        zc.quality = q
        assert zc.entropy.z_tables(zc.rate) is zc.entropy.rate_tables[q - 1]
        assert zc.entropy.z_prior(zc.rate) is zc.entropy.rate_priors[q - 1]
        data = zc.compress(photo)
        y, z, _ = decompress_symbols(zc, data)
        y_ref, z_ref = latent_symbols(zc, photo)
        assert torch.equal(y, y_ref) and torch.equal(z, z_ref)
        bits = zc.estimate_bits_split(photo)["z"]
        with torch.no_grad():
            expected = float(-torch.log2(zc.entropy.rate_priors[q - 1].likelihood(z.float())).sum())
        assert bits == pytest.approx(expected)
        hashes.add(zc.weights_hash)
    zc.quality = 3
    assert len({t.sha256 for t in zc.entropy.rate_tables}) == len(zc.entropy.rate_tables)  # the tables really differ
    assert len(hashes) == 1  # the hash names the weights, whatever the rate point


def test_weights_round_trip_and_refuse_missing_rate_tables(zc, photo):
    state = zc.weights_state()
    assert len(state["rate_tables"]) == len(LADDER.lmbdas)
    assert CodingTables.from_state(state["tables"]).sha256 == zc.entropy.tables.sha256  # the shared prior's, not this rate's
    other = ladder_codec(CFG, HYPER, LADDER, name="walloc-rgb-light", quality=5)
    other.load_weights(state)
    assert other.weights_hash == zc.weights_hash
    zc.quality = 5
    try:
        assert other.compress(photo) == zc.compress(photo)
    finally:
        zc.quality = 3
    broken = {k: v for k, v in state.items() if k != "rate_tables"}
    with pytest.raises(ModelError, match="z table set per rate"):
        ladder_codec(CFG, HYPER, LADDER, name="walloc-rgb-light", quality=5).load_weights(broken)
    shared = ladder_codec(CFG, HYPER, VR_LADDER, name="walloc-rgb-light", quality=5)
    with pytest.raises(ModelError, match="another rate ladder"):
        shared.load_weights(state)


def test_training_charges_each_item_to_its_own_rate_prior(photo):
    codec = _codec(photo).train()
    z = torch.randn(4, HYPER.hyper_channels, 4, 4) * 2
    rates = torch.tensor([0, 5, 0, 2])
    torch.manual_seed(1)
    got = codec.entropy._z_bits(z, rates)
    torch.manual_seed(1)  # the same noise, drawn in the same order (rate points ascending)
    want = torch.zeros(4)
    for r in (0, 2, 5):
        items = (rates == r).nonzero().flatten()
        want[items] = codec.entropy.rate_priors[r](z[items])[1]
    assert torch.allclose(got, want)
    out = codec(photo[..., :64, :64].repeat(2, 1, 1, 1))  # the forward draws each item's rate
    assert out.bits["z"].shape == (2,)
    out.bits["z"].sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in codec.entropy.rate_priors.parameters())


def test_fit_lowers_the_cost_of_the_counted_z(photo, tmp_path):
    from PIL import Image

    codec = _codec(photo)
    path = tmp_path / "photo.png"
    Image.fromarray((photo[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    counts = z_counts(codec, [path], crops=None, progress=False)
    assert counts.shape == (len(LADDER.lmbdas), HYPER.hyper_channels, 2 * RANGE + 1)
    n = codec.entropy.hyper_shape(codec.latent_shape(photo.shape))
    assert float(counts[0].sum()) == HYPER.hyper_channels * n[2] * n[3]  # every z symbol counted once
    log = fit_rate_priors(codec, counts, steps=60, lr=1e-2, progress=False)
    for r, entry in enumerate(log):
        assert entry["bits_per_symbol_end"] < entry["bits_per_symbol_start"]
        with torch.no_grad():
            assert float(_bits(codec.entropy.rate_priors[r], counts[r])) / entry["symbols"] == pytest.approx(
                entry["bits_per_symbol_end"])
