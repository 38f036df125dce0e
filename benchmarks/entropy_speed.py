"""Entropy-coding speed: the scalar hyperprior path vs McQuic-style multi-codebook indexes.

    python benchmarks/entropy_speed.py [--image ../shared/data/images/val/astronaut.png] [--threads 2]

Both start from the same latents: the shipped walloc-rgb-rd q4 transform's gained y for one
image resized to 768x512 (192 channels at 1/16 resolution). Timed, best of 5, CPU:

* hyperprior encode: h_a, round z, exact integer table indexes, means, range-code z and y;
  decode: range-decode z, indexes, means, range-decode y (walloc-rgb-rd's hyperprior).
* multi-codebook encode: float64 rate-aware nearest codeword for M groups of d channels,
  range-code the M indexes per position with one categorical table per codebook;
  decode: range-decode, gather codewords (``lcodec.entropy.codebook``).

The codebooks here are *not trained* (codewords drawn at the latents' scale, a skewed random
prior): this measures speed, not rate-distortion. Writes ``docs/results/entropy_speed.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import lcodec
from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.entropy.codebook import MultiCodebookQuantizer
from lcodec.io.image import read_image


def best_of(fn, repeats: int = 5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, default=Path("../shared/data/images/val/astronaut.png"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("docs/results/entropy_speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    x = torch.nn.functional.interpolate(read_image(args.image)[None], size=(512, 768), mode="bilinear").clamp(0, 1)
    hp = lcodec.load("walloc-rgb-rd", quality=4)
    y64 = hp._light_encode(hp._pad(x.double()))  # (1, 192, 32, 48)

    def hp_encode():
        z = hp._hyper_analysis(y64)
        y_sym = torch.round(y64 - hp._means(z)).to(torch.int64)
        idx = hp.table_indexes(z)
        return (encode_symbols(z.numpy().reshape(-1), hp._z_indexes(tuple(z.shape)), hp.tables),
                encode_symbols(y_sym.numpy().reshape(-1), idx.numpy().reshape(-1), hp.y_tables), tuple(z.shape))

    t_hp_enc, (z_data, y_data, zshape) = best_of(hp_encode)

    def hp_decode():
        z = torch.from_numpy(decode_symbols(z_data, hp._z_indexes(zshape), hp.tables).reshape(zshape))
        idx = hp.table_indexes(z).numpy().reshape(-1)
        y_sym = decode_symbols(y_data, idx, hp.y_tables)
        return torch.from_numpy(y_sym.reshape(y64.shape)).double() + hp._means(z)

    t_hp_dec, _ = best_of(hp_decode)
    rows = [{"path": "hyperprior (walloc-rgb-rd q4)", "symbols": int(y64.numel() + np.prod(zshape)),
             "bits": 8 * (len(z_data) + len(y_data)), "encode_s": t_hp_enc, "decode_s": t_hp_dec}]
    torch.manual_seed(0)
    scale = float(y64.std())
    channels = y64.shape[1]
    for groups, codewords in ((48, 256), (96, 64), (24, 1024)):
        vq = MultiCodebookQuantizer(channels, groups, codewords, init_scale=scale)
        with torch.no_grad():
            vq.logits.copy_(torch.randn(groups, codewords))
        vq.export()
        t_enc, (data, idx) = best_of(lambda: vq.encode(y64))
        t_dec, _ = best_of(lambda: vq.dequantize(vq.decode_indexes(data, tuple(y64.shape))))
        rows.append({"path": f"multi-codebook M={groups} K={codewords} (d={channels // groups})", "symbols": int(idx.numel()),
                     "bits": 8 * len(data), "encode_s": t_enc, "decode_s": t_dec})
    for r in rows:
        print(f"{r['path']:<40} {r['symbols']:>7} symbols  encode {1000 * r['encode_s']:7.1f} ms  "
              f"decode {1000 * r['decode_s']:7.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"image": args.image.name, "size": [512, 768], "threads": args.threads,
                                    "latents": list(y64.shape), "note": "codebooks untrained: speed only",
                                    "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
