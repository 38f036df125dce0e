"""One interface for every codec the harness evaluates, learned or classical.

The harness only ever sees ``EvalCodec``: it never branches on a codec's name.
``get_eval_codec(name)`` returns a classical adapter for a known classical name
(``jpeg``, ``webp``, ``opus``, ``h264``, ...) and wraps any registered learned
codec otherwise.

Media items follow the package's tensor conventions:
images (1, 3, H, W) in [0, 1]; audio (1, channels, samples) in [-1, 1] with a
sample rate; video (1, 3, T, H, W) in [0, 1] with a frame rate.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch

from lcodec.bitstream.container import read_container
from lcodec.errors import InputError, ModelError

__all__ = [
    "MediaItem",
    "Encoded",
    "EvalCodec",
    "LearnedCodec",
    "PillowImageCodec",
    "CLASSICAL",
    "register_classical",
    "get_eval_codec",
    "classical_names",
    "check_modality",
]


@dataclass(frozen=True)
class MediaItem:
    """One evaluation item: a tensor plus the media facts needed to code it."""

    name: str
    modality: str  # "image" | "audio" | "video"
    x: torch.Tensor
    sample_rate: int = 0
    fps: float = 0.0

    @property
    def pixels(self) -> int:
        """Pixels per frame times frames (images/video); 0 for audio."""
        if self.modality == "image":
            return int(self.x.shape[-2] * self.x.shape[-1])
        if self.modality == "video":
            return int(self.x.shape[-3] * self.x.shape[-2] * self.x.shape[-1])
        return 0

    @property
    def seconds(self) -> float:
        """Duration for audio (samples / rate) and video (frames / fps); 0 for images."""
        if self.modality == "audio" and self.sample_rate:
            return self.x.shape[-1] / self.sample_rate
        if self.modality == "video" and self.fps:
            return self.x.shape[-3] / self.fps
        return 0.0


@dataclass(frozen=True)
class Encoded:
    data: bytes  # the WHOLE file a user would store


class EvalCodec(Protocol):
    """What the harness runs. Optional, outside the timings: ``prepare(quality)`` (load what an
    encode needs) and ``estimate_bits(item, quality)`` (the model's own payload estimate in bits)."""

    name: str
    modality: str
    qualities: tuple
    description: str

    def encode(self, item: MediaItem, quality) -> Encoded: ...

    def decode(self, data: bytes, item: MediaItem) -> torch.Tensor: ...


# ------------------------------------------------------------------ learned codecs
REFINE_SUFFIX = "+refine"


def _split_count(name: str, suffix: str, what: str) -> tuple[str, int]:
    """``NAME{suffix}N`` -> (NAME, N >= 1); a name without the suffix -> (name, 0)."""
    base, sep, n = name.partition(suffix)
    if not sep:
        return name, 0
    if not n.isdigit() or int(n) < 1:
        raise ModelError(f"{name!r}: expected CODEC{suffix}N with N >= 1 {what}")
    return base, int(n)


def split_refine(name: str) -> tuple[str, int]:
    """``"walloc-rgb-rd+refine20"`` -> ``("walloc-rgb-rd", 20)``; a plain name -> ``(name, 0)``.

    The suffix selects encoder-side latent refinement (``refine_latents`` of the variable-rate
    image codecs) with that many steps: the same weights and decoder, a slower encoder.
    """
    return _split_count(name, REFINE_SUFFIX, "refinement steps")


GOP_SUFFIX = "+gop"


def split_gop(name: str) -> tuple[str, int]:
    """``"walloc-video+gop1"`` -> ``("walloc-video", 1)`` (video: an intra frame every N frames;
    1 codes every frame intra); a plain name -> ``(name, 0)`` (the codec's default)."""
    return _split_count(name, GOP_SUFFIX, "frames per intra period")


class LearnedCodec:
    """Any codec from the registry, at each of its shipped qualities; ``NAME+refineN`` encodes
    with N steps of encoder-side latent refinement (see ``split_refine``), ``NAME+gopN`` (video)
    with an intra frame every N frames (``split_gop``)."""

    def __init__(self, name: str) -> None:
        from lcodec.registry import get_spec

        base, self.gop = split_gop(name)
        base, self.refine = split_refine(base)
        self.spec = get_spec(base)
        self.name = name
        self.base_name = base
        self.modality = self.spec.modality
        # the shipped rates; a recipe-only codec keeps them all, and loading says how to train them
        self.qualities = self.spec.shipped_qualities or tuple(self.spec.qualities)
        self.description = f"{self.spec.transform}; {self.spec.entropy_model}"
        if self.refine:
            if self.modality != "image":
                raise ModelError(f"{name!r}: encoder refinement is for image codecs")
            self.description += f"; encoder-side latent refinement, {self.refine} steps"
        if self.gop:
            if self.modality != "video":
                raise ModelError(f"{name!r}: an intra period is for video codecs")
            self.description += f"; intra period {self.gop}"
        self._loaded: dict[int, object] = {}
        # (item name, quality) -> bytes of each range-coded section of the last encode
        self.section_bytes: dict[tuple[str, int], tuple[int, ...]] = {}
        self.file_bytes: dict[tuple[str, int], int] = {}

    def _codec(self, quality: int):
        from lcodec.api import load

        if quality not in self._loaded:
            self._loaded[quality] = load(self.base_name, quality)
        return self._loaded[quality]

    def prepare(self, quality: int) -> None:
        """Load this quality's weights (the harness calls it before timing the first encode)."""
        self._codec(quality)

    def encode(self, item: MediaItem, quality: int) -> Encoded:
        codec = self._codec(quality)
        kwargs = {"sample_rate": item.sample_rate} if item.modality == "audio" else {}
        if item.modality == "video":
            kwargs["fps"] = item.fps if item.fps > 0 else 25.0
            if self.gop:
                kwargs["gop"] = self.gop
        if self.refine:
            kwargs["refine"] = self.refine
        data = codec.compress(item.x, **kwargs)
        self.section_bytes[(item.name, quality)] = tuple(len(s) for s in read_container(data).sections)
        self.file_bytes[(item.name, quality)] = len(data)
        return Encoded(data)

    def estimate_bits(self, item: MediaItem, quality: int) -> float | None:
        codec = self._codec(quality)
        if not hasattr(codec, "estimate_bits") or self.refine:  # the estimate is of the unrefined latents
            return None
        kwargs = {"sample_rate": item.sample_rate} if item.modality == "audio" else {}
        return float(codec.estimate_bits(item.x, **kwargs))

    def decode(self, data: bytes, item: MediaItem) -> torch.Tensor:
        return self._codec(read_container(data).quality).decompress(data)


# ---------------------------------------------------------------- classical codecs
CLASSICAL: dict[str, Callable[[], EvalCodec]] = {}


def register_classical(name: str) -> Callable[[Callable[[], EvalCodec]], Callable[[], EvalCodec]]:
    def wrap(factory: Callable[[], EvalCodec]) -> Callable[[], EvalCodec]:
        if name in CLASSICAL:
            raise ModelError(f"classical codec {name!r} registered twice")
        CLASSICAL[name] = factory
        return factory

    return wrap


def _to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    from lcodec.io.image import to_uint8

    return to_uint8(x)


def _from_pil(img) -> torch.Tensor:
    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a.transpose(2, 0, 1).copy()).unsqueeze(0)


class PillowImageCodec:
    """A still-image format through Pillow. ``quality`` follows the format's own scale."""

    modality = "image"

    def __init__(self, name: str, fmt: str, qualities: tuple, options: Callable[[object], dict], description: str):
        self.name, self.fmt, self.qualities, self._options, self.description = name, fmt, qualities, options, description

    def encode(self, item: MediaItem, quality) -> Encoded:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(_to_uint8_hwc(item.x), mode="RGB").save(buf, format=self.fmt, **self._options(quality))
        return Encoded(buf.getvalue())

    def decode(self, data: bytes, item: MediaItem) -> torch.Tensor:
        from PIL import Image

        return _from_pil(Image.open(io.BytesIO(data)))


@register_classical("jpeg")
def _jpeg() -> EvalCodec:
    return PillowImageCodec(
        "jpeg", "JPEG", (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        lambda q: {"quality": q, "optimize": True, "subsampling": 2},
        "JPEG (libjpeg via Pillow), 4:2:0, optimized Huffman tables",
    )


@register_classical("webp")
def _webp() -> EvalCodec:
    return PillowImageCodec(
        "webp", "WEBP", (2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
        lambda q: {"quality": q, "method": 6},
        "WebP lossy (libwebp via Pillow), method 6",
    )


@register_classical("avif")
def _avif() -> EvalCodec:
    from PIL import features

    if not features.check("avif"):
        raise ModelError("this Pillow build has no AVIF support")
    return PillowImageCodec(
        "avif", "AVIF", (10, 20, 30, 40, 50, 60, 70, 80, 90),
        lambda q: {"quality": q, "speed": 6, "subsampling": "4:2:0"},
        "AVIF (libavif via Pillow), 4:2:0, speed 6",
    )


@register_classical("png")
def _png() -> EvalCodec:
    return PillowImageCodec("png", "PNG", (9,), lambda q: {"compress_level": q, "optimize": True},
                            "PNG (zlib via Pillow), lossless")


@register_classical("webp-lossless")
def _webp_lossless() -> EvalCodec:
    return PillowImageCodec("webp-lossless", "WEBP", (100,), lambda q: {"lossless": True, "quality": q, "method": 6},
                            "WebP lossless (libwebp via Pillow)")


def classical_names() -> list[str]:
    _load_optional_modules()
    return sorted(CLASSICAL)


def _load_optional_modules() -> None:
    """Classical adapters defined in other modules register themselves on import."""
    import importlib

    for module in ("lcodec.eval.classical_av",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def get_eval_codec(name: str) -> EvalCodec:
    """A classical adapter by name, else the registered learned codec of that name."""
    _load_optional_modules()
    if name in CLASSICAL:
        return CLASSICAL[name]()
    from lcodec.registry import get_spec

    base, _ = split_refine(split_gop(name)[0])
    try:
        get_spec(base)
    except ModelError:
        raise ModelError(
            f"unknown codec {name!r}; classical: {', '.join(sorted(CLASSICAL))}; "
            "learned: see `codec list`"
        ) from None
    return LearnedCodec(name)


def check_modality(codec: EvalCodec, item: MediaItem) -> None:
    if codec.modality != item.modality:
        raise InputError(f"{codec.name} codes {codec.modality}, but {item.name} is {item.modality}")
