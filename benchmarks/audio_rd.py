"""Rate-distortion of the shipped walloc-audio weights vs Opus and MP3, measured in one run.

    python benchmarks/audio_rd.py                  # held-out music + speech + misc clips

Clips: the music clips NOT used for training (see ``lcodec.train.recipes.walloc_audio``),
every speech clip and the misc clips of ../shared/data/audio. Rates are whole-file kbit/s
(container header included for walloc, Ogg/MP3 framing for the classical codecs); SNR,
SI-SDR and log-mel distance come from the shared harness. For every walloc rate point and
clip, the classical codec's SI-SDR at walloc's own rate is interpolated (linear in log-rate)
along its bitrate grid; where walloc's rate is below the classical codec's lowest point,
that lowest point (a higher rate) is used and the comparison is flagged. Also times the
encoder on 10 s of 48 kHz stereo. Writes ``docs/results/audio_rd/``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lcodec.eval.adapters import MediaItem, get_eval_codec
from lcodec.eval.harness import aggregate, evaluate, write_report
from lcodec.eval.matched import audio_matched_rate
from lcodec.io.audio import AUDIO_SUFFIXES, read_audio
from lcodec.train.recipes.walloc_audio import TRAIN_CLIPS

CLASSICAL_GRID = {"opus": (12, 16, 24, 32, 48, 64, 96, 128), "mp3": (32, 48, 64, 96, 128, 160)}


def held_out(root: Path) -> dict[str, list[MediaItem]]:
    groups: dict[str, list[MediaItem]] = {}
    for group, folder in (("music", "music_stereo_48k"), ("speech", "speech"), ("misc", "misc")):
        for path in sorted((root / folder).iterdir()):
            if path.suffix.lower() not in AUDIO_SUFFIXES or path.name in TRAIN_CLIPS:
                continue
            x, rate = read_audio(path)
            groups.setdefault(group, []).append(MediaItem(path.name, "audio", x.unsqueeze(0), sample_rate=rate))
    return groups


def encode_seconds(name: str, quality: int, clip: Path, threads: int) -> float:
    import lcodec

    x, rate = read_audio(clip)
    x = x[:, : 10 * rate].unsqueeze(0)
    codec = lcodec.load(name, quality)
    codec.compress(x, rate)  # warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        codec.compress(x, rate)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/audio"))
    ap.add_argument("--out", type=Path, default=Path("docs/results/audio_rd"))
    ap.add_argument("--codec", default="walloc-audio")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    groups = held_out(args.data)
    codecs = [get_eval_codec(args.codec), get_eval_codec("opus"), get_eval_codec("mp3")]
    report: dict[str, object] = {"data": str(args.data), "train_clips": list(TRAIN_CLIPS), "threads": args.threads,
                                 "groups": {}}
    for group, items in groups.items():
        rows = evaluate(codecs, items, qualities=CLASSICAL_GRID)
        curves = aggregate(rows, codecs)
        write_report(rows, curves, args.out / group, anchor="opus", plot=True)
        learned = next(c for c in curves if c.codec == args.codec)
        points = []
        for i, q in enumerate(learned.qualities):
            entry = {"quality": q, "clips": learned.items, "kbps": learned.rate[i],
                     "estimated_kbps": learned.estimated_rate[i], **{k: v[i] for k, v in learned.metrics.items()}}
            for classical in CLASSICAL_GRID:
                entry[f"vs_{classical}"] = audio_matched_rate(rows, args.codec, q, classical)
            points.append(entry)
        report["groups"][group] = {"clips": [i.name for i in items], "points": points}
    clip = args.data / "music_stereo_48k" / "guitar48_stereo.wav"
    from lcodec.registry import get_spec

    report["encode_10s_48k_stereo_s"] = {q: encode_seconds(args.codec, q, clip, args.threads)
                                         for q in get_spec(args.codec).qualities}
    (args.out / "headline.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
