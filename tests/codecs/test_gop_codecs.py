"""The stream contract every frame-by-frame video codec on ``lcodec.codecs.gop`` keeps
(walloc-video and walloc-video-mc): random access from an intra frame, odd sizes, damaged
streams and bad arguments refused with clear errors."""
from __future__ import annotations

import functools

import pytest
import torch

from lcodec.errors import BitstreamError, InputError

CODECS = ["walloc-video", "walloc-video-mc"]


@functools.lru_cache(maxsize=None)
def _load(name: str):
    import lcodec

    return lcodec.load(name, 3)


@pytest.mark.parametrize("name", CODECS)
def test_decoding_from_a_middle_intra_frame_matches_the_full_decode(name, basketball):
    video = _load(name)
    data = video.compress(basketball, gop=3)
    full = video.decompress(data)
    assert torch.equal(video.decompress(data, frames=(3, 6)), full[:, :, 3:6])
    assert torch.equal(video.decompress(data, frames=(4, 5)), full[:, :, 4:5])  # starts at intra frame 3
    with pytest.raises(InputError, match="outside"):
        video.decompress(data, frames=(2, 7))


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("size", [(2, 2), (90, 160), (33, 17)])
def test_odd_and_tiny_sizes_decode_to_the_encoders_frames(name, size):
    """Every frame decodes to what the encoder's own state shows (``frame_pixels``)."""
    video = _load(name)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 1, *size, generator=gen).repeat(1, 1, 3, 1, 1)
    x[:, :, 1:] = (x[:, :, 1:] + 0.05).clamp(0, 1)
    x_hat = video.decompress(video.compress(x, gop=2))
    assert x_hat.shape == x.shape
    prev = None
    for t in range(3):
        _, prev = video.encode_frame(x[0, :, t], None if t % 2 == 0 else prev)
        assert torch.equal(x_hat[0, :, t], video.frame_pixels(prev, size)), t


@pytest.mark.parametrize("name", CODECS)
def test_damaged_streams_are_refused(name, basketball):
    video = _load(name)
    data = video.compress(basketball, gop=4)
    for bad in (data[:-7], data[: len(data) // 2], data[:40]):
        with pytest.raises(BitstreamError):
            video.decompress(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with pytest.raises(BitstreamError):
        video.decompress(bytes(flipped))


@pytest.mark.parametrize("name", CODECS)
def test_bad_arguments(name, basketball):
    video = _load(name)
    with pytest.raises(InputError, match="gop"):
        video.compress(basketball, gop=0)
    with pytest.raises(InputError):
        video.compress(basketball[0, 0])
    with pytest.raises(InputError, match="no frames"):
        video.compress_frames(iter([]))
    with pytest.raises(InputError, match="frame 1"):
        video.compress_frames(iter([basketball[0, :, 0], basketball[0, :, 1, :32]]))
    with pytest.raises(InputError):
        video.compress(basketball * 255)  # pixel values outside [0, 1]
