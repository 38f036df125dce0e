"""What a new user meets in the first hour (issue 22): the default codec, where and how files are
written, and one clear line (naming the file and what to do) instead of a traceback."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lcodec.cli.main import build_parser, main
from tests.conftest import FIXTURES

PHOTO = FIXTURES / "coffee_481x321.png"
CLIP = FIXTURES / "glock_1s_48k_stereo.flac"
PARTIAL = ".lcodec-partial"


@pytest.fixture()
def work(tmp_path):
    shutil.copy(PHOTO, tmp_path / "photo.png")
    return tmp_path


def run(*argv) -> int:
    return main([str(a) for a in argv])


def _error(capsys, *argv) -> str:
    assert run(*argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("codec: error:") and "\n" not in err and "Traceback" not in err
    return err


def _info(capsys, path: Path) -> dict:
    capsys.readouterr()
    assert run("info", path, "--json") == 0
    return json.loads(capsys.readouterr().out)


# ----------------------------------------------------------------------------- item 1: the default
def test_default_image_codec_is_the_best_one_at_about_two_thirds_of_a_bit(work, capsys):
    assert run("encode", work / "photo.png", work / "p.bin") == 0
    info = _info(capsys, work / "p.bin")
    assert (info["codec"], info["quality"]) == ("walloc-rgb-rd", 4)
    assert 0.45 < info["bpp"] < 0.9


def test_default_audio_codec_is_still_walloc_audio(tmp_path, capsys):
    x, rate = sf.read(CLIP, dtype="float64")
    sf.write(tmp_path / "in.wav", x[:4800], rate, subtype="PCM_16")
    assert run("encode", tmp_path / "in.wav", tmp_path / "a.bin") == 0
    assert _info(capsys, tmp_path / "a.bin")["codec"] == "walloc-audio"


def test_encode_help_states_the_default_and_the_speed_and_size_choices(capsys):
    with pytest.raises(SystemExit):
        run("encode", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "walloc-rgb-rd" in text and "quality 4" in text and "walloc-audio" in text
    assert "walloc-rgb-light" in text and "--refine" in text
    assert PARTIAL in text  # where the file is written until it is complete


def _subcommand_parsers():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.choices and isinstance(a.choices, dict)]
    return sub.choices


def test_every_flag_a_help_text_names_exists(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no line wrapping inside a flag's name
    for name, parser in _subcommand_parsers().items():
        options = {opt for action in parser._actions for opt in action.option_strings}
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", parser.format_help()))
        assert named <= options, f"codec {name} --help names {sorted(named - options)}"


# ----------------------------------------------------------- defect 1: destination checked first
@pytest.fixture()
def encoder_spy(monkeypatch):
    """Records every codec load by the encode and decode commands (the start of the real work)."""
    import lcodec.cli.decode
    import lcodec.cli.encode

    calls = []
    for module in (lcodec.cli.encode, lcodec.cli.decode):
        real = module.load

        def spy(*args, _real=real, **kwargs):
            calls.append(args)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, "load", spy)
    return calls


def _unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes anywhere mode bits allow nothing; sysfs refuses even root
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("running as root without /sys to stand for an unwritable folder")
        return Path("/sys/kernel")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("case", ["missing", "not-a-folder", "unwritable"])
def test_a_bad_destination_is_refused_in_one_line_before_any_encoding(work, capsys, encoder_spy, case):
    (work / "file").write_text("x")
    folder = {"missing": work / "nodir", "not-a-folder": work / "file", "unwritable": None}[case]
    folder = folder or _unwritable_folder(work)
    err = _error(capsys, "encode", work / "photo.png", folder / "out.bin")
    assert str(folder) in err and encoder_spy == []
    assert not (folder / "out.bin").exists()
    run("encode", work / "photo.png", work / "p.bin", "--codec", "walloc-rgb", "--quality", "3")
    encoder_spy.clear()
    err = _error(capsys, "decode", work / "p.bin", folder / "out.png")
    assert str(folder) in err and encoder_spy == []


# --------------------------------------------------------------------- defect 2: the umask is kept
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_follow_the_umask(work, mask):
    old = os.umask(mask)
    try:
        assert run("encode", work / "photo.png", work / "p.bin", "--codec", "walloc-rgb", "--quality", "3") == 0
        assert run("decode", work / "p.bin", work / "p.png") == 0
    finally:
        os.umask(old)
    for name in ("p.bin", "p.png"):
        assert (work / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_force_keeps_the_mode_of_the_file_it_replaces(work):
    (work / "p.bin").write_bytes(b"old")
    (work / "p.bin").chmod(0o640)
    assert run("encode", work / "photo.png", work / "p.bin", "--force", "--codec", "walloc-rgb", "--quality", "3") == 0
    assert (work / "p.bin").stat().st_mode & 0o777 == 0o640


# ------------------------------------------------- defect 4: a recognisable partial file, cleaned
_KILLED_WRITE = """
import os, signal, sys
os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # die after writing, before the rename
from lcodec.cli.main import main
main(sys.argv[1:])
"""


def test_a_killed_write_leaves_a_named_partial_file_that_the_next_write_removes(work):
    out = work / "p.bin"
    argv = ["encode", str(work / "photo.png"), str(out), "--codec", "walloc-rgb", "--quality", "3"]
    r = subprocess.run([sys.executable, "-c", _KILLED_WRITE, *argv], capture_output=True)
    assert r.returncode == -signal.SIGKILL
    assert sorted(p.name for p in work.iterdir()) == ["p.bin" + PARTIAL, "photo.png"]  # nothing hidden
    assert run(*argv) == 0
    assert sorted(p.name for p in work.iterdir()) == ["p.bin", "photo.png"]


def test_a_failed_encode_leaves_nothing_behind(work, capsys, monkeypatch):
    import lcodec.cli.encode

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lcodec.cli.encode, "load", boom)
    _error(capsys, "encode", work / "photo.png", work / "p.bin")
    assert sorted(p.name for p in work.iterdir()) == ["photo.png"]


# -------------------------------------------------- defect 5: the media kind from the header first
def _audio_stream(tmp_path: Path) -> Path:
    x, rate = sf.read(CLIP, dtype="float64")
    sf.write(tmp_path / "in.wav", x[:4800], rate, subtype="PCM_16")
    assert run("encode", tmp_path / "in.wav", tmp_path / "a.bin") == 0
    return tmp_path / "a.bin"


def test_the_media_kind_is_checked_from_the_header_before_decoding(work, capsys, encoder_spy):
    assert run("encode", work / "photo.png", work / "p.bin", "--codec", "walloc-rgb", "--quality", "3") == 0
    stream = _audio_stream(work)
    encoder_spy.clear()
    err = _error(capsys, "decode", work / "p.bin", work / "out.wav")
    assert "p.bin" in err and "holds an image" in err and ".png" in err
    err = _error(capsys, "decode", stream, work / "out.png")
    assert "a.bin" in err and "holds audio" in err and ".wav" in err
    err = _error(capsys, "decode", work / "p.bin", work / "out.xyz")
    assert "unknown image suffix" in err
    assert encoder_spy == [] and not list(work.glob("out.*"))


# --------------------------------------------------------- defect 6: messages name file and remedy
def test_an_eight_channel_wav_is_refused_in_plain_words(tmp_path, capsys):
    sf.write(tmp_path / "surround.wav", np.zeros((4800, 8)), 48000, subtype="PCM_16")
    err = _error(capsys, "encode", tmp_path / "surround.wav", tmp_path / "a.bin")
    assert "surround.wav" in err and "8 channels" in err and "mono or stereo" in err
    assert "(B," not in err and not (tmp_path / "a.bin").exists()


def test_stream_errors_name_the_file(work, capsys):
    (work / "junk.bin").write_bytes(b"not a stream at all")
    run("encode", work / "photo.png", work / "p.bin", "--codec", "walloc-rgb", "--quality", "3")
    (work / "trunc.bin").write_bytes((work / "p.bin").read_bytes()[:40])
    for cmd in ("decode", "info"):
        for name, words in (("junk.bin", "not an lcodec stream"), ("trunc.bin", "truncated")):
            argv = [cmd, work / name] + ([work / "o.png"] if cmd == "decode" else [])
            err = _error(capsys, *argv)
            assert str(work / name) in err and words in err


# ------------------------------------------------------------ defect 3: float WAV beyond +-1
@pytest.mark.parametrize("peak", [1.7, 1e30])
def test_a_float_wav_beyond_full_scale_is_refused_naming_the_peak(tmp_path, capsys, peak):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (4800, 2))
    x[100, 1] = -peak
    sf.write(tmp_path / "hot.wav", x, 48000, subtype="FLOAT")
    err = _error(capsys, "encode", tmp_path / "hot.wav", tmp_path / "a.bin")
    assert "hot.wav" in err and f"{peak:g}" in err and "--normalize" in err
    assert not (tmp_path / "a.bin").exists()


def test_normalize_scales_a_hot_float_wav_to_full_scale(tmp_path, capsys):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (4800, 2))
    x[100, 1] = -3.0
    sf.write(tmp_path / "hot.wav", x, 48000, subtype="FLOAT")
    assert run("encode", tmp_path / "hot.wav", tmp_path / "a.bin", "--normalize") == 0
    assert "normalized" in capsys.readouterr().out
    assert run("decode", tmp_path / "a.bin", tmp_path / "out.wav", "--force") == 0
    y, _ = sf.read(tmp_path / "out.wav")
    assert np.abs(y).max() <= 1.0 and np.abs(y[:, 0]).max() > 0.1  # scaled by 1/3, not clipped to nothing


# ------------------------------------------------------------------- defect 7: codec list output
def test_list_json_into_a_closed_pipe_ends_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -1` that has already exited
    try:
        r = subprocess.run([sys.executable, "-m", "lcodec", "list", "--json"], stdout=write_end,
                           stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr and r.stderr.strip() == ""
    assert r.returncode != 0  # like any tool killed by SIGPIPE: the output did not all arrive


def test_list_json_through_head_ends_without_a_traceback():
    if shutil.which("head") is None:
        pytest.skip("no head")
    r = subprocess.run(f"'{sys.executable}' -m lcodec list --json | head -1", shell=True, capture_output=True,
                       text=True)
    assert r.stdout == "[\n" and "Traceback" not in r.stderr


def test_list_table_columns_align_on_every_row(capsys):
    assert run("list") == 0
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?<=  )\S", header)]
    assert len(starts) >= 3
    for line in lines[1:]:
        for s in starts:
            assert line[s - 2:s] == "  " and line[s] != " ", f"misaligned at column {s}: {line!r}"

