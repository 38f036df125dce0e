"""The shipped walloc-rgb codec on real images: round trips, rate honesty, hostile streams."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lcodec
from lcodec.bitstream.container import read_container
from lcodec.errors import BitstreamError, InputError, ModelError
from tests.conftest import reseal, set_dims


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(float(torch.mean((a - b) ** 2)))


@pytest.mark.parametrize("size", [(321, 481), (9, 17), (1, 1), (16, 16), (33, 1)])
def test_round_trip_odd_sizes(codec, photo, size):
    h, w = size
    top, left = min(100, 321 - h), min(200, 481 - w)
    x = photo[..., top : top + h, left : left + w].contiguous()
    data = codec.compress(x)
    x_hat = lcodec.decompress(data)  # codec found from the header
    assert x_hat.shape == x.shape and x_hat.dtype == torch.float32
    assert 0.0 <= float(x_hat.min()) and float(x_hat.max()) <= 1.0
    if h * w >= 256:
        assert psnr(x_hat, x) > 25.0, "reconstruction does not resemble the input"
    else:  # tiny inputs: still far closer than an unrelated image would be
        assert float((x_hat - x).abs().mean()) < 0.1


def test_three_dim_input_and_batches(codec, photo):
    x = photo[0, :, :64, :80]
    assert codec.decompress(codec.compress(x)).shape == (1, 3, 64, 80)
    batch = torch.cat([photo[..., :64, :80], photo[..., 64:128, 80:160]])
    assert codec.decompress(codec.compress(batch)).shape == (2, 3, 64, 80)


def test_compressed_size_matches_the_model_and_beats_no_ideal(codec, photo):
    data = codec.compress(photo)
    header = read_container(data)
    payload_bits = 8 * len(header.sections[0])
    estimate = codec.estimate_bits(photo)
    z = codec.encode_latents(photo).numpy()
    indexes = np.broadcast_to(np.arange(z.shape[1]).reshape(1, -1, 1, 1), z.shape).reshape(-1)
    ideal = codec.entropy.tables.information_content(z.reshape(-1), indexes)
    assert payload_bits >= ideal  # nothing codes below the information content of its own tables
    assert payload_bits <= 1.01 * estimate + 32  # within 1% (+ one 32-bit word) of the model's estimate
    assert len(data) - len(header.sections[0]) < 120  # header stays small


def test_latent_api_shape_and_consistency(codec, photo):
    z = codec.encode_latents(photo)
    assert z.dtype == torch.int32 and z.shape == (1, 64, math.ceil(321 / 16), math.ceil(481 / 16))
    z2, shape = codec.decompress_latents(codec.compress(photo))
    assert torch.equal(z, z2) and shape == (1, 3, 321, 481)
    torch.testing.assert_close(codec.decode_latents(z, size=(321, 481)), codec.decompress(codec.compress(photo)))


def test_batch_composition_does_not_change_symbols(codec, photo):
    a, b = photo[..., :96, :128], photo[..., 100:196, 200:328]
    together = codec.encode_latents(torch.cat([a, b]))
    assert torch.equal(together[0:1], codec.encode_latents(a))
    assert torch.equal(together[1:2], codec.encode_latents(b))


def test_bad_inputs_are_clear_errors(codec, photo):
    with pytest.raises(InputError, match="expected an image tensor"):
        codec.compress(photo[:, :2])  # gray (1 channel) is expanded to RGB; 2 channels are not an image
    with pytest.raises(InputError, match="NaN"):
        codec.compress(torch.full((1, 3, 8, 8), float("nan")))
    with pytest.raises(InputError, match="float"):
        codec.compress(torch.zeros((1, 3, 8, 8), dtype=torch.int32))
    with pytest.raises(InputError, match=r"\[0, 1\].*255"):
        codec.compress(photo * 255)
    with pytest.raises(ModelError, match="quality"):
        lcodec.load("walloc-rgb", quality=99)
    with pytest.raises(ModelError, match="unknown codec"):
        lcodec.load("no-such-codec")


# --------------------------------------------------------------- hostile streams


@pytest.mark.parametrize(
    "dims", [(1, 3, 10**6, 10**6), (1, 3, 16384, 16384), (1, 3, 8192, 8192), (256, 3, 512, 512), (10**6, 3, 16, 16), (1, 4, 16, 16)]
)
def test_declared_geometry_is_checked_before_allocation(codec, photo, dims):
    """Legal-looking but absurd sizes are refused from the header alone: fast, no big allocation."""
    from tests.conftest import assert_refused_cheaply

    assert_refused_cheaply(codec.decompress, set_dims(codec.compress(photo[..., :16, :16]), dims))


def test_streams_for_other_weights_or_codecs_are_refused(codec, photo):
    data = codec.compress(photo[..., :32, :32])
    name_end = 6 + data[5]
    wrong_hash = bytearray(data)
    wrong_hash[name_end + 1] ^= 0xFF
    with pytest.raises(BitstreamError, match="different walloc-rgb"):
        codec.decompress(reseal(bytes(wrong_hash)))
    other = bytearray(data)
    other[6:name_end] = b"walloc-xyz"
    with pytest.raises(ModelError, match="unknown codec"):
        lcodec.decompress(reseal(bytes(other)))


def test_garbage_payload_with_valid_crc_decodes_or_raises_cleanly(codec, photo):
    data = codec.compress(photo[..., :64, :64])
    c = read_container(data)
    start = len(data) - 4 - len(c.sections[0])
    rng = np.random.default_rng(0)
    for trial in range(20):
        edited = bytearray(data)
        edited[start : start + len(c.sections[0])] = rng.integers(0, 256, len(c.sections[0]), dtype=np.uint8).tobytes()
        try:
            out = codec.decompress(reseal(bytes(edited)))
        except BitstreamError:
            continue
        assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()


_SMALL = None


def _small_stream(codec, photo) -> bytes:
    global _SMALL
    if _SMALL is None:
        _SMALL = codec.compress(photo[..., :48, :64])
    return _SMALL


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_hypothesis_edits_of_a_real_stream(codec, photo, data):
    """Flips, truncations and CRC-resealed edits: a tensor of the declared shape or BitstreamError."""
    raw = bytearray(_small_stream(codec, photo))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 3))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    blob = reseal(bytes(raw)) if data.draw(st.booleans()) and len(raw) > 8 else bytes(raw)
    try:
        out = lcodec.decompress(blob)
    except (BitstreamError, ModelError):
        return
    assert out.shape[1] == 3 and torch.isfinite(out).all()
