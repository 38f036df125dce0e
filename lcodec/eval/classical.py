"""Classical image codecs through Pillow, behind the same compress/decompress shape."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from lcodec.errors import InputError
from lcodec.io.image import to_uint8

__all__ = ["PillowCodec", "QUALITY_GRIDS"]

QUALITY_GRIDS = {
    "jpeg": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
    "webp": (2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
}


@dataclass(frozen=True)
class PillowCodec:
    """JPEG (4:2:0, optimized Huffman) or WebP (method 6) at one quality setting."""

    fmt: str
    quality: int

    @property
    def name(self) -> str:
        return self.fmt

    def compress(self, x: torch.Tensor) -> bytes:
        buf = io.BytesIO()
        img = Image.fromarray(to_uint8(x), mode="RGB")
        if self.fmt == "jpeg":
            img.save(buf, format="JPEG", quality=self.quality, optimize=True, subsampling=2)
        elif self.fmt == "webp":
            img.save(buf, format="WEBP", quality=self.quality, method=6)
        else:
            raise InputError(f"unsupported classical format {self.fmt!r}")
        return buf.getvalue()

    def decompress(self, data: bytes) -> torch.Tensor:
        a = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(a.transpose(2, 0, 1).copy()).unsqueeze(0)
