"""`codec list`: registered codecs (``--json`` for scripts)."""
from __future__ import annotations

import argparse
import json

from lcodec.registry import list_codecs

__all__ = ["add_parser", "main", "table"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered codecs")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name filter, e.g. 'walloc-*'")
    p.add_argument("--json", action="store_true", help="print the CodecSpec records as JSON")
    p.set_defaults(func=main)


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows of cells as text columns two spaces apart, each as wide as its widest cell (the last unpadded)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]) for r in rows)


def main(args: argparse.Namespace) -> int:
    specs = list_codecs(args.pattern)
    if args.json:
        print(json.dumps([s.to_dict() for s in specs], indent=2))
        return 0
    rows = [("name", "modality", "qualities", "weights", "entropy model")]
    for s in specs:
        qs = ",".join(map(str, s.qualities)) + f" (default {s.default_quality})"
        # "train": registered, weights not in the package; partly shipped codecs name their shipped rates
        shipped = ("shipped" if s.shipped_qualities == s.qualities else
                   f"q{','.join(map(str, s.shipped_qualities))} shipped" if s.weights else "train")
        rows.append((s.name, s.modality, qs, shipped, s.entropy_model))
    print(table(rows))
    return 0
