"""Float32 rounding with a float64 referee: the encoder's side path at float32 speed, with
the integers the float64 path gives.

The hyperprior encoder rounds two float results to integers: z = round(h_a(y)) and the
symbols round(y - h_m(z)). Their float64 evaluation is the reference: its rounding
errors (~1e-15) can only flip a value lying within ~1e-15 of a rounding boundary, so the
bytes do not depend on thread count, CPU or library version in practice. float32 runs the
same convolutions 3-4x faster (oneDNN) but with errors of up to ~2e-4 on the shipped
ladders (large gained latents, 1,728-term sums), enough to flip a few values per image.

So: evaluate in float32; every value within ``margin`` of a rounding boundary
(``|frac(v) - 1/2| < margin``) is evaluated again in float64, only there (a gather of
its receptive field and one dot product per value), and rounded from that. Wherever the
float32 error is below ``margin``, each value rounds as its float64 evaluation would:
values farther than ``margin`` from a boundary cannot cross it, the others are float64.
The margins (``Z_MARGIN``, ``SYMBOL_MARGIN``) are ~15-30x the largest float32 errors
measured on images/val for every shipped ladder rate; ``tests/codecs/test_refereed.py``
checks that the shipped weights keep a 4x safety factor on the test photo.

Only the encoder uses this. If a float32 error ever exceeded its margin, the stream would
still decode exactly (the decoder reads the integers it was sent and its table choice is
the integer network's); it would merely differ from the float64 encoder's stream.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lcodec.entropy.integer_net import _transposed_exact
from lcodec.models.cpu import run_on_cpu

__all__ = ["Z_MARGIN", "SYMBOL_MARGIN", "analyse_refereed", "round_refereed", "conv_at_elements", "conv_at_positions", "conv_transpose64"]

Z_MARGIN = 1e-3  # h_a's output (float32 error measured <= 3.5e-5)
SYMBOL_MARGIN = 3e-3  # y - means (float32 error measured <= 2.1e-4, walloc-rgb-rd q6)


def round_refereed(approx: torch.Tensor, margin: float,
                   exact_at: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """round(v) as int64, from a float32-accurate ``approx`` of v (float32 or float64).

    ``exact_at(index)`` gets the (N, approx.dim()) indexes of the values near a rounding
    boundary (or beyond 2**20, where float32 resolves no fraction) and returns their float64
    evaluations (N,).
    """
    out = torch.round(approx)
    near = (approx - out).abs() > 0.5 - margin
    near |= out.abs() > 2**20
    out = out.to(torch.int64)
    if near.any():
        index = near.nonzero()
        out[near] = torch.round(exact_at(index)).to(torch.int64)  # nonzero() and the mask share the order
    return out


def _patches(x64: torch.Tensor, conv: nn.Conv2d, b: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """The receptive fields of ``conv``'s outputs at (b, :, i, j) in x64, (N, k*k * C_in) float64,
    ordered (row, column, channel): whole channel vectors gathered from a channels-last copy."""
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    xp = F.pad(x64, (pw, pw, ph, ph))  # zeros, as the convolution pads
    bsz, c, hp, wp = xp.shape
    pixels = xp.permute(0, 2, 3, 1).reshape(-1, c)  # (B*Hp*Wp, C)
    rows = (sh * i)[:, None, None] + torch.arange(kh)[None, :, None]
    cols = (sw * j)[:, None, None] + torch.arange(kw)[None, None, :]
    where = (b[:, None, None] * hp + rows) * wp + cols  # (N, kh, kw)
    return pixels.index_select(0, where.reshape(-1)).reshape(len(b), -1)


def _params64(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (C_out, k*k * C_in) ordered as ``_patches``, bias (C_out,)) in float64 on CPU."""
    w = conv.weight.detach().cpu().double()
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1), conv.bias.detach().cpu().double()


def conv_at_positions(x64: torch.Tensor, conv: nn.Conv2d, pos: torch.Tensor) -> torch.Tensor:
    """``conv(x64)`` in float64 at positions ``pos`` (M, 3) = (b, i, j), all channels: (M, C_out)."""
    w, bias = _params64(conv)
    return _patches(x64, conv, pos[:, 0], pos[:, 1], pos[:, 2]) @ w.T + bias


def conv_at_elements(x64: torch.Tensor, conv: nn.Conv2d, index: torch.Tensor) -> torch.Tensor:
    """``conv(x64)`` in float64 at elements ``index`` (N, 4) = (b, c, i, j): (N,)."""
    w, bias = _params64(conv)
    patches = _patches(x64, conv, index[:, 0], index[:, 2], index[:, 3])
    return torch.einsum("nk,nk->n", patches, w[index[:, 1]]) + bias[index[:, 1]]


def conv_transpose64(x64: torch.Tensor, up: nn.ConvTranspose2d) -> torch.Tensor:
    """``up(x64)`` in float64 on CPU, by output phase (``integer_net._transposed_exact``): the
    same products as PyTorch's float64 transposed convolution, several times faster."""
    (kh, kw), (sh, sw), (ph, pw) = up.kernel_size, up.stride, up.padding
    w, bias = up.weight.detach().cpu().double(), up.bias.detach().cpu().double()
    out = _transposed_exact(x64, w, bias, (kh, kw), (sh, sw), (ph, pw))
    size = [(n - 1) * s - 2 * p + k + o for n, s, p, k, o in
            zip(x64.shape[-2:], up.stride, up.padding, up.kernel_size, up.output_padding)]
    return out[..., : size[0], : size[1]]


@torch.no_grad()
def analyse_refereed(h_a: nn.Sequential, y64: torch.Tensor) -> torch.Tensor:
    """round(h_a(y64)) as float64 evaluates it, int64 on CPU, for a hyper-analysis ``h_a`` =
    (conv, activation, strided conv) over 2-D latents: computed in float32, values within
    ``Z_MARGIN`` of a rounding boundary again in float64 from their receptive field."""
    conv1, act, conv2 = h_a
    approx = run_on_cpu(h_a, y64.float())

    def exact_at(index: torch.Tensor) -> torch.Tensor:
        # each flagged value from its receptive field: the first layer (float64) at the k*k
        # positions the second reads (zero outside y, as its padding), then the dot product
        (k, _), (s, _), (p, _) = conv2.kernel_size, conv2.stride, conv2.padding
        b, c, i, j = index.T
        d = torch.arange(k) - p
        gi = (s * i[:, None, None] + d[None, :, None]).expand(-1, k, k).reshape(-1)
        gj = (s * j[:, None, None] + d[None, None, :]).expand(-1, k, k).reshape(-1)
        h, w = y64.shape[-2:]
        inside = ((gi >= 0) & (gi < h) & (gj >= 0) & (gj < w)).double()[:, None]
        pos = torch.stack([b.repeat_interleave(k * k), gi.clamp(0, h - 1), gj.clamp(0, w - 1)], 1)
        hidden = act(conv_at_positions(y64, conv1, pos)) * inside  # (N*k*k, C_hidden)
        w2 = conv2.weight.detach().cpu().double()[c]  # (N, C_hidden, k, k)
        taps = w2.permute(0, 2, 3, 1).reshape(len(index), k * k, -1)
        bias = conv2.bias.detach().cpu().double()[c]
        return torch.einsum("ntc,ntc->n", hidden.view(len(index), k * k, -1), taps) + bias

    return round_refereed(approx, Z_MARGIN, exact_at)
