"""`codec decode IN OUT`: reconstruct media from an lcodec container."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from lcodec.api import load
from lcodec.bitstream.container import atomic_write, read_container
from lcodec.cli._common import check_output, read_bytes
from lcodec.errors import InputError
from lcodec.io.image import write_image

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode an lcodec stream (image output: .png by default)")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    check_output(args.input, args.output, args.force)
    data = read_bytes(args.input)
    header = read_container(data)
    if header.modality != "image":
        raise InputError(f"{args.input} holds {header.modality}; this version decodes images only")
    codec = load(header.codec, header.quality)
    t0 = time.perf_counter()
    x_hat = codec.decompress(data)
    seconds = time.perf_counter() - t0
    encoded = write_image(args.output, x_hat)
    atomic_write(args.output, encoded, overwrite=args.force)
    h, w = x_hat.shape[-2:]
    print(f"{args.input} -> {args.output}: {w}x{h}, {codec.name} q{codec.quality}, {seconds:.2f} s")
    return 0
