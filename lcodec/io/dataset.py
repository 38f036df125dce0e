"""Datasets of small 8-bit images in one file: MNIST's idx format (``.idx``, ``.idx3-ubyte``,
optionally ``.gz``) and numpy ``.npz`` archives (one uint8 array (N, H, W) or (N, C, H, W); the
key ``images`` if there are several).

``read_dataset(path)`` -> (N, C, H, W) float32 in [0, 1] (values k/255); ``dataset_bytes(path, x)``
encodes such a batch in the format of ``path``'s suffix (the caller writes it atomically).
"""
from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from lcodec.errors import InputError

__all__ = ["DATASET_SUFFIXES", "is_dataset", "read_dataset", "read_dataset_uint8", "dataset_bytes"]

DATASET_SUFFIXES = (".idx", "-ubyte", ".ubyte", ".npz")  # and any of them + ".gz" (MNIST: t10k-images-idx3-ubyte.gz)
_UBYTE = 0x08


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return next((s for s in DATASET_SUFFIXES if name.endswith(s)), "")


def is_dataset(path: str | Path) -> bool:
    """Whether ``path`` names a dataset file (by its suffix)."""
    return bool(_suffix(Path(path)))


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != _UBYTE:
        raise InputError(f"{path}: not an idx file of unsigned bytes (bad magic)")
    ndim = raw[3]
    if not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise InputError(f"{path}: idx header declares {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) - 4 - 4 * ndim != count:
        raise InputError(f"{path}: idx header declares {dims} ({count} bytes), the file holds "
                         f"{len(raw) - 4 - 4 * ndim}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_dataset_uint8(path: str | Path) -> np.ndarray:
    """-> uint8 array (N, C, H, W) of a dataset file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = _suffix(path)
    try:
        raw = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
        if suffix == ".npz":
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                keys = list(z.keys())
                key = "images" if "images" in keys else keys[0] if len(keys) == 1 else None
                if key is None:
                    raise InputError(f"{path}: several arrays ({', '.join(keys)}) and none named 'images'")
                a = z[key]
        else:
            a = _parse_idx(raw, path)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable dataset ({exc})") from None
    if a.dtype != np.uint8:
        raise InputError(f"{path}: expected 8-bit images (uint8), found {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or 0 in a.shape:
        raise InputError(f"{path}: expected images (N, H, W) or (N, C, H, W), found shape {a.shape}")
    return a


def read_dataset(path: str | Path) -> torch.Tensor:
    """-> (N, C, H, W) float32 in [0, 1]."""
    return torch.from_numpy(read_dataset_uint8(path).astype(np.float32) / 255.0)


def dataset_bytes(path: str | Path, x: torch.Tensor) -> bytes:
    """(N, C, H, W) in [0, 1] -> the file bytes of ``path``'s format (idx stores (N, H, W) for C = 1)."""
    path = Path(path)
    a = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    suffix = _suffix(path)
    if not suffix:
        raise InputError(f"{path}: unknown dataset suffix (use {', '.join(DATASET_SUFFIXES)}, optionally + .gz)")
    if suffix == ".npz":
        buf = io.BytesIO()
        np.savez(buf, images=a[:, 0] if a.shape[1] == 1 else a)
        raw = buf.getvalue()
    else:
        a = a[:, 0] if a.shape[1] == 1 else a
        raw = b"\0\0" + bytes([_UBYTE, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    return gzip.compress(raw, mtime=0) if path.name.lower().endswith(".gz") else raw
