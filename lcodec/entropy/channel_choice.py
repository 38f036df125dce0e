"""A hyperprior whose encoder may code any latent channel with a fixed table of that channel's own.

A hyperprior picks a table per latent from side information z; a factorized prior has one fixed
density per channel for the whole stream. Neither wins everywhere: on held-out music the
hyperprior's Laplace tables beat walloc-audio's per-channel densities on some channels (loud,
changing bands) and lose on others (near-silent bands, where a fitted non-parametric density
beats a zero-mean Laplace). ``ChannelChoiceHyperprior`` lets the encoder choose, per stream item
and latent channel, whichever of the two codes that channel's symbols in fewer bits, and tells
the decoder with one bit per channel::

    y64 --h_a--> z  (side information, coded as in MeanScaleHyperprior)
    z --exact index net--> hyperprior table index per latent
    per (item, channel): bits under the hyperprior's tables, for round(y - mean)
                         bits under channel_tables[c], for round(y)     -> keep the cheaper
    sections: z | choice (1 bit per item and carried channel, packed, MSB first) | y

All of y is range-coded in one section under the combined tables (the hyperprior's T tables,
then the C channel tables): a latent of a channel coded with its own table uses index T + c.
The decoder reads z and the choice, derives the same indexes, decodes y, and adds the hyperprior's
means only where the hyperprior coded the channel. Any choice decodes correctly; the encoder's
is the cheaper of the two exact code lengths (table entries plus escape bits, ``code_lengths``).

Training is the hyperprior's (``forward`` is MeanScaleHyperprior's): the channel tables are
fixed, typically the factorized tables the transform was trained with (walloc-audio-hp carries
walloc-audio's).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables
from lcodec.entropy.factorized import FactorizedPrior
from lcodec.entropy.hyperprior import HyperpriorConfig, MeanScaleHyperprior
from lcodec.entropy.model import channel_indexes, check_floor, require
from lcodec.errors import BitstreamError, ModelError

__all__ = ["ChannelChoiceHyperprior", "code_lengths", "combine_tables"]

_ESCAPE_CLASSES = 33  # the coder's uniform model of an escape's Exp-Golomb length class (coder.py)


def code_lengths(tables: CodingTables, symbols: np.ndarray, indexes: np.ndarray) -> np.ndarray:
    """Bits each symbol costs in the range coder under ``tables[indexes]``, float64, same shape as
    ``symbols``: precision - log2(count) of its entry, and for an escaped symbol (outside its table's
    range) also the escape's side bit, length class and the class's low bits (bitstream/coder.py)."""
    symbols = np.asarray(symbols, dtype=np.int64)
    indexes = np.asarray(indexes, dtype=np.int64)
    offsets, last = tables.offsets[indexes], tables.lengths[indexes] - 1
    pos = symbols - offsets
    below, above = pos < 0, pos >= last
    escaped = below | above
    bits = tables.precision - np.log2(tables.counts[indexes, np.where(escaped, last, pos)])
    if escaped.any():
        overshoot = np.where(below, -1 - pos, pos - last)[escaped]  # >= 0
        bits[escaped] += 1 + math.log2(_ESCAPE_CLASSES) + np.floor(np.log2(overshoot + 1.0))
    return bits


def combine_tables(first: CodingTables, second: CodingTables) -> CodingTables:
    """One table set: ``first``'s tables, then ``second``'s (index ``first.num_tables + t``)."""
    if first.precision != second.precision:
        raise ModelError(f"tables of precision {first.precision} and {second.precision} cannot be combined")
    width = max(first.counts.shape[1], second.counts.shape[1])
    counts = np.zeros((first.num_tables + second.num_tables, width), dtype=np.int64)
    counts[: first.num_tables, : first.counts.shape[1]] = first.counts
    counts[first.num_tables:, : second.counts.shape[1]] = second.counts
    return CodingTables(first.precision, counts, np.concatenate([first.offsets, second.offsets]),
                        np.concatenate([first.lengths, second.lengths]))


class ChannelChoiceHyperprior(MeanScaleHyperprior):
    """MeanScaleHyperprior plus a factorized prior over the latent channels (``channel_prior``, its
    integer tables ``channel_tables``) that the encoder may use instead, per item and channel
    (module docstring). Without the channel context (one y section). ``forward`` trains the
    hyperprior only; the channel prior is fitted elsewhere (walloc-audio-hp copies walloc-audio's)."""

    def __init__(self, channels: int, hyper: HyperpriorConfig = HyperpriorConfig(), dims: int = 2) -> None:
        if hyper.context_slices:
            raise ModelError("the channel choice codes y in one section: use it without the channel context")
        super().__init__(channels, hyper, dims)
        self.channel_prior = FactorizedPrior(channels)
        self.channel_tables: CodingTables | None = None
        self._combined: tuple[CodingTables, CodingTables, CodingTables] | None = None

    @property
    def side_sections(self) -> int:
        return 2  # z and the choice

    def num_sections(self, rate: int) -> int:
        return 3

    def combined(self) -> CodingTables:
        """The hyperprior's y tables, then the channel tables (cached per pair of table sets)."""
        y_tables = require(self.y_tables, "Laplace/Gaussian")
        channel = require(self.channel_tables, "channel")
        if self._combined is None or self._combined[0] is not y_tables or self._combined[1] is not channel:
            self._combined = (y_tables, channel, combine_tables(y_tables, channel))
        return self._combined[2]

    # ------------------------------------------------------------------ coding
    def _indexes(self, hp_indexes: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        """Per-latent indexes into ``combined()``: T + c where channel c uses its own table."""
        b, c = choice.shape
        own = require(self.y_tables, "Laplace/Gaussian").num_tables + torch.arange(c).view(1, c, *[1] * (hp_indexes.dim() - 2))
        return torch.where(choice.view(b, c, *[1] * (hp_indexes.dim() - 2)), own.expand_as(hp_indexes), hp_indexes)

    @torch.no_grad()
    def choose(self, hp_symbols: torch.Tensor, hp_indexes: torch.Tensor, plain: torch.Tensor) -> torch.Tensor:
        """(B, C) bool, True where channel c of item b costs fewer bits with its own table (``plain``
        symbols round(y)) than with the hyperprior's (``hp_symbols`` with ``hp_indexes``); ties
        go to the hyperprior."""
        b, c = hp_symbols.shape[:2]
        channel = require(self.channel_tables, "channel")
        hp = code_lengths(require(self.y_tables, "Laplace/Gaussian"), hp_symbols.numpy(), hp_indexes.numpy())
        own = code_lengths(channel, plain.numpy(), channel_indexes(tuple(plain.shape)).reshape(plain.shape))
        return torch.from_numpy(own.reshape(b, c, -1).sum(-1) < hp.reshape(b, c, -1).sum(-1))

    @torch.no_grad()
    def choice_encode(self, y64: torch.Tensor, z: torch.Tensor, carried: int):
        """-> (choice (B, carried) bool, symbols, indexes into ``combined()``, y_hat float64)."""
        hp_symbols = self.symbols(y64, z)[:, :carried]
        hp_indexes = self.table_indexes(z)[:, :carried]
        plain = torch.round(y64[:, :carried]).to(torch.int64)
        choice = self.choose(hp_symbols, hp_indexes, plain)
        where = choice.view(*choice.shape, *[1] * (y64.dim() - 2))
        symbols = torch.where(where, plain, hp_symbols)
        y_hat = torch.where(where, plain.double(), hp_symbols.double() + self.reconstruction_means(z)[:, :carried])
        return choice, symbols, self._indexes(hp_indexes, choice), y_hat

    @torch.no_grad()
    def encode(self, y64: torch.Tensor, rate: int, carried: int, write: bool = True,
               z: torch.Tensor | None = None):
        """-> ((z, choice, y), None), or with ``write`` False ((), y_hat float64 of the carried channels)."""
        z = self.hyper_analysis(y64) if z is None else z
        choice, symbols, indexes, y_hat = self.choice_encode(y64, z, carried)
        if not write:
            return (), y_hat
        z_payload = encode_symbols(z.numpy().reshape(-1), channel_indexes(tuple(z.shape)), self.z_tables(rate))
        y_payload = encode_symbols(symbols.numpy().reshape(-1), indexes.numpy().reshape(-1), self.combined())
        return (z_payload, np.packbits(choice.numpy().reshape(-1)).tobytes(), y_payload), None

    def decode(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
               what: str) -> torch.Tensor:
        if len(sections) != 3:
            raise BitstreamError(f"{what}: {len(sections)} sections, the channel-choice hyperprior writes 3")
        self.check_z_floor(sections[0], shape, rate, what)
        b = shape[0]
        bits = b * carried
        if len(sections[1]) != (bits + 7) // 8:
            raise BitstreamError(f"{what}: the channel choice holds {len(sections[1])} bytes, "
                                 f"{b} item(s) x {carried} channels need {(bits + 7) // 8}")
        flags = np.unpackbits(np.frombuffer(sections[1], dtype=np.uint8))
        if flags[bits:].any():
            raise BitstreamError(f"{what}: the channel choice's padding bits are not zero")
        choice = torch.from_numpy(flags[:bits].astype(bool).reshape(b, carried))
        z = self.decode_z(sections[0], shape, rate)
        indexes = self._indexes(self.table_indexes(z)[:, :carried], choice)
        tables = self.combined()
        flat = indexes.numpy().reshape(-1)
        check_floor(sections[2], float(np.bincount(flat, minlength=tables.num_tables) @ tables.min_bits()), what)
        symbols = torch.from_numpy(decode_symbols(sections[2], flat, tables).reshape(indexes.shape))
        means = self.reconstruction_means(z)[:, :carried]
        return symbols.double() + torch.where(choice.view(b, carried, *[1] * (symbols.dim() - 2)), 0.0, means)

    @torch.no_grad()
    def estimate_bits(self, y64: torch.Tensor, rate: int, carried: int) -> dict[str, float]:
        """y: the chosen exact code lengths; z: the z prior's float estimate plus the choice bits."""
        z = self.hyper_analysis(y64)
        _, symbols, indexes, _ = self.choice_encode(y64, z, carried)
        y_bits = float(code_lengths(self.combined(), symbols.numpy(), indexes.numpy()).sum())
        prior = self.z_prior(rate)
        z_bits = float(-torch.log2(prior.likelihood(z.to(next(prior.parameters()).device, torch.float32))).sum())
        return {"y": y_bits, "z": z_bits + y64.shape[0] * carried}

    # ----------------------------------------------------------------- weights
    def table_sets(self) -> list[CodingTables]:
        return [*super().table_sets(), require(self.channel_tables, "channel")]

    def state_entries(self) -> dict[str, object]:
        return {**super().state_entries(), "channel_tables": require(self.channel_tables, "channel").to_state()}

    def export(self) -> None:
        super().export()
        self.channel_tables = self.channel_prior.export_tables()

    def load_entries(self, state: dict[str, object]) -> None:
        if "channel_tables" not in state:
            raise ModelError("weights lack the channel tables of the channel-choice hyperprior "
                             "(weights of a plain hyperprior?)")
        channel = CodingTables.from_state(state["channel_tables"])
        if channel.num_tables != self.channels:
            raise ModelError(f"{channel.num_tables} stored channel tables for {self.channels} latent channels")
        if "y_tables" in state and CodingTables.from_state(state["y_tables"]).precision != channel.precision:
            raise ModelError("stored channel tables and hyperprior tables differ in precision")
        super().load_entries(state)
        self.channel_tables = channel
