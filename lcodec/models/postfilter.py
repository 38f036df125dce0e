"""Decoder-side post-filter: a small residual CNN at full resolution, one per ladder, told the rate.

WaLLoC's synthesis ends in a linear inverse wavelet packet, so nothing nonlinear sees the image at
full resolution; the filter removes part of what the packet leaves there (ringing of the sym4
filters, blocky low-rate texture). It reads the decoded image (before clamping to [0, 1]) and
adds a correction::

    h = conv3x3(x_hat) + rate_bias[q]          (3 -> C)
    h = conv3x3(GELU(h)), ... (layers - 2 times)  (C -> C)
    x_out = x_hat + conv3x3(GELU(h)) * rate_scale[q]   (C -> 3)

The last convolution starts at zero, so an untrained filter is the identity. It is fitted after
the ladder (``lcodec.train.postfilter``: decoder-side MSE on decoded training crops, the encoder
and the bitstream untouched). It runs in float32 like the rest of the decoder: it only moves the
reconstruction, never a symbol or a table. Large images are filtered in bands of rows with a halo
of ``layers`` rows (each 3x3 layer reads one row further), so memory stays bounded and the output
equals the whole-image result.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lcodec.errors import ModelError

__all__ = ["PostFilter"]


class PostFilter(nn.Module):
    band_rows = 256  # output rows per band (the halo comes on top)

    def __init__(self, rates: int, channels: int = 32, layers: int = 4) -> None:
        super().__init__()
        if rates < 1 or channels < 1 or layers < 2:
            raise ModelError("post-filter needs >= 1 rate, >= 1 channel and >= 2 layers")
        self.layers = layers
        self.first = nn.Conv2d(3, channels, 3)
        self.body = nn.ModuleList([nn.Conv2d(channels, channels, 3) for _ in range(layers - 2)])
        self.last = nn.Conv2d(channels, 3, 3)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)
        self.rate_bias = nn.Parameter(torch.zeros(rates, channels))
        self.rate_scale = nn.Parameter(torch.ones(rates, 3))

    def _filter(self, x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H + 2L, W + 2L) replicate-padded -> correction (B, 3, H, W)."""
        h = F.conv2d(x, self.first.weight, self.first.bias) + self.rate_bias[rate][:, :, None, None]
        for conv in self.body:
            h = conv(F.gelu(h))
        return self.last(F.gelu(h)) * self.rate_scale[rate][:, :, None, None]

    def forward(self, x: torch.Tensor, rate: torch.Tensor | int) -> torch.Tensor:
        """x (B, 3, H, W), rate index per item (B,) or one int -> filtered x (B, 3, H, W)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ModelError(f"post-filter expects (B, 3, H, W), got {tuple(x.shape)}")
        rate = torch.as_tensor(rate, device=x.device).reshape(-1).expand(x.shape[0])
        L = self.layers
        if self.training or x.shape[-2] <= self.band_rows:
            return x + self._filter(F.pad(x, (L, L, L, L), mode="replicate"), rate)
        out = torch.empty_like(x)
        padded = F.pad(x, (L, L, L, L), mode="replicate")
        for r0 in range(0, x.shape[-2], self.band_rows):
            r1 = min(x.shape[-2], r0 + self.band_rows)
            out[..., r0:r1, :] = x[..., r0:r1, :] + self._filter(padded[..., r0 : r1 + 2 * L, :], rate)
        return out
