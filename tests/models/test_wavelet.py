import pytest
import torch

from lcodec.errors import ModelError
from lcodec.models.wavelet import WaveletPacket2d


@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym4", "coif1"])
@pytest.mark.parametrize("levels", [1, 2, 4])
def test_perfect_reconstruction_and_orthogonality(wavelet, levels):
    t = WaveletPacket2d(levels, wavelet).double()
    size = 16 * 2**levels
    x = torch.rand(2, 3, size, size + 2**levels, dtype=torch.float64)
    y = t(x)
    assert y.shape == (2, 3 * 4**levels, size // 2**levels, size // 2**levels + 1)
    torch.testing.assert_close(t.inverse(y), x, rtol=0, atol=1e-10)
    torch.testing.assert_close(y.norm(), x.norm(), rtol=1e-12, atol=0)  # orthogonal: energy kept


def test_haar_low_band_is_the_block_mean():
    t = WaveletPacket2d(2, "haar").double()
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    ll = t(x)[:, 0]  # LL of LL
    block_means = x.reshape(1, 2, 4, 2, 4).mean(dim=(2, 4))
    torch.testing.assert_close(ll, 4 * block_means)


def test_invalid_configurations():
    with pytest.raises(ModelError, match="not orthogonal"):
        WaveletPacket2d(2, "bior4.4")
    with pytest.raises(ModelError, match="unknown wavelet"):
        WaveletPacket2d(2, "nope")
    with pytest.raises(ModelError, match="divisible"):
        WaveletPacket2d(2)(torch.rand(1, 3, 10, 8))


@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym8"])
@pytest.mark.parametrize("levels", [1, 3, 8])
def test_packet_1d_perfect_reconstruction_and_orthogonality(wavelet, levels):
    from lcodec.models.wavelet import WaveletPacket1d

    t = WaveletPacket1d(levels, wavelet).double()
    x = torch.randn(2, 3, 2**levels * 20, dtype=torch.float64)
    y = t(x)
    assert y.shape == (2, 3 * 2**levels, 20)
    assert torch.allclose(t.inverse(y), x, atol=1e-10)
    # orthogonal: energy is preserved, so MSE on coefficients equals MSE on samples
    assert torch.allclose((y**2).sum(), (x**2).sum(), rtol=1e-10)


def test_packet_1d_splits_low_and_high_frequencies():
    from lcodec.models.wavelet import WaveletPacket1d

    t = WaveletPacket1d(1, "sym8").double()
    n = torch.arange(256, dtype=torch.float64)
    y_const = t(torch.ones(1, 1, 256, dtype=torch.float64))[0]
    assert torch.allclose(y_const[0], torch.full((128,), 2**0.5, dtype=torch.float64))
    assert y_const[1].abs().max() < 1e-10
    y_nyq = t(torch.cos(torch.pi * n).view(1, 1, -1))[0]  # alternating signal: all in the high band
    assert y_nyq[0].abs().max() < 1e-10
    assert torch.allclose((y_nyq[1] ** 2).sum(), torch.tensor(256.0, dtype=torch.float64))
