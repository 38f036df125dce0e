"""`codec encode/decode` with pc-mnist: one grayscale digit (PNG) and whole datasets (idx, npz,
gzipped) give back every bit; colour, wrong sizes and many-images-to-one-PNG are refused clearly."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from lcodec.cli.main import main
from lcodec.io.dataset import dataset_bytes, read_dataset_uint8
from tests.conftest import FIXTURES

DIGITS = np.load(FIXTURES / "mnist_t10k_0-63.npz")["images"]


def run(*argv) -> int:
    return main([str(a) for a in argv])


def _error(capsys, *argv) -> str:
    assert run(*argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("codec: error:") and "Traceback" not in err
    return err


def test_one_digit_png_round_trip_is_exact(tmp_path, capsys):
    Image.fromarray(DIGITS[7], mode="L").save(tmp_path / "digit.png")
    assert run("encode", tmp_path / "digit.png", tmp_path / "d.bin", "--codec", "pc-mnist") == 0
    assert run("decode", tmp_path / "d.bin", tmp_path / "back.png") == 0
    out = Image.open(tmp_path / "back.png")
    assert out.mode == "L" and np.array_equal(np.asarray(out), DIGITS[7])
    # a gray digit saved as RGB (equal channels) is the same digit
    Image.fromarray(DIGITS[7], mode="L").convert("RGB").save(tmp_path / "rgb.png")
    assert run("encode", tmp_path / "rgb.png", tmp_path / "r.bin", "--codec", "pc-mnist") == 0
    assert (tmp_path / "r.bin").read_bytes() == (tmp_path / "d.bin").read_bytes()


@pytest.mark.parametrize("src, dst", [("set.npz", "back.idx"), ("set-idx3-ubyte.gz", "back.npz"),
                                      ("set.idx", "back.idx.gz")])
def test_dataset_round_trip_is_exact(tmp_path, capsys, src, dst):
    import torch

    x = torch.from_numpy(DIGITS[:24].astype(np.float32) / 255)[:, None]
    (tmp_path / src).write_bytes(dataset_bytes(tmp_path / src, x))
    assert run("encode", tmp_path / src, tmp_path / "set.bin") == 0  # pc-mnist by default for datasets
    assert "24 images" in capsys.readouterr().out
    assert run("decode", tmp_path / "set.bin", tmp_path / dst) == 0
    assert np.array_equal(read_dataset_uint8(tmp_path / dst)[:, 0], DIGITS[:24])
    if dst.endswith(".idx"):  # MNIST's own layout: magic 0x00000803, dims (N, 28, 28)
        raw = (tmp_path / dst).read_bytes()
        assert raw[:4] == b"\0\0\x08\x03" and raw[4:16] == bytes.fromhex("000000180000001c0000001c")


def test_refusals_name_the_problem(tmp_path, capsys):
    rgb = np.stack([DIGITS[0], DIGITS[1], DIGITS[2]], -1)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "colour.png")
    assert "colour" in _error(capsys, "encode", tmp_path / "colour.png", tmp_path / "c.bin", "--codec", "pc-mnist")
    Image.fromarray(np.zeros((32, 32), np.uint8), mode="L").save(tmp_path / "big.png")
    assert "28x28" in _error(capsys, "encode", tmp_path / "big.png", tmp_path / "b.bin", "--codec", "pc-mnist")
    np.savez(tmp_path / "float.npz", images=np.zeros((3, 28, 28), np.float32))
    assert "uint8" in _error(capsys, "encode", tmp_path / "float.npz", tmp_path / "f.bin")
    (tmp_path / "bad.idx.gz").write_bytes(gzip.compress(b"\0\0\x08\x03" + b"\0" * 5))
    assert "bad.idx.gz" in _error(capsys, "encode", tmp_path / "bad.idx.gz", tmp_path / "g.bin")
    for p in ("c.bin", "b.bin", "f.bin", "g.bin"):
        assert not (tmp_path / p).exists()
    # a stream of many digits does not fit one PNG
    np.savez(tmp_path / "two.npz", images=DIGITS[:2])
    assert run("encode", tmp_path / "two.npz", tmp_path / "two.bin") == 0
    assert ".npz" in _error(capsys, "decode", tmp_path / "two.bin", tmp_path / "two.png")
    assert not (tmp_path / "two.png").exists()
