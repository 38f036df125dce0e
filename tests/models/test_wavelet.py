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
