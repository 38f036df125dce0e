"""Factorized prior (Ballé, Minnen, Singh, Hwang, Johnston 2018, appendix 6.1).

Each latent channel gets its own learned univariate density, parameterised by a
small monotone network that outputs the cumulative distribution c(y). The
likelihood of an integer symbol is c(y + 1/2) - c(y - 1/2) convolved with the
unit-width box, which is exactly the density of y + U(-1/2, 1/2) used in training.

Learning and coding are separate: ``forward`` is the differentiable training
path; ``export_tables`` evaluates the learned CDFs once, in float64 on CPU, and
freezes them into integer ``CodingTables`` that ship with the weights.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.bitstream.tables import PRECISION, CodingTables

__all__ = ["FactorizedPrior"]

_LIKELIHOOD_BOUND = 1e-9


class FactorizedPrior(nn.Module):
    """Per-channel learned density for integer-quantized latents.

    forward(y): y (B, C, ...) -> (y_tilde, bits) where y_tilde = y + uniform noise in
    training and round(y) otherwise, and bits (B,) is the estimated code length.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(filters) + 1):
            init = math.log(math.expm1(1.0 / scale / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[k + 1], 1).uniform_(-0.5, 0.5)))
            if k < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))

    def _logits_cdf(self, v: torch.Tensor) -> torch.Tensor:
        """v (C, 1, N) -> logit of the CDF at v, (C, 1, N)."""
        for k, (m, b) in enumerate(zip(self.matrices, self.biases)):
            v = torch.matmul(F.softplus(m), v) + b
            if k < len(self.factors):
                v = v + torch.tanh(self.factors[k]) * torch.tanh(v)
        return v

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """Probability mass of the unit bin centred on each value of y (B, C, ...)."""
        shape = y.shape
        v = y.transpose(0, 1).reshape(self.channels, 1, -1)  # (C, 1, B*...)
        lower = self._logits_cdf(v - 0.5)
        upper = self._logits_cdf(v + 0.5)
        sign = -torch.sign(lower + upper).detach()  # evaluate in the tail that is numerically safe
        p = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        p = p.reshape(self.channels, shape[0], *shape[2:]).transpose(0, 1)
        return p.clamp_min(_LIKELIHOOD_BOUND)

    def forward(self, y: torch.Tensor, training: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path. Returns (y_tilde, bits per batch item)."""
        training = self.training if training is None else training
        if training:
            y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        else:
            y_tilde = torch.round(y)
        bits = -torch.log2(self.likelihood(y_tilde)).flatten(1).sum(dim=1)
        return y_tilde, bits

    @torch.no_grad()
    def export_tables(self, tail_mass: float = 1e-7, max_symbols: int = 2048, precision: int = PRECISION) -> CodingTables:
        """Evaluate the learned CDFs once (float64, CPU) and freeze them as integer tables.

        The symbol range of channel c is the smallest interval of integers holding all but
        ``tail_mass`` of its probability; what falls outside goes to the escape entry.
        """
        dev_model = self.to(device="cpu", dtype=torch.float64)
        half = max_symbols // 2
        grid = torch.arange(-half, half + 1, dtype=torch.float64)  # candidate integer symbols
        edges = torch.cat([grid - 0.5, grid[-1:] + 0.5])
        v = edges.expand(self.channels, 1, -1).contiguous()
        cdf = torch.sigmoid(dev_model._logits_cdf(v)).squeeze(1).numpy()  # (C, N+1)
        pmfs, offsets = [], []
        for c in range(self.channels):
            lo = int(np.searchsorted(cdf[c], tail_mass / 2, side="right")) - 1
            hi = int(np.searchsorted(cdf[c], 1 - tail_mass / 2, side="left"))
            lo = min(max(lo, 0), grid.numel() - 1)
            hi = max(min(hi, grid.numel()), lo + 1)
            inside = np.diff(cdf[c, lo : hi + 1])  # symbols grid[lo] .. grid[hi-1]
            escape = max(cdf[c, lo] + (1.0 - cdf[c, hi]), 0.0)
            pmfs.append(np.append(np.clip(inside, 0, None), escape))
            offsets.append(int(grid[lo]))
        self.to(dtype=torch.float32)
        return CodingTables.from_pmfs(pmfs, offsets, precision)
