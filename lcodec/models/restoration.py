"""Per-image restoration filter: a 3x3 linear filter fitted by the encoder, sent in the stream,
applied by the decoder in integers (the same pixels on every machine).

The decoder's output x_hat (after the post-filter, cropped, clamped, and made gray for a grayscale
stream) still carries errors that are linear in its neighbourhood for that image: a slight blur, a
colour cast, chroma noise. The encoder knows the original, so it fits, per image and stream channel
o, the least-squares correction

    y_o(p) = x_o(p) + sum_{c, t} w[o, c, t] * x_c(p + t) + w[o, bias]

over the 3x3 neighbourhood t of every stream channel c (3 for RGB, 1 for gray: 28 or 10 numbers
per output channel), a classic of video coding (the Wiener-filter "adaptive loop filter" of
H.266/VVC, here one filter per image). It keeps the filter only when the rate point's own
trade-off says it pays: ``lambda * 255^2 * (SSE saved) / 3 > its bits``.

**Integers.** Pixels enter as ``a = round(x * 2**14)`` (the exact decoder's output already is
such a multiple); the weights are integers ``round(w * 2**12)`` in ``|w| < 2**15``, the bias
weight multiplies ``2**14``. Per pixel, ``acc = sum w_int * a`` (28 products below 2**29 each:
every partial sum is an integer below 2**34, exact in float64 in any order) and the output is
``a + floor((acc + 2**11) / 2**12)``, clamped to [0, 2**14] and returned as ``/ 2**14`` (exact in
float32). Borders replicate.

**In the stream.** One section after the entropy model's: per image, one flag byte (0: no filter),
then, if 1, its ``C * (C * 9 + 1)`` weights as zigzag varints (typically 1-2 bytes each).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lcodec.bitstream.varint import get_varint, put_varint, unzigzag, zigzag
from lcodec.errors import BitstreamError

__all__ = ["WEIGHT_BITS", "apply", "choose", "fit", "pack", "restore_batch", "taps", "unpack"]

PIXEL_BITS = 14
WEIGHT_BITS = 12
WEIGHT_LIMIT = 2**15 - 1
TARGET_BITS = 22  # the original enters the fit as round(x * 2**22)
BAND_ROWS = 64  # rows per band: memory stays bounded on large images (the result does not depend on it)


def taps(channels: int) -> int:
    """Weights per output channel: the 3x3 neighbourhood of every channel, plus the bias."""
    return channels * 9 + 1


def _bands(a: torch.Tensor):
    """a: (C, H, W) float64 integers -> per band of rows (r0, r1, features (C * 9 + 1, (r1 - r0) * W)):
    the replicate-padded 3x3 neighbourhoods (channel-major, then row-major taps) and the bias input
    2**14."""
    c, h, w = a.shape
    pad = F.pad(a.unsqueeze(0), (1, 1, 1, 1), mode="replicate")[0]
    step = max(1, min(BAND_ROWS, 2**16 // w))  # at most 2**16 pixels per band (``fit``'s exact sums)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        rows = [pad[ch, r0 + dy : r1 + dy, dx : dx + w].reshape(-1) for ch in range(c) for dy in range(3) for dx in range(3)]
        rows.append(torch.full(((r1 - r0) * w,), 2.0**PIXEL_BITS, dtype=torch.float64))
        yield r0, r1, torch.stack(rows)


def _pixels(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x.detach().cpu().double() * 2.0**PIXEL_BITS + 0.5)


def apply(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One image (C, H, W) in [0, 1] and its integer weights (C, C * 9 + 1) -> the filtered image,
    float32, exact (see the module docstring)."""
    a = _pixels(x)
    c, h, w = a.shape
    out = torch.empty(c, h, w, dtype=torch.float32)
    wd = weights.double()
    for r0, r1, feats in _bands(a):
        acc = wd @ feats  # (C, rows * W) integers below 2**34
        y = a[:, r0:r1].reshape(c, -1) + torch.floor((acc + 2.0 ** (WEIGHT_BITS - 1)) * 2.0**-WEIGHT_BITS)
        out[:, r0:r1] = (y.clamp_(0, 2.0**PIXEL_BITS) * 2.0**-PIXEL_BITS).float().view(c, r1 - r0, w)
    return out


def _solve(gram: list[list[float]], rhs: list[list[float]]) -> list[list[float]]:
    """Gaussian elimination with partial pivoting in Python floats (IEEE double, one rounding per
    operation in a fixed order: the same result on every machine, unlike a BLAS/LAPACK solve)."""
    n, m = len(gram), len(rhs[0])
    a = [row[:] + r[:] for row, r in zip(gram, rhs)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: (abs(a[r][col]), -r))
        a[col], a[pivot] = a[pivot], a[col]
        if a[col][col] == 0.0:
            continue  # a feature that is zero everywhere: its weight stays 0
        inv = 1.0 / a[col][col]
        for r in range(col + 1, n):
            f = a[r][col] * inv
            if f != 0.0:
                row, top = a[r], a[col]
                for k in range(col, n + m):
                    row[k] -= f * top[k]
    out = [[0.0] * m for _ in range(n)]
    for r in reversed(range(n)):
        if a[r][r] == 0.0:
            continue
        for j in range(m):
            acc = a[r][n + j]
            for k in range(r + 1, n):
                acc -= a[r][k] * out[k][j]
            out[r][j] = acc / a[r][r]
    return out


def fit(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The least-squares weights for one image: decoded (C, H, W) and original (C, H, W) in [0, 1]
    -> (C, C * 9 + 1) integers (int64), on the integer pixels ``apply`` sees.

    Deterministic on every machine (the encoder's bytes must not depend on the CPU or the thread
    count): the normal equations are sums of integer products (features ``a`` and the bias input at
    most 2**14, target ``round(x * 2**22) - a * 2**8`` at most 2**22 in magnitude, so products at
    most 2**36), each band's partial sums (at most 2**16 pixels) below 2**53 and so exact in
    float64 in any order, accumulated across bands in int64; the small solve runs in Python floats
    in a fixed order (``_solve``), then the weights are rounded to integers."""
    a = _pixels(x_hat)
    c, n = a.shape[0], taps(a.shape[0])
    gram = torch.zeros(n, n, dtype=torch.int64)
    cross = torch.zeros(n, c, dtype=torch.int64)
    for r0, r1, feats in _bands(a):
        target = torch.floor(x[:, r0:r1].detach().cpu().double() * 2.0**TARGET_BITS + 0.5) - a[:, r0:r1] * 2.0**8
        gram += (feats @ feats.T).long()
        cross += (feats @ target.reshape(c, -1).T).long()
    g = gram.tolist()
    scale = 1e-9 * sum(g[i][i] for i in range(n)) / n + 1.0  # a tiny ridge: features that repeat stay solvable
    for i in range(n):
        g[i][i] += scale
    w = _solve([[float(v) for v in row] for row in g], [[float(v) for v in row] for row in cross.tolist()])
    # target units are 2**-8 of a pixel unit; weights are 2**-12 of a unit per unit
    out = [[max(-WEIGHT_LIMIT, min(WEIGHT_LIMIT, math.floor(w[k][o] * 2.0 ** (WEIGHT_BITS - 8) + 0.5)))
            for k in range(n)] for o in range(c)]
    return torch.tensor(out, dtype=torch.int64)


def pack(per_item: list[torch.Tensor | None]) -> bytes:
    """Per image, None (no filter) or its (C, taps) weights -> the section's bytes."""
    out = bytearray()
    for w in per_item:
        if w is None:
            out.append(0)
            continue
        out.append(1)
        for v in w.reshape(-1).tolist():
            put_varint(out, zigzag(int(v)))
    return bytes(out)


def unpack(data: bytes, items: int, channels: int) -> list[torch.Tensor | None]:
    """The section's bytes -> per image None or (channels, taps) int64 weights; BitstreamError for
    a flag other than 0/1, a weight beyond the limit, a cut-off section or bytes left over."""
    out: list[torch.Tensor | None] = []
    pos, n = 0, channels * taps(channels)
    for _ in range(items):
        if pos >= len(data):
            raise BitstreamError("restoration section ends before its last image")
        flag = data[pos]
        pos += 1
        if flag == 0:
            out.append(None)
            continue
        if flag != 1:
            raise BitstreamError(f"restoration section: flag {flag} is neither 0 nor 1")
        values = []
        for _ in range(n):
            z, pos = get_varint(data, pos, "restoration section: a weight is cut off or too long")
            v = unzigzag(z)
            if abs(v) > WEIGHT_LIMIT:
                raise BitstreamError(f"restoration section: weight {v} beyond +-{WEIGHT_LIMIT}")
            values.append(v)
        out.append(torch.tensor(values, dtype=torch.int64).reshape(channels, taps(channels)))
    if pos != len(data):
        raise BitstreamError(f"restoration section: {len(data) - pos} bytes after the last image")
    return out


def restore_batch(x_hat: torch.Tensor, weights: list[torch.Tensor | None], gray: bool) -> torch.Tensor:
    """Decoded (B, 3, H, W) -> filtered, per image (a grayscale stream filters its one channel and
    repeats it)."""
    out = x_hat.clone()
    for b, w in enumerate(weights):
        if w is None:
            continue
        if gray:
            out[b] = apply(x_hat[b, :1], w).expand(3, -1, -1)
        else:
            out[b] = apply(x_hat[b], w)
    return out


def _sse8(a: torch.Tensor, b: torch.Tensor) -> float:
    """Sum of squared differences of the 8-bit-rounded pixels (in 8-bit levels)."""
    return float(((torch.round(a.double() * 255) - torch.round(b.double() * 255)) ** 2).sum())


def choose(x_hat: torch.Tensor, x: torch.Tensor, lmbda: float, gray: bool) -> list[torch.Tensor | None]:
    """The encoder's choice per image: the fitted weights where ``lmbda * 255^2 * (SSE saved) / 3``
    (SSE of 8-bit-rounded pixels, in [0, 1] units, over the three RGB channels) exceeds the
    filter's bits, else None."""
    out: list[torch.Tensor | None] = []
    for b in range(x_hat.shape[0]):
        xs, xt = (x_hat[b, :1], x[b, :1]) if gray else (x_hat[b], x[b])
        w = fit(xs, xt)
        y = apply(xs, w)
        reps = 3 if gray else 1
        sse0, sse1 = _sse8(xs, xt) * reps / 255**2, _sse8(y, xt) * reps / 255**2
        bits = 8 * (len(pack([w])) - 1)  # the flag byte is spent either way
        out.append(w if lmbda * 255.0**2 * (sse0 - sse1) / 3 > bits else None)
    return out
