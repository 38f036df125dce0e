"""`codec encode IN OUT`: compress an image or audio file into an lcodec container."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from lcodec.api import load
from lcodec.bitstream.container import atomic_write
from lcodec.cli._common import check_output
from lcodec.errors import InputError
from lcodec.io.audio import AUDIO_SUFFIXES, read_audio
from lcodec.io.image import IMAGE_SUFFIXES, read_image_info

__all__ = ["add_parser", "main"]

DEFAULT_CODEC = {"image": "walloc-rgb", "audio": "walloc-audio"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="compress an image or audio file into an lcodec stream")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--codec", default=None,
                   help="registered codec name (default: walloc-rgb for images, walloc-audio for audio)")
    p.add_argument("--quality", type=int, default=None, help="rate point (default: the codec's default)")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="images, variable-rate codecs (walloc-rgb-rd, walloc-rgb-light): N steps of encoder-side "
                        "latent refinement (N gradient steps, then up to 6 greedy symbol passes); smaller files at "
                        "equal quality, about 1 s per step plus 25 s for the passes per megapixel on 2 cores; "
                        "decoding is unchanged (default 0: off)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=main)


def _modality(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    raise InputError(f"{path}: unsupported input type {suffix!r} "
                     f"(images: {', '.join(IMAGE_SUFFIXES)}; audio: {', '.join(AUDIO_SUFFIXES)})")


def main(args: argparse.Namespace) -> int:
    check_output(args.input, args.output, args.force)
    if not args.input.exists():
        raise InputError(f"{args.input}: no such file")
    modality = _modality(args.input)
    if args.refine < 0:
        raise InputError(f"--refine must be >= 0, got {args.refine}")
    codec = load(args.codec or DEFAULT_CODEC[modality], args.quality)
    if codec.modality != modality:
        raise InputError(f"{codec.name} codes {codec.modality}, but {args.input} is {modality}")
    if args.refine and not hasattr(codec, "refine_latents"):
        raise InputError(f"--refine: {codec.name} has no encoder refinement "
                         "(variable-rate image codecs have it: walloc-rgb-rd, walloc-rgb-light)")
    if modality == "audio":
        x, rate = read_audio(args.input)
        t0 = time.perf_counter()
        data = codec.compress(x.unsqueeze(0), rate)
        seconds = time.perf_counter() - t0
        atomic_write(args.output, data, overwrite=args.force)
        duration = x.shape[-1] / rate
        print(f"{args.input} {x.shape[0]} ch {rate} Hz {duration:.2f} s -> {args.output}: {len(data)} bytes, "
              f"{8 * len(data) / duration / 1000:.1f} kbit/s, {codec.name} q{codec.quality}, {seconds:.2f} s")
        return 0
    x, info = read_image_info(args.input)
    t0 = time.perf_counter()
    kwargs = {"refine": args.refine, "progress": True} if args.refine else {}
    data = codec.compress(x.unsqueeze(0), **kwargs)
    seconds = time.perf_counter() - t0
    atomic_write(args.output, data, overwrite=args.force)
    h, w = x.shape[-2:]
    note = " (alpha channel dropped)" if info.dropped_alpha else ""
    print(f"{args.input} {w}x{h} -> {args.output}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp, "
          f"{codec.name} q{codec.quality}{f' refined {args.refine} steps' if args.refine else ''}, "
          f"{seconds:.2f} s{note}")
    return 0
