"""codec encode-dataset / decode-dataset (lcodec.data.sharded): a folder as sharded streams.

The contract (module doc): items are the sorted media files under SRC; every stream is exactly
what ``codec.compress`` writes for that file; engines and worker counts give the same bytes; a
killed run resumes to the same output with every item once; bad files are recorded, not fatal.
"""
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

import lcodec
from lcodec.cli.main import main as cli
from lcodec.data import sharded
from lcodec.data.sharded import EncodedDataset, encode_folder
from lcodec.errors import InputError
from lcodec.io.image import read_image
from tests.conftest import FIXTURES

CODEC = "walloc-rgb"


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """6 photos in nested class folders (PNG and JPEG, two sizes), a corrupt PNG and a text file."""
    root = tmp_path_factory.mktemp("src")
    photo = np.asarray(Image.open(FIXTURES / "coffee_481x321.png").convert("RGB"))
    crops = {"cat/a.png": (0, 0, 48, 64), "cat/b.png": (50, 40, 48, 64), "dog/c.png": (100, 100, 40, 72),
             "dog/sub/d.jpg": (200, 10, 48, 64), "dog/e.png": (10, 300, 32, 32), "z.png": (150, 150, 48, 48)}
    for rel, (y, x, h, w) in crops.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo[y:y + h, x:x + w]).save(root / rel)
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (root / "notes.txt").write_text("not an image")
    return root


def _rows(dst):
    return [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]


def _output(dst):
    return {p.relative_to(dst).as_posix(): p.read_bytes() for p in sorted(dst.rglob("*"))
            if p.is_file() and p.name != "summary.json"}


@pytest.fixture(scope="module")
def reference(src, tmp_path_factory):
    dst = tmp_path_factory.mktemp("ref") / "out"
    encode_folder(src, dst, CODEC, workers=1, shard_items=2, progress=False)
    return dst


def test_every_item_is_the_stream_codec_compress_writes_and_bad_files_are_recorded(src, reference):
    rows = _rows(reference)
    assert [r["item"] for r in rows] == ["cat/a.png", "cat/b.png", "dog/broken.png", "dog/c.png", "dog/e.png",
                                         "dog/sub/d.jpg", "z.png"]
    codec = lcodec.load(CODEC)
    for r in rows:
        assert r["codec"] == CODEC and r["quality"] == codec.quality and r["weights_hash"] == codec.weights_hash.hex()
        assert r["source_sha256"] == hashlib.sha256((src / r["item"]).read_bytes()).hexdigest()
        if r["item"] == "dog/broken.png":
            assert r["status"] == "failed" and "broken.png" in r["error"] and r["bytes"] == 0
            continue
        shard = (reference / "shards" / f"shard-{r['shard']:05d}.bin").read_bytes()
        stream = shard[r["offset"]:r["offset"] + r["bytes"]]
        x = read_image(src / r["item"])
        assert stream == codec.compress(x.unsqueeze(0))  # the same bytes as `codec encode` writes
        assert r["stream_sha256"] == hashlib.sha256(stream).hexdigest()
        assert r["bpp"] == pytest.approx(8 * len(stream) / (x.shape[1] * x.shape[2]), abs=1e-6)
    assert [r["shard"] for r in rows] == [0, 0, 1, 1, 2, 2, 3]  # shard_items=2, in item order
    summary = json.loads((reference / "summary.json").read_text())
    assert (summary["items"], summary["ok"], summary["failed"], summary["shards"]) == (7, 6, 1, 4)


def test_a_pool_of_two_workers_writes_the_same_bytes(src, reference, tmp_path):
    dst = tmp_path / "pool"
    s = encode_folder(src, dst, CODEC, workers=2, shard_items=2, progress=False)
    assert s.workers == 2 and s.encoded_shards == 4
    assert _output(dst) == _output(reference)


def test_a_killed_run_resumes_with_every_item_once(src, reference, tmp_path, monkeypatch):
    dst = tmp_path / "killed"
    real = sharded.encode_shard
    calls = []

    def dies_at_the_third_shard(src_, items, shard, *args):
        calls.append(shard)
        if len(calls) == 3:
            (dst / "shards" / f".shard-{shard:05d}.bin.partial").write_bytes(b"half a shard")  # mid-write
            raise KeyboardInterrupt
        return real(src_, items, shard, *args)

    monkeypatch.setattr(sharded, "encode_shard", dies_at_the_third_shard)
    with pytest.raises(KeyboardInterrupt):
        encode_folder(src, dst, CODEC, workers=1, shard_items=2, progress=False)
    assert not (dst / "manifest.jsonl").exists()  # an unfinished run lists nothing
    assert sorted(p.name for p in (dst / "shards").glob("shard-*")) == [
        "shard-00000.bin", "shard-00000.jsonl", "shard-00001.bin", "shard-00001.jsonl"]
    calls.clear()
    s = encode_folder(src, dst, CODEC, workers=1, shard_items=2, progress=False)
    assert calls == [2, 3] and s.encoded_shards == 2  # the finished shards were verified and kept
    assert _output(dst) == _output(reference)  # every item once, the partial file gone


def test_resume_re_encodes_a_damaged_shard_and_a_changed_source(src, reference, tmp_path, monkeypatch):
    import shutil

    dst = tmp_path / "resumed"
    shutil.copytree(reference, dst)
    shard0 = dst / "shards" / "shard-00000.bin"
    data = bytearray(shard0.read_bytes())
    data[-1] ^= 1
    shard0.write_bytes(bytes(data))
    copy = tmp_path / "src"
    shutil.copytree(src, copy)
    calls = []
    real = sharded.encode_shard
    monkeypatch.setattr(sharded, "encode_shard", lambda s_, items, k, *a: calls.append(k) or real(s_, items, k, *a))
    encode_folder(copy, dst, CODEC, shard_items=2, progress=False)
    assert calls == [0]
    assert _output(dst) == _output(reference)
    img = Image.open(copy / "z.png")
    img.rotate(90).save(copy / "z.png")  # shard 3's only item changes

    def killed(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(sharded, "encode_shard", killed)
    with pytest.raises(KeyboardInterrupt):
        encode_folder(copy, dst, CODEC, shard_items=2, progress=False)
    assert not (dst / "manifest.jsonl").exists()  # the old manifest no longer describes the shards
    monkeypatch.setattr(sharded, "encode_shard", lambda s_, items, k, *a: calls.append(k) or real(s_, items, k, *a))
    calls.clear()
    encode_folder(copy, dst, CODEC, shard_items=2, progress=False)
    assert calls == [3]


def test_bad_arguments_are_refused_before_any_work(src, reference, tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        encode_folder(tmp_path / "nope", tmp_path / "o", CODEC)
    with pytest.raises(InputError, match="inside"):
        encode_folder(src, src / "out", CODEC)
    with pytest.raises(InputError, match="workers"):
        encode_folder(src, tmp_path / "o", CODEC, workers=0)
    with pytest.raises(InputError, match="holds a run of walloc-rgb q3.*--force"):
        encode_folder(src, reference, "walloc-rgb-light", 1, shard_items=2)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(InputError, match="holds other files"):
        encode_folder(src, tmp_path / "mine", CODEC)
    with pytest.raises(InputError, match="no image files"):
        encode_folder(tmp_path / "mine", tmp_path / "o2", CODEC)


def test_the_dataset_reads_latents_from_the_shards(src, reference):
    ds = EncodedDataset(reference, target=lambda p: p.split("/")[0])
    assert len(ds) == 6 and [r["item"] for r in ds.failed] == ["dog/broken.png"]
    codec = lcodec.load(CODEC)
    for i, item in enumerate(ds.items):
        z, label = ds[i]
        y = codec.decompress_latents(codec.compress(read_image(src / item).unsqueeze(0)))[0][0]
        assert label == item.split("/")[0] and z.dtype == torch.float32 and torch.equal(z, y.float())


def test_decode_dataset_writes_the_decoded_files_in_the_same_tree(src, reference, tmp_path, capsys):
    out = tmp_path / "decoded"
    assert cli(["decode-dataset", str(reference), str(out), "--quiet"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["cat/a.png", "cat/b.png", "dog/c.png", "dog/e.png", "dog/sub/d.png", "z.png"]
    codec = lcodec.load(CODEC)
    x_hat = codec.decompress(codec.compress(read_image(src / "dog/sub/d.jpg").unsqueeze(0)))[0]
    assert torch.equal(read_image(out / "dog/sub/d.png"), torch.round(x_hat.clamp(0, 1) * 255) / 255)
    assert cli(["decode-dataset", str(reference), str(out), "--quiet"]) == 1  # never overwrites
    assert "exists" in capsys.readouterr().err


def test_encode_dataset_command(src, tmp_path, capsys):
    assert cli(["encode-dataset", str(src), str(tmp_path / "o"), "--codec", CODEC, "--shard-items", "3",
                "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "6 items encoded, 1 failed" in out and "3 shards" in out
    assert cli(["encode-dataset", str(src), str(tmp_path / "o2"), "--address", "auto"]) == 1
    assert "--engine ray" in capsys.readouterr().err


def test_ray_and_the_pool_write_the_same_bytes(src, reference, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    dst = tmp_path / "ray"
    s = encode_folder(src, dst, CODEC, workers=2, engine="ray", shard_items=2, progress=False)
    assert s.engine == "ray" and s.ok == 6
    assert _output(dst) == _output(reference)
