"""Exact decode for nirvana-video: a group's network (``lcodec.models.nirvana``) in fixed point,
the same frames on every machine and thread count.

The network's weights come from the stream as integers ``n`` and a float32 step ``s`` per tensor;
here each weight is the float64 product ``n * s`` (exact: ``n`` is small and ``s`` has 24 bits),
and from there the layers run on the machinery of ``lcodec.models.exact``:

* the patch centres ``(2 i + 1) / n - 1`` enter as ``round(c * 2**14)``;
* the SIREN's two sine layers fold ``w0`` into their weights (``w0 * n * s``, one float64 product)
  and run as ``IntConv`` (16-bit integer weights per output channel, 14 fractional bits out);
* ``sin`` is an integer table of ``SINE_SIZE`` = 2**16 entries per period, ``round(sin(2 pi k /
  2**16) * 2**14)`` built once with ``math.sin`` (its sha256 is pinned by a test). The phase index
  of an activation ``a`` (``a / 2**14`` radians) is ``floor(a * C / 2**32 + 1/2) mod 2**16`` with
  the integer ``C = round(2**33 / pi)``: an int64 product below 2**57 (|a| <= 2**25, C < 2**32),
  so the index is the same integer everywhere. Error against ``math.sin``: the phase is within
  pi / 2**16 (plus 2**-32 relative from C) of the true one (4.8e-5), and the value is rounded to
  2**-14 (3.1e-5): within 8e-5 of float sine;
* the last linear layer, the feature-map permutation, the 3x3 convolution, the pixel shuffle, the
  GELU table and the grouped 3x3 convolution (one ``IntConv`` per group) as in WaLLoC's exact
  synthesis; ``+ 0.5`` is the integer 2**13.

Every sum is an integer below 2**53 (the bounds of ``IntConv``: fan-in <= 128 here), so the
output ``a / 2**14`` is the same on every machine; its difference from the float decoder's
frames is measured in tests/codecs/test_nirvana.py.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lcodec.models.exact import ACT_BITS, IntConv, exact_gelu, gelu_table, round_half_up, tables_digest
from lcodec.models.nirvana import NirvanaConfig

__all__ = ["ExactNirvanaNet", "SINE_SIZE", "exact_sin", "sine_table"]

SINE_SIZE = 2**16
_PHASE = round(2.0**33 / math.pi)  # 2**16 / (2 pi 2**14) in units of 2**-32
_SINE: torch.Tensor | None = None


def sine_table() -> torch.Tensor:
    """Entry k is ``round(sin(2 pi k / 2**16) * 2**14)``, float64 holding integers."""
    global _SINE
    if _SINE is None:
        s = 2.0**ACT_BITS
        values = [math.floor(math.sin(2 * math.pi * k / SINE_SIZE) * s + 0.5) for k in range(SINE_SIZE)]
        _SINE = torch.tensor(values, dtype=torch.float64)
    return _SINE


def exact_sin(a: torch.Tensor) -> torch.Tensor:
    """``sin(a / 2**14)`` at 14 fractional bits, for float64 integers ``|a| <= 2**25``."""
    index = (a.to(torch.int64) * _PHASE + 2**31) >> 32  # floor(a C / 2**32 + 1/2), exact in int64
    return sine_table()[index & (SINE_SIZE - 1)]


class ExactNirvanaNet:
    """One group's network from its integer tensors and steps (stream order) -> (G, 3, H, W) float32
    frames ``a / 2**14`` of the padded size, bit-exact."""

    def __init__(self, cfg: NirvanaConfig, ints: list[torch.Tensor], steps: list[float]) -> None:
        self.cfg = cfg
        w = [n.detach().cpu().double().numpy() * float(s) for n, s in zip(ints, steps)]
        w0 = float(cfg.w0)

        def linear(weight: np.ndarray, bias: np.ndarray, scale: float = 1.0) -> IntConv:
            return IntConv(weight[:, :, None] * scale, bias * scale, ACT_BITS, dims=1, padding=0)

        self.sine1 = linear(w[0], w[1], w0)
        self.sine2 = linear(w[2], w[3], w0)
        self.feat = linear(w[4], w[5])
        self.up = IntConv(w[6], w[7], ACT_BITS, dims=2, padding=1)
        self.out = [IntConv(w[8][3 * k : 3 * k + 3], w[9][3 * k : 3 * k + 3], ACT_BITS, dims=2, padding=1)
                    for k in range(cfg.group)]
        self.layers = [self.sine1, self.sine2, self.feat, self.up, *self.out]

    @staticmethod
    def coordinates(ny: int, nx: int) -> torch.Tensor:
        """(1, 2, ny * nx) patch centres (y, x) as ``round(c * 2**14)``, row-major."""
        ys = round_half_up(((torch.arange(ny, dtype=torch.float64) + 0.5) / ny * 2 - 1) * 2.0**ACT_BITS)
        xs = round_half_up(((torch.arange(nx, dtype=torch.float64) + 0.5) / nx * 2 - 1) * 2.0**ACT_BITS)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([yy.reshape(-1), xx.reshape(-1)])[None]

    @torch.no_grad()
    def __call__(self, size: tuple[int, int]) -> torch.Tensor:
        c = self.cfg
        h, w = size
        half = c.patch // 2
        ny, nx = h // c.patch, w // c.patch
        z = exact_sin(self.sine1(self.coordinates(ny, nx)))
        z = exact_sin(self.sine2(z))
        z = self.feat(z)  # (1, feat * half**2, ny * nx)
        z = z.reshape(1, c.feat, half, half, ny, nx).permute(0, 1, 4, 2, 5, 3).reshape(1, c.feat, ny * half, nx * half)
        z = exact_gelu(F.pixel_shuffle(self.up(z), 2))
        frames = torch.cat([conv(z[:, c.head * k : c.head * (k + 1)]) for k, conv in enumerate(self.out)], 1)
        frames = frames + 2 ** (ACT_BITS - 1)  # + 0.5
        return (frames * 2.0**-ACT_BITS).float().reshape(c.group, 3, h, w)

    def digest(self) -> str:
        """sha256 of the derived integer tables (with the sine and GELU tables)."""
        return tables_digest(self.layers, [sine_table(), gelu_table()])
