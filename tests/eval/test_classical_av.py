"""The classical audio/video adapters (lcodec/eval/classical_av.py) against their docstrings: the
settings each description names, the file they write (frame rate, colour signalling, no encoder
SEI text), edge-replicate padding, FLAC's channel range and output type, and clear errors."""
from __future__ import annotations

import io
import subprocess
import sys
from fractions import Fraction

import pytest
import torch

from lcodec.errors import InputError, ModelError
from lcodec.eval import classical_av
from lcodec.eval.adapters import MediaItem, get_eval_codec
from lcodec.eval.classical_av import LOW_DELAY_GOP, _check_video, _fit_length, _has_decoder


def _codec_or_skip(name: str):
    try:
        return get_eval_codec(name)
    except ModelError as exc:
        pytest.skip(f"{name} is not available in this build: {exc}")


def _video(t=3, h=17, w=33, value=None, seed=0):
    if value is not None:
        return torch.full((1, 3, t, h, w), value)
    return torch.rand(1, 3, t, h, w, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ small helpers
def test_fit_length_trims_or_zero_pads_the_end():
    x = torch.arange(1.0, 7.0).view(1, 2, 3)
    assert torch.equal(_fit_length(x, 2), x[..., :2])
    assert torch.equal(_fit_length(x, 3), x)
    padded = _fit_length(x, 5)
    assert padded.shape == (1, 2, 5) and torch.equal(padded[..., :3], x) and not padded[..., 3:].any()


def test_has_decoder_asks_ffmpeg_for_a_decoder():
    assert _has_decoder("h264") and _has_decoder("flac")
    assert not _has_decoder("no-such-codec")
    assert not _has_decoder("libx264")  # an encoder only


def test_check_video_wants_one_rgb_clip_that_is_not_empty():
    assert _check_video(MediaItem("v", "video", torch.zeros(1, 3, 2, 5, 7))) == (2, 5, 7)
    for shape in ((2, 3, 2, 5, 7), (1, 4, 2, 5, 7), (1, 1, 2, 5, 7), (3, 2, 5, 7)):
        with pytest.raises(InputError, match=r"v: video must be \(1, 3, T, H, W\), got " + str(shape).replace("(", r"\(").replace(")", r"\)")):
            _check_video(MediaItem("v", "video", torch.zeros(shape)))
    for shape in ((1, 3, 0, 5, 7), (1, 3, 2, 0, 7), (1, 3, 2, 5, 0)):
        with pytest.raises(InputError, match="v: video item is empty"):
            _check_video(MediaItem("v", "video", torch.zeros(shape)))


# ------------------------------------------------------------------ video settings
@pytest.mark.parametrize("name", ["h264", "h264-ld", "h265", "h265-ld"])
def test_x26x_settings_are_what_the_description_says(name):
    codec = _codec_or_skip(name)
    assert codec.name == name and codec.modality == "video"
    assert list(codec.qualities) == sorted(codec.qualities, reverse=True)  # CRF: lowest rate first
    desc = codec.description
    assert "preset medium" in desc and "CRF" in desc and "1 thread" in desc and "BT.601" in desc
    opts = codec.settings.options(27)
    assert opts["crf"] == "27" and opts["preset"] == "medium"
    params = opts.get("x264-params", "") + opts.get("x265-params", "")
    if name.startswith("h264"):
        assert opts["threads"] == "1"
    else:
        assert {"pools=none", "frame-threads=1", "info=0"} <= set(params.split(":"))
    low_delay = name.endswith("-ld")
    assert ("low delay" in desc) == low_delay
    wanted = {"bframes=0", f"keyint={LOW_DELAY_GOP}", f"min-keyint={LOW_DELAY_GOP}", "scenecut=0"}
    assert (wanted <= set(params.split(":"))) == low_delay


@pytest.mark.parametrize("name, fps, rate", [("h264", 0.0, Fraction(25)), ("h264", 30000 / 1001, Fraction(30000, 1001)),
                                             ("h265", 12.5, Fraction(25, 2))])
def test_mp4_carries_the_frame_rate_bt601_limited_range_and_no_encoder_text(name, fps, rate):
    import av

    codec = _codec_or_skip(name)
    data = codec.encode(MediaItem("v", "video", _video(h=34, w=40), fps=fps), 28).data
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == rate  # items without a frame rate are timed at 25 fps
        assert (stream.codec_context.colorspace, stream.codec_context.color_range) == (6, 1)
        times = [float(f.time) for f in container.decode(stream)]
    assert times == pytest.approx([i / float(rate) for i in range(3)])
    for text in (b"x264 - core", b"x265 (build", b"options:"):  # the informational SEI is left out
        assert text not in data


def test_odd_sides_are_padded_by_edge_replicate_and_cropped_back():
    """A flat picture stays flat: zero padding would pull the edge blocks (and their chroma) dark."""
    codec = get_eval_codec("h264")
    item = MediaItem("flat", "video", _video(t=2, h=17, w=33, value=0.8), fps=25.0)
    y = codec.decode(codec.encode(item, 28).data, item)
    assert y.shape == item.x.shape and float((y - 0.8).abs().max()) <= 2 / 255


def test_x265_codes_small_clips_without_crashing():
    """x265 in this PyAV build corrupts its heap at random (process abort) on frames smaller than its
    64-pixel CTU; the adapter pads sides to 64. Run in a child, twice per size, so a crash is a
    failure rather than the end of the test run."""
    try:
        get_eval_codec("h265")
    except ModelError as exc:
        pytest.skip(str(exc))
    code = ("import torch\nfrom lcodec.eval.adapters import get_eval_codec, MediaItem\n"
            "c = get_eval_codec('h265')\n"
            "for h, w in ((16, 40), (18, 34), (48, 48), (16, 40), (18, 34), (48, 48)):\n"
            "    item = MediaItem('v', 'video', torch.rand(1, 3, 3, h, w), fps=25.0)\n"
            "    assert c.decode(c.encode(item, 28).data, item).shape == item.x.shape\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"


@pytest.mark.parametrize("frames", [1, 2])
def test_h265_codes_clips_of_one_or_two_frames(frames):
    """x265 left the first dts of such clips uninitialised, and the MP4 muxer refused them."""
    codec = _codec_or_skip("h265")
    item = MediaItem("short", "video", _video(t=frames, h=64, w=64), fps=25.0)
    assert codec.decode(codec.encode(item, 28).data, item).shape == item.x.shape


class _Packet:
    def __init__(self, pts, dts):
        self.pts, self.dts = pts, dts


def test_repair_dts_keeps_valid_timestamps_and_rebuilds_broken_ones():
    from lcodec.eval.classical_av import _repair_dts

    valid = [_Packet(0, -2), _Packet(3, -1), _Packet(1, 0), _Packet(2, 1)]  # B-frames, delay 2
    _repair_dts(valid)
    assert [p.dts for p in valid] == [-2, -1, 0, 1]
    for broken in ([-79010218395612, 1, 2, 3], [0, 0, 1, 2], [None, 1, 2, 3], [0, 4, 5, 6]):
        packets = [_Packet(q, d) for q, d in zip([0, 3, 1, 2], broken)]
        _repair_dts(packets)
        # the i-th smallest pts less the largest reorder delay (1 here): increasing, never after its pts
        assert [p.dts for p in packets] == [-1, 0, 1, 2]
    one = [_Packet(0, -79010218395612)]
    _repair_dts(one)
    assert one[0].dts == 0


def test_an_ffmpeg_failure_is_a_model_error_naming_the_clip(monkeypatch):
    import av

    codec = get_eval_codec("h264")

    def fails(*args, **kwargs):
        raise av.error.FFmpegError(1, "boom")

    monkeypatch.setattr(codec, "_encode_mp4", fails)
    item = MediaItem("clip", "video", _video(t=2, h=8, w=10), fps=25.0)
    with pytest.raises(ModelError, match=r"h264: FFmpeg could not code clip \(2 frames, 8x10\): .*boom"):
        codec.encode(item, 28)


# ------------------------------------------------------------------ FLAC
@pytest.mark.parametrize("channels", [1, 2, 8])
def test_flac_is_exact_on_16_bit_audio_for_1_to_8_channels(channels):
    codec = get_eval_codec("flac")
    g = torch.Generator().manual_seed(channels)
    x = torch.randint(-32768, 32768, (1, channels, 3000), generator=g).float() / 32768
    item = MediaItem("a", "audio", x, sample_rate=22050)
    y = codec.decode(codec.encode(item, 16).data, item)
    assert y.dtype == torch.float32 and y.shape == x.shape and torch.equal(y, x)


def test_flac_refuses_what_it_cannot_code():
    codec = get_eval_codec("flac")
    nine = MediaItem("nine", "audio", torch.zeros(1, 9, 100), sample_rate=8000)
    with pytest.raises(InputError, match="nine: flac codes 1 to 8 channels, got 9"):
        codec.encode(nine, 16)
    item = MediaItem("a", "audio", torch.zeros(1, 2, 100), sample_rate=8000)
    with pytest.raises(InputError, match="only 16 is supported, got 24"):
        codec.encode(item, 24)
    data = codec.encode(item, 16).data
    with pytest.raises(ModelError, match="flac: decoded 2 channels x 100 samples, the item has 2 x 90"):
        codec.decode(data, MediaItem("a", "audio", torch.zeros(1, 2, 90), sample_rate=8000))
    with pytest.raises(InputError, match="flac codes 1 to 8 channels"):
        codec.decode(data, nine)


def test_flac_writes_16_bit_pcm():
    import soundfile as sf

    item = MediaItem("a", "audio", torch.zeros(1, 1, 100), sample_rate=8000)
    info = sf.info(io.BytesIO(get_eval_codec("flac").encode(item, 16).data))
    assert (info.format, info.subtype, info.channels, info.samplerate, info.frames) == ("FLAC", "PCM_16", 1, 8000, 100)
    assert classical_av.FlacCodec.qualities == (16,)


def test_lossy_audio_runs_at_the_items_rate_or_the_next_allowed_one_up():
    mp3, opus = get_eval_codec("mp3"), get_eval_codec("opus")
    assert [mp3.coding_rate(r) for r in (8000, 32000, 40000, 44100, 48000, 96000)] == [
        32000, 32000, 44100, 44100, 48000, 48000]  # above every allowed rate: the highest
    assert {opus.coding_rate(r) for r in (8000, 44100, 96000)} == {48000}
