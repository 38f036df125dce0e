"""Write the stored data of the codecs that train nothing: overfit-rgb's integer Laplace tables,
nirvana-video's network layout (both fitted at encode time; nirvana's tables travel in the
stream), walloc-video-mc's motion vector tables (an overlay on walloc-rgb-rd.pt):

    python -m lcodec.train.overfit_tables [--codec overfit-rgb|nirvana-video|walloc-video-mc] [--out FILE]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lcodec.codecs.nirvana import nirvana_tables_state
from lcodec.codecs.overfit import overfit_tables_state
from lcodec.codecs.video_mc import motion_tables_state
from lcodec.train.loop import record_in_manifest


STATES = {"overfit-rgb": overfit_tables_state, "nirvana-video": nirvana_tables_state,
          "walloc-video-mc": motion_tables_state}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", choices=sorted(STATES), default="overfit-rgb")
    p.add_argument("--out", type=Path, default=None, help="default: lcodec/weights/CODEC.pt")
    args = p.parse_args(argv)
    out = args.out or Path(__file__).resolve().parents[1] / "weights" / f"{args.codec}.pt"
    torch.save(STATES[args.codec](), out)
    record_in_manifest(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
