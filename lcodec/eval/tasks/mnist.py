"""``mnist-digits``: a small CNN classifying MNIST test digits, scored by top-1 accuracy.

Only the MNIST *test* set (10,000 digits) is available to this project, so it is split
deterministically by position in ``t10k-images-idx3-ubyte.gz``: digits 0-7,999 train the
classifier (``lcodec.train.recipes.mnist_classifier``), digits 8,000-9,999 are the
evaluation split the codecs see. Digits go to codecs as RGB (1, 3, 28, 28) with the gray
value replicated; the classifier turns them back to gray (mean of channels).
"""
from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from lcodec.errors import InputError, ModelError
from lcodec.eval.adapters import MediaItem
from lcodec.eval.mpq import Task, check_limit, register_task

__all__ = [
    "MNIST_FILES",
    "TRAIN_SPLIT",
    "EVAL_SPLIT",
    "WEIGHTS_FILE",
    "MnistArrays",
    "MnistClassifierConfig",
    "MnistClassifier",
    "MnistDigitsTask",
    "default_data_dir",
    "load_mnist",
    "load_classifier",
    "classifier_state",
    "accuracy",
]

MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
TRAIN_SPLIT = range(0, 8000)  # trains the classifier
EVAL_SPLIT = range(8000, 10000)  # what MPQ evaluates
WEIGHTS_FILE = "mnist-digits-classifier.pt"
_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
_MEAN, _STD = 0.1307, 0.3081  # the usual MNIST normalisation


def default_data_dir() -> Path:
    """``../shared/data/mnist`` beside a source checkout of lcodec."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mnist"


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class MnistArrays:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable gzip file ({exc})") from None
    header = 4 * (1 + ndim)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise InputError(f"{path}: not an idx file with magic {magic}")
    shape = tuple(int.from_bytes(raw[4 * (i + 1): 4 * (i + 2)], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise InputError(f"{path}: header declares {shape} but holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def load_mnist(data_dir: str | Path | None = None) -> MnistArrays:
    """The 10,000 MNIST test digits and labels from the two idx gz files in ``data_dir``."""
    folder = default_data_dir() if data_dir is None else Path(data_dir)
    paths = [folder / name for name in MNIST_FILES]
    if not all(p.is_file() for p in paths):
        raise InputError(
            f"MNIST test set not found: expected {' and '.join(MNIST_FILES)} in {folder}; "
            "pass the folder that holds them (--data DIR)"
        )
    images = _read_idx(paths[0], _IMAGES_MAGIC, 3)
    labels = _read_idx(paths[1], _LABELS_MAGIC, 1).astype(np.int64)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise InputError(f"{folder}: images {images.shape} do not match labels {labels.shape}")
    if images.shape[0] < EVAL_SPLIT.stop:
        raise InputError(f"{folder}: {images.shape[0]} digits, the split needs {EVAL_SPLIT.stop}")
    return MnistArrays(images, labels)


# -------------------------------------------------------------------------- model
@dataclass(frozen=True)
class MnistClassifierConfig:
    channels: tuple[int, int] = (32, 64)
    hidden: int = 128


class MnistClassifier(nn.Module):
    """Two 3x3 conv blocks and two linear layers; input gray or RGB in [0, 1].

    x (B, C, 28, 28) ─ mean over C ─ normalise ─ conv 3x3, ReLU, maxpool  (B, c1, 14, 14)
                                               ─ conv 3x3, ReLU, maxpool  (B, c2, 7, 7)
                                               ─ linear, ReLU ─ linear   (B, 10) logits
    """

    def __init__(self, config: MnistClassifierConfig = MnistClassifierConfig()) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 7 * 7, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = x.mean(dim=1, keepdim=True)  # (B, 1, 28, 28)
        return self.head(self.features((gray - _MEAN) / _STD))


def _manifest_sha256(name: str) -> str | None:
    try:
        return json.loads((_WEIGHTS_DIR / "manifest.json").read_text()).get(name)
    except (OSError, ValueError):
        return None


def load_classifier(path: str | Path | None = None) -> MnistClassifier:
    """The shipped classifier (checked against ``weights/manifest.json``), or one at ``path``."""
    shipped = path is None
    path = _WEIGHTS_DIR / WEIGHTS_FILE if shipped else Path(path)
    if not path.is_file():
        raise ModelError(
            f"classifier weights {path} are missing; train them with "
            f"`python -m lcodec.train.recipes.mnist_classifier --data DIR --out {path}`"
        )
    if shipped:
        expected = _manifest_sha256(WEIGHTS_FILE)
        if expected is None or hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise ModelError(
                f"{path} does not match its sha256 in weights/manifest.json; the file is damaged or was replaced"
            )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("name") != "mnist-digits-classifier":
        raise ModelError(f"{path} does not hold an mnist-digits-classifier")
    try:
        config = MnistClassifierConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()})
        model = MnistClassifier(config)
        model.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"{path}: config and weights do not fit an MnistClassifier ({exc})") from None
    return model.eval()


def classifier_state(model: MnistClassifier, extra: dict[str, object]) -> dict[str, object]:
    """What the shipped weights file holds: name, config, state dict (float16: half the size; on
    the held-out digits 8,000-9,999 not one prediction changes, accuracy 0.9895 either way) and
    ``extra`` facts."""
    config = asdict(model.config)
    state = {k: v.detach().half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    return {"name": "mnist-digits-classifier", "config": config, "state_dict": state, **extra}


@torch.inference_mode()
def accuracy(model: MnistClassifier, x: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on (N, C, 28, 28) images in [0, 1]."""
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        correct += int((model(x[i: i + batch_size]).argmax(dim=1) == labels[i: i + batch_size]).sum())
    return correct / x.shape[0]


# --------------------------------------------------------------------------- task
@register_task("mnist-digits")
class MnistDigitsTask(Task):
    """Top-1 accuracy of the shipped MNIST classifier on the 2,000-digit evaluation split."""

    name = "mnist-digits"
    modality = "image"
    metric_name = "top1"
    higher_is_better = True

    def __init__(self, data: Path | None = None) -> None:
        mnist = load_mnist(data)
        self._images = mnist.images[EVAL_SPLIT.start: EVAL_SPLIT.stop]
        self._labels = torch.from_numpy(mnist.labels[EVAL_SPLIT.start: EVAL_SPLIT.stop])
        self._model = load_classifier()

    def items(self, limit: int | None = None) -> list[MediaItem]:
        n = check_limit(limit, len(self._images))
        gray = torch.from_numpy(self._images[:n].astype(np.float32) / 255.0)  # (n, 28, 28)
        return [
            MediaItem(f"mnist-t10k-{EVAL_SPLIT.start + i:05d}", "image", gray[i].expand(1, 3, 28, 28).contiguous())
            for i in range(n)
        ]

    def score(self, decoded: Sequence[torch.Tensor]) -> float:
        n = len(decoded)
        if not 0 < n <= len(self._labels):
            raise InputError(f"{self.name} scores 1 to {len(self._labels)} images, got {n}")
        if any(d.dim() != 4 or d.shape[0] != 1 or d.shape[-2:] != (28, 28) for d in decoded):
            raise InputError(f"{self.name} scores (1, C, 28, 28) images")
        x = torch.cat(list(decoded))  # (n, C, 28, 28)
        x = torch.round(x.clamp(0, 1) * 255) / 255  # as a stored 8-bit image
        return accuracy(self._model, x, self._labels[:n])

