"""Write overfit-rgb's stored data (its integer Laplace tables; nothing is trained):

    python -m lcodec.train.overfit_tables [--out lcodec/weights/overfit-rgb.pt]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lcodec.codecs.overfit import overfit_tables_state
from lcodec.train.loop import record_in_manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "weights" / "overfit-rgb.pt")
    args = p.parse_args(argv)
    torch.save(overfit_tables_state(), args.out)
    record_in_manifest(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
