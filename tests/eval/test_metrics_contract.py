"""lcodec.eval.metrics against its docstrings: 8-bit quantization and clamping of the inputs,
per-item and per-channel definitions, the exact log-mel spectrogram (re-implemented here in
numpy), input checks one at a time. Written against mutation run 3's survivors of metrics.py."""
import math

import numpy as np
import pytest
import torch

from lcodec.errors import InputError
from lcodec.eval.metrics import bpp, log_mel_distance, ms_ssim, psnr, psnr_y, psnr_yuv, si_sdr, snr


def test_psnr_quantizes_to_8_bits_by_rounding_and_ignores_data_range():
    """0.3 -> round(76.5) = 76 (half to even), 0.31 -> round(79.05) = 79: three levels apart
    everywhere, so PSNR = 10 log10(255**2 / 9), for any data_range (both images and the peak
    scale with it)."""
    x, y = torch.full((1, 3, 4, 4), 0.3), torch.full((1, 3, 4, 4), 0.31)
    expected = 10 * math.log10(255**2 / 9)
    for data_range in (1.0, 2.0, 255.0):
        assert float(psnr(x, y, data_range=data_range)[0]) == pytest.approx(expected, abs=1e-4)


def test_image_metrics_clamp_to_the_png_range_first():
    """Values outside [0, 1] count as 0 and 1, as when written to a PNG."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 176, 176, generator=g)
    wild = x + 0.6 * torch.randn(x.shape, generator=g)
    clamped = wild.clamp(0, 1)
    assert float(psnr(x, wild)[0]) == pytest.approx(float(psnr(x, clamped)[0]), abs=1e-6)
    assert float(psnr(wild, x)[0]) == pytest.approx(float(psnr(clamped, x)[0]), abs=1e-6)
    assert float(psnr_y(x, wild)[0]) == pytest.approx(float(psnr_y(x, clamped)[0]), abs=1e-6)
    assert float(ms_ssim(x, wild)[0]) == pytest.approx(float(ms_ssim(x, clamped)[0]), abs=1e-6)
    assert float(ms_ssim(wild, x)[0]) == pytest.approx(float(ms_ssim(clamped, x)[0]), abs=1e-6)
    video = torch.rand(1, 3, 2, 8, 8, generator=g)
    wild_video = video + 0.6 * torch.randn(video.shape, generator=g)
    assert float(psnr_yuv(video, wild_video)[0]) == pytest.approx(float(psnr_yuv(video, wild_video.clamp(0, 1))[0]), abs=1e-6)


def test_identical_images_give_200_db_in_every_psnr():
    """MSE is floored at 1e-20 of the peak squared: 10 log10(1e20) = 200 dB."""
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    for value in (psnr(x, x), psnr_y(x, x), psnr_yuv(x.unsqueeze(2), x.unsqueeze(2))):
        torch.testing.assert_close(value, torch.full((2,), 200.0), atol=1e-3, rtol=0)


def test_bpp_is_whole_file_bits_over_pixels():
    assert bpp(1000, 500, 400) == 8 * 1000 / (500 * 400)
    assert bpp(3, 2, 3) == 4.0


def test_snr_of_a_quiet_signal_is_not_floored():
    """Energies are floored at 1e-20 only: a quiet signal (energy 1e-4) keeps its exact SNR."""
    x = torch.full((1, 1, 100), 1e-3)  # energy 1e-4
    y = x * 1.1  # noise energy 1e-6: 20 dB
    assert float(snr(x, y)[0]) == pytest.approx(20.0, abs=1e-4)


def test_si_sdr_is_per_item_and_zero_means_each_channel():
    """Each item is scored alone (a batch gives each item's own value), and each channel's own
    mean is removed (a constant offset on one channel only changes nothing)."""
    g = torch.Generator().manual_seed(2)
    a = torch.randn(1, 2, 4000, generator=g)
    b = 5.0 * torch.randn(1, 2, 4000, generator=g)
    noisy_a = a + 0.3 * torch.randn(a.shape, generator=g)
    noisy_b = 0.2 * b + 2.0 * torch.randn(b.shape, generator=g)
    batch = si_sdr(torch.cat([a, b]), torch.cat([noisy_a, noisy_b]))
    assert batch.shape == (2,)
    torch.testing.assert_close(batch, torch.cat([si_sdr(a, noisy_a), si_sdr(b, noisy_b)]), atol=1e-4, rtol=0)
    offset = noisy_a.clone()
    offset[:, 1] += 0.7  # one channel's DC only
    assert float(si_sdr(a, offset)[0]) == pytest.approx(float(si_sdr(a, noisy_a)[0]), abs=1e-4)


def _mel_reference(x: np.ndarray, rate: int) -> np.ndarray:
    """log_mel_distance's docstring in numpy: n_fft = max(16, round(2048 * rate / 48000)), periodic
    Hann window, hop n_fft // 4, centred frames with reflect padding, |FFT|**2, 80 HTK triangular
    mel bands from 0 Hz to rate / 2 with no area normalisation. x: (C, N) -> (C, 80, frames)."""
    n_fft = max(16, round(2048 * rate / 48000))
    hop = n_fft // 4
    xp = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    frames = 1 + (xp.shape[1] - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(xp[:, idx] * window, axis=-1)) ** 2  # (C, frames, bins)
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(0.0), mel(rate / 2), 82) / 2595) - 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bank = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))  # (80, bins)
    return np.einsum("mb,cfb->cmf", bank, power)


@pytest.mark.parametrize("rate", [48000, 16000, 8000])
def test_log_mel_distance_matches_its_definition_written_out(rate):
    g = np.random.default_rng(rate)
    n = max(64, rate // 4)
    x = 0.2 * g.standard_normal((2, n))
    y = x + 0.05 * g.standard_normal((2, n)) * np.linspace(0, 2, n)
    ref = np.mean(np.abs(np.log10(_mel_reference(x, rate) + 1e-5) - np.log10(_mel_reference(y, rate) + 1e-5)))
    got = float(log_mel_distance(torch.from_numpy(x)[None], torch.from_numpy(y)[None], rate)[0])
    assert got == pytest.approx(ref, rel=1e-5)


def test_log_mel_distance_needs_a_positive_rate():
    x = torch.zeros(1, 1, 64)
    for rate in (0, -16000):
        with pytest.raises(InputError, match=f"needs a positive sample_rate, got {rate}"):
            log_mel_distance(x, x, rate)


@pytest.mark.parametrize("shape", [(1, 3, 8, 8, 1), (1, 1, 8, 8), (1, 4, 8, 8), (3, 8, 8)])
def test_psnr_y_refuses_each_wrong_shape_alone(shape):
    """(B, 3, H, W) only: a fifth axis with 3 channels, or 4 axes with 1 or 4 channels, are refused."""
    x = torch.rand(shape)
    with pytest.raises(InputError, match=r"psnr_y needs two \(B, 3, H, W\) tensors"):
        psnr_y(x, x)


@pytest.mark.parametrize("shape", [(1, 3, 2, 8, 8, 1), (1, 1, 2, 8, 8), (1, 3, 8, 8)])
def test_psnr_yuv_refuses_each_wrong_shape_alone(shape):
    x = torch.rand(shape)
    with pytest.raises(InputError, match=r"psnr_yuv needs two \(B, 3, T, H, W\) tensors"):
        psnr_yuv(x, x)


def test_si_sdr_of_a_quiet_reference_is_not_floored():
    """The optimal scale divides by the reference's own energy (floored at 1e-20 only): a quiet
    reference scored against a louder copy of itself plus orthogonal noise keeps its SI-SDR."""
    t = torch.linspace(0, 1, 2000, dtype=torch.float64)
    x = 1e-3 * torch.sin(2 * math.pi * 5 * t).view(1, 1, -1)  # energy about 1e-3
    n = 1e-4 * torch.cos(2 * math.pi * 5 * t).view(1, 1, -1)  # orthogonal, 20 dB below
    x, n = x - x.mean(), n - n.mean()
    n = n - (n * x).sum() / (x**2).sum() * x
    expected = 10 * math.log10(float((x**2).sum() / (n**2).sum()))
    assert float(si_sdr(x, 3.0 * (x + n))[0]) == pytest.approx(expected, abs=1e-3)
