"""Audio reading policy for float files beyond full scale (issue 22, defect 3)."""
import numpy as np
import pytest
import soundfile as sf

from lcodec.errors import InputError
from lcodec.io.audio import read_audio, read_audio_info


def _float_wav(path, peak, subtype="FLOAT"):
    x = np.linspace(-0.5, 0.5, 2000).reshape(1000, 2)
    x[10, 0] = peak
    sf.write(path, x, 16000, subtype=subtype)
    return x


def test_full_scale_float_is_read_unchanged(tmp_path):
    x = _float_wav(tmp_path / "a.wav", 1.0)
    y, rate = read_audio(tmp_path / "a.wav")
    assert rate == 16000 and np.allclose(y.numpy().T, x, atol=1e-7)


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_beyond_full_scale_is_refused_with_the_peak_or_normalized_on_request(tmp_path, subtype):
    x = _float_wav(tmp_path / "a.wav", -2.5, subtype)
    with pytest.raises(InputError, match=r"a\.wav: float samples reach 2\.5.*--normalize"):
        read_audio(tmp_path / "a.wav")
    y, _, info = read_audio_info(tmp_path / "a.wav", normalize=True)
    assert info.peak == pytest.approx(2.5) and info.gain == pytest.approx(0.4)
    assert float(y.abs().max()) == pytest.approx(1.0) and np.allclose(y.numpy().T, x / 2.5, atol=1e-6)


def test_non_finite_samples_are_refused(tmp_path):
    x = np.zeros((100, 1))
    x[5] = np.nan
    sf.write(tmp_path / "n.wav", x, 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        read_audio(tmp_path / "n.wav", normalize=True)
