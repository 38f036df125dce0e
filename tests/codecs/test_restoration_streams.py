"""Restoration filters in walloc-rgb-rd streams (ComposedCodec(restoration=True), the module
docstrings of lcodec.codecs.assembly and lcodec.models.restoration): one section after the entropy
model's; the decoder applies exactly the filters it holds; a stream without it decodes as before;
the encoder keeps a filter only where it lowers the error."""
from dataclasses import replace

import pytest
import torch

import lcodec
from lcodec.bitstream.container import read_container, write_container
from lcodec.errors import BitstreamError, ModelError
from lcodec.models import restoration as R


@pytest.fixture(scope="module")
def rd():
    return lcodec.load("walloc-rgb-rd", 4)


def _crop(photo: torch.Tensor, h: int = 256, w: int = 384) -> torch.Tensor:
    return photo[..., :h, :w].contiguous()


def _without_filter(data: bytes) -> bytes:
    c = read_container(data)
    return write_container(replace(c, sections=c.sections[:-1]))


def _sse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((torch.round(a.double() * 255) - torch.round(b.double() * 255)) ** 2).sum())


def test_the_stream_carries_one_filter_per_image_and_the_decoder_applies_it(rd, photo):
    x = torch.cat([_crop(photo), _crop(photo.flip(-1))])
    data = rd.compress(x)
    c = read_container(data)
    assert len(c.sections) == rd.entropy.num_sections(rd.rate) + 1
    filters = R.unpack(c.sections[-1], 2, 3)
    assert any(f is not None for f in filters), "a 256x384 photo crop at q4 should keep its filter"
    plain = rd.decompress(_without_filter(data))  # the stream as written before restoration
    got = rd.decompress(data)
    assert torch.equal(got, R.restore_batch(plain, filters, gray=False))
    for b, f in enumerate(filters):
        if f is None:
            assert torch.equal(got[b], plain[b])
        else:  # kept only where it lowers the error (and by more than its bits are worth)
            assert _sse(got[b], x[b]) < _sse(plain[b], x[b])


def test_a_filter_that_does_not_pay_is_left_out(rd, photo):
    data = lcodec.load("walloc-rgb-rd", 1).compress(_crop(photo, 32, 48))
    assert read_container(data).sections[-1] == b"\x00"


def test_gray_streams_stay_gray(rd, photo):
    g = _crop(photo)[:, 1:2]
    out = rd.decompress(rd.compress(g))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


def test_damaged_or_unexpected_filter_sections_are_refused(rd, photo, codec):
    data = rd.compress(_crop(photo, 64, 96))
    c = read_container(data)
    bad = write_container(replace(c, sections=(*c.sections[:-1], b"\x02")))
    with pytest.raises(BitstreamError, match="neither 0 nor 1"):
        rd.decompress(bad)
    extra = write_container(replace(c, sections=(*c.sections, b"\x00")))
    with pytest.raises(BitstreamError, match="sections"):
        rd.decompress(extra)
    # a codec without restoration filters refuses a section it does not know
    plain = codec.compress(_crop(photo, 64, 96))
    cp = read_container(plain)
    with pytest.raises(BitstreamError, match="sections"):
        codec.decompress(write_container(replace(cp, sections=(*cp.sections, b"\x00"))))


def test_without_the_filter_the_stream_is_the_entropy_models_alone(rd, photo, codec):
    x = _crop(photo, 64, 96)
    data = rd.compress(x, restoration=False)
    assert data == _without_filter(rd.compress(x))
    assert torch.equal(rd.decompress(data), rd.decompress(_without_filter(rd.compress(x))))
    with pytest.raises(ModelError, match="no restoration filter"):
        codec.compress(x, restoration=True)


def test_cli_no_filter(tmp_path, photo):
    from PIL import Image

    from lcodec.cli.main import main

    src = tmp_path / "p.png"
    Image.fromarray((_crop(photo, 64, 96)[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()).save(src)
    assert main(["encode", str(src), str(tmp_path / "a.bin"), "--quality", "2"]) == 0
    assert main(["encode", str(src), str(tmp_path / "b.bin"), "--quality", "2", "--no-filter"]) == 0
    a, b = read_container((tmp_path / "a.bin").read_bytes()), read_container((tmp_path / "b.bin").read_bytes())
    assert len(a.sections) == len(b.sections) + 1 and a.sections[:-1] == b.sections
    assert main(["encode", str(src), str(tmp_path / "c.bin"), "--codec", "walloc-rgb", "--no-filter"]) != 0
    assert not (tmp_path / "c.bin").exists()


def test_latent_cache_streams_carry_no_filter(rd, photo, tmp_path, monkeypatch):
    """LatentDataset serves latents: its batches are compressed without the filter, whose fit would
    change no latent (and costs a full decode)."""
    from lcodec.data import latents as L

    seen = []
    real = type(rd).compress

    def spy(self, x, *args, **kwargs):
        data = real(self, x, *args, **kwargs)
        seen.append(data)
        return data

    monkeypatch.setattr(type(rd), "compress", spy)
    L._compress_batch(rd, [_crop(photo, 32, 48)[0], _crop(photo.flip(-1), 32, 48)[0]], 0)
    assert len(seen) == 1 and len(read_container(seen[0]).sections) == rd.entropy.num_sections(rd.rate)
