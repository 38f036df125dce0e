"""A spatiotemporal entropy model for the latents of a frame given the previous frame (the
entropy-model role, ``lcodec.entropy.model``), in the spirit of STEM (Liu et al.,
"Spatiotemporal entropy model is all you need for learned video compression", 2021): no motion
estimation, the frame's own image latents coded conditionally on the previous frame's.

It extends an intra model, a ``MeanScaleHyperprior`` with channel context (``base``: walloc-rgb-rd's,
shared, not copied). Every frame has an integer state k = round(y - base means), the symbols the
intra model would code, so every frame reconstructs exactly as the intra model reconstructs it
(y_hat = k + base means) and only the rate depends on the mode. For frame t::

    encoder:  z = round(base.h_a(y)) -> section 1 (base's z tables); k = base's symbols of y given z
              flags: per block of ``block`` x ``block`` positions, the mode with fewer bits
    both:     per channel slice s, per position:
                intra mode:    code k            table index from the base's heads(hidden, |earlier k|)
                temporal mode: code k - k(t-1)   table index from own heads(hidden, |k(t-1)|, |earlier k|)
              y_hat = k + base means

The latents of a trained WaLLoC transform are sparse (1-10% of them round to non-zero), so where
the previous frame had non-zero values is what tells the coder where this frame's bits go, and a
static region's symbols repeat: |k(t-1)| is the temporal context of the temporal mode's tables,
and k(t-1) its prediction. Both are integers from the stream, as are the flags, z and the earlier
slices' states, so the symbols decode identically on every machine (DESIGN.md, "Determinism"),
with no float prediction at all (a float temporal mean, tried first, shifts the quantizer off the
intra model's lattice and cost 0.7 dB on BasketballPass).

Own tensors: the temporal heads only (``init_from_base``: the base's heads with zero weights on
the temporal context). ``lcodec.train.video_prior`` fits them on cached latents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from lcodec.entropy.channel_context import ChannelContext
from lcodec.entropy.hyperprior import MeanScaleHyperprior
from lcodec.entropy.model import ste_round
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.walloc import ConfigDict

__all__ = ["FrameState", "TemporalConfig", "TemporalHyperprior", "state_features"]

CONTEXT_CLAMP = 15


class FrameState(NamedTuple):
    """What the next frame is coded against: the decoded latents (float64) and the integer state k."""

    y_hat: torch.Tensor
    k: torch.Tensor


def state_features(k: torch.Tensor) -> torch.Tensor:
    """Integer state -> the context heads' fixed-point input, 16 * min(|k|, 15)."""
    return k.abs().clamp(max=CONTEXT_CLAMP) * 16


@dataclass(frozen=True)
class TemporalConfig(ConfigDict):
    """The temporal parts' settings (stored in every checkpoint; never inferred)."""

    context_slices: int = 4  # must equal the base's channel slices
    block: int = 4  # latent positions per side of a mode block (one flag: intra or temporal mode)


class TemporalHyperprior(nn.Module):
    """p(k_t | z_t, k_{t-1}) over an intra model ``base`` (module docstring). ``forward`` is the
    training path; ``encode`` / ``decode`` code one frame exactly."""

    downsample = 2

    def __init__(self, base: MeanScaleHyperprior, cfg: TemporalConfig = TemporalConfig()) -> None:
        super().__init__()
        if base.dims != 2 or base.context is None or base.hyper.context_mixture or base.context.means:
            raise ModelError("the temporal prior extends a 2-D hyperprior whose channel context only picks tables")
        if base.context.slices != cfg.context_slices:
            raise ModelError(f"the base codes {base.context.slices} slices, the config says {cfg.context_slices}")
        object.__setattr__(self, "base", base)  # shared with the intra codec: not a submodule, not stored twice
        self.cfg, self.channels = cfg, base.channels
        self.context = ChannelContext(base.channels, cfg.context_slices, base.hyper.index_hidden,
                                      base.hyper.num_scales, mean_hidden=0, extra=True)
        self.init_from_base()

    @torch.no_grad()
    def init_from_base(self) -> None:
        """Every head as the base's head for its slice, blind to the temporal context."""
        hid, cs = self.context.hidden_channels, self.context.width
        for ours, theirs in zip(self.context.heads, self.base.context.heads):
            ours.weight.zero_()
            ours.weight[:, :hid] = theirs.weight[:, :hid]
            ours.weight[:, hid + cs :] = theirs.weight[:, hid:]
            ours.bias.copy_(theirs.bias)

    @property
    def num_sections(self) -> int:
        """Sections of one frame: block flags + z, then one per channel slice (as the base's)."""
        return 1 + self.context.slices

    def _check(self, shape: tuple[int, ...], rate: int) -> None:
        if len(shape) != 4 or shape[1] != self.channels or shape[2] % 2 or shape[3] % 2:
            raise ModelError(f"temporal prior codes (B, {self.channels}, even h, even w) latents, got {shape}")
        if self.base.rate_priors is not None and not 0 <= rate < len(self.base.rate_priors):
            raise ModelError(f"rate point {rate} outside 0..{len(self.base.rate_priors) - 1}")

    # ------------------------------------------------------------ training path
    def forward(self, y: torch.Tensor, prev_k: torch.Tensor, rates: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The training path: (y_hat, {"y": bits (B,), "z": bits (B,)}) of the rounded symbols, each
        mode block charged the cheaper of its two modes as the encoder's ``choose`` does (the
        temporal heads carry the gradient; the base is frozen), given the previous frame's integer
        state; ``rates`` (B,) picks z's priors."""
        base, b, cs = self.base, self.cfg.block, self.context.width
        g = base.gaussian
        with torch.no_grad():
            z_hat = torch.round(base.h_a(y))
            z_bits = base._z_bits(z_hat, rates)
            hidden = base.index_net.layers[0](z_hat)
            means = base.h_m(z_hat)
            k = torch.round(y - means)
        extra = state_features(prev_k).to(y.dtype)
        ks = list(k.split(cs, 1))
        intra, temporal = 0.0, 0.0
        for s in range(self.context.slices):
            rows = slice(s * cs, (s + 1) * cs)
            with torch.no_grad():
                scales = g.scales_from_indexes(base.context.heads[s](torch.cat([hidden, *ChannelContext.context(ks[:s])], 1)))
                intra = intra + -torch.log2(g.likelihood(ks[s], scales)).sum(1, keepdim=True)
            index = self.context.heads[s](torch.cat(self.context.head_inputs(s, hidden, ks[:s], extra), 1))
            temporal = temporal + -torch.log2(g.likelihood(ks[s] - prev_k[:, rows], g.scales_from_indexes(index))).sum(
                1, keepdim=True)
        pool = lambda t: nn.functional.avg_pool2d(t, b, ceil_mode=True, divisor_override=1)  # noqa: E731  (block sums)
        y_bits = torch.minimum(pool(temporal), pool(intra)).flatten(1).sum(1)
        return k + means, {"y": y_bits, "z": z_bits}

    # ------------------------------------------------------------ exact pieces
    def blocks(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """Mode blocks of a latent grid (B, C, h, w): (rows, columns), ``cfg.block`` positions a side."""
        b = self.cfg.block
        return -(-shape[2] // b), -(-shape[3] // b)

    def _expand(self, flags: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """(B, 1, rows, cols) block flags -> (B, 1, h, w) position flags."""
        b = self.cfg.block
        return flags.repeat_interleave(b, 2).repeat_interleave(b, 3)[..., : shape[2], : shape[3]]

    def _code(self, hidden: torch.Tensor, prev_k: torch.Tensor, flags: torch.Tensor,
              symbol_of: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]):
        """The slice loop both sides run, per position in the mode ``flags`` (B, 1, h, w) give;
        ``symbol_of(s, indexes, offset)`` gives slice s's coded symbols (the encoder: its states minus
        ``offset``; the decoder reads them). -> (coded symbols, indexes, states), one entry per slice."""
        cs = self.context.width
        extra = state_features(prev_k).double()
        symbols, indexes, states = [], [], []
        everywhere, nowhere = bool(flags.all()), not bool(flags.any())  # one mode: one set of heads runs
        for s in range(self.context.slices):
            rows = slice(s * cs, (s + 1) * cs)
            if everywhere or nowhere:
                index = (self.context.indexes(s, hidden, states, extra) if everywhere
                         else self.base.context.indexes(s, hidden, states))
            else:
                index = torch.where(flags, self.context.indexes(s, hidden, states, extra),
                                    self.base.context.indexes(s, hidden, states))
            offset = torch.where(flags, prev_k[:, rows], 0)
            symbol = symbol_of(s, index, offset)
            indexes.append(index)
            symbols.append(symbol)
            states.append(symbol + offset)
        return symbols, indexes, states

    def _element_bits(self, symbols: list[torch.Tensor], indexes: list[torch.Tensor]) -> torch.Tensor:
        g = self.base.gaussian
        scales = g.scale_table.cpu()[torch.cat(indexes, 1)]
        return -torch.log2(g.likelihood(torch.cat(symbols, 1).double(), scales)).sum(1, keepdim=True)

    def _analyse(self, y64: torch.Tensor, prev_k: torch.Tensor):
        """Encoder: (z, the frame's states (the base's symbols), hidden features, block flags): each
        block takes the mode whose symbols cost fewer bits (each mode's bits estimated with the whole
        frame in that mode)."""
        base, cs = self.base, self.context.width
        z = base.hyper_analysis(y64)
        k = base.symbols(y64, z)
        hidden = base.hidden(z)
        bits = []
        for mode in (False, True):
            flags = torch.full((k.shape[0], 1, *k.shape[2:]), mode)
            sym, idx, _ = self._code(hidden, prev_k, flags, lambda s, i, o: k[:, s * cs : (s + 1) * cs] - o)
            bits.append(nn.functional.avg_pool2d(self._element_bits(sym, idx), self.cfg.block, ceil_mode=True))
        return z, k, hidden, bits[1] < bits[0]

    def _flag_bytes(self, shape: tuple[int, ...]) -> int:
        rows, cols = self.blocks(shape)
        return -(-shape[0] * rows * cols // 8)

    @torch.no_grad()
    def encode(self, y64: torch.Tensor, prev_k: torch.Tensor, rate: int) -> tuple[list[bytes], FrameState]:
        """float64 latents of this frame and the previous frame's integer state -> (sections, this
        frame's state). Section 0 is the block flags (one bit per block, ``np.packbits`` order) followed by
        z's payload."""
        self._check(tuple(y64.shape), rate)
        base, shape, cs = self.base, tuple(y64.shape), self.context.width
        z, k, hidden, flags = self._analyse(y64, prev_k)
        symbols, indexes, _ = self._code(hidden, prev_k, self._expand(flags, shape),
                                         lambda s, i, o: k[:, s * cs : (s + 1) * cs] - o)
        sections = base.payloads(z, symbols, indexes, rate)
        sections[0] = np.packbits(flags.numpy().reshape(-1)).tobytes() + sections[0]
        return sections, FrameState(k.double() + base.reconstruction_means(z), k)

    @torch.no_grad()
    def decode(self, sections: list[bytes], shape: tuple[int, ...], prev_k: torch.Tensor, rate: int,
               what: str = "frame") -> FrameState:
        """Inverse of ``encode``: -> this frame's state (decoded latents float64, integer state)."""
        self._check(shape, rate)
        if len(sections) != self.num_sections:
            raise ModelError(f"{what}: expected {self.num_sections} sections, got {len(sections)}")
        base = self.base
        nflag = self._flag_bytes(shape)
        if len(sections[0]) < nflag:
            raise BitstreamError(f"{what}: its block flags are truncated")
        rows, cols = self.blocks(shape)
        flags = np.unpackbits(np.frombuffer(sections[0][:nflag], dtype=np.uint8))[: shape[0] * rows * cols]
        flags = torch.from_numpy(flags.astype(bool).reshape(shape[0], 1, rows, cols))
        sections = [sections[0][nflag:], *sections[1:]]
        base.check_sections(tuple(sections), shape, rate, self.channels, what)
        z, read = base.readers(tuple(sections), shape, rate, what)
        _, _, states = self._code(base.hidden(z), prev_k, self._expand(flags, shape), lambda s, i, _o: read(s, i))
        k = torch.cat(states, 1)
        return FrameState(k.double() + base.reconstruction_means(z), k)

    @torch.no_grad()
    def estimate_bits(self, y64: torch.Tensor, prev_k: torch.Tensor, rate: int) -> dict[str, float]:
        """The model's own (float) estimate of the frame's payload in bits, {"y": ..., "z": ...,
        "flags": ...}."""
        base, shape, cs = self.base, tuple(y64.shape), self.context.width
        z, k, hidden, flags = self._analyse(y64, prev_k)
        symbols, indexes, _ = self._code(hidden, prev_k, self._expand(flags, shape),
                                         lambda s, i, o: k[:, s * cs : (s + 1) * cs] - o)
        prior = base.z_prior(rate)
        z_bits = -torch.log2(prior.likelihood(z.to(next(prior.parameters()).device, torch.float32))).sum()
        return {"y": float(self._element_bits(symbols, indexes).sum()), "z": float(z_bits),
                "flags": 8.0 * self._flag_bytes(shape)}

    # ----------------------------------------------------------------- export
    def state_entries(self) -> dict[str, object]:
        return {"temporal_config": self.cfg.to_dict()}

    def load_entries(self, state: dict[str, object]) -> None:
        if "temporal_config" not in state:
            raise ModelError("weights lack the temporal prior's config")
        cfg = TemporalConfig.from_dict(dict(state["temporal_config"]))
        if cfg != self.cfg:
            raise ModelError(f"weights were trained for {cfg}, not {self.cfg}")
