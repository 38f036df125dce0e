"""Grayscale images through the RGB image codecs: the stream says gray, the decoder returns the
per-pixel mean of its three channels, and `codec decode` writes a grayscale file.

Contract (``ImageTransform.geometry`` / ``finish`` and ``gray_mean``'s docstrings): a batch whose
three channels are equal everywhere is stored with geometry (B, 1, H, W); such a stream decodes to
``((r + g) + b) / 3`` of the RGB decode, rounded once to float32, in all three channels; any other
stream decodes exactly as before.
"""
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

import lcodec
from lcodec.bitstream.container import read_container
from lcodec.cli.main import main
from lcodec.errors import BitstreamError
from lcodec.models.transforms import gray_mean
from tests.conftest import set_dims


def _gray(photo: torch.Tensor, h: int = 64, w: int = 96) -> torch.Tensor:
    """A real grayscale crop (1, 1, h, w) in k/255 steps (the photo's green channel)."""
    return photo[:, 1:2, 100 : 100 + h, 150 : 150 + w].contiguous()


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b.double()) ** 2).mean())


@pytest.mark.parametrize("name", ["walloc-rgb", "walloc-rgb-light"])
def test_gray_input_gives_a_gray_stream_that_decodes_to_the_channel_mean(photo, name):
    codec = lcodec.load(name)
    g = _gray(photo)
    data = codec.compress(g)
    assert read_container(data).geometry.shape == (1, 1, 64, 96)
    x_hat = codec.decompress(data)
    assert x_hat.shape == (1, 3, 64, 96) and x_hat.dtype == torch.float32
    assert torch.equal(x_hat[:, 0], x_hat[:, 1]) and torch.equal(x_hat[:, 1], x_hat[:, 2])
    # the same stream declared RGB (as streams were written before) decodes to the plain RGB output
    rgb = codec.decompress(set_dims(data, (1, 3, 64, 96)))
    assert not torch.equal(rgb[:, 0], rgb[:, 1]), "an RGB decode of a gray image is not exactly gray"
    assert torch.equal(x_hat[:, :1], gray_mean(rgb))
    # the mean of three estimates is never further from the gray original than they are on average
    assert _mse(x_hat[:, :1], g) <= _mse(rgb, g.expand_as(rgb)) + 1e-12
    # three equal channels are the same gray image: the same stream, byte for byte
    assert codec.compress(g.expand(-1, 3, -1, -1)) == data


def test_colour_and_mixed_batches_stay_rgb(photo, codec):
    x = photo[..., :48, :64].contiguous()
    assert read_container(codec.compress(x)).geometry.shape == (1, 3, 48, 64)
    g = _gray(photo, 48, 64).expand(-1, 3, -1, -1)
    mixed = torch.cat([g, x])
    data = codec.compress(mixed)
    assert read_container(data).geometry.shape == (2, 3, 48, 64)
    out = codec.decompress(data)
    assert not torch.equal(out[0, 0], out[0, 1]), "a mixed batch must not be averaged"
    # one channel off by one level in one pixel: colour
    nearly = g.clone()
    nearly[0, 2, 5, 7] += 1 / 255
    assert read_container(codec.compress(nearly)).geometry.shape[1] == 3


def test_gray_mean_is_the_correctly_rounded_mean():
    """Against exact rationals: every decoder output is a multiple of 2**-14 in [0, 1]."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 2**14 + 1, (2, 3, 5, 7), generator=gen).float() / 2**14
    got = gray_mean(x)
    assert got.shape == (2, 1, 5, 7) and got.dtype == torch.float32
    for b in range(2):
        for i in range(5):
            for j in range(7):
                exact = sum(Fraction(float(x[b, c, i, j])) for c in range(3)) / 3
                want = np.float32(float(exact))  # float(Fraction) rounds to nearest double first
                # the double nearest to the exact mean, then float32: what a single rounding of the
                # float64 quotient gives (the float64 sum of three such values is exact)
                assert float(got[b, 0, i, j]) == float(want)


def test_geometry_channels_other_than_one_or_three_are_refused(photo, codec):
    data = codec.compress(_gray(photo, 32, 32))
    with pytest.raises(BitstreamError, match="grayscale"):
        codec.decompress(set_dims(data, (1, 2, 32, 32)))


def test_cli_writes_gray_files_for_gray_streams(tmp_path, photo):
    src = tmp_path / "gray.png"
    a = (_gray(photo)[0, 0] * 255).round().to(torch.uint8).numpy()
    Image.fromarray(a, mode="L").save(src)
    assert main(["encode", str(src), str(tmp_path / "g.bin"), "--codec", "walloc-rgb"]) == 0
    assert main(["decode", str(tmp_path / "g.bin"), str(tmp_path / "g.png")]) == 0
    out = Image.open(tmp_path / "g.png")
    assert out.mode == "L" and out.size == (96, 64)
    assert np.abs(np.asarray(out, dtype=float) - a).mean() < 10
    # a colour file stays colour
    rgb = tmp_path / "rgb.png"
    Image.fromarray((photo[0, :, :64, :96] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()).save(rgb)
    assert main(["encode", str(rgb), str(tmp_path / "c.bin"), "--codec", "walloc-rgb"]) == 0
    assert main(["decode", str(tmp_path / "c.bin"), str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "c.png").mode == "RGB"
