"""Compressed-domain datasets: learn from a codec's integer latents instead of pixels.

Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning" (2024): a light
WaLLoC encoder turns an image into a small integer tensor that models can consume
directly. ``LatentDataset`` stores every item of an image dataset ONCE as a real lcodec
stream and serves the stream's decoded latents; the synthesis network never runs::

    dataset[i] = (image (1|3, H, W) in [0, 1], label, ...)
        │  once, on construction
        └─► codec.compress ─► cache_dir/streams/000042.bin   (+ targets.pt, manifest.json)
                                   │  every __getitem__
                                   └─► codec.decompress_latents ─► (latents (C, h, w) float, label, ...)

For ``walloc-rgb``: C = 64, h = ceil(H / 16), w = ceil(W / 16). The cache is tied to
the codec name, quality and weights hash in its manifest; a cache written by anything
else is re-encoded with a ``StaleCacheWarning``, never mixed with new streams.
"""
from __future__ import annotations

import io
import json
import operator
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lcodec.bitstream.container import atomic_write
from lcodec.errors import InputError, LcodecError

__all__ = [
    "CACHE_VERSION",
    "LatentCodec",
    "LatentCacheManifest",
    "StaleCacheWarning",
    "LatentDataset",
]

CACHE_VERSION = 1
_MANIFEST = "manifest.json"
_TARGETS = "targets.pt"
_STREAMS = "streams"
_SCALARS = (bool, int, float, str, type(None))


class StaleCacheWarning(UserWarning):
    """A latent cache did not match the codec, its weights or the dataset, and is being re-encoded."""


class LatentCodec(Protocol):
    """What ``LatentDataset`` needs from a codec (``WallocImageCodec`` provides it)."""

    name: str
    quality: int
    weights_hash: bytes

    def compress(self, x: torch.Tensor) -> bytes: ...

    def decompress_latents(self, data: bytes) -> tuple[torch.Tensor, tuple[int, ...]]: ...


@dataclass(frozen=True)
class LatentCacheManifest:
    """The cache's ``manifest.json``: who wrote the streams and how large each one is."""

    codec: str
    quality: int
    weights_hash: str  # hex of codec.weights_hash
    num_items: int
    item_bytes: tuple[int, ...]  # size of streams/<index>.bin, whole container
    item_sizes: tuple[tuple[int, int], ...]  # original (H, W) of each item
    version: int = CACHE_VERSION

    def to_json(self) -> str:
        """One field per line, each list on its own line."""
        fields = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in asdict(self).items())
        return "{\n" + fields + "\n}\n"

    @classmethod
    def from_json(cls, text: str) -> LatentCacheManifest:
        """Parse a manifest; raises ``ValueError`` when it is not one this version wrote."""
        try:
            raw = json.loads(text)
            manifest = cls(
                codec=str(raw["codec"]),
                quality=int(raw["quality"]),
                weights_hash=str(raw["weights_hash"]),
                num_items=int(raw["num_items"]),
                item_bytes=tuple(int(b) for b in raw["item_bytes"]),
                item_sizes=tuple((int(h), int(w)) for h, w in raw["item_sizes"]),
                version=int(raw["version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a latent cache manifest ({exc})") from None
        if not manifest.num_items == len(manifest.item_bytes) == len(manifest.item_sizes):
            raise ValueError("manifest lists a different number of streams than num_items")
        return manifest


def _stream_name(index: int) -> str:
    return f"{index:06d}.bin"


def _as_rgb(image: object, index: int) -> torch.Tensor:
    """Check one item's image and return it as (3, H, W) float (gray repeated to RGB)."""
    if not isinstance(image, torch.Tensor):
        raise InputError(
            f"item {index}: expected a tensor image (C, H, W) in [0, 1], got {type(image).__name__}; "
            "convert PIL images with torchvision.transforms.functional.to_tensor"
        )
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise InputError(f"item {index}: expected an image (C, H, W) with C = 1 or 3, got shape {tuple(image.shape)}")
    if image.shape[1] < 1 or image.shape[2] < 1:
        raise InputError(f"item {index}: empty image of shape {tuple(image.shape)}")
    if not torch.is_floating_point(image):
        raise InputError(
            f"item {index}: expected a float image in [0, 1], got {image.dtype}; divide 8-bit images by 255"
        )
    if not torch.isfinite(image).all():
        raise InputError(f"item {index}: image contains NaN or infinite values")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"item {index}: pixel values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]")
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def _cacheable(value: object, where: str) -> object:
    """A copy of a label field that ``torch.load(weights_only=True)`` can read back."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_cacheable(v, where) for v in value)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _cacheable(v, where) for k, v in value.items()}
    raise InputError(
        f"{where} is a {type(value).__name__}, which the latent cache cannot store; labels must be "
        "tensors, numpy values, bool/int/float/str/None, or lists, tuples and str-keyed dicts of those"
    )


def _split_item(item: object, index: int) -> tuple[object, tuple[object, ...] | None]:
    """item -> (image, label fields); label fields are None for a bare image item."""
    if isinstance(item, torch.Tensor):
        return item, None
    if isinstance(item, (tuple, list)) and len(item) >= 1:
        extras = tuple(_cacheable(v, f"item {index} field {j + 1}") for j, v in enumerate(item[1:]))
        return item[0], extras
    raise InputError(
        f"item {index}: expected a tensor image or a tuple (image, label, ...), got {type(item).__name__}"
    )


class LatentDataset(Dataset):
    """A map-style dataset of codec latents, cached once as real lcodec streams.

    ``dataset[i]`` must be an image tensor (C, H, W), C = 1 (repeated to RGB) or 3, float
    in [0, 1], or a tuple ``(image, label, ...)``. ``self[i]`` is then the stream's integer
    latents as float32 (C', h, w) (``transform`` applied, if given), alone or followed by
    the item's label fields. Construction encodes the whole dataset unless ``cache_dir``
    already holds a cache from this codec, quality and weights with as many items.
    """

    def __init__(
        self,
        dataset: Dataset,
        codec: LatentCodec,
        cache_dir: str | Path,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        progress: bool = True,
    ) -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise InputError(
                f"LatentDataset wraps map-style datasets (with __len__ and __getitem__), got {type(dataset).__name__}"
            )
        self.codec = codec
        self.transform = transform
        self.cache_dir = Path(cache_dir)
        if self.cache_dir.exists() and not self.cache_dir.is_dir():
            raise InputError(f"cache_dir {self.cache_dir} exists and is not a folder")
        self._encoded_items = 0
        stale = self._stale_reason(len(dataset))
        if stale is not None:
            if stale:
                warnings.warn(StaleCacheWarning(f"{self.cache_dir}: {stale}; re-encoding"), stacklevel=2)
            self._encode(dataset, progress)
            self._encoded_items = len(dataset)
        self._manifest = LatentCacheManifest.from_json((self.cache_dir / _MANIFEST).read_text())
        self._targets: list[tuple[object, ...] | None] = torch.load(
            self.cache_dir / _TARGETS, map_location="cpu", weights_only=True
        )

    # ------------------------------------------------------------------ cache
    def _stale_reason(self, num_items: int) -> str | None:
        """None if the cache can be reused; otherwise why not ("" for an empty cache_dir)."""
        path = self.cache_dir / _MANIFEST
        if not path.is_file():
            streams = self.cache_dir / _STREAMS
            if streams.is_dir() and any(streams.glob("*.bin")):
                return "streams without a manifest (an interrupted encoding?)"
            return ""
        try:
            m = LatentCacheManifest.from_json(path.read_text())
        except (OSError, ValueError) as exc:
            return f"unreadable manifest ({exc})"
        loaded = (self.codec.name, self.codec.quality, self.codec.weights_hash.hex())
        if m.version != CACHE_VERSION:
            return f"cache format version {m.version}, this lcodec writes {CACHE_VERSION}"
        if (m.codec, m.quality, m.weights_hash) != loaded:
            return (f"streams were written by {m.codec} q{m.quality} weights {m.weights_hash[:12]}, "
                    f"the codec is {loaded[0]} q{loaded[1]} weights {loaded[2][:12]}")
        if m.num_items != num_items:
            return f"the cache holds {m.num_items} items, the dataset has {num_items}"
        streams = self.cache_dir / _STREAMS
        for i, size in enumerate(m.item_bytes):
            stream = streams / _stream_name(i)
            if not stream.is_file() or stream.stat().st_size != size:
                return f"stream {stream.name} is missing or not the size the manifest records"
        if not (self.cache_dir / _TARGETS).is_file():
            return f"{_TARGETS} is missing"
        return None

    def _encode(self, dataset: Dataset, progress: bool) -> None:
        """Compress every item once; the manifest is written last, so a partial cache is never reused."""
        from tqdm import tqdm

        streams = self.cache_dir / _STREAMS
        streams.mkdir(parents=True, exist_ok=True)
        (self.cache_dir / _MANIFEST).unlink(missing_ok=True)
        for old in streams.glob("*.bin"):
            old.unlink()
        num_items = len(dataset)
        item_bytes: list[int] = []
        item_sizes: list[tuple[int, int]] = []
        targets: list[tuple[object, ...] | None] = []
        desc = f"encoding with {self.codec.name} q{self.codec.quality}"
        for i in tqdm(range(num_items), desc=desc, unit="item", disable=not progress):
            image, extras = _split_item(dataset[i], i)
            rgb = _as_rgb(image, i)
            try:
                data = self.codec.compress(rgb.unsqueeze(0))  # (1, 3, H, W)
            except LcodecError as exc:
                raise type(exc)(f"item {i}: {exc}") from exc
            atomic_write(streams / _stream_name(i), data, overwrite=True)
            item_bytes.append(len(data))
            item_sizes.append((int(rgb.shape[1]), int(rgb.shape[2])))
            targets.append(extras)
        buffer = io.BytesIO()
        torch.save(targets, buffer)
        atomic_write(self.cache_dir / _TARGETS, buffer.getvalue(), overwrite=True)
        manifest = LatentCacheManifest(
            codec=self.codec.name,
            quality=self.codec.quality,
            weights_hash=self.codec.weights_hash.hex(),
            num_items=num_items,
            item_bytes=tuple(item_bytes),
            item_sizes=tuple(item_sizes),
        )
        atomic_write(self.cache_dir / _MANIFEST, manifest.to_json().encode(), overwrite=True)

    # --------------------------------------------------------------- dataset
    def __len__(self) -> int:
        return self._manifest.num_items

    def _index(self, index: int) -> int:
        i = operator.index(index)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {index} out of range for a LatentDataset of {n} items")
        return i % n

    def stream_path(self, index: int) -> Path:
        """The cached lcodec stream of item ``index`` (decodable with ``lcodec.decompress``)."""
        return self.cache_dir / _STREAMS / _stream_name(self._index(index))

    def latents(self, index: int) -> torch.Tensor:
        """Integer latents of item ``index`` as float32 (C, h, w), before ``transform``."""
        z, _ = self.codec.decompress_latents(self.stream_path(index).read_bytes())  # (1, C, h, w) int32
        return z[0].to(torch.float32)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[object, ...]:
        i = self._index(index)
        z = self.latents(i)
        if self.transform is not None:
            z = self.transform(z)
        extras = self._targets[i]
        return z if extras is None else (z, *extras)

    # ------------------------------------------------------------------ rate
    @property
    def manifest(self) -> LatentCacheManifest:
        return self._manifest

    @property
    def encoded_items(self) -> int:
        """How many items this construction encoded: 0 when the cache was reused."""
        return self._encoded_items

    @property
    def bytes_on_disk(self) -> int:
        """Total size of the cached streams (whole containers, headers included)."""
        return sum(self._manifest.item_bytes)

    @property
    def bits_per_pixel(self) -> float:
        """Stream bits over original pixels, pooled over the dataset (0.0 when empty)."""
        pixels = sum(h * w for h, w in self._manifest.item_sizes)
        return 8 * self.bytes_on_disk / pixels if pixels else 0.0

    @property
    def item_sizes(self) -> Sequence[tuple[int, int]]:
        """Original (H, W) of each item, e.g. for ``codec.decode_latents(z, size)``."""
        return self._manifest.item_sizes
