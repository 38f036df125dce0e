import math
import warnings

import numpy as np
import pytest

from lcodec.errors import InputError
from lcodec.eval.bdrate import BDWarning, bd_quality, bd_rate

# Hand-worked example. Anchor: rate doubles every 2 dB, so ln r = ln2 * (p - 30) / 2.
# Test: the same curve shifted up by 1 dB, so ln r = ln2 * (p - 31) / 2.
# At equal PSNR the log-rate gap is -ln2/2 everywhere on the overlap [31, 36] dB,
# hence BD-rate = exp(-ln2/2) - 1 = 2^(-1/2) - 1 = -29.289...%, and BD-PSNR = +1 dB.
ANCHOR = ([1, 2, 4, 8], [30, 32, 34, 36])
TEST = ([1, 2, 4, 8], [31, 33, 35, 37])


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_hand_worked_example(method):
    r = bd_rate(*ANCHOR, *TEST, method=method)
    assert r.value == pytest.approx((2**-0.5 - 1) * 100, abs=1e-9)
    assert r.overlap == (31.0, 36.0)
    assert bd_quality(*ANCHOR, *TEST, method=method).value == pytest.approx(1.0, abs=1e-9)


def test_pure_rate_scaling_and_symmetry():
    rates = [0.2, 0.4, 0.7, 1.1, 1.6]
    psnr = [27.0, 29.5, 31.2, 32.9, 34.1]
    r = bd_rate(rates, psnr, [0.9 * x for x in rates], psnr)
    assert r.value == pytest.approx(-10.0, abs=1e-9)
    back = bd_rate([0.9 * x for x in rates], psnr, rates, psnr)
    assert (1 + r.value / 100) * (1 + back.value / 100) == pytest.approx(1.0)
    assert bd_rate(rates, psnr, rates, psnr).value == pytest.approx(0.0, abs=1e-12)


@pytest.mark.filterwarnings("ignore::lcodec.eval.bdrate.BDWarning")
def test_guards():
    with pytest.raises(InputError, match="do not overlap"):
        bd_rate([1, 2], [30, 31], [1, 2], [40, 41])
    with pytest.raises(InputError, match="at least 2"):
        bd_rate([1], [30], [1, 2], [30, 31])
    with pytest.raises(InputError, match="4 points"):
        bd_rate([1, 2, 3], [30, 31, 32], [1, 2, 3], [30.5, 31.5, 32.5], method="cubic")
    with pytest.raises(InputError, match="positive"):
        bd_rate([0, 2], [30, 31], [1, 2], [30, 31])
    with pytest.raises(InputError, match="monotone"):
        bd_rate([1, 2, 3], [30, 30, 31], [1, 2, 3], [30, 31, 32])
    with pytest.warns(BDWarning, match="2-point"):
        assert math.isfinite(bd_rate([1, 2, 4], [30, 31.5, 33], [1.5, 3], [31, 33]).value)


def test_two_point_curves_warn_and_three_or_more_do_not():
    """Issue 22: a BD figure from 2 points is a straight-line figure; say so (BDWarning)."""
    four = ([0.2, 0.5, 1.0, 2.0], [28.0, 31.0, 34.0, 37.5])
    with pytest.warns(BDWarning, match="test: a BD figure from a 2-point curve"):
        bd_rate(*four, [0.3, 1.5], [29.0, 36.0])
    with pytest.warns(BDWarning, match="anchor"):
        bd_quality([0.3, 1.5], [29.0, 36.0], *four)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all from 3 or more points
        bd_rate(*four, [0.3, 0.8, 1.5], [29.0, 33.5, 36.0])
        bd_quality(*four, [0.3, 0.8, 1.5], [29.0, 33.5, 36.0])


# --- an independent pchip written out here (no scipy): Fritsch-Carlson/Fritsch-Butland derivatives
# (weighted harmonic mean inside, the shape-preserving three-point formula at the ends), and the
# integral of each cubic Hermite piece by Simpson's rule, which is exact for cubics.

def _pchip_slopes(x, y):
    h, m = np.diff(x), np.diff(y) / np.diff(x)
    n = x.size
    if n == 2:
        return np.array([m[0], m[0]])
    d = np.zeros(n)
    for k in range(1, n - 1):
        if m[k - 1] * m[k] > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / m[k - 1] + w2 / m[k])

    def end(h0, h1, m0, m1):
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(e) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(e) > 3 * abs(m0):
            return 3 * m0
        return e

    d[0] = end(h[0], h[1], m[0], m[1])
    d[-1] = end(h[-1], h[-2], m[-1], m[-2])
    return d


def _hermite(x, y, d, t):
    k = min(max(int(np.searchsorted(x, t, side="right")) - 1, 0), x.size - 2)
    h = x[k + 1] - x[k]
    s = (t - x[k]) / h
    return ((2 * s**3 - 3 * s**2 + 1) * y[k] + (s**3 - 2 * s**2 + s) * h * d[k]
            + (-2 * s**3 + 3 * s**2) * y[k + 1] + (s**3 - s**2) * h * d[k + 1])


def _pchip_integral(x, y, lo, hi):
    order = np.argsort(x)
    x, y = np.asarray(x, float)[order], np.asarray(y, float)[order]
    d = _pchip_slopes(x, y)
    cuts = np.unique(np.clip(np.concatenate([[lo, hi], x]), lo, hi))
    total = 0.0
    for a, b in zip(cuts[:-1], cuts[1:]):  # each [a, b] lies inside one Hermite piece
        total += (b - a) / 6 * (_hermite(x, y, d, a) + 4 * _hermite(x, y, d, (a + b) / 2) + _hermite(x, y, d, b))
    return total


def reference_bd(anchor, test, *, rate: bool, integral):
    """Bjontegaard's definition written out: mean gap of the interpolants over the overlap."""
    (ra, qa), (rt, qt) = anchor, test
    la, lt = np.log(ra), np.log(rt)
    if rate:  # log-rate as a function of quality
        lo, hi = max(min(qa), min(qt)), min(max(qa), max(qt))
        gap = (integral(qt, lt, lo, hi) - integral(qa, la, lo, hi)) / (hi - lo)
        return (math.exp(gap) - 1) * 100
    lo, hi = max(la.min(), lt.min()), min(la.max(), lt.max())
    return (integral(lt, qt, lo, hi) - integral(la, qa, lo, hi)) / (hi - lo)


def _cubic_integral(x, y, lo, hi):
    p = np.polyint(np.polyfit(np.asarray(x, float), np.asarray(y, float), 3))
    return np.polyval(p, hi) - np.polyval(p, lo)


def _kodak_curves():
    from lcodec.eval.references import load_reference

    return {c.name: c for c in load_reference("compressai-kodak").curves}


def _ms_ssim_db(values):
    return [-10 * math.log10(1 - v) for v in values]


KODAK_PAIRS = [("JPEG", "WebP"), ("JPEG", "bmshj2018-factorized"), ("bmshj2018-factorized", "bmshj2018-hyperprior"),
               ("bmshj2018-hyperprior", "mbt2018-mean"), ("mbt2018-mean", "cheng2020-anchor"),
               ("BPG 8b 444 x265 ycbcr", "VTM"), ("WebP", "cheng2020-anchor")]


@pytest.mark.parametrize("anchor,test", KODAK_PAIRS)
def test_published_compressai_curves_against_a_handwritten_pchip(anchor, test):
    """Real, curved RD data (CompressAI's published Kodak points, 6 to 19 per curve): our pchip BD-rate
    and BD-PSNR, in PSNR and in MS-SSIM dB, equal the figures of the independent pchip above."""
    c = _kodak_curves()
    a, t = c[anchor], c[test]
    for qa, qt in ((a.psnr_rgb, t.psnr_rgb), (_ms_ssim_db(a.ms_ssim_rgb), _ms_ssim_db(t.ms_ssim_rgb))):
        want = reference_bd((a.bpp, qa), (t.bpp, qt), rate=True, integral=_pchip_integral)
        assert bd_rate(a.bpp, qa, t.bpp, qt).value == pytest.approx(want, abs=1e-7)
        want_q = reference_bd((a.bpp, qa), (t.bpp, qt), rate=False, integral=_pchip_integral)
        assert bd_quality(a.bpp, qa, t.bpp, qt).value == pytest.approx(want_q, abs=1e-9)


@pytest.mark.parametrize("anchor,test", KODAK_PAIRS)
@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_published_compressai_curves_against_the_bjontegaard_package(anchor, test, method):
    """The same curves through the ``bjontegaard`` package (FAU Erlangen, test-only dependency)."""
    bj = pytest.importorskip("bjontegaard")
    c = _kodak_curves()
    a, t = c[anchor], c[test]
    args = [np.asarray(v, float) for v in (a.bpp, a.psnr_rgb, t.bpp, t.psnr_rgb)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its overlap warning; ours is checked elsewhere
        want = bj.bd_rate(*args, method=method, require_matching_points=False, min_overlap=0)
        want_q = bj.bd_psnr(*args, method=method, require_matching_points=False, min_overlap=0)
    assert bd_rate(a.bpp, a.psnr_rgb, t.bpp, t.psnr_rgb, method=method).value == pytest.approx(want, abs=1e-7)
    assert bd_quality(a.bpp, a.psnr_rgb, t.bpp, t.psnr_rgb, method=method).value == pytest.approx(want_q, abs=1e-9)


def test_cubic_path_is_exact_on_cubic_curves_and_pchip_is_not_a_straight_line():
    """Curves whose log-rate is an exact cubic in quality (and different cubics for the two codecs):
    the cubic Bjontegaard fit reproduces them, so its BD-rate equals the closed-form mean gap.
    pchip must agree with the handwritten pchip and differ from a piecewise-linear interpolant
    by more than the tolerance (the curves bend, as real RD curves do)."""
    q = np.array([27.0, 29.0, 31.5, 33.0, 35.5, 38.0])
    fa = np.poly1d([0.0009, -0.06, 1.6, -17.5])  # ln(bpp) of the anchor as a cubic in PSNR
    ft = np.poly1d([0.0007, -0.05, 1.4, -16.2])
    qt = q + 0.4
    ra, rt = np.exp(fa(q)), np.exp(ft(qt))
    assert np.all(np.diff(ra) > 0) and np.all(np.diff(rt) > 0)
    lo, hi = qt[0], q[-1]
    gap = ((ft.integ()(hi) - ft.integ()(lo)) - (fa.integ()(hi) - fa.integ()(lo))) / (hi - lo)
    assert bd_rate(ra, q, rt, qt, method="cubic").value == pytest.approx((math.exp(gap) - 1) * 100, abs=1e-8)
    pchip = bd_rate(ra, q, rt, qt, method="pchip").value
    assert pchip == pytest.approx(reference_bd((ra, q), (rt, qt), rate=True, integral=_pchip_integral), abs=1e-9)

    def linear(x, y, lo, hi):
        g = np.linspace(lo, hi, 100_001)
        o = np.argsort(x)
        return float(np.trapz(np.interp(g, np.asarray(x)[o], np.asarray(y)[o]), g))

    assert abs(pchip - reference_bd((ra, q), (rt, qt), rate=True, integral=linear)) > 1e-3


def test_each_input_rule_alone_and_which_curve_it_names():
    """_prepare's rules one at a time, each error naming the curve (anchor or test) and the
    overlap error naming its variable (quality for BD-rate, log-rate for BD-quality)."""
    good = ([0.2, 0.5, 1.0, 2.0], [28.0, 31.0, 34.0, 37.5])
    with pytest.raises(InputError, match="anchor: rate and quality must be 1-D"):
        bd_rate([[0.2, 0.5], [1.0, 2.0]], [[28.0, 31.0], [34.0, 37.5]], *good)  # equal shapes, 2-D
    with pytest.raises(InputError, match="test: rate and quality must be 1-D"):
        bd_rate(*good, [0.2, 0.5, 1.0], [28.0, 31.0])  # 1-D, unequal lengths
    with pytest.raises(InputError, match="test: rates must be positive and all values finite"):
        bd_rate(*good, [0.2, 0.5, 1.0, 2.0], [28.0, float("nan"), 34.0, 37.5])  # finite rates, NaN quality
    with pytest.raises(InputError, match="anchor: rates must be positive"):
        bd_quality([0.2, float("inf"), 1.0, 2.0], good[1], *good)
    # curves that meet in a single value share no interval: refused, naming the variable
    with pytest.raises(InputError, match="do not overlap in quality"):
        bd_rate(*good, [2.0, 3.0, 4.0, 5.0], [37.5, 38.0, 39.0, 40.0])
    with pytest.raises(InputError, match="do not overlap in log-rate"):
        bd_quality(*good, [2.0, 3.0, 4.0, 5.0], [37.0, 38.0, 39.0, 40.0])
    # integer inputs are read as floats (not truncated): the hand-worked example in ints
    assert bd_rate([1, 2, 4, 8], [30, 32, 34, 36], [1, 2, 4, 8], [31, 33, 35, 37]).value == \
        pytest.approx((2**-0.5 - 1) * 100, abs=1e-9)


def test_bd_quality_reports_its_overlap_and_names_the_test_curve_and_the_caller_line():
    good = ([0.2, 0.5, 1.0, 2.0], [28.0, 31.0, 34.0, 37.5])
    r = bd_quality(*good, [0.4, 0.8, 1.6, 3.2], [30.0, 33.0, 36.0, 39.0])
    assert r.overlap == pytest.approx((math.log(0.4), math.log(2.0)))
    with pytest.raises(InputError, match="test: rate and quality"):
        bd_quality(*good, [0.2, 0.5], [28.0])
    with pytest.raises(InputError, match="unknown BD interpolation 'linear'"):
        bd_rate(*good, *good, method="linear")
    # the BDWarning points at the line that called bd_rate (stacklevel), not into lcodec
    with pytest.warns(BDWarning) as caught:
        bd_rate(*good, [0.3, 1.5], [29.0, 36.0])
    import lcodec.eval.bdrate as module

    assert caught[0].filename != module.__file__
    assert caught[0].filename == __file__ or "mutmut" in caught[0].filename  # mutmut adds one frame
