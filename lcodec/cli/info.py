"""`codec info IN`: print a stream's header (no decoding)."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from lcodec.bitstream.container import FORMAT_VERSION, read_container
from lcodec.cli._common import read_stream

__all__ = ["add_parser", "main", "describe"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show an lcodec stream's header: format, codec, geometry, sizes, bpp")
    p.add_argument("input", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def describe(data: bytes) -> dict[str, object]:
    c = read_container(data)
    payload = sum(len(s) for s in c.sections)
    d: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "codec": c.codec,
        "quality": c.quality,
        "weights_sha256": c.weights_hash.hex(),
        "coder": {"id": c.coder_id, "version": ".".join(map(str, c.coder_version))},
        "modality": c.modality,
        "shape": list(c.geometry.shape),
        "bit_depth": c.geometry.bit_depth,
        "total_bytes": len(data),
        "header_bytes": len(data) - payload,
        "section_bytes": [len(s) for s in c.sections],
    }
    if c.modality == "image" and len(c.geometry.shape) == 4:
        b, _, h, w = c.geometry.shape
        d["bpp"] = 8 * len(data) / (b * h * w)
    if c.geometry.sample_rate:
        d["sample_rate"] = c.geometry.sample_rate
    if c.modality == "audio" and len(c.geometry.shape) == 3 and c.geometry.sample_rate:
        b, ch, n = c.geometry.shape
        seconds = n / c.geometry.sample_rate
        d["channels"] = ch
        d["seconds"] = seconds
        d["kbps"] = 8 * len(data) / (b * seconds) / 1000
        coded_at = _model_rate(c.codec)
        if coded_at:
            d["coded_at_hz"] = coded_at
            if coded_at != c.geometry.sample_rate:
                d["resampled"] = f"{c.geometry.sample_rate} Hz -> {coded_at} Hz inside the codec, and back on decode"
    if c.geometry.fps_den:
        d["fps"] = c.geometry.fps_num / c.geometry.fps_den
    if c.modality == "video" and len(c.geometry.shape) == 5:
        d.update(_video(c, len(data)))
    return d


def _video(c, total: int) -> dict[str, object]:
    """Frames, GOP, rate and bits per frame of a video stream, from its frame index."""
    from lcodec.codecs.video import INTRA, FrameIndex

    _, _, frames, h, w = c.geometry.shape
    fps = c.geometry.fps_num / c.geometry.fps_den if c.geometry.fps_den else 0.0
    d: dict[str, object] = {"frames": frames, "size": f"{w}x{h}", "bpp": 8 * total / (frames * h * w)}
    if fps:
        d["kbps"] = 8 * total * fps / frames / 1000
    if len(c.sections) == 2 and len(c.sections[0]) >= 16:
        per = int.from_bytes(c.sections[0][12:16], "little")
        index = FrameIndex.from_bytes(c.sections[0], frames, per)
        d["gop"] = index.gop
        d["intra_frames"] = sum(k == INTRA for k in index.kinds)
        bits = [8 * sum(ls) for ls in index.lengths]
        for kind, name in ((INTRA, "intra"), (1 - INTRA, "predicted")):
            mine = [b for b, k in zip(bits, index.kinds) if k == kind]
            if mine:
                d[f"{name}_bits_mean"] = sum(mine) / len(mine)
        d["bits_per_frame"] = bits
    if len(c.sections) == 3 and len(c.sections[0]) >= 16:  # networks per group of frames (nirvana-video)
        from lcodec.codecs.nirvana import KEY, GroupIndex

        group = int.from_bytes(c.sections[0][4:8], "little")
        index = GroupIndex.from_bytes(c.sections[0], frames, group)
        d["group"] = index.group
        d["gop"] = index.gop if index.gop < frames else None  # None: one key group, the first
        d["key_groups"] = sum(k == KEY for k in index.kinds)
        d["bits_per_group"] = [8 * n for n in index.lengths]
    return d


def _model_rate(name: str) -> int:
    """The sample rate a registered audio codec runs its model at (0 if unknown)."""
    from lcodec.errors import ModelError
    from lcodec.registry import get_spec

    try:
        return get_spec(name).sample_rate
    except ModelError:
        return 0


def main(args: argparse.Namespace) -> int:
    data, _ = read_stream(args.input)  # stream errors name the file
    d = describe(data)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    width = max(map(len, d))
    for k, v in d.items():
        if isinstance(v, float) and math.isfinite(v):
            v = f"{v:.4f}"
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        elif isinstance(v, list) and len(v) > 12:
            v = " ".join(map(str, v[:12])) + f" ... ({len(v)} values; --json lists all)"
        print(f"{k:<{width}}  {v}")
    return 0
