"""The identity transform of lossless codecs: 8-bit pixels are the latents.

``PixelTransform`` maps a batch of fixed-size 8-bit images (B, C, H, W), float in [0, 1], to the
integers round(255 x) (float64), and back by x = y / 255: exact, so a lossless entropy model
(``lcodec.entropy.circuit_model``) gives back every bit. It refuses inputs that are not 8-bit
(values off the 1/255 grid) or not of its size, naming what to do instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lcodec.bitstream.container import Geometry
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.models.transforms import ImageTransform
from lcodec.models.walloc import ConfigDict

__all__ = ["PixelConfig", "PixelTransform", "MAX_ITEMS"]

MAX_ITEMS = 1 << 20  # images per stream: a whole dataset (MNIST's 70,000) fits in one


@dataclass(frozen=True)
class PixelConfig(ConfigDict):
    channels: int = 1
    height: int = 28
    width: int = 28

    def __post_init__(self) -> None:
        if min(self.channels, self.height, self.width) < 1:
            raise ModelError(f"invalid pixel geometry {self}")


class PixelTransform(ImageTransform, nn.Module):
    """8-bit images of one size <-> their integer pixel values (see the module docstring)."""

    factor = 1
    config_key = "pixel_config"

    def __init__(self, cfg: PixelConfig) -> None:
        nn.Module.__init__(self)
        self.cfg = cfg

    @property
    def in_channels(self) -> int:
        return self.cfg.channels

    @property
    def latent_channels(self) -> int:
        return self.cfg.channels

    def _size(self) -> str:
        kind = "grayscale" if self.cfg.channels == 1 else f"{self.cfg.channels}-channel"
        return f"{self.cfg.height}x{self.cfg.width} {kind}"

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        try:
            x = super().check_input(x)
        except InputError as exc:
            if "[0, 1]" not in str(exc):
                raise
            raise InputError(f"lossless coding needs 8-bit images: values k/255 for integers k in 0..255; {exc}") from None
        if tuple(x.shape[-2:]) != (self.cfg.height, self.cfg.width):
            raise InputError(f"this codec codes {self._size()} images, got {x.shape[-2]}x{x.shape[-1]}")
        scaled = x.double() * 255.0
        if (scaled - torch.round(scaled)).abs().max() > 1e-3 or x.min() < 0 or x.max() > 1:
            raise InputError("lossless coding needs 8-bit images: values k/255 for integers k in 0..255")
        return x

    def check_geometry(self, geometry: Geometry) -> None:
        shape = geometry.shape
        if len(shape) != 4 or tuple(shape[1:]) != (self.cfg.channels, self.cfg.height, self.cfg.width):
            raise BitstreamError(f"stream geometry {shape} is not a batch of {self._size()} images")
        if shape[0] > MAX_ITEMS:
            raise BitstreamError(f"stream declares {shape[0]} images, more than the {MAX_ITEMS} this codec allows")

    def describe(self, geometry: Geometry) -> str:
        return f"{self._size()} image"

    def analyse(self, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        return torch.round(x * 255.0)

    def analyse64(self, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        return torch.round(x.detach().cpu().double() * 255.0)

    def synthesise(self, y_hat: torch.Tensor) -> torch.Tensor:
        return y_hat.to(torch.float32) / 255.0
