"""Does ``LatentDataset(workers=N)`` pay? Build time of a latent cache of MNIST's first 9,000
digits with one process and with 2 forked workers, against one batched ``encode_latents`` over
the same digits (issue 31).

    python benchmarks/latent_workers.py [--codec walloc-rgb --codec walloc-rgb-rd] [--workers 2]

Prints one line per codec and worker count (seconds, and the ratio to ``encode_latents``); the
torch threads of the parent are 2.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import lcodec
from lcodec.data import LatentDataset
from lcodec.eval.tasks.mnist import load_mnist

ROOT = Path(__file__).resolve().parents[1]


class Digits(torch.utils.data.Dataset):
    def __init__(self, images, labels) -> None:
        self.x, self.y = torch.from_numpy(images[:9000]).unsqueeze(1), labels[:9000]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codec", action="append", default=None)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    mnist = load_mnist(ROOT.parent / "shared" / "data" / "mnist")
    digits = Digits(mnist.images, mnist.labels)
    for name in args.codec or ["walloc-rgb", "walloc-rgb-rd"]:
        codec = lcodec.load(name)
        x = digits.x.float().div(255).expand(-1, 3, -1, -1)
        codec.encode_latents(x[:64])  # warm
        t0 = time.perf_counter()
        codec.encode_latents(x)
        once = time.perf_counter() - t0
        for workers in (1, args.workers):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                LatentDataset(digits, codec, tmp, progress=False, workers=workers)
                build = time.perf_counter() - t0
            print(f"{name}: encode_latents {once:.2f} s; LatentDataset workers={workers}: {build:.2f} s "
                  f"({build / once:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
