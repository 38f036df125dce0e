"""Exact synthesis: WaLLoC's decoder in fixed point, the same pixels on every machine and thread count.

The float decoder's convolutions sum in whatever order the CPU kernel and the thread count pick,
so one stream decodes to PNGs that differ by one level here and there. This path computes the
same network on integers instead:

* the latents (decoded symbols, plus a hyperprior's means) enter as ``round(y * 2**8)``, |y| < 2**16;
* every activation is an integer ``a`` standing for ``a / 2**ACT_BITS`` (14 fractional bits),
  clamped to ``|a| <= ACT_LIMIT`` (2**25, i.e. |value| <= 2048) after every layer;
* every convolution weight is an integer: per output channel c, ``round(w * 2**e_c)`` with the
  largest e_c that keeps ``|w_int| <= 2**15 - 1`` (16-bit weights); biases are integers at the
  accumulator's scale;
* a layer's accumulator is ``sum w_int * a_int`` (+ bias), then rescaled to 14 fractional bits by
  a power of two and rounded half up (``floor(v + 1/2)``);
* GELU is an integer lookup table over ``|a| <= 8 * 2**14`` (and ``a`` or 0 beyond, where GELU is
  the identity or 0 to within 1e-14), built once with ``math.erf``;
* the inverse wavelet packet uses the filters as integers ``round(f * 2**20)``.

**Why it is exact.** The integers are held in float64 and the convolutions run as float64
GEMMs (one BLAS ``addmm`` per kernel tap, see ``IntConv``; no Winograd or FFT). A product of two
integers and every partial sum are integers below 2**53 in magnitude, so each is represented
exactly and the sum is the same integer in any order, blocking or thread count. Per layer:

| layer | bound on any partial sum |
|---|---|
| 1x1 / 3x3 convolution, K = c_in * k inputs (K <= 1728 here) | 2**25 * 2**15 * K < 2**51 |
| latent projections (|round(y * 2**8)| < 2**24, K <= 192) | 2**24 * 2**15 * K < 2**47 |
| inverse packet, filter length L <= 16 | 2**25 * 2**20 * L < 2**49 |
| means' transposed convolution on zero-stuffed integer z (|z| <= 2**25, K = 48 * 16 here) | 2**25 * 2**15 * K < 2**50 |

``IntConv`` refuses a layer whose K or bias would break the bound, rather than lose exactness.

Rescaling multiplies by a power of two (exact) and ``floor`` is exact; the lookup table and the
clamps are integer operations. The integer weights are derived from the shipped fp16 weights
with exact operations (scaling by powers of two, ``rint``) plus, for a rate ladder, one
``math.exp`` per channel for the gain; a test pins the sha256 of every derived table.

**What is exact.** Given the latents, the output is exact. Decoded symbols are integers from the
stream; a hyperprior codec adds its means, which ``ExactMeans`` computes in the same fixed point
(``MeanScaleHyperprior.reconstruction_means``), so the latents are exact too.

What it costs: each activation and weight is rounded (relative 2**-15 for weights, 2**-15 for
activations), so the decoded image moves by a small fraction of an 8-bit level from the float
decoder's (measured in docs/results/exact_decode), and float64 GEMMs are slower than float32's.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.errors import ModelError

__all__ = ["ACT_BITS", "ACT_LIMIT", "ExactMeans", "ExactWallocDecoder", "IntConv", "gelu_table", "merge_exact", "round_half_up", "tables_digest"]

ACT_BITS = 14
ACT_LIMIT = 2**25
WEIGHT_MAX = 2**15 - 1
FILTER_BITS = 20
GELU_RANGE = 8 * 2**ACT_BITS  # the table covers |a| <= this
LATENT_BITS = 8
LATENT_LIMIT = 2**16


def round_half_up(v: torch.Tensor) -> torch.Tensor:
    return torch.floor(v + 0.5)


def _clamp(a: torch.Tensor) -> torch.Tensor:
    return a.clamp_(-ACT_LIMIT, ACT_LIMIT)


_GELU: torch.Tensor | None = None


def gelu_table() -> torch.Tensor:
    """GELU on fixed point: entry i is ``round(gelu(x) * 2**14)`` for ``x = (i - R) / 2**14``,
    R = 8 * 2**14, float64 holding integers."""
    global _GELU
    if _GELU is None:
        s = 2.0**ACT_BITS
        values = [math.floor(0.5 * (i / s) * (1.0 + math.erf(i / s / math.sqrt(2.0))) * s + 0.5)
                  for i in range(-GELU_RANGE, GELU_RANGE + 1)]
        _GELU = torch.tensor(values, dtype=torch.float64)
    return _GELU


def exact_gelu(a: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """The GELU table applied to ``a`` (float64 integers): the table's entry inside
    ``|a| <= GELU_RANGE``, ``a`` above it, 0 below it. ``inplace`` overwrites ``a``."""
    table = gelu_table()
    lo, hi = torch.aminmax(a)
    if lo >= -GELU_RANGE and hi <= GELU_RANGE:  # the common case: one gather
        if inplace and a.is_contiguous():
            index, out = a.add_(GELU_RANGE).to(torch.int32), a
        else:
            index, out = (a + GELU_RANGE).to(torch.int32), torch.empty(a.shape, dtype=a.dtype)
        return torch.index_select(table, 0, index.reshape(-1), out=out.view(-1)).view(a.shape)
    # beyond the table: table[0] = 0 and table[-1] = GELU_RANGE, so the clamped entry plus what a
    # exceeds the range by is a above it and 0 below it (integers: exact)
    excess = (a - GELU_RANGE).clamp_(min=0)
    index = a.clamp(-GELU_RANGE, GELU_RANGE).add_(GELU_RANGE).to(torch.int32)
    out = a if inplace and a.is_contiguous() else torch.empty(a.shape, dtype=a.dtype)
    torch.index_select(table, 0, index.reshape(-1), out=out.view(-1))
    out = out.add_(excess)
    return a.copy_(out) if inplace and out is not a else out


class IntConv:
    """A convolution with integer weights ``round(w * 2**e_c)`` per output channel c, from an
    input with ``in_bits`` fractional bits to an output with ``ACT_BITS``.

    It runs as float64 GEMMs, one per kernel tap, over bands of output positions: the input's
    rows are flattened at their padded width, so tap (i, j) reads the same matrix shifted by
    ``i * width + j`` (no copy), and every tap adds into the band's output (which starts at the
    bias); the columns past the valid width are cropped at the end. When every channel's
    rescale ``2**-s_c`` is a right shift (s_c >= 1), it is folded into the GEMM: the taps are
    ``w_int * 2**-s_c`` and the bias ``(b_int + 2**(s_c - 1)) * 2**-s_c``, so each output is
    ``(acc + half) * 2**-s_c``, a multiple of 2**-s_c whose integer numerator is below 2**53,
    hence exact in any summation order, and one ``floor`` rounds it half up. Otherwise the
    accumulator is rescaled and rounded after the GEMM. Both give the same integers as
    ``floor(acc * 2**-s_c + 1/2)``.
    """

    band_values = 1 << 18  # output values per GEMM band (cache-sized); the result does not depend on it

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, in_bits: int, dims: int, padding: int) -> None:
        w = np.asarray(weight, dtype=np.float64)
        peak = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        # the largest e with peak * 2**e <= WEIGHT_MAX (frexp: peak = m * 2**p, 0.5 <= m < 1)
        exps = np.array([math.frexp(WEIGHT_MAX / p)[1] - 1 if p > 0 else 0 for p in peak], dtype=np.int64)
        scale = np.ldexp(1.0, exps)  # exact powers of two
        self.weight = torch.from_numpy(np.rint(w * scale.reshape(-1, *[1] * (w.ndim - 1))))
        acc_bits = in_bits + exps
        b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
        self.bias = torch.from_numpy(np.rint(b * np.ldexp(1.0, acc_bits)))
        fan_in = int(np.prod(w.shape[1:]))
        shifts = acc_bits - ACT_BITS  # s_c: the accumulator has s_c more fractional bits than the output
        half = np.where(shifts >= 1, np.ldexp(1.0, np.maximum(shifts, 1) - 1), 0.0)
        if fan_in * 2.0**25 * WEIGHT_MAX + float(np.abs(self.bias.numpy()).max(initial=0.0)) + half.max() >= 2.0**53:
            raise ModelError(f"a layer with {fan_in} inputs per output (or its bias) is too large for exact "
                             "float64 sums; the exact decoder cannot run this model")
        self.shift = torch.from_numpy(np.ldexp(1.0, -shifts))  # exact powers of two
        self.dims, self.padding = dims, padding
        self.folded = bool((shifts >= 1).all())
        k = w.shape[2:]
        self.kernel = (1, k[0]) if dims == 1 else (k[0], k[1])
        taps = self.weight * self.shift.view(-1, *[1] * (w.ndim - 1)) if self.folded else self.weight
        # (O, C, kh, kw) -> one contiguous (O, C) matrix per tap, row-major over (i, j)
        taps = taps.reshape(w.shape[0], w.shape[1], *self.kernel)
        self.taps = [taps[:, :, i, j].contiguous() for i in range(self.kernel[0]) for j in range(self.kernel[1])]
        self.start = ((self.bias + torch.from_numpy(half)) * self.shift).view(-1, 1) if self.folded \
            else self.bias.view(-1, 1)

    def gemm(self, x: torch.Tensor, width: int, rows: int, slack: int = 2) -> torch.Tensor:
        """The layer on a flattened image: ``x`` (C, N) holds rows of ``width`` values back to back
        (N >= (rows + kh - 1) * width + kw - 1) -> (O, rows * width + slack), rounded and clamped.
        An output row's last ``kw - 1`` values read into the next row (they are not valid outputs;
        callers crop them), the ``slack`` values at the end are 0, so a following layer can read
        this output as its ``x`` without a copy."""
        kh, kw = self.kernel
        O = self.start.shape[0]
        out = x.new_empty(O, rows * width + slack)
        out[:, rows * width :] = 0
        band, n = max(256, self.band_values // O), rows * width
        for f0 in range(0, n, band):  # bands of output positions (the flat layout makes any cut valid)
            dst = out[:, f0 : min(n, f0 + band)]
            dst.copy_(self.start.expand_as(dst))
            for t, tap in enumerate(self.taps):
                i, j = divmod(t, kw)
                s0 = f0 + i * width + j
                dst.addmm_(tap, x[:, s0 : s0 + dst.shape[1]])
        if not self.folded:
            out = out.mul_(self.shift.view(-1, 1)).add_(0.5)
        return _clamp(out.floor_())

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        """a: (B, C, L) or (B, C, H, W) float64 integers -> (B, O, ...) float64 integers."""
        p = self.padding
        if p:
            a = F.pad(a, (p,) * (2 * self.dims))
        kh, kw = self.kernel
        B, C = a.shape[:2]
        H, W = (1, a.shape[-1]) if self.dims == 1 else a.shape[-2:]
        Ho, Wo = H - kh + 1, W - kw + 1
        outs = []
        for b in range(B):
            x = a[b].reshape(C, H * W)
            if kw > 1:  # the last row's shifted reads run kw - 1 past the end
                x = F.pad(x, (0, kw - 1))
            outs.append(self.gemm(x, W, Ho, slack=0).view(-1, Ho, W)[..., :Wo])
        out = outs[0].unsqueeze(0) if B == 1 else torch.stack(outs)
        return out[:, :, 0] if self.dims == 1 else out

    def tensors(self) -> list[torch.Tensor]:
        return [self.weight, self.bias, self.shift]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _conv(module: nn.Module, in_bits: int, dims: int, scale_in: np.ndarray | None = None,
          scale_out: np.ndarray | None = None, extra_bias: np.ndarray | None = None) -> IntConv:
    """``module`` (Conv1d/2d) as an IntConv; ``scale_in`` multiplies its weights per input channel
    (a latent gain folded in), ``scale_out`` weights and bias per output channel, ``extra_bias``
    is added to the bias (a per-rate bias folded in). A grouped convolution becomes its
    block-diagonal dense weight, which quantises every output channel exactly as the grouped
    weight would (the zeros add nothing)."""
    w = _np(module.weight)  # (out, in / groups, *k)
    g = module.groups
    if g > 1:
        per_in, per_out = w.shape[1], w.shape[0] // g
        dense = np.zeros((w.shape[0], per_in * g, *w.shape[2:]))
        for j in range(g):
            dense[j * per_out : (j + 1) * per_out, j * per_in : (j + 1) * per_in] = w[j * per_out : (j + 1) * per_out]
        w = dense
    b = np.zeros(w.shape[0]) if module.bias is None else _np(module.bias)
    if extra_bias is not None:
        b = b + extra_bias
    if scale_in is not None:
        w = w * scale_in.reshape(1, -1, *[1] * (w.ndim - 2))
    if scale_out is not None:
        w = w * scale_out.reshape(-1, *[1] * (w.ndim - 1))
        b = b * scale_out
    pad = module.padding[0] if isinstance(module.padding, tuple) else module.padding
    return IntConv(w, b, in_bits, dims, int(pad))


def _check_gelu(blocks: nn.Module) -> None:
    if any(not isinstance(b.act, nn.GELU) or b.act.approximate != "none" for b in blocks):
        raise ModelError("the exact decoder implements the residual blocks' exact GELU only")


def _residual(blocks: list[tuple[IntConv, IntConv]], h: torch.Tensor) -> torch.Tensor:
    for conv1, conv2 in blocks:
        h = _clamp(h + conv2(exact_gelu(conv1(exact_gelu(h)), inplace=True)))
    return h


def merge_exact(y: torch.Tensor, bank: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """``WaveletPacket.merge`` along ``axis`` (channels 2c, 2c + 1 -> c, twice the length on that
    axis, periodic), computed polyphase: output sample 2m + p is ``sum_i sum_k y[2c + i, m - k] *
    bank[i, 2k + p]``, one scaled add per filter tap over all channels at once (the transposed
    convolution's CPU kernel is several times slower on long signals). The same integers as
    ``merge``: every product and partial sum is an integer below 2**53."""
    axis = axis % y.dim()
    B, c2, n = y.shape[0], y.shape[1], y.shape[axis]
    length = bank.shape[-1]
    if length % 2:
        raise ModelError("the polyphase merge needs filters of even length")
    c, k = c2 // 2, length // 2
    rest = list(y.shape[2:])
    z = y.reshape(B * c, 2, *rest)
    pad = [0, 0] * (y.dim() - 1 - axis) + [k - 1, k - 1]
    z = F.pad(z, pad)  # along ``axis`` (z keeps y's axis numbering)
    m = n + k - 1
    out_shape = [B * c, *rest[: axis - 2], m, 2, *rest[axis - 1 :]]
    out = y.new_zeros(out_shape)
    for p in range(2):
        phase = out.select(axis, p)  # the m axis sits at axis - 1, as in zi below
        for i in range(2):
            zi = z.select(1, i)  # axis -> axis - 1
            for j, w in enumerate(bank[i, 0, p::2].flip(0).tolist()):
                if w:
                    phase.add_(zi.narrow(axis - 1, j, m), alpha=w)
    x = out.view(B, c, *rest[: axis - 2], 2 * m, *rest[axis - 1 :])
    if length > 2:  # fold the periodic overhang back onto the start
        x.narrow(axis, 0, length - 2).add_(x.narrow(axis, 2 * n, length - 2))
    return x.narrow(axis, 0, 2 * n)


class ExactMeans:
    """A hyperprior's means network ``h_m`` (transposed convolution, GELU, convolution) on integers:
    integer z -> the means of y, the same on every machine and thread count.

    The decoder's latents are ``symbols + means``. With float64 means, two machines (or two BLAS
    builds) could disagree by an ulp, and ``erf`` itself is not the same function everywhere; where
    that ulp sits on a rounding boundary of the exact decoder's input (``round(y * 2**8)``), the
    decoded pixels differ, and a video codec whose decoded frames are the next frame's reference
    drifts between encoder and decoder. Here:

    * the transposed convolution (kernel k, stride s, padding p) is the convolution of the
      zero-stuffed z (s - 1 zeros between samples) with the flipped kernel and padding k - 1 - p,
      an ``IntConv`` on integer inputs (``in_bits`` 0; z clamped to |z| <= 2**25, far beyond any
      table's range), so its partial sums stay below 2**53 as the module docstring's table says;
    * GELU is the integer table (``exact_gelu``);
    * the last convolution is an ``IntConv`` at ``ACT_BITS`` (``_conv``; a grouped one, as
      walloc-audio-hp's, becomes its block-diagonal dense weight).

    ``__call__`` returns float64 multiples of 2**-14 (exact). They differ from the float64 means by
    the weights' and activations' rounding: at most 0.006 on rd's fixture photo, where a latent's
    quantisation step is 1 (``tests/entropy/test_exact_means.py``). The encoder still chooses its
    symbols with the float64 means; what it takes as the decoded latents (a restoration filter's
    fit, a video reference) uses these, as the decoder does.
    """

    def __init__(self, h_m: nn.Sequential) -> None:
        if len(h_m) != 3 or not isinstance(h_m[1], nn.GELU) or h_m[1].approximate != "none":
            raise ModelError("ExactMeans takes h_m = (transposed convolution, exact GELU, convolution)")
        up, conv = h_m[0], h_m[2]
        if not isinstance(up, (nn.ConvTranspose1d, nn.ConvTranspose2d)) or any(o for o in up.output_padding) \
                or up.groups != 1 or any(d != 1 for d in up.dilation) or len(set(up.stride)) != 1:
            raise ModelError("ExactMeans takes one plain strided transposed convolution first")
        self.dims = 1 if isinstance(up, nn.ConvTranspose1d) else 2
        k, self.stride, pad = up.kernel_size[0], up.stride[0], up.padding[0]
        if set(up.kernel_size) != {k} or set(up.padding) != {pad} or pad > k - 1:
            raise ModelError("ExactMeans takes a square kernel with padding below its size")
        w = _np(up.weight)  # (in, out, *k)
        flipped = np.ascontiguousarray(np.flip(w, axis=tuple(range(2, w.ndim))).swapaxes(0, 1))
        self.up = IntConv(flipped, None if up.bias is None else _np(up.bias), 0, self.dims, k - 1 - pad)
        self.conv = _conv(conv, ACT_BITS, self.dims)  # grouped (walloc-audio-hp): block-diagonal

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Integer z (B, N, *grid) -> means (B, C, *stride x grid), float64 multiples of 2**-14, CPU."""
        z = z.detach().cpu().double().clamp(-ACT_LIMIT, ACT_LIMIT)
        s = self.stride
        stuffed = z.new_zeros(*z.shape[:2], *[(n - 1) * s + 1 for n in z.shape[2:]])
        stuffed[(..., *[slice(None, None, s)] * self.dims)] = z
        a = exact_gelu(self.up(stuffed), inplace=True)
        return self.conv(a).mul_(2.0**-ACT_BITS)


class ExactWallocDecoder:
    """Integer latents -> the padded synthesis output (then the post-filter), bit-exact.

    ``synthesis``: a ``WallocSynthesis``; ``inv_gain``: per-latent-channel factors the latents are
    multiplied by first (a rate ladder's 1 / gain), or None; ``postfilter`` and ``rate``: a
    ``PostFilter`` and the rate index it is told, or None; ``pre``: a ``VQDecoder`` (1x1 head,
    residual blocks, 1x1 tail, pixel shuffle) that maps code vectors to the synthesis' latents
    first (vq-rgb), or None. ``__call__`` returns float32 values ``a / 2**14`` (exactly
    representable in the media's range), on the CPU.
    """

    band_rows = 64  # post-filter rows per band (bounded memory; the output is the same)

    def __init__(self, synthesis: nn.Module, inv_gain: np.ndarray | None = None, postfilter: nn.Module | None = None,
                 rate: int = 0, pre: nn.Module | None = None) -> None:
        s = synthesis
        dims = 1 if isinstance(s.skip, nn.Conv1d) else 2
        self.dims, self.offset = dims, s.offset
        self.pre = None
        if pre is not None:  # code vectors -> the synthesis' latents, at ACT_BITS
            _check_gelu(pre.blocks)
            self.pre = (_conv(pre.head, LATENT_BITS, 2, scale_in=inv_gain),
                        [(_conv(b.conv1, ACT_BITS, 2), _conv(b.conv2, ACT_BITS, 2)) for b in pre.blocks],
                        _conv(pre.tail, ACT_BITS, 2))
            inv_gain = None
        latent_bits = ACT_BITS if pre is not None else LATENT_BITS
        self.skip = _conv(s.skip, latent_bits, dims, scale_in=inv_gain)
        self.head = _conv(s.head, latent_bits, dims, scale_in=inv_gain)
        _check_gelu(s.blocks)
        self.blocks = [(_conv(b.conv1, ACT_BITS, dims), _conv(b.conv2, ACT_BITS, dims)) for b in s.blocks]
        self.tail = _conv(s.tail, ACT_BITS, dims)
        self.wpt = s.wpt
        self.bank = torch.from_numpy(np.rint(_np(s.wpt.bank) * 2.0**FILTER_BITS))  # (2, 1, L)
        self.post = None
        if postfilter is not None:
            pf, q = postfilter, rate
            scale = _np(pf.rate_scale[q])
            self.post = (_conv(pf.first, ACT_BITS, 2, extra_bias=_np(pf.rate_bias[q])),
                         [_conv(c, ACT_BITS, 2) for c in pf.body],
                         _conv(pf.last, ACT_BITS, 2, scale_out=scale), pf.layers)

    # -------------------------------------------------------------- pieces
    def _inverse_packet(self, y: torch.Tensor) -> torch.Tensor:
        """The packet's inverse, each two-band step with the integer filters (a transposed
        convolution and the periodic fold: sums of integer products), rescaled and rounded."""
        for _ in range(self.wpt.levels):
            for axis in reversed(range(2, 2 + self.dims)):
                x = merge_exact(y, self.bank, axis)
                y = _clamp(x.mul_(2.0**-FILTER_BITS).add_(0.5).floor_())
        return y

    def _postfilter(self, a: torch.Tensor) -> torch.Tensor:
        """Bands of ``band_rows`` rows, each through the valid 3x3 layers on the flattened rows of
        the replicate-padded band (``IntConv.gemm``: no copies between layers; each layer's two
        invalid columns per row stay at the right end, cropped once at the last layer)."""
        first, body, last, layers = self.post
        out = torch.empty_like(a)
        padded = F.pad(a, (layers,) * 4, mode="replicate")
        width = a.shape[-1] + 2 * layers
        for b in range(a.shape[0]):
            for r0 in range(0, a.shape[-2], self.band_rows):
                r1 = min(a.shape[-2], r0 + self.band_rows)
                rows = r1 - r0 + 2 * layers
                h = F.pad(padded[b, :, r0 : r1 + 2 * layers].reshape(3, -1), (0, 2))
                h = first.gemm(h, width, rows - 2)
                for n, conv in enumerate(body):
                    h = conv.gemm(exact_gelu(h, inplace=True), width, rows - 4 - 2 * n)
                h = last.gemm(exact_gelu(h, inplace=True), width, r1 - r0)
                out[b, :, r0:r1] = a[b, :, r0:r1] + h[:, : (r1 - r0) * width].view(3, r1 - r0, width)[..., : a.shape[-1]]
        return _clamp(out)

    # -------------------------------------------------------------- the decoder
    @torch.no_grad()
    def __call__(self, latents: torch.Tensor, postfilter: bool = True) -> torch.Tensor:
        """``postfilter`` False: the synthesis output without the post-filter (walloc-video-mc's
        residual pictures)."""
        y = latents.detach().cpu().double()
        if not bool(y.abs().max() < LATENT_LIMIT):  # also refuses NaN
            raise ModelError(f"the exact decoder takes latents below {LATENT_LIMIT} in magnitude")
        y = round_half_up(y * 2.0**LATENT_BITS)
        if self.pre is not None:
            head, blocks, tail = self.pre
            y = F.pixel_shuffle(tail(_residual(blocks, head(y))), 2)  # a permutation: exact
        skip = self.skip(y)
        h = _residual(self.blocks, self.head(y))
        a = self._inverse_packet(_clamp(skip + self.tail(h)))
        a = a + round(self.offset * 2**ACT_BITS)
        if self.post is not None and postfilter:
            a = self._postfilter(a)
        return (a * 2.0**-ACT_BITS).float()

    def _layers(self) -> tuple[list[IntConv], list[IntConv], list[IntConv]]:
        """The integer layers: (synthesis, vq-rgb's code decoder or [], post-filter or [])."""
        synthesis = [self.skip, self.head, *[c for pair in self.blocks for c in pair], self.tail]
        pre = [] if self.pre is None else [self.pre[0], *[c for pair in self.pre[1] for c in pair], self.pre[2]]
        post = [] if self.post is None else [self.post[0], *self.post[1], self.post[2]]
        return synthesis, pre, post

    def macs_per_pixel(self, out_channels: int = 3) -> float:
        """Integer multiply-accumulates per output position (a pixel, or an audio sample frame) with
        ``out_channels`` values: the synthesis' convolutions at its latent grid (``2**levels``
        positions apart on each axis; vq-rgb's code decoder on a grid twice as coarse), the inverse
        packet (``L`` per output value per one-axis step: ``levels * dims`` steps), the post-filter
        at full resolution."""
        synthesis, pre, post = (sum(int(c.weight.numel()) for c in convs) for convs in self._layers())
        grid = 2 ** (self.wpt.levels * self.dims)
        packet = out_channels * self.bank.shape[-1] * self.wpt.levels * self.dims
        return synthesis / grid + pre / (grid * 2**self.dims) + packet + post

    def digest(self) -> str:
        """sha256 of every derived integer table (what decides the output, besides the latents)."""
        return tables_digest([c for convs in self._layers() for c in convs], [self.bank, gelu_table()])


def tables_digest(convs: list[IntConv], tables: list[torch.Tensor]) -> str:
    """sha256 over the integer tensors of ``convs`` then ``tables``: pins an exact decoder's arithmetic."""
    h = hashlib.sha256()
    for t in [*[t for c in convs for t in c.tensors()], *tables]:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------ exact resampling (audio out)
RESAMPLE_BITS = 20
_KERNELS: dict[tuple[int, int], tuple[torch.Tensor, int]] = {}


def _resample_kernel(orig: int, new: int, lowpass_width: int = 6, rolloff: float = 0.99) -> tuple[torch.Tensor, int]:
    """The windowed-sinc polyphase kernel of ``torchaudio.functional.resample`` (Hann window, its
    defaults) for the reduced rates ``orig -> new``, as integers ``round(k * 2**20)``: (new, 1,
    2 * width + orig) float64, and ``width``. Built with ``math`` per element (scalar libm), once."""
    key = (orig, new)
    if key not in _KERNELS:
        base = min(orig, new) * rolloff
        width = math.ceil(lowpass_width * orig / base)
        rows = []
        for j in range(new):
            row = []
            for i in range(-width, width + orig):
                t = min(max((i / orig - j / new) * base, -lowpass_width), lowpass_width)
                window = math.cos(t * math.pi / lowpass_width / 2) ** 2
                sinc = 1.0 if t == 0 else math.sin(t * math.pi) / (t * math.pi)
                row.append(math.floor(sinc * window * base / orig * 2**RESAMPLE_BITS + 0.5))
            rows.append(row)
        _KERNELS[key] = (torch.tensor(rows, dtype=torch.float64)[:, None], width)
    return _KERNELS[key]


MAX_KERNEL = 4_000_000  # taps: rates whose reduced ratio is larger resample in float


def exact_resample(x: torch.Tensor, rate_in: int, rate_out: int, length: int) -> torch.Tensor | None:
    """Resample the last axis of ``x`` (values in [-1, 1]) from ``rate_in`` to ``rate_out`` and fit
    it to ``length`` samples, in integers: the input as ``round(x * 2**20)``, the kernel as above,
    float64 sums below 2**21 * 2**20 * taps < 2**53 (taps < 2**12), so the same samples on every
    machine and thread count. None when the kernel would be too large (the caller resamples in
    float)."""
    g = math.gcd(rate_in, rate_out)
    orig, new = rate_in // g, rate_out // g
    lowpass_width = 6
    taps = 2 * math.ceil(lowpass_width * orig / (min(orig, new) * 0.99)) + orig
    if new * taps > MAX_KERNEL or taps >= 2**12:
        return None
    kernel, width = _resample_kernel(orig, new, lowpass_width)
    shape = x.shape
    xi = round_half_up(x.detach().cpu().double().reshape(-1, 1, shape[-1]).clamp(-1, 1) * 2.0**RESAMPLE_BITS)
    xi = F.pad(xi, (width, width + orig))
    y = F.conv1d(xi, kernel, stride=orig).transpose(1, 2).reshape(xi.shape[0], -1)
    y = y[:, : -(-new * shape[-1] // orig)]
    from lcodec.models.transforms import fit_length

    return fit_length((y * 2.0 ** (-2 * RESAMPLE_BITS)).float().reshape(*shape[:-1], -1), length)
