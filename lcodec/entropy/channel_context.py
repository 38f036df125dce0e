"""Channel-conditional refinement of a mean-scale hyperprior (Minnen & Singh, "Channel-wise
autoregressive entropy models for learned image compression", ICIP 2020), with the table
choice kept exact.

The latents y (B, C, h, w) are coded in ``S`` slices of ``C / S`` channels, one after the
other. For slice ``s`` the decoder already has the symbols of slices ``< s``, so both sides
can condition on them:

* table indexes: an integer convolution (``IntegerConv``, 3x3) of the hyperprior's hidden
  integer features (the index network's first layer, ``H`` channels, fixed point 1/16) and
  the magnitudes of the earlier slices' symbols, ``16 * min(|symbol|, 15)`` (the same fixed
  point). Integers in, integers out: the index of every latent is a pure function of the
  stream, as for the plain hyperprior (``lcodec.entropy.integer_net``).
* means: a float correction ``delta_s`` (conv3x3, GELU, conv3x3) of the earlier slices'
  decoded residuals ``r_hat = symbol + delta``, added to the hyperprior means. Means only
  shift symbols (``symbol = round(y - mean)``, ``y_hat = symbol + mean``); they run in float64
  on CPU on both sides and never pick a table.

Initialised from a trained hyperprior (``init_from_head``): every head starts as the rows of
the index network's head for its slice with zero weights on the context, and every mean
correction starts at zero, so the model starts as the plain hyperprior and training only
adds what the context is worth.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from lcodec.entropy.integer_net import IntegerConv
from lcodec.errors import ModelError
from lcodec.models.cpu import run_on_cpu

__all__ = ["ChannelContext", "CONTEXT_CLAMP"]

CONTEXT_CLAMP = 15  # symbol magnitudes above this read as 15 (16 * 15 = 240 fits the heads' 8-bit input)


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class ChannelContext(nn.Module):
    """Per-slice index heads and mean corrections (see the module docstring).

    channels: C (latent channels), slices: S (divides C), hidden_channels: H of the index
    network's hidden features (integers in [0, 255], 4 fractional bits), num_indexes: the
    scale table's size, mean_hidden: width of each mean correction (0: none, the context
    then only chooses tables).
    """

    band_positions = 2**15  # latent positions per band of the exact heads (bounds their memory)

    def __init__(self, channels: int, slices: int, hidden_channels: int, num_indexes: int,
                 mean_hidden: int = 128, extra: bool = False) -> None:
        super().__init__()
        if slices < 2 or channels % slices:
            raise ModelError(f"channel context needs >= 2 slices dividing {channels} channels, got {slices}")
        self.channels, self.slices, self.hidden_channels = channels, slices, hidden_channels
        self.width = channels // slices
        self.extra = extra
        cs = self.width
        self.heads = nn.ModuleList([
            IntegerConv(hidden_channels + cs * (s + extra), cs, 3, input_range=(0, 255), in_frac=4, out_frac=0,
                        out_max=num_indexes - 1, bias_init=(num_indexes - 1) / 2)
            for s in range(slices)])
        self.means = nn.ModuleList()
        for s in range(1, slices if mean_hidden else 1):  # mean_hidden 0: no mean corrections
            net = nn.Sequential(nn.Conv2d(cs * s, mean_hidden, 3, padding=1), nn.GELU(),
                                nn.Conv2d(mean_hidden, cs, 3, padding=1))
            nn.init.zeros_(net[2].weight)
            nn.init.zeros_(net[2].bias)
            self.means.append(net)

    @torch.no_grad()
    def init_from_head(self, head: IntegerConv) -> None:
        """Start every slice's head as ``head``'s rows for its channels, blind to the context."""
        if head.out_channels != self.channels or head.in_channels != self.hidden_channels or head.kernel_size != 3:
            raise ModelError("the index head does not match this channel context")
        for s, h in enumerate(self.heads):
            rows = slice(s * self.width, (s + 1) * self.width)
            h.weight.zero_()
            h.weight[:, : self.hidden_channels] = head.weight[rows]
            h.bias.copy_(head.bias[rows])

    @staticmethod
    def context(symbols: list[torch.Tensor]) -> list[torch.Tensor]:
        """Earlier slices' symbols -> the heads' context input, 16 * min(|symbol|, 15)."""
        return [s.abs().clamp(max=CONTEXT_CLAMP) * 16 for s in symbols]

    # ------------------------------------------------------------------ training path
    def head_inputs(self, s: int, hidden: torch.Tensor, symbols: list[torch.Tensor],
                extra: torch.Tensor | None) -> list[torch.Tensor]:
        """Head ``s``'s inputs: hidden features, this slice's channels of ``extra`` (if the context
        has them: integer features in the heads' fixed point, from outside the frame), earlier slices."""
        if self.extra != (extra is not None):
            raise ModelError("this channel context " + ("needs" if self.extra else "takes no") + " extra features")
        own = [extra[:, s * self.width : (s + 1) * self.width]] if extra is not None else []
        return [hidden, *own, *self.context(symbols)]

    def forward(self, y: torch.Tensor, means: torch.Tensor, hidden: torch.Tensor,
                likelihood_bits: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                scales_from_indexes: Callable[[torch.Tensor], torch.Tensor],
                extra: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_dec, bits per item (B,)) with straight-through rounding; ``likelihood_bits(y, scales,
        means)`` is the Gaussian conditional's training path (noisy in training mode)."""
        cs = self.width
        bits = y.new_zeros(y.shape[0])
        decoded, symbols, residuals = [], [], []
        for s in range(self.slices):
            rows = slice(s * cs, (s + 1) * cs)
            delta = self.means[s - 1](torch.cat(residuals, 1)) if s and self.means else torch.zeros_like(y[:, rows])
            mean = means[:, rows] + delta
            index = self.heads[s](torch.cat(self.head_inputs(s, hidden, symbols, extra), 1))
            bits = bits + likelihood_bits(y[:, rows], scales_from_indexes(index), mean)
            symbol = _ste_round(y[:, rows] - mean)
            decoded.append(symbol + mean)
            symbols.append(symbol.detach())
            residuals.append(symbol.detach() + delta)
        return torch.cat(decoded, 1), bits

    # --------------------------------------------------------------------- exact path
    def _delta64(self, s: int, residuals: list[torch.Tensor]) -> torch.Tensor:
        return run_on_cpu(self.means[s - 1], torch.cat(residuals, 1))

    @torch.no_grad()
    def indexes(self, s: int, hidden: torch.Tensor, symbols: list[torch.Tensor],
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """Exact table indexes of slice ``s`` (int64, CPU) from the hidden integer features
        (float64 integers), the extra integer features if any and the integer symbols of slices ``< s``."""
        return self._exact(self.heads[s], hidden, symbols, extra, s)

    @torch.no_grad()
    def _exact(self, head: IntegerConv, hidden: torch.Tensor, symbols: list[torch.Tensor],
               extra: torch.Tensor | None = None, s: int = 0) -> torch.Tensor:
        """An integer head's exact output (int64, CPU) on the hidden features and the context."""
        dev = next(head.parameters()).device
        inputs = torch.cat([t.double() for t in self.head_inputs(s, hidden, symbols, extra)], 1)
        b, _, h, w = inputs.shape
        out = torch.empty((b, self.width, h, w), dtype=torch.int64)
        rows = max(1, self.band_positions // w)  # bands of rows (halo 1 for the 3x3 head) bound the memory
        for i in range(b):
            for r0 in range(0, h, rows):
                r1 = min(h, r0 + rows)
                s0, s1 = max(0, r0 - 1), min(h, r1 + 1)
                band = head.forward_exact(inputs[i : i + 1, :, s0:s1].to(dev))
                out[i : i + 1, :, r0:r1] = band[:, :, r0 - s0 : r1 - s0].to(torch.int64).cpu()
        return out

    @torch.no_grad()
    def slice_indexes(self, hidden: torch.Tensor, symbols: list[torch.Tensor],
                      extra: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Table indexes of every slice from all slices' symbols at once (an encoder that already
        has them): slice s reads only the symbols of slices < s, as the decoder will."""
        return [self.indexes(s, hidden, symbols[:s], extra) for s in range(self.slices)]

    @torch.no_grad()
    def encode(self, y64: torch.Tensor, means64: torch.Tensor, hidden: torch.Tensor,
               extra: torch.Tensor | None = None,
               reconstruction: torch.Tensor | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """float64 y and hyperprior means, hidden features -> (symbols per slice, indexes per slice,
        y_hat float64), everything on CPU. ``reconstruction``: the means y_hat adds instead of
        ``means64`` (the decoder's fixed-point means, as ``decode`` is given them)."""
        cs = self.width
        symbols, indexes, residuals = [], [], []
        for s in range(self.slices):
            rows = slice(s * cs, (s + 1) * cs)
            delta = self._delta64(s, residuals) if s and self.means else torch.zeros_like(y64[:, rows])
            indexes.append(self.indexes(s, hidden, symbols, extra))
            symbol = torch.round(y64[:, rows] - means64[:, rows] - delta)
            symbols.append(symbol.to(torch.int64))
            residuals.append(symbol + delta)
        return symbols, indexes, (means64 if reconstruction is None else reconstruction) + torch.cat(residuals, 1)

    @torch.no_grad()
    def decode(self, means64: torch.Tensor, hidden: torch.Tensor, read: Callable[[int, torch.Tensor], torch.Tensor],
               extra: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Inverse of ``encode``: ``read(s, indexes)`` returns slice ``s``'s symbols (int64) coded
        with those table indexes. Returns (symbols per slice, y_hat float64)."""
        cs = self.width
        symbols, residuals = [], []
        for s in range(self.slices):
            rows = slice(s * cs, (s + 1) * cs)
            delta = self._delta64(s, residuals) if s and self.means else torch.zeros_like(means64[:, rows])
            symbol = read(s, self.indexes(s, hidden, symbols, extra))
            symbols.append(symbol)
            residuals.append(symbol.double() + delta)
        return symbols, means64 + torch.cat(residuals, 1)
