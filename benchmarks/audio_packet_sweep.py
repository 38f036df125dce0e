"""Which wavelet packet should walloc-audio use? A measurement, not a guess.

    python benchmarks/audio_packet_sweep.py

For each packet depth J and orthogonal wavelet, the training clips (mid/side) are
transformed, every coefficient is quantized with a uniform step, and each subband's
symbols are costed at their empirical entropy: the rate-distortion of the plain
transform coder that the learned codec starts from (an idealised rate: the histogram is
fitted to the very clip it codes). Larger J and longer filters give finer frequency
resolution and so more coding gain; the deepest level's band count (2^J) also sets the
model's latent rate (48000 / 2^J positions per second). Writes
``docs/results/audio_packet_sweep.json``.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from lcodec.io.audio import read_audio
from lcodec.models.wavelet import WaveletPacket1d
from lcodec.train.recipes.walloc_audio import TRAIN_CLIPS


def entropy_bits(q: np.ndarray) -> float:
    _, counts = np.unique(q, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/audio/music_stereo_48k"))
    ap.add_argument("--out", type=Path, default=Path("docs/results/audio_packet_sweep.json"))
    args = ap.parse_args()
    clips = []
    for name in TRAIN_CLIPS:
        x, rate = read_audio(args.data / name)
        assert rate == 48000 and x.shape[0] == 2
        clips.append(x.double())
    steps = (0.004, 0.008, 0.016, 0.032, 0.064)
    results = []
    for levels in (4, 6, 7, 8, 9):
        for wavelet in ("haar", "db4", "sym8", "coif3"):
            wpt = WaveletPacket1d(levels, wavelet).double()
            points = []
            for step in steps:
                kbps, snr = [], []
                for x in clips:
                    n = x.shape[1] // wpt.factor * wpt.factor
                    x = x[:, :n]
                    ms = torch.stack([x[0] + x[1], x[0] - x[1]]) * math.sqrt(0.5)
                    c = wpt(ms.unsqueeze(0))[0]  # (2 * 2^J, n / 2^J)
                    q = torch.round(c / step)
                    bits = sum(entropy_bits(band.numpy()) for band in q)
                    err = float(((q * step - c) ** 2).sum())
                    kbps.append(bits / (n / 48000) / 1000)
                    snr.append(10 * math.log10(float((x**2).sum()) / err))
                points.append({"step": step, "kbps": float(np.mean(kbps)), "snr_db": float(np.mean(snr))})
            results.append({"levels": levels, "wavelet": wavelet, "points": points})
            print(levels, wavelet, " ".join(f"{p['kbps']:.0f}kbps/{p['snr_db']:.1f}dB" for p in points), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"clips": list(TRAIN_CLIPS), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
