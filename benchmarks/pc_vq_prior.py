"""A probabilistic circuit as the prior of another codec's symbols: vq-rgb's codebook indexes.

The circuit entropy model (``lcodec.entropy.circuit_model``, the same class pc-mnist uses) codes
8x8 tiles of vq-rgb's q1 index grids (64 codewords, so 64 symbols of 64 values per tile). An HCLT
is fitted by EM on tiles of the training photos' grids (../shared/data/images/train and their
mirror images, the same cache ``lcodec.train.vq`` builds); it is measured on the 768x512 centre
crops of the held-out val photos (48x32 grids = 24 tiles each), from real bytes, against
vq-rgb's own priors on the same grids (uniform, histogram, causal context; real bytes), and every
tile is decoded back and compared.

    python benchmarks/pc_vq_prior.py --out docs/results/pc_vq_prior
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lcodec  # noqa: E402
from lcodec.entropy.circuit import HCLT, HCLTConfig, chow_liu_tree  # noqa: E402
from lcodec.entropy.circuit_model import CircuitEntropyModel  # noqa: E402
from lcodec.entropy.vq_index import MODES  # noqa: E402
from lcodec.train.vq import DATA, cache_latents, nearest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vq_extreme import images  # noqa: E402

TILE = 8


def tiles(grid: torch.Tensor, stride: int) -> torch.Tensor:
    """(h, w) index grid -> (N, TILE*TILE) tiles at the given stride."""
    t = grid.unfold(0, TILE, stride).unfold(1, TILE, stride)
    return t.reshape(-1, TILE * TILE)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("docs/results/pc_vq_prior"))
    p.add_argument("--cache", type=Path, default=Path("/tmp/vq/rd_latents.pt"))
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--quality", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(2)
    codec = lcodec.load("vq-rgb", args.quality)
    k = codec.entropy.size
    book = codec.entropy.codebook().float()

    t0 = time.time()
    latents = cache_latents(DATA, args.cache)
    train = []
    with torch.no_grad():
        for y in latents:
            z = codec.transform.vq_encoder(y[None].float())[0]
            grid = nearest(z.permute(1, 2, 0).reshape(-1, z.shape[0]), book).reshape(z.shape[1], z.shape[2])
            if min(grid.shape) >= TILE:
                train.append(tiles(grid, 3))
    x = torch.cat(train)
    cut = int(0.9 * len(x))
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    fit, valid = x[perm[:cut]], x[perm[cut:]]
    cfg = HCLTConfig(variables=TILE * TILE, values=k, hidden=args.hidden, mi_bins=k)
    model = HCLT(cfg, chow_liu_tree(fit[:20000].numpy(), k, k))  # MI from 20,000 tiles (memory)
    model.init_from_clusters(fit)
    history = model.em(fit, args.steps, valid=valid, progress=True)
    fit_s = time.time() - t0
    entropy = CircuitEntropyModel(cfg)
    entropy.set_circuit(model)
    entropy.export()

    bits = {"circuit": 0, **{m: 0 for m in MODES}}
    n, exact, enc_s, dec_s = 0, True, 0.0, 0.0
    for _, img in images(True):
        idx = codec.entropy.indexes(codec.transform.analyse64(img, codec.multiple))  # (1, 32, 48)
        for i, m in enumerate(MODES):
            bits[m] += 8 * len(codec.entropy.encode_indexes(idx, i))
        t = tiles(idx[0], TILE)  # 24 non-overlapping tiles
        y64 = t.double().reshape(-1, 1, TILE, TILE)
        s = time.perf_counter()
        sections, _ = entropy.encode(y64, 0, 1)
        enc_s += time.perf_counter() - s
        s = time.perf_counter()
        back = entropy.decode(sections, tuple(y64.shape), 0, 1, "8x8 index tile")
        dec_s += time.perf_counter() - s
        exact &= torch.equal(back.long().reshape(t.shape), t)
        bits["circuit"] += 8 * len(sections[0])
        n += idx.numel()
    per_index = {m: b / n for m, b in bits.items()}
    result = {"codewords": k, "quality": args.quality, "hidden": args.hidden, "em_steps": args.steps,
              "train_tiles": len(fit), "valid_tiles": len(valid), "fit_seconds": round(fit_s, 1),
              "em_history": history, "bits_per_index": per_index, "indexes": n, "exact": bool(exact),
              "circuit_encode_s": enc_s, "circuit_decode_s": dec_s}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    lines = [f"vq-rgb q{args.quality} ({k} codewords), 768x512 crops of the val photos, {n} indexes; real bytes",
             "", "| prior | bits/index |", "|---|---:|"]
    lines += [f"| {m} | {b:.3f} |" for m, b in per_index.items()]
    lines += ["", f"circuit: HCLT k={args.hidden} on 8x8 tiles, {args.steps} EM steps on {len(fit)} training tiles "
              f"({fit_s:.0f} s); decode exact: {exact}"]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
