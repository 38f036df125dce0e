"""A video codec's encode and decode speed in frames per second on BasketballPass (416x240, the
first 50 frames, GOP 32) with 2 torch threads, at qualities 1, 3 and 6: the median of 3 runs.

    python benchmarks/video_speed.py [--codec walloc-video] [--out docs/results/video_rd/speed.json]
    python benchmarks/video_speed.py --codec walloc-video-mc --out docs/results/video_mc_rd/speed.json

Run it on an otherwise idle machine (timings, not rate-distortion).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "video")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "video_rd" / "speed.json")
    p.add_argument("--frames", type=int, default=50)
    p.add_argument("--codec", default="walloc-video")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    import lcodec
    from lcodec.io.video import read_video

    x, _ = read_video(args.data / "BasketballPass_416x240_100f_png", max_frames=args.frames)
    x = x.unsqueeze(0)
    result = {"codec": args.codec, "clip": "BasketballPass 416x240", "frames": args.frames, "threads": 2, "gop": 32, "qualities": {}}
    for q in (1, 3, 6):
        codec = lcodec.load(args.codec, q)
        codec.compress(x[:, :, :2])  # warm-up
        enc, dec = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            data = codec.compress(x, fps=50)
            enc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            codec.decompress(data)
            dec.append(time.perf_counter() - t0)
        result["qualities"][q] = {"encode_fps": args.frames / statistics.median(enc),
                                  "decode_fps": args.frames / statistics.median(dec)}
        print(f"q{q}: encode {result['qualities'][q]['encode_fps']:.2f} frames/s, "
              f"decode {result['qualities'][q]['decode_fps']:.2f} frames/s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
