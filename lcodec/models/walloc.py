"""WaLLoC transforms: wavelet packet + shallow asymmetric autoencoder.

Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning" (2024).
The wavelet packet does the heavy lifting of moving to low resolution for free;
the encoder is a single linear map per position (cheap on weak devices) and the
decoder, which runs where compute is plentiful, is a small residual CNN at the
same low resolution::

    x (B, 3, H, W)
      |  - 0.5, WaveletPacket2d(J)        (B, 3*4^J, H/2^J, W/2^J)
      |  g_a: 1x1 conv (linear)          (B, C, H/2^J, W/2^J)        = y
      |  quantize (round)                 y_hat
      |  g_s: 1x1 -> residual 3x3 blocks -> 1x1, plus a linear skip   (B, 3*4^J, ...)
      |  inverse packet, + 0.5
    x_hat (B, 3, H, W)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from lcodec.errors import ModelError
from lcodec.models.wavelet import WaveletPacket2d

__all__ = ["WallocConfig", "WallocAnalysis", "WallocSynthesis", "ResidualBlock"]


@dataclass(frozen=True)
class WallocConfig:
    """Architecture of one WaLLoC image model (stored in every checkpoint)."""

    in_channels: int = 3
    levels: int = 4
    wavelet: str = "haar"
    latent_channels: int = 64
    decoder_channels: int = 192
    decoder_blocks: int = 4

    @property
    def coefficient_channels(self) -> int:
        return self.in_channels * 4**self.levels

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> "WallocConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ModelError(f"unknown WaLLoC config keys: {sorted(unknown)}")
        return cls(**d)  # type: ignore[arg-type]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))


class WallocAnalysis(nn.Module):
    """x (B, 3, H, W) in [0, 1], H and W divisible by 2^J -> y (B, C, H/2^J, W/2^J)."""

    def __init__(self, cfg: WallocConfig) -> None:
        super().__init__()
        self.wpt = WaveletPacket2d(cfg.levels, cfg.wavelet)
        self.g_a = nn.Conv2d(cfg.coefficient_channels, cfg.latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g_a(self.wpt(x - 0.5))


class WallocSynthesis(nn.Module):
    """y_hat (B, C, h, w) -> x_hat (B, 3, h*2^J, w*2^J)."""

    def __init__(self, cfg: WallocConfig) -> None:
        super().__init__()
        n = cfg.decoder_channels
        self.wpt = WaveletPacket2d(cfg.levels, cfg.wavelet)
        self.skip = nn.Conv2d(cfg.latent_channels, cfg.coefficient_channels, 1)
        self.head = nn.Conv2d(cfg.latent_channels, n, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(n) for _ in range(cfg.decoder_blocks)])
        self.tail = nn.Conv2d(n, cfg.coefficient_channels, 1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        coeffs = self.skip(y_hat) + self.tail(self.blocks(self.head(y_hat)))
        return self.wpt.inverse(coeffs) + 0.5
