"""`codec list`: registered codecs (``--json`` for scripts)."""
from __future__ import annotations

import argparse
import json

from lcodec.registry import list_codecs

__all__ = ["add_parser", "main"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered codecs")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name filter, e.g. 'walloc-*'")
    p.add_argument("--json", action="store_true", help="print the CodecSpec records as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    specs = list_codecs(args.pattern)
    if args.json:
        print(json.dumps([s.to_dict() for s in specs], indent=2))
        return 0
    print(f"{'name':<16} {'modality':<8} {'qualities':<24} {'weights':<8} {'entropy model'}")
    for s in specs:
        qs = ",".join(map(str, s.qualities)) + f" (default {s.default_quality})"
        shipped = "shipped" if s.weights else "train"  # "train": registered, weights not in the package
        print(f"{s.name:<16} {s.modality:<8} {qs:<24} {shipped:<8} {s.entropy_model}")
    return 0
