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
