"""overfit-rgb: a quick probe of one fitting setting on one centre crop of a held-out val photo.

Each row is a real stream (``compress``, container included) decoded by the exact decoder; the
yardstick is WebP's rate at the same PSNR, interpolated (log rate) over Pillow WebP qualities
0..100, method 6, on the same crop. ``--latent-lr-scale`` overrides the latents' learning-rate
factor (``LATENT_LR_SCALE``; Cool-chic's encoder gain of 16 acts like 16); ``--lr``,
``--noise-fraction`` and ``--rate-ramp`` override the other fitting constants of
``lcodec.codecs.overfit``; ``--lmbda 0`` fits distortion only (how far the fit gets in the steps
given, whatever the rate).

    python benchmarks/overfit_probe.py --steps 500 --size 256 --qualities 2,4 --latent-lr-scale 16
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lcodec  # noqa: E402
import lcodec.codecs.overfit as overfit  # noqa: E402

VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "val"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def webp_curve(im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(PSNR, bpp) of WebP qualities 0..100, sorted by PSNR."""
    rows = []
    for q in range(0, 101, 2):
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "WEBP", quality=q, method=6)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        rows.append((psnr(dec, im), len(buf.getvalue()) * 8 / (im.shape[0] * im.shape[1])))
    rows.sort()
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="wiki_041.png", help="val photo")
    ap.add_argument("--size", type=int, default=256, help="square centre crop side")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--qualities", default="2,4")
    ap.add_argument("--latent-lr-scale", type=float, default=None)
    ap.add_argument("--lmbda", type=float, default=None, help="override the quality's lambda (0: distortion only)")
    ap.add_argument("--lr", type=float, default=None, help="override the base learning rate (LR)")
    ap.add_argument("--noise-fraction", type=float, default=None, help="override NOISE_FRACTION")
    ap.add_argument("--rate-ramp", type=float, default=None, help="override RATE_RAMP (0: no ramp)")
    ap.add_argument("--frozen-levels", type=int, default=None, help="override FROZEN_LEVELS (0: fit every grid)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    for flag, name in (("latent_lr_scale", "LATENT_LR_SCALE"), ("lr", "LR"), ("noise_fraction", "NOISE_FRACTION"),
                       ("rate_ramp", "RATE_RAMP"), ("frozen_levels", "FROZEN_LEVELS")):
        if getattr(args, flag) is not None:
            setattr(overfit, name, getattr(args, flag))
    im = np.asarray(Image.open(VAL / args.name).convert("RGB"))
    top, left = (im.shape[0] - args.size) // 2, (im.shape[1] - args.size) // 2
    im = np.ascontiguousarray(im[top : top + args.size, left : left + args.size])
    x = torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 255
    wp, wb = webp_curve(im)
    for q in [int(v) for v in args.qualities.split(",")]:
        codec = lcodec.load("overfit-rgb", quality=q)
        if args.lmbda is not None:
            codec.lmbda = args.lmbda
        t0 = time.perf_counter()
        data = codec.compress(x, steps=args.steps)
        seconds = time.perf_counter() - t0
        out = (lcodec.decompress(data)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        p, bpp = psnr(out, im), len(data) * 8 / (args.size**2)
        webp = float(np.exp(np.interp(p, wp, np.log(wb))))
        print(json.dumps({"name": args.name, "size": args.size, "quality": q, "steps": args.steps,
                          "latent_lr_scale": overfit.LATENT_LR_SCALE, "lr": overfit.LR,
                          "noise_fraction": overfit.NOISE_FRACTION, "rate_ramp": overfit.RATE_RAMP,
                          "frozen_levels": overfit.FROZEN_LEVELS,
                          "lmbda": codec.lmbda, "bpp": round(bpp, 4),
                          "psnr": round(p, 3), "webp_bpp_at_same_psnr": round(webp, 4),
                          "rate_vs_webp": round(bpp / webp, 2), "encode_s": round(seconds, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
