"""Matched-rate comparisons of a learned codec against a classical codec's quality grid.

For each item (image or clip) the learned codec was measured at one rate; the classical
codec was measured at several settings on the same item. The classical quality at the
learned codec's own rate is interpolated linearly in log-rate between the two nearest
classical points (``numpy.interp`` on ``log(rate)``), and the per-item differences are
averaged. Unlike a BD figure this works from a single learned rate point. The benchmarks
``benchmarks/image_rd.py`` and ``benchmarks/audio_rd.py`` write these figures, and
docs/results.md quotes them.

Rows are ``lcodec.eval.harness.RDRow`` (anything with ``item``, ``codec``, ``quality``,
``rate`` and a ``metrics`` dict works).
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable

import numpy as np

from lcodec.errors import InputError

__all__ = ["image_matched_rate_gain", "audio_matched_rate"]


def _classical_points(rows: list, classical: str, item: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    own = sorted((r.rate, r.metrics[metric]) for r in rows if r.codec == classical and r.item == item)
    return np.log([p[0] for p in own]), np.array([p[1] for p in own], dtype=np.float64)


def image_matched_rate_gain(
    rows: Iterable, learned: str, classical: str, metric: str = "psnr-rgb", quality: object = None
) -> tuple[float | None, int]:
    """Mean over images of ``metric(learned) - metric(classical at the learned rate)``.

    Only images whose learned rate lies inside the classical codec's measured range count
    (no extrapolation); returns ``(mean, number of images used)``, ``(None, 0)`` if none.
    ``quality`` selects one learned rate point when the rows hold several.
    """
    rows = list(rows)
    gains = []
    for r in rows:
        if r.codec != learned or (quality is not None and r.quality != quality):
            continue
        lr, values = _classical_points(rows, classical, r.item, metric)
        if lr.size and lr[0] <= np.log(r.rate) <= lr[-1]:
            gains.append(r.metrics[metric] - float(np.interp(np.log(r.rate), lr, values)))
    return (statistics.fmean(gains) if gains else None), len(gains)


def audio_matched_rate(rows: Iterable, learned: str, quality: object, classical: str) -> dict[str, object]:
    """Mean over clips of ``metric(learned) - metric(classical at the learned clip's rate)``, for
    SI-SDR (dB, positive = learned better) and log-mel distance (positive = learned WORSE).

    Outside the classical grid the nearest end point is used (no extrapolation) and the clip is
    counted: below the lowest classical rate the comparison is against a higher classical rate
    (``clips_vs_higher_classical_rate``, a handicap for the learned codec), above the highest
    against a lower one (``clips_vs_lower_classical_rate``, an advantage)."""
    rows = list(rows)
    diffs: dict[str, list[float]] = {"si-sdr": [], "log-mel": []}
    below = above = 0
    for r in rows:
        if r.codec != learned or r.quality != quality:
            continue
        own = sorted((c for c in rows if c.codec == classical and c.item == r.item), key=lambda c: c.rate)
        if not own:
            continue
        lr, x = np.log([c.rate for c in own]), float(np.log(r.rate))
        below += x < lr[0]
        above += x > lr[-1]
        for metric, values in diffs.items():
            values.append(r.metrics[metric] - float(np.interp(x, lr, [c.metrics[metric] for c in own])))
    if not diffs["si-sdr"]:
        raise InputError(f"no clip has both {learned} at quality {quality} and {classical} rows")
    return {"si_sdr_gain_db": statistics.fmean(diffs["si-sdr"]), "log_mel_diff": statistics.fmean(diffs["log-mel"]),
            "clips": len(diffs["si-sdr"]), "clips_vs_higher_classical_rate": below,
            "clips_vs_lower_classical_rate": above,
            "clips_where_learned_si_sdr_is_higher": sum(d > 0 for d in diffs["si-sdr"])}
