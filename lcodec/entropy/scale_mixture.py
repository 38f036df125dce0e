"""Two-component Gaussian mixture conditional on the channel context, coded with STORED integer
tables (Cheng et al. 2020's mixture idea, restricted so that every table is known in advance).

Per latent, the side network (integer heads on the hyperprior's hidden integer features and the
earlier slices' symbols, as in ``lcodec.entropy.channel_context``) outputs three INTEGERS:

* ``a`` in ``[0, T - 1]``: the narrow component's scale, ``scale_table[a]``;
* ``d`` in ``[0, D - 1]``: the wide component's scale, ``scale_table[min(a + spreads[d], T - 1)]``;
* ``w`` in ``[0, L - 1]``: the narrow component's weight ``(w + 1) / L`` (``w = L - 1``: weight 1,
  a single Gaussian).

Both components share the hyperprior mean (symbols stay ``round(y - mean)`` and the reconstruction
is the rd codec's, whatever the tables): the model is a Gaussian *scale* mixture, heavier-tailed
than one Gaussian where the side information is unsure of the scale. Mixtures are offered for
``scale_table[a] <= mixture_max_scale`` (9 by default); wider latents are rare and keep a
single Gaussian, which bounds the tables' size.

Tables (built once at export, stored with the weights, never re-derived at decode time):

* tables ``0 .. T-1``: the single Gaussians, exactly ``gaussian_tables(scale_table)``;
* then one table per (a <= mixture_max, d, w < L - 1): both components as integer PMFs over the
  wide one's support (``quantize_pmf``: every entry >= 1, rows summing to ``2**16``), mixed with
  the integer weights ``w + 1`` and ``L - 1 - w`` by ``mix_counts`` (exact int64 arithmetic).

``table_index(a, d, w)`` maps the three integers to a table with integer arithmetic only, so the
table of every latent is a pure function of the stream, as for the single-Gaussian context.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import special
from torch import nn

from lcodec.bitstream.tables import PRECISION, CodingTables, quantize_pmf
from lcodec.entropy.channel_context import ChannelContext
from lcodec.entropy.gaussian import LIKELIHOOD_BOUND, _lower_bound, gaussian_tables, indexes_to_scales
from lcodec.entropy.integer_net import IntegerConv
from lcodec.entropy.mixture import mix_counts
from lcodec.errors import ModelError

__all__ = ["ScaleMixtureContext"]

_SQRT1_2 = math.sqrt(0.5)


def _bin_mass(v: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Mass of N(0, scale) on [v - 1/2, v + 1/2] (float, differentiable in scale), from the upper
    tail of |v| for accuracy."""
    a = v.abs()
    upper = 0.5 * torch.erfc((a - 0.5) / scales * _SQRT1_2)
    lower = 0.5 * torch.erfc((a + 0.5) / scales * _SQRT1_2)
    return upper - lower


def _symmetric_pmf(sigma: float, half: int) -> np.ndarray:
    """N(0, sigma) on the symbols -half .. half plus the escape mass outside (float64)."""
    k = np.arange(half + 1, dtype=np.float64)
    upper = 0.5 * special.erfc((k + 0.5) / sigma * _SQRT1_2)
    lower = 0.5 * special.erfc(np.maximum(k - 0.5, 0.0) / sigma * _SQRT1_2)
    side = lower - upper
    return np.concatenate([side[:0:-1], [2.0 * side[0]], side[1:], [2.0 * upper[-1]]])


class ScaleMixtureContext(ChannelContext):
    """Channel context whose tables are two-component scale mixtures (module docstring).

    ``heads`` (inherited) give the narrow scale ``a``; ``spread_heads`` give ``d`` and
    ``weight_heads`` give ``w``. The context only picks tables (no mean corrections).
    """

    def __init__(self, channels: int, slices: int, hidden_channels: int, scales: Sequence[float] | np.ndarray,
                 spreads: Sequence[int] = (4, 8, 12, 16), weight_levels: int = 8, mixture_max_scale: float = 9.0,
                 tail_mass: float = 1e-9) -> None:
        table = np.asarray(scales, dtype=np.float64).reshape(-1)
        super().__init__(channels, slices, hidden_channels, table.size, mean_hidden=0)
        if not spreads or min(spreads) < 1 or weight_levels < 2 or not table[0] <= mixture_max_scale:
            raise ModelError("scale mixture: spreads must be >= 1, weight_levels >= 2, and mixture_max_scale at "
                             "least the smallest scale")
        self.spreads = tuple(int(s) for s in spreads)
        self.weight_levels = int(weight_levels)
        # narrow scales up to mixture_max_scale get mixtures (index 40 of the rd table, scale 8.7)
        self.mixture_max = int(np.searchsorted(table, mixture_max_scale, side="right")) - 1
        self.tail_mass = float(tail_mass)
        self.register_buffer("scale_table", torch.from_numpy(table.copy()))
        self.register_buffer("spread_values", torch.tensor(self.spreads, dtype=torch.int64))
        cs, d, lv = self.width, len(self.spreads), self.weight_levels

        def heads(out_max: int, bias: float) -> nn.ModuleList:
            return nn.ModuleList([
                IntegerConv(hidden_channels + cs * s, cs, 3, input_range=(0, 255), in_frac=4, out_frac=0,
                            out_max=out_max, bias_init=bias) for s in range(slices)])

        self.spread_heads = heads(d - 1, (d - 1) / 2)
        self.weight_heads = heads(lv - 1, lv - 1.4)  # start as one Gaussian (w rounds to L - 1), off the clip
        for h in (*self.spread_heads, *self.weight_heads):
            nn.init.zeros_(h.weight)  # blind at first: the fit learns when to mix

    # ------------------------------------------------------------------ tables
    @property
    def num_tables(self) -> int:
        return self.scale_table.numel() + (self.mixture_max + 1) * len(self.spreads) * (self.weight_levels - 1)

    def table_index(self, a: torch.Tensor, d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Integer (a, d, w) -> table index, int64 arithmetic only."""
        a, d, w = (t.to(torch.int64) for t in (a, d, w))
        single = (w == self.weight_levels - 1) | (a > self.mixture_max)
        mixed = self.scale_table.numel() + (a * len(self.spreads) + d) * (self.weight_levels - 1) + w
        return torch.where(single, a, mixed)

    @torch.no_grad()
    def tables(self, precision: int = PRECISION) -> CodingTables:
        """All coding tables (float64 component PMFs -> integers -> integer mixing); once, at export."""
        scales = self.scale_table.cpu().numpy()
        single = gaussian_tables(scales, self.tail_mass, precision)
        z = -float(special.ndtri(self.tail_mass / 2))
        top = scales.size - 1
        half = [max(1, math.ceil(z * float(s) - 0.5)) for s in scales]
        rows, offsets = [], []
        for a in range(self.mixture_max + 1):
            for spread in self.spreads:
                b = min(a + spread, top)
                k = max(half[a], half[b])
                comp = np.stack([quantize_pmf(_symmetric_pmf(float(scales[a]), k), precision),
                                 quantize_pmf(_symmetric_pmf(float(scales[b]), k), precision)])
                for w in range(self.weight_levels - 1):
                    weights = np.array([[w + 1, self.weight_levels - 1 - w]], dtype=np.int64)
                    rows.append(self._mix(comp, weights, precision))
                    offsets.append(-k)
        width = max(single.counts.shape[1], max(r.size for r in rows))
        counts = np.zeros((single.num_tables + len(rows), width), dtype=np.int64)
        counts[: single.num_tables, : single.counts.shape[1]] = single.counts
        for t, r in enumerate(rows):
            counts[single.num_tables + t, : r.size] = r
        lengths = np.concatenate([single.lengths, [r.size for r in rows]])
        return CodingTables(precision, counts, np.concatenate([single.offsets, offsets]), lengths)

    def _mix(self, comp: np.ndarray, weights: np.ndarray, precision: int) -> np.ndarray:
        """Integer mixture of two component count rows; weights sum to L, a power of two or not:
        the weights are rescaled to 2**W exactly when L is one, else mixed and re-normalised."""
        bits = int(math.log2(self.weight_levels))
        if 1 << bits == self.weight_levels:
            return mix_counts(comp[None], weights, bits, precision)[0]
        mixed = (weights[0, :, None] * comp).sum(0)  # exact int64, then exact-integer renormalisation
        return quantize_pmf(mixed.astype(np.float64), precision)

    # ------------------------------------------------------------------ training path
    def _params(self, s: int, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.heads[s](inputs), self.spread_heads[s](inputs), self.weight_heads[s](inputs)

    def symbol_bits(self, symbols: torch.Tensor, a: torch.Tensor, d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """-log2 p(symbols) per element under the mixture the integers (a, d, w) pick (float
        values with straight-through gradients on the training path)."""
        table = self.scale_table.to(a.device)
        top = table.numel() - 1
        spread = self.spread_values.to(a.device)
        # spreads are interpolated linearly between their integer positions for the gradient
        d_int = d.detach().round().clamp(0, len(self.spreads) - 1).to(torch.int64)
        b = (a + spread[d_int].to(a.dtype) + (d - d.detach()) * float(self.spreads[-1] - self.spreads[0])
             / max(1, len(self.spreads) - 1))
        b = b + (b.detach().clamp(max=top) - b.detach())  # the value clamps, the gradient stays
        sa, sb = indexes_to_scales(a, table), indexes_to_scales(b, table)
        lam = (w + 1) / self.weight_levels
        lam = torch.where(a.detach() > self.mixture_max, torch.ones_like(lam), lam)
        p = lam * _bin_mass(symbols, sa) + (1 - lam) * _bin_mass(symbols, sb)
        return -torch.log2(_lower_bound(p, LIKELIHOOD_BOUND))

    def forward(self, y: torch.Tensor, means: torch.Tensor, hidden: torch.Tensor,
                likelihood_bits=None, scales_from_indexes=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_dec, bits per item (B,)): the exact rate of the rounded symbols ``round(y - mean)``
        (straight-through rounding; this context is fitted onto a frozen transform, where the
        coded rate needs no noise relaxation). The two callbacks of the base are not used."""
        cs = self.width
        bits = y.new_zeros(y.shape[0])
        decoded, symbols = [], []
        for s in range(self.slices):
            rows = slice(s * cs, (s + 1) * cs)
            symbol = y[:, rows] - means[:, rows]
            symbol = symbol + (torch.round(symbol) - symbol).detach()
            a, d, w = self._params(s, torch.cat([hidden, *self.context(symbols)], 1))
            bits = bits + self.symbol_bits(symbol.detach(), a, d, w).flatten(1).sum(1)
            decoded.append(symbol + means[:, rows])
            symbols.append(symbol.detach())
        return torch.cat(decoded, 1), bits

    # ------------------------------------------------------------------ exact path
    @torch.no_grad()
    def indexes(self, s: int, hidden: torch.Tensor, symbols: list[torch.Tensor],
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """Exact table indexes of slice ``s`` (int64, CPU): the three integer heads, then
        ``table_index``."""
        a, d, w = (self._exact(h[s], hidden, symbols, extra, s) for h in (self.heads, self.spread_heads,
                                                                            self.weight_heads))
        return self.table_index(a, d, w)
