"""Fit one factorized prior on z per rate point of a trained variable-rate ladder
(``LadderConfig.rate_z_priors``), on CPU, from the integer z of training crops.

A ladder's h_a sees the gained latents, so z spreads more at the high rates than at the low ones,
and one density shared by all six rate points fits none of them well. Nothing else changes: z,
y, the tables of y and the reconstruction stay as they are, and only the bits of z do, so the
objective is exactly the cost of the integer z symbols, ``-sum counts(v) log2 P_rate(v)``. It
needs only the histogram of z per rate point and channel, computed once (``z_counts``); every
crop is analysed once and its z taken at all six gains.

    python -m lcodec.train.zprior walloc-rgb-rd --data ../shared/data/images/train \\
        --held-out ../shared/data/images/val --crops 600 --out lcodec/weights/walloc-rgb-rd.pt
"""
from __future__ import annotations

import itertools
import json
import random
import sys

import torch

from lcodec.errors import InputError

__all__ = ["z_counts", "fit_rate_priors", "main"]

RANGE = 32  # z symbols counted in [-RANGE, RANGE] (clamped; the coder's escape covers the rest)


@torch.no_grad()
def z_counts(codec, images, crops: int | None = None, size: int = 256, seed: int = 0,
             progress: bool = True) -> torch.Tensor:
    """Histogram of z, (rates, channels, 2 * RANGE + 1) float64, over random ``size`` crops of the
    image files ``images`` (``crops`` of them) or, with ``crops`` None, over the whole images."""
    from tqdm import tqdm

    from lcodec.io.image import read_image
    from lcodec.train.data import random_crops

    gains = torch.exp(codec.log_gain.detach().double())  # (rates, C)
    counts = torch.zeros(len(gains), codec.entropy.hyper.hyper_channels, 2 * RANGE + 1, dtype=torch.float64)
    if crops is None:  # whole images, padded as the coder pads them
        inputs = (codec.transform.pad(read_image(f)[None], codec.multiple) for f in images)
    else:
        inputs = (c[None].float() / 255 for c in itertools.islice(random_crops(images, size, random.Random(seed)), crops))
    total = crops if crops is not None else len(images)
    with tqdm(total=total, disable=not progress, desc="z histograms", unit="crop" if crops else "image") as bar:
        for x in inputs:
            y = codec.transform.analysis(x).double()
            for r in range(len(gains)):
                z = codec.entropy.hyper_analysis(y * gains[r][None, :, None, None])  # the coder's integer z
                v = (z.clamp(-RANGE, RANGE) + RANGE).transpose(0, 1).reshape(z.shape[1], -1)
                counts[r].scatter_add_(1, v, torch.ones_like(v, dtype=torch.float64))
            bar.update(1)
    return counts


def _bits(prior, counts: torch.Tensor) -> torch.Tensor:
    """Total bits of the counted symbols under ``prior`` (counts (C, 2R+1))."""
    grid = torch.arange(-RANGE, RANGE + 1, dtype=torch.float32).expand(1, counts.shape[0], -1)
    return -(counts * torch.log2(prior.likelihood(grid)[0].double())).sum()


def fit_rate_priors(codec, counts: torch.Tensor, steps: int = 1500, lr: float = 1e-2,
                    progress: bool = True) -> list[dict]:
    """Adam on each rate point's prior (from its current state; lr / 10 for the last 20%)."""
    from tqdm import tqdm

    from lcodec.train.loop import drop_lr

    log = []
    for r, prior in enumerate(codec.entropy.rate_priors):
        n = float(counts[r].sum())
        opt = torch.optim.Adam(prior.parameters(), lr=lr)
        start = float(_bits(prior, counts[r]).detach()) / n
        for step in tqdm(range(steps), disable=not progress, desc=f"z prior q{r + 1}", unit="step"):
            drop_lr(opt, step + 1, steps, lr)  # steps counted from 1 there
            loss = _bits(prior, counts[r]) / n
            opt.zero_grad()
            loss.backward()
            opt.step()
        log.append({"quality": r + 1, "symbols": n, "bits_per_symbol_start": start,
                    "bits_per_symbol_end": float(_bits(prior, counts[r]).detach()) / n})
    return log


def main(argv: list[str] | None = None) -> int:
    from lcodec.train.data import list_images
    from lcodec.train.loop import fit_parser, load_for_fit, save_fit

    ap = fit_parser("python -m lcodec.train.zprior", __doc__.splitlines()[0], "LadderConfig.rate_z_priors",
                    crops=600, steps=1500, lr=1e-2)
    args = ap.parse_args(argv)

    codec, base, state = load_for_fit(args.codec, "rate_priors.")
    if getattr(codec.entropy, "rate_priors", None) is None:
        raise InputError(f"{args.codec} keeps one z prior for all rates (LadderConfig.rate_z_priors is off)")
    for prior in codec.entropy.rate_priors:  # every rate starts from the shared prior
        prior.load_state_dict(codec.entropy.prior.state_dict())
    torch.set_num_threads(min(torch.get_num_threads(), 2))

    counts = z_counts(codec, list_images(args.data), args.crops, seed=args.seed)
    held = z_counts(codec, list_images(args.held_out), None) if args.held_out else None
    pixels = float(held[0].sum()) * 256 / codec.entropy.hyper.hyper_channels if held is not None else None  # one z per 16x16 padded pixels
    with torch.no_grad():
        shared_bits = [float(_bits(codec.entropy.prior, h)) / pixels for h in held] if held is not None else None
    log = fit_rate_priors(codec, counts, args.steps, args.lr)
    if held is not None:
        with torch.no_grad():
            for r, entry in enumerate(log):
                entry["held_out_z_bits_per_padded_pixel_shared_prior"] = shared_bits[r]
                entry["held_out_z_bits_per_padded_pixel_rate_prior"] = float(_bits(codec.entropy.rate_priors[r], held[r])) / pixels
    save_fit(codec, args, "python -m lcodec.train.zprior", base, state, {"rates": log})
    print(json.dumps(log, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
