"""The entropy-model role of a codec (DESIGN.md, "Composition"), and the factorized model.

An entropy model turns real latents y into range-coded sections and back, with its own side
information and contexts; ``lcodec.codecs.assembly.ComposedCodec`` pairs it with any
transform. Every entropy model here implements:

- ``downsample``: the latent grid must be a multiple of this (a stride-2 side path asks 2);
  ``side_sections``: how many leading sections are side information (reported apart);
  ``per_item_rates``: whether training may give each batch item its own rate point
- ``forward(y, rates) -> (y_dec, bits)``: the training path (``rates``: (B,) rate indexes)
- ``encode(y64, rate, carried, write=True) -> (sections, y_hat)``: float64 latents -> range-coded
  sections (none when ``write`` is False) and the decoder's latents for the first ``carried``
  channels (the rest are the transform's to fill)
- ``decode(sections, shape, rate, carried, what) -> y_hat``: the exact inverse, from integers in
  the stream and stored tables only (refusing payloads too short for the declared geometry)
- ``num_sections(rate)``, ``estimate_bits(y64, rate, carried) -> {"y": ..., ...}``
- ``export()`` (freeze integer tables), ``table_sets()`` (in the weights hash's order),
  ``state_entries()`` / ``load_entries(state)`` (its entries of the weights file)
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables
from lcodec.entropy.factorized import FactorizedPrior
from lcodec.errors import BitstreamError, ModelError

__all__ = ["FactorizedEntropyModel", "channel_indexes", "check_floor", "ste_round"]


def channel_indexes(shape: tuple[int, ...]) -> np.ndarray:
    """Flat table indexes for latents of ``shape`` (B, C, ...) coded with one table per channel."""
    b, c = shape[:2]
    rest = tuple(shape[2:])
    return np.broadcast_to(np.arange(c).reshape(1, c, *[1] * len(rest)), shape).reshape(-1)


def check_floor(payload: bytes, min_bits: float, what: str) -> None:
    """Refuse a payload far shorter than the fewest bits its declared symbols could take, before
    anything of the declared size is allocated (half the bound leaves room for coder rounding)."""
    if 8 * len(payload) < 0.5 * min_bits:
        raise BitstreamError(f"payload of {len(payload)} bytes is too short for the declared {what}")


def ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def require(tables: CodingTables | None, what: str) -> CodingTables:
    if tables is None:
        raise ModelError(f"no coding tables ({what}); load shipped weights or call export()")
    return tables


class FactorizedEntropyModel(nn.Module):
    """A factorized prior (Ballé et al. 2018): one learned density, frozen as one integer table,
    per latent channel; symbols are round(y). One section."""

    downsample = 1
    side_sections = 0
    per_item_rates = True

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.prior = FactorizedPrior(channels)
        self.tables: CodingTables | None = None

    def forward(self, y: torch.Tensor, rates: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        y_tilde, bits = self.prior(y)
        y_dec = ste_round(y) if self.training else y_tilde  # straight-through
        return y_dec, {"y": bits}

    def num_sections(self, rate: int) -> int:
        return 1

    @torch.no_grad()
    def encode(self, y64: torch.Tensor, rate: int, carried: int, write: bool = True):
        symbols = torch.round(y64).to(torch.int32)[:, :carried]
        if not write:
            return (), symbols
        z = symbols.numpy()
        return (encode_symbols(z.reshape(-1), channel_indexes(z.shape), require(self.tables, "factorized")),), symbols

    def decode(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
               what: str) -> torch.Tensor:
        tables = require(self.tables, "factorized")
        sent = (shape[0], carried, *shape[2:])
        positions = int(np.prod(sent)) // carried
        check_floor(sections[0], positions * float(np.sum(tables.min_bits()[:carried])), what)
        z = decode_symbols(sections[0], channel_indexes(sent), tables)
        return torch.from_numpy(z.reshape(sent).astype(np.int32))

    @torch.no_grad()
    def estimate_bits(self, y64: torch.Tensor, rate: int, carried: int) -> dict[str, float]:
        bits = -torch.log2(self.prior.likelihood(torch.round(y64).float()))
        return {"y": float(bits[:, :carried].sum())}

    def export(self) -> None:
        self.tables = self.prior.export_tables()

    def table_sets(self) -> list[CodingTables]:
        return [require(self.tables, "factorized")]

    def state_entries(self) -> dict[str, object]:
        return {"tables": require(self.tables, "factorized").to_state()}

    def load_entries(self, state: dict[str, object]) -> None:
        tables = CodingTables.from_state(state["tables"])
        if tables.num_tables != self.prior.channels:
            raise ModelError("stored factorized tables do not fit the configuration")
        self.tables = tables
