"""Rate-distortion of the shipped walloc-rgb weights vs JPEG and WebP, measured in one run.

    python benchmarks/image_rd.py --data ../shared/data/images/val --out docs/results

Rate is bits per pixel of the WHOLE file (container header included); the model's
own estimate is recorded beside it. PSNR-RGB and MS-SSIM are computed on 8-bit
reconstructions. For each image, the classical codecs' PSNR at the learned codec's
rate is interpolated (linear in log-bpp) along their quality grid, so the learned
point is compared with JPEG/WebP at *matched* rate. Writes ``image_rd_<tag>.json``
and ``image_rd_<tag>.png``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import lcodec
from lcodec.eval.classical import QUALITY_GRIDS, PillowCodec
from lcodec.eval.metrics import bpp, ms_ssim, psnr
from lcodec.io.image import read_image
from lcodec.train.data import list_images


def center_crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor | None:
    H, W = x.shape[-2:]
    if H < h or W < w:
        if H >= w and W >= h:  # portrait photo: take the crop rotated
            return center_crop(x.transpose(-1, -2), h, w)
        return None
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top : top + h, left : left + w]


def measure(codec, x: torch.Tensor) -> dict[str, float]:
    t0 = time.perf_counter()
    data = codec.compress(x)
    t1 = time.perf_counter()
    x_hat = codec.decompress(data)
    t2 = time.perf_counter()
    h, w = x.shape[-2:]
    row = {
        "bytes": len(data),
        "bpp": bpp(len(data), h, w),
        "psnr_rgb": float(psnr(x, x_hat)[0]),
        "ms_ssim_rgb": float(ms_ssim(x, x_hat)[0]) if min(h, w) > 160 else None,
        "encode_s": t1 - t0,
        "decode_s": t2 - t1,
    }
    if hasattr(codec, "estimate_bits"):
        row["estimated_bpp"] = codec.estimate_bits(x) / (h * w)
    return row


def psnr_at_rate(rows: list[dict], rate: float) -> float | None:
    """PSNR interpolated at ``rate`` along one image's classical curve (None if outside)."""
    pts = sorted((r["bpp"], r["psnr_rgb"]) for r in rows)
    rates, quals = np.log([p[0] for p in pts]), [p[1] for p in pts]
    if not rates[0] <= np.log(rate) <= rates[-1]:
        return None
    return float(np.interp(np.log(rate), rates, quals))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/images/val"))
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--codec", default="walloc-rgb")
    ap.add_argument("--crop", default=None, help="evaluate HxW center crops, e.g. 512x768 (skips smaller images)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    spec = lcodec.registry.get_spec(args.codec)
    learned = {q: lcodec.load(args.codec, quality=q) for q in spec.qualities}
    classical = [PillowCodec(fmt, q) for fmt, grid in QUALITY_GRIDS.items() for q in grid]
    rows: list[dict] = []
    items = []
    for path in list_images(args.data):
        x = read_image(path).unsqueeze(0)
        if args.crop:
            h, w = map(int, args.crop.lower().split("x"))
            x = center_crop(x, h, w)
            if x is None:
                continue
        items.append((path.name, x.contiguous()))
    for name, x in tqdm(items, desc="images"):
        for q, codec in learned.items():
            rows.append({"item": name, "codec": args.codec, "quality": q, **measure(codec, x)})
        for c in classical:
            rows.append({"item": name, "codec": c.fmt, "quality": c.quality, **measure(c, x)})

    summary = []
    for (codec_name, q) in dict.fromkeys((r["codec"], r["quality"]) for r in rows):
        sel = [r for r in rows if r["codec"] == codec_name and r["quality"] == q]
        entry = {"codec": codec_name, "quality": q, "images": len(sel)}
        for key in ("bpp", "psnr_rgb", "ms_ssim_rgb", "encode_s", "decode_s", "estimated_bpp"):
            vals = [r[key] for r in sel if r.get(key) is not None]
            if vals:
                entry[key] = statistics.fmean(vals)
        if codec_name == args.codec:
            for fmt in QUALITY_GRIDS:
                gains = []
                for r in sel:
                    ref = psnr_at_rate([c for c in rows if c["item"] == r["item"] and c["codec"] == fmt], r["bpp"])
                    if ref is not None:
                        gains.append(r["psnr_rgb"] - ref)
                entry[f"psnr_gain_vs_{fmt}_at_matched_rate"] = statistics.fmean(gains) if gains else None
                entry[f"matched_images_{fmt}"] = len(gains)
        summary.append(entry)

    tag = f"{args.data.name}" + (f"_{args.crop}" if args.crop else "")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "data": str(args.data),
        "crop": args.crop,
        "device": "cpu",
        "threads": args.threads,
        "platform": platform.platform(),
        "versions": {"lcodec": lcodec.__version__, "torch": torch.__version__},
        "summary": summary,
        "rows": rows,
    }
    (args.out / f"image_rd_{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(summary, args.out / f"image_rd_{tag}.png", f"{args.data.name} ({len(items)} images{', ' + args.crop if args.crop else ''})")
    for e in summary:
        if e["codec"] == args.codec:
            print(json.dumps(e, indent=1))


def plot(summary: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name in dict.fromkeys(e["codec"] for e in summary):
        pts = sorted((e["bpp"], e["psnr_rgb"]) for e in summary if e["codec"] == name)
        ax.plot(*zip(*pts), marker="o", ms=4 if len(pts) > 1 else 8, label=name)
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel("PSNR-RGB (dB)")
    ax.set_xlim(0, 2.0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"Rate-distortion, {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
