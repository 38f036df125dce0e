import math

import pytest

from lcodec.errors import InputError
from lcodec.eval.bdrate import bd_quality, bd_rate

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
    assert math.isfinite(bd_rate([1, 2, 4], [30, 31.5, 33], [1.5, 3], [31, 33]).value)
