"""Distortion metrics on images in [0, 1] (B, 3, H, W); one value per batch item."""
from __future__ import annotations

import torch

__all__ = ["psnr", "ms_ssim", "bpp"]


def psnr(x: torch.Tensor, x_hat: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over all channels (PSNR-RGB), per item. Inputs are
    quantized to 8 bits first, as when the reconstruction is written to a PNG."""
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
