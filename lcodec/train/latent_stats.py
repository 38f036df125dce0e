"""Per-channel latent statistics of the shipped image codecs on their training images, for
``LatentDataset(..., normalize=True)`` (written to ``lcodec/weights/latent_stats.json``):

    python -m lcodec.train.latent_stats [--codec NAME ...] [--crops 48] [--size 256]

For each codec and quality: ``encode_latents`` of ``--crops`` random ``--size`` crops of
../shared/data/images/train (seeded), then the mean and standard deviation of every channel over
all crops and positions. Channels whose deviation is below ``MIN_STD`` get ``MIN_STD``, so a
channel the training images barely use is never blown up by the standardisation. Each entry
records the weights hash it was computed with; ``latent_stats`` refuses it for other weights.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

MIN_STD = 0.05
ROOT = Path(__file__).resolve().parents[2]


def codecs_with_latents() -> list[str]:
    """Shipped image codecs whose streams carry latents (``decompress_latents``)."""
    import lcodec
    from lcodec.registry import create_codec

    names = []
    for spec in lcodec.list_codecs():
        if spec.modality == "image" and spec.weights:
            codec = create_codec(spec.name, spec.default_quality)
            if hasattr(codec, "decompress_latents") and getattr(getattr(codec, "transform", None), "in_channels", 0) == 3:
                names.append(spec.name)
    return names


def crops(folder: Path, count: int, size: int, seed: int = 0) -> torch.Tensor:
    from lcodec.io.image import read_image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    rng = np.random.default_rng(seed)
    out = []
    for k in rng.choice(len(files), size=count, replace=len(files) < count):
        x = read_image(files[k])
        h, w = x.shape[-2:]
        if min(h, w) < size:
            continue
        t, l = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        out.append(x[:, t : t + size, l : l + size])
    return torch.stack(out)


@torch.no_grad()
def stats(codec, x: torch.Tensor, batch: int = 8) -> tuple[list[float], list[float]]:
    z = torch.cat([codec.encode_latents(x[i : i + batch]).double() for i in range(0, len(x), batch)])
    flat = z.transpose(0, 1).reshape(z.shape[1], -1)
    return flat.mean(1).tolist(), flat.std(1).clamp_min(MIN_STD).tolist()


def main(argv: list[str] | None = None) -> int:
    import lcodec
    from lcodec.registry import get_spec

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codec", action="append", default=None, help="default: every shipped image codec with latents")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "images" / "train")
    p.add_argument("--crops", type=int, default=48)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--out", type=Path, default=ROOT / "lcodec" / "weights" / "latent_stats.json")
    args = p.parse_args(argv)
    x = crops(args.data, args.crops, args.size)
    table = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name in args.codec or codecs_with_latents():
        for q in get_spec(name).shipped_qualities:
            codec = lcodec.load(name, q)
            mean, std = stats(codec, x)
            table[f"{name}/q{q}"] = {"weights_hash": codec.weights_hash.hex(), "crops": len(x), "size": args.size,
                                     "mean": [round(v, 6) for v in mean], "std": [round(v, 6) for v in std]}
            print(f"{name} q{q}: {len(mean)} channels, std {min(std):.3f} .. {max(std):.3f}", flush=True)
    args.out.write_text(json.dumps(dict(sorted(table.items())), indent=0) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
