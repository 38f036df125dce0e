"""Public entry points: load shipped codecs, list them, decode any stream."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from lcodec.errors import ModelError
from lcodec.registry import CodecSpec, create_codec, get_spec, list_codecs

__all__ = ["load", "list_codecs", "decompress", "weights_path", "file_sha256", "with_base"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_QUALITY_SUFFIX = re.compile(r"^(?P<name>.+)-q(?P<q>\d+)$")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resolve(name: str, quality: int | None) -> tuple[CodecSpec, int]:
    try:
        spec = get_spec(name)
    except ModelError:
        m = _QUALITY_SUFFIX.match(name)  # accept "walloc-rgb-q3" as name + quality
        if m is None or quality is not None:
            raise
        spec, quality = get_spec(m["name"]), int(m["q"])
    quality = spec.default_quality if quality is None else int(quality)
    if quality not in spec.qualities:
        raise ModelError(f"{spec.name}: quality {quality} not available; choose from {list(spec.qualities)}")
    return spec, quality


def _stored_qualities(state: dict) -> list[int]:
    """The qualities a weights file serves: one, or a variable-rate model's whole ladder."""
    return [int(q) for q in state.get("qualities", [state.get("quality", -1)])]


def weights_path(name: str, quality: int | None = None) -> Path:
    """Where ``name`` at ``quality`` keeps its weights: the shipped file, or for a rate that is not
    shipped the file ``codec train NAME-qN --export`` would write there (``NAME-qN.pt``)."""
    spec, quality = _resolve(name, quality)
    return WEIGHTS_DIR / spec.weights.get(quality, f"{spec.name}-q{quality}.pt")


def with_base(state: dict, path: Path) -> dict:
    """A weights file may hold only the tensors that differ from another shipped file (``base``,
    in the same folder, pinned by its sha256): those under the prefix ``replaced`` (or under any of
    a list of prefixes). Returns the complete state: the base's other tensors, then the file's
    tensors and entries."""
    if "base" not in state:
        return state
    base = path.parent / str(state["base"])
    if not base.exists():
        raise ModelError(f"{path} is laid over {base.name}, which is missing; reinstall lcodec")
    if file_sha256(base) != state.get("base_sha256"):
        raise ModelError(f"{path} was fitted onto another version of {base.name} (sha256 differs); "
                         "refit it or reinstall lcodec")
    below = torch.load(base, map_location="cpu", weights_only=True)
    replaced = state["replaced"]
    prefix = (str(replaced),) if isinstance(replaced, str) else tuple(str(p) for p in replaced)
    tensors = {k: v for k, v in below["state_dict"].items() if not k.startswith(prefix)}
    extra = {k: v for k, v in state.items() if k not in ("base", "base_sha256", "replaced", "state_dict")}
    return {**below, **extra, "state_dict": {**tensors, **state["state_dict"]}}


def load(name: str, quality: int | None = None, device: str | torch.device = "cpu"):
    """Shipped codec ``name`` at ``quality`` (default: the spec's), in eval mode.

    ``name`` may also carry the quality, e.g. ``load("walloc-rgb-q3")``.
    """
    spec, quality = _resolve(name, quality)
    path = weights_path(spec.name, quality)
    if not path.exists() and quality not in spec.weights:
        raise ModelError(f"{spec.name} q{quality} has no shipped weights ({spec.description}); train them with "
                         f"`codec train {spec.name}-q{quality} --export {path}`")
    if not path.exists():
        raise ModelError(
            f"weights for {spec.name} q{quality} are missing ({path}); "
            f"reinstall lcodec or train them with `codec train {spec.name}-q{quality}`"
        )
    expected = spec.weights_sha256.get(quality)
    if expected and file_sha256(path) != expected:
        raise ModelError(f"{path} does not match its recorded sha256; the file is damaged or was replaced")
    state = with_base(torch.load(path, map_location="cpu", weights_only=True), path)
    if state.get("name") != spec.name or quality not in _stored_qualities(state):
        raise ModelError(f"{path} holds {state.get('name')} q{state.get('quality')}, not {spec.name} q{quality}")
    codec = create_codec(spec.name, quality)
    codec.load_weights(state)
    return codec.to(device).eval()


def decompress(data: bytes) -> torch.Tensor:
    """Decode any lcodec stream: the codec, quality and weights are found from its header."""
    from lcodec.bitstream.container import read_container

    c = read_container(data)
    return load(c.codec, c.quality).decompress(data)
