"""Matched-rate helpers (lcodec.eval.matched): hand-worked cases, and the committed benchmark
headlines recomputed from the committed per-item rows."""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from lcodec.errors import InputError
from lcodec.eval.matched import audio_matched_rate, image_matched_rate_gain

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def row(item, codec, quality, rate, **metrics):
    return SimpleNamespace(item=item, codec=codec, quality=quality, rate=rate,
                           metrics={k.replace("_", "-"): v for k, v in metrics.items()})


def jpeg_grid(item, offset=0.0):
    # PSNR = 30 + 4 * log2(bpp) + offset: linear in log-rate, so interpolation is exact
    return [row(item, "jpeg", q, r, psnr_rgb=30 + 4 * math.log2(r) + offset) for q, r in
            ((10, 0.25), (30, 0.5), (60, 1.0), (90, 2.0))]


def test_image_gain_is_interpolated_in_log_rate_and_averaged_over_images():
    rows = jpeg_grid("a") + jpeg_grid("b", offset=1.0)
    # at 0.7071 bpp (half-way between 0.5 and 1 in log-rate) JPEG gives 30 - 2 = 28 dB on a, 29 on b
    rows += [row("a", "ours", 1, 2**-0.5, psnr_rgb=29.5), row("b", "ours", 1, 2**-0.5, psnr_rgb=29.0)]
    gain, n = image_matched_rate_gain(rows, "ours", "jpeg")
    assert n == 2 and gain == pytest.approx(((29.5 - 28.0) + (29.0 - 29.0)) / 2, abs=1e-12)
    # interpolation is in log-rate: at 0.6 bpp, linear-in-rate would say 28 + 4 * 0.2 = 28.8 dB
    gain, _ = image_matched_rate_gain(jpeg_grid("a") + [row("a", "ours", 1, 0.6, psnr_rgb=30.0)], "ours", "jpeg")
    assert gain == pytest.approx(30.0 - (30 + 4 * math.log2(0.6)), abs=1e-12)


def test_image_gain_skips_items_outside_the_classical_range_and_selects_a_quality():
    rows = jpeg_grid("a") + jpeg_grid("b") + jpeg_grid("c")
    rows += [row("a", "ours", 1, 0.2, psnr_rgb=40.0),  # below JPEG's lowest rate: skipped
             row("b", "ours", 1, 2.5, psnr_rgb=40.0),  # above its highest: skipped
             row("c", "ours", 1, 0.25, psnr_rgb=23.0),  # exactly on the end point: used (22 dB there)
             row("c", "ours", 2, 1.0, psnr_rgb=35.0),
             row("c", "other", 1, 1.0, psnr_rgb=0.0)]  # another learned codec is ignored
    gain, n = image_matched_rate_gain(rows, "ours", "jpeg", quality=1)
    assert n == 1 and gain == pytest.approx(1.0, abs=1e-12)
    gain, n = image_matched_rate_gain(rows, "ours", "jpeg", quality=2)
    assert n == 1 and gain == pytest.approx(5.0, abs=1e-12)
    assert image_matched_rate_gain(rows, "ours", "webp") == (None, 0)  # no classical rows at all
    gain, n = image_matched_rate_gain(rows, "ours", "jpeg")  # all learned rows: both points of c
    assert n == 2 and gain == pytest.approx(3.0, abs=1e-12)


def opus_grid(item):
    return [row(item, "opus", k, k, si_sdr=k / 4, log_mel=8 / k) for k in (16, 32, 64)]


def test_audio_matched_rate_both_metrics_and_the_clamp_counts():
    rows = opus_grid("x") + opus_grid("y") + opus_grid("z")
    rows += [row("x", "walloc", 2, 8.0, si_sdr=5.0, log_mel=0.1),  # below 16 kbps: vs opus at 16
             row("y", "walloc", 2, 128.0, si_sdr=5.0, log_mel=0.1),  # above 64: vs opus at 64
             row("z", "walloc", 2, 16 * 2**0.5, si_sdr=5.0, log_mel=0.1),  # half-way 16..32 in log-rate
             row("z", "walloc", 1, 16.0, si_sdr=-50.0, log_mel=9.0)]  # another quality: ignored
    out = audio_matched_rate(rows, "walloc", 2, "opus")
    assert out["clips"] == 3
    assert out["clips_vs_higher_classical_rate"] == 1 and out["clips_vs_lower_classical_rate"] == 1
    sdr = [5 - 4.0, 5 - 16.0, 5 - 6.0]
    mel = [0.1 - 0.5, 0.1 - 0.125, 0.1 - 0.375]
    assert out["si_sdr_gain_db"] == pytest.approx(sum(sdr) / 3, abs=1e-12)
    assert out["log_mel_diff"] == pytest.approx(sum(mel) / 3, abs=1e-12)
    assert out["clips_where_learned_si_sdr_is_higher"] == 1
    with pytest.raises(InputError, match="no clip"):
        audio_matched_rate(rows, "walloc", 3, "opus")


def test_image_gain_counts_the_top_end_point_and_interpolates_in_the_last_segment():
    """Inclusive at the highest classical rate too; a rate inside the last segment (1..2 bpp)
    is compared there, not skipped."""
    rows = jpeg_grid("a") + jpeg_grid("b")
    rows += [row("a", "ours", 1, 2.0, psnr_rgb=35.0),  # exactly JPEG's highest rate: 34 dB there
             row("b", "ours", 1, 2**0.5, psnr_rgb=35.0)]  # half-way 1..2 in log-rate: 32 dB
    gain, n = image_matched_rate_gain(rows, "ours", "jpeg")
    assert n == 2 and gain == pytest.approx(((35 - 34) + (35 - 32)) / 2, abs=1e-12)


def test_audio_matched_rate_uses_each_clips_own_grid_and_strict_clamp_counts():
    """Each clip is compared with the classical codec on that clip only; a clip without classical
    rows is skipped without ending the scan; a rate exactly on an end point of the grid is inside
    it (not counted as below or above); a clip tied in SI-SDR is not "higher"."""
    rows = opus_grid("x") + [row("y", "opus", k, k, si_sdr=k / 2, log_mel=4 / k) for k in (16, 32, 64)]
    rows = [row("w", "walloc", 2, 20.0, si_sdr=1.0, log_mel=1.0)] + rows  # no opus rows for w
    rows += [row("x", "walloc", 2, 16.0, si_sdr=4.0, log_mel=0.5),  # on x's lowest point: tie
             row("y", "walloc", 2, 64.0, si_sdr=33.0, log_mel=0.0)]  # on y's highest point: 32 dB there
    out = audio_matched_rate(rows, "walloc", 2, "opus")
    assert out["clips"] == 2
    assert out["clips_vs_higher_classical_rate"] == 0 and out["clips_vs_lower_classical_rate"] == 0
    assert out["si_sdr_gain_db"] == pytest.approx(((4.0 - 4.0) + (33.0 - 32.0)) / 2, abs=1e-12)
    assert out["log_mel_diff"] == pytest.approx(((0.5 - 0.5) + (0.0 - 0.0625)) / 2, abs=1e-12)
    assert out["clips_where_learned_si_sdr_is_higher"] == 1
    # a rate above the top of a 3-point grid is counted as above (the last point, not the second)
    above = audio_matched_rate(opus_grid("x") + [row("x", "walloc", 2, 48.0, si_sdr=1, log_mel=1)], "walloc", 2, "opus")
    assert above["clips_vs_lower_classical_rate"] == 0 and above["clips_vs_higher_classical_rate"] == 0


def _rows(path: Path):
    return [SimpleNamespace(**r) for r in json.loads(path.read_text())]


IMAGE_RESULTS = sorted(p.parent.name for p in RESULTS.glob("image_rd_*/headline.json"))


@pytest.mark.parametrize("folder", IMAGE_RESULTS or ["image_rd_val"])
def test_committed_image_headlines_are_reproduced_from_their_rows(folder):
    """docs/results.md's matched-rate columns come from headline.json; recompute them from rows.json."""
    base = RESULTS / folder
    if not (base / "rows.json").exists():
        pytest.skip(f"{base} not committed")
    rows = _rows(base / "rows.json")
    points = json.loads((base / "headline.json").read_text())["points"]
    assert points
    for p in points:
        for classical in ("jpeg", "webp"):
            gain, n = image_matched_rate_gain(rows, p["codec"], classical, quality=p["quality"])
            assert n == p[f"matched_images_{classical}"]
            assert gain == pytest.approx(p[f"psnr_gain_vs_{classical}_at_matched_rate_db"], abs=1e-9)


def test_committed_audio_headline_is_reproduced_from_its_rows():
    base = RESULTS / "audio_rd"
    if not (base / "headline.json").exists():
        pytest.skip("audio results not committed")
    headline = json.loads((base / "headline.json").read_text())
    checked = 0
    for group, entry in headline["groups"].items():
        rows = _rows(base / group / "rows.json")
        learned = next(r.codec for r in rows if r.codec not in ("opus", "mp3"))
        for p in entry["points"]:
            for classical in ("opus", "mp3"):
                out = audio_matched_rate(rows, learned, p["quality"], classical)
                want = p[f"vs_{classical}"]
                for key in ("si_sdr_gain_db", "log_mel_diff"):
                    assert out[key] == pytest.approx(want[key], abs=1e-9)
                for key in ("clips", "clips_vs_higher_classical_rate", "clips_where_learned_si_sdr_is_higher"):
                    assert out[key] == want[key]
                checked += 1
    assert checked >= 6
