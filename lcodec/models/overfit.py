"""The transform of an overfitted image codec (Cool-chic / C3 style): latent grids at several
resolutions, fixed bilinear upsampling, and a small synthesis network, all fitted to one image at
encode time (``lcodec.codecs.overfit``); nothing is pretrained.

Layout (image H x W, ``levels`` = L)::

    grids y_l, l = 0 .. L-1, one channel each, of size ceil(H / 2**l) x ceil(W / 2**l), integers
    up_l = bilinear x2 upsampling applied l times (edge replicate), cropped to H x W
    x_hat = synthesis([up_0 .. up_{L-1}])  (1x1 -> 1x1 -> 3x3 convolutions, clipped rectifiers)

Exact decode: every step is integer arithmetic. One x2 step of ``upsample2`` forms
``(a_prev + 3 a)`` / ``(3 a + a_next)`` along each axis without dividing, so after l steps a level
holds its bilinear value times ``16**l`` exactly (int64; |y| <= ``LATENT_BOUND`` keeps it below
2**31 for 7 levels); it is then rounded to ``FRAC`` fractional bits (floor(v / 2**s + 1/2), exact).
The synthesis is an ``IntegerNetwork`` (``lcodec.entropy.integer_net``): integer weights, exact in
float64, clipped-rectifier activations on a power-of-two grid; its last layer outputs the 8-bit
pixel values themselves (``out_frac`` 8, ``out_max`` 255: the real output p / 256 stands for the
pixel p). So the decoded PNG is the same on every machine and thread count. Training runs the same
layers on their straight-through path (float, ``lcodec.entropy.integer_net``).

Decoder cost: ``synthesis_macs`` per pixel (the default: 7 * 16 + 16 * 16 + 16 * 9 * 3 = 800 MAC)
plus the upsampling (adds only).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lcodec.entropy.integer_net import IntegerConv, IntegerNetwork, ste_clamp
from lcodec.errors import InputError
from lcodec.models.walloc import ConfigDict

__all__ = ["OverfitConfig", "OverfitSynthesis", "upsample2", "level_sizes", "relaxed_forward", "LATENT_BOUND",
           "FRAC"]

LATENT_BOUND = 127  # latents are clamped to +-127 (the ARM's input range)
FRAC = 8  # fractional bits of the upsampled latents fed to the synthesis
MAX_SIDE = 1 << 14


@dataclass(frozen=True)
class OverfitConfig(ConfigDict):
    levels: int = 7
    hidden: int = 16
    act_bits: int = 16  # activations in [0, 2**(act_bits - act_frac)) = [0, 64)
    act_frac: int = 10
    weight_bits: int = 12
    weight_frac: int = 7


def level_sizes(h: int, w: int, levels: int) -> list[tuple[int, int]]:
    """Grid size of each level: ceil(h / 2**l) x ceil(w / 2**l)."""
    return [(-(-h // 2**l), -(-w // 2**l)) for l in range(levels)]


def _up_axis(a: torch.Tensor, dim: int) -> torch.Tensor:
    n = a.shape[dim]
    prev = torch.cat([a.narrow(dim, 0, 1), a.narrow(dim, 0, n - 1)], dim)
    nxt = torch.cat([a.narrow(dim, 1, n - 1), a.narrow(dim, n - 1, 1)], dim)
    even, odd = prev + 3 * a, 3 * a + nxt
    return torch.stack([even, odd], dim + 1).flatten(dim, dim + 1)


def upsample2(a: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear x2 upsampling (half-pixel centres, edge replicate) of (B, C, h, w) WITHOUT the
    division by 16: integer in, integer out, exactly; cropped to ``size``."""
    out = _up_axis(_up_axis(a, 2), 3)
    return out[..., : size[0], : size[1]]


def relaxed_forward(net: IntegerNetwork, x: torch.Tensor, round_last: bool = False) -> torch.Tensor:
    """The fitting path of an ``IntegerNetwork``, in real units (x_real = x_int / 2**in_frac): the
    weights and biases on their integer grids (straight-through), the convolutions in float32,
    rectifiers clamped at each layer's ``out_max`` (the last one with the straight-through clamp of
    ``integer_net``, hidden ones as plain rectifiers) but the activations NOT rounded to their grid
    (2**-10 with the default configs, far below what the fit resolves). About 3x faster than the
    layers' own straight-through path; the exact path (``forward_exact``) rounds them. With
    ``round_last`` the last layer's output is rounded to its grid (straight-through), e.g. to
    table indexes. Returns real units of the last layer."""
    for i, layer in enumerate(net.layers):
        w = layer.quantized_weight() * float(2.0**-layer.weight_frac)
        b = layer.quantized_bias() * float(1.0 / layer.bias_scale())
        lo, hi = layer.input_range
        if i == 0:
            x = x.clamp(lo * 2.0**-layer.in_frac, hi * 2.0**-layer.in_frac)
        x = F.conv2d(x, w, b, stride=layer.stride, padding=layer.padding)
        top = layer.out_max * 2.0**-layer.out_frac
        if round_last and i == len(net.layers) - 1:
            x = x * float(2**layer.out_frac)
            x = (x + (torch.floor(x + 0.5) - x).detach()) * float(2.0**-layer.out_frac)
        x = ste_clamp(x, 0.0, top) if i == len(net.layers) - 1 else x.clamp(0.0, top)
    return x


class OverfitSynthesis(nn.Module):
    """Latent grids (parameters, fitted per image) + exact integer synthesis (module docstring).

    ``in_channels`` = 3 (RGB). ``latents`` is empty until ``init_grids(h, w)``.
    """

    in_channels = 3
    storage_dtype = torch.float32

    def __init__(self, cfg: OverfitConfig = OverfitConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        L, c = cfg.levels, cfg.hidden
        act_max = 2**cfg.act_bits - 1
        common = dict(weight_bits=cfg.weight_bits, weight_frac=cfg.weight_frac)
        bound = LATENT_BOUND << FRAC
        self.synthesis = IntegerNetwork([
            IntegerConv(L, c, 1, input_range=(-bound, bound), in_frac=FRAC, out_frac=cfg.act_frac,
                        out_max=act_max, **common),
            IntegerConv(c, c, 1, input_range=(0, act_max), in_frac=cfg.act_frac, out_frac=cfg.act_frac,
                        out_max=act_max, **common),
            IntegerConv(c, 3, 3, input_range=(0, act_max), in_frac=cfg.act_frac, out_frac=8, out_max=255,
                        bias_init=0.5, **common),
        ])
        self.latents = nn.ParameterList()

    @property
    def synthesis_macs(self) -> int:
        return sum(l.in_channels * l.out_channels * l.kernel_size**2 for l in self.synthesis.layers)

    def init_grids(self, h: int, w: int) -> None:
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise InputError(f"image of {h}x{w} pixels; this codec codes 1 .. {MAX_SIDE} pixels per side")
        self.latents = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, *s))
                                        for s in level_sizes(h, w, self.cfg.levels))

    def stack(self, grids: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Training path: the upsampled levels (B, L, H, W) in the synthesis' input units (real
        value * 2**FRAC), float, differentiable."""
        h, w = size
        sizes = level_sizes(h, w, len(grids))
        out = []
        for l, g in enumerate(grids):
            v = g
            for k in range(l - 1, -1, -1):
                v = upsample2(v, sizes[k]) * (1.0 / 16.0)
            out.append(v)
        return torch.cat(out, 1) * float(2**FRAC)

    @torch.no_grad()
    def stack_exact(self, grids: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Exact path: int64 grids -> int64 (B, L, H, W), rounded to FRAC fractional bits."""
        h, w = size
        sizes = level_sizes(h, w, len(grids))
        out = []
        for l, g in enumerate(grids):
            v = g.to(torch.int64)
            for k in range(l - 1, -1, -1):
                v = upsample2(v, sizes[k])
            s = 4 * l - FRAC
            v = v << -s if s <= 0 else (v + (1 << (s - 1))) >> s  # floor(v / 2**s + 1/2), exact
            out.append(v)
        return torch.cat(out, 1)

    def forward(self, grids: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Training path: grids (float, quantized or noisy) -> image in [0, 1] (B, 3, H, W)."""
        return relaxed_forward(self.synthesis, self.stack(grids, size) * float(2.0**-FRAC)) * (256.0 / 255.0)

    @torch.no_grad()
    def decode_exact(self, grids: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Integer grids -> uint8-valued int64 image (B, 3, H, W), identical on every machine."""
        return self.synthesis.forward_exact(self.stack_exact(grids, size))

