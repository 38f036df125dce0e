"""Checks on the shipped published reference RD curves (CompressAI, Kodak)."""
import json
from pathlib import Path

import pytest

import lcodec.eval.references as refs
from lcodec.errors import InputError
from lcodec.eval.references import ReferenceCurve, available_references, load_reference

# One value per curve, hard-coded from InterDigitalInc/CompressAI @ 3d3c9bbd92989b1cf19e122281161f7aac8ee769,
# results/image/kodak/<file>: (field, index, value).
SPOT_CHECKS = {
    # compressai-bmshj2018-factorized_mse_cuda.json
    "bmshj2018-factorized": ("psnr_rgb", 0, 26.908817394289304),
    # compressai-bmshj2018-hyperprior_mse_cuda.json
    "bmshj2018-hyperprior": ("bpp", 7, 1.6602240668402775),
    # compressai-mbt2018-mean_mse_cuda.json
    "mbt2018-mean": ("psnr_rgb", 4, 34.968296546935704),
    # compressai-cheng2020-anchor_mse_cuda.json
    "cheng2020-anchor": ("bpp", 5, 0.805735270182292),
    # jpeg.json
    "JPEG": ("psnr_rgb", 18, 40.556657112988766),
    # webp.json
    "WebP": ("bpp", 0, 0.23441908094618058),
    # bpg_444_x265_ycbcr.json
    "BPG 8b 444 x265 ycbcr": ("psnr_rgb", 7, 47.63251604714922),
    # vtm.json
    "VTM": ("bpp", 3, 0.4905454847547744),
}
REQUIRED = {"bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "cheng2020-anchor", "JPEG", "WebP"}


@pytest.fixture(scope="module")
def ref():
    return load_reference()


def test_metadata(ref):
    assert available_references() == ["compressai-kodak"]
    assert ref.name == "compressai-kodak"
    assert "Kodak" in ref.dataset
    assert "InterDigitalInc/CompressAI" in ref.source


def test_required_curves_present(ref):
    names = {c.name for c in ref.curves}
    assert REQUIRED <= names
    assert len(names) == len(ref.curves), "duplicate curve names"


def test_curves_monotone_and_plausible(ref):
    for c in ref.curves:
        assert isinstance(c, ReferenceCurve)
        n = len(c.bpp)
        assert n >= 4 and len(c.psnr_rgb) == n, c.name
        assert all(a < b for a, b in zip(c.bpp, c.bpp[1:])), c.name
        assert all(a < b for a, b in zip(c.psnr_rgb, c.psnr_rgb[1:])), c.name
        assert all(0.01 <= b <= 5 for b in c.bpp), c.name
        assert all(20 <= p <= 50 for p in c.psnr_rgb), c.name
        if c.ms_ssim_rgb is not None:
            assert len(c.ms_ssim_rgb) == n, c.name
            assert all(0 < m <= 1 for m in c.ms_ssim_rgb), c.name


def test_spot_values_match_source(ref):
    for c in ref.curves:
        field, i, value = SPOT_CHECKS[c.name]
        assert getattr(c, field)[i] == value, c.name
    assert set(SPOT_CHECKS) == {c.name for c in ref.curves}


def test_json_only_known_fields():
    data = json.loads((Path(refs.__file__).parent / "compressai_kodak.json").read_text())
    for entry in data["curves"]:
        assert set(entry["results"]) <= {"bpp", "psnr-rgb", "ms-ssim-rgb"}


def test_frozen_and_lookup(ref):
    with pytest.raises(AttributeError):
        ref.name = "x"  # type: ignore[misc]
    assert ref.curve("VTM").name == "VTM"
    with pytest.raises(InputError, match="available"):
        ref.curve("nope")


def test_unknown_reference_lists_available():
    with pytest.raises(InputError, match="compressai-kodak"):
        load_reference("does-not-exist")


# ------------------------------------------------- a reference file read from its documented layout
def _write_reference(tmp_path, monkeypatch, curves):
    (tmp_path / "mine.json").write_text(json.dumps({"name": "mine", "dataset": "d", "source": "s", "curves": curves}))
    monkeypatch.setattr(refs, "_HERE", tmp_path)
    monkeypatch.setitem(refs._FILES, "mine", "mine.json")
    return refs


def test_a_reference_curve_is_sorted_by_bpp_with_its_metrics(tmp_path, monkeypatch):
    refs = _write_reference(tmp_path, monkeypatch, [
        {"name": "a", "description": "first", "results": {"bpp": [0.5, 0.1, 0.3], "psnr-rgb": [35, 28, 31],
                                                          "ms-ssim-rgb": [0.99, 0.9, 0.95]}},
        {"name": "b", "results": {"bpp": [0.2], "psnr-rgb": [29]}},
    ])
    assert "mine" in refs.available_references()
    ref = refs.load_reference("mine")
    assert (ref.name, ref.dataset, ref.source) == ("mine", "d", "s")
    a, b = ref.curve("a"), ref.curve("b")
    assert a.bpp == (0.1, 0.3, 0.5) and a.psnr_rgb == (28.0, 31.0, 35.0) and a.ms_ssim_rgb == (0.9, 0.95, 0.99)
    assert a.description == "first" and b.description == "" and b.ms_ssim_rgb is None
    with pytest.raises(InputError, match="has no curve 'c'; available: a, b"):
        ref.curve("c")


@pytest.mark.parametrize("results, message", [
    ({"bpp": [0.1, 0.2], "psnr-rgb": [30]}, "mine/x: bpp and metric lists differ in length"),
    ({"bpp": [0.1, 0.2], "psnr-rgb": [30, 31], "ms-ssim-rgb": [0.9]}, "mine/x: bpp and metric lists differ"),
    ({"bpp": [], "psnr-rgb": []}, "mine/x/bpp: expected a non-empty list of numbers"),
    ({"bpp": 0.1, "psnr-rgb": [30]}, "mine/x/bpp: expected a non-empty list"),
    ({"bpp": [0.1], "psnr-rgb": "30"}, "mine/x/psnr-rgb: expected a non-empty list"),
    ({"bpp": [0.1], "psnr-rgb": [30], "ms-ssim-rgb": []}, "mine/x/ms-ssim-rgb: expected a non-empty list"),
])
def test_a_malformed_reference_curve_is_refused_by_name(tmp_path, monkeypatch, results, message):
    refs = _write_reference(tmp_path, monkeypatch, [{"name": "x", "results": results}])
    with pytest.raises(InputError, match=message):
        refs.load_reference("mine")
