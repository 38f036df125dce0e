"""Orthogonal wavelet packet transforms implemented as torch convolutions.

Filters come from PyWavelets. The transform uses periodic extension, so for an
orthogonal wavelet each level is an orthogonal matrix and the inverse is its
transpose: perfect reconstruction up to float rounding, for any size that is
divisible by ``2**levels`` (the codecs pad to that).

A full packet decomposition splits *every* subband again at each level, so a
(B, C, H, W) image becomes (B, C * 4**J, H / 2**J, W / 2**J) and a (B, C, N)
signal becomes (B, C * 2**J, N / 2**J): the resolution drops by 2**J per axis and
the channel count grows to match (WaLLoC, Jacobellis & Yadwadkar 2024). The 1-D
and 2-D transforms share one implementation.
"""
from __future__ import annotations

import pywt
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.errors import ModelError

__all__ = ["WaveletPacket1d", "WaveletPacket2d", "orthogonal_filters"]


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


class _WaveletPacket(nn.Module):
    """Full wavelet packet transform of depth ``levels`` over the last ``dims`` axes.

    One implementation for audio (dims=1) and images (dims=2); no learnable parameters.
    Each level splits one axis at a time (a strided grouped convolution with the low- and
    high-pass filters along that axis), so every input channel becomes 2**dims channels at
    half the size; separable passes cost 2L multiply-adds per output instead of L^2.
    """

    dims = 0

    def __init__(self, levels: int, wavelet: str = "haar") -> None:
        super().__init__()
        if levels < 1:
            raise ModelError(f"wavelet packet levels must be >= 1, got {levels}")
        self.levels = levels
        self.wavelet = wavelet
        lo, hi = orthogonal_filters(wavelet)
        self.filter_length = lo.numel()
        self.register_buffer("bank", torch.stack([lo, hi]).unsqueeze(1), persistent=False)  # (2, 1, L)

    @property
    def factor(self) -> int:
        """Size divisor: every transformed axis must be divisible by this."""
        return 2**self.levels

    @property
    def split(self) -> int:
        """Channels produced per input channel by one level (2 in 1-D, 4 in 2-D)."""
        return 2**self.dims

    def _check(self, sizes: tuple[int, ...]) -> None:
        shown = "x".join(map(str, sizes))
        if any(n % self.factor for n in sizes):
            raise ModelError(f"input size {shown} is not divisible by 2**levels = {self.factor}")
        if min(sizes) // (self.factor // 2) < self.filter_length - 1 and self.filter_length > 2:
            raise ModelError(f"input size {shown} is too small for wavelet {self.wavelet!r}")

    def _weights(self, channels: int, x: torch.Tensor, axis: int, bank: torch.Tensor | None = None) -> torch.Tensor:
        """The (lo, hi) pair (``bank``, default this packet's filters) oriented along ``axis`` (2 or
        3), repeated for ``channels`` groups."""
        w = (self.bank if bank is None else bank).to(device=x.device, dtype=x.dtype)  # (2, 1, L)
        if self.dims == 2:
            w = w.unsqueeze(3) if axis == 2 else w.unsqueeze(2)  # (2, 1, L, 1) or (2, 1, 1, L)
        return w.repeat(channels, *([1] * (w.dim() - 1)))

    def _stride(self, axis: int) -> int | tuple[int, int]:
        return 2 if self.dims == 1 else ((2, 1) if axis == 2 else (1, 2))

    def _split(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        """One two-band split along ``axis``: channel c becomes 2c (low) and 2c+1 (high)."""
        c = x.shape[1]
        pad = self.filter_length - 2
        if pad:  # periodic extension at the end of this axis only
            x = torch.cat([x, x.narrow(axis, 0, pad)], dim=axis)
        conv = F.conv1d if self.dims == 1 else F.conv2d
        return conv(x, self._weights(c, x, axis), stride=self._stride(axis), groups=c)

    def merge(self, y: torch.Tensor, axis: int, bank: torch.Tensor | None = None) -> torch.Tensor:
        """Inverse of ``_split`` along ``axis`` (the transpose of an orthogonal map); ``bank``
        replaces the filters (``lcodec.models.exact`` passes them as integers)."""
        c = y.shape[1] // 2
        n = 2 * y.shape[axis]
        conv_t = F.conv_transpose1d if self.dims == 1 else F.conv_transpose2d
        x = conv_t(y, self._weights(c, y, axis, bank), stride=self._stride(axis), groups=c)  # axis: n + L - 2
        pad = self.filter_length - 2
        if pad:  # fold the periodic overhang back onto the start
            x = x.clone()
            x.narrow(axis, 0, pad).add_(x.narrow(axis, n, pad))
            x = x.narrow(axis, 0, n)
        return x

    def _analysis(self, x: torch.Tensor) -> torch.Tensor:
        """One level, separably: (B, C, ...) -> (B, 2^d C, .../2); in 2-D, channel 4c + 2a + b
        holds filter a (0 low, 1 high) along the height and b along the width."""
        for axis in range(2, 2 + self.dims):
            x = self._split(x, axis)
        return x

    def _synthesis(self, y: torch.Tensor) -> torch.Tensor:
        for axis in reversed(range(2, 2 + self.dims)):
            y = self.merge(y, axis)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *S) -> (B, C * 2^(d J), *S / 2^J)."""
        self._check(tuple(x.shape[2:]))
        for _ in range(self.levels):
            x = self._analysis(x)
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """(B, C * 2^(d J), *S / 2^J) -> (B, C, *S)."""
        for _ in range(self.levels):
            y = self._synthesis(y)
        return y


class WaveletPacket1d(_WaveletPacket):
    """Full 1-D packet of depth J: (B, C, N) -> (B, C*2^J, N/2^J).

    Channel order after one level, per input channel: low, high. For audio the J-level
    packet splits the band into 2^J equal-width subbands (in natural, not frequency, order).
    """

    dims = 1


class WaveletPacket2d(_WaveletPacket):
    """Full 2-D packet of depth J: (B, C, H, W) -> (B, C*4^J, H/2^J, W/2^J).

    Channel order after one level, per input channel: LL, LH, HL, HH.
    """

    dims = 2
