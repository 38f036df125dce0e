"""`codec eval`: rate-distortion of several codecs on a folder, in one run."""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="rate-distortion of learned and classical codecs on a folder of media")
    p.add_argument("--codec", action="append", required=True, help="codec name (repeat); see `codec list` and --list-classical")
    p.add_argument("--data", type=Path, required=True, help="folder of images, audio or video files")
    p.add_argument("--out", type=Path, required=True, help="results folder (created)")
    p.add_argument("--anchor", default=None, help="codec to compute BD-rates against (must be one of --codec)")
    p.add_argument("--reference", default=None, help="published curves to overlay, e.g. compressai-kodak")
    p.add_argument("--plot", action="store_true", help="write rd.png and rd.svg")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items")
    p.add_argument("--quality", action="append", default=[], metavar="CODEC=Q1,Q2",
                   help="override a codec's quality grid, e.g. jpeg=20,50,80")
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


def main(args: argparse.Namespace) -> int:
    from lcodec.errors import InputError
    from lcodec.eval.adapters import get_eval_codec
    from lcodec.eval.harness import aggregate, evaluate, load_items, write_report

    if args.anchor and args.anchor not in args.codec:
        raise InputError(f"--anchor {args.anchor} must also be given as --codec {args.anchor}")
    grids = _parse_qualities(args.quality)
    unknown = set(grids) - set(args.codec)
    if unknown:
        raise InputError(f"--quality given for codecs not evaluated: {', '.join(sorted(unknown))}")
    codecs = [get_eval_codec(name) for name in dict.fromkeys(args.codec)]
    items = load_items(args.data, limit=args.limit, modality=codecs[0].modality)
    rows = evaluate(codecs, items, qualities=grids, progress=not args.quiet)
    curves = aggregate(rows, codecs)
    written = write_report(rows, curves, args.out, anchor=args.anchor, plot=args.plot, reference=args.reference)
    print((written["summary"]).read_text())
    print("wrote: " + ", ".join(str(p) for p in written.values()))
    return 0
