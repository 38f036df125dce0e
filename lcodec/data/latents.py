"""Compressed-domain datasets: learn from a codec's latents instead of pixels.

Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning" (2024): a light
WaLLoC encoder turns an image into a small tensor that models can consume directly.
``LatentDataset`` stores every item of an image dataset ONCE as real lcodec streams and
serves the streams' decoded latents; the synthesis network never runs::

    dataset[i] = (image (1|3, H, W) in [0, 1] or uint8, label, ...)
        │  once, on construction: items of one size in batches of ``batch_size``
        └─► codec.compress(batch) ─► one container per batch, appended to cache_dir/shard-00000.bin
                                      (+ targets.pt, manifest.json: the index and a hash per item)
                                   │  on first access (or ``tensors()``)
                                   └─► codec.decompress_latents ─► (latents (C, h, w) float32, label, ...)

The cache cannot serve other data: its manifest records the codec name, quality and weights
hash and a sha256 of every item (image and labels); a dataset that differs in any of them is
re-encoded with a ``StaleCacheWarning``, never mixed with the old streams or labels.
"""
from __future__ import annotations

import hashlib
import io
import json
import operator
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lcodec.bitstream.container import atomic_write
from lcodec.errors import InputError, LcodecError, ModelError

__all__ = [
    "CACHE_VERSION",
    "LatentCodec",
    "LatentCacheManifest",
    "StaleCacheWarning",
    "LatentDataset",
    "latent_stats",
]

CACHE_VERSION = 2
_MANIFEST = "manifest.json"
_TARGETS = "targets.pt"
_SHARD_BYTES = 256 << 20  # a new shard file after this many bytes
_SCALARS = (bool, int, float, str, type(None))


class StaleCacheWarning(UserWarning):
    """A latent cache did not match the codec, its weights or the dataset, and is being re-encoded."""


class LatentCodec(Protocol):
    """What ``LatentDataset`` needs from a codec (every image codec of the registry provides it)."""

    name: str
    quality: int
    weights_hash: bytes

    def compress(self, x: torch.Tensor) -> bytes: ...

    def decompress_latents(self, data: bytes) -> tuple[torch.Tensor, tuple[int, ...]]: ...


@dataclass(frozen=True)
class LatentCacheManifest:
    """The cache's ``manifest.json``: who wrote the streams, where each batch lies, and a content
    hash of every item (image and labels)."""

    codec: str
    quality: int
    weights_hash: str  # hex of codec.weights_hash
    num_items: int
    item_sha256: tuple[str, ...]  # per item: sha256 of its image (as coded) and its label fields
    item_sizes: tuple[tuple[int, int], ...]  # original (H, W) of each item
    shards: tuple[tuple[str, int], ...]  # (file name, bytes) of each shard
    batches: tuple[tuple[int, int, int, int, int], ...]  # (shard, offset, bytes, first item, items)
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
            if int(raw.get("version", 1)) != CACHE_VERSION:
                raise ValueError(f"cache format version {raw.get('version', 1)}, this lcodec writes {CACHE_VERSION}")
            manifest = cls(
                codec=str(raw["codec"]),
                quality=int(raw["quality"]),
                weights_hash=str(raw["weights_hash"]),
                num_items=int(raw["num_items"]),
                item_sha256=tuple(str(h) for h in raw["item_sha256"]),
                item_sizes=tuple((int(h), int(w)) for h, w in raw["item_sizes"]),
                shards=tuple((str(n), int(b)) for n, b in raw["shards"]),
                batches=tuple(tuple(int(v) for v in b) for b in raw["batches"]),  # type: ignore[misc]
                version=int(raw["version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a latent cache manifest ({exc})") from None
        if not manifest.num_items == len(manifest.item_sha256) == len(manifest.item_sizes):
            raise ValueError("manifest lists a different number of items than num_items")
        covered = [i for _, _, _, first, n in manifest.batches for i in range(first, first + n)]
        if covered != list(range(manifest.num_items)):
            raise ValueError("manifest batches do not cover the items in order")
        if any(not 0 <= s < len(manifest.shards) for s, *_ in manifest.batches):
            raise ValueError("manifest names a shard it does not list")
        return manifest


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}.bin"


def _as_image(image: object, index: int) -> torch.Tensor:
    """Check one item's image: (1|3, H, W), float in [0, 1] or uint8 (converted)."""
    if not isinstance(image, torch.Tensor):
        raise InputError(
            f"item {index}: expected a tensor image (C, H, W) in [0, 1], got {type(image).__name__}; "
            "convert PIL images with torchvision.transforms.functional.to_tensor"
        )
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise InputError(f"item {index}: expected an image (C, H, W) with C = 1 or 3, got shape {tuple(image.shape)}")
    if image.shape[1] < 1 or image.shape[2] < 1:
        raise InputError(f"item {index}: empty image of shape {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        return image.float() / 255.0
    if not torch.is_floating_point(image):
        raise InputError(f"item {index}: expected a float image in [0, 1] or uint8 pixels, got {image.dtype}")
    if not torch.isfinite(image).all():
        raise InputError(f"item {index}: image contains NaN or infinite values")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi > 1.0:
        hint = "; divide 8-bit values by 255" if hi > 2 else ""
        raise InputError(f"item {index}: pixel values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]{hint}")
    return image.float()


def _hash_value(h, value: object) -> None:
    """Feed a canonical byte form of a cached label field (or image) into ``h``."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}{len(value)}[".encode())
        for v in value:
            _hash_value(h, v)
        h.update(b"]")
    elif isinstance(value, dict):
        h.update(f"dict{len(value)}{{".encode())
        for k in sorted(value):
            h.update(repr(k).encode())
            _hash_value(h, value[k])
        h.update(b"}")
    else:
        h.update(f"{type(value).__name__}:{value!r};".encode())


def _item_hash(image: torch.Tensor, extras: tuple[object, ...] | None) -> str:
    h = hashlib.sha256()
    _hash_value(h, image)
    _hash_value(h, extras)
    return h.hexdigest()


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


def _compress_batch(codec: LatentCodec, images: list[torch.Tensor], first: int) -> list[tuple[bytes, int, int]]:
    """One batch of same-size images -> [(stream, first item, items)]: one container for the batch,
    or one per image for a codec that codes one image per stream."""
    x = torch.stack([im.expand(3, -1, -1) for im in images])
    # the cache serves latents: a per-image restoration filter (which needs a full decode to fit)
    # would change no latent, so it is not fitted
    skip = {"restoration": False} if getattr(codec, "restoration", False) else {}
    try:
        return [(codec.compress(x, **skip), first, len(images))]
    except InputError as exc:
        if len(images) > 1 and "batch" in str(exc):
            return [item for k, im in enumerate(images) for item in _compress_batch(codec, [im], first + k)]
        raise type(exc)(f"items {first}..{first + len(images) - 1}: {exc}") from exc
    except LcodecError as exc:
        raise type(exc)(f"items {first}..{first + len(images) - 1}: {exc}") from exc


_POOL_CODEC: LatentCodec | None = None  # the codec a forked worker inherits


def _pool_compress(images: list[torch.Tensor], first: int) -> list[tuple[bytes, int, int]]:
    assert _POOL_CODEC is not None
    return _compress_batch(_POOL_CODEC, images, first)


class _BatchPool:
    """Compresses batches in order: in this process (``workers`` 1), or in ``workers`` forked
    processes with one torch thread each, at most ``2 * workers`` batches in flight; results come
    back in submission order. Fork only (the workers inherit the loaded codec); where the platform
    has no fork, batches are compressed here."""

    def __init__(self, codec: LatentCodec, workers: int) -> None:
        import multiprocessing

        self.codec, self.pending, self.pool = codec, [], None
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            from concurrent.futures import ProcessPoolExecutor

            global _POOL_CODEC
            _POOL_CODEC = codec
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                            initializer=torch.set_num_threads, initargs=(1,))
            self.depth = 2 * workers

    def submit(self, images: list[torch.Tensor], first: int):
        """Queue one batch; yields the results that are ready to be written, in order."""
        if self.pool is None:
            yield _compress_batch(self.codec, images, first)
            return
        self.pending.append(self.pool.submit(_pool_compress, images, first))
        while len(self.pending) >= self.depth:
            yield self.pending.pop(0).result()

    def finish(self):
        while self.pending:
            yield self.pending.pop(0).result()
        self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool, self.pending = None, []


class LatentDataset(Dataset):
    """A map-style dataset of codec latents, cached once as real lcodec streams.

    ``dataset[i]`` must be an image tensor (C, H, W), C = 1 (repeated to RGB) or 3, float in
    [0, 1] or uint8, or a tuple ``(image, label, ...)``. ``self[i]`` is then the stream's latents
    as float32 (C', h, w) (standardised with the codec's shipped statistics when ``normalize``,
    then ``transform`` applied, if given), alone or followed by the item's label fields.

    Construction encodes the dataset in batches of up to ``batch_size`` consecutive items of one
    size (one container per batch), unless ``cache_dir`` already holds a cache of exactly these
    items (content hashes) from this codec, quality and weights. ``in_memory`` keeps every
    decoded batch (an epoch after the first decodes nothing); False keeps only the last one
    (sequential reads stay cheap, memory stays one batch). ``workers`` > 1 compresses batches in
    that many forked processes (one torch thread each; the items are still read, hashed and
    written here, in order, so the cache is the same bytes as with one worker).
    """

    def __init__(
        self,
        dataset: Dataset,
        codec: LatentCodec,
        cache_dir: str | Path,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        progress: bool = True,
        *,
        normalize: bool = False,
        batch_size: int = 64,
        in_memory: bool = True,
        workers: int = 1,
    ) -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise InputError(
                f"LatentDataset wraps map-style datasets (with __len__ and __getitem__), got {type(dataset).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self.codec = codec
        self.transform = transform
        self.batch_size = batch_size
        self.in_memory = bool(in_memory)
        self.cache_dir = Path(cache_dir)
        if self.cache_dir.exists() and not self.cache_dir.is_dir():
            raise InputError(f"cache_dir {self.cache_dir} exists and is not a folder")
        self._stats = latent_stats(codec) if normalize else None
        self._encoded_items = 0
        stale = self._stale_reason(dataset, progress)
        if stale is not None:
            if stale:
                warnings.warn(StaleCacheWarning(f"{self.cache_dir}: {stale}; re-encoding"), stacklevel=2)
            self._encode(dataset, progress)
            self._encoded_items = len(dataset)
        self._manifest = LatentCacheManifest.from_json((self.cache_dir / _MANIFEST).read_text())
        self._targets: list[tuple[object, ...] | None] = torch.load(
            self.cache_dir / _TARGETS, map_location="cpu", weights_only=True
        )
        self._where = [(b, k) for b, (*_, n) in enumerate(self._manifest.batches) for k in range(n)]
        self._decoded: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ cache
    def _items(self, dataset: Dataset):
        """(index, image (3|1, H, W) float, label fields or None, content hash) for every item."""
        for i in range(len(dataset)):
            image, extras = _split_item(dataset[i], i)
            image = _as_image(image, i)
            yield i, image, extras, _item_hash(image, extras)

    def _stale_reason(self, dataset: Dataset, progress: bool) -> str | None:
        """None if the cache holds exactly these items; otherwise why not ("" for an empty cache_dir)."""
        path = self.cache_dir / _MANIFEST
        if not path.is_file():
            if self.cache_dir.is_dir() and any(self.cache_dir.glob("shard-*.bin")):
                return "shards without a manifest (an interrupted encoding?)"
            if (self.cache_dir / "streams").is_dir():
                return "a cache of an earlier lcodec version"
            return ""
        try:
            m = LatentCacheManifest.from_json(path.read_text())
        except (OSError, ValueError) as exc:
            return f"unreadable manifest ({exc})"
        loaded = (self.codec.name, self.codec.quality, self.codec.weights_hash.hex())
        if (m.codec, m.quality, m.weights_hash) != loaded:
            return (f"streams were written by {m.codec} q{m.quality} weights {m.weights_hash[:12]}, "
                    f"the codec is {loaded[0]} q{loaded[1]} weights {loaded[2][:12]}")
        if m.num_items != len(dataset):
            return f"the cache holds {m.num_items} items, the dataset has {len(dataset)}"
        for name, size in m.shards:
            shard = self.cache_dir / name
            if not shard.is_file() or shard.stat().st_size != size:
                return f"shard {name} is missing or not the size the manifest records"
        if not (self.cache_dir / _TARGETS).is_file():
            return f"{_TARGETS} is missing"
        from tqdm import tqdm

        items = tqdm(self._items(dataset), total=len(dataset), desc="checking the latent cache", unit="item",
                     disable=not progress, leave=False)
        differ = [i for i, _, _, h in items if h != m.item_sha256[i]]
        if differ:
            return (f"{len(differ)} of {m.num_items} items differ from the cached ones (first: item {differ[0]}; "
                    "another dataset, or changed images or labels)")
        return None

    def _encode(self, dataset: Dataset, progress: bool) -> None:
        """Compress every item once, in batches; shards are written under temporary names and the
        manifest last, so an interrupted build is never reused."""
        from tqdm import tqdm

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        (self.cache_dir / _MANIFEST).unlink(missing_ok=True)
        for old in self.cache_dir.glob("shard-*.bin"):
            old.unlink()
        hashes: list[str] = []
        sizes: list[tuple[int, int]] = []
        targets: list[tuple[object, ...] | None] = []
        batches: list[tuple[int, int, int, int, int]] = []
        shards: list[tuple[str, int]] = []
        partial: list[Path] = []
        limit = self.batch_size
        writer = None
        state = {"shard": -1, "offset": 0}

        def open_shard() -> None:
            nonlocal writer
            if writer is not None:
                writer.close()
                shards.append((_shard_name(state["shard"]), state["offset"]))
            state["shard"] += 1
            state["offset"] = 0
            partial.append(self.cache_dir / f".{_shard_name(state['shard'])}.partial")
            writer = open(partial[-1], "wb")

        def write(data: bytes, first: int, n: int) -> None:
            if writer is None or (state["offset"] and state["offset"] + len(data) > _SHARD_BYTES):
                open_shard()
            writer.write(data)
            batches.append((state["shard"], state["offset"], len(data), first, n))
            state["offset"] += len(data)

        pool = _BatchPool(self.codec, self.workers)

        def flush(images: list[torch.Tensor], first: int) -> None:
            nonlocal limit
            for done in pool.submit(images, first):
                if len(done) > 1:
                    limit = 1  # a codec that codes one image per stream: batches of one from now on
                for data, k0, n in done:
                    write(data, k0, n)

        desc = f"encoding with {self.codec.name} q{self.codec.quality}"
        pending: list[torch.Tensor] = []
        try:
            for i, image, extras, digest in tqdm(self._items(dataset), total=len(dataset), desc=desc, unit="item",
                                                 disable=not progress):
                if pending and (len(pending) >= limit or pending[0].shape[-2:] != image.shape[-2:]):
                    flush(pending, i - len(pending))
                    pending = []
                pending.append(image)
                hashes.append(digest)
                sizes.append((int(image.shape[1]), int(image.shape[2])))
                targets.append(extras)
            if pending:
                flush(pending, len(hashes) - len(pending))
            for done in pool.finish():
                for data, k0, n in done:
                    write(data, k0, n)
            if writer is not None:
                writer.close()
                shards.append((_shard_name(state["shard"]), state["offset"]))
                writer = None
            for k, tmp in enumerate(partial):
                os.replace(tmp, self.cache_dir / _shard_name(k))
        except BaseException:
            pool.close()
            if writer is not None:
                writer.close()
            for tmp in partial:
                tmp.unlink(missing_ok=True)
            raise
        buffer = io.BytesIO()
        torch.save(targets, buffer)
        atomic_write(self.cache_dir / _TARGETS, buffer.getvalue(), overwrite=True)
        manifest = LatentCacheManifest(
            codec=self.codec.name,
            quality=self.codec.quality,
            weights_hash=self.codec.weights_hash.hex(),
            num_items=len(hashes),
            item_sha256=tuple(hashes),
            item_sizes=tuple(sizes),
            shards=tuple(shards),
            batches=tuple(batches),
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

    def stream_location(self, index: int) -> tuple[Path, int, int, int]:
        """(shard file, byte offset, bytes, position in the batch) of the container holding item
        ``index``; those bytes decode with ``lcodec.decompress`` to the whole batch."""
        b, k = self._where[self._index(index)]
        shard, offset, length, _, _ = self._manifest.batches[b]
        return self.cache_dir / self._manifest.shards[shard][0], offset, length, k

    def stream(self, index: int) -> bytes:
        """The container (a complete lcodec stream) that holds item ``index``, with its batch."""
        path, offset, length, _ = self.stream_location(index)
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def _batch(self, b: int) -> torch.Tensor:
        z = self._decoded.get(b)
        if z is None:
            first = self._manifest.batches[b][3]
            z, _ = self.codec.decompress_latents(self.stream(first))
            z = z.to(torch.float32)
            if not self.in_memory:
                self._decoded.clear()
            self._decoded[b] = z
        return z

    def _standardise(self, z: torch.Tensor) -> torch.Tensor:
        """(..., C, h, w) latents -> (z - mean_c) / scale with the codec's shipped statistics."""
        if self._stats is None:
            return z
        mean, std = self._stats
        return (z - mean.view(-1, 1, 1)) / std.view(-1, 1, 1)

    def latents(self, index: int) -> torch.Tensor:
        """Latents of item ``index`` as float32 (C, h, w) (standardised if ``normalize``), before
        ``transform``."""
        b, k = self._where[self._index(index)]
        return self._standardise(self._batch(b)[k])

    def __getitem__(self, index: int) -> torch.Tensor | tuple[object, ...]:
        i = self._index(index)
        z = self.latents(i)
        if self.transform is not None:
            z = self.transform(z)
        extras = self._targets[i]
        return z if extras is None else (z, *extras)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """Every item at once: ``(latents (N, C, h, w) float32, *label fields)``, each label field
        stacked into a tensor where its values are tensors of one shape or numbers (else a list).
        Needs items of one size; ``transform`` is not applied."""
        if len(set(self._manifest.item_sizes)) > 1:
            raise InputError("tensors() needs items of one size; this dataset has "
                             f"{len(set(self._manifest.item_sizes))} sizes (use ds[i] with a padding collate)")
        if len(self) == 0:
            raise InputError("the dataset is empty")
        z = torch.cat([self._standardise(self._batch(b)) for b in range(len(self._manifest.batches))])
        fields = [] if self._targets[0] is None else list(zip(*self._targets))
        return (z, *(_stack_field(f) for f in fields))

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
        """Total size of the cached containers (headers included)."""
        return sum(b[2] for b in self._manifest.batches)

    @property
    def bits_per_pixel(self) -> float:
        """Stream bits over original pixels, pooled over the dataset (0.0 when empty)."""
        pixels = sum(h * w for h, w in self._manifest.item_sizes)
        return 8 * self.bytes_on_disk / pixels if pixels else 0.0

    @property
    def item_sizes(self) -> Sequence[tuple[int, int]]:
        """Original (H, W) of each item, e.g. for ``codec.decode_latents(z, size)``."""
        return self._manifest.item_sizes


def _stack_field(values: tuple[object, ...]) -> object:
    if all(isinstance(v, torch.Tensor) for v in values) and len({tuple(v.shape) for v in values}) == 1:
        return torch.stack(list(values))
    if all(isinstance(v, (bool, int, float)) for v in values):
        return torch.tensor(values)
    return list(values)


# ------------------------------------------------------------------ shipped latent statistics
STATS_FILE = Path(__file__).resolve().parents[1] / "weights" / "latent_stats.json"


def latent_stats(codec) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``normalize=True`` subtracts and divides by: the per-channel mean of ``codec``'s latents
    on its training images, and ONE scale for every channel, the root mean square of the per-channel
    deviations (both (C,) tensors; ``lcodec/weights/latent_stats.json``, written by ``python -m
    lcodec.train.latent_stats``). One scale, because the rd/light/mcq transforms leave more than half
    of their 192 channels nearly unused on photos (deviation < 0.05): dividing each channel by its
    own deviation blows those up on other data (MNIST MLP, walloc-rgb-light: 0.879 per channel,
    0.928 with one scale, pixels 0.942). A codec or weights without shipped statistics raise
    ``ModelError``."""
    key = f"{codec.name}/q{codec.quality}"
    table = json.loads(STATS_FILE.read_text()) if STATS_FILE.is_file() else {}
    entry = table.get(key)
    if entry is None:
        raise ModelError(f"no shipped latent statistics for {key}; normalize=False, or compute them with "
                         f"`python -m lcodec.train.latent_stats --codec {codec.name}`")
    if entry["weights_hash"] != codec.weights_hash.hex():
        raise ModelError(f"the shipped latent statistics of {key} belong to other weights "
                         f"({entry['weights_hash'][:12]}, loaded {codec.weights_hash.hex()[:12]})")
    std = torch.tensor(entry["std"], dtype=torch.float64)
    scale = float(std.pow(2).mean().sqrt())
    return torch.tensor(entry["mean"], dtype=torch.float32), torch.full(std.shape, scale, dtype=torch.float32)
