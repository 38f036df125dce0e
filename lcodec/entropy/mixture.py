"""Gaussian mixture conditional (Cheng et al. 2020) coded with INTEGER mixtures of stored tables.

Model. Each latent ``y`` is modelled by ``K`` Gaussian components convolved with the unit box:

    p(v) = sum_k pi_k * (Phi((v - mu_k + 1/2) / sigma_k) - Phi((v - mu_k - 1/2) / sigma_k)).

Training (``GaussianMixtureConditional.forward``) evaluates this in float with noisy
``y + U(-1/2, 1/2)`` and quantization-aware parameters (straight-through): the weights are the
integer weights below divided by ``2**W``, the means are rounded to ``1/mean_steps`` and the scales
to the nearest entry of ``scale_table`` (in log space), so training sees the model that is coded.

Coding never evaluates a float CDF. The side network (in a real codec an exact integer network,
``lcodec.entropy.integer_net``) outputs, per latent and component, three INTEGERS:

* ``weights[k]`` >= 0 with ``sum_k weights[k] == 2**W`` exactly (``W = weight_bits``, default 8);
* ``mean_q[k]``: the mean in units of ``1/mean_steps`` (default quarter steps);
* ``scale_idx[k]``: an index into the fixed, stored ``scale_table``.

``quantize_params`` is the float reference mapping (softmax -> largest-remainder integer weights,
``round(mean * mean_steps)``, nearest scale in log space); it runs on the encoder only, or in
tests. A decoder must obtain the same integers from an exact integer network.

Centre and offsets (integers only). The integer centre of a latent is the weighted mean of the
component means, rounded half up to an integer symbol::

    c = floor((2 * sum_k w_k * mean_q[k] + D) / (2 * D)),   D = 2**W * mean_steps

and each component's relative offset is clipped to the grid ``[-M, M]``, ``M = mean_range *
mean_steps``: ``bin_k = clip(mean_q[k] - c * mean_steps, -M, M) + M``. The coded symbol is
``s = round(y) - c`` and the reconstruction is ``y_hat = s + c = round(y)``: the centre and the
table both depend only on the integers, so encoder and decoder agree bit for bit.

Component bank (built ONCE at export, in float64 on CPU, stored with the weights). For each
(mean bin, scale index) pair a PMF over the common support ``[-R, R]`` plus an escape entry
(the mass outside, from ``erfc`` tails), turned into integer counts by ``quantize_pmf``: every
entry >= 1, each row summing to exactly ``2**P`` (``P = 16``). Size:
``(2M + 1) * num_scales * (2R + 2)`` counts; with the defaults (M = 32, 32 scales, R = 64) that
is 65 * 32 * 130 = 270,400 counts, ~1.1 MB as int32.

Mixing (pure int64 arithmetic, ``mix_counts``). With component counts ``c_k`` (each entry >= 1,
rows summing to ``2**P``) and weights summing to ``2**W``:

    m[i] = sum_k w_k * c_k[i]          (sum_i m[i] = 2**(P + W); m[i] >= sum_k w_k = 2**W)
    q[i] = floor(m[i] / 2**W)          (>= 1 for every entry, since m[i] >= 2**W)
    r[i] = m[i] mod 2**W
    deficit = 2**P - sum_i q[i]        (0 <= deficit < n, as sum_i r[i] = deficit * 2**W)
    add 1 to the ``deficit`` entries with the largest remainder r (ties: lower index first).

The result has every entry >= 1 and sums to exactly ``2**P``. All values stay below
``2**(P + W) * n`` (far below 2**63), every operation is an integer operation (numpy int64 and a
stable sort), so the table is a pure function of the integers on any machine, thread count or
batch composition. A ``K = 1`` mixture (``w = 2**W``) gives back the component table unchanged.

Tables for the range coder. Latents whose parameter tuples coincide share one table: components
are put in a canonical order (the mixture is order-free, so this cannot change the table) with
zero-weight components normalised, the integer tuples are deduplicated with ``np.unique`` and one
mixed table is built per unique tuple (vectorised over all of them at once). The coder
(``lcodec.bitstream.coder``) then loops over the unique tables; the number of unique tables is
what bounds coding time (see ``build_tables(max_tables=...)``). Measured on one core with K = 3 and
random parameters (every latent its own table): 8,192 latents build 0.12 s / encode 0.23 s / decode
0.33 s; 65,536 latents 1.3 / 5.3 / 7.7 s; 196,608 latents 5.1 / 24 / 44 s. The coder's grouping is
``indexes == t`` per table, i.e. O(tables x latents); sort-based grouping in the coder would make it
O(N log N).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import special
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import PRECISION, CodingTables, quantize_pmf
from lcodec.entropy.gaussian import LIKELIHOOD_BOUND, _lower_bound, scale_table
from lcodec.errors import InputError, ModelError

__all__ = [
    "GaussianMixtureConditional",
    "MixtureParams",
    "component_bank",
    "mix_counts",
    "quantize_weights",
]

_SQRT1_2 = math.sqrt(0.5)


@dataclass(frozen=True)
class MixtureParams:
    """Integer mixture parameters, each int64 of shape (B, K, C, H, W) (any trailing dims).

    weights: >= 0, summing to ``2**weight_bits`` over K; mean_q: means in ``1/mean_steps`` units;
    scale_idx: indexes into the model's ``scale_table``.
    """

    weights: np.ndarray
    mean_q: np.ndarray
    scale_idx: np.ndarray


def quantize_weights(logits: np.ndarray, weight_bits: int = 8, axis: int = 1) -> np.ndarray:
    """Softmax along ``axis`` -> int64 weights >= 0 summing to exactly ``2**weight_bits``.

    Largest-remainder rounding: ``floor(p * 2**W)``, then +1 on the entries with the largest
    fractional parts (ties: lower component index). Float reference (encoder / tests only).
    """
    x = np.moveaxis(np.asarray(logits, dtype=np.float64), axis, -1)
    x = x - x.max(axis=-1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(axis=-1, keepdims=True)
    total = 1 << weight_bits
    t = p * total
    w = np.floor(t).astype(np.int64)
    deficit = total - w.sum(axis=-1, keepdims=True)
    order = np.argsort(-(t - w), axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(x.shape[-1])[(None,) * (x.ndim - 1)], axis=-1)
    w += (rank < deficit).astype(np.int64)
    return np.moveaxis(w, -1, axis)


def _quantize_weights_torch(p: torch.Tensor, weight_bits: int, dim: int = 1) -> torch.Tensor:
    """Same largest-remainder procedure on probabilities (no grad); float result in [0, 2**W]."""
    total = float(1 << weight_bits)
    t = p.detach().to(torch.float64) * total
    w = torch.floor(t)
    deficit = total - w.sum(dim=dim, keepdim=True)
    frac = t - w
    order = torch.sort(-frac, dim=dim, stable=True).indices
    rank = torch.empty_like(order)
    shape = [1] * p.dim()
    shape[dim] = p.shape[dim]
    ar = torch.arange(p.shape[dim], device=p.device).view(shape).expand_as(order)
    rank.scatter_(dim, order, ar)
    return (w + (rank < deficit).to(w.dtype)).to(p.dtype)


def _tail(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """P(X > x) for X ~ N(0, sigma), float64, full relative precision for x >= 0."""
    return 0.5 * special.erfc(x / sigma * _SQRT1_2)


def component_bank(scales: np.ndarray, mean_steps: int = 4, mean_range: int = 8, support: int = 64,
                   precision: int = PRECISION) -> np.ndarray:
    """Integer component PMFs, int64 of shape (2M + 1, num_scales, 2R + 2); built once in float64.

    Row (j, t) is ``N(mu, scales[t])`` with ``mu = (j - M) / mean_steps`` over the symbols
    ``-R .. R`` plus the escape entry (mass outside), quantized by ``quantize_pmf``.
    """
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    if s.size == 0 or not np.isfinite(s).all() or (s <= 0).any():
        raise ModelError("component_bank needs positive finite scales")
    if mean_steps < 1 or mean_range < 0 or support < 1 or 2 * support + 2 > (1 << precision) // 2:
        raise ModelError("component_bank: invalid mean grid or support")
    m_half = mean_range * mean_steps
    mu = (np.arange(2 * m_half + 1, dtype=np.float64) - m_half) / mean_steps
    v = np.arange(-support, support + 1, dtype=np.float64)
    mu3, s3, v3 = mu[:, None, None], s[None, :, None], v[None, None, :]
    d = np.abs(v3 - mu3)
    bins = _tail(np.maximum(d - 0.5, 0.0), s3) - _tail(d + 0.5, s3)
    centre = d < 0.5  # the bin straddles the mean: both halves
    bins = np.where(centre, 1.0 - _tail(0.5 - d, s3) - _tail(d + 0.5, s3), bins)
    lo = _tail(mu3 + support + 0.5, s3)  # P(X < -R - 1/2)
    hi = _tail(support + 0.5 - mu3, s3)  # P(X > R + 1/2)
    pmf = np.concatenate([bins, (lo + hi)], axis=-1)
    out = np.empty(pmf.shape, dtype=np.int64)
    for j in range(pmf.shape[0]):
        for t in range(pmf.shape[1]):
            out[j, t] = quantize_pmf(pmf[j, t], precision)
    return out


def mix_counts(comp: np.ndarray, weights: np.ndarray, weight_bits: int, precision: int = PRECISION) -> np.ndarray:
    """Integer mixture of integer PMFs (see the module docstring), vectorised over rows.

    comp: (U, K, L) int64 component counts (rows sum to 2**precision, entries >= 1);
    weights: (U, K) int64 >= 0 summing to 2**weight_bits. Returns (U, L) int64 counts,
    entries >= 1, rows summing to exactly 2**precision.
    """
    comp = np.asarray(comp, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    mixed = np.einsum("uk,ukl->ul", weights, comp)  # integer einsum: exact int64
    q = mixed >> weight_bits
    r = mixed & ((1 << weight_bits) - 1)
    deficit = (1 << precision) - q.sum(axis=1, keepdims=True)
    order = np.argsort(-r, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(comp.shape[2])[None, :], axis=1)
    return q + (rank < deficit).astype(np.int64)


class GaussianMixtureConditional(nn.Module):
    """K-component Gaussian mixture entropy model with integer-mixed coding tables.

    forward(y, weights_logits, means, scales) with y (B, C, H, W) and parameters (B, K, C, H, W)
    -> (y_tilde, bits (B,)). Coding: ``quantize_params`` -> ``MixtureParams`` (integers) ->
    ``encode(y, params)`` / ``decode(data, params)``; ``build_tables(params)`` exposes the tables.
    Call ``export()`` once to build the stored component bank (persisted in the state dict).
    """

    scale_table: torch.Tensor
    component_counts: torch.Tensor

    def __init__(self, scales: Sequence[float] | np.ndarray | None = None, *, weight_bits: int = 8,
                 mean_steps: int = 4, mean_range: int = 8, support: int = 64,
                 likelihood_bound: float = LIKELIHOOD_BOUND, precision: int = PRECISION) -> None:
        super().__init__()
        table = scale_table(32, 0.11, 20.0) if scales is None else np.asarray(scales, dtype=np.float64).reshape(-1)
        if table.size < 2 or not np.isfinite(table).all() or (table <= 0).any() or (np.diff(table) <= 0).any():
            raise ModelError("GaussianMixtureConditional needs >= 2 positive, strictly increasing scales")
        if not 1 <= weight_bits <= 16 or mean_steps < 1 or mean_range < 0 or support < 1:
            raise ModelError("invalid weight_bits / mean grid / support")
        self.weight_bits = int(weight_bits)
        self.mean_steps = int(mean_steps)
        self.mean_range = int(mean_range)
        self.support = int(support)
        self.precision = int(precision)
        self.likelihood_bound = float(likelihood_bound)
        self.register_buffer("scale_table", torch.from_numpy(table.copy()))
        self.register_buffer("component_counts", torch.zeros(0, dtype=torch.int32))

    # ----------------------------------------------------------------------------- export
    @property
    def num_mean_bins(self) -> int:
        return 2 * self.mean_range * self.mean_steps + 1

    @torch.no_grad()
    def export(self) -> None:
        """Build the integer component bank once (float64, CPU) and store it as a buffer."""
        bank = component_bank(self.scale_table.cpu().numpy(), self.mean_steps, self.mean_range,
                              self.support, self.precision)
        self.component_counts = torch.from_numpy(bank.astype(np.int32))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        key = prefix + "component_counts"
        if key in state_dict:
            self.component_counts = torch.zeros_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def bank(self) -> np.ndarray:
        """The stored component counts, int64 (2M + 1, num_scales, 2R + 2)."""
        if self.component_counts.numel() == 0:
            raise ModelError("component tables not built: call export() (once, at export time)")
        return self.component_counts.cpu().numpy().astype(np.int64)

    # ----------------------------------------------------------------------------- training
    def _quantized_scales(self, scales: torch.Tensor) -> torch.Tensor:
        table = self.scale_table.to(device=scales.device)
        s = _lower_bound(scales, float(table[0]))
        log_t = torch.log(table)
        mids = (log_t[1:] + log_t[:-1]) / 2
        idx = torch.bucketize(torch.log(s.detach().to(torch.float64)), mids)
        s_q = table[idx].to(scales.dtype)
        return s_q * (s / s.detach())  # value s_q, gradient d s_q/ds ~ s_q / s (log-domain STE)

    def likelihood(self, y: torch.Tensor, weights_logits: torch.Tensor, means: torch.Tensor,
                   scales: torch.Tensor, quantize: bool = True) -> torch.Tensor:
        """Mixture mass of the unit bin around each value of y (B, C, ...); params (B, K, C, ...)."""
        if weights_logits.shape != means.shape or means.shape != scales.shape or means.dim() != y.dim() + 1 \
                or means.shape[0] != y.shape[0] or tuple(means.shape[2:]) != tuple(y.shape[1:]):
            raise InputError(f"mixture params must be (B, K, *y.shape[1:]), got {tuple(means.shape)} for y "
                             f"{tuple(y.shape)}")
        pi = torch.softmax(weights_logits, dim=1)
        if quantize:
            pi_q = _quantize_weights_torch(pi, self.weight_bits, dim=1) / float(1 << self.weight_bits)
            pi = pi_q + (pi - pi.detach())
            means = means + (torch.round(means * self.mean_steps) / self.mean_steps - means).detach()
            s = self._quantized_scales(scales)
        else:
            s = _lower_bound(scales, float(self.scale_table[0]))
        v = torch.abs(y.unsqueeze(1) - means)
        upper = 0.5 * torch.erfc((v - 0.5) / s * _SQRT1_2)
        lower = 0.5 * torch.erfc((v + 0.5) / s * _SQRT1_2)
        p = (pi * (upper - lower)).sum(dim=1)
        return _lower_bound(p, self.likelihood_bound)

    def forward(self, y: torch.Tensor, weights_logits: torch.Tensor, means: torch.Tensor, scales: torch.Tensor,
                training: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_tilde, bits per batch item (B,)): y + U(-1/2, 1/2) in training, round(y) otherwise
        (exactly what ``decode`` reconstructs); bits = sum of -log2 p(y_tilde)."""
        training = self.training if training is None else training
        y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5) if training else torch.round(y)
        lik = self.likelihood(y_tilde, weights_logits, means, scales)
        return y_tilde, -torch.log2(lik).flatten(1).sum(dim=1)

    # ----------------------------------------------------------------------------- coding
    @torch.no_grad()
    def quantize_params(self, weights_logits: torch.Tensor | np.ndarray, means: torch.Tensor | np.ndarray,
                        scales: torch.Tensor | np.ndarray) -> MixtureParams:
        """Float parameters (B, K, ...) -> integers (float reference of the side network's output)."""
        as_np = lambda t: (t.detach().cpu().to(torch.float64).numpy() if isinstance(t, torch.Tensor)  # noqa: E731
                           else np.asarray(t, dtype=np.float64))
        logits, mu, s = as_np(weights_logits), as_np(means), as_np(scales)
        if not (np.isfinite(logits).all() and np.isfinite(mu).all() and np.isfinite(s).all()):
            raise InputError("mixture parameters must be finite")
        w = quantize_weights(logits, self.weight_bits, axis=1)
        mean_q = np.clip(np.round(mu * self.mean_steps), -(2**40), 2**40).astype(np.int64)
        log_t = np.log(self.scale_table.cpu().numpy())
        idx = np.searchsorted((log_t[1:] + log_t[:-1]) / 2, np.log(np.maximum(s, 1e-300)), side="right")
        return MixtureParams(w, mean_q, idx.astype(np.int64))

    def _check(self, p: MixtureParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w, m, t = (np.asarray(a) for a in (p.weights, p.mean_q, p.scale_idx))
        if w.shape != m.shape or m.shape != t.shape or w.ndim < 2:
            raise InputError("MixtureParams arrays must share one shape (B, K, ...)")
        w, m, t = (a.astype(np.int64) for a in (w, m, t))
        if (w < 0).any() or (w.sum(axis=1) != (1 << self.weight_bits)).any():
            raise InputError(f"mixture weights must be >= 0 and sum to 2**{self.weight_bits}")
        if (t < 0).any() or (t >= self.scale_table.numel()).any() or (np.abs(m) > 2**40).any():
            raise InputError("scale index or mean out of range")
        return w, m, t

    def centres(self, params: MixtureParams) -> np.ndarray:
        """Integer centre per latent (B, ...): weighted mean of the means, rounded half up."""
        w, m, _ = self._check(params)
        den = (1 << self.weight_bits) * self.mean_steps
        num = (w * m).sum(axis=1)
        return np.floor_divide(2 * num + den, 2 * den)

    def build_tables(self, params: MixtureParams, max_tables: int | None = None) -> tuple[CodingTables, np.ndarray]:
        """One mixed integer table per unique parameter tuple -> (CodingTables, indexes (B, ...))."""
        w, m, t = self._check(params)
        k = w.shape[1]
        c = self.centres(params)
        half = self.mean_range * self.mean_steps
        mbin = np.clip(m - c[:, None] * self.mean_steps, -half, half) + half
        # flatten to (N, K) and canonicalise: zero weights -> (0, 0, 0); sort components by a code
        w2, b2, t2 = (np.moveaxis(a, 1, -1).reshape(-1, k) for a in (w, mbin, t))
        zero = w2 == 0
        b2, t2 = np.where(zero, 0, b2), np.where(zero, 0, t2)
        nb, ns = self.num_mean_bins, int(self.scale_table.numel())
        code = (w2 * nb + b2) * ns + t2  # < 2**16 * 2**20 for sane configs
        code = -np.sort(-code, axis=1)
        uniq, inverse = np.unique(code, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        if max_tables is not None and uniq.shape[0] > max_tables:
            raise ModelError(f"{uniq.shape[0]} distinct mixture tables exceed max_tables={max_tables}")
        uw, rest = np.divmod(uniq, nb * ns)
        ub, ut = np.divmod(rest, ns)
        bank = self.bank()
        mixed = mix_counts(bank[ub, ut], uw, self.weight_bits, self.precision)
        u = mixed.shape[0]
        tables = CodingTables(self.precision, mixed, np.full(u, -self.support), np.full(u, mixed.shape[1]))
        return tables, inverse.reshape(c.shape)

    def encode(self, y: torch.Tensor | np.ndarray, params: MixtureParams,
               max_tables: int | None = None) -> bytes:
        """Range-code ``round(y) - centre`` (y: (B, C, ...)) with the mixed tables."""
        y_np = y.detach().cpu().to(torch.float64).numpy() if isinstance(y, torch.Tensor) else np.asarray(y, np.float64)
        if not np.isfinite(y_np).all():
            raise InputError("latents must be finite")
        tables, idx = self.build_tables(params, max_tables)
        if idx.shape != y_np.shape:
            raise InputError(f"latents {y_np.shape} do not match parameters {idx.shape}")
        symbols = np.round(y_np).astype(np.int64) - self.centres(params)
        return encode_symbols(symbols, idx, tables)

    def decode(self, data: bytes, params: MixtureParams, max_tables: int | None = None) -> torch.Tensor:
        """Inverse of ``encode``: ``round(y)`` as float32 (B, C, ...)."""
        tables, idx = self.build_tables(params, max_tables)
        symbols = decode_symbols(data, idx.reshape(-1), tables).reshape(idx.shape)
        return torch.from_numpy((symbols + self.centres(params)).astype(np.float32))
