"""Compressed-domain learning on MNIST (issue 31): an MLP on pixels, on each shipped image
codec's latents (raw, and standardised with the codec's shipped statistics), and on the
codec's reconstructions; plus what building and reading a LatentDataset costs.

Split as in the issue: MNIST test digits 0-8,999 train, 9,000-9,999 evaluate. Model:
flatten -> linear 256, ReLU -> linear 10; 10 epochs, Adam 1e-3, batch 128; 3 seeds. Raw latents
and pixels get one global standardisation (mean and deviation of the training tensor), so the
raw column shows the representation without per-channel scaling.

    python benchmarks/latent_mnist.py [--out docs/results/latent_mnist] [--codec NAME ...] [--seeds 3] [--size 28]

``--size S`` enlarges the digits to S x S (bilinear, rounded to 8 bits) before the codecs see them
(the pixel baseline stays at 28 x 28): a codec that downsamples 16x keeps only 2 x 2 latent
positions of a 28 x 28 digit.

Writes OUT/results.json and OUT/results.md (codecs measured in an earlier run into the same OUT are
kept); timings on this machine's threads.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
TRAIN, TEST = range(0, 9000), range(9000, 10000)


class Digits(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, split: range, size: int = 28) -> None:
        self.x = torch.from_numpy(images[split.start : split.stop]).unsqueeze(1)  # uint8 (N, 1, 28, 28)
        if size != 28:
            big = nn.functional.interpolate(self.x.float(), size=(size, size), mode="bilinear", align_corners=False)
            self.x = big.round().clamp(0, 255).to(torch.uint8)
        self.y = torch.from_numpy(labels[split.start : split.stop].astype(np.int64))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def train_mlp(x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor, seed: int,
              epochs: int = 10) -> tuple[float, float]:
    """-> (test accuracy, seconds per epoch)."""
    torch.manual_seed(seed)
    x, xt = x.flatten(1), xt.flatten(1)
    model = nn.Sequential(nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(128):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    per_epoch = (time.perf_counter() - t0) / epochs
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    return acc, per_epoch


def global_standard(x: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m, s = x.mean(), x.std().clamp_min(1e-6)
    return (x - m) / s, (xt - m) / s


def scores(x, y, xt, yt, seeds: int) -> dict[str, object]:
    runs = [train_mlp(x, y, xt, yt, seed) for seed in range(seeds)]
    accs = [a for a, _ in runs]
    return {"accuracy_mean": round(float(np.mean(accs)), 4), "accuracy_std": round(float(np.std(accs)), 4),
            "accuracies": [round(a, 4) for a in accs], "numbers_per_sample": int(x[0].numel()),
            "epoch_seconds": round(float(np.mean([e for _, e in runs])), 3)}


def loader_rate(ds, workers: int, limit: int = 4000, shuffle: bool = True) -> float:
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(min(limit, len(ds)))), batch_size=128,
                                         num_workers=workers, shuffle=shuffle)
    t0 = time.perf_counter()
    n = sum(b[0].shape[0] for b in loader)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    import lcodec
    from lcodec.data import LatentDataset, latent_stats
    from lcodec.eval.tasks.mnist import load_mnist
    from lcodec.registry import get_spec
    from lcodec.train.latent_stats import codecs_with_latents

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "latent_mnist")
    p.add_argument("--codec", action="append", default=None)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--cache", type=Path, default=None, help="latent cache folder (default: a temporary one)")
    p.add_argument("--size", type=int, default=28, help="digits enlarged to this size for the codecs")
    args = p.parse_args(argv)
    mnist = load_mnist(ROOT.parent / "shared" / "data" / "mnist")
    train, test = Digits(mnist.images, mnist.labels, TRAIN), Digits(mnist.images, mnist.labels, TEST)
    x = train.x.float() / 255
    xt = test.x.float() / 255
    out_pixels = x, xt  # the pixel baseline: 28 x 28 always
    if args.size != 28:
        train = Digits(mnist.images, mnist.labels, TRAIN, args.size)
        test = Digits(mnist.images, mnist.labels, TEST, args.size)
        x, xt = train.x.float() / 255, test.x.float() / 255
    previous = json.loads((args.out / "results.json").read_text()) if (args.out / "results.json").is_file() else {}
    out: dict[str, object] = {k: v for k, v in previous.items() if isinstance(v, dict) and "latents" in v}
    out |= {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
                              "split": "MNIST t10k 0-8999 train, 9000-9999 test", "seeds": args.seeds,
                              "codec_input_size": args.size}
    px, pxt = global_standard(*out_pixels)
    out["pixels"] = scores(px, train.y, pxt, test.y, args.seeds)
    print("pixels", out["pixels"], flush=True)
    # loader throughput for pixels: from a uint8 tensor and from PNG files
    tensor_ds = torch.utils.data.TensorDataset(train.x, train.y)
    rates = {"pixels uint8 tensor, shuffled, 0 workers": loader_rate(tensor_ds, 0)}
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        files = []
        for i in range(2000):
            f = Path(tmp) / f"{i}.png"
            Image.fromarray(train.x[i, 0].numpy()).save(f)
            files.append(f)

        class Pngs(torch.utils.data.Dataset):
            def __len__(self):
                return len(files)

            def __getitem__(self, i):
                return torch.from_numpy(np.array(Image.open(files[i]))).float().div(255)[None], int(train.y[i])

        rates["pixels from PNG, shuffled, 0 workers"] = loader_rate(Pngs(), 0)
        rates["pixels from PNG, shuffled, 2 workers"] = loader_rate(Pngs(), 2)
    out["loader_items_per_second"] = {k: round(v) for k, v in rates.items()}
    cache_root = Path(args.cache or tempfile.mkdtemp(prefix="latent-mnist-"))
    for name in args.codec or codecs_with_latents():
        q = get_spec(name).default_quality
        codec = lcodec.load(name, q)
        t0 = time.perf_counter()
        with torch.no_grad():
            batched = torch.cat([codec.encode_latents(x[i : i + 256]) for i in range(0, len(x), 256)])
        t_batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = LatentDataset(train, codec, cache_root / name / "train", progress=False)
        t_build = time.perf_counter() - t0
        ds_test = LatentDataset(test, codec, cache_root / name / "test", progress=False)
        t0 = time.perf_counter()
        z, y = ds.tensors()
        t_tensors = time.perf_counter() - t0
        zt, yt = ds_test.tensors()
        assert torch.equal(z, batched.float()), "the cache must serve exactly the batched encoder's latents"
        mean, scale = latent_stats(codec)  # what normalize=True applies on reading (tests/test_latent_dataset.py)
        zn, znt = ((t - mean.view(1, -1, 1, 1)) / scale.view(1, -1, 1, 1) for t in (z, zt))
        with torch.no_grad():
            size = (args.size, args.size)
            rec = torch.cat([codec.decode_latents(z[i : i + 256], size=size) for i in range(0, len(z), 256)])
            rect = torch.cat([codec.decode_latents(zt[i : i + 256], size=size) for i in range(0, len(zt), 256)])
        lean = LatentDataset(train, codec, cache_root / name / "train", progress=False, in_memory=False)
        row = {
            "quality": q, "weights_hash": codec.weights_hash.hex()[:12], "latent_shape": list(z.shape[1:]),
            "build_seconds": round(t_build, 2), "batched_encode_latents_seconds": round(t_batched, 2),
            "build_over_batched": round(t_build / t_batched, 2),
            "bytes_on_disk": ds.bytes_on_disk + ds_test.bytes_on_disk,
            "bytes_per_digit": round((ds.bytes_on_disk + ds_test.bytes_on_disk) / 10000, 1),
            "tensors_seconds": round(t_tensors, 2),
            "loader_items_per_second": {"in memory, shuffled, 0 workers": round(loader_rate(ds, 0)),
                                        "in memory, shuffled, 2 workers": round(loader_rate(ds, 2)),
                                        "one batch held, in order, 0 workers": round(loader_rate(lean, 0, 1024, False)),
                                        "one batch held, in order, 2 workers": round(loader_rate(lean, 2, 1024, False))},
            "latents": scores(*global_standard(z, zt)[:1], y, global_standard(z, zt)[1], yt, args.seeds),
            "latents_normalized": scores(zn, y, znt, yt, args.seeds),
            "reconstructions": scores(*global_standard(rec.mean(1), rect.mean(1))[:1], y,
                                      global_standard(rec.mean(1), rect.mean(1))[1], yt, args.seeds),
        }
        out[name] = row
        print(name, json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(out, indent=1) + "\n")
    px = out["pixels"]["accuracy_mean"]
    lines = [f"# MNIST MLP on pixels vs codec latents ({out['split']}; {args.seeds} seeds; {out['machine']})", "",
             f"`python benchmarks/latent_mnist.py --out {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
             f"{f' --size {args.size}' if args.size != 28 else ''}`"
             + (f" (the codecs see the digits enlarged to {args.size} x {args.size}, bilinear)" if args.size != 28 else ""), "",
             f"Pixels (784 numbers): **{px:.4f}** +- {out['pixels']['accuracy_std']:.4f}", "",
             "| codec (default q) | latent shape | latents | latents, normalize=True | reconstructions | "
             "normalized - pixels | build s (x batched encode_latents) | bytes/digit |",
             "|---|---|---|---|---|---|---|---|"]
    shown = [n for n in codecs_with_latents() if n in out]
    for name in shown:
        r = out[name]
        f = lambda k: f"{r[k]['accuracy_mean']:.4f} +- {r[k]['accuracy_std']:.4f}"  # noqa: E731
        lines.append(f"| {name} q{r['quality']} | {'x'.join(map(str, r['latent_shape']))} | {f('latents')} | "
                     f"{f('latents_normalized')} | {f('reconstructions')} | "
                     f"{100 * (r['latents_normalized']['accuracy_mean'] - px):+.1f} pt | "
                     f"{r['build_seconds']:.1f} ({r['build_over_batched']:.1f}x) | {r['bytes_per_digit']} |")
    lines += ["", "Loader throughput (items/s, batch 128): " + ", ".join(f"{k}: {v}" for k, v in
                                                                      out["loader_items_per_second"].items())]
    for name in shown:
        lines.append(f"- {name}: " + ", ".join(f"{k}: {v}" for k, v in out[name]["loader_items_per_second"].items()))
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
