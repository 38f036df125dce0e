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

The same modules build the 1-D (audio) variant with ``dims=1``: a (B, C, N) signal
goes through a 1-D packet to (B, C*2^J, N/2^J) and the 1x1/3-tap convolutions are 1-D.
``encoder_groups`` splits the linear encoder into independent blocks (the audio codec
uses 2: mid and side are encoded separately, so a mono signal's side latents are constant
and need not be sent).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from lcodec.errors import ModelError
from lcodec.models.wavelet import WaveletPacket1d, WaveletPacket2d

__all__ = ["ConfigDict", "WallocConfig", "WallocAnalysis", "WallocSynthesis", "ResidualBlock", "packet_klt"]


class ConfigDict:
    """Mixin for frozen config dataclasses stored in checkpoints: to/from a plain dict,
    refusing unknown keys (widths are never guessed)."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, object]):
        unknown = set(d) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        if unknown:
            raise ModelError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class WallocConfig(ConfigDict):
    """Architecture of one WaLLoC image model (stored in every checkpoint)."""

    in_channels: int = 3
    levels: int = 4
    wavelet: str = "haar"
    latent_channels: int = 64
    decoder_channels: int = 192
    decoder_blocks: int = 4
    dims: int = 2  # 2: images (B, C, H, W); 1: audio (B, C, N)
    encoder_groups: int = 1  # >1: block-diagonal linear encoder, one block per group of input channels
    encoder_blocks: int = 0  # >0: a nonlinear residual branch (this many 3x3 residual blocks) beside the linear encoder
    encoder_channels: int = 128  # width of that branch

    def __post_init__(self) -> None:
        if self.dims not in (1, 2):
            raise ModelError(f"WaLLoC dims must be 1 or 2, got {self.dims}")
        g = self.encoder_groups
        if g < 1 or self.in_channels % g or self.latent_channels % g:
            raise ModelError(f"encoder_groups={g} must divide in_channels={self.in_channels} "
                             f"and latent_channels={self.latent_channels}")

    @property
    def coefficient_channels(self) -> int:
        return self.in_channels * 2 ** (self.dims * self.levels)

    def conv(self, cin: int, cout: int, kernel: int = 1, groups: int = 1) -> nn.Module:
        """A convolution of this model's dimensionality ('same' padding)."""
        cls = nn.Conv1d if self.dims == 1 else nn.Conv2d
        return cls(cin, cout, kernel, padding=kernel // 2, groups=groups)

    def packet(self) -> nn.Module:
        cls = WaveletPacket1d if self.dims == 1 else WaveletPacket2d
        return cls(self.levels, self.wavelet)



@torch.no_grad()
def packet_klt(wpt: nn.Module, crops: list[torch.Tensor], offset: float = 0.5) -> torch.Tensor:
    """KLT of a wavelet packet's channels over ``crops`` (each (C_in, ...), sides divisible by
    2^J): eigenvectors of the channel covariance as rows, strongest first, float64 (K, K)."""
    cov, count = None, 0
    for x in crops:
        c = wpt(x[None].double() - offset)[0].flatten(1)  # (K, positions)
        cov = c @ c.T if cov is None else cov + c @ c.T
        count += c.shape[1]
    if cov is None:
        raise ModelError("a KLT needs at least one crop")
    evals, evecs = torch.linalg.eigh(cov / count)
    return evecs[:, torch.argsort(evals, descending=True)].T.contiguous()


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, dims: int = 2) -> None:
        super().__init__()
        cls = nn.Conv1d if dims == 1 else nn.Conv2d
        self.conv1 = cls(channels, channels, 3, padding=1)
        self.conv2 = cls(channels, channels, 3, padding=1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))


class WallocAnalysis(nn.Module):
    """x (B, 3, H, W) in [0, 1], H and W divisible by 2^J -> y (B, C, H/2^J, W/2^J).

    1-D: x (B, C_in, N) in [-1, 1] -> y (B, C, N/2^J). ``offset`` is subtracted first
    (0.5 centres images; audio is already centred).
    """

    def __init__(self, cfg: WallocConfig) -> None:
        super().__init__()
        self.offset = 0.5 if cfg.dims == 2 else 0.0
        self.wpt = cfg.packet()
        self.g_a = cfg.conv(cfg.coefficient_channels, cfg.latent_channels, 1, groups=cfg.encoder_groups)
        self.branch = None
        if cfg.encoder_blocks:  # the "rd" encoder: linear projection + a residual CNN at latent resolution
            n = cfg.encoder_channels
            tail = cfg.conv(n, cfg.latent_channels, 1)
            nn.init.zeros_(tail.weight)  # starts as the linear encoder
            nn.init.zeros_(tail.bias)
            self.branch = nn.Sequential(cfg.conv(cfg.coefficient_channels, n, 1),
                                        *[ResidualBlock(n, cfg.dims) for _ in range(cfg.encoder_blocks)], tail)

    def project(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Packet coefficients -> latents (the learned part of the encoder)."""
        y = self.g_a(coeffs)
        return y if self.branch is None else y + self.branch(coeffs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.wpt(x - self.offset))


class WallocSynthesis(nn.Module):
    """y_hat (B, C, h, w) -> x_hat (B, 3, h*2^J, w*2^J); 1-D: (B, C, n) -> (B, C_in, n*2^J)."""

    def __init__(self, cfg: WallocConfig) -> None:
        super().__init__()
        n = cfg.decoder_channels
        self.offset = 0.5 if cfg.dims == 2 else 0.0
        self.wpt = cfg.packet()
        self.skip = cfg.conv(cfg.latent_channels, cfg.coefficient_channels, 1)
        self.head = cfg.conv(cfg.latent_channels, n, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(n, cfg.dims) for _ in range(cfg.decoder_blocks)])
        self.tail = cfg.conv(n, cfg.coefficient_channels, 1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        coeffs = self.skip(y_hat) + self.tail(self.blocks(self.head(y_hat)))
        return self.wpt.inverse(coeffs) + self.offset
