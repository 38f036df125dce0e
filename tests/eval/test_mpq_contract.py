"""lcodec/eval/mpq.py's small pieces against their docstrings: relative scores for either
direction of metric, the task registry's rules, item limits, rate units, the threshold rate and the
JSON form of a result (non-finite numbers become null)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from lcodec.errors import InputError, ModelError
from lcodec.eval import mpq
from lcodec.eval.adapters import MediaItem


class _Higher(mpq.Task):
    name, modality, metric_name, higher_is_better = "h", "image", "top1", True

    def items(self, limit=None):
        return []

    def score(self, decoded):
        return 0.0


class _Lower(_Higher):
    higher_is_better = False


def test_relative_is_score_over_reference_or_its_inverse():
    h, lo = _Higher(), _Lower()
    assert h.relative(0.45, 0.9) == pytest.approx(0.5) and lo.relative(0.45, 0.9) == pytest.approx(2.0)
    assert h.relative(0.0, 0.0) == 1.0 and lo.relative(0.0, 0.0) == 1.0  # equal: as good as the originals
    assert h.relative(0.3, 0.0) == math.inf and lo.relative(0.0, 0.3) == math.inf
    assert h.relative(1.0, 1.0) == 1.0 and lo.relative(1.0, 1.0) == 1.0


def test_task_registry_rules(monkeypatch):
    monkeypatch.setattr(mpq, "_TASKS", dict(mpq._TASKS))
    factory = mpq.register_task("my-task-2")(lambda data: _Higher())
    assert callable(factory) and "my-task-2" in mpq.list_tasks()
    assert isinstance(mpq.get_task("my-task-2"), _Higher)
    for bad in ("My-Task", "my_task", "", "-x"):
        with pytest.raises(ModelError, match="lowercase-with-hyphens"):
            mpq.register_task(bad)
    with pytest.raises(ModelError, match="'my-task-2' is registered twice"):
        mpq.register_task("my-task-2")(lambda data: _Higher())
    with pytest.raises(InputError, match="unknown MPQ task 'nope'; available tasks: .*my-task-2"):
        mpq.get_task("nope")
    assert mpq.list_tasks() == sorted(mpq.list_tasks())


def test_check_limit_and_rate_units():
    assert mpq.check_limit(None, 7) == 7 and mpq.check_limit(3, 7) == 3 and mpq.check_limit(9, 7) == 7
    assert mpq.check_limit(1, 7) == 1
    for bad in (0, -1):
        with pytest.raises(InputError, match=f"limit must be positive, got {bad}"):
            mpq.check_limit(bad, 7)
    assert (mpq.rate_unit("image"), mpq.rate_unit("video"), mpq.rate_unit("audio")) == ("bpp", "bpp", "kbps")
    with pytest.raises(InputError, match="unknown modality 'text'"):
        mpq.rate_unit("text")


def test_rates_pool_bits_over_all_items():
    images = [MediaItem("a", "image", torch.zeros(1, 3, 4, 5)), MediaItem("b", "image", torch.zeros(1, 3, 2, 10))]
    assert mpq._rate(800.0, images) == pytest.approx(800 / 40)
    clips = [MediaItem("a", "audio", torch.zeros(1, 1, 8000), sample_rate=8000),
             MediaItem("b", "audio", torch.zeros(1, 2, 16000), sample_rate=16000)]
    assert mpq._rate(48000.0, clips) == pytest.approx(48000 / 2.0 / 1000)  # 2 seconds in all
    half = [MediaItem("h", "audio", torch.zeros(1, 1, 4000), sample_rate=8000)]
    assert mpq._rate(1000.0, half) == pytest.approx(2.0)  # 1000 bits in half a second: 2 kbit/s
    with pytest.raises(InputError, match="need a sample rate"):
        mpq._rate(1.0, [MediaItem("c", "audio", torch.zeros(1, 1, 10), sample_rate=0)])


def test_threshold_rate_by_its_docstring():
    # interpolated in log-rate between the last point below and the first reaching it
    rate, bracketed = mpq.threshold_rate([0.1, 0.4], [0.9, 1.0], threshold=0.95)
    assert bracketed and rate == pytest.approx(math.exp((math.log(0.1) + math.log(0.4)) / 2))
    assert mpq.threshold_rate([0.4, 0.1, 0.2], [1.0, 0.5, 0.99], threshold=0.99) == (0.2, True)  # exactly reached
    assert mpq.threshold_rate([0.2, 0.3], [0.99, 0.5], threshold=0.99) == (0.2, False)  # the lowest qualifies
    assert mpq.threshold_rate([0.2, 0.3], [0.5, 0.6], threshold=0.99) == (None, False)
    with pytest.raises(InputError, match="2 rates but 1 relative scores"):
        mpq.threshold_rate([0.1, 0.2], [1.0])


def _result():
    rows = (mpq.MPQRow("jpeg", 50, 0.5, 0.9, 1.0), mpq.MPQRow("jpeg", 10, 0.1, 0.0, math.inf, estimated_rate=math.nan))
    return mpq.MPQResult(task="t", metric="wer", higher_is_better=False, rate_unit="bpp", num_items=2,
                         original_score=0.9, threshold=0.99, rows=rows,
                         threshold_rates=(mpq.ThresholdRate("jpeg", 0.3, True), mpq.ThresholdRate("webp", None, False)))


def test_result_lookup_and_json_without_non_finite_numbers():
    r = _result()
    assert r.rate_at_threshold("jpeg") == 0.3 and r.rate_at_threshold("webp") is None
    with pytest.raises(InputError, match="'avif' is not in this result; codecs: jpeg, webp"):
        r.rate_at_threshold("avif")
    data = json.loads(r.to_json())
    assert data["rows"][1]["relative"] is None and data["rows"][1]["estimated_rate"] is None
    assert data["rows"][0] == {"codec": "jpeg", "quality": 50, "rate": 0.5, "score": 0.9, "relative": 1.0,
                               "estimated_rate": None}
    assert data["threshold_rates"][0] == {"codec": "jpeg", "rate": 0.3, "bracketed": True}
    assert r.to_dict() == data and data["task"] == "t" and data["num_items"] == 2


class _Brightness(mpq.Task):
    """Three small images; the score is their mean brightness (higher is better)."""

    name, modality, metric_name, higher_is_better = "brightness", "image", "mean", True

    def __init__(self, n=3):
        g = torch.Generator().manual_seed(0)
        self._items = [MediaItem(f"i{k}", "image", torch.rand(1, 3, 16, 24, generator=g)) for k in range(n)]

    def items(self, limit=None):
        return self._items[: mpq.check_limit(limit, len(self._items))]

    def score(self, decoded):
        return float(torch.stack([d.mean() for d in decoded]).mean())


def test_run_mpq_pools_whole_files_over_the_items():
    from lcodec.eval.adapters import get_eval_codec

    task = _Brightness()
    result = mpq.run_mpq(task, ["png", "walloc-rgb"], progress=False)
    pixels = 3 * 16 * 24
    png = get_eval_codec("png")
    png_bits = sum(8 * len(png.encode(i, 9).data) for i in task.items())
    (row,) = [r for r in result.rows if r.codec == "png"]
    assert row.quality == 9 and row.rate == pytest.approx(png_bits / pixels) and row.estimated_rate is None
    stored = task.score([torch.round(i.x * 255) / 255 for i in task.items()])  # PNG keeps the 8-bit image
    assert row.score == pytest.approx(stored, abs=1e-7) and row.relative == pytest.approx(stored / result.original_score)
    learned = [r for r in result.rows if r.codec == "walloc-rgb"]
    walloc = get_eval_codec("walloc-rgb")
    for r in learned:
        estimate = sum(walloc.estimate_bits(i, r.quality) for i in task.items())
        assert r.estimated_rate == pytest.approx(estimate / pixels, rel=1e-6)
        assert r.relative == pytest.approx(r.score / result.original_score)
    assert [t.codec for t in result.threshold_rates] == ["png", "walloc-rgb"]
    assert result.rate_at_threshold("png") == pytest.approx(row.rate)  # its one point keeps the score
    assert result.num_items == 3 and result.rate_unit == "bpp" and result.metric == "mean"
    assert mpq.run_mpq(task, ["png"], limit=1, progress=False).num_items == 1


def test_run_mpq_refuses_what_it_cannot_run():
    task = _Brightness()
    with pytest.raises(InputError, match="name at least one codec"):
        mpq.run_mpq(task, [], progress=False)
    with pytest.raises(InputError, match="a codec is named twice: png, png"):
        mpq.run_mpq(task, ["png", "png"], progress=False)
    with pytest.raises(InputError, match="opus codes audio, but task brightness is image"):
        mpq.run_mpq(task, ["opus"], progress=False)
    empty = _Brightness(0)
    with pytest.raises(InputError, match="task brightness has no items to evaluate"):
        mpq.run_mpq(empty, ["png"], progress=False)
