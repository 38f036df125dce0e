"""Distortion metrics, one value per batch item: images (B, 3, H, W) and video (B, 3, T, H, W)
in [0, 1], audio (B, channels, samples) in [-1, 1]."""
from __future__ import annotations

import torch

__all__ = ["psnr", "ms_ssim", "bpp", "snr", "si_sdr", "log_mel_distance", "psnr_y", "psnr_yuv"]


def psnr(x: torch.Tensor, x_hat: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over all channels (PSNR-RGB), per item. Inputs are
    clamped to [0, 1] and quantized to 8 bits first, as when the reconstruction is written to a
    PNG. The MSE is floored at 1e-20 of the peak squared (identical images: 200 dB); this and
    psnr_y / psnr_yuv share that floor. ``data_range`` scales images and peak alike, so it does
    not change the value."""
    x8 = torch.round(x.clamp(0, 1) * 255) / 255 * data_range
    y8 = torch.round(x_hat.clamp(0, 1) * 255) / 255 * data_range
    mse = torch.mean((x8.double() - y8.double()) ** 2, dim=tuple(range(1, x.dim())))
    return (10 * torch.log10(data_range**2 / mse.clamp_min(1e-20))).float()


def ms_ssim(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM (Wang et al. 2003) via pytorch-msssim, per item; needs min side >= 161."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    x8 = torch.round(x.clamp(0, 1) * 255).float()
    y8 = torch.round(x_hat.clamp(0, 1) * 255).float()
    return _ms_ssim(x8, y8, data_range=255.0, size_average=False)


def bpp(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of a WHOLE file (header included)."""
    return 8.0 * num_bytes / (height * width)


# ------------------------------------------------------------------------ audio
def _audio_pair(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check (B, channels, samples) shapes match -> float64 copies."""
    from lcodec.errors import InputError

    if x.shape != x_hat.shape or x.dim() != 3:
        raise InputError(f"audio metrics need two (B, channels, samples) tensors of one shape, got "
                         f"{tuple(x.shape)} and {tuple(x_hat.shape)}")
    return x.detach().double(), x_hat.detach().double()


def _ratio_db(signal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """10 log10(signal / noise) with both energies floored at 1e-20 (identical signals -> ~200 dB)."""
    return (10 * torch.log10(signal.clamp_min(1e-20) / noise.clamp_min(1e-20))).float()


def snr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio in dB per item: 10 log10(sum x^2 / sum (x - x_hat)^2) over all
    channels and samples of (B, channels, samples) audio. No alignment, no gain correction."""
    x, x_hat = _audio_pair(x, x_hat)
    dims = (1, 2)
    return _ratio_db((x**2).sum(dims), ((x - x_hat) ** 2).sum(dims))


def si_sdr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR in dB per item (Le Roux et al., "SDR - half-baked or well done?", 2019).

    Each channel of the reference ``x`` and estimate ``x_hat`` is made zero-mean; one optimal
    scale a = <x_hat, x> / <x, x> is fitted over all channels of the item; then
    SI-SDR = 10 log10(||a x||^2 / ||a x - x_hat||^2). Invariant to rescaling ``x_hat``.
    """
    x, x_hat = _audio_pair(x, x_hat)
    x = x - x.mean(dim=-1, keepdim=True)
    x_hat = x_hat - x_hat.mean(dim=-1, keepdim=True)
    dims = (1, 2)
    scale = (x_hat * x).sum(dims, keepdim=True) / (x**2).sum(dims, keepdim=True).clamp_min(1e-20)
    target = scale * x
    return _ratio_db((target**2).sum(dims), ((target - x_hat) ** 2).sum(dims))


def log_mel_distance(x: torch.Tensor, x_hat: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Mean absolute difference of log10 mel spectrograms, per item (lower is better).

    Exact definition: M(s) = torchaudio MelSpectrogram of each channel with n_fft =
    max(16, round(2048 * sample_rate / 48000)) (2048 at 48 kHz: a fixed 23.4 Hz bin width), Hann
    window of n_fft samples, hop n_fft // 4, centred frames (reflect padding), power 2,
    80 HTK mel bands from 0 Hz to sample_rate / 2 without filter normalization. The
    distance is mean over channels, bands and frames of |log10(M(x) + 1e-5) - log10(M(x_hat) + 1e-5)|.
    """
    import torchaudio

    from lcodec.errors import InputError

    x, x_hat = _audio_pair(x, x_hat)
    if sample_rate <= 0:
        raise InputError(f"log_mel_distance needs a positive sample_rate, got {sample_rate}")
    n_fft = max(16, round(2048 * sample_rate / 48000))
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=80, power=2.0,
        f_min=0.0, f_max=sample_rate / 2,
    ).double()
    log_x = torch.log10(mel(x) + 1e-5)  # (B, C, 80, frames)
    log_y = torch.log10(mel(x_hat) + 1e-5)
    return (log_x - log_y).abs().mean(dim=(1, 2, 3)).float()


# --------------------------------------------------------------- images and video
def _luma_chroma_8bit(x: torch.Tensor, dim: int) -> torch.Tensor:
    """RGB in [0, 1] -> quantized to 8 bits -> BT.601 limited-range Y'CbCr code values (unrounded)."""
    from lcodec.io.video import rgb_to_ycbcr

    x8 = torch.round(x.detach().clamp(0, 1).double() * 255) / 255
    return rgb_to_ycbcr(x8, dim=dim).double()


def _psnr_255(a: torch.Tensor, b: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    mse = ((a - b) ** 2).mean(dim=dims)
    return 10 * torch.log10(255.0**2 / mse.clamp_min(1e-20 * 255.0**2))


def psnr_y(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """PSNR of BT.601 luma in dB per item, for (B, 3, H, W) images in [0, 1].

    Both images are quantized to 8-bit RGB, converted to limited-range Y' = 16 + 65.481 R +
    128.553 G + 24.966 B (R, G, B in [0, 1]; not rounded), peak 255.
    """
    from lcodec.errors import InputError

    if x.shape != x_hat.shape or x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"psnr_y needs two (B, 3, H, W) tensors of one shape, got "
                         f"{tuple(x.shape)} and {tuple(x_hat.shape)}")
    y, y_hat = _luma_chroma_8bit(x, 1)[:, 0], _luma_chroma_8bit(x_hat, 1)[:, 0]
    return _psnr_255(y, y_hat, (1, 2)).float()


def psnr_yuv(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Video PSNR-YUV in dB per item, for (B, 3, T, H, W) clips in [0, 1].

    Per frame: both frames quantized to 8-bit RGB, converted to BT.601 limited-range Y'CbCr
    at full resolution (no chroma subsampling), PSNR of each plane with peak 255, combined
    as (6 PSNR_Y + PSNR_Cb + PSNR_Cr) / 8; then averaged over frames.
    """
    from lcodec.errors import InputError

    if x.shape != x_hat.shape or x.dim() != 5 or x.shape[1] != 3:
        raise InputError(f"psnr_yuv needs two (B, 3, T, H, W) tensors of one shape, got "
                         f"{tuple(x.shape)} and {tuple(x_hat.shape)}")
    per_plane = _psnr_255(_luma_chroma_8bit(x, 1), _luma_chroma_8bit(x_hat, 1), (3, 4))  # (B, 3, T)
    per_frame = (6 * per_plane[:, 0] + per_plane[:, 1] + per_plane[:, 2]) / 8  # (B, T)
    return per_frame.mean(dim=1).float()
