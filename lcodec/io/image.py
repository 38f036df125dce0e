"""Image I/O with Pillow.

Policy: every image is decoded to RGB float32 in [0, 1] with shape (3, H, W).
Grayscale and palette images are expanded to RGB; an alpha channel is dropped
(composited on nothing: the colour values are kept as stored) with a warning
flag in ``ImageInfo``; 16-bit images are scaled to [0, 1] from their full range.
Output is written as 8-bit RGB PNG (or any format Pillow infers from the suffix).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lcodec.errors import InputError

__all__ = ["read_image", "read_image_info", "read_gray_image", "write_image", "image_format", "ImageInfo", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass(frozen=True)
class ImageInfo:
    mode: str  # Pillow mode of the source, e.g. "RGB", "L", "RGBA", "I;16"
    bit_depth: int
    dropped_alpha: bool


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None
    return img


def _to_array(img: Image.Image) -> tuple[np.ndarray, ImageInfo]:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        a = a / 65535.0 if mode.startswith("I;16") or a.max() > 255 else a / 255.0
        a = np.repeat(a[..., None], 3, axis=2)
        return a.clip(0, 1).astype(np.float32), ImageInfo(mode, 16, False)
    if mode == "F":
        a = np.asarray(img, dtype=np.float32).clip(0, 1)
        return np.repeat(a[..., None], 3, axis=2), ImageInfo(mode, 32, False)
    dropped = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info)
    rgb = img.convert("RGB")
    return np.asarray(rgb, dtype=np.float32) / 255.0, ImageInfo(mode, 8, dropped)


def read_image_info(path: str | Path) -> tuple[torch.Tensor, ImageInfo]:
    """Read an image file -> ((3, H, W) float32 in [0, 1], ImageInfo)."""
    a, info = _to_array(_open(Path(path)))
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))), info


def read_gray_image(path: str | Path) -> torch.Tensor:
    """Read an 8-bit grayscale image -> (1, H, W) float32 values k/255, for codecs of one channel.

    Grayscale files (Pillow modes L, 1, P with gray entries) and RGB files whose three channels are
    equal are accepted; a colour, alpha or 16-bit image is refused (lossless coding would change it).
    """
    path = Path(path)
    img = _open(path)
    if img.mode in ("1", "L"):
        a = np.asarray(img.convert("L"), dtype=np.uint8)
    elif img.mode in ("RGB", "P"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise InputError(f"{path} is a colour image; this codec codes 8-bit grayscale (convert it first, "
                             f"e.g. PIL's Image.convert('L'))")
        a = rgb[..., 0]
    else:
        raise InputError(f"{path}: Pillow mode {img.mode} is not 8-bit grayscale, which this codec codes")
    return torch.from_numpy(a.astype(np.float32) / 255.0)[None]


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file -> (3, H, W) float32 RGB in [0, 1]."""
    return read_image_info(path)[0]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) float in [0, 1], C = 3 or 1 -> (H, W, C) uint8."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise InputError(f"can write one image at a time, got a batch of {x.shape[0]}")
        x = x[0]
    return (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def image_format(path: str | Path) -> str:
    """The Pillow format an image written to ``path`` gets from its suffix; refuses other suffixes.

    Cheap (no pixels involved): callers check an output name with it before decoding anything.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise InputError(f"{path}: unknown image suffix {path.suffix!r} (use .png)")
    return fmt


def write_image(path: str | Path, x: torch.Tensor) -> bytes:
    """Encode (3, H, W) in [0, 1] as an 8-bit image (or (1, H, W) as 8-bit grayscale) in the format
    of ``path``'s suffix; returns bytes.

    The caller writes the bytes (atomically); nothing is written here.
    """
    import io

    fmt = image_format(path)
    buf = io.BytesIO()
    a = to_uint8(x)
    if a.shape[-1] == 1:
        Image.fromarray(a[..., 0], mode="L").save(buf, format=fmt)
    else:
        Image.fromarray(a, mode="RGB").save(buf, format=fmt)
    return buf.getvalue()
