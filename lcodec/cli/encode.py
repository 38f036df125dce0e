"""`codec encode IN OUT`: compress a media file into an lcodec container."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from lcodec.api import load
from lcodec.bitstream.container import atomic_write
from lcodec.cli._common import check_output
from lcodec.io.image import IMAGE_SUFFIXES, read_image_info

__all__ = ["add_parser", "main"]

DEFAULT_CODEC = {"image": "walloc-rgb"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="compress an image into an lcodec stream")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--codec", default=None, help="registered codec name (default: walloc-rgb for images)")
    p.add_argument("--quality", type=int, default=None, help="rate point (default: the codec's default)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    check_output(args.input, args.output, args.force)
    if args.input.suffix.lower() not in IMAGE_SUFFIXES and args.input.exists():
        from lcodec.errors import InputError

        raise InputError(f"{args.input}: unsupported input type {args.input.suffix!r} (images: {', '.join(IMAGE_SUFFIXES)})")
    x, info = read_image_info(args.input)
    codec = load(args.codec or DEFAULT_CODEC["image"], args.quality)
    t0 = time.perf_counter()
    data = codec.compress(x.unsqueeze(0))
    seconds = time.perf_counter() - t0
    atomic_write(args.output, data, overwrite=args.force)
    h, w = x.shape[-2:]
    note = " (alpha channel dropped)" if info.dropped_alpha else ""
    print(f"{args.input} {w}x{h} -> {args.output}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp, "
          f"{codec.name} q{codec.quality}, {seconds:.2f} s{note}")
    return 0
