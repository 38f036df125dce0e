"""`codec encode/decode/info` on video: Y4M, MP4 and PNG-folder input; Y4M, FFV1 and PNG-folder
output; --gop, --frames; refusals leave no output behind."""
import shutil
from pathlib import Path

import pytest
import torch

from lcodec.io.video import read_video
from tests.cli.test_cli_first_hour import _error, _info, run
from tests.conftest import FIXTURES

CLIP = FIXTURES / "basketball_96x64_6f.y4m"
PARTIAL = ".lcodec-partial"


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video") / "clip.bin"
    assert run("encode", CLIP, out, "--gop", "4", "--quality", "3") == 0
    return out


def test_encode_defaults_to_walloc_video_mc_and_info_describes_the_frames(stream, capsys):
    info = _info(capsys, stream)
    assert (info["codec"], info["modality"], info["frames"], info["size"]) == ("walloc-video-mc", "video", 6, "96x64")
    assert (info["gop"], info["intra_frames"], info["fps"]) == (4, 2, 50.0)
    assert len(info["bits_per_frame"]) == 6
    assert sum(info["bits_per_frame"]) < 8 * info["total_bytes"]
    assert info["bpp"] == pytest.approx(8 * info["total_bytes"] / (6 * 64 * 96))


def test_decode_to_y4m_mkv_and_png_folder_agree(stream, tmp_path, capsys):
    assert run("decode", stream, tmp_path / "out.y4m") == 0
    assert run("decode", stream, tmp_path / "out.mkv") == 0
    assert run("decode", stream, tmp_path / "frames") == 0
    y4m, fps = read_video(tmp_path / "out.y4m")
    mkv, _ = read_video(tmp_path / "out.mkv")
    png, _ = read_video(tmp_path / "frames")
    assert y4m.shape == mkv.shape == png.shape == (3, 6, 64, 96) and fps == 50
    assert torch.equal(mkv, png)  # both lossless RGB
    assert (y4m - png).abs().mean() < 0.01  # Y4M is 4:2:0
    assert sorted(p.name for p in (tmp_path / "frames").iterdir())[0] == "frame_00000.png"
    clip, _ = read_video(CLIP)
    assert float(10 * torch.log10(1 / ((png - clip) ** 2).mean())) > 24


def test_decode_a_frame_range(stream, tmp_path):
    assert run("decode", stream, tmp_path / "all") == 0
    assert run("decode", stream, tmp_path / "part", "--frames", "3:5") == 0
    whole, _ = read_video(tmp_path / "all")
    part, _ = read_video(tmp_path / "part")
    assert torch.equal(part, whole[:, 3:5])
    assert run("decode", stream, tmp_path / "tail", "--frames", "4:") == 0
    assert read_video(tmp_path / "tail")[0].shape[1] == 2


def test_png_folder_and_mp4_input(tmp_path, capsys):
    assert run("decode", FIXTURES / "basketball_96x64_6f.y4m", tmp_path / "x.png") != 0  # not a stream
    capsys.readouterr()
    frames = tmp_path / "frames"
    frames.mkdir()
    clip, _ = read_video(CLIP)
    from lcodec.io.image import write_image

    for t in range(3):
        (frames / f"{t:03d}.png").write_bytes(write_image("x.png", clip[:, t]))
    assert run("encode", frames, tmp_path / "f.bin", "--gop", "2") == 0
    assert _info(capsys, tmp_path / "f.bin")["frames"] == 3
    assert run("decode", tmp_path / "f.bin", tmp_path / "f.mkv") == 0
    assert run("encode", tmp_path / "f.mkv", tmp_path / "m.bin") == 0
    assert _info(capsys, tmp_path / "m.bin")["frames"] == 3


def test_refusals_leave_nothing_behind(stream, tmp_path, capsys):
    assert "--frames" in _error(capsys, "decode", stream, tmp_path / "o.y4m", "--frames", "5:9")
    assert "holds video" in _error(capsys, "decode", stream, tmp_path / "o.wav")
    assert "--gop" in _error(capsys, "encode", FIXTURES / "coffee_481x321.png", tmp_path / "i.bin", "--gop", "4")
    assert "--gop" in _error(capsys, "encode", CLIP, tmp_path / "v.bin", "--gop", "0")
    damaged = tmp_path / "damaged.bin"
    data = bytearray(stream.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    assert "damaged.bin" in _error(capsys, "decode", damaged, tmp_path / "d.y4m")
    assert "damaged.bin" in _error(capsys, "decode", damaged, tmp_path / "dframes")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no .png frames" in _error(capsys, "encode", empty, tmp_path / "e.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.bin", "empty"]
    assert not any(PARTIAL in p.name for p in tmp_path.rglob("*"))


def test_a_png_folder_output_is_not_clobbered(stream, tmp_path, capsys):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert "already exists" in _error(capsys, "decode", stream, out)
    assert "other than PNG" in _error(capsys, "decode", stream, out, "--force")
    assert (out / "notes.txt").read_text() == "mine"
    shutil.rmtree(out)
    assert run("decode", stream, out) == 0
    assert run("decode", stream, out, "--force", "--frames", "0:2") == 0
    assert len(list(out.iterdir())) == 2


def test_a_failure_in_the_middle_of_a_decode_leaves_nothing_behind(stream, tmp_path, capsys):
    """A stream whose CRC and index are consistent but whose last frame cannot be decoded (its block
    flags moved into the next section): frames 0-4 decode, then the error; no output, no partial."""
    from dataclasses import replace

    import numpy as np

    from lcodec.bitstream.container import read_container, write_container

    c = read_container(stream.read_bytes())
    index = np.frombuffer(c.sections[0], dtype="<u4").copy()
    per = int(index[3])
    row = 4 + 5 * (1 + per)  # frame 5 (predicted): kind, then its section lengths
    index[row + 2] += index[row + 1]
    index[row + 1] = 0
    bad = tmp_path / "late.bin"
    bad.write_bytes(write_container(replace(c, sections=(index.tobytes(), c.sections[1]))))
    work = tmp_path / "out"
    work.mkdir()
    for target in (work / "v.y4m", work / "v.mkv", work / "frames"):
        assert run("decode", bad, target) != 0
        err = capsys.readouterr().err.strip()  # the progress bar, then one error line
        last = err.splitlines()[-1]
        assert last.startswith("codec: error:") and "frame 5" in last and "Traceback" not in err
    assert list(work.iterdir()) == []


def test_walloc_video_mc_through_the_cli(tmp_path, capsys):
    """--codec walloc-video-mc: encode, info, and a PNG-folder decode that is the API's decode of
    the same stream (8-bit frames, so the PNGs hold them exactly)."""
    import lcodec

    out = tmp_path / "mc.bin"
    assert run("encode", CLIP, out, "--codec", "walloc-video-mc", "--gop", "3", "--quality", "2") == 0
    capsys.readouterr()
    info = _info(capsys, out)
    assert (info["codec"], info["frames"], info["gop"], info["intra_frames"]) == ("walloc-video-mc", 6, 3, 2)
    assert run("decode", out, tmp_path / "frames") == 0
    png, _ = read_video(tmp_path / "frames")
    api = lcodec.decompress(out.read_bytes())[0]
    assert torch.equal(png, api)
