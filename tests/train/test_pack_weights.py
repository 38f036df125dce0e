import io
import json
import zipfile

import torch

from lcodec.api import file_sha256, with_base
from lcodec.train.pack_weights import deflate_archive, repack_folder


def test_deflated_archive_loads_the_same_tensors_and_is_reproducible():
    g = torch.Generator().manual_seed(0)
    obj = {"name": "x", "state_dict": {"w": (torch.randn(64, 64, generator=g) * 0.01).half(),
                                       "z": torch.zeros(1000)}}
    buf = io.BytesIO()
    torch.save(obj, buf)
    packed = deflate_archive(buf.getvalue())
    assert len(packed) < len(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(packed)) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    back = torch.load(io.BytesIO(packed), weights_only=True)
    assert back["name"] == "x" and all(torch.equal(back["state_dict"][k], v) for k, v in obj["state_dict"].items())
    assert deflate_archive(buf.getvalue()) == packed  # no timestamps: same bytes every run


def test_repacking_a_folder_re_pins_overlays_and_the_manifest(tmp_path):
    torch.save({"name": "b", "state_dict": {"a": torch.ones(500), "h": torch.zeros(3)}}, tmp_path / "base.pt")
    torch.save({"name": "o", "base": "base.pt", "base_sha256": file_sha256(tmp_path / "base.pt"), "replaced": "h",
                "state_dict": {"h": torch.full((3,), 2.0)}}, tmp_path / "over.pt")
    (tmp_path / "manifest.json").write_text(json.dumps({"gone.pt": "0" * 64}))
    repack_folder(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == {n: file_sha256(tmp_path / n) for n in ("base.pt", "over.pt")}  # stale entry dropped
    over = with_base(torch.load(tmp_path / "over.pt", weights_only=True), tmp_path / "over.pt")  # pin still valid
    assert torch.equal(over["state_dict"]["a"], torch.ones(500)) and torch.equal(over["state_dict"]["h"], torch.full((3,), 2.0))
    before = manifest
    repack_folder(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text()) == before  # idempotent
