"""Extreme rates: vq-rgb's ladder against JPEG and WebP at their lowest quality settings and
walloc-rgb-rd q1, in one run, on held-out photos (never trained on); lost-index restoration; the
index priors; a picture grid.

Sets: (a) the 16 images of ../shared/data/images/val at full size, (b) 768x512 centre crops of the
val images at least that large (hubble, retina, wiki_041-044). Rates are whole files (headers
included) in bits per pixel; PSNR over RGB of 8-bit outputs; MS-SSIM (pytorch-msssim, 8-bit values)
per image, averaged. JPEG: Pillow quality 1, 4:2:0, optimized tables; WebP: Pillow quality 0,
method 6.

    python benchmarks/vq_extreme.py --out docs/results/vq_extreme
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lcodec  # noqa: E402
from lcodec.codecs.vq import decompress_with_erasures  # noqa: E402
from lcodec.entropy.vq_index import MODES  # noqa: E402
from lcodec.eval.metrics import ms_ssim, psnr  # noqa: E402
from lcodec.io.image import read_image  # noqa: E402

VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "val"
CROP = (512, 768)  # H, W


def images(crops: bool) -> list[tuple[str, torch.Tensor]]:
    out = []
    for p in sorted(VAL.iterdir()):
        x = read_image(p)[None]
        if not crops:
            out.append((p.name, x))
        elif x.shape[-2] >= CROP[0] and x.shape[-1] >= CROP[1]:
            top, left = (x.shape[-2] - CROP[0]) // 2, (x.shape[-1] - CROP[1]) // 2
            out.append((p.name, x[..., top:top + CROP[0], left:left + CROP[1]].contiguous()))
    return out


def to8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


def pillow(x: torch.Tensor, fmt: str, **opts) -> tuple[int, torch.Tensor]:
    buf = io.BytesIO()
    arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).save(buf, format=fmt, **opts)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255
    return len(buf.getvalue()), torch.from_numpy(back.transpose(2, 0, 1).copy())[None]


def measure(items, encode) -> dict:
    rows, enc_s, dec_s = [], 0.0, 0.0
    for name, x in items:
        t0 = time.perf_counter()
        nbytes, y = encode(x)
        dt = time.perf_counter() - t0
        enc_s += dt
        y = to8(y)
        rows.append({"image": name, "bpp": 8 * nbytes / (x.shape[-1] * x.shape[-2]), "psnr": float(psnr(x, y)),
                     "ms_ssim": float(ms_ssim(x, y))})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("bpp", "psnr", "ms_ssim")}
    return {**mean, "seconds_per_image": enc_s / len(items), "per_image": rows}


def lcodec_coder(name: str, quality: int):
    codec = lcodec.load(name, quality)

    def run(x):
        data = codec.compress(x)
        return len(data), lcodec.decompress(data)
    return run


def grid(items, out: Path, codec_q: int) -> None:
    """Original, vq-rgb, JPEG q1, WebP q0 of one crop (a 384x256 window, full resolution)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, x = items[-1]
    codec = lcodec.load("vq-rgb", codec_q)
    data = codec.compress(x)
    panels = [("original", x, None), (f"vq-rgb q{codec_q}", lcodec.decompress(data), len(data))]
    for label, fmt, opts in (("JPEG q1", "JPEG", {"quality": 1, "optimize": True}),
                             ("WebP q0", "WEBP", {"quality": 0, "method": 6})):
        n, y = pillow(x, fmt, **opts)
        panels.append((label, y, n))
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.2))
    pix = x.shape[-1] * x.shape[-2]
    for ax, (label, y, n) in zip(axes, panels):
        win = to8(y)[0, :, 128:384, 192:576].permute(1, 2, 0).numpy()
        ax.imshow(win)
        sub = "" if n is None else f"\n{8 * n / pix:.3f} bpp, MS-SSIM {float(ms_ssim(x, to8(y))):.3f}"
        ax.set_title(label + sub, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{name}, 768x512 centre crop (a 384x256 window shown at full resolution)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("ms_ssim", "psnr")):
        for label, r in results["crops"].items():
            ax.scatter(r["bpp"], r[key], s=25)
            ax.annotate(label, (r["bpp"], r[key]), fontsize=7, xytext=(3, 2), textcoords="offset points")
        ladder = [results["crops"][f"vq-rgb q{q}"] for q in range(1, 8)]
        ax.plot([r["bpp"] for r in ladder], [r[key] for r in ladder], "-", alpha=0.5)
        ax.axvline(0.05, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel("MS-SSIM" if key == "ms_ssim" else "PSNR (dB)")
        ax.grid(alpha=0.3)
    fig.suptitle("768x512 crops of held-out photos: vq-rgb ladder vs the lowest JPEG / WebP settings")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("docs/results/vq_extreme"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": platform.processor() or platform.machine(), "threads": args.threads}
    coders = {**{f"vq-rgb q{q}": lcodec_coder("vq-rgb", q) for q in range(1, 8)},
              "walloc-rgb-rd q1": lcodec_coder("walloc-rgb-rd", 1),
              "JPEG q1": lambda x: pillow(x, "JPEG", quality=1, optimize=True, subsampling=2),
              "WebP q0": lambda x: pillow(x, "WEBP", quality=0, method=6)}
    for key, crops in (("crops", True), ("val", False)):
        items = images(crops)
        results[key] = {}
        for label, fn in coders.items():
            results[key][label] = measure(items, fn)
            r = results[key][label]
            print(f"{key:5s} {label:18s} {r['bpp']:.4f} bpp  {r['psnr']:.2f} dB  MS-SSIM {r['ms_ssim']:.4f}", flush=True)

    # restoration at q7 on the crops: the restoration network vs filling lost codes with the mean codeword
    codec = lcodec.load("vq-rgb", 7)
    items = images(True)
    results["restoration"] = {}
    for frac in (0.0, 0.1, 0.2, 0.3):
        acc = {"restored": [], "mean_fill": []}
        for name, x in items:
            data = codec.compress(x)
            y, lost = decompress_with_erasures(codec, data, frac, seed=0)
            z, shape = codec.decompress_latents(data)
            mean = codec.entropy.codebook().float().mean(0)[None, :, None, None]
            naive = codec.decode_latents(torch.where(lost[:, None], mean, z.float()), size=shape[2:])
            for k, img in (("restored", y), ("mean_fill", naive)):
                acc[k].append((float(psnr(x, to8(img))), float(ms_ssim(x, to8(img)))))
        results["restoration"][str(frac)] = {k: {"psnr": float(np.mean([a for a, _ in v])),
                                                 "ms_ssim": float(np.mean([b for _, b in v]))} for k, v in acc.items()}
        print("lost", frac, results["restoration"][str(frac)], flush=True)

    # index priors: payload bits per index of each mode on the crops, every ladder level
    results["priors"] = {}
    for q in range(1, 8):
        c = lcodec.load("vq-rgb", q)
        bits = {m: 0.0 for m in MODES}
        n = 0
        for _, x in items:
            idx = c.entropy.indexes(c.transform.analyse64(x, c.multiple))
            n += idx.numel()
            for i, m in enumerate(MODES):
                bits[m] += 8 * len(c.entropy.encode_indexes(idx, i))
        results["priors"][str(c.entropy.size)] = {m: b / n for m, b in bits.items()}
        print("prior", c.entropy.size, results["priors"][str(c.entropy.size)], flush=True)

    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    lines = ["| set | codec | bpp | PSNR dB | MS-SSIM | encode+decode s/img |", "|---|---|---:|---:|---:|---:|"]
    for key in ("crops", "val"):
        for label, r in results[key].items():
            lines.append(f"| {key} | {label} | {r['bpp']:.4f} | {r['psnr']:.2f} | {r['ms_ssim']:.4f} | "
                         f"{r['seconds_per_image']:.2f} |")
    lines += ["", "| lost (q7, crops) | restored PSNR | restored MS-SSIM | mean-fill PSNR | mean-fill MS-SSIM |",
              "|---:|---:|---:|---:|---:|"]
    for frac, r in results["restoration"].items():
        lines.append(f"| {float(frac):.0%} | {r['restored']['psnr']:.2f} | {r['restored']['ms_ssim']:.4f} | "
                     f"{r['mean_fill']['psnr']:.2f} | {r['mean_fill']['ms_ssim']:.4f} |")
    lines += ["", "| codewords | uniform bits/index | histogram | context |", "|---:|---:|---:|---:|"]
    for k, r in results["priors"].items():
        lines.append(f"| {k} | {r['uniform']:.3f} | {r['histogram']:.3f} | {r['context']:.3f} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    plot(results, args.out / "rd.png")
    grid(items, args.out / "grid.png", 7)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
