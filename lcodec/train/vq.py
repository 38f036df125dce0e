"""Fit the VQ autoencoder (``lcodec.models.vq``) on cached walloc-rgb-rd latents, on CPU.

The rd analysis is frozen, so the latents y of every training photo (and its mirror image) are
computed once and cached; each step then draws random crops of y, encodes them to code vectors z
at 1/16, quantizes z to the nearest of K codewords and decodes back to y_hat. Loss: the squared
error of y_hat against y (rd's latent space is close to an orthonormal change of basis of the
pixels, so this tracks pixel MSE at a tiny fraction of the cost) plus a commitment term
beta ||z - sg(codeword)||^2 (van den Oord et al. 2017).

Phases: (1) ``--warmup`` steps without quantization; (2) the codebook starts as k-means of the
encoder's outputs; (3) VQ training, codewords updated as exponential moving averages of the
vectors assigned to them, and every 50 steps a codeword that has gone unused is restarted at a
random encoder output (dead-code restarts). ``--pixel-steps`` > 0 then fine-tunes the decoder (the
encoder and codebook frozen, so the indexes do not move) through rd's frozen analysis and
synthesis on pixel crops, for (1 - MS-SSIM) + ``--mse-weight`` x MSE.

Resumable: ``--checkpoint`` is written every ``--save-every`` steps and read on start; the JSON log
(``--log``) records every 25th step. ``lcodec.train.vq_ladder`` turns the result into the shipped
codec (k-means ladder, index priors, restoration model).

    python -m lcodec.train.vq --steps 3000 --checkpoint /tmp/vq/ckpt.pt --out /tmp/vq/vq.pt \
        --log docs/results/train_vq-rgb/log.json
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from lcodec.models.vq import VQConfig, VQDecoder, VQEncoder

__all__ = ["cache_latents", "kmeans", "nearest", "latent_crops", "main"]

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "images" / "train"


@torch.no_grad()
def cache_latents(folder: Path, cache: Path) -> list[torch.Tensor]:
    """rd latents (float16, (192, h, w), h and w even) of every image in ``folder`` and its mirror."""
    if cache.exists():
        return torch.load(cache, weights_only=True)
    import lcodec
    from lcodec.io.image import read_image
    from lcodec.train.data import list_images

    rd = lcodec.load("walloc-rgb-rd").transform
    out = []
    for path in tqdm(list_images(folder), desc="rd latents"):
        x = read_image(path)[None]
        for img in (x, x.flip(-1)):
            out.append(rd.analysis(rd.pad(img, 2)).squeeze(0).half())
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, cache)
    return out


def nearest(z: torch.Tensor, codebook: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Index of the nearest codeword (squared distance) of each row of z (N, D)."""
    half = 0.5 * (codebook * codebook).sum(1)
    out = [torch.argmin(half - part @ codebook.T, dim=1) for part in z.split(chunk)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def kmeans(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Lloyd's k-means of the rows of x (N, D), optionally weighted, from a k-means++ start (each new
    centre drawn with probability proportional to weight x squared distance to the nearest centre so
    far, Arthur & Vassilvitskii 2007); empty clusters restart at the rows farthest from their codeword."""
    g = torch.Generator().manual_seed(seed)
    w = torch.ones(len(x), dtype=x.dtype) if weights is None else weights.to(x.dtype)
    first = torch.multinomial(w.float(), 1, generator=g)
    chosen = [int(first)]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        p = (w * d2).clamp_min(0)
        i = int(torch.multinomial((p / p.sum()).float(), 1, generator=g)) if p.sum() > 0 else int(torch.argmax(w))
        chosen.append(i)
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    c = x[chosen].clone()
    for _ in range(iters):
        idx = nearest(x, c)
        sums = torch.zeros_like(c).index_add_(0, idx, x * w[:, None])
        counts = torch.zeros(len(c), dtype=x.dtype).index_add_(0, idx, w)
        empty = counts <= 0
        c = torch.where(empty[:, None], c, sums / counts.clamp_min(1e-12)[:, None])
        if empty.any():
            far = ((x - c[idx]) ** 2).sum(1) * (w > 0)
            c[empty] = x[torch.topk(far, int(empty.sum())).indices]
    return c


def latent_crops(latents: list[torch.Tensor], size: int, batch: int, rng: random.Random) -> torch.Tensor:
    out = []
    while len(out) < batch:
        y = latents[rng.randrange(len(latents))]
        h, w = y.shape[-2:]
        if h < size or w < size:
            continue
        top, left = 2 * rng.randrange((h - size) // 2 + 1), 2 * rng.randrange((w - size) // 2 + 1)
        out.append(y[:, top:top + size, left:left + size])
    return torch.stack(out).float()


class EMACodebook:
    """Codewords (K, D) as EMAs of their assigned vectors, with dead-code restarts."""

    def __init__(self, codebook: torch.Tensor, decay: float) -> None:
        self.codebook = codebook.clone()
        self.decay = decay
        self.counts = torch.ones(len(codebook))
        self.sums = codebook.clone()

    @torch.no_grad()
    def update(self, z: torch.Tensor, idx: torch.Tensor) -> None:
        k = len(self.codebook)
        counts = torch.bincount(idx, minlength=k).float()
        sums = torch.zeros_like(self.sums).index_add_(0, idx, z)
        self.counts.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.sums.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.counts.sum()
        smoothed = (self.counts + 1e-5) / (n + k * 1e-5) * n
        self.codebook = self.sums / smoothed[:, None]

    @torch.no_grad()
    def restart(self, z: torch.Tensor, threshold: float, rng: torch.Generator) -> int:
        dead = torch.nonzero(self.counts < threshold).squeeze(1)
        if len(dead) == 0:
            return 0
        pick = z[torch.randint(len(z), (len(dead),), generator=rng)]
        self.codebook[dead] = pick
        self.sums[dead] = pick * threshold * 2
        self.counts[dead] = threshold * 2
        return len(dead)

    def state(self) -> dict:
        return {"codebook": self.codebook, "counts": self.counts, "sums": self.sums}

    def load(self, s: dict) -> None:
        self.codebook, self.counts, self.sums = s["codebook"], s["counts"], s["sums"]


def pixel_finetune(args, enc, dec, book: EMACodebook, opt, start: int, log: list, save) -> None:
    """Fine-tune the decoder through rd's frozen analysis and synthesis on pixel crops."""
    from pytorch_msssim import ms_ssim

    import lcodec
    from lcodec.train.data import list_images, random_crops

    rd = lcodec.load("walloc-rgb-rd").transform.eval()
    for q in (*rd.parameters(), *enc.parameters()):
        q.requires_grad_(False)
    crops = random_crops(list_images(args.data), args.pixel_crop, random.Random(args.seed * 1000 + start))
    t0 = time.time()
    bar = tqdm(total=args.pixel_steps, initial=start, desc="pixel fine-tuning")
    for step in range(start, args.pixel_steps):
        x = torch.stack([next(crops) for _ in range(args.pixel_batch)]).float() / 255
        x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x, x.flip(-1))
        with torch.no_grad():
            z = enc(rd.analysis(x))
            flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
            q = book.codebook[nearest(flat, book.codebook)].reshape(z.shape[0], z.shape[2], z.shape[3], -1)
        x_hat = rd.synthesis(dec(q.permute(0, 3, 1, 2)))
        mse = F.mse_loss(x_hat, x)
        msssim = ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0)
        loss = (1 - msssim) + args.mse_weight * mse
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.update(1)
        bar.set_postfix(msssim=f"{float(msssim):.4f}", psnr=f"{float(-10 * torch.log10(mse)):.2f}")
        if (step + 1) % 10 == 0:
            log.append({"pixel_step": step + 1, "seconds": round(time.time() - t0, 1), "ms_ssim": float(msssim),
                        "psnr": float(-10 * torch.log10(mse.detach()))})
        if (step + 1) % 50 == 0 or step + 1 == args.pixel_steps:
            save(pixel_step=step + 1)
    bar.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--cache", type=Path, default=Path("/tmp/vq/rd_latents.pt"))
    p.add_argument("--codewords", type=int, default=4096)
    p.add_argument("--code-dim", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--steps", type=int, default=3000, help="total steps, warm-up included")
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--crop", type=int, default=24, help="crop side in rd latent positions (x8 pixels)")
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--beta", type=float, default=0.25)
    p.add_argument("--decay", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pixel-steps", type=int, default=0, help="decoder fine-tuning steps in pixel space")
    p.add_argument("--pixel-crop", type=int, default=192)
    p.add_argument("--pixel-batch", type=int, default=8)
    p.add_argument("--pixel-lr", type=float, default=1e-4)
    p.add_argument("--mse-weight", type=float, default=16.0)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--log", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg = VQConfig(code_dim=args.code_dim, hidden=args.hidden)
    enc, dec = VQEncoder(cfg), VQDecoder(cfg)
    params = [*enc.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr)
    book: EMACodebook | None = None
    step, pixel_step, log = 0, 0, []
    pixel_opt = torch.optim.Adam(dec.parameters(), lr=args.pixel_lr)
    rng, grng = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    if args.checkpoint.exists():
        ck = torch.load(args.checkpoint, weights_only=False)
        enc.load_state_dict(ck["encoder"])
        dec.load_state_dict(ck["decoder"])
        opt.load_state_dict(ck["opt"])
        if ck["book"] is not None:
            book = EMACodebook(ck["book"]["codebook"], args.decay)
            book.load(ck["book"])
        step, log = ck["step"], ck["log"]
        pixel_step = ck.get("pixel_step", 0)
        if "pixel_opt" in ck:
            pixel_opt.load_state_dict(ck["pixel_opt"])
        rng.setstate(ck["rng"])
        print(f"resumed at step {step}")
    latents = cache_latents(args.data, args.cache)

    def save(**update) -> None:
        nonlocal pixel_step
        pixel_step = update.get("pixel_step", pixel_step)
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.checkpoint.with_suffix(".tmp")
        torch.save({"encoder": enc.state_dict(), "decoder": dec.state_dict(), "opt": opt.state_dict(),
                    "book": None if book is None else book.state(), "step": step, "log": log,
                    "pixel_step": pixel_step, "pixel_opt": pixel_opt.state_dict(),
                    "rng": rng.getstate(), "config": cfg.to_dict(), "args": vars(args) | {
                        "data": str(args.data), "cache": str(args.cache), "checkpoint": str(args.checkpoint),
                        "out": str(args.out), "log": str(args.log)}}, tmp)
        tmp.replace(args.checkpoint)
        if args.log is not None:
            args.log.parent.mkdir(parents=True, exist_ok=True)
            args.log.write_text(json.dumps(log, indent=0))

    t0 = time.time()
    bar = tqdm(total=args.steps, initial=step, desc="vq")
    while step < args.steps:
        if step == args.warmup and book is None:  # k-means start of the codebook
            with torch.no_grad():
                zs = torch.cat([enc(latent_crops(latents, args.crop, args.batch, rng)).permute(0, 2, 3, 1)
                                .reshape(-1, cfg.code_dim) for _ in range(max(1, 10 * args.codewords // (args.batch * (args.crop // 2) ** 2) + 1))])
            book = EMACodebook(kmeans(zs, args.codewords, iters=15, seed=args.seed), args.decay)
        y = latent_crops(latents, args.crop, args.batch, rng)
        z = enc(y)
        stats: dict[str, float] = {}
        if book is None:
            y_hat = dec(z)
            loss = F.mse_loss(y_hat, y)
        else:
            flat = z.permute(0, 2, 3, 1).reshape(-1, cfg.code_dim)
            idx = nearest(flat.detach(), book.codebook)
            q = book.codebook[idx]
            commit = F.mse_loss(flat, q)
            st = (flat + (q - flat).detach()).reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
            y_hat = dec(st)
            loss = F.mse_loss(y_hat, y) + args.beta * commit
            book.update(flat.detach(), idx)
            probs = torch.bincount(idx, minlength=args.codewords).float() / len(idx)
            stats = {"perplexity": float(torch.exp(-(probs[probs > 0] * probs[probs > 0].log()).sum())),
                     "commit": float(commit)}
            if step % 50 == 0:
                stats["restarted"] = book.restart(flat.detach(), 0.02 / args.codewords * len(idx), grng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        mse = float(F.mse_loss(y_hat.detach(), y))
        bar.update(1)
        bar.set_postfix(mse=f"{mse:.5f}", **{k: f"{v:.1f}" for k, v in stats.items() if k == "perplexity"})
        if step % 25 == 0 or step == args.steps:
            log.append({"step": step, "seconds": round(time.time() - t0, 1), "latent_mse": mse,
                        "psnr_latent": float(10 * torch.log10(1 / torch.tensor(mse))), **stats})
        if step % args.save_every == 0 or step == args.steps:
            save()
    bar.close()
    if args.pixel_steps > pixel_step:
        pixel_finetune(args, enc, dec, book, pixel_opt, pixel_step, log, save)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"vq_config": cfg.to_dict(), "encoder": enc.state_dict(), "decoder": dec.state_dict(),
                "codebook": book.codebook if book is not None else None,
                "counts": book.counts if book is not None else None, "steps": step, "pixel_steps": pixel_step}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
