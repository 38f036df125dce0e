"""Recipe that reproduces the shipped ``mnist-digits-classifier.pt`` (the MPQ task model).

Trains ``MnistClassifier`` on MNIST test digits 0-7,999 (the 60k training set is not
available to this project) and reports top-1 accuracy on digits 8,000-9,999, the split
the ``mnist-digits`` MPQ task evaluates. About a minute on one CPU core::

    OMP_NUM_THREADS=1 python -m lcodec.train.recipes.mnist_classifier \\
        --data ../shared/data/mnist --out lcodec/weights/mnist-digits-classifier.pt
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from lcodec.eval.tasks.mnist import (
    EVAL_SPLIT,
    TRAIN_SPLIT,
    MnistClassifier,
    MnistClassifierConfig,
    accuracy,
    classifier_state,
    load_mnist,
)

__all__ = ["MnistClassifierRecipe", "TrainedClassifier", "RECIPE", "train_mnist_classifier", "main"]


@dataclass(frozen=True)
class MnistClassifierRecipe:
    epochs: int = 10
    lr: float = 2e-3  # Adam, cosine-decayed to zero over the run
    seed: int = 0
    batch_size: int = 64
    weight_decay: float = 1e-4
    max_shift: int = 2  # random translation (pixels) as augmentation
    channels: tuple[int, int] = (32, 64)
    hidden: int = 128


RECIPE = MnistClassifierRecipe()


@dataclass(frozen=True)
class TrainedClassifier:
    path: Path
    sha256: str
    heldout_accuracy: float  # top-1 on the evaluation split (digits 8,000-9,999)
    seconds: float


def _shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (zero fill).  x: (B, 1, 28, 28)."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator)
    return torch.stack([padded[i, :, dy[i]: dy[i] + h, dx[i]: dx[i] + w] for i in range(b)])


def train_mnist_classifier(
    recipe: MnistClassifierRecipe, data_dir: str | Path | None, out_path: str | Path, progress: bool = True
) -> TrainedClassifier:
    """Train on the classifier split, write the weights (state dict + config) to ``out_path``.

    ``out_path``'s sha256 is recorded in ``manifest.json`` beside it (read-modify-write).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    mnist = load_mnist(data_dir)
    x_train = torch.from_numpy(mnist.images[TRAIN_SPLIT.start: TRAIN_SPLIT.stop]).float().div(255).unsqueeze(1)
    y_train = torch.from_numpy(mnist.labels[TRAIN_SPLIT.start: TRAIN_SPLIT.stop])
    x_eval = torch.from_numpy(mnist.images[EVAL_SPLIT.start: EVAL_SPLIT.stop]).float().div(255).unsqueeze(1)
    y_eval = torch.from_numpy(mnist.labels[EVAL_SPLIT.start: EVAL_SPLIT.stop])

    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    model = MnistClassifier(MnistClassifierConfig(channels=recipe.channels, hidden=recipe.hidden))
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = -(-len(x_train) // recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch, pct_start=0.1
    )
    bar = tqdm(total=recipe.epochs * steps_per_epoch, disable=not progress, desc="mnist classifier")
    for _ in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), recipe.batch_size):
            idx = order[i: i + recipe.batch_size]
            loss = F.cross_entropy(model(_shift(x_train[idx], recipe.max_shift, generator)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        model.eval()
        bar.set_postfix(heldout=f"{accuracy(model, x_eval, y_eval):.4f}")
    bar.close()
    heldout = accuracy(model, x_eval, y_eval)

    out_path = Path(out_path)
    from lcodec.train.loop import record_in_manifest
    from lcodec.train.pack_weights import save_deflated

    save_deflated(classifier_state(model, {"recipe": dataclasses.asdict(recipe), "heldout_accuracy": heldout}), out_path)
    record_in_manifest(out_path)
    sha = hashlib.sha256(out_path.read_bytes()).hexdigest()
    return TrainedClassifier(out_path, sha, heldout, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """``python -m lcodec.train.recipes.mnist_classifier --data DIR --out FILE``."""
    p = argparse.ArgumentParser(description="train the mnist-digits MPQ classifier")
    p.add_argument("--data", type=Path, default=None, help="folder with the MNIST t10k idx gz files")
    p.add_argument("--out", type=Path, required=True, help="weights file to write")
    args = p.parse_args(argv)
    result = train_mnist_classifier(RECIPE, args.data, args.out)
    print(f"{result.path}: held-out top-1 {result.heldout_accuracy:.4f}, "
          f"sha256 {result.sha256}, {result.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
