"""Absolute quality floors for every shipped codec and rate, through the public API only.

Relative checks (errors fall with quality, two decode paths agree, goldens match) cannot see a
decoder that is wrong in the same way everywhere, and goldens can be regenerated over a bug.
These cannot: each shipped (codec, quality) must decode the fixture photo (481x321, tests/data)
or the fixture clip (1 s of 48 kHz stereo glockenspiel) with PSNR (SI-SDR for audio) at or above
a floor, from a file whose whole size (header included) lies inside a rate window.

Where the numbers come from: measured on these fixtures with ``lcodec.load(name, quality=q)``,
``.compress`` and ``lcodec.decompress``, one intra-op thread, at commit 34b8538 (the shipped
weights of that commit). PSNR is of the decoded image clamped to [0, 1] against the original,
over all pixels and channels; SI-SDR is the scale-invariant SDR (Le Roux et al. 2019) per
channel, averaged, computed here. Margins: floor = measured - 0.05 dB; rate window = measured
+-2 %. The streams themselves are bit-exact (golden hashes), so the rate only moves when the
weights or the format change. The decoded values are float: 1 and 2 threads gave the same PSNR
to 1e-5 dB, and 0.05 dB leaves room for other CPUs and BLAS builds while still catching a skipped
post-filter on walloc-rgb-light at every rate (it adds +0.09 dB at q6 to +0.43 dB at q1; planted
by hand, all six rows fail). Retraining a codec means re-measuring its rows here, by the same
procedure, and saying so in the commit.
"""
from __future__ import annotations

import functools

import pytest
import torch

import lcodec
from tests.conftest import FIXTURES

PSNR_MARGIN_DB = 0.05
RATE_MARGIN = 0.02

# (codec, quality): (measured PSNR dB, measured bpp) on tests/data/coffee_481x321.png
IMAGE = {
    ("walloc-rgb", 3): (28.6344, 0.75010),
    # rd: re-measured (same procedure) when its streams got per-image restoration filters (2026-12-07;
    # before: 27.4170/0.20435, 29.2492/0.31523, 31.1819/0.49596, 33.0478/0.74963, 34.9700/1.13699, 36.8140/1.66818)
    ("walloc-rgb-rd", 1): (27.4163, 0.20461),
    ("walloc-rgb-rd", 2): (29.4847, 0.32347),
    ("walloc-rgb-rd", 3): (31.4112, 0.50409),
    ("walloc-rgb-rd", 4): (33.2525, 0.75813),
    ("walloc-rgb-rd", 5): (35.1505, 1.14512),
    ("walloc-rgb-rd", 6): (37.0117, 1.67621),
    ("walloc-rgb-light", 1): (27.1495, 0.27559),
    ("walloc-rgb-light", 2): (29.0345, 0.41259),
    ("walloc-rgb-light", 3): (30.7723, 0.62295),
    ("walloc-rgb-light", 4): (32.5020, 0.92264),
    ("walloc-rgb-light", 5): (34.2423, 1.37548),
    ("walloc-rgb-light", 6): (35.9713, 2.02294),
    # rd-gmm: re-measured (same procedure) when its streams got per-image restoration filters (2026-12-07)
    ("walloc-rgb-rd-gmm", 1): (27.4163, 0.20648),
    ("walloc-rgb-rd-gmm", 2): (29.4847, 0.32368),
    ("walloc-rgb-rd-gmm", 3): (31.4112, 0.50140),
    ("walloc-rgb-rd-gmm", 4): (33.2525, 0.75233),
    ("walloc-rgb-rd-gmm", 5): (35.1505, 1.13124),
    ("walloc-rgb-rd-gmm", 6): (37.0117, 1.64885),
    ("walloc-rgb-mcq", 1): (22.1229, 0.14202),
    ("walloc-rgb-mcq", 2): (25.1384, 0.26285),
    ("walloc-rgb-mcq", 3): (27.9687, 0.44440),
    ("walloc-rgb-mcq", 4): (30.1654, 0.68854),
    ("walloc-rgb-mcq", 5): (32.0946, 1.03321),
    ("walloc-rgb-mcq", 6): (33.9200, 1.50180),
    # vq-rgb: measured by the same procedure on the weights it first shipped with (lcodec.train.vq_ladder)
    ("vq-rgb", 1): (20.2833, 0.02580),
    ("vq-rgb", 2): (20.9268, 0.03016),
    ("vq-rgb", 3): (21.4911, 0.03285),
    ("vq-rgb", 4): (21.8755, 0.03637),
    ("vq-rgb", 5): (22.2535, 0.04031),
    ("vq-rgb", 6): (22.5332, 0.04425),
    ("vq-rgb", 7): (22.8908, 0.04881),
}

# (codec, quality): (measured SI-SDR dB, measured kbit/s) on tests/data/glock_1s_48k_stereo.flac
AUDIO = {
    ("walloc-audio", 1): (5.6080, 70.1680),
    ("walloc-audio", 2): (14.2862, 230.5200),
    ("walloc-audio", 3): (24.4273, 447.8960),
    # walloc-audio-hp: re-measured when its encoder got the per-channel choice (lcodec.entropy.channel_choice);
    # the SI-SDR is walloc-audio's (same latents), only the rate fell (before: 50.576 / 169.840 / 371.056)
    ("walloc-audio-hp", 1): (5.6080, 42.0320),
    ("walloc-audio-hp", 2): (14.2862, 133.2000),
    ("walloc-audio-hp", 3): (24.4273, 303.6320),
}


# (codec, quality): (measured PSNR-RGB dB over all frames, measured bpp) on
# tests/data/basketball_96x64_6f.y4m coded with --gop 4 (two intra frames, four predicted ones);
# measured at the commit that shipped walloc-video, by the same procedure
VIDEO = {
    ("walloc-video", 1): (28.1400, 0.18728),
    ("walloc-video", 2): (29.9266, 0.25586),
    ("walloc-video", 3): (32.0228, 0.37565),
    ("walloc-video", 4): (34.1714, 0.51194),
    ("walloc-video", 5): (36.2207, 0.70030),
    ("walloc-video", 6): (38.4073, 1.00760),
    # walloc-video-mc: measured with its spatiotemporal motion vector model and residuals decoded without the
    # post-filter (two commits after bb6590e), by the same procedure
    ("walloc-video-mc", 1): (28.3420, 0.19401),
    ("walloc-video-mc", 2): (30.0935, 0.24957),
    ("walloc-video-mc", 3): (32.1660, 0.34852),
    ("walloc-video-mc", 4): (34.3468, 0.46658),
    ("walloc-video-mc", 5): (36.4063, 0.65148),
    ("walloc-video-mc", 6): (38.5982, 0.93620),
}


@functools.lru_cache(maxsize=None)
def _codec(name: str, quality: int):
    return lcodec.load(name, quality=quality)


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    mse = torch.mean((x.double() - y.double().clamp(0, 1)) ** 2)
    return float(-10 * torch.log10(mse))


def si_sdr(ref: torch.Tensor, est: torch.Tensor) -> float:
    """Mean over channels of 10 log10(|a s|^2 / |a s - e|^2), a = <e, s> / <s, s>, zero-mean s and e."""
    s = ref.double() - ref.double().mean(-1, keepdim=True)
    e = est.double() - est.double().mean(-1, keepdim=True)
    target = (e * s).sum(-1, keepdim=True) / (s * s).sum(-1, keepdim=True) * s
    return float((10 * torch.log10((target**2).sum(-1) / ((e - target) ** 2).sum(-1))).mean())


# Codecs fitted per content at encode time ship only tables; their picture depends on the fitting budget,
# so they have no photo floor here. Their decoder is pinned exactly instead (tests/codecs/test_overfit.py:
# golden stream -> pixel hash, decoder == the encoder's fitted picture, fitting beats the unfitted picture;
# tests/codecs/test_nirvana.py for the video one).
FITTED = {"overfit-rgb", "nirvana-video"}


def test_every_shipped_codec_and_rate_has_a_floor():
    shipped = {(s.name, q) for s in lcodec.list_codecs() for q in s.weights if s.name not in FITTED}
    assert shipped == set(IMAGE) | set(AUDIO) | set(VIDEO) | set(LOSSLESS), "add (or remove) floors for the codecs shipped now"


# lossless codecs: the floor is exactness; (codec, quality): measured bits/dim, header included, on the 64
# fixture digits tests/data/mnist_t10k_0-63.npz (pc-mnist's weights of commit 630b3a6)
LOSSLESS = {("pc-mnist", 1): 1.17459}


@pytest.mark.parametrize("key", sorted(LOSSLESS))
def test_lossless_codec_is_exact_within_its_rate_window(key):
    import numpy as np

    x = torch.from_numpy(np.load(FIXTURES / "mnist_t10k_0-63.npz")["images"].astype(np.float32) / 255)[:, None]
    data = lcodec.load(*key).compress(x)
    assert torch.equal(torch.round(lcodec.decompress(data) * 255), torch.round(x * 255))
    assert abs(8 * len(data) / x.numel() / LOSSLESS[key] - 1) <= RATE_MARGIN


def _meets_floor(name: str, quality: int, x: torch.Tensor, data: bytes, want: tuple[float, float], metric,
                 rate: float, unit: str) -> None:
    """The stream decodes (through the public API) to x's shape and dtype, with ``metric`` at or
    above the floor, from a file whose rate lies in the measured window."""
    x_hat = lcodec.decompress(data)
    assert x_hat.shape == x.shape and x_hat.dtype == x.dtype
    got = metric(x, x_hat)
    assert got >= want[0] - PSNR_MARGIN_DB, f"{name} q{quality}: {got:.3f} dB, floor {want[0] - PSNR_MARGIN_DB:.3f}"
    assert abs(rate / want[1] - 1) <= RATE_MARGIN, f"{name} q{quality}: {rate:.4f} {unit}, measured {want[1]:.4f}"


@pytest.mark.parametrize("name,quality", sorted(IMAGE))
def test_image_floor(name, quality, photo, one_thread):
    data = _codec(name, quality).compress(photo)
    bpp = 8 * len(data) / (photo.shape[-1] * photo.shape[-2])
    _meets_floor(name, quality, photo, data, IMAGE[(name, quality)], psnr, bpp, "bpp")


@pytest.fixture(scope="module")
def clip():
    from lcodec.io.audio import read_audio

    x, rate = read_audio(FIXTURES / "glock_1s_48k_stereo.flac")
    return x.unsqueeze(0), rate


@pytest.mark.parametrize("name,quality", sorted(AUDIO))
def test_audio_floor(name, quality, clip, one_thread):
    x, rate = clip
    data = _codec(name, quality).compress(x, rate)
    kbps = 8 * len(data) / (x.shape[-1] / rate) / 1000
    _meets_floor(name, quality, x, data, AUDIO[(name, quality)], si_sdr, kbps, "kbps (SI-SDR floor)")


@pytest.fixture(scope="module")
def video():
    from lcodec.io.video import read_video

    return read_video(FIXTURES / "basketball_96x64_6f.y4m")[0].unsqueeze(0)


@pytest.mark.parametrize("name,quality", sorted(VIDEO))
def test_video_floor(name, quality, video, one_thread):
    data = _codec(name, quality).compress(video, fps=50, gop=4)
    bpp = 8 * len(data) / (video.shape[2] * video.shape[3] * video.shape[4])
    _meets_floor(name, quality, video, data, VIDEO[(name, quality)], psnr, bpp, "bpp")


def test_si_sdr_helper_on_known_signals():
    """The floor's own metric: a scaled copy is perfect (infinite), a known-noise mix is exact."""
    t = torch.linspace(0, 1, 4800)
    s = torch.sin(2 * torch.pi * 440 * t).view(1, 1, -1)
    n = torch.cos(2 * torch.pi * 1000 * t).view(1, 1, -1)  # orthogonal to s over whole periods
    n = n - (n * s).sum() / (s * s).sum() * s
    n = n - n.mean()
    got = si_sdr(s, s + 0.1 * n / n.norm() * s.norm())
    assert got == pytest.approx(20.0, abs=1e-3)
