"""nirvana-video: how far one stream's decoded frames differ between thread counts (the weights
are integers from the stream and decode identically; the frames come from a float32 network).

    python benchmarks/nirvana_threads.py [--clip ../shared/data/video/foreman_qcif_176x144_10f.y4m]
        [--frames 6] [--steps 100] [--out docs/results/nirvana_threads.json]

Encodes the clip once (quality 2), then decodes it in fresh processes with OMP_NUM_THREADS = 1, 2
and 2 again, and reports: the sha256 of the decoded integer weights, the largest float difference
of the frames, and how many 8-bit values of the frames as written to Y4M/PNG (round(255 x))
differ.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DECODE = r"""
import hashlib, sys, torch, lcodec
data = open(sys.argv[1], "rb").read()
codec = lcodec.load("nirvana-video", 2)
h = hashlib.sha256()
for _, ints in codec.iter_integers(data):
    for t in ints:
        h.update(t.numpy().astype("<i8").tobytes())
frames = codec.decompress(data)
torch.save(frames, sys.argv[2])
print(h.hexdigest(), torch.get_num_threads())
"""


def main(argv: list[str] | None = None) -> int:
    import torch

    import lcodec
    from lcodec.io.video import read_video

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", type=Path, default=ROOT.parent / "shared" / "data" / "video" / "foreman_qcif_176x144_10f.y4m")
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "nirvana_threads.json")
    args = p.parse_args(argv)
    x, fps = read_video(args.clip)
    x = x[:, : args.frames]
    data = lcodec.load("nirvana-video", 2).compress(x, fps=fps, steps=args.steps)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "s.bin"
        stream.write_bytes(data)
        for k, threads in enumerate(("1", "2", "2")):
            out = Path(tmp) / f"f{k}.pt"
            env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
            res = subprocess.run([sys.executable, "-c", DECODE, str(stream), str(out)], env=env, check=True,
                                 capture_output=True, text=True)
            digest, used = res.stdout.split()
            runs.append((threads, used, digest, torch.load(out)))
    ref = runs[0][3]
    report = {"clip": args.clip.name, "frames": args.frames, "steps": args.steps, "stream_bytes": len(data),
              "runs": []}
    for threads, used, digest, frames in runs:
        diff = (frames - ref).abs()
        u8 = (torch.round(frames * 255) != torch.round(ref * 255)).sum().item()
        report["runs"].append({"omp_threads": int(threads), "torch_threads": int(used), "weights_sha256": digest,
                               "max_abs_diff_vs_1_thread": float(diff.max()), "uint8_values_differing": int(u8),
                               "uint8_values": int(frames.numel())})
    report["weights_identical"] = len({r["weights_sha256"] for r in report["runs"]}) == 1
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
