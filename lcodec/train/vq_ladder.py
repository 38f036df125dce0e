"""Turn a trained VQ autoencoder (``lcodec.train.vq``) into the shipped vq-rgb codec: the k-means
rate ladder, codebook-only fine-tuning, the index priors and the lost-index restoration network.

1. Weights are rounded to half precision first (what ships is what is fitted on).
2. Ladder: the trained K-codeword codebook, and K/2, ..., ``min_codewords`` codewords by k-means of
   it, each codeword weighted by how often the training images use it (Mao et al.).
3. Codebook-only fine-tuning (``--finetune-steps`` per level): the encoder and decoder frozen,
   each level's codewords moved to minimise the objective the decoder was fine-tuned for in pixel
   space ((1 - MS-SSIM) + 16 x MSE through rd's frozen analysis and synthesis).
4. Context classes: k-means of the largest codebook into ``context_classes`` centres; every
   codeword's class is its nearest centre.
5. Priors: the training images' index grids at every level give a histogram and context counts;
   the context tables back off to the histogram with a strength alpha chosen on the last 10% of
   the training images (fitted on the first 90%), then refitted on all of them.
6. Restoration: ``VQInpainter`` learns to fill erased positions (0-30% per crop, a random level
   per batch) so that the decoder's output matches the rd latents.

    python -m lcodec.train.vq_ladder --vq /tmp/vq/vq.pt --out lcodec/weights/vq-rgb.pt \
        --log docs/results/train_vq-rgb/ladder.json
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lcodec.api import file_sha256, weights_path
from lcodec.entropy.circuit import quantize
from lcodec.entropy.vq_index import CODING_BITS, context_ids
from lcodec.train.loop import record_in_manifest
from lcodec.train.vq import DATA, latent_crops, cache_latents, kmeans, nearest

__all__ = ["fit_priors", "main"]


def _half(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float16).to(torch.float32) if t.dtype == torch.float32 else t


def _table(p: np.ndarray) -> np.ndarray:
    """float64 pmfs (rows) -> integer counts summing to 2**CODING_BITS, each >= 1."""
    return quantize(torch.floor(torch.from_numpy(p) * 2.0**40), CODING_BITS).numpy()


def _counts(grids: list[torch.Tensor], classes: torch.Tensor, k: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    hist = np.zeros(k)
    ctx = np.zeros(((c + 1) ** 2, k))
    for g in grids:
        ids = context_ids(g, classes, c).reshape(-1).numpy()
        flat = g.reshape(-1).numpy()
        np.add.at(hist, flat, 1)
        np.add.at(ctx, (ids, flat), 1)
    return hist, ctx


def _pmfs(hist: np.ndarray, ctx: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    k = len(hist)
    p_h = (hist + 0.5) / (hist.sum() + 0.5 * k)
    p_c = (ctx + alpha * p_h) / (ctx.sum(1, keepdims=True) + alpha)
    return p_h[None], p_c


def fit_priors(grids: list[torch.Tensor], classes: torch.Tensor, k: int, c: int,
               alphas=(1, 4, 16, 64, 256, 1024)) -> tuple[np.ndarray, np.ndarray, dict]:
    """Histogram and context tables for one level from its training index grids (each (1, h, w));
    alpha chosen on the last 10% of ``grids`` (in pairs: an image and its mirror stay together)."""
    cut = int(len(grids) * 0.9) // 2 * 2
    fit, held = grids[:cut], grids[cut:]
    hist, ctx = _counts(fit, classes, k, c)
    h_hist, h_ctx = _counts(held, classes, k, c)
    n = h_hist.sum()
    scores = {}
    for a in alphas:
        p_h, p_c = _pmfs(hist, ctx, a)
        scores[a] = float(-(h_ctx * np.log2(p_c)).sum() / n)
    best = min(scores, key=scores.get)
    p_h, _ = _pmfs(hist, ctx, best)
    hist_bits = float(-(h_hist * np.log2(p_h[0])).sum() / n)
    hist, ctx = _counts(grids, classes, k, c)
    p_h, p_c = _pmfs(hist, ctx, best)
    info = {"codewords": k, "alpha": best, "held_out_bits_per_index": {"uniform": float(np.log2(k)),
            "histogram": hist_bits, "context": scores[best]}, "alpha_scores": scores}
    return _table(p_h), _table(p_c), info


def main(argv: list[str] | None = None) -> None:
    import lcodec
    from lcodec.registry import create_codec

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vq", type=Path, required=True, help="output (or checkpoint) of lcodec.train.vq")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--cache", type=Path, default=Path("/tmp/vq/rd_latents.pt"))
    p.add_argument("--finetune-steps", type=int, default=150)
    p.add_argument("--inpaint-steps", type=int, default=600)
    p.add_argument("--pixel-crop", type=int, default=192)
    p.add_argument("--pixel-batch", type=int, default=8)
    p.add_argument("--mse-weight", type=float, default=16.0, help="as lcodec.train.vq's pixel fine-tuning")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--crop", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--log", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()
    report: dict = {"vq": str(args.vq), "steps": {}}

    codec = create_codec("vq-rgb")
    rd = lcodec.load("walloc-rgb-rd").transform
    tr, ent = codec.transform, codec.entropy
    tr.analysis.load_state_dict(rd.analysis.state_dict())
    tr.synthesis.load_state_dict(rd.synthesis.state_dict())
    ck = torch.load(args.vq, weights_only=False)
    tr.vq_encoder.load_state_dict(ck["encoder"])
    tr.vq_decoder.load_state_dict(ck["decoder"])
    with torch.no_grad():
        for t in tr.state_dict().values():
            t.copy_(_half(t))
    enc, dec = tr.vq_encoder.eval(), tr.vq_decoder.eval()
    for q in (*enc.parameters(), *dec.parameters(), *tr.analysis.parameters(), *tr.synthesis.parameters()):
        q.requires_grad_(False)
    cfg = ent.cfg
    sizes = ent.sizes
    top = _half((ck["book"]["codebook"] if "book" in ck else ck["codebook"]).float())  # checkpoint or output

    latents = cache_latents(args.data, args.cache)
    with torch.no_grad():
        zs = [enc(y[None].float()) for y in tqdm(latents, desc="code vectors")]
    flat = torch.cat([z.permute(0, 2, 3, 1).reshape(-1, cfg.code_dim) for z in zs])
    usage = torch.bincount(nearest(flat, top), minlength=len(top)).double()
    report["top_codewords_used"] = int((usage > 0).sum())

    books = {sizes[-1]: top}
    for k in sizes[:-1]:
        books[k] = kmeans(top.double(), k, iters=30, seed=args.seed, weights=usage).float()

    from pytorch_msssim import ms_ssim

    from lcodec.train.data import list_images, random_crops

    pixel_crops = random_crops(list_images(args.data), args.pixel_crop, random.Random(args.seed + 1))

    def finetune(k: int) -> torch.Tensor:
        """Codebook-only fine-tuning in pixel space, for the objective the decoder was fine-tuned
        for ((1 - MS-SSIM) + mse_weight x MSE, through rd's frozen analysis and synthesis)."""
        book = torch.nn.Parameter(books[k].clone())
        opt = torch.optim.Adam([book], lr=1e-3)
        losses = []
        for step in range(args.finetune_steps):
            x = torch.stack([next(pixel_crops) for _ in range(args.pixel_batch)]).float() / 255
            with torch.no_grad():
                z = enc(tr.analysis(x))
                idx = nearest(z.permute(0, 2, 3, 1).reshape(-1, cfg.code_dim), book.detach())
            q = book[idx].reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
            x_hat = tr.synthesis(dec(q))
            loss = (1 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0)) + args.mse_weight * F.mse_loss(x_hat, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        n = max(1, min(10, len(losses) // 2))
        report["steps"][f"finetune_{k}"] = {"first_loss": float(np.mean(losses[:n])), "last_loss": float(np.mean(losses[-n:]))}
        return _half(book.detach())

    for k in tqdm(sizes, desc="codebook fine-tuning"):
        if args.finetune_steps:
            books[k] = finetune(k)

    c = cfg.context_classes
    centres = kmeans(books[sizes[-1]].double(), c, iters=30, seed=args.seed, weights=usage).float()
    report["priors"] = []
    for k in sizes:
        getattr(ent, f"codebook_{k}").copy_(books[k])
        getattr(ent, f"classes_{k}").copy_(nearest(books[k], centres))
        grids = [nearest(z.permute(0, 2, 3, 1).reshape(-1, cfg.code_dim), books[k]).reshape(1, z.shape[2], z.shape[3])
                 for z in zs]
        hist, ctx, info = fit_priors(grids, getattr(ent, f"classes_{k}"), k, c)
        ent.set_tables(k, hist, ctx)
        report["priors"].append(info)
        print(json.dumps(info["held_out_bits_per_index"]))

    # lost-index restoration
    inp = tr.vq_inpaint.train()
    opt = torch.optim.Adam(inp.parameters(), lr=5e-4)
    bar = tqdm(range(args.inpaint_steps), desc="restoration")
    hist_log = []
    for step in bar:
        k = rng.choice(sizes)
        y = latent_crops(latents, args.crop, args.batch, rng)
        with torch.no_grad():
            z = enc(y)
            idx = nearest(z.permute(0, 2, 3, 1).reshape(-1, cfg.code_dim), books[k])
            q = books[k][idx].reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        rate = torch.rand(z.shape[0], 1, 1, 1) * 0.3
        lost = (torch.rand(z.shape[0], 1, z.shape[2], z.shape[3]) < rate).float()
        loss = F.mse_loss(dec(inp(q, lost)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.set_postfix(mse=f"{float(loss):.5f}")
        if step % 50 == 0:
            hist_log.append({"step": step, "mse": float(loss), "codewords": k})
    report["steps"]["restoration"] = hist_log
    with torch.no_grad():
        for t in inp.state_dict().values():
            t.copy_(_half(t))

    own = {k: v for k, v in codec.state_dict().items() if k.startswith(("vq_", "codebook_", "classes_"))}
    base = weights_path("walloc-rgb-rd", 1)
    state = {"name": "vq-rgb", "quality": 0, "qualities": list(range(1, len(sizes) + 1)),
             "base": base.name, "base_sha256": file_sha256(base), "replaced": ["vq_", "codebook_", "classes_"],
             "vq_config": tr.cfg.to_dict(), **ent.state_entries(),
             "state_dict": {k: (v.to(torch.float16) if v.dtype == torch.float32 else v) for k, v in own.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    record_in_manifest(args.out)
    report["seconds"] = round(time.time() - t0, 1)
    if args.log is not None:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        args.log.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {report['seconds']} s")


if __name__ == "__main__":
    main()
