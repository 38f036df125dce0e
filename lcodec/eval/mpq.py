"""Machine-perceptual quality (MPQ): how well a model does its task on decoded data.

Jacobellis et al., "Machine Perceptual Quality: Evaluating the Impact of Severe Lossy
Compression on Audio and Image Models" (2024). A *task* is a model + an evaluation
split + a metric. The task is scored once on the original items, then on the items
after each codec at each quality::

    items ──► task.score ──────────────────────────► original score
      │
      └──► codec.encode ──► bytes ──► codec.decode ──► task.score ──► score at rate

Rates count WHOLE files (headers included): bits per pixel for images and video,
kilobits per second for audio, pooled over the split (total bits / total pixels or
seconds). For each codec, the *threshold rate* is the lowest rate at which the task
keeps ``threshold`` (99 %) of its original score, interpolated linearly in log-rate
between the two grid points that bracket the crossing.

Tasks register themselves by name (``@register_task("mnist-digits")``); the built-in
tasks live in ``lcodec.eval.tasks`` and are imported on first lookup.
"""
from __future__ import annotations

import json
import math
import os
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlparse

import torch

from lcodec.errors import InputError, ModelError
from lcodec.eval.adapters import MediaItem, get_eval_codec
from lcodec.eval.harness import estimated_bits

__all__ = [
    "Task",
    "TaskFactory",
    "register_task",
    "get_task",
    "list_tasks",
    "MPQRow",
    "ThresholdRate",
    "MPQResult",
    "run_mpq",
    "threshold_rate",
    "rate_unit",
    "cached_checkpoint",
    "check_limit",
    "THRESHOLD",
]

THRESHOLD = 0.99  # fraction of the original score a codec must keep
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class Task(ABC):
    """A model, its evaluation split and its metric.

    ``score(decoded)`` takes tensors in the order of ``items(limit)``: ``decoded[i]``
    is item ``i`` after coding (or the original item itself, for the reference).
    """

    name: str
    modality: str  # "image" | "audio" | "video"
    metric_name: str
    higher_is_better: bool

    @abstractmethod
    def items(self, limit: int | None = None) -> list[MediaItem]:
        """The first ``limit`` items of the evaluation split (all when ``None``)."""

    @abstractmethod
    def score(self, decoded: Sequence[torch.Tensor]) -> float:
        """The task metric of the model on ``decoded`` (aligned with ``items``)."""

    def relative(self, score: float, reference: float) -> float:
        """``score`` as a fraction of ``reference``: 1.0 means as good as on the originals.

        Higher-is-better metrics: ``score / reference``; lower-is-better metrics:
        ``reference / score``. A zero denominator gives 1.0 when both are equal.
        """
        num, den = (score, reference) if self.higher_is_better else (reference, score)
        if den == 0:
            return 1.0 if num == 0 else math.inf
        return num / den


TaskFactory = Callable[..., Task]  # factory(data: Path | None) -> Task
_TASKS: dict[str, TaskFactory] = {}


def register_task(name: str) -> Callable[[TaskFactory], TaskFactory]:
    """Decorator: ``@register_task("mnist-digits")`` on a factory ``(data: Path | None) -> Task``."""
    if not _NAME.match(name):
        raise ModelError(f"task name {name!r} must be lowercase-with-hyphens")

    def wrap(factory: TaskFactory) -> TaskFactory:
        if name in _TASKS:
            raise ModelError(f"MPQ task {name!r} is registered twice")
        _TASKS[name] = factory
        return factory

    return wrap


def _ensure_builtin() -> None:
    import lcodec.eval.tasks  # noqa: F401  (registers the built-in tasks)


def list_tasks() -> list[str]:
    """Names of the registered MPQ tasks, sorted."""
    _ensure_builtin()
    return sorted(_TASKS)


def get_task(name: str, data: str | Path | None = None) -> Task:
    """Build task ``name``; ``data`` is its data folder (each task documents a default)."""
    _ensure_builtin()
    if name not in _TASKS:
        raise InputError(f"unknown MPQ task {name!r}; available tasks: {', '.join(sorted(_TASKS))}")
    return _TASKS[name](None if data is None else Path(data))


def cached_checkpoint(url: str, what: str) -> Path:
    """The torch hub cache file for ``url``; ModelError if absent, so nothing is ever downloaded.

    ``torch.hub.load_state_dict_from_url`` stores ``url`` as
    ``torch.hub.get_dir()/checkpoints/<file name of the url>`` and only downloads when
    that file is missing; checking it first keeps evaluation offline and explicit.
    """
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    if not path.is_file():
        raise ModelError(
            f"pretrained weights for {what} are not available offline (expected {path}); "
            f"put them in {path.parent} (from {url}) or run with internet"
        )
    return path


def check_limit(limit: int | None, available: int) -> int:
    """How many items ``items(limit)`` returns: all when ``None``, else at most ``limit``."""
    if limit is None:
        return available
    if limit <= 0:
        raise InputError(f"limit must be positive, got {limit}")
    return min(limit, available)


# ------------------------------------------------------------------------- results
@dataclass(frozen=True)
class MPQRow:
    """One codec at one quality, pooled over the split."""

    codec: str
    quality: int
    rate: float  # whole files, in the result's ``rate_unit``
    score: float
    relative: float  # score as a fraction of the original score (Task.relative)
    estimated_rate: float | None = None  # the model's own estimate, when it has one


@dataclass(frozen=True)
class ThresholdRate:
    """Lowest rate keeping ``THRESHOLD`` of the original score, for one codec.

    ``bracketed`` is True when the rate is interpolated between two grid points; when
    the codec's lowest grid point already qualifies it is that point's rate (an upper
    bound). ``rate`` is None when no quality reaches the threshold.
    """

    codec: str
    rate: float | None
    bracketed: bool


@dataclass(frozen=True)
class MPQResult:
    task: str
    metric: str
    higher_is_better: bool
    rate_unit: str  # "bpp" | "kbps"
    num_items: int
    original_score: float
    threshold: float
    rows: tuple[MPQRow, ...]
    threshold_rates: tuple[ThresholdRate, ...]

    def rate_at_threshold(self, codec: str) -> float | None:
        """The threshold rate of ``codec`` (None if it never keeps the score)."""
        for t in self.threshold_rates:
            if t.codec == codec:
                return t.rate
        raise InputError(f"{codec!r} is not in this result; codecs: {', '.join(t.codec for t in self.threshold_rates)}")

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data; non-finite numbers become None."""
        return _finite(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _finite(obj: object) -> object:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# ---------------------------------------------------------------------- the harness
def rate_unit(modality: str) -> str:
    """``bpp`` for images and video, ``kbps`` for audio."""
    if modality in ("image", "video"):
        return "bpp"
    if modality == "audio":
        return "kbps"
    raise InputError(f"unknown modality {modality!r}")


def _rate(bits: float, items: Sequence[MediaItem]) -> float:
    if items[0].modality == "audio":
        seconds = sum(item.seconds for item in items)
        if seconds <= 0:
            raise InputError("audio items need a sample rate to measure kbps")
        return bits / seconds / 1000.0
    return bits / sum(item.pixels for item in items)


def threshold_rate(
    rates: Sequence[float], relatives: Sequence[float], threshold: float = THRESHOLD
) -> tuple[float | None, bool]:
    """Lowest rate whose relative score reaches ``threshold``, as ``(rate, bracketed)``.

    Points are visited by increasing rate; at the first one that qualifies, the rate is
    interpolated linearly in log-rate from the point before it (``bracketed``), or is
    that point's own rate when it is the lowest. ``(None, False)`` if none qualifies.
    """
    if len(rates) != len(relatives):
        raise InputError(f"{len(rates)} rates but {len(relatives)} relative scores")
    points = sorted(zip(rates, relatives))
    for i, (rate, rel) in enumerate(points):
        if rel < threshold:
            continue
        if i == 0:
            return rate, False
        r0, s0 = points[i - 1]
        t = (threshold - s0) / (rel - s0)
        return math.exp(math.log(r0) + t * (math.log(rate) - math.log(r0))), True
    return None, False


def run_mpq(task: Task, codec_names: Sequence[str], limit: int | None = None, progress: bool = True) -> MPQResult:
    """Score ``task`` on its original items, then after every codec at every quality."""
    from tqdm import tqdm

    if not codec_names:
        raise InputError("name at least one codec")
    if len(set(codec_names)) != len(codec_names):
        raise InputError(f"a codec is named twice: {', '.join(codec_names)}")
    codecs = [get_eval_codec(name) for name in codec_names]
    for codec in codecs:
        if codec.modality != task.modality:
            raise InputError(f"{codec.name} codes {codec.modality}, but task {task.name} is {task.modality}")
    items = task.items(limit)
    if not items:
        raise InputError(f"task {task.name} has no items to evaluate")
    original = task.score([item.x for item in items])

    rows: list[MPQRow] = []
    total = sum(len(c.qualities) for c in codecs) * len(items)
    with tqdm(total=total, disable=not progress, desc=f"mpq {task.name}", unit="item") as bar:
        for codec in codecs:
            for quality in codec.qualities:
                bar.set_postfix_str(f"{codec.name} q{quality}")
                bits, estimates, decoded = 0.0, [], []
                for item in items:
                    enc = codec.encode(item, quality)
                    bits += 8 * len(enc.data)
                    estimates.append(estimated_bits(codec, item, quality))
                    decoded.append(codec.decode(enc.data, item))
                    bar.update(1)
                estimated = None if None in estimates else float(sum(estimates))
                score = task.score(decoded)
                rows.append(MPQRow(
                    codec=codec.name,
                    quality=quality,
                    rate=_rate(bits, items),
                    score=score,
                    relative=task.relative(score, original),
                    estimated_rate=None if estimated is None else _rate(estimated, items),
                ))
    thresholds = []
    for codec in codecs:
        own = [r for r in rows if r.codec == codec.name]
        rate, bracketed = threshold_rate([r.rate for r in own], [r.relative for r in own])
        thresholds.append(ThresholdRate(codec.name, rate, bracketed))
    return MPQResult(
        task=task.name,
        metric=task.metric_name,
        higher_is_better=task.higher_is_better,
        rate_unit=rate_unit(task.modality),
        num_items=len(items),
        original_score=original,
        threshold=THRESHOLD,
        rows=tuple(rows),
        threshold_rates=tuple(thresholds),
    )
