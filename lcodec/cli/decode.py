"""`codec decode IN OUT`: reconstruct media from an lcodec container."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from lcodec.api import load
from lcodec.cli._common import OUTPUT_HELP, about_file, open_output, read_stream
from lcodec.errors import InputError, LcodecError
from lcodec.io.audio import AUDIO_OUTPUT_SUFFIXES, AUDIO_SUFFIXES, encode_audio
from lcodec.io.image import image_format, write_image

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode an lcodec stream (images: .png/.bmp/...; audio: .wav/.flac/.ogg)",
                       description="Decode an lcodec stream; OUTPUT's suffix picks the file format. " + OUTPUT_HELP)
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=main)


def _check_output_kind(args: argparse.Namespace, modality: str) -> None:
    """From the header alone: the output name must suit the stream's media kind."""
    suffix = args.output.suffix.lower()
    if modality == "audio":
        if suffix not in AUDIO_OUTPUT_SUFFIXES:
            raise InputError(f"{args.input} holds audio; write it as {', '.join(AUDIO_OUTPUT_SUFFIXES)}, "
                             f"not {args.output.suffix!r}")
    elif modality == "image":
        if suffix in AUDIO_SUFFIXES:
            raise InputError(f"{args.input} holds an image; write it as .png (or another image format), "
                             f"not {args.output.suffix!r}")
        image_format(args.output)
    else:
        raise InputError(f"{args.input} holds {modality}; this version decodes images and audio")


def main(args: argparse.Namespace) -> int:
    data, header = read_stream(args.input)
    _check_output_kind(args, header.modality)
    with open_output(args.input, args.output, args.force) as out:
        try:
            codec = load(header.codec, header.quality)
            t0 = time.perf_counter()
            x_hat = codec.decompress(data)
        except LcodecError as exc:
            raise about_file(args.input, exc) from None
        seconds = time.perf_counter() - t0
        if header.modality == "audio":
            rate = header.geometry.sample_rate
            out.write(encode_audio(x_hat, rate, args.output.suffix))
            print(f"{args.input} -> {args.output}: {x_hat.shape[1]} ch, {rate} Hz, {x_hat.shape[-1] / rate:.2f} s, "
                  f"{codec.name} q{codec.quality}, {seconds:.2f} s")
            return 0
        out.write(write_image(args.output, x_hat))
    h, w = x_hat.shape[-2:]
    print(f"{args.input} -> {args.output}: {w}x{h}, {codec.name} q{codec.quality}, {seconds:.2f} s")
    return 0
