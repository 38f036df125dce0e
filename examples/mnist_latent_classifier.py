"""Train one small MLP family on MNIST pixels and on walloc-rgb latents, and compare.

Compressed-domain learning (Jacobellis & Yadwadkar, "Learned Compression for Compressed
Learning", 2024): the classifier reads the codec's integer latents straight from the
cached streams, without decoding pixels. Both runs use the same recipe and the same
model family, only the input differs:

    pixels:  digit (1, 28, 28) ─ standardise ─ flatten 784 ─ linear 256, ReLU ─ linear 10
    latents: digit ─ walloc-rgb (padded to 32x32) ─ (64, 2, 2) ─ standardise per channel
                   ─ flatten 256 ─ linear 256, ReLU ─ linear 10

Split as in docs/mpq.md: MNIST test digits 0-7,999 train, 8,000-9,999 evaluate. Writes
the table to stdout and docs/results/mnist_latent_classifier.json::

    OMP_NUM_THREADS=1 python examples/mnist_latent_classifier.py --cache runs/mnist_latents
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

import lcodec
from lcodec.data import LatentDataset
from lcodec.bitstream.container import read_container
from lcodec.eval.tasks.mnist import EVAL_SPLIT, MNIST_FILES, TRAIN_SPLIT, MnistArrays, default_data_dir, load_mnist

__all__ = ["MnistDigits", "MlpClassifier", "Recipe", "RunResult", "Report", "train_classifier", "run", "main"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    """Shared by both runs."""

    epochs: int = 15
    hidden: int = 256
    lr: float = 2e-3  # Adam, one-cycle schedule
    weight_decay: float = 1e-4
    batch_size: int = 64
    seed: int = 0


@dataclass(frozen=True)
class RunResult:
    representation: str  # "pixels" or "latents"
    input_shape: tuple[int, ...]  # per digit
    model: str
    parameters: int
    macs: int  # multiply-accumulates per digit (linear layers)
    encode_seconds: float  # latents: building the stream caches (0 when reused); pixels: 0
    load_seconds: float  # all 10,000 digits to one float tensor (latents: decoded from the streams)
    train_seconds: float
    test_accuracy: float  # top-1 on the 2,000 evaluation digits
    storage_bytes: int  # all 10,000 digits: raw uint8 pixels, or the stream files' sizes
    header_bytes: int  # of storage_bytes, container headers (one per stream)
    storage_bits_per_pixel: float


@dataclass(frozen=True)
class Report:
    codec: str
    quality: int
    weights_hash: str
    train_items: int
    eval_items: int
    recipe: Recipe
    threads: int
    items_encoded: int  # 0 when the latent caches were reused
    cache_allocated_bytes: int  # filesystem blocks used by the stream files (one file per digit)
    mnist_idx_gz_bytes: int  # reference: the whole test set's images as one gzip file
    runs: tuple[RunResult, ...]


class MnistDigits(Dataset):
    """Digits ``indices`` of the MNIST arrays as ((1, 28, 28) float in [0, 1], int label)."""

    def __init__(self, mnist: MnistArrays, indices: range) -> None:
        self.images = mnist.images[indices.start: indices.stop]  # (N, 28, 28) uint8
        self.labels = mnist.labels[indices.start: indices.stop]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.images[index]).float().div(255).unsqueeze(0)  # (1, 28, 28)
        return image, int(self.labels[index])


class MlpClassifier(nn.Module):
    """x (B, C, h, w) ─ standardise per channel ─ flatten ─ linear, ReLU ─ linear ─ (B, 10) logits."""

    def __init__(self, train_x: torch.Tensor, hidden: int) -> None:
        super().__init__()
        dims = (0, *range(2, train_x.dim()))
        self.register_buffer("mean", train_x.mean(dim=dims, keepdim=True)[0])  # (C, 1, 1)
        self.register_buffer("std", train_x.std(dim=dims, keepdim=True)[0].clamp_min(1e-6))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(train_x[0].numel(), hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((x - self.mean) / self.std)

    @property
    def macs(self) -> int:
        return sum(m.in_features * m.out_features for m in self.modules() if isinstance(m, nn.Linear))


def train_classifier(recipe: Recipe, x: torch.Tensor, y: torch.Tensor) -> tuple[MlpClassifier, float]:
    """Fit an ``MlpClassifier`` on (N, C, h, w) inputs; returns it and the training seconds."""
    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    model = MlpClassifier(x, recipe.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * -(-len(x) // recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps, pct_start=0.1)
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(order), recipe.batch_size):
            idx = order[i: i + recipe.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval(), time.perf_counter() - start


@torch.inference_mode()
def top1(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(dim=1) == y).float().mean())


def stacked(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All items of a (tensor, int) dataset as (N, C, h, w) and (N,)."""
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([x for x, _ in items]), torch.tensor([label for _, label in items])


def run(
    recipe: Recipe,
    name: str,
    train: Dataset,
    test: Dataset,
    encode_seconds: float,
    storage_bytes: int,
    header_bytes: int,
) -> RunResult:
    """Load both splits into tensors, train on one, score on the other."""
    start = time.perf_counter()
    x_train, y_train = stacked(train)  # (8000, C, h, w)
    x_test, y_test = stacked(test)  # (2000, C, h, w)
    load_seconds = time.perf_counter() - start
    model, train_seconds = train_classifier(recipe, x_train, y_train)
    pixels = (len(train) + len(test)) * 28 * 28
    return RunResult(
        representation=name,
        input_shape=tuple(x_train.shape[1:]),
        model=f"MLP {x_train[0].numel()}-{recipe.hidden}-10",
        parameters=sum(p.numel() for p in model.parameters()),
        macs=model.macs,
        encode_seconds=round(encode_seconds, 2),
        load_seconds=round(load_seconds, 2),
        train_seconds=round(train_seconds, 2),
        test_accuracy=round(top1(model, x_test, y_test), 4),
        storage_bytes=storage_bytes,
        header_bytes=header_bytes,
        storage_bits_per_pixel=round(8 * storage_bytes / pixels, 4),
    )


def table(report: Report) -> str:
    rows = [
        "| input | shape | model | params | MACs/digit | encode s | load s | train s | top-1 "
        "| storage, 10k digits | bpp |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.runs:
        rows.append(
            f"| {r.representation} | {'x'.join(map(str, r.input_shape))} | {r.model} | {r.parameters:,} | "
            f"{r.macs:,} | {r.encode_seconds:.1f} | {r.load_seconds:.1f} | {r.train_seconds:.1f} | "
            f"{r.test_accuracy:.4f} | {r.storage_bytes:,} B | {r.storage_bits_per_pixel:.3f} |"
        )
    return "\n".join(rows)


def container_header_bytes(ds: LatentDataset) -> int:
    """Bytes of container headers over all of the dataset's streams (one container per batch)."""
    total = 0
    for first in sorted({b[3] for b in ds.manifest.batches}):
        data = ds.stream(first)
        total += len(data) - sum(len(s) for s in read_container(data).sections)
    return total


def allocated_bytes(caches: tuple[LatentDataset, ...]) -> int:
    """Filesystem blocks taken by the shard files."""
    return sum((ds.cache_dir / name).stat().st_blocks * 512 for ds in caches for name, _ in ds.manifest.shards)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="MNIST classifier on pixels vs walloc-rgb latents")
    p.add_argument("--data", type=Path, default=None, help="folder with the MNIST t10k idx gz files")
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "mnist_latents", help="latent cache folder")
    p.add_argument("--epochs", type=int, default=Recipe.epochs)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (timings in docs use 1)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "mnist_latent_classifier.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = Recipe(epochs=args.epochs)
    data_dir = default_data_dir() if args.data is None else args.data
    mnist = load_mnist(data_dir)
    train, test = MnistDigits(mnist, TRAIN_SPLIT), MnistDigits(mnist, EVAL_SPLIT)
    pixels = run(recipe, "pixels", train, test, 0.0, (len(train) + len(test)) * 28 * 28, 0)

    codec = lcodec.load("walloc-rgb")
    start = time.perf_counter()
    caches = (LatentDataset(train, codec, args.cache / "train"), LatentDataset(test, codec, args.cache / "eval"))
    encode_seconds = time.perf_counter() - start
    stream_bytes = sum(ds.bytes_on_disk for ds in caches)
    latents = run(recipe, "latents", *caches, encode_seconds, stream_bytes, sum(container_header_bytes(ds) for ds in caches))

    report = Report(
        codec=codec.name,
        quality=codec.quality,
        weights_hash=codec.weights_hash.hex(),
        train_items=len(train),
        eval_items=len(test),
        recipe=recipe,
        threads=args.threads,
        items_encoded=sum(ds.encoded_items for ds in caches),
        cache_allocated_bytes=allocated_bytes(caches),
        mnist_idx_gz_bytes=(data_dir / MNIST_FILES[0]).stat().st_size,
        runs=(pixels, latents),
    )
    print(table(report))
    print(
        f"{codec.name} q{codec.quality} weights {report.weights_hash[:12]}, {report.items_encoded} digits encoded "
        f"this run; headers {latents.header_bytes:,} B of the streams; stream files occupy "
        f"{report.cache_allocated_bytes:,} B of filesystem blocks; {MNIST_FILES[0]}: {report.mnist_idx_gz_bytes:,} B"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
