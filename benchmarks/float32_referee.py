"""Measure the float32 encoder side path against its float64 reference (``lcodec.entropy.refereed``).

For every image, shipped ladder and rate: the largest float32 error of h_a's output and of
y - means, how many values the float64 referee re-evaluated, and whether the refereed
integers (z and the y symbols) equal the float64 path's. The margins in ``refereed`` are
chosen from this table (they should stay >= 10x the largest error).

    python benchmarks/float32_referee.py [--data ../shared/data/images/val] [--out docs/results/float32_referee.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lcodec  # noqa: E402
from lcodec.entropy.refereed import SYMBOL_MARGIN, Z_MARGIN  # noqa: E402
from lcodec.models.cpu import run_on_cpu  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/images/val"))
    ap.add_argument("--codec", action="append", default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/results/float32_referee.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    names = args.codec or ["walloc-rgb-light", "walloc-rgb-rd"]
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    rows = []
    for name in names:
        for q in lcodec.registry.get_spec(name).qualities:
            codec = lcodec.load(name, quality=q)
            for f in tqdm(files, desc=f"{name} q{q}", leave=False):
                x = torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1).float()[None] / 255
                with torch.no_grad():
                    y64 = codec.analyse64(x)
                    a64 = run_on_cpu(codec.entropy.h_a, y64)
                    a32 = run_on_cpu(codec.entropy.h_a, y64.float()).double()
                    z_ref = torch.round(a64).long()
                    z = codec.entropy.hyper_analysis(y64)
                    v64 = y64 - codec.entropy.means(z_ref)
                    up, act, conv = codec.entropy.h_m
                    hidden = act(run_on_cpu(up, z_ref.double()))
                    v32 = (y64.float() - run_on_cpu(conv, hidden.float())).double()
                    sym = codec.entropy.symbols(y64, z_ref)
                near = lambda v, m: int(((v - torch.floor(v) - 0.5).abs() < m).sum())  # noqa: E731
                rows.append(dict(
                    codec=name, quality=q, image=f.name, z_values=a64.numel(), y_values=v64.numel(),
                    z_err=float((a64 - a32).abs().max()), y_err=float((v64 - v32).abs().max()),
                    z_refereed=near(a32, Z_MARGIN), y_refereed=near(v32, SYMBOL_MARGIN),
                    z_equal=bool(torch.equal(z, z_ref)), y_equal=bool(torch.equal(sym, torch.round(v64).long())),
                ))
            worst = [r for r in rows if r["codec"] == name and r["quality"] == q]
            print(f"{name} q{q}: max z err {max(r['z_err'] for r in worst):.2e} (margin {Z_MARGIN:g}), "
                  f"max y err {max(r['y_err'] for r in worst):.2e} (margin {SYMBOL_MARGIN:g}), "
                  f"refereed {sum(r['z_refereed'] for r in worst)} z / {sum(r['y_refereed'] for r in worst)} y "
                  f"of {sum(r['z_values'] for r in worst)} / {sum(r['y_values'] for r in worst)}, "
                  f"all equal: {all(r['z_equal'] and r['y_equal'] for r in worst)}", flush=True)
    summary = dict(z_margin=Z_MARGIN, symbol_margin=SYMBOL_MARGIN, images=len(files),
                   max_z_err=max(r["z_err"] for r in rows), max_y_err=max(r["y_err"] for r in rows),
                   all_equal=all(r["z_equal"] and r["y_equal"] for r in rows),
                   torch=torch.__version__, numpy=np.__version__, rows=rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {args.out}; all equal: {summary['all_equal']}")
    return 0 if summary["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
