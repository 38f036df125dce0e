"""`codec encode/decode/info` on audio: WAV and FLAC in and out, 16/24-bit and float input."""
import json

import numpy as np
import pytest
import soundfile as sf

from lcodec.cli.main import main
from tests.conftest import FIXTURES

CLIP = FIXTURES / "glock_1s_48k_stereo.flac"


def run(*argv) -> int:
    return main([str(a) for a in argv])


def _write(path, rate, channels, subtype, samples):
    x, _ = sf.read(CLIP, dtype="float64")
    x = np.resize(x[:, :channels], (samples, channels)) if samples > len(x) else x[:samples, :channels]
    sf.write(path, x, rate, subtype=subtype)
    return x


@pytest.mark.parametrize("name,rate,channels,subtype,samples", [
    ("s16.wav", 48000, 2, "PCM_16", 48000),
    ("s24.flac", 44100, 2, "PCM_24", 44101),
    ("mono_float.wav", 16000, 1, "FLOAT", 16001),
    ("one.wav", 48000, 1, "PCM_16", 1),
])
@pytest.mark.parametrize("out_suffix", [".wav", ".flac"])
def test_audio_round_trip_keeps_length_rate_channels(tmp_path, capsys, name, rate, channels, subtype, samples, out_suffix):
    src = tmp_path / name
    _write(src, rate, channels, subtype, samples)
    assert run("encode", src, tmp_path / "a.bin") == 0
    assert "kbit/s" in capsys.readouterr().out
    out = tmp_path / f"out{out_suffix}"
    assert run("decode", tmp_path / "a.bin", out) == 0
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames) == (rate, channels, samples)


def test_info_states_the_model_rate(tmp_path, capsys):
    src = tmp_path / "in.wav"
    _write(src, 44100, 2, "PCM_16", 44100)
    run("encode", src, tmp_path / "a.bin", "--quality", "1")
    capsys.readouterr()
    assert run("info", tmp_path / "a.bin", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    size = (tmp_path / "a.bin").stat().st_size
    assert info["modality"] == "audio" and info["sample_rate"] == 44100 and info["coded_at_hz"] == 48000
    assert info["channels"] == 2 and info["seconds"] == pytest.approx(1.0)
    assert info["kbps"] == pytest.approx(8 * size / 1000)
    assert "44100 Hz -> 48000 Hz" in info["resampled"]


def test_decoding_audio_to_an_image_suffix_is_refused(tmp_path, capsys):
    src = tmp_path / "in.wav"
    _write(src, 48000, 2, "PCM_16", 4800)
    run("encode", src, tmp_path / "a.bin")
    assert run("decode", tmp_path / "a.bin", tmp_path / "out.png") == 1
    assert "holds audio" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_unreadable_and_mismatched_inputs_are_refused(tmp_path, capsys):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    assert run("encode", bad, tmp_path / "a.bin") == 1
    assert "not a readable audio file" in capsys.readouterr().err
    src = tmp_path / "in.wav"
    _write(src, 48000, 2, "PCM_16", 4800)
    assert run("encode", src, tmp_path / "b.bin", "--codec", "walloc-rgb") == 1
    assert "codes image" in capsys.readouterr().err
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "b.bin").exists()
