"""`codec decode IN OUT`: reconstruct media from an lcodec container."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from lcodec.api import load
from lcodec.bitstream.container import atomic_write, read_container
from lcodec.cli._common import check_output, read_bytes
from lcodec.errors import InputError
from lcodec.io.audio import AUDIO_OUTPUT_SUFFIXES, encode_audio
from lcodec.io.image import write_image

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode an lcodec stream (images: .png/.bmp/...; audio: .wav/.flac/.ogg)")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    check_output(args.input, args.output, args.force)
    data = read_bytes(args.input)
    header = read_container(data)
    if header.modality == "audio":
        if args.output.suffix.lower() not in AUDIO_OUTPUT_SUFFIXES:
            raise InputError(f"{args.input} holds audio; write it as {', '.join(AUDIO_OUTPUT_SUFFIXES)}, "
                             f"not {args.output.suffix!r}")
    elif header.modality != "image":
        raise InputError(f"{args.input} holds {header.modality}; this version decodes images and audio")
    codec = load(header.codec, header.quality)
    t0 = time.perf_counter()
    x_hat = codec.decompress(data)
    seconds = time.perf_counter() - t0
    if header.modality == "audio":
        rate = header.geometry.sample_rate
        atomic_write(args.output, encode_audio(x_hat, rate, args.output.suffix), overwrite=args.force)
        print(f"{args.input} -> {args.output}: {x_hat.shape[1]} ch, {rate} Hz, {x_hat.shape[-1] / rate:.2f} s, "
              f"{codec.name} q{codec.quality}, {seconds:.2f} s")
        return 0
    encoded = write_image(args.output, x_hat)
    atomic_write(args.output, encoded, overwrite=args.force)
    h, w = x_hat.shape[-2:]
    print(f"{args.input} -> {args.output}: {w}x{h}, {codec.name} q{codec.quality}, {seconds:.2f} s")
    return 0
