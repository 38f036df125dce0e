"""Entropy-coding speed: the scalar hyperprior path vs McQuic-style multi-codebook indexes.

    python benchmarks/entropy_speed.py [--image ../shared/data/images/val/astronaut.png] [--threads 2]

One image resized to 768x512, CPU, best of 5. Two parts:

* Shipped codecs at q4, the same transform (walloc-rgb-rd's; its gained y is 192 channels at 1/8):
  walloc-rgb-rd (mean-scale hyperprior + channel context) and walloc-rgb-mcq (4 trained residual
  codebook stages). For each: the analysis alone, the whole ``compress`` (analysis + entropy
  model + range coding; the difference is the entropy side), ``decompress_latents`` (container,
  range decoding and everything that chooses tables or codewords: the entropy side of decoding)
  and the whole ``decompress`` (+ synthesis and post-filter).
* The entropy side alone from rd's q4 latents: rd's hyperprior side path *without* its channel
  context (h_a, round z, exact integer table indexes, means, range-code z and y), and untrained
  multi-codebook quantizers of several shapes (codewords drawn at the latents' scale, a skewed
  random prior: speed only, not rate-distortion).

Writes ``docs/results/entropy_speed.json``.
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
from lcodec.entropy.model import channel_indexes
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
    y64 = hp.analyse64(x)
    entropy = hp.entropy  # (1, 192, 32, 48)

    def hp_encode():
        z = entropy.hyper_analysis(y64)
        y_sym = torch.round(y64 - entropy.means(z)).to(torch.int64)
        idx = entropy.table_indexes(z)
        return (encode_symbols(z.numpy().reshape(-1), channel_indexes(z.shape), entropy.z_tables(hp.rate)),
                encode_symbols(y_sym.numpy().reshape(-1), idx.numpy().reshape(-1), entropy.y_tables), tuple(z.shape))

    t_hp_enc, (z_data, y_data, zshape) = best_of(hp_encode)

    def hp_decode():
        z = torch.from_numpy(decode_symbols(z_data, channel_indexes(zshape), entropy.z_tables(hp.rate)).reshape(zshape))
        idx = entropy.table_indexes(z).numpy().reshape(-1)
        y_sym = decode_symbols(y_data, idx, entropy.y_tables)
        return torch.from_numpy(y_sym.reshape(y64.shape)).double() + entropy.means(z)

    t_hp_dec, _ = best_of(hp_decode)
    rows = [{"path": "hyperprior side path of walloc-rgb-rd q4, without its channel context", "symbols": int(y64.numel() + np.prod(zshape)),
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
    shipped = []
    for name in ("walloc-rgb-rd", "walloc-rgb-mcq"):
        codec = lcodec.load(name, quality=4)
        t_an, _ = best_of(lambda: codec.analyse64(x))
        t_enc, data = best_of(lambda: codec.compress(x))
        t_lat, _ = best_of(lambda: codec.decompress_latents(data))
        t_dec, x_hat = best_of(lambda: codec.decompress(data))
        shipped.append({"codec": f"{name} q4", "bytes": len(data), "bpp": 8 * len(data) / x[0, 0].numel(),
                        "psnr": float(-10 * torch.log10(((x_hat - x) ** 2).mean())),
                        "analysis_s": t_an, "compress_s": t_enc, "entropy_encode_s": t_enc - t_an,
                        "decompress_latents_s": t_lat, "decompress_s": t_dec})
    for r in shipped:
        print(f"{r['codec']:<20} {r['bpp']:.3f} bpp {r['psnr']:.2f} dB  analysis {1000 * r['analysis_s']:6.1f} ms  "
              f"compress {1000 * r['compress_s']:6.1f} ms  entropy decode {1000 * r['decompress_latents_s']:6.1f} ms  "
              f"decompress {1000 * r['decompress_s']:6.1f} ms")
    for r in rows:
        print(f"{r['path']:<40} {r['symbols']:>7} symbols  encode {1000 * r['encode_s']:7.1f} ms  "
              f"decode {1000 * r['decode_s']:7.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"image": args.image.name, "size": [512, 768], "threads": args.threads,
                                    "latents": list(y64.shape), "shipped": shipped,
                                    "note": "rows: entropy side only; the multi-codebook rows are untrained (speed only)",
                                    "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
