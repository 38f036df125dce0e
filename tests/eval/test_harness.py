"""The harness end to end on two small real images, one learned and one classical codec."""
import json
import re
import time

import pytest
from PIL import Image

from lcodec.cli.main import main
from lcodec.errors import InputError, ModelError
from lcodec.eval.adapters import MediaItem, classical_names, get_eval_codec
from lcodec.eval.harness import aggregate, evaluate, load_items
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    img = Image.open(FIXTURES / "coffee_481x321.png")
    img.crop((0, 0, 200, 176)).save(d / "a.png")
    img.crop((250, 100, 450, 300)).convert("L").save(d / "b.png")  # grayscale: expanded to RGB
    (d / "notes.txt").write_text("ignored")
    return d


def test_cli_end_to_end_outputs_have_content(folder, tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["eval", "--codec", "walloc-rgb", "--codec", "jpeg", "--data", str(folder), "--out", str(out),
                 "--anchor", "jpeg", "--plot", "--quiet", "--quality", "jpeg=10,30,60,90", "--quality", "walloc-rgb=3",
                 "--reference", "compressai-kodak"])
    assert code == 0
    rows = json.loads((out / "rows.json").read_text())
    assert len(rows) == 2 * (1 + 4)  # 2 items x (1 walloc quality + 4 jpeg qualities)
    for r in rows:
        size = 200 * (176 if r["item"] == "a.png" else 200)
        assert r["rate"] == pytest.approx(8 * r["bytes"] / size)
        assert 15 < r["metrics"]["psnr-rgb"] < 60 and 0 < r["metrics"]["ms-ssim-rgb"] <= 1
        assert r["encode_s"] > 0 and r["device"] == "cpu" and r["versions"]["lcodec"]
        assert (r["estimated_rate"] is None) == (r["codec"] == "jpeg") == (r["estimated_bits"] is None)
    learned = [r for r in rows if r["codec"] == "walloc-rgb"]
    assert all(abs(r["estimated_rate"] - r["rate"]) / r["rate"] < 0.1 for r in learned)

    jpeg = json.loads((out / "compressai" / "jpeg.json").read_text())
    assert jpeg["name"] == "jpeg" and set(jpeg["results"]) >= {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"}
    assert jpeg["results"]["bpp"] == sorted(jpeg["results"]["bpp"]) and len(jpeg["results"]["bpp"]) == 4
    assert jpeg["results"]["psnr-rgb"][-1] > jpeg["results"]["psnr-rgb"][0]
    mean_bpp = sum(r["rate"] for r in rows if r["codec"] == "jpeg" and r["quality"] == 10) / 2
    assert jpeg["results"]["bpp"][0] == pytest.approx(mean_bpp)

    summary = (out / "summary.md").read_text()
    assert "## walloc-rgb" in summary and "## jpeg" in summary and "BD-rate vs anchor" in summary
    bd = json.loads((out / "bd_rates.json").read_text())["anchor"]
    assert bd[0]["codec"] == "walloc-rgb" and bd[0]["bd-rate-psnr-rgb"] is None  # one rate point: no BD figure
    assert "at least 2" in bd[0]["bd-rate-psnr-rgb-note"]
    ref = json.loads((out / "bd_rates.json").read_text())["reference"]
    vs_webp = next(e for e in ref if e["codec"] == "jpeg" and e["anchor"].startswith("WebP (Kodak"))
    assert vs_webp["bd-rate-psnr-rgb"] > 0 and "different dataset" in vs_webp["note"]  # JPEG loses to WebP
    assert "BD-rate vs compressai-kodak" in summary and "[1] test: BD figures need at least 2" in summary
    assert (out / "rd.png").stat().st_size > 10_000 and (out / "rd.svg").read_text().lstrip().startswith("<?xml")


def test_bd_rate_between_two_classical_curves(folder):
    items = load_items(folder)
    codecs = [get_eval_codec("jpeg"), get_eval_codec("webp")]
    rows = evaluate(codecs, items, qualities={"jpeg": (20, 40, 60, 80), "webp": (20, 40, 60, 80)}, progress=False)
    curves = aggregate(rows, codecs)
    from lcodec.eval.harness import bd_table

    (entry,) = bd_table(curves, curves[0])
    assert entry["codec"] == "webp" and entry["bd-rate-psnr-rgb"] < 0  # WebP beats JPEG on photos


def test_errors_are_clear(folder, tmp_path, capsys):
    with pytest.raises(ModelError, match="unknown codec"):
        get_eval_codec("no-such-codec")
    assert {"jpeg", "webp", "png"} <= set(classical_names())
    with pytest.raises(InputError, match="no readable media"):
        load_items(tmp_path)
    code = main(["eval", "--codec", "jpeg", "--data", str(folder), "--out", str(tmp_path / "o"), "--anchor", "webp"])
    assert code == 1 and "--anchor webp" in capsys.readouterr().err
    x = load_items(folder)[0]
    audio = MediaItem("a.wav", "audio", x.x[:, :1, 0], sample_rate=8000)
    with pytest.raises(InputError, match="codes image"):
        evaluate([get_eval_codec("jpeg")], [audio], progress=False)


def test_timed_encode_is_only_the_encode(folder):
    """The estimate re-runs the analysis and loading reads the weights: both stay out of encode_s."""
    from lcodec.eval.adapters import LearnedCodec

    calls = []

    class Logged(LearnedCodec):
        def prepare(self, quality):
            calls.append("prepare")
            super().prepare(quality)

        def encode(self, item, quality):
            calls.append("encode" if quality in self._loaded else "encode-loading")
            return super().encode(item, quality)

        def decode(self, data, item):
            calls.append("decode")
            return super().decode(data, item)

        def estimate_bits(self, item, quality):
            calls.append("estimate")
            return super().estimate_bits(item, quality)

    rows = evaluate([Logged("walloc-rgb")], load_items(folder), qualities={"walloc-rgb": (3,)}, progress=False)
    assert calls == ["prepare", "encode", "decode"] + ["encode", "decode", "estimate"] * 2  # one warm-up first
    assert all(r.estimated_bits > 0 for r in rows)


# ------------------------------------------------------------------- issue 22, item 9: the harness
def test_list_classical_exists_and_needs_no_other_flag(capsys):
    assert main(["eval", "--list-classical"]) == 0
    out = capsys.readouterr().out
    for name in ("jpeg", "webp", "png"):
        assert re.search(rf"^{name}\s+image\s+\S", out, re.M), out


def test_images_selects_by_name_and_glob(folder, tmp_path, capsys):
    assert [i.name for i in load_items(folder, names=["b.png"])] == ["b.png"]
    assert [i.name for i in load_items(folder, names=["a.*", "b.png"])] == ["a.png", "b.png"]
    with pytest.raises(InputError, match="'c\\*.png' matches no file"):
        load_items(folder, names=["c*.png"])
    out = tmp_path / "res"
    assert main(["eval", "--codec", "jpeg", "--data", str(folder), "--out", str(out), "--quiet",
                 "--quality", "jpeg=50", "--images", "a.png"]) == 0
    assert {r["item"] for r in json.loads((out / "rows.json").read_text())} == {"a.png"}


def test_a_folder_of_another_media_kind_says_what_it_holds(tmp_path):
    (tmp_path / "clip.y4m").write_bytes(b"YUV4MPEG2 W16 H16 F25:1 C420jpeg\nFRAME\n" + bytes(16 * 16 * 3 // 2))
    with pytest.raises(InputError) as exc:
        load_items(tmp_path, modality="image")
    msg = str(exc.value)
    assert str(tmp_path) in msg and "clip.y4m" in msg and "video" in msg and "--list-classical" in msg


class _Stopping:
    """jpeg, except that the run stops (like Ctrl-C) at the encode numbered ``stop_at``."""

    def __init__(self, stop_at=None):
        self.inner = get_eval_codec("jpeg")
        self.name, self.modality, self.qualities, self.description = "jpeg", "image", (20, 60), self.inner.description
        self.stop_at, self.encodes = stop_at, 0

    def encode(self, item, quality):
        self.encodes += 1
        if self.encodes == self.stop_at:
            raise KeyboardInterrupt
        return self.inner.encode(item, quality)

    def decode(self, data, item):
        return self.inner.decode(data, item)


def test_points_are_written_as_measured_and_a_stopped_run_resumes(folder, tmp_path):
    items = load_items(folder)
    log = tmp_path / "rows.jsonl"
    with pytest.raises(KeyboardInterrupt):
        evaluate([_Stopping(stop_at=4)], items, progress=False, warmup=0, log=log)
    assert len(log.read_text().splitlines()) == 3  # every point measured before the stop is on disk
    with log.open("a") as f:
        f.write('{"item": "a.png", "codec": "jp')  # a line torn by a kill is ignored
    again = _Stopping()
    rows = evaluate([again], items, progress=False, warmup=0, log=log)
    assert again.encodes == 1  # only the missing point was measured
    assert [(r.item, r.quality) for r in rows] == [("a.png", 20), ("b.png", 20), ("a.png", 60), ("b.png", 60)]
    fresh = evaluate([_Stopping()], items, progress=False, warmup=0)
    assert [r.bytes for r in rows] == [r.bytes for r in fresh]


def test_cli_resumes_into_the_same_out_folder(folder, tmp_path, capsys):
    argv = ["eval", "--codec", "jpeg", "--data", str(folder), "--out", str(tmp_path / "res"), "--quiet",
            "--quality", "jpeg=30,70"]
    assert main(argv) == 0
    first = json.loads((tmp_path / "res" / "rows.json").read_text())
    capsys.readouterr()
    assert main(argv) == 0
    assert "4 of 4 points already measured" in capsys.readouterr().out
    assert json.loads((tmp_path / "res" / "rows.json").read_text()) == first
    other = tmp_path / "other"
    other.mkdir()
    Image.open(FIXTURES / "coffee_481x321.png").crop((0, 0, 64, 64)).save(other / "a.png")
    assert main(argv[:3] + ["--data", str(other)] + argv[5:]) == 1
    assert "holds results for" in capsys.readouterr().err


def test_several_anchors(folder, tmp_path):
    out = tmp_path / "res"
    assert main(["eval", "--codec", "jpeg", "--codec", "webp", "--data", str(folder), "--out", str(out), "--quiet", "--anchor", "jpeg", "--anchor", "webp",
                 "--quality", "jpeg=20,40,60,80", "--quality", "webp=20,40,60,80"]) == 0
    pairs = {(e["codec"], e["anchor"]) for e in json.loads((out / "bd_rates.json").read_text())["anchor"]}
    assert {("webp", "jpeg"), ("jpeg", "webp")} <= pairs


def test_two_point_bd_figures_are_marked_in_the_report(folder, tmp_path):
    out = tmp_path / "res"
    assert main(["eval", "--codec", "jpeg", "--codec", "webp", "--data", str(folder), "--out", str(out), "--quiet",
                 "--anchor", "jpeg", "--quality", "jpeg=20,40,60,80", "--quality", "webp=30,70"]) == 0
    (entry,) = json.loads((out / "bd_rates.json").read_text())["anchor"]
    assert entry["bd-rate-psnr-rgb"] is not None and "2-point" in entry["bd-rate-psnr-rgb-note"]
    assert "2-point" in (out / "summary.md").read_text()


def test_timings_have_a_warm_up_and_report_the_median_of_repeats(folder):
    class Timed(_Stopping):
        durations = [0.30, 0.25, 0.02, 0.12]  # warm-up, then three timed encodes of the one item

        def encode(self, item, quality):
            time.sleep(self.durations[self.encodes])
            return super().encode(item, quality)

    codec = Timed()
    (row,) = evaluate([codec], load_items(folder, names=["a.png"]), qualities={"jpeg": (50,)}, progress=False,
                      warmup=1, repeat=3)
    assert codec.encodes == 4
    assert 0.12 <= row.encode_s < 0.2 and row.timing_repeats == 3  # the median, not the mean nor the first


def test_rd_plot_colours_legend_and_axis(tmp_path):
    from lcodec.eval.harness import Curve
    from lcodec.eval.plots import rd_figure

    def curve(name, scale, top):
        rates = tuple(top * f for f in (0.25, 0.5, 1.0))
        return Curve(codec=name, description="", modality="image", qualities=(1, 2, 3), rate=rates,
                     estimated_rate=(None,) * 3, metrics={"psnr-rgb": (28 + scale, 31 + scale, 34 + scale),
                                                          "ms-ssim-rgb": (0.9, 0.95, 0.98)},
                     encode_s=(0.0,) * 3, decode_s=(0.0,) * 3, items=1)

    curves = [curve(f"codec-{i}", i / 10, 1.0 + i / 20) for i in range(12)]
    refs = [curve("published", 0, 4.0)]  # reaches 4 bpp: far beyond ours
    fig = rd_figure(curves, refs)
    fig.canvas.draw()
    for ax in fig.axes:
        if not ax.lines:
            continue
        colours = [tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
                   for line in ax.lines]
        assert len(set(colours)) == len(colours)
        top = max(c.rate[-1] for c in curves)
        assert top <= ax.get_xlim()[1] <= 1.15 * top
        box = ax.get_window_extent()
        for legend in [ax.get_legend(), *fig.legends]:
            if legend is not None:
                assert not box.overlaps(legend.get_window_extent())
    assert fig.legends or any(ax.get_legend() for ax in fig.axes)
