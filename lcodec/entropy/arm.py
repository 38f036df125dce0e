"""Entropy models of per-content (overfitted) codecs: an autoregressive model (ARM) over latent
grids, and the coding of the integer network weights that travel in the stream.

ARM (Cool-chic style, here phase-parallel so it decodes in a few vectorised passes). Grids are
coded from the coarsest level to the finest; inside a level, in four phases of the 2x2 lattice::

    phase 0: (even row, even col)   1: (odd, odd)   2: (even, odd)   3: (odd, even)

Each symbol's table is chosen from causal neighbours only: the 3x3 neighbourhood of the same
level restricted to the phases already decoded, the 3x3 neighbourhood of the coarser level
(nearest-upsampled, already decoded) and a mask channel saying which neighbours are known, plus the
level number. One small ``IntegerNetwork`` (3x3 -> 1x1 -> 1x1, clipped rectifiers) shared by every
level and phase maps them to two integers: a scale index (a zero-mean Laplace table of
``scale_table``) and an integer mean ``mu``; the symbol is ``y - mu``. The network is exact
(``lcodec.entropy.integer_net``): it runs on integers only, so the table indexes agree bit for bit
on every machine. Its integer weights are fitted per image and travel in the stream.

Integer parameters (``encode_integer_params``): each tensor (flattened) is range-coded with the
one of the same Laplace tables that gives it the fewest bits, its table number written first (one
byte per tensor); large values (biases) go through the coder's escape.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lcodec.bitstream.coder import ChunkDecoder, encode_chunks
from lcodec.bitstream.tables import CodingTables
from lcodec.entropy.gaussian import GaussianConditional, indexes_to_scales, scale_table
from lcodec.entropy.integer_net import IntegerConv, IntegerNetwork
from lcodec.errors import BitstreamError
from lcodec.models.overfit import LATENT_BOUND, level_sizes, relaxed_forward
from lcodec.models.walloc import ConfigDict

__all__ = ["ArmConfig", "ArmEntropyModel", "PHASES", "encode_integer_params", "decode_integer_params",
           "arm_scales"]

PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))
NUM_SCALES = 64
MEAN_OFFSET = 31  # the mean head outputs mu + 31 in 0 .. 63
SCALE_INIT = 31  # the scale head's initial table index


def arm_scales() -> np.ndarray:
    """The Laplace scales of the stored tables (latents and network weights share them)."""
    return scale_table(NUM_SCALES, 0.11, 64.0)


@dataclass(frozen=True)
class ArmConfig(ConfigDict):
    hidden: int = 16
    kernel: int = 3  # the causal neighbourhood: kernel x kernel around each symbol (odd)
    act_bits: int = 13  # activations in [0, 64) on a 2**-7 grid (the first layer's inputs are integers)
    act_frac: int = 7
    weight_bits: int = 12
    weight_frac: int = 7


def _phase_mask(h: int, w: int, phase: int, like: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(1, 1, h, w, dtype=like.dtype, device=like.device)
    for py, px in PHASES[:phase]:
        m[..., py::2, px::2] = 1
    return m


def _coarse(parent: torch.Tensor | None, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    if parent is None:
        return torch.zeros_like(like)
    return parent.repeat_interleave(2, -2).repeat_interleave(2, -1)[..., :h, :w]


class ArmEntropyModel(nn.Module):
    """Phase-parallel ARM over ``levels`` latent grids (module docstring)."""

    def __init__(self, cfg: ArmConfig = ArmConfig(), levels: int = 7) -> None:
        super().__init__()
        self.cfg, self.levels = cfg, int(levels)
        c, act_max = cfg.hidden, 2**cfg.act_bits - 1
        common = dict(weight_bits=cfg.weight_bits, weight_frac=cfg.weight_frac, bias_bits=24)
        self.net = IntegerNetwork([
            IntegerConv(4, c, cfg.kernel, stride=2, padding=0, input_range=(-LATENT_BOUND, LATENT_BOUND), in_frac=0,
                        out_frac=cfg.act_frac, out_max=act_max, **common),
            IntegerConv(c, c, 1, input_range=(0, act_max), in_frac=cfg.act_frac, out_frac=cfg.act_frac,
                        out_max=act_max, **common),
            IntegerConv(c, 2, 1, input_range=(0, act_max), in_frac=cfg.act_frac, out_frac=0,
                        out_max=NUM_SCALES - 1, bias_init=float(MEAN_OFFSET), **common),
        ])
        with torch.no_grad():  # start from small scales (most latents of a fit are 0)
            self.net.layers[-1].bias[0] = float(SCALE_INIT)
        self.conditional = GaussianConditional(arm_scales(), family="laplace", tail_mass=1e-6)
        self.tables: CodingTables | None = None

    @property
    def macs_per_latent(self) -> int:
        return sum(l.in_channels * l.out_channels * l.kernel_size**2 for l in self.net.layers)

    def _input(self, y: torch.Tensor, coarse: torch.Tensor, phase: int, level: int) -> torch.Tensor:
        """The strided network input for one phase: (B, 4, ...) padded by kernel // 2 and offset so
        that a stride-2 convolution without padding centres on the phase's positions."""
        h, w = y.shape[-2:]
        mask = _phase_mask(h, w, phase, y)
        feats = torch.cat([y * mask, mask.expand_as(y), coarse, torch.full_like(y, float(level))], 1)
        py, px = PHASES[phase]
        r = self.cfg.kernel // 2
        return nn.functional.pad(feats, (r, r, r, r))[..., py:, px:]

    def _phases(self, h: int, w: int):
        for p, (py, px) in enumerate(PHASES):
            if py < h and px < w:
                yield p, py, px

    def forward(self, grids: list[torch.Tensor], exact_activations: bool = False) -> torch.Tensor:
        """Training path: estimated bits (scalar) of the (noisy or rounded) grids, finest first in
        the list, coded coarsest first. By default the network runs relaxed (``relaxed_forward``:
        activations not rounded, fast); with ``exact_activations`` it runs its layers' own
        straight-through path, which rounds every activation as the coder's exact path does, so a
        mean or table index on a rounding boundary is the one the coder will use (a mean off by one
        under a small scale costs several bits per symbol)."""
        bits = grids[0].new_zeros(())
        table = self.conditional.scale_table
        for level in range(self.levels - 1, -1, -1):
            y = grids[level]
            h, w = y.shape[-2:]
            coarse = _coarse(grids[level + 1] if level + 1 < self.levels else None, h, w, y)
            for p, py, px in self._phases(h, w):
                inp = self._input(y, coarse, p, level)
                out = self.net(inp) if exact_activations else relaxed_forward(self.net, inp, round_last=True)
                mu = out[:, 1:2] - MEAN_OFFSET
                scales = indexes_to_scales(out[:, 0:1], table)
                bits = bits - torch.log2(self.conditional.likelihood(y[..., py::2, px::2], scales, mu)).sum()
        return bits

    def _require_tables(self) -> CodingTables:
        if self.tables is None:
            raise BitstreamError("the ARM has no coding tables; load the codec's stored tables")
        return self.tables

    @torch.no_grad()
    def encode(self, grids: list[torch.Tensor]) -> bytes:
        """Integer grids (int64, |y| <= LATENT_BOUND) -> one range-coded stream."""
        chunks = []
        for level in range(self.levels - 1, -1, -1):
            y = grids[level].to(torch.int64)
            h, w = y.shape[-2:]
            coarse = _coarse(grids[level + 1].to(torch.int64) if level + 1 < self.levels else None, h, w, y)
            for p, py, px in self._phases(h, w):
                out = self.net.forward_exact(self._input(y, coarse, p, level))
                symbols = y[..., py::2, px::2] - (out[:, 1:2] - MEAN_OFFSET)
                chunks.append((symbols.reshape(-1).numpy(), out[:, 0:1].reshape(-1).numpy()))
        return encode_chunks(chunks, self._require_tables())

    @torch.no_grad()
    def decode(self, data: bytes, size: tuple[int, int]) -> list[torch.Tensor]:
        """The inverse of ``encode`` for an image of ``size`` (H, W): int64 grids, finest first."""
        dec = ChunkDecoder(data, self._require_tables())
        sizes = level_sizes(size[0], size[1], self.levels)
        grids: list[torch.Tensor | None] = [None] * self.levels
        for level in range(self.levels - 1, -1, -1):
            h, w = sizes[level]
            y = torch.zeros(1, 1, h, w, dtype=torch.int64)
            coarse = _coarse(grids[level + 1] if level + 1 < self.levels else None, h, w, y)
            for p, py, px in self._phases(h, w):
                out = self.net.forward_exact(self._input(y, coarse, p, level))
                s = torch.from_numpy(dec.next(out[:, 0:1].reshape(-1).numpy()))
                mu = out[:, 1:2] - MEAN_OFFSET
                target = y[..., py::2, px::2]
                target.copy_((s.reshape(target.shape) + mu).clamp(-LATENT_BOUND, LATENT_BOUND))
            grids[level] = y
        return grids  # type: ignore[return-value]


def _coded_bits(tables: CodingTables, s: np.ndarray, k: int) -> float:
    """Bits of ``s`` under table ``k``, the coder's escapes included (side bit, length class over
    33 values, then the low bits of overshoot + 1)."""
    o, n = int(tables.offsets[k]), int(tables.lengths[k]) - 1
    pos = s - o
    esc = (pos < 0) | (pos >= n)
    d = np.where(pos < 0, o - 1 - s, s - o - n)[esc]
    extra = esc.sum() * (1.0 + np.log2(33.0)) + np.floor(np.log2(d + 1.0)).sum()
    return tables.information_content(s, np.full(s.size, k)) + float(extra)


def encode_integer_params(tensors: list[torch.Tensor], tables: CodingTables) -> bytes:
    """Integer tensors -> one byte per tensor (its table) + one range-coded stream."""
    choices, chunks = [], []
    for t in tensors:
        s = t.detach().reshape(-1).to(torch.int64).numpy()
        costs = [_coded_bits(tables, s, k) for k in range(tables.num_tables)]
        k = int(np.argmin(costs))
        choices.append(k)
        chunks.append((s, np.full(s.size, k)))
    return bytes(choices) + encode_chunks(chunks, tables)


def decode_integer_params(data: bytes, shapes: list[tuple[int, ...]], tables: CodingTables) -> list[torch.Tensor]:
    n = len(shapes)
    if len(data) < n:
        raise BitstreamError("the network-weights section is too short")
    choices = list(data[:n])
    if max(choices, default=0) >= tables.num_tables:
        raise BitstreamError("the network-weights section names a table that does not exist")
    dec = ChunkDecoder(data[n:], tables)
    out = []
    for k, shape in zip(choices, shapes):
        count = int(np.prod(shape))
        out.append(torch.from_numpy(dec.next(np.full(count, k))).reshape(shape))
    return out
