"""Dataset-scale encoding: every image or audio file under a folder, as lcodec streams packed in
shards, on a local process pool or on Ray; and the dataset that reads the shards back.

    SRC/a/x.png, SRC/b/y.png, ...   (sorted relative paths; the plan depends on nothing else)
        │  items [k*S, (k+1)*S) form shard k (S = ``shard_items``); one task per shard, on any
        │  worker, each worker with one torch thread; the streams are the same whichever runs it
        └─► DST/shards/shard-0000k.bin    the shard's streams, one after the other
            DST/shards/shard-0000k.jsonl  one row per item (failed items too, with their error)
            DST/manifest.jsonl            every row in item order, written when the run completes
            DST/summary.json              counts, bytes, rate, items per second, engine, workers

A shard's ``.bin`` and ``.jsonl`` are written by the driver through temporary names and renamed
in place, ``.bin`` first: a killed run never leaves a row that points at a half-written shard.
Re-running the same command keeps every shard whose rows still match the plan, the files under
SRC (sha256) and the codec's weights, and whose bytes match each row's ``stream_sha256``; only
the others are encoded again.

A row: ``item`` (path relative to SRC, "/"-separated), ``shard``, ``offset``, ``bytes``, ``bpp``
(images) or ``kbps`` (audio), ``source_sha256``, ``stream_sha256``, ``codec``, ``quality``,
``weights_hash``, ``status`` ("ok" or "failed") and, for a failed item, ``error``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.data import Dataset

from lcodec.bitstream.container import atomic_write
from lcodec.errors import InputError, LcodecError

__all__ = ["encode_folder", "EncodedDataset", "media_files", "ENGINES", "RunSummary"]

ENGINES = ("local", "ray")
_SHARDS = "shards"
_MANIFEST = "manifest.jsonl"
_SUMMARY = "summary.json"


def media_files(src: Path, modality: str) -> list[str]:
    """Sorted "/"-separated paths, relative to ``src``, of the files a codec of ``modality`` reads
    (hidden files and folders skipped)."""
    from lcodec.io.audio import AUDIO_SUFFIXES
    from lcodec.io.image import IMAGE_SUFFIXES

    suffixes = {"image": IMAGE_SUFFIXES, "audio": AUDIO_SUFFIXES}.get(modality)
    if suffixes is None:
        raise InputError(f"encode-dataset codes images and audio; a {modality} codec is not supported")
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(root).relative_to(src)
        found += [(rel / f).as_posix() for f in files if not f.startswith(".") and Path(f).suffix.lower() in suffixes]
    return sorted(found)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ the work of one shard (any process)
_LOADED: dict[tuple[str, int], object] = {}


def _codec(name: str, quality: int):
    key = (name, quality)
    if key not in _LOADED:
        import lcodec

        _LOADED[key] = lcodec.load(name, quality)
    return _LOADED[key]


def _encode_one(codec, path: Path) -> tuple[bytes, dict]:
    if codec.modality == "audio":
        from lcodec.io.audio import read_audio_info

        x, rate, _ = read_audio_info(path)
        data = codec.compress(x.unsqueeze(0), rate)
        return data, {"kbps": round(8 * len(data) * rate / x.shape[-1] / 1000, 4)}
    from lcodec.io.image import read_gray_image, read_image_info

    x = read_gray_image(path) if codec.transform.in_channels == 1 else read_image_info(path)[0]
    data = codec.compress(x.unsqueeze(0))
    return data, {"bpp": round(8 * len(data) / (x.shape[-2] * x.shape[-1]), 6)}


def encode_shard(src: str, items: list[str], shard: int, name: str, quality: int) -> tuple[bytes, list[dict]]:
    """Encode ``items`` (paths relative to ``src``) into one shard: (its bytes, its rows). A file
    that cannot be read or coded becomes a failed row; it never stops the shard. Runs torch with
    one thread (a worker of a pool or of Ray)."""
    torch.set_num_threads(1)
    codec = _codec(name, quality)
    common = {"codec": codec.name, "quality": codec.quality, "weights_hash": codec.weights_hash.hex()}
    out = bytearray()
    rows = []
    for item in items:
        path = Path(src) / item
        row: dict = {"item": item, "shard": shard}
        try:
            raw = path.read_bytes()
            row["source_sha256"] = _sha(raw)
            data, rate = _encode_one(codec, path)
        except (LcodecError, OSError, ValueError, RuntimeError) as exc:  # unreadable, corrupt or unsupported
            rows.append({**row, "offset": None, "bytes": 0, **common, "status": "failed",
                         "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append({**row, "offset": len(out), "bytes": len(data), **rate, "stream_sha256": _sha(data),
                     **common, "status": "ok"})
        out += data
    return bytes(out), rows


# ------------------------------------------------------------------ engines: (shard, items) -> results
def _run_local(tasks, src, name, quality, workers) -> Iterator[tuple[int, bytes, list[dict]]]:
    if workers == 1:
        threads = torch.get_num_threads()
        try:
            for k, items in tasks:
                yield (k, *encode_shard(src, items, k, name, quality))
        finally:
            torch.set_num_threads(threads)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # fork where the platform has it: workers start with torch and lcodec imported (spawned ones took
    # ~3 s each to import them, a fifth of a 48-photo run); each sets one torch thread before any work
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=torch.set_num_threads,
                             initargs=(1,)) as pool:
        futures = {pool.submit(encode_shard, src, items, k, name, quality): k for k, items in tasks}
        try:
            for f in as_completed(futures):
                yield (futures[f], *f.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _run_ray(tasks, src, name, quality, workers, address) -> Iterator[tuple[int, bytes, list[dict]]]:
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install -e \".[ray]\" (or pip install 'lcodec[ray]')") from None
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(encode_shard)
        pending = {}
        queue = list(tasks)
        while queue or pending:
            while queue and len(pending) < 2 * workers:  # bounded: finished shards are written as they come
                k, items = queue.pop(0)
                pending[remote.remote(src, items, k, name, quality)] = k
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield (pending.pop(ref), *ray.get(ref))
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------ the driver
@dataclass
class RunSummary:
    items: int
    ok: int
    failed: int
    shards: int
    encoded_shards: int  # by this run (the rest were kept from an earlier run)
    encoded_items: int  # by this run
    bytes: int
    seconds: float
    engine: str
    workers: int

    @property
    def items_per_second(self) -> float:
        """Items this run encoded per second of its wall time (workers' start-up included)."""
        return self.encoded_items / self.seconds if self.seconds > 0 else 0.0


def _atomic(path: Path, data: bytes) -> None:
    atomic_write(path, data, overwrite=True)


def _earlier_run(dst: Path) -> dict | None:
    """codec, quality and weights hash of the run whose shards are in ``dst`` (from any shard's
    first row), or None."""
    for rows_path in sorted((dst / _SHARDS).glob("shard-*.jsonl")) if (dst / _SHARDS).is_dir() else []:
        try:
            return json.loads(rows_path.read_text().splitlines()[0])
        except (ValueError, IndexError):
            continue
    return None


def _kept_shard(dst: Path, src: Path, k: int, items: list[str], common: dict) -> list[dict] | None:
    """The rows of shard ``k`` from an earlier run if they still hold: the planned items, the same
    codec and weights, unchanged sources, and bytes that match every stream hash; else None."""
    rows_path, bin_path = dst / _SHARDS / f"shard-{k:05d}.jsonl", dst / _SHARDS / f"shard-{k:05d}.bin"
    if not (rows_path.is_file() and bin_path.is_file()):
        return None
    try:
        rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line]
    except ValueError:
        return None
    if [r.get("item") for r in rows] != items or any(r.get(key) != v for r in rows for key, v in common.items()):
        return None
    data = bin_path.read_bytes()
    for r in rows:
        if r["status"] == "failed":
            continue  # a failed item is tried again only if its file changed
        if r["offset"] + r["bytes"] > len(data) or _sha(data[r["offset"]:r["offset"] + r["bytes"]]) != r["stream_sha256"]:
            return None
    for r in rows:
        try:
            source = _sha((src / r["item"]).read_bytes())
        except OSError:
            source = None
        if source != r.get("source_sha256"):
            return None
    return rows


def encode_folder(src: str | Path, dst: str | Path, codec: str, quality: int | None = None, *, workers: int = 1,
                  engine: str = "local", address: str | None = None, shard_items: int = 64,
                  force: bool = False, progress: bool = True) -> RunSummary:
    """Encode every image or audio file under ``src`` (as the codec's modality reads) into shards
    under ``dst`` (see the module doc). Resumes a run of the same codec, quality and weights
    already in ``dst``; a run of another codec there is replaced only with ``force``. Returns the
    run's summary."""
    import lcodec
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise InputError(f"{src}: no such folder (encode-dataset reads a folder of images or audio files)")
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers must be an integer >= 1, got {workers!r}")
    if shard_items < 1:
        raise InputError(f"--shard-items must be >= 1, got {shard_items}")
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise InputError(f"{dst} is inside {src}; write the shards somewhere else")
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst} is a file; encode-dataset writes a folder")
    if dst.is_dir() and any(dst.iterdir()) and not (dst / _SHARDS).is_dir():
        raise InputError(f"{dst} holds other files; choose a new or empty folder (or an earlier run's, to resume)")
    loaded = lcodec.load(codec, quality)
    items = media_files(src, loaded.modality)
    if not items:
        raise InputError(f"{src} holds no {loaded.modality} files for {loaded.name}")
    common = {"codec": loaded.name, "quality": loaded.quality, "weights_hash": loaded.weights_hash.hex()}
    earlier = _earlier_run(dst)
    if earlier and any(earlier.get(k) != v for k, v in common.items()) and not force:
        raise InputError(f"{dst} holds a run of {earlier.get('codec')} q{earlier.get('quality')} "
                         f"(weights {str(earlier.get('weights_hash'))[:12]}); use another folder, or --force to replace it")
    plan = [(k, items[i:i + shard_items]) for k, i in enumerate(range(0, len(items), shard_items))]
    (dst / _SHARDS).mkdir(parents=True, exist_ok=True)
    (dst / _MANIFEST).unlink(missing_ok=True)  # listed again only when every shard is in place
    for stale in [*(dst / _SHARDS).glob(".*.tmp"), *(dst / _SHARDS).glob(".*.partial")]:  # a killed write's
        stale.unlink()
    for old in (dst / _SHARDS).glob("shard-*"):
        if int(old.name[6:11]) >= len(plan):  # shards of a larger earlier plan
            old.unlink()
    rows: dict[int, list[dict]] = {}
    for k, chunk in plan:
        kept = _kept_shard(dst, src, k, chunk, common)
        if kept is not None:
            rows[k] = kept
    todo = [(k, chunk) for k, chunk in plan if k not in rows]
    t0 = time.perf_counter()
    bar = tqdm(total=len(items), initial=sum(len(r) for r in rows.values()), unit="item", disable=not progress,
               desc=f"{loaded.name} q{loaded.quality} ({engine}, {workers} worker{'s' * (workers > 1)})")
    run = (_run_ray(todo, str(src), loaded.name, loaded.quality, workers, address) if engine == "ray"
           else _run_local(todo, str(src), loaded.name, loaded.quality, workers))
    try:
        for k, data, shard_rows in run:
            _atomic(dst / _SHARDS / f"shard-{k:05d}.bin", data)  # the bytes before the rows that point at them
            _atomic(dst / _SHARDS / f"shard-{k:05d}.jsonl", "".join(json.dumps(r) + "\n" for r in shard_rows).encode())
            rows[k] = shard_rows
            bar.update(len(shard_rows))
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    ordered = [r for k, _ in plan for r in rows[k]]
    _atomic(dst / _MANIFEST, "".join(json.dumps(r) + "\n" for r in ordered).encode())
    ok = [r for r in ordered if r["status"] == "ok"]
    summary = RunSummary(items=len(ordered), ok=len(ok), failed=len(ordered) - len(ok), shards=len(plan),
                         encoded_shards=len(todo), encoded_items=sum(len(c) for _, c in todo),
                         bytes=sum(r["bytes"] for r in ok), seconds=round(seconds, 3), engine=engine, workers=workers)
    record = {**common, **summary.__dict__, "items_per_second": round(summary.items_per_second, 3),
              "shard_items": shard_items, "source": str(src)}
    if loaded.modality == "image" and ok:
        record["mean_bpp"] = round(sum(r["bpp"] for r in ok) / len(ok), 6)
    _atomic(dst / _SUMMARY, (json.dumps(record, indent=2) + "\n").encode())
    return summary


# ------------------------------------------------------------------ reading it back
class EncodedDataset(Dataset):
    """The items ``encode_folder`` coded (status "ok"), read from the shards: ``self[i]`` is item
    i's latents (C, h, w) float32, decoded from its stream without running the synthesis
    (standardised with the codec's shipped statistics if ``normalize``), or ``(latents,
    target(item path))`` when ``target`` is given, e.g. ``lambda p: classes.index(p.split("/")[0])``
    for a folder per class. ``items`` lists the paths; ``stream(i)`` is the stored stream."""

    def __init__(self, dst: str | Path, target: Callable[[str], object] | None = None, *, normalize: bool = False):
        import lcodec
        from lcodec.data.latents import latent_stats

        self.root = Path(dst)
        manifest = self.root / _MANIFEST
        if not manifest.is_file():
            raise InputError(f"{self.root} has no {_MANIFEST}: not an encode-dataset output, or a run that did "
                             "not finish (run the same command again to complete it)")
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line]
        self.failed = [r for r in rows if r["status"] != "ok"]
        self.rows = [r for r in rows if r["status"] == "ok"]
        self.items = [r["item"] for r in self.rows]
        if not self.rows:
            raise InputError(f"{self.root}: no item was encoded ({len(self.failed)} failed)")
        first = self.rows[0]
        self.codec = lcodec.load(first["codec"], first["quality"])
        if self.codec.weights_hash.hex() != first["weights_hash"]:
            raise InputError(f"{self.root} was encoded with other {first['codec']} weights "
                             f"({first['weights_hash'][:12]}, installed {self.codec.weights_hash.hex()[:12]})")
        self.target = target
        self._stats = latent_stats(self.codec) if normalize else None

    def __len__(self) -> int:
        return len(self.rows)

    def stream(self, index: int) -> bytes:
        r = self.rows[index]
        with open(self.root / _SHARDS / f"shard-{r['shard']:05d}.bin", "rb") as f:
            f.seek(r["offset"])
            data = f.read(r["bytes"])
        if len(data) != r["bytes"]:
            raise InputError(f"{self.root}: shard {r['shard']} is shorter than its manifest says (item {r['item']})")
        return data

    def latents(self, index: int) -> torch.Tensor:
        z, _ = self.codec.decompress_latents(self.stream(index))
        z = z[0].to(torch.float32)
        if self._stats is not None:
            mean, scale = self._stats
            z = (z - mean.view(-1, *[1] * (z.dim() - 1))) / scale.view(-1, *[1] * (z.dim() - 1))
        return z

    def __getitem__(self, index: int):
        z = self.latents(index)
        return z if self.target is None else (z, self.target(self.items[index]))
