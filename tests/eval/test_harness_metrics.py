"""The harness's per-modality metric tables and modality guess, against their stated contracts:
video figures are per-frame values averaged over frames; MS-SSIM only where the shorter side
allows its five scales (>= 161 px); a curve without a described codec takes its modality from
the metrics its rows carry."""
from __future__ import annotations

import math

import pytest
import torch

from lcodec.eval import metrics as m
from lcodec.eval.adapters import MediaItem
from lcodec.eval.harness import METRICS, PRIMARY, RATE_KEY, RDRow, aggregate


def _psnr8(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two [0, 1] frames stored as 8-bit, written out in float64."""
    a8 = torch.round(a.double().clamp(0, 1) * 255)
    b8 = torch.round(b.double().clamp(0, 1) * 255)
    return 10 * math.log10(255.0**2 / float(((a8 - b8) ** 2).mean()))


def _clip(t, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 1, h, w, generator=g) * 0.6 + 0.2
    x = base + 0.02 * torch.arange(t).view(1, 1, t, 1, 1)  # frames differ from each other
    noise = torch.randn(1, 3, t, h, w, generator=g) * (0.01 + 0.01 * torch.arange(t).view(1, 1, t, 1, 1))
    return x.clamp(0, 1), (x + noise).clamp(0, 1)  # a different error level in every frame


def test_video_metrics_are_frame_means_with_msssim_over_all_frames():
    x, y = _clip(10, 161, 163)  # 10 frames: more than one of the 8-frame MS-SSIM batches
    item = MediaItem("clip.y4m", "video", x, fps=25.0)
    table = METRICS["video"]()
    assert set(table) == {"psnr-yuv", "psnr-rgb", "ms-ssim-rgb"} and PRIMARY["video"] in table
    frames = [(x[:, :, t], y[:, :, t]) for t in range(10)]
    assert table["psnr-rgb"](item, y) == pytest.approx(sum(_psnr8(a, b) for a, b in frames) / 10, abs=1e-4)
    per_frame_yuv = [float(m.psnr_yuv(a[:, :, None], b[:, :, None])[0]) for a, b in frames]
    assert table["psnr-yuv"](item, y) == pytest.approx(sum(per_frame_yuv) / 10, abs=1e-4)
    per_frame_ssim = [float(m.ms_ssim(a, b)[0]) for a, b in frames]
    assert table["ms-ssim-rgb"](item, y) == pytest.approx(sum(per_frame_ssim) / 10, abs=1e-6)
    assert table["ms-ssim-rgb"](item, x) == pytest.approx(1.0, abs=1e-6)


def test_video_msssim_needs_161_pixels_on_the_shorter_side():
    table = METRICS["video"]()
    for h, w in ((160, 200), (200, 160)):
        x, y = _clip(2, h, w)
        assert table["ms-ssim-rgb"](MediaItem("c", "video", x, fps=25.0), y) is None
        assert table["psnr-rgb"](MediaItem("c", "video", x, fps=25.0), y) > 0
    x, y = _clip(2, 161, 161)
    assert 0 < table["ms-ssim-rgb"](MediaItem("c", "video", x, fps=25.0), y) < 1


def test_image_msssim_needs_161_pixels_and_psnr_is_of_the_whole_image():
    table = METRICS["image"]()
    x, y = _clip(1, 161, 170)
    x, y = x[:, :, 0], y[:, :, 0]
    item = MediaItem("a.png", "image", x)
    assert table["psnr-rgb"](item, y) == pytest.approx(_psnr8(x, y), abs=1e-4)
    assert table["ms-ssim-rgb"](item, y) == pytest.approx(float(m.ms_ssim(x, y)[0]), abs=1e-6)
    small = MediaItem("b.png", "image", x[..., :160, :])
    assert table["ms-ssim-rgb"](small, y[..., :160, :]) is None


def _row(item, codec, quality, rate, metrics):
    return RDRow(item=item, codec=codec, quality=quality, bytes=100, rate=rate, estimated_bits=None,
                 estimated_rate=None, metrics=metrics, encode_s=0.1, decode_s=0.1, device="cpu", versions={})


@pytest.mark.parametrize("modality", ["image", "audio", "video"])
def test_an_undescribed_curve_takes_its_modality_from_its_metrics(modality):
    keys = list(METRICS[modality]())
    rows = [_row("a", "other", q, 1.0 + q, {k: 30.0 + q for k in keys}) for q in (1, 2)]
    (curve,) = aggregate(rows)  # no codec list: nothing describes "other"
    assert curve.modality == modality
    assert curve.description == "" and set(curve.metrics) == set(keys)
    assert set(RATE_KEY) == set(METRICS) == set(PRIMARY)



# ------------------------------------------------------------------ items and report files
def test_load_items_reads_video_with_its_frame_rate_and_stops_at_the_limit(tmp_path):
    import shutil

    from lcodec.eval.harness import load_items
    from lcodec.io.video import read_video
    from tests.conftest import FIXTURES

    for name in ("a.y4m", "b.y4m", "c.y4m"):
        shutil.copy(FIXTURES / "basketball_96x64_6f.y4m", tmp_path / name)
    (tmp_path / "notes.txt").write_text("not media")
    x, fps = read_video(FIXTURES / "basketball_96x64_6f.y4m")
    items = load_items(tmp_path)
    assert [i.name for i in items] == ["a.y4m", "b.y4m", "c.y4m"]
    assert all(i.modality == "video" and i.fps == fps > 0 and torch.equal(i.x[0], x) for i in items)
    assert [i.name for i in load_items(tmp_path, limit=2)] == ["a.y4m", "b.y4m"]


def _rd_curve(name, rates, psnr):
    from lcodec.eval.harness import Curve

    n = len(rates)
    return Curve(codec=name, description=f"{name} desc", modality="image", qualities=tuple(range(n)),
                 rate=tuple(rates), estimated_rate=(None,) * n,
                 metrics={"psnr-rgb": tuple(psnr), "ms-ssim-rgb": (0.9, 0.95, 0.97, 0.98)[:n]},
                 encode_s=tuple(0.1 * (i + 1) for i in range(n)), decode_s=tuple(0.2 * (i + 1) for i in range(n)), items=1)


def test_report_files_hold_the_curves_and_one_anchor_by_name(tmp_path):
    import json

    from lcodec.eval.harness import write_report

    a = _rd_curve("jpeg", (0.2, 0.4, 0.8, 1.6), (28.0, 31.0, 34.0, 37.0))
    b = _rd_curve("mine", (0.25, 0.5, 1.0, 2.0), (28.0, 31.0, 34.0, 37.0))
    written = write_report([], [a, b], tmp_path, anchor="jpeg")
    compressai = json.loads((tmp_path / "compressai" / "mine.json").read_text())
    assert compressai["name"] == "mine" and compressai["description"] == "mine desc"
    assert compressai["results"]["bpp"] == list(b.rate) and compressai["results"]["psnr-rgb"] == list(b.metrics["psnr-rgb"])
    assert compressai["results"]["encoding_time"] == list(b.encode_s)
    assert compressai["results"]["decoding_time"] == list(b.decode_s)
    bds = json.loads(written["bd"].read_text())["anchor"]
    assert [(e["codec"], e["anchor"]) for e in bds] == [("mine", "jpeg")]  # a string anchor is one codec
    assert bds[0]["bd-rate-psnr-rgb"] == pytest.approx(25.0, abs=0.01)  # b needs 25% more bits everywhere
    summary = written["summary"].read_text()
    assert "| 0 | 0.2500 |" in summary and "| 3 | 2.0000 |" in summary  # quality and rate of b's points
