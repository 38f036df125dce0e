"""lcodec/eval/adapters.py against its docstrings: media facts of an item, the +refineN / +gopN
name suffixes, the learned-codec adapter (whole files, per-section byte counts, the unrefined
estimate), the Pillow formats' settings and the registry's refusals."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from lcodec.errors import InputError, ModelError
from lcodec.eval import adapters
from lcodec.eval.adapters import LearnedCodec, MediaItem, check_modality, get_eval_codec, split_refine


def test_media_item_pixels_and_seconds():
    image = MediaItem("i", "image", torch.zeros(1, 3, 4, 6))
    video = MediaItem("v", "video", torch.zeros(1, 3, 5, 4, 6), fps=10.0)
    audio = MediaItem("a", "audio", torch.zeros(1, 2, 12000), sample_rate=8000)
    assert (image.pixels, video.pixels, audio.pixels) == (24, 120, 0)
    assert (image.seconds, video.seconds, audio.seconds) == (0.0, 0.5, 1.5)
    assert MediaItem("v", "video", torch.zeros(1, 3, 5, 4, 6)).seconds == 0.0  # no frame rate
    assert MediaItem("a", "audio", torch.zeros(1, 1, 10)).seconds == 0.0  # no sample rate


def test_split_refine_by_its_docstring():
    assert split_refine("walloc-rgb-rd+refine20") == ("walloc-rgb-rd", 20)
    assert split_refine("walloc-rgb-rd+refine1") == ("walloc-rgb-rd", 1)
    assert split_refine("walloc-rgb-rd") == ("walloc-rgb-rd", 0)
    for bad in ("walloc-rgb-rd+refine0", "walloc-rgb-rd+refine", "walloc-rgb-rd+refinex", "walloc-rgb-rd+refine-2"):
        with pytest.raises(ModelError, match=r"expected CODEC\+refineN with N >= 1 refinement steps"):
            split_refine(bad)


def test_learned_adapter_names_and_refusals():
    c = get_eval_codec("walloc-rgb-rd+refine3")
    assert isinstance(c, LearnedCodec) and c.name == "walloc-rgb-rd+refine3" and c.base_name == "walloc-rgb-rd"
    assert c.refine == 3 and c.gop == 0 and c.modality == "image"
    assert c.description.endswith("encoder-side latent refinement, 3 steps")
    assert c.qualities == c.spec.shipped_qualities
    with pytest.raises(ModelError, match="encoder refinement is for image codecs"):
        LearnedCodec("walloc-audio+refine2")
    with pytest.raises(ModelError, match="an intra period is for video codecs"):
        LearnedCodec("walloc-rgb+gop4")
    with pytest.raises(ModelError, match=r"unknown codec 'nope'; classical: .*jpeg.*learned: see `codec list`"):
        get_eval_codec("nope")


def test_learned_adapter_writes_whole_files_and_counts_their_sections():
    from lcodec.bitstream.container import read_container

    c = get_eval_codec("walloc-rgb")
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    item = MediaItem("x.png", "image", x)
    q = c.qualities[-1]
    enc = c.encode(item, q)
    container = read_container(enc.data)
    assert c.file_bytes[("x.png", q)] == len(enc.data)
    assert c.section_bytes[("x.png", q)] == tuple(len(s) for s in container.sections)
    y = c.decode(enc.data, item)
    assert y.shape == x.shape
    estimate = c.estimate_bits(item, q)
    assert estimate is not None and 0 < estimate < 8 * len(enc.data)
    assert get_eval_codec("walloc-rgb-rd+refine1").estimate_bits(item, 2) is None  # not of the refined latents


def test_audio_items_are_coded_at_their_own_rate():
    c = get_eval_codec("walloc-audio")
    x = torch.sin(torch.arange(16000) / 7.0).view(1, 1, -1) * 0.3
    item = MediaItem("a.wav", "audio", x, sample_rate=16000)
    from lcodec.bitstream.container import read_container

    data = c.encode(item, 1).data
    assert read_container(data).geometry.sample_rate == 16000  # not the model's 48 kHz
    assert c.decode(data, item).shape == x.shape
    assert c.estimate_bits(item, 1) > 0


def test_pillow_formats_use_the_settings_they_describe():
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    item = MediaItem("x", "image", x)
    jpeg = get_eval_codec("jpeg")
    img = Image.open(io.BytesIO(jpeg.encode(item, 50).data))
    assert img.format == "JPEG" and "4:2:0" in jpeg.description
    from PIL import JpegImagePlugin

    assert JpegImagePlugin.get_sampling(img) == 2  # 4:2:0
    assert Image.open(io.BytesIO(get_eval_codec("webp").encode(item, 50).data)).format == "WEBP"
    for lossless in ("png", "webp-lossless"):
        codec = get_eval_codec(lossless)
        y = codec.decode(codec.encode(item, codec.qualities[0]).data, item)
        assert torch.equal(y, torch.round(x * 255) / 255), lossless  # lossless after 8-bit quantisation
        assert y.dtype == torch.float32 and y.shape == x.shape
    assert get_eval_codec("jpeg").qualities == tuple(sorted(get_eval_codec("jpeg").qualities))


def test_registry_refuses_a_second_adapter_of_one_name_and_checks_modality(monkeypatch):
    monkeypatch.setattr(adapters, "CLASSICAL", dict(adapters.CLASSICAL))
    with pytest.raises(ModelError, match="classical codec 'jpeg' registered twice"):
        adapters.register_classical("jpeg")(lambda: None)
    image = MediaItem("pic", "image", torch.zeros(1, 3, 2, 2))
    check_modality(get_eval_codec("jpeg"), image)
    with pytest.raises(InputError, match="opus codes audio, but pic is image"):
        check_modality(get_eval_codec("opus"), image)


def test_to_uint8_rounds_and_clamps():
    x = torch.tensor([[[[0.0, 1.0, 0.5, -1.0, 2.0, 0.002]]]]).expand(1, 3, 1, 6)
    out = adapters._to_uint8_hwc(x)
    assert out.shape == (1, 6, 3) and out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [0, 255, 128, 0, 255, 1]


def test_refine_suffix_really_refines_and_a_registered_factory_is_kept(monkeypatch):
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    item = MediaItem("x", "image", x)
    plain, refined = get_eval_codec("walloc-rgb-rd"), get_eval_codec("walloc-rgb-rd+refine2")
    a, b = plain.encode(item, 2).data, refined.encode(item, 2).data
    assert a != b  # the encoder moved the latents; the decoder is the same
    assert refined.decode(b, item).shape == plain.decode(a, item).shape == x.shape
    monkeypatch.setattr(adapters, "CLASSICAL", dict(adapters.CLASSICAL))

    def factory():
        return "made"

    assert adapters.register_classical("x-test")(factory) is factory and adapters.CLASSICAL["x-test"] is factory
    assert get_eval_codec("x-test") == "made"
