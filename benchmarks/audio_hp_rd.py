"""walloc-audio-hp (hyperprior) against walloc-audio (factorized prior): same transform, measured
in one run on the clips neither was fitted on.

    python benchmarks/audio_hp_rd.py               # held-out music, speech and misc clips

Both codecs at q1-q3 on every clip of ../shared/data/audio that is not a training clip
(``lcodec.train.recipes.walloc_audio.TRAIN_CLIPS``; the hyperprior was fitted on those four
music clips, augmented). Rates are whole-file kbit/s (container and side information
included). Per group: the harness report (rows, curves, RD plot, BD-rate of SI-SDR against
walloc-audio on the mean curves), plus BD-rate of log-mel distance (lower is better, so the
curve is taken as rate vs -log-mel) and the per-clip BD-rates (SI-SDR) with their mean.
Writes ``docs/results/audio_hp_rd/``.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from lcodec.eval.adapters import get_eval_codec
from lcodec.eval.bdrate import bd_rate
from lcodec.eval.harness import aggregate, evaluate, write_report

ANCHOR, TEST = "walloc-audio", "walloc-audio-hp"


def _bd(rows, item: str | None, metric: str, sign: float) -> float:
    """BD-rate (%) of TEST against ANCHOR on one clip (or on per-quality means if ``item`` is None)."""
    def curve(codec):
        points: dict[int, list[tuple[float, float]]] = {}
        for r in rows:
            if r.codec == codec and (item is None or r.item == item):
                points.setdefault(r.quality, []).append((r.rate, sign * r.metrics[metric]))
        return ([statistics.fmean(p[0] for p in v) for _, v in sorted(points.items())],
                [statistics.fmean(p[1] for p in v) for _, v in sorted(points.items())])
    (ra, qa), (rt, qt) = curve(ANCHOR), curve(TEST)
    return bd_rate(ra, qa, rt, qt).value


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from audio_rd import held_out

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/audio"))
    ap.add_argument("--out", type=Path, default=Path("docs/results/audio_hp_rd"))
    ap.add_argument("--groups", nargs="*", default=["music", "speech", "misc"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    codecs = [get_eval_codec(ANCHOR), get_eval_codec(TEST)]
    report: dict[str, object] = {"data": str(args.data), "anchor": ANCHOR, "test": TEST, "groups": {}}
    for group, items in held_out(args.data).items():
        if group not in args.groups:
            continue
        rows = evaluate(codecs, items, qualities={ANCHOR: (1, 2, 3), TEST: (1, 2, 3)})
        curves = aggregate(rows, codecs)
        write_report(rows, curves, args.out / group, anchor=ANCHOR, plot=True)
        by = {c.codec: c for c in curves}
        per_clip = {i.name: _bd(rows, i.name, "si-sdr", 1.0) for i in items}
        report["groups"][group] = {
            "clips": [i.name for i in items],
            "bd_rate_si_sdr_pct": _bd(rows, None, "si-sdr", 1.0),
            "bd_rate_log_mel_pct": _bd(rows, None, "log-mel", -1.0),
            "bd_rate_si_sdr_per_clip_pct": per_clip,
            "bd_rate_si_sdr_mean_of_clips_pct": statistics.fmean(per_clip.values()),
            "points": {c: [{"quality": q, "kbps": by[c].rate[i], "si-sdr": by[c].metrics["si-sdr"][i],
                            "log-mel": by[c].metrics["log-mel"][i]} for i, q in enumerate(by[c].qualities)]
                       for c in (ANCHOR, TEST)},
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "headline.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
