"""Conditional Gaussian (or Laplace) entropy model with a fixed table of scales (Ballé et al. 2018, §3).

A latent ``y`` is modelled, element by element, as a Gaussian ``N(mu, sigma)``
convolved with the unit box, so the probability of the integer bin around ``v`` is

    p(v) = Phi((v - mu + 1/2) / sigma) - Phi((v - mu - 1/2) / sigma),
    Phi(x) = erfc(-x / sqrt(2)) / 2.

Training (``forward``) adds uniform noise ``U(-1/2, 1/2)`` to ``y`` (the density of the
noisy latent is exactly ``p``) and returns the estimated bits ``-log2 p``; evaluation
rounds ``y - mu`` instead. ``p`` is evaluated on the left tail (``-|v - mu|``) where
``erfc`` keeps full relative precision, with ``sigma >= 0.11`` and ``p >= 1e-9``.

Coding never sees a float probability. The scales are restricted to a fixed,
log-spaced ``scale_table`` (stored with the weights); ``gaussian_tables`` turns each
entry, once and in float64 on CPU, into a zero-mean integer table over the symbols
``-K .. K`` plus an escape entry, and those integer tables ship with the weights. A
conditional model then only has to say *which* table codes each element: an integer
table index, computed exactly (``lcodec.entropy.integer_net``). The mean ``mu`` never
selects a table; it only shifts symbols::

    symbol = round(y - mu)              (coded with table[index])
    y_hat  = symbol + mu                (reconstruction)

so a mean computed with float rounding differences on the decoder moves the
reconstruction by a rounding error, never the decoded symbols.

``family="laplace"`` swaps the density for a Laplace ``L(mu, b)`` (the table entries are the
``b``): the same bins, tables and indexes, with exponential instead of Gaussian tails. For
sparse, heavy-tailed latents whose scale the side information can only roughly predict
(walloc-audio-hp), a wrong small scale then costs bits linear, not quadratic, in the miss.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import special
from torch import nn

from lcodec.bitstream.tables import PRECISION, CodingTables
from lcodec.errors import ModelError

__all__ = [
    "GaussianConditional",
    "FAMILIES",
    "gaussian_tables",
    "indexes_to_scales",
    "laplace_tables",
    "scale_table",
]

SCALE_BOUND = 0.11
LIKELIHOOD_BOUND = 1e-9
_SQRT1_2 = math.sqrt(0.5)
FAMILIES = ("gaussian", "laplace")


def scale_table(num: int = 64, min_scale: float = SCALE_BOUND, max_scale: float = 256.0) -> np.ndarray:
    """``num`` log-spaced scales from ``min_scale`` to ``max_scale`` (float64, increasing).

    The table is part of a model's configuration: it is stored with the weights and
    fixes, once and for all, which Gaussian each table index stands for.
    """
    if num < 2 or not 0.0 < min_scale < max_scale or not math.isfinite(max_scale):
        raise ModelError(f"scale_table needs num >= 2 and 0 < min_scale < max_scale, "
                         f"got num={num}, min_scale={min_scale}, max_scale={max_scale}")
    return np.exp(np.linspace(math.log(min_scale), math.log(max_scale), num, dtype=np.float64))


def gaussian_tables(scales: Sequence[float] | np.ndarray, tail_mass: float = 1e-9,
                    precision: int = PRECISION) -> CodingTables:
    """One zero-mean quantized-Gaussian integer table per scale (built in float64 on CPU).

    Table ``t`` covers the symbols ``-K_t .. K_t``, where ``K_t`` is the smallest integer with
    ``P(|X| > K_t + 1/2) <= tail_mass`` for ``X ~ N(0, scales[t])``; that outside mass is the
    escape entry (last). Entry ``k`` holds ``Phi((k + 1/2)/s) - Phi((k - 1/2)/s)``, computed
    for ``|k|`` from the upper tail with ``erfc`` and mirrored, so the float pmf is exactly
    symmetric before ``quantize_pmf`` turns it into counts summing to ``2**precision``.
    """
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    if s.size == 0 or not np.isfinite(s).all() or (s <= 0).any():
        raise ModelError("gaussian_tables needs a non-empty list of positive finite scales")
    if not 0.0 < tail_mass < 1.0:
        raise ModelError(f"tail_mass must lie in (0, 1), got {tail_mass}")
    z = -float(special.ndtri(tail_mass / 2))  # P(|N(0,1)| > z) = tail_mass
    pmfs, offsets = [], []
    for sigma in s:
        half = max(1, math.ceil(z * float(sigma) - 0.5))
        k = np.arange(half + 1, dtype=np.float64)  # |symbol| = 0 .. half
        upper = 0.5 * special.erfc((k + 0.5) / sigma * _SQRT1_2)  # P(X > k + 1/2)
        lower = 0.5 * special.erfc(np.maximum(k - 0.5, 0.0) / sigma * _SQRT1_2)  # P(X > max(k - 1/2, 0))
        side = lower - upper  # mass of the bin k (k >= 1); half of the bin 0 for k = 0
        centre = 2.0 * side[0]
        pmf = np.concatenate([side[:0:-1], [centre], side[1:], [2.0 * upper[-1]]])  # -K..K, escape
        pmfs.append(pmf)
        offsets.append(-half)
    return CodingTables.from_pmfs(pmfs, offsets, precision)


def laplace_tables(scales: Sequence[float] | np.ndarray, tail_mass: float = 1e-9,
                   precision: int = PRECISION) -> CodingTables:
    """One zero-mean quantized-Laplace integer table per scale ``b`` (float64 on CPU), laid out
    as ``gaussian_tables``: symbols ``-K_t .. K_t`` with ``P(|X| > K_t + 1/2) = exp(-(K_t + 1/2)/b)
    <= tail_mass``, then the escape entry. Bin ``k != 0`` holds
    ``exp(-(|k| - 1/2)/b) (1 - exp(-1/b)) / 2``, bin 0 ``1 - exp(-1/(2b))``."""
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    if s.size == 0 or not np.isfinite(s).all() or (s <= 0).any():
        raise ModelError("laplace_tables needs a non-empty list of positive finite scales")
    if not 0.0 < tail_mass < 1.0:
        raise ModelError(f"tail_mass must lie in (0, 1), got {tail_mass}")
    pmfs, offsets = [], []
    for b in s:
        half = max(1, math.ceil(float(b) * math.log(1.0 / tail_mass) - 0.5))
        k = np.arange(1, half + 1, dtype=np.float64)
        side = 0.5 * np.exp(-(k - 0.5) / b) * -np.expm1(-1.0 / b)
        centre = -np.expm1(-0.5 / b)
        pmfs.append(np.concatenate([side[::-1], [centre], side, [np.exp(-(half + 0.5) / b)]]))
        offsets.append(-half)
    return CodingTables.from_pmfs(pmfs, offsets, precision)


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still flows where it would push x back above the bound."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        passes = (x >= ctx.bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def _lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    return _LowerBound.apply(x, bound)


def indexes_to_scales(indexes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Scale ``table[indexes]`` with a straight-through gradient to the (float) indexes.

    indexes: any shape, integer values in ``[0, len(table) - 1]`` (float with an STE
    gradient on the training path, or an integer tensor); table: (T,) increasing scales.
    The value is exactly the table entry; the gradient is ``d scale / d index`` of the
    piecewise log-linear interpolation of the table (a centred difference of ``log table``),
    so a rate loss on the scales trains whatever produced the indexes.
    """
    table = table.to(device=indexes.device)
    n = table.numel()
    idx = indexes.detach().round().clamp(0, n - 1).to(torch.int64)
    value = table.to(torch.float32 if not indexes.is_floating_point() else indexes.dtype)[idx]
    if not (indexes.is_floating_point() and indexes.requires_grad):
        return value
    log_t = torch.log(table.to(torch.float64))
    lo = (idx - 1).clamp_min(0)
    hi = (idx + 1).clamp_max(n - 1)
    slope = ((log_t[hi] - log_t[lo]) / (hi - lo).to(torch.float64)).to(value.dtype)  # d log s / d index
    return value * torch.exp(slope * (indexes - indexes.detach()))


class GaussianConditional(nn.Module):
    """Gaussian conditional entropy model over a fixed table of scales.

    forward(y, scales, means): y, scales, means (B, C, ...) -> (y_tilde, bits (B,)).
    Coding: ``symbols(y, means)`` -> int64 symbols, coded with ``tables()`` at the table
    indexes of the side-information network; ``reconstruct(symbols, means)`` inverts it.
    """

    scale_table: torch.Tensor

    def __init__(self, scales: Sequence[float] | np.ndarray | None = None, *, scale_bound: float = SCALE_BOUND,
                 likelihood_bound: float = LIKELIHOOD_BOUND, tail_mass: float = 1e-9,
                 family: str = "gaussian") -> None:
        super().__init__()
        if family not in FAMILIES:
            raise ModelError(f"unknown conditional family {family!r}; choose one of {FAMILIES}")
        self.family = family
        table = scale_table() if scales is None else np.asarray(scales, dtype=np.float64).reshape(-1)
        if table.size < 2 or not np.isfinite(table).all() or (table <= 0).any() or (np.diff(table) <= 0).any():
            raise ModelError("GaussianConditional needs >= 2 positive, strictly increasing scales")
        if scale_bound <= 0 or not 0 < likelihood_bound < 1:
            raise ModelError("scale_bound must be > 0 and likelihood_bound in (0, 1)")
        self.scale_bound = float(scale_bound)
        self.likelihood_bound = float(likelihood_bound)
        self.tail_mass = float(tail_mass)
        self.register_buffer("scale_table", torch.from_numpy(table.copy()))  # float64, stored with weights

    @property
    def num_tables(self) -> int:
        return int(self.scale_table.numel())

    def likelihood(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
        """Mass of the unit bin centred on each value of ``y`` under N(means, scales) (or
        L(means, scales)), same shape as y."""
        v = torch.abs(y - means if means is not None else y)
        s = _lower_bound(scales, self.scale_bound)
        if self.family == "laplace":
            outer = 0.5 * torch.exp(-(v - 0.5).clamp_min(0.0) / s) * -torch.expm1(-1.0 / s)  # |v| >= 1/2
            # |v| < 1/2: the bin that holds the mean
            inner = 1.0 - 0.5 * torch.exp(-(0.5 - v).clamp_min(0.0) / s) - 0.5 * torch.exp(-(v + 0.5) / s)
            return _lower_bound(torch.where(v >= 0.5, outer, inner), self.likelihood_bound)
        upper = 0.5 * torch.erfc((v - 0.5) / s * _SQRT1_2)  # P(X > v - 1/2), left-tail form
        lower = 0.5 * torch.erfc((v + 0.5) / s * _SQRT1_2)  # P(X > v + 1/2)
        return _lower_bound(upper - lower, self.likelihood_bound)

    def forward(self, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None,
                training: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: (y_tilde, bits per batch item (B,)).

        y_tilde = y + U(-1/2, 1/2) in training, ``round(y - means) + means`` otherwise (the
        value the decoder reconstructs); bits = sum of ``-log2 p(y_tilde)`` over each item.
        """
        training = self.training if training is None else training
        if training:
            y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        else:
            y_tilde = torch.round(y - means) + means if means is not None else torch.round(y)
        bits = -torch.log2(self.likelihood(y_tilde, scales, means)).flatten(1).sum(dim=1)
        return y_tilde, bits

    @staticmethod
    def symbols(y: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
        """Integer symbols ``round(y - means)`` (int64, same shape as y). Means only shift them."""
        return torch.round(y - means if means is not None else y).to(torch.int64)

    @staticmethod
    def reconstruct(symbols: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
        """``symbols + means`` as float (float32, or the dtype of ``means``)."""
        dtype = means.dtype if means is not None else torch.float32
        out = symbols.to(dtype)
        return out + means if means is not None else out

    def scales_from_indexes(self, indexes: torch.Tensor) -> torch.Tensor:
        """``scale_table[indexes]`` with a straight-through gradient (see ``indexes_to_scales``)."""
        return indexes_to_scales(indexes, self.scale_table)

    @torch.no_grad()
    def tables(self, precision: int = PRECISION) -> CodingTables:
        """Integer coding tables, one per scale-table entry (build once at export; ship them)."""
        build = laplace_tables if self.family == "laplace" else gaussian_tables
        return build(self.scale_table.detach().cpu().to(torch.float64).numpy(), self.tail_mass, precision)
