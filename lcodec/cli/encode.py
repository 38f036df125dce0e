"""`codec encode IN OUT`: compress an image or audio file into an lcodec container."""
from __future__ import annotations

import argparse
import itertools
import textwrap
import time
from pathlib import Path

from lcodec.api import load
from lcodec.cli._common import OUTPUT_HELP, about_file, open_output
from lcodec.errors import InputError, LcodecError
from lcodec.io.audio import AUDIO_SUFFIXES, read_audio_info
from lcodec.io.image import IMAGE_SUFFIXES, read_gray_image, read_image_info

__all__ = ["add_parser", "main", "DEFAULT_CODEC"]

# Images: the best rate-distortion that encodes a 768x512 photo in about a second and a half on 2 cores
# (half a second with --no-filter), at its default quality (q4: 0.675 bpp, 34.2 dB PSNR-RGB mean on the
# val photos; BD-rate -2.1% vs WebP).
# Video: motion compensation, -38% / -40% BD-rate vs every frame intra on BasketballPass / bus, where
# walloc-video (no motion) saves 5% / 1% on held-out frames; 416x240 encodes at 2.7 frames/s on 2 cores.
DEFAULT_CODEC = {"image": "walloc-rgb-rd", "audio": "walloc-audio", "video": "walloc-video-mc",
                 "dataset": "pc-mnist"}
# Every registered audio codec codes mono or stereo; checked here, where the file name is known.
AUDIO_CHANNELS = (1, 2)

DESCRIPTION = f"""\
Compress an image, audio file or video into an lcodec stream (decode it with `codec decode`).

Images default to {DEFAULT_CODEC["image"]} at quality 4: on the 16 val photos 0.675 bpp and 34.2 dB PSNR on
average (detailed photos take more bits), about 1.5 s to encode a 768x512 photo on 2 cores.
Choose speed or size:
  faster encode (0.5 s):           --no-filter   (no per-image restoration filter: about 3% larger files)
  faster encode and decode:        --codec walloc-rgb-light
  smaller files, same quality:     --refine 20   (about a minute per photo; decoding unchanged)
  another rate:                    --quality 1 (smallest file) .. 6 (best picture)
  no pretrained model, fitted per image (minutes):  --codec overfit-rgb [--preset fast|medium|slow]
Audio defaults to {DEFAULT_CODEC["audio"]} at its default quality. Video (.y4m, .mp4/.mkv/.webm/.mov/.avi
through PyAV, or a folder of PNG frames) defaults to {DEFAULT_CODEC["video"]} (motion-compensated): an intra frame
every --gop frames (default 32), frames read one at a time; `--codec walloc-video` codes every frame without
motion (about twice as fast to encode, far larger files); `--codec nirvana-video` fits one small network per 3 frames
instead (no pretrained model; about 20 s per CIF frame; --preset/--steps/--seconds set the fit). A dataset of small 8-bit images (.idx, MNIST's -ubyte, .npz;
optionally .gz) is coded losslessly into one stream, by default with {DEFAULT_CODEC["dataset"]}; one grayscale
digit: `codec encode digit.png out.bin --codec {DEFAULT_CODEC["dataset"]}`. `codec list` shows every codec.

{textwrap.fill(OUTPUT_HELP, 100)}"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="compress an image, audio file or video into an lcodec stream",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--codec", default=None,
                   help=f"registered codec name (default: {DEFAULT_CODEC['image']} for images, "
                        f"{DEFAULT_CODEC['audio']} for audio; see `codec list`)")
    p.add_argument("--quality", type=int, default=None,
                   help=f"rate point (default: the codec's default; quality 4 for {DEFAULT_CODEC['image']})")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="images, variable-rate codecs (walloc-rgb-rd, walloc-rgb-light): N steps of encoder-side "
                        "latent refinement (N gradient steps, then up to 6 greedy symbol passes); smaller files at "
                        "equal quality, about 1 s per step plus 25 s for the passes per megapixel on 2 cores; "
                        "decoding is unchanged (default 0: off)")
    p.add_argument("--no-filter", action="store_true",
                   help="images, codecs that send a per-image restoration filter (walloc-rgb-rd, walloc-rgb-rd-gmm): "
                        "do not fit one; encoding is about 1 s faster per 768x512 photo, files about 3%% larger "
                        "at equal quality (BD-rate on the val photos)")
    p.add_argument("--preset", choices=("fast", "medium", "slow"), default=None,
                   help="codecs fitted at encode time: fitting steps per image (overfit-rgb: fast 300 / medium 1000 "
                        "(default) / slow 3000) or per group of frames (nirvana-video: fast 100 / medium 200 "
                        "(default) / slow 600; the first group twice as many)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="codecs fitted at encode time: fit for exactly N steps per image or group (instead of a preset)")
    p.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="codecs fitted at encode time: stop fitting after about S seconds per image or per video frame "
                        "(caps the preset or --steps)")
    p.add_argument("--normalize", action="store_true",
                   help="audio: scale a float file whose samples exceed +-1 by 1/peak (without it such a file "
                        "is refused, never clipped)")
    p.add_argument("--gop", type=int, default=None, metavar="N",
                   help="video: an intra frame (nirvana-video: a key group) every N frames, where decoding can start; "
                        "1: every frame intra (default: 32; nirvana-video: one key group)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=main)


def _modality(path: Path) -> str:
    from lcodec.io.dataset import DATASET_SUFFIXES, is_dataset
    from lcodec.io.video import VIDEO_SUFFIXES

    if is_dataset(path):
        return "dataset"
    if path.is_dir():
        return "video"  # a folder of PNG frames
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    raise InputError(f"{path}: unsupported input type {suffix!r} "
                     f"(images: {', '.join(IMAGE_SUFFIXES)}; audio: {', '.join(AUDIO_SUFFIXES)}; video: "
                     f"{', '.join(VIDEO_SUFFIXES)} or a folder of PNG frames; image datasets: "
                     f"{', '.join(DATASET_SUFFIXES)}, optionally + .gz)")


def main(args: argparse.Namespace) -> int:
    if not args.input.exists():
        raise InputError(f"{args.input}: no such file")
    modality = _modality(args.input)
    if args.refine < 0:
        raise InputError(f"--refine must be >= 0, got {args.refine}")
    kind = {"image": "an image", "audio": "audio", "video": "video", "dataset": "an image dataset"}[modality]
    if args.normalize and modality != "audio":
        raise InputError(f"--normalize is for audio files; {args.input} is {kind}")
    if args.gop is not None and modality != "video":
        raise InputError(f"--gop is for video; {args.input} is {kind}")
    if args.gop is not None and args.gop < 1:
        raise InputError(f"--gop must be >= 1 (1: every frame intra), got {args.gop}")
    fit = {k: v for k, v in (("preset", args.preset), ("steps", args.steps), ("seconds", args.seconds))
           if v is not None}
    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps must be >= 1, got {args.steps}")
    if args.seconds is not None and not args.seconds > 0:
        raise InputError(f"--seconds must be > 0, got {args.seconds}")
    if args.refine and modality in ("video", "dataset"):
        raise InputError(f"--refine is for single images; {args.input} is {kind}")
    with open_output(args.input, args.output, args.force) as out:
        codec = load(args.codec or DEFAULT_CODEC[modality], args.quality)
        overfitted = hasattr(codec, "fit")
        if fit and not overfitted:
            raise InputError(f"--{next(iter(fit))} is for codecs fitted at encode time (overfit-rgb, nirvana-video); "
                             f"{codec.name} is pretrained")
        if modality == "dataset":
            return _encode_dataset(args, codec, out)
        if codec.modality != modality:
            raise InputError(f"{codec.name} codes {codec.modality}, but {args.input} is {modality}; "
                             f"leave out --codec to use {DEFAULT_CODEC[modality]}")
        if args.refine and overfitted:
            raise InputError(f"--refine: {codec.name} is fitted to the image already; use --preset or --steps")
        if args.refine:
            from lcodec.codecs.refine import unsupported

            why = unsupported(codec)
            if why:
                raise InputError(f"--refine: {codec.name} has no encoder refinement; {why}")
        if args.no_filter and not getattr(codec, "restoration", False):
            raise InputError(f"--no-filter: {codec.name} sends no restoration filter (walloc-rgb-rd and -rd-gmm do)")
        if modality == "audio":
            return _encode_audio(args, codec, out)
        if modality == "video":
            return _encode_video(args, codec, out, fit if overfitted else None)
        if codec.transform.in_channels == 1:
            x, info = read_gray_image(args.input), None
        else:
            x, info = read_image_info(args.input)
        t0 = time.perf_counter()
        kwargs = {"refine": args.refine, "progress": True} if args.refine else {}
        if args.no_filter:
            kwargs["restoration"] = False
        if overfitted:
            kwargs = {**fit, "progress": True}
        try:
            data = codec.compress(x.unsqueeze(0), **kwargs)
        except LcodecError as exc:
            raise about_file(args.input, exc) from None
        seconds = time.perf_counter() - t0
        out.write(data)
    h, w = x.shape[-2:]
    note = " (alpha channel dropped)" if info is not None and info.dropped_alpha else ""
    print(f"{args.input} {w}x{h} -> {args.output}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp, "
          f"{codec.name} q{codec.quality}{f' refined {args.refine} steps' if args.refine else ''}, "
          f"{seconds:.2f} s{note}")
    return 0


def _encode_dataset(args: argparse.Namespace, codec, out) -> int:
    from lcodec.io.dataset import read_dataset

    if codec.modality != "image":
        raise InputError(f"{codec.name} codes {codec.modality}; {args.input} is an image dataset "
                         f"(leave out --codec to use {DEFAULT_CODEC['dataset']})")
    x = read_dataset(args.input)
    t0 = time.perf_counter()
    try:
        data = codec.compress(x)
    except LcodecError as exc:
        raise about_file(args.input, exc) from None
    seconds = time.perf_counter() - t0
    out.write(data)
    n, c, h, w = x.shape
    print(f"{args.input} {n} images {c}x{h}x{w} -> {args.output}: {len(data)} bytes, "
          f"{8 * len(data) / x.numel():.4f} bits/dim, {codec.name}, {seconds:.2f} s ({n / seconds:.0f} images/s)")
    return 0


def _encode_audio(args: argparse.Namespace, codec, out) -> int:
    x, rate, info = read_audio_info(args.input, normalize=args.normalize)
    if x.shape[0] not in AUDIO_CHANNELS:
        raise InputError(f"{args.input} has {x.shape[0]} channels; {codec.name} codes mono or stereo: mix it "
                         f"down first, e.g. `ffmpeg -i {args.input} -ac 2 stereo.wav`")
    t0 = time.perf_counter()
    try:
        data = codec.compress(x.unsqueeze(0), rate)
    except LcodecError as exc:
        raise about_file(args.input, exc) from None
    seconds = time.perf_counter() - t0
    out.write(data)
    duration = x.shape[-1] / rate
    note = f" (normalized: peak {info.peak:g} scaled by 1/{info.peak:g})" if info.gain != 1.0 else ""
    print(f"{args.input} {x.shape[0]} ch {rate} Hz {duration:.2f} s -> {args.output}: {len(data)} bytes, "
          f"{8 * len(data) / duration / 1000:.1f} kbit/s, {codec.name} q{codec.quality}, {seconds:.2f} s{note}")
    return 0


def _encode_video(args: argparse.Namespace, codec, out, fit: dict | None) -> int:
    """``fit``: the budget flags of a codec fitted at encode time (None: a pretrained codec)."""
    import inspect

    from lcodec.io.video import iter_video, video_fps

    fps = video_fps(args.input)
    default_gop = inspect.signature(codec.compress_frames).parameters["gop"].default
    gop = default_gop if args.gop is None else args.gop
    t0 = time.perf_counter()
    try:
        frames = iter_video(args.input)
        first = next(frames)  # an unreadable input is reported before the progress bar starts
        data = codec.compress_frames(itertools.chain([first], frames), fps=fps, gop=gop, progress=True,
                                     **(fit or {}))
    except LcodecError as exc:
        raise about_file(args.input, exc) from None
    seconds = time.perf_counter() - t0
    out.write(data)
    _, _, frames, h, w = codec.parse(data)[0].geometry.shape
    print(f"{args.input} {w}x{h} {frames} frames {fps:g} fps -> {args.output}: {len(data)} bytes, "
          f"{8 * len(data) / (frames * h * w):.4f} bpp, {8 * len(data) * fps / frames / 1000:.1f} kbit/s, "
          f"{codec.name} q{codec.quality} gop {gop if gop < frames else 'all'}, {seconds:.2f} s ({frames / seconds:.1f} frames/s)")
    return 0
