"""The rate-distortion harness: every codec through one interface, every metric in one run.

    rows = evaluate([get_eval_codec("walloc-rgb"), get_eval_codec("webp")], load_items(folder))
    curves = aggregate(rows)
    write_report(rows, curves, out_dir, anchor="webp", plot=True)

With ``log=PATH`` every point is appended to a JSON-lines file as soon as it is measured, and
points already in that file are not measured again: a stopped run resumes where it stopped.
Timings: ``warmup`` untimed encode+decode runs per codec and quality first, then each point is
timed ``repeat`` times and the median is reported.

Rate always comes from the WHOLE stored file (container header included); the
model's own estimate is recorded beside it when the codec has one. Curves are
per-quality means over items (as CompressAI reports them).
"""
from __future__ import annotations

import fnmatch
import json
import math
import platform
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import torch

from lcodec.errors import InputError
from lcodec.eval.adapters import EvalCodec, MediaItem, check_modality

__all__ = ["RDRow", "Curve", "evaluate", "aggregate", "load_items", "write_report", "read_log", "count_measured",
           "METRICS", "RATE_KEY"]

RATE_KEY = {"image": "bpp", "video": "bpp", "audio": "kbps"}
PRIMARY = {"image": "psnr-rgb", "video": "psnr-yuv", "audio": "si-sdr"}


def _image_metrics() -> dict[str, Callable[[MediaItem, torch.Tensor], float | None]]:
    from lcodec.eval import metrics as m

    def msssim(item: MediaItem, y: torch.Tensor) -> float | None:
        return float(m.ms_ssim(item.x, y)[0]) if min(item.x.shape[-2:]) > 160 else None

    return {
        "psnr-rgb": lambda item, y: float(m.psnr(item.x, y)[0]),
        "psnr-y": lambda item, y: float(m.psnr_y(item.x, y)[0]),
        "ms-ssim-rgb": msssim,
    }


def _audio_metrics() -> dict[str, Callable[[MediaItem, torch.Tensor], float | None]]:
    from lcodec.eval import metrics as m

    return {
        "snr": lambda item, y: float(m.snr(item.x, y)[0]),
        "si-sdr": lambda item, y: float(m.si_sdr(item.x, y)[0]),
        "log-mel": lambda item, y: float(m.log_mel_distance(item.x, y, item.sample_rate)[0]),
    }


def _video_metrics() -> dict[str, Callable[[MediaItem, torch.Tensor], float | None]]:
    from lcodec.eval import metrics as m

    def frames(v: torch.Tensor) -> torch.Tensor:  # (1, 3, T, H, W) -> (T, 3, H, W)
        return v[0].transpose(0, 1)

    def msssim(item: MediaItem, y: torch.Tensor) -> float | None:
        if min(item.x.shape[-2:]) < 161:
            return None
        return float(torch.cat([m.ms_ssim(a, b) for a, b in zip(frames(item.x).split(8), frames(y).split(8))]).mean())

    return {
        "psnr-yuv": lambda item, y: float(m.psnr_yuv(item.x, y)[0]),  # (6 Y + U + V) / 8, mean over frames
        "psnr-rgb": lambda item, y: float(m.psnr(frames(item.x), frames(y)).mean()),  # mean over frames
        "ms-ssim-rgb": msssim,  # mean over frames
    }


METRICS: dict[str, Callable[[], dict[str, Callable[[MediaItem, torch.Tensor], float | None]]]] = {
    "image": _image_metrics,
    "audio": _audio_metrics,
    "video": _video_metrics,
}


@dataclass(frozen=True)
class RDRow:
    item: str
    codec: str
    quality: object
    bytes: int
    rate: float  # bpp (image, video) or kbps (audio) of the whole file
    estimated_bits: float | None  # the model's own estimate of its payload, when it has one
    estimated_rate: float | None
    metrics: dict[str, float | None]
    encode_s: float  # median over timing_repeats runs, after the warm-up
    decode_s: float
    device: str
    versions: dict[str, str]
    timing_repeats: int = 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Curve:
    codec: str
    description: str
    modality: str
    qualities: tuple
    rate: tuple[float, ...]
    estimated_rate: tuple[float | None, ...]
    metrics: dict[str, tuple[float | None, ...]]
    encode_s: tuple[float, ...]
    decode_s: tuple[float, ...]
    items: int
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _versions() -> dict[str, str]:
    import lcodec

    return {"lcodec": lcodec.__version__, "torch": torch.__version__, "python": platform.python_version()}


def _rate(item: MediaItem, nbytes: float) -> float:
    if item.modality == "audio":
        if not item.seconds:
            raise InputError(f"{item.name}: audio item without a sample rate")
        return 8.0 * nbytes / item.seconds / 1000.0
    return 8.0 * nbytes / item.pixels


def estimated_bits(codec: EvalCodec, item: MediaItem, quality) -> float | None:
    """The codec's own payload estimate in bits, or None for codecs without one (classical ones)."""
    estimate = getattr(codec, "estimate_bits", None)
    return None if estimate is None else estimate(item, quality)


def _point(codec: str, quality, item: str) -> tuple[str, str, str]:
    """The identity of one measured point (quality as JSON, so 3 and 3.0 stay distinct as written)."""
    return codec, json.dumps(quality), item


def read_log(path: str | Path) -> dict[tuple[str, str, str], RDRow]:
    """The rows a run has appended to ``path`` so far (a torn last line from a killed run is skipped)."""
    path = Path(path)
    known = {f.name for f in fields(RDRow)}
    rows: dict[tuple[str, str, str], RDRow] = {}
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
            row = RDRow(**{k: v for k, v in d.items() if k in known})
        except (json.JSONDecodeError, TypeError, AttributeError):
            continue
        rows[_point(row.codec, row.quality, row.item)] = row
    return rows


def _grid(codecs: list[EvalCodec], qualities: dict[str, tuple] | None) -> dict[str, tuple]:
    return {c.name: tuple((qualities or {}).get(c.name, c.qualities)) for c in codecs}


def count_measured(log: str | Path, codecs: list[EvalCodec], items: list[MediaItem],
                   qualities: dict[str, tuple] | None = None) -> tuple[int, int]:
    """(points of this run already in ``log``, points in this run)."""
    done = read_log(log)
    grid = _grid(codecs, qualities)
    points = [_point(c.name, q, i.name) for c in codecs for q in grid[c.name] for i in items]
    return sum(p in done for p in points), len(points)


def evaluate(
    codecs: list[EvalCodec],
    items: list[MediaItem],
    qualities: dict[str, tuple] | None = None,
    progress: bool = True,
    *,
    warmup: int = 1,
    repeat: int = 1,
    log: str | Path | None = None,
) -> list[RDRow]:
    """Encode and decode every item with every codec at each quality; one row per point.

    ``warmup``: untimed encode+decode runs of the first item per codec and quality before timing.
    ``repeat``: timed runs per point; the row reports the median (the bytes and metrics are the first run's).
    ``log``: a JSON-lines file each row is appended to as measured; rows already in it are reused.
    """
    from tqdm import tqdm

    if not items:
        raise InputError("no items to evaluate")
    if warmup < 0 or repeat < 1:
        raise InputError(f"need warmup >= 0 and repeat >= 1, got warmup={warmup}, repeat={repeat}")
    for codec in codecs:
        for item in items:
            check_modality(codec, item)
    versions = _versions()
    metric_fns = {m: METRICS[m]() for m in {item.modality for item in items}}
    grid = _grid(codecs, qualities)
    done = read_log(log) if log is not None else {}
    total = sum(_point(c.name, q, i.name) not in done for c in codecs for q in grid[c.name] for i in items)
    rows: list[RDRow] = []
    sink = _open_log(log) if log is not None and total else None
    try:
        with tqdm(total=total, disable=not progress, desc="eval", unit="run") as bar:
            for codec in codecs:
                for quality in grid[codec.name]:
                    todo = [i for i in items if _point(codec.name, quality, i.name) not in done]
                    if todo:
                        if hasattr(codec, "prepare"):  # loading weights is not part of any one encode
                            codec.prepare(quality)
                        for _ in range(warmup):
                            codec.decode(codec.encode(todo[0], quality).data, todo[0])
                    for item in items:
                        key = _point(codec.name, quality, item.name)
                        if key in done:
                            rows.append(done[key])
                            continue
                        bar.set_postfix_str(f"{codec.name} q={quality} {item.name}")
                        row = _measure(codec, item, quality, repeat, metric_fns[item.modality], versions)
                        if sink is not None:
                            sink.write(json.dumps(row.to_dict()) + "\n")
                            sink.flush()
                        rows.append(row)
                        bar.update(1)
    finally:
        if sink is not None:
            sink.close()
    return rows


def _open_log(path: str | Path):
    path = Path(path)
    torn = path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
    sink = path.open("a")
    if torn:  # a killed run's half line stays a line of its own, skipped on reading
        sink.write("\n")
    return sink


def _measure(codec: EvalCodec, item: MediaItem, quality, repeat: int,
             metric_fns: dict[str, Callable[[MediaItem, torch.Tensor], float | None]],
             versions: dict[str, str]) -> RDRow:
    encode_s, decode_s = [], []
    for run in range(repeat):
        t0 = time.perf_counter()
        enc = codec.encode(item, quality)
        t1 = time.perf_counter()
        y = codec.decode(enc.data, item)
        t2 = time.perf_counter()
        encode_s.append(t1 - t0)
        decode_s.append(t2 - t1)
        if run == 0:
            data, first_y = enc.data, y
    if tuple(first_y.shape) != tuple(item.x.shape):
        raise InputError(f"{codec.name} returned shape {tuple(first_y.shape)} for {item.name} {tuple(item.x.shape)}")
    bits = estimated_bits(codec, item, quality)  # after the timings: not part of encoding
    est = None if bits is None else _rate(item, bits / 8.0)
    return RDRow(
        item=item.name, codec=codec.name, quality=quality, bytes=len(data),
        rate=_rate(item, len(data)), estimated_bits=bits, estimated_rate=est,
        metrics={k: fn(item, first_y) for k, fn in metric_fns.items()},
        encode_s=statistics.median(encode_s), decode_s=statistics.median(decode_s), device="cpu",
        versions=versions, timing_repeats=repeat,
    )


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(vals) if vals else None


def aggregate(rows: list[RDRow], codecs: list[EvalCodec] | None = None) -> list[Curve]:
    """Per codec: one point per quality, the mean over items, sorted by rate."""
    described = {c.name: (c.description, c.modality) for c in codecs or []}
    curves = []
    for name in dict.fromkeys(r.codec for r in rows):
        mine = [r for r in rows if r.codec == name]
        points = []
        for q in dict.fromkeys(r.quality for r in mine):
            sel = [r for r in mine if r.quality == q]
            keys = list(dict.fromkeys(k for r in sel for k in r.metrics))
            points.append((
                statistics.fmean(r.rate for r in sel), q, _mean([r.estimated_rate for r in sel]),
                {k: _mean([r.metrics.get(k) for r in sel]) for k in keys},
                statistics.fmean(r.encode_s for r in sel), statistics.fmean(r.decode_s for r in sel), len(sel),
            ))
        points.sort(key=lambda p: p[0])
        keys = list(dict.fromkeys(k for p in points for k in p[3]))
        desc, modality = described.get(name, ("", ""))
        curves.append(Curve(
            codec=name, description=desc, modality=modality or _guess_modality(mine),
            qualities=tuple(p[1] for p in points), rate=tuple(p[0] for p in points),
            estimated_rate=tuple(p[2] for p in points),
            metrics={k: tuple(p[3].get(k) for p in points) for k in keys},
            encode_s=tuple(p[4] for p in points), decode_s=tuple(p[5] for p in points),
            items=points[0][6],
        ))
    return curves


def _guess_modality(rows: list[RDRow]) -> str:
    keys = set(rows[0].metrics)
    return "audio" if "si-sdr" in keys else "video" if "psnr-yuv" in keys else "image"


# ------------------------------------------------------------------------ items
def _kind(path: Path) -> str | None:
    from lcodec.io.audio import AUDIO_SUFFIXES
    from lcodec.io.image import IMAGE_SUFFIXES
    from lcodec.io.video import VIDEO_SUFFIXES

    suffix = path.suffix.lower()
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES), ("video", VIDEO_SUFFIXES)):
        if suffix in suffixes:
            return kind
    return None


def _read_item(path: Path, kind: str) -> MediaItem:
    if kind == "image":
        from lcodec.io.image import read_image

        return MediaItem(path.name, "image", read_image(path).unsqueeze(0))
    if kind == "audio":
        from lcodec.io.audio import read_audio

        x, rate = read_audio(path)
        return MediaItem(path.name, "audio", x.unsqueeze(0), sample_rate=rate)
    from lcodec.io.video import read_video

    x, fps = read_video(path)
    return MediaItem(path.name, "video", x.unsqueeze(0), fps=fps)


def load_items(folder: str | Path, limit: int | None = None, modality: str | None = None,
               names: Sequence[str] | None = None) -> list[MediaItem]:
    """The media files in ``folder`` (sorted by name) of ``modality`` (any if None), as MediaItems.

    ``names``: keep only files whose name matches one of these names or shell globs (``kodim0*.png``);
    a name or glob that matches no file is an error. ``limit``: the first N files after that.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"data folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if names:
        for pattern in names:
            if not any(fnmatch.fnmatchcase(p.name, pattern) for p in files):
                raise InputError(f"--images {pattern!r} matches no file in {folder}")
        files = [p for p in files if any(fnmatch.fnmatchcase(p.name, pattern) for pattern in names)]
    kinds = {p: _kind(p) for p in files}
    items: list[MediaItem] = []
    for path in files:
        if kinds[path] is not None and modality in (None, kinds[path]):
            items.append(_read_item(path, kinds[path]))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        others = [p for p in files if kinds[p] is not None]
        if modality and others:
            kind = kinds[others[0]]
            listed = ", ".join(p.name for p in others[:3]) + (", ..." if len(others) > 3 else "")
            raise InputError(
                f"no {modality} files in {folder}: it holds {len(others)} {kind} file(s) ({listed}); "
                f"evaluate them with {kind} codecs (`codec list`, `codec eval --list-classical`)"
            )
        raise InputError(f"no readable media files in {folder} (looked for images, audio and video by suffix)")
    return items


# ----------------------------------------------------------------------- report
def _compressai_results(curve: Curve) -> dict[str, object]:
    """CompressAI's results-file layout, so curves compare directly with published ones."""
    results: dict[str, object] = {"bpp": list(curve.rate)}
    for ours, theirs in (("psnr-rgb", "psnr-rgb"), ("ms-ssim-rgb", "ms-ssim-rgb"), ("psnr-yuv", "psnr-yuv")):
        if ours in curve.metrics:
            results[theirs] = list(curve.metrics[ours])
    results["encoding_time"] = list(curve.encode_s)
    results["decoding_time"] = list(curve.decode_s)
    return {"name": curve.codec, "description": curve.description, "results": results}


def _ms_ssim_db(v: float | None) -> float | None:
    return None if v is None or v >= 1 else -10 * math.log10(1 - v)


def bd_table(curves: list[Curve], anchor: Curve, references: list[tuple[str, list[float], list[float], list[float] | None]] = ()) -> list[dict[str, object]]:
    """BD-rate of every curve vs the anchor, in the primary metric and (images) MS-SSIM."""
    from lcodec.eval.bdrate import BDWarning, bd_rate

    primary = PRIMARY[anchor.modality]
    out = []
    for c in curves:
        if c.codec == anchor.codec:
            continue
        entry: dict[str, object] = {"codec": c.codec, "anchor": anchor.codec}
        for metric in (primary, "ms-ssim-rgb") if anchor.modality == "image" else (primary,):
            key = f"bd-rate-{metric}"
            try:
                pa = [(r, q) for r, q in zip(anchor.rate, anchor.metrics.get(metric, ())) if q is not None]
                pt = [(r, q) for r, q in zip(c.rate, c.metrics.get(metric, ())) if q is not None]
                conv = _ms_ssim_db if metric.startswith("ms-ssim") else (lambda v: v)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", BDWarning)
                    entry[key] = bd_rate([p[0] for p in pa], [conv(p[1]) for p in pa],
                                         [p[0] for p in pt], [conv(p[1]) for p in pt]).value
                notes = [str(w.message) for w in caught if issubclass(w.category, BDWarning)]
                if notes:  # a figure with a caveat: kept, and the caveat goes beside it into the report
                    entry[f"{key}-note"] = " ".join(dict.fromkeys(notes))
            except InputError as exc:
                entry[key] = None
                entry[f"{key}-note"] = str(exc)
        out.append(entry)
    return out


def write_report(
    rows: list[RDRow],
    curves: list[Curve],
    out_dir: str | Path,
    anchor: str | Sequence[str] | None = None,
    plot: bool = False,
    reference: str | None = None,
) -> dict[str, Path]:
    """Write rows.json, curves.json, compressai/<codec>.json, summary.md (+ rd.png/rd.svg).

    ``anchor``: one codec name or several; BD-rates of every other curve against each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"rows": out / "rows.json", "curves": out / "curves.json", "summary": out / "summary.md"}
    written["rows"].write_text(json.dumps([r.to_dict() for r in rows], indent=1) + "\n")
    written["curves"].write_text(json.dumps([c.to_dict() for c in curves], indent=1) + "\n")
    (out / "compressai").mkdir(exist_ok=True)
    for c in curves:
        (out / "compressai" / f"{c.codec}.json").write_text(json.dumps(_compressai_results(c), indent=2) + "\n")

    ref_curves = _reference_curves(reference) if reference else []
    by_name = {c.codec: c for c in curves}
    anchors = [anchor] if isinstance(anchor, str) else list(anchor or ())
    for name in anchors:
        if name not in by_name:
            raise InputError(f"anchor {name!r} was not evaluated; add it with --codec {name}")
    bds = [entry for name in dict.fromkeys(anchors) for entry in bd_table(curves, by_name[name])]
    ref_bds = _reference_bds(curves, ref_curves) if ref_curves else []
    written["summary"].write_text(_summary_md(curves, bds, ref_bds, reference))
    if bds or ref_bds:
        written["bd"] = out / "bd_rates.json"
        written["bd"].write_text(json.dumps({"anchor": bds, "reference": ref_bds}, indent=1) + "\n")
    if plot:
        from lcodec.eval.plots import rd_plot

        for suffix in ("png", "svg"):
            written[f"plot_{suffix}"] = rd_plot(curves, out / f"rd.{suffix}", ref_curves)
    return written


def _reference_curves(name: str) -> list[Curve]:
    from lcodec.eval.references import load_reference

    ref = load_reference(name)
    curves = []
    for rc in ref.curves:
        metrics: dict[str, tuple] = {"psnr-rgb": tuple(rc.psnr_rgb)}
        if rc.ms_ssim_rgb:
            metrics["ms-ssim-rgb"] = tuple(rc.ms_ssim_rgb)
        n = len(rc.bpp)
        curves.append(Curve(
            codec=f"{rc.name} ({ref.dataset.split(' ')[0]}, published)", description=rc.description, modality="image",
            qualities=tuple(range(n)), rate=tuple(rc.bpp), estimated_rate=(None,) * n, metrics=metrics,
            encode_s=(0.0,) * n, decode_s=(0.0,) * n, items=0, extra={"reference": ref.name},
        ))
    return curves


def _reference_bds(curves: list[Curve], refs: list[Curve]) -> list[dict[str, object]]:
    out = []
    for ref in refs:
        for entry in bd_table([c for c in curves if c.modality == "image"], ref):
            entry["note"] = "reference measured on a different dataset; indicative only"
            out.append(entry)
    return out


def _fmt(v: object, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _bd_cell(entry: dict, key: str, notes: list[str]) -> str:
    """A BD figure with its note's number: "n/a [1]" when there is no figure, "+3.10 [2]" for a caveat."""
    note = entry.get(f"{key}-note")
    mark = f" [{notes.index(str(note)) + 1}]" if note else ""
    return ("n/a" if entry.get(key) is None else _fmt(entry[key], 2)) + mark


def _summary_md(curves: list[Curve], bds: list[dict], ref_bds: list[dict], reference: str | None) -> str:
    lines = ["# Rate-distortion summary", ""]
    for c in curves:
        rate_key = RATE_KEY[c.modality]
        keys = list(c.metrics)
        lines += [f"## {c.codec}", "", c.description, "",
                  "| quality | " + rate_key + " | est. " + rate_key + " | " + " | ".join(keys) + " | enc s | dec s |",
                  "|" + "---|" * (5 + len(keys))]
        for i, q in enumerate(c.qualities):
            vals = " | ".join(_fmt(c.metrics[k][i]) for k in keys)
            lines.append(f"| {q} | {_fmt(c.rate[i], 4)} | {_fmt(c.estimated_rate[i], 4)} | {vals} | "
                         f"{_fmt(c.encode_s[i])} | {_fmt(c.decode_s[i])} |")
        lines.append("")
    for title, table in (("BD-rate vs anchor", bds), (f"BD-rate vs {reference}", ref_bds)):
        if not table:
            continue
        found = {k for e in table for k in e if k.startswith("bd-rate") and not k.endswith("note")}
        keys = sorted(found, key=lambda k: ("ms-ssim" in k, k))  # the primary metric first
        notes = list(dict.fromkeys(str(e[f"{k}-note"]) for e in table for k in keys if e.get(f"{k}-note")))
        lines += [f"## {title} (negative = fewer bits for the same quality)", "",
                  "| codec | anchor | " + " | ".join(f"{k} (%)" for k in keys) + " |", "|" + "---|" * (2 + len(keys))]
        for e in table:
            cells = " | ".join(_bd_cell(e, k, notes) for k in keys)
            lines.append(f"| {e['codec']} | {e['anchor']} | {cells} |")
        lines += [""] + [f"[{i + 1}] {n}" for i, n in enumerate(notes)] + ([""] if notes else [])
    return "\n".join(lines)
