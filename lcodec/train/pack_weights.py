"""Shipped weights files as deflated zips, and the tool that repacks the folder.

``torch.save`` writes its zip archive with every entry stored; ``torch.load`` reads deflated
entries just as well. Deflating the fp16 tensors saves about 8% of ``lcodec/weights`` with not
one value changed (DESIGN.md keeps the folder well under 50 MB).

    python -m lcodec.train.pack_weights [--dir lcodec/weights]

repacks every ``*.pt`` in the folder (bases before the files laid over them, whose pinned
``base_sha256`` is brought up to date) and rewrites ``manifest.json``. Running it twice changes
nothing: the entries carry a fixed timestamp.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from pathlib import Path

import torch

from lcodec.bitstream.container import atomic_write

__all__ = ["deflate_archive", "save_deflated", "repack_folder"]

_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same bytes on every run


def deflate_archive(raw: bytes) -> bytes:
    """A ``torch.save`` archive with its entries deflated (level 9), in the same order and with
    a fixed timestamp, so equal archives give equal bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(entry, zin.read(info.filename), compresslevel=9)
    return out.getvalue()


def save_deflated(obj: object, path: Path) -> None:
    """``torch.save(obj, path)``, deflated, written through a temporary file (never half a file)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, deflate_archive(buf.getvalue()), overwrite=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def repack_folder(folder: Path) -> dict[str, tuple[int, int]]:
    """Deflate every weights file in ``folder``, re-pin overlays to their repacked bases and
    rewrite the manifest. Returns name -> (bytes before, bytes after)."""
    files = sorted(folder.glob("*.pt"))
    states = {p.name: torch.load(p, map_location="cpu", weights_only=False) for p in files}
    unknown = {s["base"] for s in states.values() if isinstance(s, dict) and s.get("base")} - set(states)
    if unknown:
        raise FileNotFoundError(f"overlay bases missing from {folder}: {sorted(unknown)}")
    order = sorted(files, key=lambda p: bool(isinstance(states[p.name], dict) and states[p.name].get("base")))
    sizes = {}
    for path in order:  # bases first: an overlay pins its base's new bytes
        before = path.stat().st_size
        state = states[path.name]
        if isinstance(state, dict) and state.get("base"):
            state["base_sha256"] = _sha(folder / state["base"])
            save_deflated(state, path)
        else:  # the same archive entries, only deflated
            atomic_write(path, deflate_archive(path.read_bytes()), overwrite=True)
        sizes[path.name] = (before, path.stat().st_size)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest = {k: v for k, v in manifest.items() if (folder / k).exists()}
    manifest.update({p.name: _sha(p) for p in files})
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    return sizes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m lcodec.train.pack_weights", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    args = ap.parse_args(argv)
    sizes = repack_folder(args.dir)
    for name, (a, b) in sizes.items():
        print(f"{name:32s} {a / 1e6:8.2f} MB -> {b / 1e6:8.2f} MB")
    total = sum(p.stat().st_size for p in args.dir.iterdir() if p.is_file())
    print(f"folder: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
