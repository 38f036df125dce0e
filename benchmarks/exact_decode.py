"""What the exact decoder costs: BD-rate and decode time of the fixed-point synthesis
(lcodec.models.exact) against the float one, on the same streams.

    python benchmarks/exact_decode.py [--images 16] [--out docs/results/exact_decode]

Images: shared/data/images/val (PSNR on 8-bit RGB, as the PNG holds it); audio: the 48 kHz music
clips (SNR of the 16-bit WAV). Each stream is decoded both ways; the rate is the same stream's, so
the BD-rate is the quality gap expressed in rate. Decode times: ``decompress`` on 2 threads,
second of two runs (the first builds the integer tables).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import lcodec
import lcodec.registry
from lcodec.eval.bdrate import bd_quality, bd_rate
from lcodec.io.audio import quantize_pcm16, read_audio
from lcodec.io.image import read_image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _timed(codec, data: bytes, exact: bool) -> tuple[torch.Tensor, float]:
    codec.exact_decode = exact
    codec.decompress(data)
    t0 = time.perf_counter()
    x = codec.decompress(data)
    return x, time.perf_counter() - t0


def _psnr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    mse = float(((torch.round(x_hat.clamp(0, 1) * 255) - torch.round(x * 255)) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def _snr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    pcm = torch.from_numpy(quantize_pcm16(x_hat.numpy())).float() / 32768
    return 10 * np.log10(float((x**2).mean()) / max(float(((pcm - x) ** 2).mean()), 1e-12))


def measure(name: str, items: list, modality: str) -> dict:
    spec_q = lcodec.registry.get_spec(name).shipped_qualities
    rows = []
    for q in spec_q:
        codec = lcodec.load(name, q)
        rate, qe, qf, te, tf = [], [], [], 0.0, 0.0
        for x, sr in items:
            data = codec.compress(x.unsqueeze(0), sr) if modality == "audio" else codec.compress(x.unsqueeze(0))
            xe, de = _timed(codec, data, True)
            xf, df = _timed(codec, data, False)
            te, tf = te + de, tf + df
            if modality == "audio":
                rate.append(8 * len(data) * sr / x.shape[-1] / 1000)
                qe.append(_snr(xe[0], x))
                qf.append(_snr(xf[0], x))
            else:
                rate.append(8 * len(data) / (x.shape[-2] * x.shape[-1]))
                qe.append(_psnr(xe[0], x))
                qf.append(_psnr(xf[0], x))
        rows.append({"quality": q, "rate": float(np.mean(rate)), "exact": float(np.mean(qe)),
                     "float": float(np.mean(qf)), "exact_s": te, "float_s": tf})
        print(name, json.dumps(rows[-1]), flush=True)
    out = {"codec": name, "points": rows, "decode_time_ratio": sum(r["exact_s"] for r in rows) / sum(r["float_s"] for r in rows),
           "mean_quality_gap_db": float(np.mean([r["exact"] - r["float"] for r in rows]))}
    if len(rows) >= 2:
        r = [p["rate"] for p in rows]
        out["bd_rate_percent"] = bd_rate(r, [p["float"] for p in rows], r, [p["exact"] for p in rows]).value
        out["bd_quality_db"] = bd_quality(r, [p["float"] for p in rows], r, [p["exact"] for p in rows]).value
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--codec", action="append", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "exact_decode")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    images = [(read_image(p), None) for p in sorted((DATA / "images" / "val").iterdir())
              if p.suffix.lower() in (".png", ".jpg")][: args.images]
    clips = [read_audio(p) for p in sorted((DATA / "audio" / "music_stereo_48k").glob("*.wav"))]
    results = []
    for name in args.codec or ["walloc-rgb-rd", "walloc-rgb-light", "walloc-rgb", "walloc-audio-hp"]:
        audio = lcodec.registry.get_spec(name).modality == "audio"
        results.append(measure(name, clips if audio else images, "audio" if audio else "image"))
    args.out.mkdir(parents=True, exist_ok=True)
    earlier = args.out / "results.json"  # codecs measured in an earlier run into the same OUT are kept
    if earlier.is_file():
        mine = {r["codec"] for r in results}
        results = [r for r in json.loads(earlier.read_text()) if r["codec"] not in mine] + results
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# Exact decode vs float decode (same streams)", "",
             f"Images: the first {len(images)} of images/val (PSNR on 8-bit RGB); audio: {len(clips)} music clips at "
             "48 kHz (SNR of the 16-bit WAV). Decode time: `decompress` on 2 threads, warm.", "",
             "`python benchmarks/exact_decode.py --images 8 --codec walloc-rgb-rd --codec walloc-rgb "
             "--codec walloc-audio-hp --codec vq-rgb`.", "",
             "| codec | BD-rate of exact vs float | mean quality gap | decode time exact / float |", "|---|---|---|---|"]
    for r in results:
        bd = f"{r['bd_rate_percent']:+.3f}%" if "bd_rate_percent" in r else "n/a (one shipped rate)"
        lines.append(f"| {r['codec']} | {bd} | {r['mean_quality_gap_db']:+.4f} dB | {r['decode_time_ratio']:.2f}x |")
    (args.out / "README.md").write_text("\n".join(lines) + "\n\nReproduce: `python benchmarks/exact_decode.py`\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
