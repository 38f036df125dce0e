"""lcodec/eval/plots.py against its module docstring: a colour of its own for every curve (the same
in every panel), references dashed, one legend outside the panels, the rate axis spanning the
measured curves, the quality axis fitting what is visible; MS-SSIM drawn in dB."""
from __future__ import annotations

import matplotlib
import pytest

from lcodec.eval.harness import Curve
from lcodec.eval.plots import _colours, _points, rd_figure, rd_plot

matplotlib.use("Agg")


def _curve(name, rates, psnr, ssim=None, modality="image"):
    metrics = {"psnr-rgb": tuple(psnr)} if modality == "image" else {"si-sdr": tuple(psnr)}
    if ssim is not None:
        metrics["ms-ssim-rgb"] = tuple(ssim)
    n = len(rates)
    return Curve(codec=name, description="", modality=modality, qualities=tuple(range(n)), rate=tuple(rates),
                 estimated_rate=(None,) * n, metrics=metrics, encode_s=(0.1,) * n, decode_s=(0.1,) * n, items=1)


@pytest.mark.parametrize("n", [1, 2, 10, 11, 20, 21, 35])
def test_every_curve_gets_a_colour_of_its_own(n):
    colours = _colours(n)
    assert len(colours) == n and len(set(colours)) == n


def test_palettes_strong_colours_first():
    tab10, tab20, turbo = (matplotlib.colormaps[k] for k in ("tab10", "tab20", "turbo"))
    assert _colours(10) == [tab10(i) for i in range(10)]
    eleven = _colours(11)
    assert eleven[:10] == [tab20(i) for i in range(0, 20, 2)] and eleven[10] == tab20(1)
    assert _colours(20)[10:] == [tab20(i) for i in range(1, 20, 2)]
    many = _colours(21)
    assert many[0] == turbo(0.0) and many[-1] == turbo(1.0) and many[10] == turbo(0.5)  # the whole map, evenly


def test_points_drop_missing_values_sort_by_rate_and_put_msssim_in_db():
    c = _curve("a", (0.9, 0.1, 0.5, 0.3), (30.0, None, 28.0, 26.0), ssim=(0.99, 0.9, 1.0, None))
    assert _points(c, "psnr-rgb") == [(0.3, 26.0), (0.5, 28.0), (0.9, 30.0)]
    ssim = _points(c, "ms-ssim-rgb")  # 1.0 has no dB value
    assert [r for r, _ in ssim] == [0.1, 0.9] and [v for _, v in ssim] == pytest.approx([10.0, 20.0])
    assert _points(c, "psnr-y") == []


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_image_figure_two_panels_same_colours_references_dashed_and_axes_fitted():
    a = _curve("mine", (0.2, 0.5, 1.0), (28.0, 31.0, 34.0), ssim=(0.9, 0.95, 0.99))
    b = _curve("theirs", (0.25, 0.6), (27.0, 30.0), ssim=(0.89, 0.94))
    ref = _curve("published", (0.1, 0.8, 3.0), (26.0, 32.0, 45.0), ssim=(0.8, 0.96, 0.999))
    fig = rd_figure([a, b], [ref], title="t")
    axes = fig.axes
    assert len(axes) == 2 and fig._suptitle.get_text() == "t"
    colours = [{k: line.get_color() for k, line in _lines(ax).items()} for ax in axes]
    assert colours[0] == colours[1] and len(set(colours[0].values())) == 3
    for ax in axes:
        lines = _lines(ax)
        assert lines["published"].get_linestyle() == "--" and lines["mine"].get_linestyle() == "-"
        assert lines["mine"].get_marker() == "o"
        assert ax.get_xlim() == pytest.approx((0, 1.0 * 1.05))  # measured rates only; the reference is cut
    lo, hi = axes[0].get_ylim()
    visible = [26.0, 27.0, 28.0, 30.0, 31.0, 32.0, 34.0]  # the reference's 45 dB at 3.0 bpp lies outside
    pad = 0.05 * (max(visible) - min(visible))
    assert (lo, hi) == pytest.approx((min(visible) - pad, max(visible) + pad))
    assert "MS-SSIM" in axes[1].get_ylabel() and axes[0].get_xlabel().startswith("bpp")
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["mine", "theirs", "published"]
    matplotlib.pyplot.close(fig)


def test_audio_figure_has_one_panel_and_a_single_point_gets_a_big_marker():
    one = _curve("one", (48.0,), (20.0,), modality="audio")
    two = _curve("two", (24.0, 96.0), (12.0, 25.0), modality="audio")
    fig = rd_figure([one, two])
    (ax,) = fig.axes
    lines = _lines(ax)
    assert lines["one"].get_markersize() == 8 and lines["two"].get_markersize() == 4
    assert ax.get_xlabel().startswith("kbps") and "si-sdr" in ax.get_ylabel()
    assert ax.get_xlim() == pytest.approx((0, 96.0 * 1.05))
    flat = rd_figure([one])
    assert flat.axes[0].get_ylim() == pytest.approx((19.5, 20.5))  # a flat curve still gets a visible range
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_rd_plot_saves_in_the_suffixs_format(tmp_path, suffix, magic):
    out = rd_plot([_curve("a", (0.2, 0.5), (28.0, 31.0), ssim=(0.9, 0.95))], tmp_path / f"rd{suffix}")
    assert out == tmp_path / f"rd{suffix}" and out.read_bytes().startswith(magic)
    assert not matplotlib.pyplot.get_fignums()  # the figure is closed after saving
