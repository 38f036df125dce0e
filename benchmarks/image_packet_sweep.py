"""Which wavelet packet, depth and latent width should the WaLLoC image codecs use?

    python benchmarks/image_packet_sweep.py [--webp docs/results/image_rd_val_walloc-rgb_walloc-rgb-hp/rows.json]

A measurement, not a guess. For each orthogonal wavelet, packet depth J and number of
latent channels C, this builds the *plain linear transform coder* that a WaLLoC model
starts from:

1. the full packet of every training image (``images/train``, 256x256 centre crops),
2. a KLT (PCA) of the 3 * 4^J packet channels fitted on those, keeping the C strongest,
3. uniform quantization of the C projections with step D,
4. on images/val: each latent channel costed at its empirical entropy *per image*
   (an idealised, image-adaptive rate, roughly what a hyperprior buys), and the image
   rebuilt linearly (inverse KLT, inverse packet) for PSNR-RGB.

Each (wavelet, J, C) gives a curve over D; its BD-rate against WebP (same val images,
from an ``image_rd.py`` rows.json) says how far a transform family is from WebP before
any learning. Dropping channels caps the PSNR (WaLLoC's 768 -> 64 at J=4 reaches only
~31 dB even at fine steps); the sweep shows at which width the cap stops mattering.
Writes ``docs/results/image_packet_sweep.json``.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lcodec.eval.bdrate import bd_rate
from lcodec.io.image import read_image
from lcodec.models.walloc import packet_klt
from lcodec.models.wavelet import WaveletPacket2d
from lcodec.train.data import list_images


WIDTHS = {2: (48,), 3: (96, 192), 4: (64, 192, 768)}  # latent channels tried per depth


def entropy_bits(q: torch.Tensor) -> float:
    """Sum over channels of (count x empirical entropy) of each channel's symbols (q: (C, ...))."""
    q = q.reshape(q.shape[0], -1).long()
    q = q - q.min(dim=1, keepdim=True).values
    span = int(q.max()) + 1
    counts = torch.bincount((q + span * torch.arange(q.shape[0])[:, None]).reshape(-1),
                            minlength=span * q.shape[0]).reshape(q.shape[0], span).double()
    p = counts / q.shape[1]
    return float(-(counts * torch.log2(torch.where(counts > 0, p, 1.0))).sum())


def pad_to(x: torch.Tensor, factor: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % factor, 0, -h % factor), mode="replicate")


def val_curve(wpt: WaveletPacket2d, basis: torch.Tensor, channels: int, images: list[torch.Tensor],
              steps: tuple[float, ...]) -> list[dict]:
    rows = basis[:channels]
    points = []
    for step in steps:
        bpp, psnr = [], []
        for x in images:
            h, w = x.shape[-2:]
            coeffs = wpt(pad_to(x.unsqueeze(0), wpt.factor) - 0.5)[0]  # (K, h, w)
            k, hh, ww = coeffs.shape
            z = rows @ coeffs.reshape(k, -1)
            q = torch.round(z / step)
            rec = wpt.inverse((rows.T @ (q * step)).reshape(1, k, hh, ww))[0] + 0.5
            rec = torch.round(rec[:, :h, :w].clamp(0, 1) * 255) / 255
            mse = float(((rec - x) ** 2).mean())
            bpp.append(entropy_bits(q) / (h * w))
            psnr.append(10 * math.log10(1.0 / max(mse, 1e-12)))
        points.append({"step": step, "bpp": float(np.mean(bpp)), "psnr_rgb": float(np.mean(psnr))})
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=Path("../shared/data/images/train"))
    ap.add_argument("--val", type=Path, default=Path("../shared/data/images/val"))
    ap.add_argument("--webp", type=Path, default=Path("docs/results/image_rd_val_walloc-rgb_walloc-rgb-hp/rows.json"),
                    help="an image_rd.py rows.json with WebP rows on the same val images")
    ap.add_argument("--train-images", type=int, default=120)
    ap.add_argument("--out", type=Path, default=Path("docs/results/image_packet_sweep.json"))
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    crops = []
    for path in list_images(args.train)[: args.train_images]:
        x = read_image(path).double()
        h, w = x.shape[-2:]
        if min(h, w) < 256:
            continue
        t, l = (h - 256) // 2, (w - 256) // 2
        crops.append(x[:, t:t + 256, l:l + 256])
    images = [read_image(p).double() for p in list_images(args.val)]
    webp_rows = [r for r in json.loads(args.webp.read_text()) if r.get("codec") == "webp"]
    webp = {}
    for r in webp_rows:
        webp.setdefault(r["quality"], []).append((r["rate"], r["metrics"]["psnr-rgb"]))
    webp_curve = sorted((float(np.mean([b for b, _ in v])), float(np.mean([p for _, p in v]))) for v in webp.values())
    steps = (0.03, 0.05, 0.08, 0.13, 0.2, 0.32, 0.5)
    results = []
    for wavelet in ("haar", "sym4", "sym8"):
        for levels in (2, 3, 4):
            wpt = WaveletPacket2d(levels, wavelet).double()
            basis = packet_klt(wpt, crops)
            k = basis.shape[0]
            for channels in WIDTHS[levels]:
                points = val_curve(wpt, basis, channels, images, steps)
                try:
                    bd = bd_rate([b for b, _ in webp_curve], [p for _, p in webp_curve],
                                 [p["bpp"] for p in points], [p["psnr_rgb"] for p in points]).value
                except Exception as exc:  # curves may not overlap at narrow widths
                    bd = None
                    print("  no BD:", exc)
                results.append({"wavelet": wavelet, "levels": levels, "channels": channels,
                                "coefficients": k, "bd_rate_vs_webp_pct": bd, "points": points})
                shown = " ".join(f"{p['bpp']:.2f}/{p['psnr_rgb']:.1f}" for p in points)
                print(f"{wavelet:5s} J={levels} C={channels:4d}/{k:4d} BD vs WebP "
                      f"{'n/a' if bd is None else f'{bd:+.1f}%'}  {shown}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"train_crops": len(crops), "val_images": len(images), "steps": steps,
                                    "webp_curve": webp_curve, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
