"""Fit the decoder-side post-filter (``lcodec.models.postfilter``) of a variable-rate ladder onto
its trained decoder, on CPU, from cached decoded crops.

Nothing else changes: the encoder, the symbols, the tables and the bitstream stay as they are, so
the objective is the decoder's MSE alone. Each training crop is encoded once at a random rate
point, and the synthesis output (before the filter and the clamp) is cached with the original;
a step then costs the filter alone.

    python -m lcodec.train.postfilter walloc-rgb-rd --data ../shared/data/images/train \\
        --held-out ../shared/data/images/val --out lcodec/weights/walloc-rgb-rd.pt

The held-out report is PSNR per rate point on centre crops of the held-out images, without and
with the filter, through the codec's own decoder.
"""
from __future__ import annotations

import itertools
import json
import random
import sys
import time

import torch

from lcodec.errors import InputError

__all__ = ["cache_decoded", "fit_postfilter", "held_out_psnr", "main"]


@torch.no_grad()
def cache_decoded(codec, crops, progress: bool = True) -> dict[str, torch.Tensor]:
    """Crops (each (3, s, s) uint8) -> {"x": originals uint8, "syn": synthesis outputs float16, "q":
    rate index}, each crop at a rate drawn from the crop's position in the list (round robin)."""
    from tqdm import tqdm

    xs, syn, rates = [], [], []
    rates_n, keep = len(codec.ladder.lmbdas), codec.quality
    for i, x in enumerate(tqdm(crops, disable=not progress, desc="decode crops", unit="crop")):
        q = i % rates_n
        codec.quality = q + 1
        xf = x[None].float() / 255
        syn.append(codec.synthesise(codec.encode_latents(xf)).to(torch.float16))
        xs.append(x[None])
        rates.append(q)
    codec.quality = keep
    return {"x": torch.cat(xs), "syn": torch.cat(syn), "q": torch.tensor(rates)}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = (a.clamp(0, 1) * 255).round(), (b * 255).round()
    return float(10 * torch.log10(255.0**2 / ((a - b) ** 2).mean()))


@torch.no_grad()
def held_out_psnr(codec, images: list[torch.Tensor]) -> list[dict]:
    """Mean PSNR per rate point over ``images`` ((1, 3, h, w) in [0, 1]), without and with the filter."""
    rows = []
    keep = codec.quality
    for q in range(len(codec.ladder.lmbdas)):
        codec.quality = q + 1
        before = after = 0.0
        for x in images:
            s = codec.synthesise(codec.encode_latents(x))[..., : x.shape[-2], : x.shape[-1]]
            before += _psnr(s, x) / len(images)
            after += _psnr(codec.postfilter(s, q), x) / len(images)
        rows.append({"quality": q + 1, "psnr_without": round(before, 4), "psnr_with": round(after, 4),
                     "gain_db": round(after - before, 4)})
    codec.quality = keep
    return rows


def fit_postfilter(codec, cache: dict[str, torch.Tensor], steps: int, lr: float = 1e-3, batch: int = 16,
                   size: int = 128, seed: int = 0, progress: bool = True) -> list[dict]:
    """Adam on the post-filter only (lr / 10 for the last 20% of steps), MSE on random ``size``
    sub-crops of the cached crops; returns a log."""
    from tqdm import tqdm

    from lcodec.train.loop import drop_lr

    pf = codec.postfilter
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(pf.parameters(), lr=lr)
    full = cache["x"].shape[-1]
    log: list[dict] = []
    pf.train()
    t0 = time.time()
    with tqdm(range(1, steps + 1), disable=not progress, desc="fit post-filter", unit="step") as bar:
        for step in bar:
            drop_lr(opt, step, steps, lr)
            i = torch.randint(len(cache["q"]), (batch,), generator=gen)
            r, c = (int(v) for v in torch.randint(full - size + 1, (2,), generator=gen))
            x = cache["x"][i, :, r : r + size, c : c + size].float() / 255
            s = cache["syn"][i, :, r : r + size, c : c + size].float()
            loss = torch.mean((pf(s, cache["q"][i]).clamp(0, 1) - x) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.set_postfix(psnr=f"{-10 * torch.log10(loss).item():.2f}")
            if step % 50 == 0 or step == steps:
                log.append({"step": step, "mse": loss.item(), "seconds": round(time.time() - t0, 1)})
    pf.eval()
    return log


def main(argv: list[str] | None = None) -> int:
    from lcodec.io.image import read_image
    from lcodec.train.data import list_images, random_crops
    from lcodec.train.loop import fit_parser, load_for_fit, save_fit

    ap = fit_parser("python -m lcodec.train.postfilter", __doc__.splitlines()[0], "a post-filter (ladder postfilter > 0)",
                    crops=1200, steps=2000, lr=1e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=192, help="side of the cached training crops")
    args = ap.parse_args(argv)

    codec, base, state = load_for_fit(args.codec, "postfilter.")
    if getattr(codec, "postfilter", None) is None:
        raise InputError(f"{args.codec} has no post-filter to fit (its ladder config has postfilter = 0)")
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    rng = random.Random(args.seed)
    crops = list(itertools.islice(random_crops(list_images(args.data), args.size, rng), args.crops))
    cache = cache_decoded(codec, crops)
    held = []
    if args.held_out:
        for f in list_images(args.held_out):
            x = read_image(f)[None]
            h, w = x.shape[-2:]
            s = min(256, h, w)
            held.append(x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])
    log = fit_postfilter(codec, cache, args.steps, args.lr, args.batch, seed=args.seed)
    codec.quality = 4
    codec.export()  # the report is on the stored (rounded) weights; save_fit's export is idempotent
    info = save_fit(codec, args, "python -m lcodec.train.postfilter", base, state,
                    {"held_out_psnr": held_out_psnr(codec, held) if held else None}, log_only={"log": log})
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
