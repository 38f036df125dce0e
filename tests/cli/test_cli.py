"""The `codec` command: round trips, info/list output, and clear one-line errors."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lcodec.cli.main import main
from tests.conftest import FIXTURES

PHOTO = FIXTURES / "coffee_481x321.png"


@pytest.fixture()
def work(tmp_path):
    shutil.copy(PHOTO, tmp_path / "photo.png")
    return tmp_path


def run(*argv: str) -> int:
    return main([str(a) for a in argv])


@pytest.mark.parametrize("size", [(481, 321), (17, 9), (1, 1)])
def test_encode_decode_round_trip(work, capsys, size):
    src = work / "in.png"
    Image.open(PHOTO).crop((0, 0, *size)).save(src)
    assert run("encode", src, work / "x.bin") == 0
    assert "bpp" in capsys.readouterr().out
    assert run("decode", work / "x.bin", work / "out.png") == 0
    out = Image.open(work / "out.png")
    assert out.size == size and out.mode == "RGB"
    diff = np.abs(np.asarray(out, dtype=float) - np.asarray(Image.open(src).convert("RGB"), dtype=float))
    assert diff.mean() < 20


def test_info_reports_header_and_whole_file_rate(work, capsys):
    run("encode", work / "photo.png", work / "p.bin")
    capsys.readouterr()
    assert run("info", work / "p.bin", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    size = (work / "p.bin").stat().st_size
    assert info["codec"] == "walloc-rgb-rd" and info["format_version"] == 1  # the default image codec
    assert info["shape"] == [1, 3, 321, 481] and info["total_bytes"] == size
    assert info["bpp"] == pytest.approx(8 * size / (321 * 481))
    assert info["header_bytes"] + sum(info["section_bytes"]) == size
    assert run("info", work / "p.bin") == 0
    assert "walloc-rgb" in capsys.readouterr().out


def test_list(capsys):
    assert run("list", "--json") == 0
    records = json.loads(capsys.readouterr().out)
    names = {r["name"]: r for r in records}
    assert names["walloc-rgb"]["modality"] == "image" and names["walloc-rgb"]["qualities"]
    assert run("list") == 0
    assert "walloc-rgb" in capsys.readouterr().out


def test_quality_picks_a_rate_of_the_ladder(work, capsys):
    name = "walloc-rgb-rd"
    sizes = {}
    for q in (1, 6):
        assert run("encode", work / "photo.png", work / f"q{q}.bin", "--codec", name, "--quality", q) == 0
        sizes[q] = (work / f"q{q}.bin").stat().st_size
        capsys.readouterr()
        assert run("info", work / f"q{q}.bin", "--json") == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["codec"], info["quality"]) == (name, q)
        assert run("decode", work / f"q{q}.bin", work / f"q{q}.png") == 0
        assert Image.open(work / f"q{q}.png").size == (481, 321)
    assert sizes[1] * 4 < sizes[6]
    err = _error(capsys, "encode", work / "photo.png", work / "q7.bin", "--codec", name, "--quality", 7)
    assert "quality 7 not available" in err and not (work / "q7.bin").exists()


def _error(capsys, *argv) -> str:
    assert run(*argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("codec: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_give_one_clear_line_and_no_output(work, capsys):
    run("encode", work / "photo.png", work / "p.bin")
    good = (work / "p.bin").read_bytes()
    (work / "notes.txt").write_text("hello")
    (work / "fake.png").write_text("not really a png")
    (work / "trunc.bin").write_bytes(good[: len(good) // 2])
    corrupted = bytearray(good)
    corrupted[len(good) // 2] ^= 0x55
    (work / "corrupt.bin").write_bytes(bytes(corrupted))
    capsys.readouterr()
    assert "no such file" in _error(capsys, "encode", work / "missing.png", work / "a.bin")
    assert "not a readable image" in _error(capsys, "encode", work / "fake.png", work / "a.bin")
    assert "unsupported input" in _error(capsys, "encode", work / "notes.txt", work / "a.bin")
    assert "not an lcodec stream" in _error(capsys, "decode", work / "photo.png", work / "a.png")
    assert "truncated" in _error(capsys, "decode", work / "trunc.bin", work / "a.png")
    assert "corrupted" in _error(capsys, "decode", work / "corrupt.bin", work / "a.png")
    assert "unknown codec" in _error(capsys, "encode", work / "photo.png", work / "a.bin", "--codec", "nope")
    assert "already exists" in _error(capsys, "encode", work / "photo.png", work / "p.bin")
    assert "is the input" in _error(capsys, "encode", work / "photo.png", work / "photo.png", "--force")
    assert "unknown image suffix" in _error(capsys, "decode", work / "p.bin", work / "a.xyz")
    assert "does not exist" in _error(capsys, "encode", work / "photo.png", work / "nodir" / "a.bin")
    assert not list(work.glob("a.*")) and not list(work.glob(".*tmp")) and not list(work.glob("*.lcodec-partial"))
    assert (work / "p.bin").read_bytes() == good  # nothing overwritten without --force
    assert "unknown recipe" in _error(capsys, "train", "nope", "--data", work)
    # codecs fitted onto rd's file have no recipe: the error names the module that fits them
    assert "python -m lcodec.train.codebook" in _error(capsys, "train", "walloc-rgb-mcq", "--data", work)
    assert "python -m lcodec.train.context" in _error(capsys, "train", "walloc-rgb-rd-gmm", "--data", work)
    # the name a missing-weights error suggests for walloc-audio-hp leads to its fitting module
    hp = _error(capsys, "train", "walloc-audio-hp-q2", "--data", work)
    assert "python -m lcodec.train.audio_hyperprior 2" in hp and "walloc-audio-q2" in hp
    assert "python -m lcodec.train.video_prior" in _error(capsys, "train", "walloc-video", "--data", work)


def test_force_overwrites(work):
    (work / "p.bin").write_bytes(b"old")
    assert run("encode", work / "photo.png", work / "p.bin", "--force") == 0
    assert (work / "p.bin").read_bytes()[:4] == b"LCDC"


def test_console_script_and_module_entry_points(work):
    exe = shutil.which("codec", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the `codec` console script is not installed"
    r = subprocess.run([exe, "encode", str(work / "photo.png"), str(work / "s.bin")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "lcodec", "decode", str(work / "s.bin"), str(work / "s.bin")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "codec: error:" in r.stderr and "Traceback" not in r.stderr
