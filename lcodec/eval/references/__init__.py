"""Published rate-distortion reference curves (e.g. CompressAI's Kodak results) shipped as package data."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcodec.errors import InputError

__all__ = ["Reference", "ReferenceCurve", "available_references", "load_reference"]

_HERE = Path(__file__).resolve().parent
# Reference name -> JSON file next to this module.
_FILES: dict[str, str] = {"compressai-kodak": "compressai_kodak.json"}


@dataclass(frozen=True)
class ReferenceCurve:
    """One published RD curve; points sorted by increasing bpp."""

    name: str
    description: str
    bpp: tuple[float, ...]
    psnr_rgb: tuple[float, ...]
    ms_ssim_rgb: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Reference:
    """A set of published curves measured on one dataset (not necessarily ours)."""

    name: str
    dataset: str
    source: str
    curves: tuple[ReferenceCurve, ...]

    def curve(self, name: str) -> ReferenceCurve:
        """Return the curve called ``name``; raise InputError listing the known names otherwise."""
        for c in self.curves:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.curves)
        raise InputError(f"reference {self.name!r} has no curve {name!r}; available: {known}")


def available_references() -> list[str]:
    """Names accepted by :func:`load_reference`."""
    return sorted(_FILES)


def _floats(values: Any, what: str) -> tuple[float, ...]:
    if not isinstance(values, list) or not values:
        raise InputError(f"{what}: expected a non-empty list of numbers")
    return tuple(float(v) for v in values)


def _curve(entry: dict[str, Any], ref: str) -> ReferenceCurve:
    name = str(entry["name"])
    res = entry["results"]
    bpp = _floats(res["bpp"], f"{ref}/{name}/bpp")
    psnr = _floats(res["psnr-rgb"], f"{ref}/{name}/psnr-rgb")
    ms = _floats(res["ms-ssim-rgb"], f"{ref}/{name}/ms-ssim-rgb") if "ms-ssim-rgb" in res else None
    if len(psnr) != len(bpp) or (ms is not None and len(ms) != len(bpp)):
        raise InputError(f"{ref}/{name}: bpp and metric lists differ in length")
    order = sorted(range(len(bpp)), key=bpp.__getitem__)

    def pick(xs: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(xs[i] for i in order)

    return ReferenceCurve(
        name=name,
        description=str(entry.get("description", "")),
        bpp=pick(bpp),
        psnr_rgb=pick(psnr),
        ms_ssim_rgb=pick(ms) if ms is not None else None,
    )


def load_reference(name: str = "compressai-kodak") -> Reference:
    """Load a shipped reference by name; unknown names raise InputError listing the available ones."""
    if name not in _FILES:
        raise InputError(f"unknown reference {name!r}; available: {', '.join(available_references())}")
    data = json.loads((_HERE / _FILES[name]).read_text(encoding="utf-8"))
    return Reference(
        name=str(data["name"]),
        dataset=str(data["dataset"]),
        source=str(data["source"]),
        curves=tuple(_curve(c, name) for c in data["curves"]),
    )
