"""Throughput of `codec encode-dataset`: items per second with 1 and 2 workers, on the local
process pool and on Ray, over the same folder; checks that every run wrote the same bytes.

    python benchmarks/encode_dataset.py [--items 48] [--codec walloc-rgb-rd] [--out docs/results/encode_dataset]

The folder is the first N files of shared/data/images/train (BSDS500 photos, 481x321, about the
size of an average ImageNet photo), linked into a temporary folder. Each run starts its workers
cold (spawned processes or Ray workers import torch and load the codec), and that start-up is
part of its wall time, as it is for a user.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from lcodec.data.sharded import encode_folder

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "images" / "train")
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--codec", default="walloc-rgb-rd")
    ap.add_argument("--shard-items", type=int, default=4)
    ap.add_argument("--runs", default="local:1,local:2,ray:1,ray:2", help="engine:workers, comma-separated")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "encode_dataset")
    args = ap.parse_args(argv)
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[: args.items]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for f in files:
            (src / f.name).symlink_to(f.resolve())
        manifests = {}
        for run in args.runs.split(","):
            engine, workers = run.split(":")
            dst = Path(tmp) / f"{engine}-{workers}"
            t0 = time.perf_counter()
            s = encode_folder(src, dst, args.codec, workers=int(workers), engine=engine,
                              shard_items=args.shard_items, progress=False)
            wall = time.perf_counter() - t0
            manifests[run] = (dst / "manifest.jsonl").read_bytes()
            shards = b"".join(p.read_bytes() for p in sorted((dst / "shards").glob("*.bin")))
            row = {"engine": engine, "workers": int(workers), "items": s.items, "ok": s.ok, "seconds": round(wall, 2),
                   "items_per_second": round(s.items / wall, 3), "shards_bytes": len(shards)}
            results.append(row)
            print(json.dumps(row), flush=True)
    same = len(set(manifests.values())) == 1
    base = {r["engine"]: r for r in results if r["workers"] == 1}
    for r in results:
        r["speedup_vs_1_worker"] = round(r["items_per_second"] / base[r["engine"]]["items_per_second"], 3) \
            if r["engine"] in base else None
    report = {"codec": args.codec, "items": len(files), "data": str(args.data.name), "shard_items": args.shard_items,
              "identical_manifests": same, "runs": results, "cpu": platform.processor() or platform.machine(),
              "cores": torch.get_num_threads(), "torch": torch.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# encode-dataset throughput: {args.codec}, {len(files)} BSDS500 photos (481x321)", "",
             f"Every run wrote the same manifest and shards: **{same}**.", "",
             "| engine | workers | seconds | items/s | speed-up vs 1 worker |", "|---|---|---|---|---|"]
    lines += [f"| {r['engine']} | {r['workers']} | {r['seconds']} | {r['items_per_second']} | {r['speedup_vs_1_worker']} |"
              for r in results]
    (args.out / "README.md").write_text("\n".join(lines) + "\n\nReproduce: `python benchmarks/encode_dataset.py`\n")
    print(f"identical manifests: {same}; written {args.out}")


if __name__ == "__main__":
    main()
