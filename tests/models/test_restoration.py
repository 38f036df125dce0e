"""The per-image restoration filter (lcodec.models.restoration) against its module docstring:
integer arithmetic checked against an int64 reference written here, the section format, the
least-squares fit, and the encoder's keep-or-drop rule."""
import numpy as np
import pytest
import torch

from lcodec.errors import BitstreamError
from lcodec.models import restoration as R


def _reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """int64: a = round(x * 2**14) half up; per output channel o, acc = sum over input channels and
    3x3 taps (row-major, replicate borders) of w * a, plus w[bias] * 2**14; out = a_o +
    floor((acc + 2**11) / 2**12), clamped to [0, 2**14]; returned as out / 2**14."""
    a = np.floor(x.astype(np.float64) * 2**14 + 0.5).astype(np.int64)
    c, h, wd = a.shape
    pad = np.pad(a, ((0, 0), (1, 1), (1, 1)), mode="edge")
    out = np.empty_like(a)
    for o in range(c):
        acc = np.full((h, wd), int(w[o, -1]) * 2**14, dtype=np.int64)
        k = 0
        for ch in range(c):
            for dy in range(3):
                for dx in range(3):
                    acc += int(w[o, k]) * pad[ch, dy : dy + h, dx : dx + wd]
                    k += 1
        out[o] = np.clip(a[o] + np.floor_divide(acc + 2**11, 2**12), 0, 2**14)
    return out / 2**14


@pytest.mark.parametrize("channels", [1, 3])
def test_apply_matches_the_integer_reference(channels):
    gen = torch.Generator().manual_seed(channels)
    x = torch.randint(0, 2**14 + 1, (channels, 7, 9), generator=gen).float() / 2**14
    x[:, 0, 0] = 0.3 + 2**-16  # not a multiple of 2**-14: rounded half up on the way in
    w = torch.randint(-(2**15) + 1, 2**15, (channels, R.taps(channels)), generator=gen)
    w[0, :] = 2**15 - 1  # the extremes
    got = R.apply(x, w)
    assert got.dtype == torch.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got.double().numpy(), _reference(x.numpy(), w.numpy()))


def test_zero_weights_are_the_identity_on_the_pixel_grid():
    x = torch.rand(3, 5, 6)
    got = R.apply(x, torch.zeros(3, 28, dtype=torch.int64))
    assert torch.equal(got, (torch.floor(x.double() * 2**14 + 0.5) / 2**14).float())


def test_fit_recovers_a_known_filter():
    """x = a known 3x3 cross-channel filter of x_hat (weights multiples of 2**-12): the fit finds
    those integers, and applying them reproduces x on the pixel grid."""
    gen = torch.Generator().manual_seed(5)
    x_hat = (torch.randint(0, 2**14 + 1, (3, 40, 50), generator=gen).double() / 2**14 * 0.4 + 0.3).float()
    w = torch.randint(-40, 41, (3, 28), generator=gen)  # |correction| < 28 * 40 / 2**12 * 0.7 < 0.2: no clamping
    x = R.apply(x_hat, w)  # exactly what those weights give, so the fit must recover them (up to rounding)
    got = R.fit(x_hat, x)
    assert int((got - w).abs().max()) <= 2
    err = (R.apply(x_hat, got).double() - x.double()).abs().max()
    assert float(err) <= 3 * 2**-14


def test_pack_unpack_round_trip_and_sizes():
    gen = torch.Generator().manual_seed(7)
    w3 = torch.randint(-(2**15) + 1, 2**15, (3, 28), generator=gen)
    w3[0, :4] = torch.tensor([0, -1, 2**15 - 1, -(2**15) + 1])
    w1 = torch.randint(-50, 51, (1, 10), generator=gen)
    data = R.pack([w3, None, w3])
    back = R.unpack(data, 3, 3)
    assert back[1] is None and torch.equal(back[0], w3) and torch.equal(back[2], w3)
    assert R.pack([None]) == b"\x00"
    # zigzag varints: |v| <= 63 takes one byte
    assert len(R.pack([w1])) == 1 + 10
    assert torch.equal(R.unpack(R.pack([w1]), 1, 1)[0], w1)


@pytest.mark.parametrize("data, why", [
    (b"", "ends before"),
    (b"\x02", "neither 0 nor 1"),
    (b"\x01" + b"\x00" * 9, "cut off"),
    (b"\x00\x00", "after the last"),
    (b"\x01\xff", "cut off or too long"),  # a continuation byte, then nothing
    (b"\x01" + b"\xff\xff\xff\xff\x01" + b"\x00" * 9, "beyond"),
])
def test_unpack_refuses_damaged_sections(data, why):
    with pytest.raises(BitstreamError, match=why):
        R.unpack(data, 1, 1)


def test_unpack_weight_limit_is_inclusive():
    ok = b"\x01" + bytes([0xFE, 0xFF, 0x03]) + b"\x00" * 9  # zigzag 65534: +32767
    assert int(R.unpack(ok, 1, 1)[0][0, 0]) == 2**15 - 1
    low = b"\x01" + bytes([0xFD, 0xFF, 0x03]) + b"\x00" * 9  # zigzag 65533: -32767
    assert int(R.unpack(low, 1, 1)[0][0, 0]) == -(2**15) + 1
    over = b"\x01" + bytes([0x80, 0x80, 0x04]) + b"\x00" * 9  # zigzag 65536: +32768
    with pytest.raises(BitstreamError, match="beyond"):
        R.unpack(over, 1, 1)


def test_choose_keeps_a_filter_only_when_it_pays():
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(1, 3, 32, 32, generator=gen)
    x_hat = (x * 0.9 + 0.05).clamp(0, 1)  # a contrast loss the filter can undo
    keep = R.choose(x_hat, x, lmbda=1.0, gray=False)[0]
    assert keep is not None
    sse = lambda a: float(((a.double() - x[0].double()) ** 2).sum())  # noqa: E731
    assert sse(R.apply(x_hat[0], keep)) < 0.1 * sse(x_hat[0])
    # the same gain is not worth its bits at a tiny lambda
    assert R.choose(x_hat, x, lmbda=1e-9, gray=False) == [None]
    # gray: one channel, 10 weights
    g = R.choose(x_hat[:, :1].expand(-1, 3, -1, -1), x[:, :1].expand(-1, 3, -1, -1), lmbda=1.0, gray=True)[0]
    assert g is not None and g.shape == (1, 10)


def test_restore_batch_filters_each_image_and_keeps_gray_gray():
    gen = torch.Generator().manual_seed(13)
    x = torch.rand(2, 3, 8, 8, generator=gen)
    w = torch.randint(-500, 500, (3, 28), generator=gen)
    out = R.restore_batch(x, [None, w], gray=False)
    assert torch.equal(out[0], x[0]) and torch.equal(out[1], R.apply(x[1], w))
    g = x[:, :1].expand(-1, 3, -1, -1).contiguous()
    w1 = torch.randint(-500, 500, (1, 10), generator=gen)
    out = R.restore_batch(g, [w1, None], gray=True)
    assert torch.equal(out[0, 0], out[0, 2]) and torch.equal(out[0, :1], R.apply(g[0, :1], w1))


def test_bands_do_not_change_the_result(monkeypatch):
    gen = torch.Generator().manual_seed(17)
    x = torch.rand(3, 11, 6, generator=gen)
    x_hat = (x + 0.05 * torch.randn(3, 11, 6, generator=gen)).clamp(0, 1)
    w = torch.randint(-900, 900, (3, 28), generator=gen)
    whole_apply, whole_fit = R.apply(x_hat, w), R.fit(x_hat, x)
    monkeypatch.setattr(R, "BAND_ROWS", 4)  # bands of 4, 4 and 3 rows
    assert torch.equal(R.apply(x_hat, w), whole_apply)
    np.testing.assert_array_equal(R.apply(x_hat, w).double().numpy(), _reference(x_hat.numpy(), w.numpy()))
    assert int((R.fit(x_hat, x) - whole_fit).abs().max()) <= 1  # the same sums, in another order
