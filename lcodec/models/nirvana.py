"""The transform of an implicit-neural-representation video codec (NIRVANA style): one small
network per group of frames maps patch coordinates to the group's pixels; its weights are the
code (``lcodec.codecs.nirvana``). Nothing is pretrained.

Network (group of G frames of H x W, padded to multiples of the patch side P)::

    patch centre (y, x) in [-1, 1]^2
      -> SIREN: Linear(2, width), sin(w0 .) -> Linear(width, width), sin(.) -> Linear(width, feat * (P/2)^2)
      -> the patches' features laid side by side: one (feat, H/2, W/2) map for the group
      -> Conv3x3(feat, G * 4 * head) -> PixelShuffle(2) -> GELU -> Conv3x3(G * head, G * 3, groups=G)
      -> + 0.5: frame g is output channels 3g .. 3g + 2

As in NIRVANA's public code the frames of a group are output channels (no time input), the SIREN
runs once per patch (not per pixel) and the head does the spatial upsampling. One change: the head
runs on the whole frame's feature map rather than on each patch alone, so patches have no seams.

Quantisation (``QuantTensor``): every tensor is an integer tensor times a learned per-tensor step;
the fit sees the rounded weights (straight-through rounding), the stream carries the integers
and the steps (float32). The decoder runs the network in fixed point (``lcodec.models.exact_nirvana``):
the same frames on every machine and thread count; ``NirvanaCodec.exact_decode = False`` runs it in
float32 (the encoder's network) instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lcodec.entropy.model import ste_round
from lcodec.models.walloc import ConfigDict

__all__ = ["NirvanaConfig", "NirvanaNet", "QuantTensor", "patch_coordinates"]


@dataclass(frozen=True)
class NirvanaConfig(ConfigDict):
    group: int = 3  # frames per network
    patch: int = 8  # output patch side P (even)
    width: int = 128  # SIREN hidden width
    feat: int = 8  # feature channels per half-resolution position
    head: int = 4  # channels per frame after the PixelShuffle
    w0: float = 30.0


class QuantTensor(nn.Module):
    """A tensor stored as ``u`` (in units of its step) and a learned log step: the value used is
    ``round(u) * step`` (straight-through), the integers ``round(u)`` travel in the stream."""

    def __init__(self, value: torch.Tensor, step: float) -> None:
        super().__init__()
        self.log_step = nn.Parameter(torch.tensor(math.log(step)))
        self.u = nn.Parameter(value / step)

    @property
    def step(self) -> torch.Tensor:
        return self.log_step.exp()

    def forward(self) -> torch.Tensor:
        return ste_round(self.u) * self.step

    def integers(self) -> torch.Tensor:
        return torch.round(self.u.detach()).to(torch.int64)

    @torch.no_grad()
    def set_integers(self, n: torch.Tensor, step: float | None = None) -> None:
        if step is not None:
            self.log_step.fill_(math.log(step))
        self.u.copy_(n.to(self.u.dtype))


def patch_coordinates(ny: int, nx: int) -> torch.Tensor:
    """(ny * nx, 2) patch centres (y, x) in [-1, 1], row-major."""
    ys = (torch.arange(ny, dtype=torch.float32) + 0.5) / ny * 2 - 1
    xs = (torch.arange(nx, dtype=torch.float32) + 0.5) / nx * 2 - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)


class NirvanaNet(nn.Module):
    """One group's network (module docstring). ``tensors`` lists its ``QuantTensor``s in stream order."""

    def __init__(self, cfg: NirvanaConfig = NirvanaConfig()) -> None:
        super().__init__()
        if cfg.patch < 2 or cfg.patch % 2:
            raise ValueError(f"patch side must be even and >= 2, got {cfg.patch}")
        self.cfg = cfg
        half2 = (cfg.patch // 2) ** 2
        w, g = cfg.width, cfg.group
        shapes = [  # (weight shape, init bound): SIREN's first and hidden layers, then PyTorch's defaults
            ((w, 2), 1.0 / 2),
            ((w, w), math.sqrt(6 / w) / cfg.w0),
            ((cfg.feat * half2, w), 1 / math.sqrt(w)),
            ((g * 4 * cfg.head, cfg.feat, 3, 3), 1 / math.sqrt(cfg.feat * 9)),
            ((g * 3, cfg.head, 3, 3), 1 / math.sqrt(cfg.head * 9)),
        ]
        tensors = []
        for shape, bound in shapes:
            wt = torch.empty(shape).uniform_(-bound, bound)
            tensors.append(QuantTensor(wt, bound / 32))
            tensors.append(QuantTensor(torch.empty(shape[0]).uniform_(-bound, bound), bound / 32))
        self.tensors = nn.ModuleList(tensors)

    @property
    def num_tensors(self) -> int:
        return len(self.tensors)

    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(t.u.shape) for t in self.tensors]

    def macs_per_pixel(self, h: int, w: int) -> float:
        """Multiply-accumulates per output pixel (all G frames' pixels counted)."""
        c, p = self.cfg, self.cfg.patch
        siren = (2 * c.width + c.width * c.width + c.width * c.feat * (p // 2) ** 2) / (p * p)
        # first conv at half resolution (4 output pixels per position), second at full resolution
        head = (c.feat * 9 * 4 * c.head * c.group) / 4 + c.group * c.head * 9 * 3
        return (siren + head) / c.group

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """(G, 3, H, W) frames of a padded size (multiples of the patch side), float32."""
        c = self.cfg
        h, w = size
        p, half = c.patch, c.patch // 2
        ny, nx = h // p, w // p
        v = [t() for t in self.tensors]
        z = patch_coordinates(ny, nx)
        z = torch.sin(c.w0 * F.linear(z, v[0], v[1]))
        z = torch.sin(c.w0 * F.linear(z, v[2], v[3]))  # w0 * the weight bound sqrt(6/w)/w0 = SIREN's hidden scale
        z = F.linear(z, v[4], v[5])
        z = z.reshape(1, ny, nx, c.feat, half, half).permute(0, 3, 1, 4, 2, 5).reshape(1, c.feat, ny * half, nx * half)
        z = F.pixel_shuffle(F.conv2d(z, v[6], v[7], padding=1), 2)
        z = F.conv2d(F.gelu(z), v[8], v[9], padding=1, groups=c.group)
        return (z + 0.5).reshape(c.group, 3, h, w)
