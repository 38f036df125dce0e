"""Fit the channel context (``lcodec.entropy.channel_context``) of a hyperprior ladder onto its
trained transform and side path, on CPU, from cached latents.

The transform, h_a, the means net and the z prior stay as trained; only the per-slice index heads
and mean corrections learn, and their only effect is the rate of y (symbols are ``round(y - mean)``
whatever the mean, so the reconstruction error stays a unit-step rounding error). So the objective
is the rate of y alone, the exact cost of the rounded symbols (no noise relaxation), and it only needs, per training crop, the hyperprior's hidden integer
features and the residual ``y - hyperprior mean``: computed once (``cache_latents``), after which
a step costs the context networks alone (no transform, no decoder).

    python -m lcodec.train.context walloc-rgb-rd --data ../shared/data/images/train \\
        --crops 1600 --steps 3000 --out lcodec/weights/walloc-rgb-rd.pt

Every rate point contributes: each crop is cached at a random quality (its gain applied).

``walloc-rgb-rd-gmm`` (Gaussian scale-mixture tables, ``lcodec.entropy.scale_mixture``) is fitted
the same way onto rd's file, starting from rd's fitted scale heads::

    python -m lcodec.train.context walloc-rgb-rd-gmm --base walloc-rgb-rd --data ../shared/data/images/train \
        --held-out ../shared/data/images/val --out lcodec/weights/walloc-rgb-rd-gmm.pt
"""
from __future__ import annotations

import itertools
import json
import random
import sys
import time
from pathlib import Path

import torch

from lcodec.errors import InputError, ModelError

__all__ = ["cache_latents", "fit_context", "main"]

# the tensors a scale-mixture context adds to a Gaussian one (lcodec.entropy.scale_mixture)
NEW_IN_MIXTURE = ("context.spread_heads.", "context.weight_heads.", "context.scale_table", "context.spread_values")


@torch.no_grad()
def cache_latents(codec, files: list[Path], crops: int, size: int = 256, seed: int = 0,
                  progress: bool = True) -> dict[str, torch.Tensor]:
    """Random ``size`` x ``size`` crops of ``files`` -> {"hidden": (N, H, s/8, s/8) uint8, "r": y - mean
    (N, C, s/8, s/8) float32, "q": (N,) rate index}, through the codec's own (float32) transform."""
    from tqdm import tqdm

    from lcodec.train.data import random_crops

    rng = random.Random(seed)
    gains = torch.exp(codec.log_gain.detach().double())  # (rates, C)
    hidden, resid, rates = [], [], []
    with tqdm(total=crops, disable=not progress, desc="cache latents", unit="crop") as bar:
        for x in itertools.islice(random_crops(files, size, rng), crops):
            q = rng.randrange(len(gains))
            y = codec.transform.analysis(x[None].float() / 255).double() * gains[q][None, :, None, None]
            z = codec.entropy.hyper_analysis(y)
            hidden.append(codec.entropy.hidden(z).to(torch.uint8))
            resid.append((y - codec.entropy.means(z)).float())
            rates.append(q)
            bar.update(1)
    return {"hidden": torch.cat(hidden), "r": torch.cat(resid), "q": torch.tensor(rates)}


def _bits(codec, hidden: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
    """Bits of y for cached items under the codec's context: the exact cost of the rounded symbols
    (the transform is frozen, so no noise relaxation is needed); the indexes are the heads'
    quantization-aware training path (straight-through)."""

    def symbol_bits(v: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        return -torch.log2(codec.entropy.gaussian.likelihood(torch.round(v - means), scales)).flatten(1).sum(1)

    _, bits = codec.entropy.context(resid, torch.zeros_like(resid), hidden.float(), symbol_bits,
                            codec.entropy.gaussian.scales_from_indexes)
    return bits.sum()


@torch.no_grad()
def exact_bits(codec, cache: dict[str, torch.Tensor], batch: int = 40) -> float:
    """Bits of y per cached item as the coder would spend them (exact indexes, rounded symbols)."""
    total = 0.0
    mixture = codec.entropy.context.tables() if codec.entropy.hyper.context_mixture else None
    for i in range(0, len(cache["q"]), batch):
        r = cache["r"][i : i + batch].double()
        symbols, indexes, _ = codec.entropy.context.encode(r, torch.zeros_like(r), cache["hidden"][i : i + batch].double())
        index, sym = torch.cat(indexes, 1), torch.cat(symbols, 1)
        if mixture is not None:  # the stored mixture tables' cost
            total += mixture.information_content(sym.numpy(), index.numpy())
        else:
            scales = codec.entropy.gaussian.scale_table.cpu()[index]
            total += float(-torch.log2(codec.entropy.gaussian.likelihood(sym.double(), scales)).sum())
    return total / len(cache["q"])


def fit_context(codec, cache: dict[str, torch.Tensor], steps: int, lr: float = 1e-3, batch: int = 16,
                seed: int = 0, held_out: dict[str, torch.Tensor] | None = None, progress: bool = True) -> list[dict]:
    """Adam on the context's parameters only (lr / 10 for the last 20% of steps); returns a log."""
    from tqdm import tqdm

    from lcodec.train.loop import drop_lr

    if getattr(codec.entropy, "context", None) is None:
        raise ModelError(f"{codec.name} has no channel context (HyperpriorConfig.context_slices)")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(codec.entropy.context.parameters(), lr=lr)
    pixels = 64 * cache["r"].shape[-2] * cache["r"].shape[-1]  # J = 3: 64 pixels per latent position
    log: list[dict] = []
    codec.train()
    t0 = time.time()
    with tqdm(range(1, steps + 1), disable=not progress, desc="fit context", unit="step") as bar:
        for step in bar:
            drop_lr(opt, step, steps, lr)
            i = torch.randint(len(cache["q"]), (batch,), generator=gen)
            loss = _bits(codec, cache["hidden"][i], cache["r"][i]) / (batch * pixels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.set_postfix(bpp=f"{loss.item():.4f}")
            entry = {"step": step, "y_bpp": loss.item(), "seconds": round(time.time() - t0, 1)}
            if held_out is not None and (step % 1000 == 0 or step == steps):
                codec.eval()
                entry["held_out_y_bpp"] = exact_bits(codec, held_out) / pixels
                codec.train()
            if step % 50 == 0 or step == steps or "held_out_y_bpp" in entry:
                log.append(entry)
    codec.eval()
    return log


def main(argv: list[str] | None = None) -> int:
    from lcodec.train.data import list_images
    from lcodec.train.loop import fit_parser, load_for_fit, save_fit

    ap = fit_parser("python -m lcodec.train.context", __doc__.splitlines()[0], "context_slices",
                    crops=1600, steps=3000, lr=1e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--base", default=None,
                    help="fit a variant onto another shipped ladder's file (walloc-rgb-rd-gmm onto walloc-rgb-rd): "
                         "the scale heads start from its fitted context and --out holds only the context, laid "
                         "over that file")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from the context tensors of this weights file (e.g. to carry a fitted context "
                         "over to a new version of --base with --steps 0: the context reads nothing --base changed)")
    args = ap.parse_args(argv)

    if args.base:  # everything but the variant's own heads and tables comes from the base
        codec, base, state = load_for_fit(args.codec, NEW_IN_MIXTURE, source=args.base)
    else:
        codec, base, state = load_for_fit(args.codec, "context.")
    if getattr(codec.entropy, "context", None) is None:
        raise InputError(f"{args.codec} has no channel context to fit")
    if args.init is not None:
        tensors = torch.load(args.init, map_location="cpu", weights_only=True)["state_dict"]
        own = {k: v for k, v in tensors.items() if k.startswith("context.")}
        if set(own) != {k for k in codec.state_dict() if k.startswith("context.")}:
            raise InputError(f"{args.init} does not hold this codec's context tensors")
        codec.load_state_dict(own, strict=False)
    elif not args.base:
        codec.entropy.context.init_from_head(codec.entropy.index_net.layers[-1])  # the plain hyperprior, then fit
    torch.set_num_threads(min(torch.get_num_threads(), 2))

    files = list_images(args.data)
    cache = cache_latents(codec, files, args.crops, seed=args.seed)
    held = cache_latents(codec, list_images(args.held_out), 240, seed=args.seed + 1) if args.held_out else None
    pixels = 64 * cache["r"].shape[-2] * cache["r"].shape[-1]
    start = exact_bits(codec, held) / pixels if held is not None else None
    log = fit_context(codec, cache, args.steps, args.lr, args.batch, args.seed, held)
    info = save_fit(codec, args, "python -m lcodec.train.context", base, state,
                    {"held_out_y_bpp_at_start": start, "held_out_y_bpp_at_end": log[-1].get("held_out_y_bpp") if log else start},
                    log_only={"log": log}, replaced="context." if args.base else "")
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
