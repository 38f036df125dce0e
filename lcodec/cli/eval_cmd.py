"""`codec eval`: rate-distortion of several codecs on a folder, in one run."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parser", "main"]

DESCRIPTION = """\
Rate-distortion of learned and classical codecs on a folder of media, in one run.

Each point (item x codec x quality) is appended to OUT/rows.jsonl as soon as it is measured;
running the same command again resumes a stopped run (points already there are not measured
again). To start over, delete OUT or choose another --out."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="rate-distortion of learned and classical codecs on a folder of media",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", action="append", default=[],
                   help="codec name (repeat); see `codec list` and --list-classical")
    p.add_argument("--data", type=Path, help="folder of images, audio or video files")
    p.add_argument("--out", type=Path, help="results folder (created; a run stopped there resumes)")
    p.add_argument("--list-classical", action="store_true",
                   help="list the classical codecs (JPEG, WebP, Opus, H.264, ...) this installation can run, and exit")
    p.add_argument("--images", action="append", default=[], metavar="NAME_OR_GLOB",
                   help="evaluate only the files of --data whose names match (repeat; e.g. 'kodim0*.png'; "
                        "audio and video files too)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items (after --images)")
    p.add_argument("--anchor", action="append", default=[],
                   help="codec to compute BD-rates against (repeat for several; each must be one of --codec)")
    p.add_argument("--reference", default=None, help="published curves to overlay, e.g. compressai-kodak")
    p.add_argument("--plot", action="store_true", help="write rd.png and rd.svg")
    p.add_argument("--quality", action="append", default=[], metavar="CODEC=Q1,Q2",
                   help="override a codec's quality grid, e.g. jpeg=20,50,80")
    p.add_argument("--warmup", type=int, default=1, metavar="N",
                   help="untimed encode+decode runs per codec and quality before timing (default 1)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="time each encode and decode N times and report the median (default 1; use 3 or more "
                        "for timings you publish)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def _parse_qualities(specs: list[str]) -> dict[str, tuple]:
    from lcodec.errors import InputError

    grids: dict[str, tuple] = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        try:
            grids[name] = tuple(int(v) if v.strip().lstrip("-").isdigit() else float(v) for v in values.split(","))
        except ValueError:
            raise InputError(f"bad --quality {spec!r}; expected CODEC=Q1,Q2,...") from None
        if not name or not grids[name]:
            raise InputError(f"bad --quality {spec!r}; expected CODEC=Q1,Q2,...")
    return grids


def _list_classical() -> int:
    from lcodec.errors import LcodecError
    from lcodec.eval.adapters import CLASSICAL, classical_names

    rows = []
    for name in classical_names():
        try:
            codec = CLASSICAL[name]()
            rows.append((name, codec.modality, codec.description))
        except LcodecError as exc:
            rows.append((name, "-", f"unavailable: {exc}"))
    width = max(len(r[0]) for r in rows)
    for name, modality, text in rows:
        print(f"{name:<{width}}  {modality:<8} {text}")
    return 0


def _check_out_folder(out: Path, data: Path) -> None:
    """OUT/run.json names the data folder its rows came from: resuming on other data is refused."""
    from lcodec.errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    run = out / "run.json"
    data = data.resolve()
    if run.is_file():
        before = json.loads(run.read_text()).get("data")
        if before != str(data):
            raise InputError(f"{out} holds results for {before}, not {data}; choose another --out "
                             f"or delete {out} to start over")
        return
    out.mkdir(parents=True, exist_ok=True)
    run.write_text(json.dumps({"data": str(data)}) + "\n")


def main(args: argparse.Namespace) -> int:
    from lcodec.errors import InputError

    if args.list_classical:
        return _list_classical()
    missing = [flag for flag, value in (("--codec", args.codec), ("--data", args.data), ("--out", args.out))
               if not value]
    if missing:
        raise InputError(f"codec eval needs {', '.join(missing)} (see codec eval --help)")

    from lcodec.eval.adapters import get_eval_codec
    from lcodec.eval.harness import aggregate, count_measured, evaluate, load_items, write_report

    for anchor in args.anchor:
        if anchor not in args.codec:
            raise InputError(f"--anchor {anchor} must also be given as --codec {anchor}")
    grids = _parse_qualities(args.quality)
    unknown = set(grids) - set(args.codec)
    if unknown:
        raise InputError(f"--quality given for codecs not evaluated: {', '.join(sorted(unknown))}")
    if args.warmup < 0 or args.repeat < 1:
        raise InputError("--warmup must be >= 0 and --repeat >= 1")
    codecs = [get_eval_codec(name) for name in dict.fromkeys(args.codec)]
    items = load_items(args.data, limit=args.limit, modality=codecs[0].modality, names=args.images)
    _check_out_folder(args.out, args.data)
    log = args.out / "rows.jsonl"
    done, total = count_measured(log, codecs, items, grids)
    if done:
        print(f"resuming: {done} of {total} points already measured in {log}")
    rows = evaluate(codecs, items, qualities=grids, progress=not args.quiet, warmup=args.warmup,
                    repeat=args.repeat, log=log)
    curves = aggregate(rows, codecs)
    written = write_report(rows, curves, args.out, anchor=args.anchor, plot=args.plot, reference=args.reference)
    print((written["summary"]).read_text())
    print("wrote: " + ", ".join(str(p) for p in [log, *written.values()]))
    return 0
