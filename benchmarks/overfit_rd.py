"""overfit-rgb: rate-distortion against fitting steps, and against WebP / JPEG in the same run, on
held-out val crops (never tuned on). Every row is a real stream (container headers included) decoded
by the exact integer decoder; PSNR over RGB of the 8-bit outputs. Rows are appended to
``rows.jsonl`` as they finish, so a killed run resumes where it stopped.

    python benchmarks/overfit_rd.py --out docs/results/overfit_rd --size 256 --images 2 \
        --qualities 1,3,5 --steps 300,1000

WebP: Pillow, method 6, qualities 5..95; JPEG: Pillow, 4:2:0, optimized, qualities 10..95; AVIF and
walloc-rgb-rd (q1..q6) through the harness' adapters (``lcodec.eval.adapters``).
BD-rate (pchip, PSNR) of each steps setting vs WebP over the overlapping PSNR range.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lcodec  # noqa: E402
from lcodec.eval.bdrate import bd_rate  # noqa: E402
from lcodec.io.image import read_image  # noqa: E402

VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images" / "val"


def crops(n: int, h: int, w: int, names: list[str] | None = None) -> list[tuple[str, torch.Tensor]]:
    """Centre crops h x w of the first ``n`` val images at least that large (or of ``names``)."""
    out = []
    for p in sorted(VAL.iterdir()):
        if names and p.name not in names:
            continue
        x = read_image(p)
        if x.shape[-2] >= h and x.shape[-1] >= w:
            top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
            out.append((p.name, x[:, top:top + h, left:left + w].unsqueeze(0).contiguous()))
        if len(out) == n:
            break
    return out


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / max(mse, 1e-12))


def baselines(name: str, x: torch.Tensor, arr: np.ndarray, have: set) -> list[dict]:
    """AVIF and walloc-rgb-rd (q1..q6) through the eval harness' adapters, rows not yet in ``have``."""
    from lcodec.eval.adapters import CLASSICAL, LearnedCodec, MediaItem

    rows = []
    h, w = arr.shape[:2]
    item = MediaItem(name=name, modality="image", x=x)
    for codec in (CLASSICAL["avif"](), LearnedCodec("walloc-rgb-rd")):
        for q in codec.qualities:
            if (name, codec.name, q, None) in have:
                continue
            data = codec.encode(item, q).data
            dec = (codec.decode(data, item)[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            rows.append({"image": name, "codec": codec.name, "quality": q, "bpp": 8 * len(data) / (h * w),
                         "psnr": psnr8(dec, arr)})
    return rows


def classical(name: str, arr: np.ndarray) -> list[dict]:
    rows = []
    h, w = arr.shape[:2]
    for fmt, qs in (("webp", range(5, 100, 10)), ("jpeg", range(10, 100, 10))):
        for q in qs:
            b = io.BytesIO()
            kw = {"method": 6} if fmt == "webp" else {"optimize": True, "subsampling": 2}
            Image.fromarray(arr).save(b, fmt.upper(), quality=q, **kw)
            dec = np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))
            rows.append({"image": name, "codec": fmt, "quality": q, "bpp": 8 * len(b.getvalue()) / (h * w),
                         "psnr": psnr8(dec, arr)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=256, help="square crop side, or HxW with --height")
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--qualities", default="1,3,5")
    ap.add_argument("--steps", default="300,1000")
    ap.add_argument("--names", default=None, help="comma-separated val file names (default: the first --images)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    h, w = (args.height or args.size), args.size
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "rows.jsonl"
    done = [json.loads(l) for l in rows_path.read_text().splitlines()] if rows_path.exists() else []
    have = {(r["image"], r["codec"], r["quality"], r.get("steps")) for r in done}
    items = crops(args.images, h, w, args.names.split(",") if args.names else None)
    with rows_path.open("a") as f:
        for name, x in items:
            arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            if (name, "webp", 5, None) not in have:
                for r in classical(name, arr):
                    f.write(json.dumps(r) + "\n")
                    done.append(r)
                f.flush()
            for r in baselines(name, x, arr, have):
                f.write(json.dumps(r) + "\n")
                done.append(r)
            f.flush()
            for steps in [int(s) for s in args.steps.split(",")]:
                for q in [int(s) for s in args.qualities.split(",")]:
                    if (name, "overfit-rgb", q, steps) in have:
                        continue
                    codec = lcodec.load("overfit-rgb", q)
                    t0 = time.perf_counter()
                    data = codec.compress(x, steps=steps)
                    enc = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    dec = lcodec.load("overfit-rgb", q).decompress_pixels(data)[0].permute(1, 2, 0).numpy()
                    r = {"image": name, "codec": "overfit-rgb", "quality": q, "steps": steps,
                         "bpp": 8 * len(data) / (h * w), "psnr": psnr8(dec, arr), "encode_s": enc,
                         "decode_s": time.perf_counter() - t0, "bytes": len(data)}
                    print(json.dumps(r), flush=True)
                    f.write(json.dumps(r) + "\n")
                    f.flush()
                    done.append(r)
    names = {n for n, _ in items}
    summarize([r for r in done if r["image"] in names], args, h, w)
    return 0


def _curve(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Mean bpp and PSNR per quality over the images (each quality needs every image)."""
    by: dict = {}
    for r in rows:
        by.setdefault(r["quality"], []).append((r["bpp"], r["psnr"]))
    pts = sorted((np.mean([b for b, _ in v]), np.mean([p for _, p in v])) for v in by.values())
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def summarize(rows: list[dict], args, h: int, w: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = sorted({r["image"] for r in rows})
    curves = {}
    for fmt in ("webp", "jpeg", "avif", "walloc-rgb-rd"):
        sel = [r for r in rows if r["codec"] == fmt]
        if sel:
            curves[fmt] = _curve(sel)
    for steps in sorted({r["steps"] for r in rows if r["codec"] == "overfit-rgb"}):
        sel = [r for r in rows if r["codec"] == "overfit-rgb" and r["steps"] == steps]
        if {r["image"] for r in sel} == set(images):
            curves[f"overfit-rgb {steps} steps"] = _curve(sel)
    lines = [f"# overfit-rgb RD against fitting steps ({len(images)} val crops {w}x{h}: {', '.join(images)})", "",
             f"Machine: {platform.machine()}, {torch.get_num_threads()} threads; `python benchmarks/overfit_rd.py "
             f"--out {args.out} --size {w} --height {h} --images {args.images} --qualities {args.qualities} "
             f"--steps {args.steps}{' --names ' + args.names if args.names else ''}`", "",
             "| codec | quality | steps | bpp | PSNR dB | encode s | decode s |", "|---|---|---|---|---|---|---|"]
    for r in sorted([r for r in rows if r["codec"] == "overfit-rgb"], key=lambda r: (r["steps"], r["quality"], r["image"])):
        lines.append(f"| {r['image']} | q{r['quality']} | {r['steps']} | {r['bpp']:.4f} | {r['psnr']:.2f} | "
                     f"{r['encode_s']:.1f} | {r['decode_s']:.2f} |")
    lines += ["", "| curve (mean over images) | BD-rate vs WebP | points (bpp, dB) |", "|---|---|---|"]
    summary = {}
    for label, (b, p) in curves.items():
        bd = "n/a"
        if label != "webp" and len(b) >= 2:
            try:
                bd = f"{bd_rate(*curves['webp'], b, p).value:+.1f}%"
            except Exception as exc:  # curves that do not overlap in PSNR
                bd = f"no overlap ({type(exc).__name__})"
        summary[label] = {"bd_rate_vs_webp": bd, "bpp": b.tolist(), "psnr": p.tolist()}
        pts = ", ".join(f"({x:.3f}, {y:.2f})" for x, y in zip(b, p))
        lines.append(f"| {label} | {bd} | {pts} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, (b, p) in curves.items():
        ax.plot(b, p, "o-" if "overfit" in label else "s--", label=label)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB, RGB)")
    ax.set_title(f"overfit-rgb vs WebP/JPEG, {len(images)} val crops {w}x{h}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "rd.png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
