"""Orthogonal wavelet packet transforms implemented as torch convolutions.

Filters come from PyWavelets. The transform uses periodic extension, so for an
orthogonal wavelet each level is an orthogonal matrix and the inverse is its
transpose: perfect reconstruction up to float rounding, for any size that is
divisible by ``2**levels`` (the codecs pad to that).

A full packet decomposition splits *every* subband again at each level, so a
(B, C, H, W) image becomes (B, C * 4**J, H / 2**J, W / 2**J): the spatial
resolution drops by 2**J and the channel count grows by 4**J (WaLLoC,
Jacobellis & Yadwadkar 2024).
"""
from __future__ import annotations

import pywt
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.errors import ModelError

__all__ = ["WaveletPacket2d", "orthogonal_filters"]


def orthogonal_filters(wavelet: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-pass and high-pass analysis filters (correlation order) of an orthogonal wavelet."""
    try:
        w = pywt.Wavelet(wavelet)
    except ValueError as exc:
        raise ModelError(f"unknown wavelet {wavelet!r}: {exc}") from None
    if not w.orthogonal:
        raise ModelError(
            f"wavelet {wavelet!r} is not orthogonal; the periodic packet transform "
            "needs an orthogonal wavelet (e.g. 'haar', 'db2', 'sym4', 'coif1')"
        )
    lo = torch.tensor(w.rec_lo, dtype=torch.float64)
    hi = torch.tensor(w.rec_hi, dtype=torch.float64)
    return lo, hi


class WaveletPacket2d(nn.Module):
    """Full 2-D wavelet packet transform of depth ``levels`` (no learnable parameters).

    ::

        x (B, C, H, W) --[level 1: C -> 4C, H/2]--> ... --> (B, C*4^J, H/2^J, W/2^J)

    Channel order after one level, per input channel: LL, LH, HL, HH.
    """

    def __init__(self, levels: int, wavelet: str = "haar") -> None:
        super().__init__()
        if levels < 1:
            raise ModelError(f"wavelet packet levels must be >= 1, got {levels}")
        self.levels = levels
        self.wavelet = wavelet
        lo, hi = orthogonal_filters(wavelet)
        bank = torch.stack(
            [torch.outer(a, b) for a in (lo, hi) for b in (lo, hi)]
        )  # (4, L, L)
        self.filter_length = lo.numel()
        self.register_buffer("bank", bank.unsqueeze(1), persistent=False)  # (4, 1, L, L)

    @property
    def factor(self) -> int:
        """Spatial size divisor: inputs must have H and W divisible by this."""
        return 2**self.levels

    def _check(self, h: int, w: int) -> None:
        if h % self.factor or w % self.factor:
            raise ModelError(f"input size {h}x{w} is not divisible by 2**levels = {self.factor}")
        if min(h, w) // (self.factor // 2) < self.filter_length - 1 and self.filter_length > 2:
            raise ModelError(f"input size {h}x{w} is too small for wavelet {self.wavelet!r}")

    def _weights(self, channels: int, x: torch.Tensor) -> torch.Tensor:
        return self.bank.to(device=x.device, dtype=x.dtype).repeat(channels, 1, 1, 1)  # (4C, 1, L, L)

    def _analysis(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        pad = self.filter_length - 2
        if pad:
            x = F.pad(x, (0, pad, 0, pad), mode="circular")
        return F.conv2d(x, self._weights(c, x), stride=2, groups=c)  # (B, 4C, H/2, W/2)

    def _synthesis(self, y: torch.Tensor) -> torch.Tensor:
        c = y.shape[1] // 4
        h, w = y.shape[-2] * 2, y.shape[-1] * 2
        x = F.conv_transpose2d(y, self._weights(c, y), stride=2, groups=c)  # (B, C, H+L-2, W+L-2)
        pad = self.filter_length - 2
        if pad:  # fold the periodic overhang back onto the start
            x = x.clone()
            x[..., :pad, :] += x[..., h:, :]
            x = x[..., :h, :]
            x[..., :, :pad] += x[..., :, w:]
            x = x[..., :, :w]
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C*4^J, H/2^J, W/2^J)."""
        self._check(x.shape[-2], x.shape[-1])
        for _ in range(self.levels):
            x = self._analysis(x)
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """(B, C*4^J, H/2^J, W/2^J) -> (B, C, H, W)."""
        for _ in range(self.levels):
            y = self._synthesis(y)
        return y
