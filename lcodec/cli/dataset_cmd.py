"""`codec encode-dataset SRC DST` and `codec decode-dataset DST OUT`: a folder of images or audio
as sharded streams (lcodec.data.sharded), on a local process pool or on Ray, and back."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from lcodec.errors import InputError

__all__ = ["add_parser", "encode_main", "decode_main"]

DEFAULTS = {"image": "walloc-rgb-rd", "audio": "walloc-audio-hp"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encode-dataset", help="encode every image or audio file under a folder into sharded streams (resumable)",
        description="Encode every image (or, with an audio codec, audio file) under SRC into shards under DST: "
                    "DST/shards/shard-NNNNN.bin + .jsonl, DST/manifest.jsonl (one row per item) and "
                    "DST/summary.json. Re-running the same command resumes: shards already written and "
                    "verified (stream and source sha256) are kept. Unreadable files are recorded as failed.")
    p.add_argument("src", type=Path, help="folder of images or audio files (walked recursively, sorted)")
    p.add_argument("dst", type=Path, help="output folder (new, empty, or an earlier run's to resume it)")
    p.add_argument("--codec", default=None, help="codec name (default: walloc-rgb-rd for images)")
    p.add_argument("--quality", type=int, default=None, help="rate (default: the codec's)")
    p.add_argument("--workers", type=int, default=1, help="parallel workers, one torch thread each (default 1)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine; ray: Ray tasks (pip install -e '.[ray]')")
    p.add_argument("--address", default=None, help="with --engine ray: a running cluster (e.g. auto or HOST:6379)")
    p.add_argument("--shard-items", type=int, default=64, help="items per shard, the unit of work and of resume")
    p.add_argument("--force", action="store_true", help="replace a run of another codec or quality in DST")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=encode_main)

    d = sub.add_parser("decode-dataset", help="decode an encode-dataset output back into a folder of files",
                       description="Decode every item of DST (an encode-dataset output) to OUT/<item>.png "
                                   "(images) or .wav (audio), keeping the folder structure.")
    d.add_argument("dst", type=Path, help="an encode-dataset output folder")
    d.add_argument("out", type=Path, help="folder to write the decoded files into (must not exist)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=decode_main)


def encode_main(args: argparse.Namespace) -> int:
    from lcodec.data.sharded import encode_folder

    if args.address and args.engine != "ray":
        raise InputError("--address is for --engine ray")
    codec = args.codec or DEFAULTS["image"]
    s = encode_folder(args.src, args.dst, codec, args.quality, workers=args.workers, engine=args.engine,
                      address=args.address, shard_items=args.shard_items, force=args.force, progress=not args.quiet)
    kept = s.shards - s.encoded_shards
    print(f"{args.src} -> {args.dst}: {s.ok} items encoded, {s.failed} failed, {s.bytes} bytes in {s.shards} shards"
          f"{f' ({kept} kept from an earlier run)' if kept else ''}; {s.encoded_items} items in {s.seconds:.1f} s "
          f"({s.items_per_second:.2f} items/s, {s.engine}, {s.workers} worker{'s' * (s.workers > 1)})")
    if s.failed:
        print(f"failed items are listed with their error in {args.dst / 'manifest.jsonl'} (status \"failed\")")
    return 0


def decode_main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lcodec.bitstream.container import read_container
    from lcodec.data.sharded import EncodedDataset
    from lcodec.io.audio import encode_audio
    from lcodec.io.image import write_image

    ds = EncodedDataset(args.dst)
    if args.out.exists():
        raise InputError(f"{args.out} exists; decode-dataset writes a new folder")
    if not args.out.parent.is_dir():
        raise InputError(f"output folder {args.out.parent} does not exist; create it first")
    partial = args.out.with_name(f".{args.out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by an interrupted decode-dataset
    partial.mkdir()
    try:
        for i in tqdm(range(len(ds)), unit="item", disable=args.quiet, desc=f"decoding {ds.codec.name}"):
            data = ds.stream(i)
            x = ds.codec.decompress(data)
            target = partial / Path(ds.items[i])
            target.parent.mkdir(parents=True, exist_ok=True)
            if ds.codec.modality == "audio":
                rate = read_container(data).geometry.sample_rate
                target.with_suffix(".wav").write_bytes(encode_audio(x, rate, ".wav"))
            else:
                png = target.with_suffix(".png")
                png.write_bytes(write_image(png, x[0]))
        partial.rename(args.out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    print(f"{args.dst} -> {args.out}: {len(ds)} items decoded")
    return 0
