"""Image metrics on known inputs; MS-SSIM cross-checked against an independent implementation."""
import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate

from lcodec.eval.metrics import ms_ssim, psnr, psnr_y
from lcodec.io.image import read_image
from tests.conftest import FIXTURES


def test_psnr_known_values():
    x = torch.full((2, 3, 8, 8), 100 / 255)
    y = x.clone()
    y[0] += 5 / 255  # every sample off by 5 levels: MSE = 25 -> 10 log10(255^2 / 25)
    y[1, 0] += 10 / 255  # one channel off by 10 levels: MSE = 100 / 3
    expected = [10 * math.log10(255**2 / 25), 10 * math.log10(255**2 / (100 / 3))]
    torch.testing.assert_close(psnr(x, y), torch.tensor(expected), atol=1e-4, rtol=0)


def test_psnr_y_only_sees_luma():
    x = torch.rand(1, 3, 16, 16)
    gray_shift = (x + 4 / 255).clamp(0, 1)
    assert float(psnr_y(x, gray_shift)) < float(psnr_y(x, x)) - 50
    assert float(psnr_y(x, x)) > 100


def _reference_ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang, Simoncelli & Bovik 2003, written from the paper: 11-tap Gaussian (sigma 1.5), valid
    filtering, K1 = 0.01, K2 = 0.03, L = 255, 5 scales with 2x2 average pooling, weights below."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    g /= g.sum()
    win = np.outer(g, g)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(img):
        return correlate(img, win, mode="valid")

    def pool(img):  # 2x2 mean, zero-padding odd sizes (as the common implementations do)
        h, w = img.shape
        img = np.pad(img, ((0, h % 2), (0, w % 2)))
        return img.reshape(img.shape[0] // 2, 2, img.shape[1] // 2, 2).mean(axis=(1, 3))

    channels = []
    for c in range(a.shape[0]):
        x, y = a[c].astype(np.float64), b[c].astype(np.float64)
        value = 1.0
        for s, w in enumerate(weights):
            mx, my = filt(x), filt(y)
            sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
            cs = (2 * sxy + c2) / (sxx + syy + c2)
            if s < len(weights) - 1:
                value *= max(cs.mean(), 0.0) ** w
                x, y = pool(x), pool(y)
            else:
                ssim = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
                value *= max(ssim.mean(), 0.0) ** w
        channels.append(value)
    return float(np.mean(channels))


def test_ms_ssim_matches_an_independent_implementation():
    x = read_image(FIXTURES / "coffee_481x321.png")[:, :200, :240].unsqueeze(0)
    rng = np.random.default_rng(0)
    y = (x + torch.from_numpy(rng.normal(0, 0.03, x.shape)).float()).clamp(0, 1)
    ours = float(ms_ssim(x, y)[0])
    ref = _reference_ms_ssim((torch.round(x[0] * 255)).numpy(), (torch.round(y[0] * 255)).numpy())
    assert 0.8 < ours < 0.999
    assert ours == pytest.approx(ref, abs=2e-4)
    assert float(ms_ssim(x, x)[0]) == pytest.approx(1.0, abs=1e-6)
