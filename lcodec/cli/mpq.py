"""`codec mpq --task TASK --codec NAME [--codec NAME ...]`: machine-perceptual quality."""
from __future__ import annotations

import argparse
from pathlib import Path

from lcodec.errors import InputError

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mpq", help="score a task model on decoded vs original data at each rate")
    p.add_argument("--task", required=True, help="task name, e.g. mnist-digits, imagenet-classifier, librispeech-asr")
    p.add_argument("--codec", action="append", required=True, help="codec to evaluate (repeat for several)")
    p.add_argument("--data", type=Path, default=None, help="the task's data folder (see docs/mpq.md)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items of the split")
    p.add_argument("--out", type=Path, default=None, help="folder to write mpq_<task>.json into")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from lcodec.eval.mpq import get_task, run_mpq

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out} is a file, not a folder")
    result = run_mpq(get_task(args.task, args.data), args.codec, limit=args.limit)
    written = None
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        written = args.out / f"mpq_{result.task}.json"
        written.write_text(result.to_json() + "\n")
    if args.json:
        print(result.to_json())
        return 0
    unit = result.rate_unit
    print(f"task {result.task}: {result.metric} on {result.num_items} originals = {result.original_score:.4f}")
    print(f"{'codec':<14} {'quality':>7} {unit:>9} {result.metric:>8} {'relative':>9}")
    for row in result.rows:
        print(f"{row.codec:<14} {row.quality:>7} {row.rate:>9.3f} {row.score:>8.4f} {row.relative:>9.4f}")
    print(f"lowest rate keeping {result.threshold:.0%} of the original {result.metric}:")
    for t in result.threshold_rates:
        if t.rate is None:
            text = "not reached"
        else:
            text = f"{t.rate:.3f} {unit}" if t.bracketed else f"<= {t.rate:.3f} {unit} (lowest quality tested)"
        print(f"  {t.codec:<14} {text}")
    if written is not None:
        print(f"wrote {written}")
    return 0
