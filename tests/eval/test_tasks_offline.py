"""The MPQ tasks' own code (data layout, class mapping, scoring), offline and fast.

The pretrained models (ResNet-50, wav2vec 2.0) cannot be downloaded here, so their cached
checkpoints are stood in by empty files (construction only checks that the cache file exists)
and the networks by tiny stand-ins whose outputs the test chooses; everything around the
network is then checked against the module docstrings.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from lcodec.errors import InputError, ModelError
from lcodec.eval import mpq
from lcodec.eval.mpq import get_task
from lcodec.eval.tasks import mnist, torchaudio_asr, torchvision_imagenet
from lcodec.eval.tasks.torchvision_imagenet import class_indexes


def _touch_checkpoint(hub, url):
    (hub / url.rsplit("/", 1)[1]).write_bytes(b"stand-in")


# ---------------------------------------------------------------- imagenet-classifier
CATEGORIES = ["tench", "goldfish", "great white shark"]


def test_class_indexes_by_index_name_and_full_synset_list():
    assert class_indexes(["2", "0", "999"], CATEGORIES) == [2, 0, 999]
    assert class_indexes(["goldfish", "tench", "great white shark"], CATEGORIES) == [1, 0, 2]
    assert class_indexes(["1", "tench"], CATEGORIES) == [1, 0]
    synsets = [f"n{i:08d}" for i in range(1000)]  # any 1000 folders: sorted order is the output order
    assert class_indexes(synsets, CATEGORIES) == list(range(1000))
    for bad in (["1000"], ["trout"], ["-1"], ["tench", "n01440764"]):
        with pytest.raises(InputError, match="neither an index 0-999 nor an ImageNet category"):
            class_indexes(bad, CATEGORIES)
    with pytest.raises(InputError, match=r"'999 '"):
        class_indexes(["999 "], CATEGORIES)


def _image_folder(root, layout):
    """layout: {class folder: [gray levels]}; one 12x10 PNG per level."""
    for folder, levels in layout.items():
        (root / folder).mkdir(parents=True)
        for i, level in enumerate(levels):
            Image.fromarray(np.full((10, 12, 3), level, np.uint8)).save(root / folder / f"{folder}_{i}.png")
    return root


class _Fixed(torch.nn.Module):
    """Predicts output ``index`` for images darker than mid-grey and ``index + 1`` otherwise."""

    def __init__(self, index):
        super().__init__()
        self.index = index
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        logits = torch.zeros(x.shape[0], 1000)
        bright = (x.mean(dim=(1, 2, 3)) > 0).long()  # after ImageNet normalisation mid-grey is ~0
        logits[torch.arange(x.shape[0]), self.index + bright] = 1.0
        return logits


def test_imagenet_items_go_round_robin_over_classes_and_score_top1(offline_hub, tmp_path, monkeypatch):
    from torchvision.models import ResNet50_Weights

    _touch_checkpoint(offline_hub, ResNet50_Weights.IMAGENET1K_V2.url)
    data = _image_folder(tmp_path / "data", {"goldfish": [250, 10, 250], "tench": [10]})
    task = get_task("imagenet-classifier", data)
    items = task.items()
    # ImageFolder sorts classes (goldfish, tench) and files; round 0 takes one of each, then the rest
    assert [i.name for i in items] == ["goldfish_0.png", "tench_0.png", "goldfish_1.png", "goldfish_2.png"]
    assert all(i.modality == "image" and i.x.shape == (1, 3, 10, 12) for i in items)
    assert [i.name for i in task.items(3)] == [i.name for i in items[:3]]
    # targets are the category indexes: goldfish 1, tench 0; the stand-in says 0 (dark) or 1 (bright)
    task._model = _Fixed(0)
    decoded = [i.x for i in items]
    assert task.score(decoded) == pytest.approx(3 / 4)  # tench_0 (dark, 0) right, goldfish_1 (dark) wrong
    assert task.score(decoded[:2]) == pytest.approx(1.0)
    assert task.score([1 - d for d in decoded]) == pytest.approx(1 / 4)
    task.batch_size = 3  # scored in chunks: same answer, two calls
    task._model = _Fixed(0)
    assert task.score(decoded) == pytest.approx(3 / 4) and task._model.calls == 2
    for bad in ([], decoded + decoded[:1]):
        with pytest.raises(InputError, match=r"scores 1 to 4 images, got"):
            task.score(bad)


def test_imagenet_scores_the_8bit_clamped_image(offline_hub, tmp_path):
    from torchvision.models import ResNet50_Weights

    _touch_checkpoint(offline_hub, ResNet50_Weights.IMAGENET1K_V2.url)
    task = get_task("imagenet-classifier", _image_folder(tmp_path / "data", {"1": [10]}))
    task._model = _Fixed(0)
    # far outside [0, 1]: clamped to white, so "bright" (output 1 = the target) either way
    assert task.score([torch.full((1, 3, 10, 12), 40.0)]) == 1.0
    assert task.score([torch.full((1, 3, 10, 12), -40.0)]) == 0.0


def test_imagenet_classifier_loads_once_from_the_cache(offline_hub, tmp_path, monkeypatch):
    import torchvision.models
    from torchvision.models import ResNet50_Weights

    _touch_checkpoint(offline_hub, ResNet50_Weights.IMAGENET1K_V2.url)
    task = get_task("imagenet-classifier", _image_folder(tmp_path / "data", {"tench": [10]}))
    built = []

    def fake_resnet50(weights=None):
        built.append(weights)
        return torch.nn.Linear(2, 2).train()

    monkeypatch.setattr(torchvision.models, "resnet50", fake_resnet50)
    model = task._classifier()
    assert built == [ResNet50_Weights.IMAGENET1K_V2] and not model.training
    assert task._classifier() is model and len(built) == 1
    task._model = None
    for f in offline_hub.iterdir():
        f.unlink()
    with pytest.raises(ModelError, match="not available offline"):
        task._classifier()


def test_imagenet_needs_a_class_folder(offline_hub, tmp_path):
    from torchvision.models import ResNet50_Weights

    _touch_checkpoint(offline_hub, ResNet50_Weights.IMAGENET1K_V2.url)
    with pytest.raises(InputError, match="one sub-folder per class"):
        get_task("imagenet-classifier", tmp_path / "missing")
    (tmp_path / "empty" / "tench").mkdir(parents=True)
    with pytest.raises(InputError, match="not an ImageNet-style folder"):
        get_task("imagenet-classifier", tmp_path / "empty")


# -------------------------------------------------------------------- librispeech-asr
def _asr_checkpoint(hub):
    _touch_checkpoint(hub, torchaudio_asr._bundle_url())


def _wav(path, seconds, rate, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    audio = np.stack([0.1 * np.sin(2 * np.pi * 220 * (c + 1) * t) for c in range(channels)], axis=1)
    soundfile.write(str(path), audio.astype(np.float32), rate)


def test_asr_bundle_url_is_torchaudios_download_path():
    url = torchaudio_asr._bundle_url()
    assert url.startswith("https://download.pytorch.org/torchaudio/models/")
    assert url.endswith(torchaudio_asr._bundle()._path.rsplit("/", 1)[-1])


def test_asr_finds_transcripts_beside_and_in_librispeech_lists(offline_hub, tmp_path):
    _asr_checkpoint(offline_hub)
    data = tmp_path / "data"
    (data / "19" / "198").mkdir(parents=True)
    _wav(data / "a.wav", 0.5, 8000, channels=2)
    (data / "a.txt").write_text("Hello, world!", encoding="utf-8")
    _wav(data / "19" / "198" / "19-198-0001.flac", 0.25, 16000)
    _wav(data / "19" / "198" / "19-198-0002.flac", 0.25, 16000)
    (data / "19" / "198" / "19-198.trans.txt").write_text(
        "19-198-0001 NORTHANGER ABBEY\n\n   \n19-198-0002 IT'S A  SECOND LINE\n19-198-0003 NO AUDIO FOR THIS\n",
        encoding="utf-8")
    _wav(data / "0-untranscribed.wav", 0.1, 8000)  # skipped (sorted first): no transcript anywhere
    assert torchaudio_asr._transcripts(data) == {
        "19-198-0001": "NORTHANGER ABBEY", "19-198-0002": "IT'S A  SECOND LINE", "19-198-0003": "NO AUDIO FOR THIS"}
    task = get_task("librispeech-asr", data)
    assert [(p.name, text, rate) for p, text, rate in task._samples] == [
        ("19-198-0001.flac", "NORTHANGER ABBEY", 16000), ("19-198-0002.flac", "IT'S A SECOND LINE", 16000),
        ("a.wav", "HELLO WORLD", 8000)]
    items = task.items()
    assert [i.name for i in items] == ["19-198-0001", "19-198-0002", "a"]
    assert [tuple(i.x.shape) for i in items] == [(1, 1, 4000), (1, 1, 4000), (1, 2, 4000)]
    assert [i.sample_rate for i in items] == [16000, 16000, 8000] and items[2].modality == "audio"
    ref, _ = soundfile.read(str(data / "a.wav"), dtype="float32", always_2d=True)
    assert torch.equal(items[2].x[0], torch.from_numpy(ref.T.copy()))
    assert len(task.items(1)) == 1


def test_asr_refuses_folders_without_usable_audio(offline_hub, tmp_path):
    _asr_checkpoint(offline_hub)
    with pytest.raises(InputError, match="folder of speech files with transcripts"):
        get_task("librispeech-asr", tmp_path / "missing")
    (tmp_path / "none").mkdir()
    _wav(tmp_path / "none" / "x.wav", 0.1, 8000)
    with pytest.raises(InputError, match=r"no audio files \(.flac, .wav, .ogg\) with transcripts"):
        get_task("librispeech-asr", tmp_path / "none")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.flac").write_bytes(b"not audio at all")
    (tmp_path / "bad" / "x.txt").write_text("HI")
    with pytest.raises(InputError, match=r"x.flac: not readable audio"):
        get_task("librispeech-asr", tmp_path / "bad")


def test_asr_relative_compares_word_accuracies():
    task = object.__new__(torchaudio_asr.LibrispeechAsrTask)
    assert task.relative(0.1, 0.0) == pytest.approx(0.9)
    assert task.relative(0.2, 0.1) == pytest.approx(0.8 / 0.9)
    assert task.relative(1.5, 0.5) == 0.0  # WER above 1 is no accuracy, not a negative one
    assert task.relative(0.5, 1.0) == 1.0 and task.relative(0.5, 2.0) == 1.0  # originals got nothing right


class _Speller(torch.nn.Module):
    """A stand-in recogniser: spells ``text`` (one-hot CTC path, blanks between letters);
    records the length and channel count of what it was given."""

    def __init__(self, labels, texts):
        super().__init__()
        self.labels, self.texts, self.seen = labels, list(texts), []

    def forward(self, mono):
        self.seen.append(tuple(mono.shape))
        path = []
        for ch in self.texts.pop(0).replace(" ", "|"):
            path += [self.labels.index(ch), 0]
        return torch.nn.functional.one_hot(torch.tensor(path), len(self.labels)).float()[None], None


def test_asr_score_is_corpus_wer_of_the_recognised_mono_16k_audio(offline_hub, tmp_path):
    _asr_checkpoint(offline_hub)
    data = tmp_path / "data"
    data.mkdir()
    _wav(data / "a.wav", 0.5, 8000, channels=2)
    (data / "a.txt").write_text("the cat sat")
    _wav(data / "b.wav", 0.25, 16000)
    (data / "b.txt").write_text("on the mat")
    task = get_task("librispeech-asr", data)
    labels = torchaudio_asr._bundle().get_labels()
    task._model = _Speller(labels, ["THE CAT SAT", "ON A MAT"])  # one substitution in six words
    decoded = [i.x for i in task.items()]
    assert task.score(decoded) == pytest.approx(1 / 6)
    assert task._model.seen == [(1, 8000), (1, 4000)]  # mono, resampled to 16 kHz
    task._model = _Speller(labels, ["THE CAT"])
    assert task.score(decoded[:1]) == pytest.approx(1 / 3)
    for bad in ([], decoded * 2):
        with pytest.raises(InputError, match="scores 1 to 2 clips"):
            task.score(bad)


def test_asr_recogniser_needs_the_cached_weights(offline_hub, tmp_path, monkeypatch):
    _asr_checkpoint(offline_hub)
    (tmp_path / "d").mkdir()
    _wav(tmp_path / "d" / "x.wav", 0.1, 8000)
    (tmp_path / "d" / "x.txt").write_text("HI")
    task = get_task("librispeech-asr", tmp_path / "d")
    built = []

    class Bundle:
        _path = torchaudio_asr._bundle()._path

        def get_model(self):
            built.append(1)
            return torch.nn.Linear(1, 1).train()

    monkeypatch.setattr(torchaudio_asr, "_bundle", Bundle)
    model = task._recognizer()
    assert not model.training and task._recognizer() is model and built == [1]
    task._model = None
    for f in offline_hub.iterdir():
        f.unlink()
    with pytest.raises(ModelError, match="WAV2VEC2_ASR_BASE_960H"):
        task._recognizer()


# ------------------------------------------------------------------------ mnist-digits
def test_mnist_default_data_dir_is_beside_the_checkout():
    import lcodec

    checkout = Path(lcodec.__file__).resolve().parents[1]
    assert mnist.default_data_dir() == checkout.parent / "shared" / "data" / "mnist"


def test_mnist_classifier_state_is_half_precision_and_loads_back(tmp_path):
    torch.manual_seed(0)
    model = mnist.MnistClassifier()
    state = mnist.classifier_state(model, {"accuracy": 0.5})
    assert state["name"] == "mnist-digits-classifier" and state["accuracy"] == 0.5
    assert state["config"] == asdict(model.config)
    assert set(state["state_dict"]) == set(model.state_dict())
    for k, v in model.state_dict().items():
        got = state["state_dict"][k]
        assert got.dtype == (torch.float16 if v.is_floating_point() else v.dtype)
        assert torch.equal(got, v.half() if v.is_floating_point() else v)
    torch.save(state, tmp_path / "c.pt")
    loaded = mnist.load_classifier(tmp_path / "c.pt")
    x = torch.rand(3, 3, 28, 28)
    assert torch.allclose(loaded(x), model.eval()(x), atol=5e-2)


def test_task_registry_is_the_one_mpq_reads():
    assert mpq.get_task.__module__ == "lcodec.eval.mpq"
    assert {"imagenet-classifier", "librispeech-asr", "mnist-digits"} <= set(mpq.list_tasks())
    assert torchvision_imagenet.ImagenetClassifierTask.higher_is_better
    assert not torchaudio_asr.LibrispeechAsrTask.higher_is_better


def _idx(path, magic, shape, payload=None, raw=False):
    """An idx file written from the format's definition: big-endian magic, big-endian sizes, bytes."""
    import gzip

    body = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    data = bytes(payload) if payload is not None else bytes(i % 251 for i in range(int(np.prod(shape))))
    path.write_bytes(body + data if raw else gzip.compress(body + data))
    return data


def test_mnist_idx_files_are_read_big_endian_and_checked(tmp_path):
    data = _idx(tmp_path / "a.gz", 2051, (2, 3, 300))  # sizes above 255: byte order matters
    got = mnist._read_idx(tmp_path / "a.gz", 2051, 3)
    assert got.shape == (2, 3, 300) and got.dtype == np.uint8 and got.tobytes() == data
    _idx(tmp_path / "b.gz", 2049, (5,), payload=[9, 8, 7, 6, 5])
    assert mnist._read_idx(tmp_path / "b.gz", 2049, 1).tolist() == [9, 8, 7, 6, 5]
    _idx(tmp_path / "magic.gz", 2049, (2, 3, 300))
    with pytest.raises(InputError, match="magic.gz: not an idx file with magic 2051"):
        mnist._read_idx(tmp_path / "magic.gz", 2051, 3)
    (tmp_path / "short.gz").write_bytes(__import__("gzip").compress((2051).to_bytes(4, "big") + b"\0\0\0\2"))
    with pytest.raises(InputError, match="not an idx file"):  # the header itself is cut short
        mnist._read_idx(tmp_path / "short.gz", 2051, 3)
    _idx(tmp_path / "empty.gz", 2051, (0, 28, 28))  # a header and no digits: a valid, empty file
    assert mnist._read_idx(tmp_path / "empty.gz", 2051, 3).shape == (0, 28, 28)
    _idx(tmp_path / "cut.gz", 2051, (2, 3, 300), payload=b"\0" * 1799)
    with pytest.raises(InputError, match=r"cut.gz: header declares \(2, 3, 300\) but holds 1799 bytes"):
        mnist._read_idx(tmp_path / "cut.gz", 2051, 3)
    _idx(tmp_path / "plain.gz", 2049, (5,), raw=True)
    with pytest.raises(InputError, match="plain.gz: not a readable gzip file"):
        mnist._read_idx(tmp_path / "plain.gz", 2049, 1)


def test_load_mnist_checks_the_pair_and_the_split(tmp_path, monkeypatch):
    images, labels = mnist.MNIST_FILES
    with pytest.raises(InputError, match=rf"expected {images} and {labels} in {tmp_path}"):
        mnist.load_mnist(tmp_path)
    n = mnist.EVAL_SPLIT.stop
    _idx(tmp_path / images, 2051, (n, 28, 28))
    _idx(tmp_path / labels, 2049, (n,), payload=[i % 10 for i in range(n)])
    arrays = mnist.load_mnist(tmp_path)
    assert arrays.images.shape == (n, 28, 28) and arrays.labels.dtype == np.int64
    assert arrays.labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    monkeypatch.setattr(mnist, "default_data_dir", lambda: tmp_path)
    assert np.array_equal(mnist.load_mnist().labels, arrays.labels)  # no folder: the default one
    _idx(tmp_path / labels, 2049, (n - 1,))
    with pytest.raises(InputError, match=r"do not match labels"):
        mnist.load_mnist(tmp_path)
    _idx(tmp_path / images, 2051, (n - 1, 28, 28))
    with pytest.raises(InputError, match=rf"{n - 1} digits, the split needs {n}"):
        mnist.load_mnist(tmp_path)
    _idx(tmp_path / images, 2051, (n - 1, 28, 27))
    with pytest.raises(InputError, match=r"do not match labels"):
        mnist.load_mnist(tmp_path)


def test_edit_distance_and_wer_edge_cases():
    from lcodec.eval.tasks.torchaudio_asr import edit_distance, word_error_rate

    assert edit_distance(["A"], []) == 1 and edit_distance([], ["A", "B"]) == 2
    assert edit_distance(["A", "B", "C"], ["A", "C"]) == 1 and edit_distance(["A", "B"], ["B", "A"]) == 2
    assert edit_distance(list("KITTEN"), list("SITTING")) == 3  # the textbook pair
    assert word_error_rate(["HELLO"], ["HELLO"]) == 0.0 and word_error_rate(["HELLO"], [""]) == 1.0
    assert word_error_rate(["ONE"], ["TWO THREE"]) == 2.0  # insertions count: WER may exceed 1
    with pytest.raises(InputError, match="hold no words"):
        word_error_rate(["", " "], ["A", "B"])
    with pytest.raises(InputError, match="2 references but 1 hypotheses"):
        word_error_rate(["A", "B"], ["A"])


class _Echo(torch.nn.Module):
    """A stand-in classifier that records what it is shown and predicts digit 3."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return torch.nn.functional.one_hot(torch.full((x.shape[0],), 3), 10).float()


def _digits_task(labels):
    task = object.__new__(mnist.MnistDigitsTask)
    n = len(labels)
    task._images = (np.arange(n * 28 * 28) % 256).astype(np.uint8).reshape(n, 28, 28)
    task._labels = torch.tensor(labels)
    task._model = _Echo()
    return task


def test_mnist_task_items_are_the_eval_split_as_gray_rgb():
    task = _digits_task([3, 1, 3])
    items = task.items()
    assert [i.name for i in items] == [f"mnist-t10k-{mnist.EVAL_SPLIT.start + i:05d}" for i in range(3)]
    for i, item in enumerate(items):
        assert item.x.shape == (1, 3, 28, 28) and item.modality == "image"
        want = torch.from_numpy(task._images[i].astype(np.float32) / 255)
        assert all(torch.equal(item.x[0, c], want) for c in range(3))
    assert len(task.items(2)) == 2


def test_mnist_task_scores_the_stored_8bit_image_and_checks_shapes():
    task = _digits_task([3, 1, 3, 3])
    x = torch.linspace(-0.5, 1.5, 28 * 28).reshape(1, 1, 28, 28)
    score = task.score([x, x, x])
    assert score == pytest.approx(2 / 3)  # the stand-in says 3: right for items 0 and 2
    shown = task._model.seen[-1]
    assert torch.equal(shown[0], torch.round(x[0].clamp(0, 1) * 255) / 255)  # clamped, on the 8-bit grid
    assert task.score([x]) == 1.0
    for bad in ([], [x] * 5):
        with pytest.raises(InputError, match=r"scores 1 to 4 images, got"):
            task.score(bad)
    for shape in ((28, 28), (2, 1, 28, 28), (1, 1, 28, 27), (1, 1, 27, 28)):
        with pytest.raises(InputError, match=r"scores \(1, C, 28, 28\) images"):
            task.score([torch.zeros(shape)])


def test_the_shipped_classifier_is_checked_against_the_manifest(tmp_path, monkeypatch):
    import json
    import shutil

    shutil.copy(mnist._WEIGHTS_DIR / mnist.WEIGHTS_FILE, tmp_path / mnist.WEIGHTS_FILE)
    (tmp_path / "manifest.json").write_text(
        (mnist._WEIGHTS_DIR / "manifest.json").read_text())
    monkeypatch.setattr(mnist, "_WEIGHTS_DIR", tmp_path)
    assert isinstance(mnist.load_classifier(), mnist.MnistClassifier)
    with open(tmp_path / mnist.WEIGHTS_FILE, "ab") as f:
        f.write(b"\0")  # one byte more: still loads with torch, but it is not the shipped file
    with pytest.raises(ModelError, match="does not match its sha256"):
        mnist.load_classifier()
    (tmp_path / "manifest.json").write_text(json.dumps({}))
    with pytest.raises(ModelError, match="does not match its sha256"):
        mnist.load_classifier()
    (tmp_path / mnist.WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError, match="are missing; train them with"):
        mnist.load_classifier()


def test_a_classifier_file_must_hold_the_named_classifier(tmp_path):
    torch.save({"name": "something-else", "config": {}, "state_dict": {}}, tmp_path / "a.pt")
    with pytest.raises(ModelError, match="does not hold an mnist-digits-classifier"):
        mnist.load_classifier(tmp_path / "a.pt")
    torch.save([1, 2], tmp_path / "b.pt")
    with pytest.raises(ModelError, match="does not hold an mnist-digits-classifier"):
        mnist.load_classifier(tmp_path / "b.pt")
    state = mnist.classifier_state(mnist.MnistClassifier(), {})
    state["config"] = {"channels": [8, 16], "hidden": 128}  # weights of (32, 64) channels
    torch.save(state, tmp_path / "c.pt")
    with pytest.raises(ModelError, match="do not fit an MnistClassifier"):
        mnist.load_classifier(tmp_path / "c.pt")
