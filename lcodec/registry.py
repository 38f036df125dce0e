"""THE registry: codec name -> factory + CodecSpec (one dict, one decorator).

Names are lowercase-with-hyphens. A factory builds an untrained codec for a
quality; ``load`` adds the shipped weights. ``list_codecs`` accepts shell-style
patterns (``list_codecs("walloc-*")``).
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from lcodec.errors import ModelError

__all__ = ["CodecSpec", "register_codec", "list_codecs", "get_spec", "create_codec", "shipped_sha256"]

_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class CodecSpec:
    """What a registered codec is: one record per name, shared by `codec list --json`."""

    name: str
    modality: str  # "image" | "audio" | "video"
    qualities: tuple[int, ...]
    default_quality: int
    transform: str
    entropy_model: str
    paper: str
    description: str = ""
    weights: dict[int, str] = field(default_factory=dict)  # quality -> file in lcodec/weights
    weights_sha256: dict[int, str] = field(default_factory=dict)  # quality -> sha256 (filled from the manifest)
    sample_rate: int = 0  # audio codecs: the rate the model runs at (input is resampled to it)

    @property
    def shipped_qualities(self) -> tuple[int, ...]:
        """The rates whose weights ship in the package (the others are recipe-only)."""
        return tuple(q for q in self.qualities if q in self.weights)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["qualities"] = list(self.qualities)
        d["weights"] = {str(k): v for k, v in self.weights.items()}
        d["weights_sha256"] = {str(k): v for k, v in self.weights_sha256.items()}
        return d


_REGISTRY: dict[str, tuple[Callable[..., object], CodecSpec]] = {}


def register_codec(spec: CodecSpec) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Decorator: ``@register_codec(CodecSpec(name="walloc-rgb", ...))`` on a factory(quality)."""
    if not _NAME.match(spec.name):
        raise ModelError(f"codec name {spec.name!r} must be lowercase-with-hyphens")
    if spec.default_quality not in spec.qualities:
        raise ModelError(f"{spec.name}: default quality {spec.default_quality} not in {spec.qualities}")

    if spec.weights and not spec.weights_sha256:  # the manifest's record of each shipped file
        spec = replace(spec, weights_sha256=shipped_sha256(spec.weights))

    def wrap(factory: Callable[..., object]) -> Callable[..., object]:
        if spec.name in _REGISTRY:
            raise ModelError(f"codec {spec.name!r} is registered twice")
        _REGISTRY[spec.name] = (factory, spec)
        return factory

    return wrap


MANIFEST = Path(__file__).resolve().parent / "weights" / "manifest.json"


def shipped_sha256(weights: dict[int, str]) -> dict[int, str]:
    """quality -> sha256 of its shipped weights file (``weights``: quality -> file name), from
    ``weights/manifest.json``; qualities whose file is not in the manifest are left out."""
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    return {q: manifest[f] for q, f in weights.items() if f in manifest}


def _ensure_builtin() -> None:
    import lcodec.codecs  # noqa: F401  (registers the built-in codecs)


def list_codecs(pattern: str = "*") -> list[CodecSpec]:
    """Registered codecs whose name matches ``pattern``, sorted by name."""
    _ensure_builtin()
    return [spec for name, (_, spec) in sorted(_REGISTRY.items()) if fnmatch.fnmatchcase(name, pattern)]


def get_spec(name: str) -> CodecSpec:
    _ensure_builtin()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ModelError(f"unknown codec {name!r}; registered codecs: {known}")
    return _REGISTRY[name][1]


def create_codec(name: str, quality: int | None = None, **kwargs: object) -> object:
    """Build an (untrained) codec. Unknown kwargs raise."""
    spec = get_spec(name)
    quality = spec.default_quality if quality is None else quality
    if quality not in spec.qualities:
        raise ModelError(f"{name}: quality {quality} not available; choose from {list(spec.qualities)}")
    factory = _REGISTRY[name][0]
    try:
        return factory(quality=quality, **kwargs)
    except TypeError as exc:
        raise ModelError(f"{name}: bad arguments {sorted(kwargs)}: {exc}") from None
