"""The Codec contract shared by every codec family (see DESIGN.md)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["RDOutput", "Codec"]


@dataclass(frozen=True)
class RDOutput:
    """Result of the differentiable training path.

    x_hat: reconstruction, same shape as the input.
    bits:  estimated code length per latent, each (B,), keyed by latent name.
    """

    x_hat: torch.Tensor
    bits: dict[str, torch.Tensor]

    @property
    def total_bits(self) -> torch.Tensor:
        return sum(self.bits.values())  # type: ignore[return-value]


class Codec(nn.Module):
    """Base class: a transform + entropy model that writes complete containers."""

    modality: str = ""
    name: str = ""
    quality: int = 0

    def forward(self, x: torch.Tensor) -> RDOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def compress(self, x: torch.Tensor) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def decompress(self, data: bytes) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_weights(self, state: dict[str, object]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode_latents(self, latents: torch.Tensor, size: tuple[int, ...] | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
