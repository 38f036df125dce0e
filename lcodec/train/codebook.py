"""Fit walloc-rgb-mcq's residual codebooks onto walloc-rgb-rd's frozen transform, on CPU.

Each stage is fitted by entropy-constrained Lloyd iteration (Chou, Lookabaugh & Gray, "Entropy-
constrained vector quantization", 1989) on what the earlier stages left of the training crops'
latents: assign every 12-channel group to the codeword minimising squared error + slope * bits
(bits = -log2 of the codeword's probability), move each codeword to the mean of its vectors,
set each probability to its share of the vectors, repeat. Stage s works at the slope of rd's
rate point s: a uniform quantizer of step 1 in rd's gained space has dD/dR = 2 ln 2 / 12 per
channel at high rate, and a step of g_space / g_s in the space of rate point ``space`` scales it
by (g_space / g_s)^2 (mean over channels). Nothing else of rd changes.

    python -m lcodec.train.codebook walloc-rgb-mcq --data ../shared/data/images/train \\
        --held-out ../shared/data/images/val --crops 80 --out lcodec/weights/walloc-rgb-mcq.pt \\
        --log docs/results/train_walloc-rgb-mcq/codebook_fit.json
"""
from __future__ import annotations

import itertools
import math
import random
import sys
import time

import torch

from lcodec.entropy.codebook import variance_for_slope

__all__ = ["latent_vectors", "stage_slopes", "fit_stage", "fit_stack", "main"]

HIGH_RATE_SLOPE = 2 * math.log(2) / 12  # squared error per bit of a step-1 uniform quantizer


@torch.no_grad()
def latent_vectors(codec, files, crops: int, size: int = 256, seed: int = 0, progress: bool = True):
    """The coder's gained latents of ``crops`` random ``size`` crops: (list of (1, C, h, w) float64)."""
    from tqdm import tqdm

    from lcodec.train.data import random_crops

    out = []
    source = itertools.islice(random_crops(files, size, random.Random(seed)), crops)
    for c in tqdm(source, total=crops, disable=not progress, desc="latents", unit="crop"):
        out.append(codec.analyse64(c[None].double() / 255))
    return out


def stage_slopes(codec) -> list[float]:
    """Stage s's rate-distortion slope (squared error per bit in the space's units): rd's rate point s."""
    gains = torch.exp(codec.log_gain.detach().double())
    ratio = (gains[codec.entropy.book.space - 1] / gains).pow(2).mean(1)
    return [HIGH_RATE_SLOPE * float(r) for r in ratio]


def _assign(stage, groups: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """Entropy-constrained assignment of (M, N, d) vectors with the stage's own scores, in float32
    chunks (the fit's speed; the shipped encoder scores in float64): (M, N) indexes."""
    params = (stage.codebooks.detach(), stage.logits.detach(), stage.log_variance.detach())
    return torch.cat([stage._scores(g.transpose(0, 1), *params).argmax(-1) for g in groups.split(chunk, dim=1)], 1)


def _chosen(stage, residual: torch.Tensor) -> torch.Tensor:
    """What ``stage`` codes of ``residual`` (N, C) under its current codebooks: (N, C) float64."""
    groups = residual.float().reshape(-1, stage.groups, stage.dim).transpose(0, 1)
    words = stage.codebooks.detach()[torch.arange(stage.groups)[:, None], _assign(stage, groups)]  # (M, N, d)
    return words.transpose(0, 1).reshape(residual.shape).double()


def fit_stack(stack, vectors: torch.Tensor, slopes: list[float], iters: int, seed: int, report=None) -> list[dict]:
    """Fit a ``ResidualCodebooks`` to latent vectors (N, C): channel order by variance (strongest
    first), then each stage by ``fit_stage`` at its slope on what the stages before it left.
    ``report(stage, log, residual)`` is called after each stage. Returns the per-stage logs."""
    order = torch.argsort(vectors.var(0), descending=True)
    stack.order.copy_(order)
    residual = vectors[:, order].double()
    logs = []
    for s, stage in enumerate(stack.stages):
        log = fit_stage(stage, residual, slopes[s], iters, seed + s)
        residual = residual - _chosen(stage, residual)
        logs.append({"stage": s + 1, "slope": slopes[s], "log": log})
        if report is not None:
            report(s, log, residual)
    return logs


@torch.no_grad()
def fit_stage(stage, vectors: torch.Tensor, slope: float, iters: int, seed: int) -> list[dict]:
    """Fit one ``MultiCodebookQuantizer`` to ``vectors`` (N, C) (already in the stack's channel
    order) at ``slope``; returns the per-iteration log (train bits and squared error per vector)."""
    m, k, d = stage.groups, stage.codewords, stage.dim
    groups = vectors.float().reshape(-1, m, d).transpose(0, 1).contiguous()  # (M, N, d)
    n = groups.shape[1]
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]
    stage.codebooks.copy_(groups[:, pick])
    stage.logits.fill_(0.0)
    stage.log_variance.fill_(math.log(variance_for_slope(slope)))
    log = []
    for it in range(iters):
        a = _assign(stage, groups)
        count = torch.zeros(m, k).scatter_add_(1, a, torch.ones(a.shape))
        total = torch.zeros(m, k, d).scatter_add_(1, a[..., None].expand(-1, -1, d), groups)
        used = count > 0
        stage.codebooks.copy_(torch.where(used[..., None], total / count.clamp_min(1)[..., None], stage.codebooks))
        p = (count + 0.01) / (count + 0.01).sum(1, keepdim=True)  # every codeword keeps a sliver of mass
        stage.logits.copy_(torch.log(p))
        chosen = stage.codebooks[torch.arange(m)[:, None], a]
        log.append({"iteration": it + 1, "bits_per_vector": float(-torch.log2(p.gather(1, a)).sum() / n),
                    "squared_error_per_vector": float(((groups - chosen) ** 2).sum() / n),
                    "codewords_used": int(used.sum())})
    return log


@torch.no_grad()
def held_out_points(codec, crops: list[torch.Tensor], originals: list[torch.Tensor]) -> list[dict]:
    """bpp (ideal code length under the exported tables) and PSNR of the decoded crops at each quality."""
    points = []
    for q in range(1, codec.entropy.book.stages + 1):
        bits, psnr = 0.0, []
        for y64, x in zip(crops, originals):
            idx = codec.entropy.codebook.indexes(y64, q)
            bits += sum(codec.entropy.codebook.information_bits(idx))
            codec.quality = q
            x_hat = codec.decode_latents(codec.entropy.codebook.dequantize(idx), size=tuple(x.shape[-2:]))
            psnr.append(-10 * math.log10(float(((x_hat - x) ** 2).mean())))
        pixels = sum(x.shape[-2] * x.shape[-1] for x in originals)
        points.append({"quality": q, "bpp": bits / pixels, "psnr": sum(psnr) / len(psnr)})
    return points


def main(argv: list[str] | None = None) -> int:
    from lcodec.errors import InputError
    from lcodec.train.data import list_images, random_crops
    from lcodec.train.loop import fit_parser, load_for_fit, save_fit

    ap = fit_parser("python -m lcodec.train.codebook", __doc__.splitlines()[0], "codebook stages",
                    crops=80, steps=12, lr=0.0)
    ap.description += " (--steps: Lloyd iterations per stage; --lr is unused)"
    args = ap.parse_args(argv)
    codec, base, state = load_for_fit(args.codec, "codebook.", source="walloc-rgb-rd")
    if not hasattr(codec.entropy, "codebook"):
        raise InputError(f"{args.codec} has no codebook stages to fit")
    codec.carry_from(state)  # rd's hyperprior tensors and tables: not used, but named by the weights hash
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    t0 = time.time()
    train = latent_vectors(codec, list_images(args.data), args.crops, seed=args.seed)
    flat = torch.cat([y.permute(0, 2, 3, 1).reshape(-1, y.shape[1]) for y in train])

    def report(s, log, residual):
        print(f"stage {s + 1}: {log[-1]['bits_per_vector']:.2f} bits per position, residual "
              f"{float(residual.pow(2).mean()):.4f} per channel ({time.time() - t0:.0f} s)", flush=True)

    stages = fit_stack(codec.entropy.codebook, flat, stage_slopes(codec), args.steps, args.seed, report)
    codec.export()
    results = {"fit_seconds": round(time.time() - t0, 1), "training_vectors": int(flat.shape[0]), "stages": stages}
    if args.held_out:
        files = list_images(args.held_out)
        xs = [c[None].float() / 255 for c in itertools.islice(random_crops(files, 256, random.Random(args.seed + 1)), 24)]
        ys = [codec.analyse64(x.double()) for x in xs]
        results["held_out_crops"] = held_out_points(codec, ys, xs)
        codec.quality = codec.entropy.book.stages
        for p in results["held_out_crops"]:
            print(f"held-out q{p['quality']}: {p['bpp']:.3f} bpp, {p['psnr']:.2f} dB")
    save_fit(codec, args, "python -m lcodec.train.codebook", base, state, results, replaced="codebook.")
    print(f"wrote {args.out} ({results['fit_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
