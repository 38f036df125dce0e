"""The harness end to end on two small real images, one learned and one classical codec."""
import json

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
    assert calls == ["prepare"] + ["encode", "decode", "estimate"] * 2
    assert all(r.estimated_bits > 0 for r in rows)
