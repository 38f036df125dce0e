"""Bjontegaard delta rate and delta quality between two rate-distortion curves.

G. Bjontegaard, "Calculation of average PSNR differences between RD-curves",
VCEG-M33 (2001). Log-rate is interpolated as a function of quality (and quality
as a function of log-rate for the delta-quality figure) over the interval where
both curves overlap, and the mean gap is integrated there. Two interpolants:
``"pchip"`` (piecewise cubic Hermite, monotone; the variant recommended in later
JVET/VCEG common test conditions) and ``"cubic"`` (the original third-order
polynomial fit, needs 4 points). pchip runs from 2 points, but on a 2-point curve
it is a straight line in log-rate, so such a figure says little: it is computed
with a ``BDWarning``. Use 4 or more points per curve for figures worth reporting.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lcodec.errors import InputError

__all__ = ["bd_rate", "bd_quality", "BDResult", "BDWarning"]


class BDWarning(UserWarning):
    """A BD figure was computed from too few points to be trusted (a curve with 2 points)."""


@dataclass(frozen=True)
class BDResult:
    value: float  # percent for bd_rate (negative = test saves rate), quality units for bd_quality
    overlap: tuple[float, float]  # interval of the integration variable both curves cover


def _prepare(rate, quality, label: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise InputError(f"{label}: rate and quality must be 1-D and of equal length")
    if r.size < 2:
        raise InputError(f"{label}: BD figures need at least 2 rate points, got {r.size}")
    if not (np.isfinite(r).all() and np.isfinite(q).all()) or (r <= 0).any():
        raise InputError(f"{label}: rates must be positive and all values finite")
    if r.size == 2:
        warnings.warn(f"{label}: a BD figure from a 2-point curve treats it as a straight line in log-rate; "
                      "use 4 or more rate points per curve", BDWarning, stacklevel=3)
    order = np.argsort(r)
    return np.log(r[order]), q[order]


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise InputError("a curve is not strictly monotone in the integration variable; BD figures are undefined")
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(x, y).integrate(lo, hi))
    if method == "cubic":
        if x.size < 4:
            raise InputError("the cubic Bjontegaard fit needs at least 4 points per curve (use method='pchip')")
        poly = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    raise InputError(f"unknown BD interpolation {method!r} (use 'pchip' or 'cubic')")


def _overlap(a: np.ndarray, b: np.ndarray, what: str) -> tuple[float, float]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if hi <= lo:
        raise InputError(
            f"the curves do not overlap in {what} (anchor {a.min():.3g}..{a.max():.3g}, "
            f"test {b.min():.3g}..{b.max():.3g}); BD figures need a shared range"
        )
    return float(lo), float(hi)


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip") -> BDResult:
    """Average rate difference (percent) of test vs anchor at equal quality."""
    la, qa = _prepare(anchor_rate, anchor_quality, "anchor")
    lt, qt = _prepare(test_rate, test_quality, "test")
    lo, hi = _overlap(qa, qt, "quality")
    mean_gap = (_integral(qt, lt, lo, hi, method) - _integral(qa, la, lo, hi, method)) / (hi - lo)
    return BDResult(float((np.exp(mean_gap) - 1.0) * 100.0), (lo, hi))


def bd_quality(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip") -> BDResult:
    """Average quality difference (e.g. dB of PSNR) of test vs anchor at equal rate."""
    la, qa = _prepare(anchor_rate, anchor_quality, "anchor")
    lt, qt = _prepare(test_rate, test_quality, "test")
    lo, hi = _overlap(la, lt, "log-rate")
    return BDResult((_integral(lt, qt, lo, hi, method) - _integral(la, qa, lo, hi, method)) / (hi - lo), (lo, hi))
