"""Machine-perceptual quality: task registry, threshold rate, the MNIST task and harness, offline errors."""
import argparse
import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lcodec.errors import InputError, ModelError
from lcodec.eval import mpq
from lcodec.eval.adapters import CLASSICAL, Encoded, MediaItem
from lcodec.eval.mpq import get_task, list_tasks, run_mpq, threshold_rate
from lcodec.eval.tasks.torchaudio_asr import ctc_greedy_decode, edit_distance, normalize_transcript, word_error_rate
from tests.conftest import SHARED_DATA, skip_without_shared

MNIST = SHARED_DATA / "mnist"


@pytest.fixture(scope="module")
def mnist_task():
    skip_without_shared(MNIST / "t10k-images-idx3-ubyte.gz")
    return get_task("mnist-digits", MNIST)


# ------------------------------------------------------------------- registry
def test_builtin_tasks_are_registered():
    assert {"mnist-digits", "imagenet-classifier", "librispeech-asr"} <= set(list_tasks())


def test_unknown_task_lists_the_available_ones():
    with pytest.raises(InputError, match=r"unknown MPQ task 'mnist'; available tasks: .*mnist-digits"):
        get_task("mnist")


def test_duplicate_task_name_raises(monkeypatch):
    monkeypatch.setattr(mpq, "_TASKS", {})
    mpq.register_task("some-task")(object)
    with pytest.raises(ModelError, match="'some-task' is registered twice"):
        mpq.register_task("some-task")(object)


# -------------------------------------------------------------- threshold rate
def test_threshold_rate_interpolates_in_log_rate():
    rate, bracketed = threshold_rate([8.0, 1.0, 4.0, 2.0], [1.0, 0.5, 0.98, 0.9])
    assert bracketed and rate == pytest.approx(4 * math.sqrt(2))


def test_threshold_rate_at_the_grid_edges():
    assert threshold_rate([1.0, 2.0], [0.995, 1.0]) == (1.0, False)  # lowest point qualifies: upper bound
    assert threshold_rate([1.0, 2.0], [0.5, 0.98]) == (None, False)


# ------------------------------------------------------------- ASR building blocks
def test_edit_distance_and_wer():
    assert edit_distance("A B C D".split(), "A X C".split()) == 2  # one substitution, one deletion
    assert edit_distance([], "A B".split()) == 2
    assert word_error_rate(["A B C D", "E F"], ["A X C", "E F G"]) == pytest.approx(3 / 6)


def test_ctc_greedy_decode_merges_repeats_and_drops_blanks():
    labels = ("-", "|", "H", "I")
    path = [2, 2, 0, 3, 1, 1, 2, 0, 2, 3]  # H H - I | | H - H I
    emission = torch.nn.functional.one_hot(torch.tensor(path), len(labels)).float()
    assert ctc_greedy_decode(emission, labels) == "HI HHI"
    assert normalize_transcript("Hello, world's  end.") == "HELLO WORLD'S END"


# ------------------------------------------------------- offline pretrained tasks
@pytest.mark.parametrize("name, what", [("imagenet-classifier", "ResNet-50"), ("librispeech-asr", "WAV2VEC2")])
def test_pretrained_tasks_fail_clearly_offline(monkeypatch, tmp_path, name, what):
    def no_download(*args, **kwargs):
        raise AssertionError("attempted a download")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with pytest.raises(ModelError, match=rf"pretrained weights for .*{what}.* are not available offline.*"
                                         r"checkpoints.*run with internet"):
        get_task(name, tmp_path)


# ------------------------------------------------------------------ MNIST task
def test_mnist_missing_data_says_where(tmp_path):
    with pytest.raises(InputError, match=rf"t10k-images-idx3-ubyte.gz .* in {tmp_path}"):
        get_task("mnist-digits", tmp_path)


def test_mnist_classifier_accuracy_on_heldout_split(mnist_task):
    items = mnist_task.items(500)
    assert items[0].name == "mnist-t10k-08000" and items[0].x.shape == (1, 3, 28, 28)
    assert mnist_task.score([item.x for item in items]) >= 0.97


def test_mnist_jpeg_keeps_accuracy_at_high_quality(mnist_task):
    result = run_mpq(mnist_task, ["jpeg"], limit=200, progress=False)
    rows = sorted(result.rows, key=lambda r: r.quality)
    assert result.num_items == 200 and result.rate_unit == "bpp" and len(rows) == 11
    assert [r.rate for r in rows] == sorted(r.rate for r in rows)  # rate grows with quality
    assert rows[-1].relative >= 0.99
    assert rows[0].relative <= rows[-1].relative
    rate = result.rate_at_threshold("jpeg")
    assert rate is not None and rows[0].rate <= rate <= rows[-1].rate
    data = json.loads(result.to_json())
    assert data["task"] == "mnist-digits" and data["rows"][0]["codec"] == "jpeg"


class ThumbnailCodec:
    """Test double: stores a q x q grey thumbnail as PNG, so small q destroys the digit."""

    name, modality, qualities, description = "thumbnail", "image", (3, 5, 8, 12, 28), "thumbnail PNG"

    def encode(self, item: MediaItem, quality: int) -> Encoded:
        gray = Image.fromarray((item.x[0].mean(0).numpy() * 255).round().astype(np.uint8))
        buf = io.BytesIO()
        gray.resize((quality, quality), Image.BOX).save(buf, format="PNG")
        return Encoded(buf.getvalue())

    def decode(self, data: bytes, item: MediaItem) -> torch.Tensor:
        small = Image.open(io.BytesIO(data))
        a = np.asarray(small.resize(tuple(item.x.shape[-2:]), Image.BILINEAR), dtype=np.float32) / 255
        return torch.from_numpy(a).expand(1, 3, *a.shape).contiguous()


def test_mnist_threshold_is_bracketed_when_quality_collapses(mnist_task, monkeypatch):
    monkeypatch.setitem(CLASSICAL, "thumbnail", ThumbnailCodec)
    result = run_mpq(mnist_task, ["thumbnail"], limit=200, progress=False)
    rows = sorted(result.rows, key=lambda r: r.rate)
    assert rows[0].relative < 0.5 and rows[-1].relative == 1.0  # 28x28 PNG is lossless
    t = result.threshold_rates[0]
    assert t.bracketed
    above = next(i for i, r in enumerate(rows) if r.relative >= 0.99)
    assert rows[above - 1].rate < t.rate <= rows[above].rate


def test_cli_prints_table_and_writes_json(mnist_task, tmp_path, capsys):
    from lcodec.cli import mpq as mpq_cli

    parser = argparse.ArgumentParser()
    mpq_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["mpq", "--task", "mnist-digits", "--codec", "webp", "--limit", "20",
                              "--data", str(MNIST), "--out", str(tmp_path / "results")])
    assert mpq_cli.main(args) == 0
    out = capsys.readouterr().out
    assert "webp" in out and "relative" in out and "lowest rate keeping 99%" in out
    data = json.loads((tmp_path / "results" / "mpq_mnist-digits.json").read_text())
    assert data["num_items"] == 20 and len(data["rows"]) == 12


# ------------------------------- pretrained tasks end to end, with stand-in cached weights
@pytest.mark.slow
def test_imagenet_task_runs_from_the_cache(offline_hub, tmp_path, shared_images):
    from torchvision.models import ResNet50_Weights, resnet50

    torch.manual_seed(0)
    torch.save(resnet50().state_dict(), offline_hub / ResNet50_Weights.IMAGENET1K_V2.url.rsplit("/", 1)[1])
    for folder, image in [("tench", "coffee.png"), ("goldfish", "chelsea.png")]:
        (tmp_path / "data" / folder).mkdir(parents=True)
        Image.open(shared_images / image).save(tmp_path / "data" / folder / image)
    task = get_task("imagenet-classifier", tmp_path / "data")
    result = run_mpq(task, ["jpeg"], progress=False)  # random weights: only the code path is checked
    assert result.num_items == 2 and 0 <= result.original_score <= 1


@pytest.mark.slow
def test_asr_task_runs_from_the_cache(offline_hub, tmp_path):
    import shutil

    import torchaudio

    clip = SHARED_DATA / "audio" / "speech" / "whisper_jfk.flac"
    skip_without_shared(clip)
    bundle = torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H
    state = torchaudio.models.wav2vec2_model(**bundle._params).state_dict()
    for key in ("aux.weight", "aux.bias"):  # the stored checkpoint keeps fairseq's 3 unused rows
        state[key] = torch.cat([state[key][:1], torch.zeros_like(state[key][:3]), state[key][1:]])
    torch.save(state, offline_hub / bundle._path)
    (tmp_path / "data").mkdir()
    shutil.copy(clip, tmp_path / "data" / "jfk.flac")
    (tmp_path / "data" / "jfk.txt").write_text("And so, my fellow Americans, ask not what your country can do for you")
    result = run_mpq(get_task("librispeech-asr", tmp_path / "data"), ["flac"], progress=False)
    assert result.rate_unit == "kbps" and result.rows[0].rate > 0 and result.original_score >= 0
