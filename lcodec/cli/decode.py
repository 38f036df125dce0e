"""`codec decode IN OUT`: reconstruct media from an lcodec container."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from lcodec.api import load
from lcodec.cli._common import OUTPUT_HELP, about_file, open_output, read_stream
from lcodec.errors import InputError, LcodecError
from lcodec.io.audio import AUDIO_OUTPUT_SUFFIXES, AUDIO_SUFFIXES, encode_audio
from lcodec.io.dataset import DATASET_SUFFIXES, dataset_bytes, is_dataset
from lcodec.io.image import image_format, write_image
from lcodec.io.video import VIDEO_OUTPUT_SUFFIXES

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode an lcodec stream (images: .png/.bmp/...; audio: .wav/.flac/.ogg; "
                                      "video: .y4m, .mkv (FFV1) or a folder of PNG frames)",
                       description="Decode an lcodec stream; OUTPUT's suffix picks the file format (video: .y4m, "
                                   ".mkv as lossless FFV1, or a name without a suffix for a folder of PNG frames). "
                                   + OUTPUT_HELP)
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--frames", default=None, metavar="A:B",
                   help="video: decode frames A to B-1 only (0-based; either side may be left out), starting at the "
                        "last intra frame at or before A")
    p.add_argument("--erase", type=float, default=None, metavar="FRACTION",
                   help="VQ codecs (vq-rgb): decode as if this fraction of the index positions (0-1, chosen at "
                        "random) had been lost, and restore them from their neighbours")
    p.add_argument("--erase-seed", type=int, default=0, help="seed of the positions --erase loses")
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
        if is_dataset(args.output):
            return
        if suffix in AUDIO_SUFFIXES:
            raise InputError(f"{args.input} holds an image; write it as .png (or another image format), "
                             f"not {args.output.suffix!r}")
        image_format(args.output)
    elif modality == "video":
        if suffix and suffix not in VIDEO_OUTPUT_SUFFIXES:
            raise InputError(f"{args.input} holds video; write it as {' or '.join(VIDEO_OUTPUT_SUFFIXES)} or into "
                             f"a folder of PNG frames (a name without a suffix), not {args.output.suffix!r}")
    else:
        raise InputError(f"{args.input} holds {modality}; this version decodes images, audio and video")
    if args.frames is not None and modality != "video":
        raise InputError(f"--frames is for video streams; {args.input} holds {modality}")
    if args.erase is not None and (modality != "image" or not 0.0 <= args.erase <= 1.0):
        raise InputError(f"--erase takes a fraction in [0, 1] and is for VQ image streams; got {args.erase} "
                         f"for {modality}")


def _span(text: str | None, frames: int) -> tuple[int, int] | None:
    if text is None:
        return None
    a, sep, b = text.partition(":")
    try:
        span = (int(a) if a.strip() else 0, int(b) if b.strip() else frames)
    except ValueError:
        raise InputError(f"--frames takes A:B (0-based, B exclusive), got {text!r}") from None
    if not sep or not 0 <= span[0] < span[1] <= frames:
        raise InputError(f"--frames {text}: the stream has frames 0:{frames}")
    return span


def main(args: argparse.Namespace) -> int:
    data, header = read_stream(args.input)
    _check_output_kind(args, header.modality)
    if header.modality == "video":
        return _decode_video(args, data, header)
    items = header.geometry.shape[0] if header.modality == "image" else 1
    if items > 1 and not is_dataset(args.output):
        raise InputError(f"{args.input} holds {items} images; write them as a dataset "
                         f"({', '.join(DATASET_SUFFIXES)}, optionally + .gz), not {args.output.suffix!r}")
    with open_output(args.input, args.output, args.force) as out:
        try:
            codec = load(header.codec, header.quality)
            t0 = time.perf_counter()
            if args.erase is not None:
                from lcodec.codecs.vq import decompress_with_erasures

                x_hat, lost = decompress_with_erasures(codec, data, args.erase, args.erase_seed)
                print(f"{int(lost.sum())} of {lost.numel()} index positions erased and restored")
            else:
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
        if header.geometry.shape[1] == 1:  # a grayscale stream: a grayscale file (its three channels are equal)
            x_hat = x_hat[:, :1]
        out.write(dataset_bytes(args.output, x_hat) if is_dataset(args.output) else write_image(args.output, x_hat))
    n, h, w = x_hat.shape[0], *x_hat.shape[-2:]
    what = f"{n} images {w}x{h}" if n > 1 else f"{w}x{h}"
    print(f"{args.input} -> {args.output}: {what}, {codec.name} q{codec.quality}, {seconds:.2f} s")
    return 0


def _decode_video(args: argparse.Namespace, data: bytes, header) -> int:
    from lcodec.io.folder import FolderOutput
    from lcodec.io.video import video_writer

    frames = header.geometry.shape[2] if len(header.geometry.shape) == 5 else 0
    span = _span(args.frames, frames)
    fps = header.geometry.fps_num / header.geometry.fps_den if header.geometry.fps_den else 25.0
    try:
        codec = load(header.codec, header.quality)
        codec.parse(data)  # every check before the output is reserved
    except LcodecError as exc:
        raise about_file(args.input, exc) from None
    t0 = time.perf_counter()
    count = 0

    def counted():
        from tqdm import tqdm

        nonlocal count
        a, b = span or (0, frames)
        try:
            for frame in tqdm(codec.iter_decompress(data, span), total=b - a, unit="frame"):
                count += 1
                yield frame
        except LcodecError as exc:
            raise about_file(args.input, exc) from None

    if args.output.suffix:
        with open_output(args.input, args.output, args.force) as out:
            out.write_with(video_writer(args.output, counted(), fps))
    else:
        with FolderOutput(args.output, args.force) as out:
            out.write_frames(counted())
    seconds = time.perf_counter() - t0
    h, w = header.geometry.shape[3:]
    print(f"{args.input} -> {args.output}: {count} frames {w}x{h}, {codec.name} q{codec.quality}, {seconds:.2f} s "
          f"({count / max(seconds, 1e-9):.1f} frames/s)")
    return 0
