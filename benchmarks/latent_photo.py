"""Compressed-domain learning on photos (issue 31): colorization of 256x256 crops, learned on
pixels vs on walloc-rgb latents, with the same trunk, optimiser and epochs.

Task: given the gray version of a 256x256 photo crop (luma Y = 0.299 R + 0.587 G + 0.114 B, rounded
to 8 bits, replicated to 3 channels where a codec needs RGB), predict the colour crop.

Data: training crops from shared/data/images/train (BSDS500 481x321 JPEGs and ~1 MP Wikipedia PNGs),
``--crops`` per photo at positions drawn by a fixed-seed generator (seed 0, photos in name order);
evaluation crops from shared/data/images/val only (4 per photo, seed 1), which is never used for
any choice of this script. Photos whose three channels are equal (gray files) are skipped: they have
no colour to predict (val: brick, camera, grass, gravel).

Methods (model sizes in results.json):

* pixels: gray pixels (1x256x256) -> patch stem (two 4x4 space-to-depth steps, 1x1 conv + ReLU each)
  to 64x16x16 -> trunk -> 1x1 conv to 2x4x4, pixel shuffle, bilinear x4 -> chroma (Cb, Cr) at full
  resolution; output RGB = the input luma plus the predicted chroma (so luma is exact); loss MSE
  on RGB. The output layer starts at zero (the net starts at "no colour").
* latents: walloc-rgb (default quality) latents of the gray crop (64x16x16) -> 3x3 conv + ReLU ->
  trunk -> 3x3 conv (zero at the start), added to the input (a residual on the gray latents) ->
  colour latents; loss MSE on latents standardised with the codec's shipped statistics (``lcodec.data.latent_stats``,
  what ``LatentDataset(normalize=True)`` applies). Evaluated by decoding the prediction with
  ``codec.decode_latents``, and also with the decoded luma replaced by the input luma.
* trunk (both): ``--depth`` 3x3 conv + ReLU layers of ``--width`` channels at 16x16.
* Adam 1e-3 with cosine decay to 0, batch 16, ``--epochs`` epochs, ``--seeds`` seeds (the seed sets
  the initialisation and the batch order).

Baselines: the gray crop itself as the output; the gray crop's latents decoded (the latent net's
starting point); the codec round trip of the true colour crop (the best the latent route can
decode to), also with the input luma.

Metrics on the val crops, mean over crops: PSNR-RGB after 8-bit quantisation
(``lcodec.eval.metrics.psnr``), PSNR of the chroma (full-range BT.601 Cb and Cr of the 8-bit RGB,
peak 255) and of the luma Y. Timings: reading and cropping, the one-time ``encode_latents`` of every
crop, training seconds per epoch and per run, the decode of the predicted latents.

    python benchmarks/latent_photo.py [--out docs/results/latent_photo] [--epochs 10] [--seeds 3]
    python benchmarks/latent_photo.py --quick      # smoke run: 16 photos, 1 epoch, 1 seed, -> /tmp

Writes OUT/results.json and OUT/results.md. Single-threaded unless ``--threads`` says otherwise.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "images"
SIZE = 256
# full-range BT.601 (JPEG) RGB -> Y, Cb, Cr; its inverse maps (Y, Cb, Cr) back to RGB
YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
                   dtype=torch.float64)
RGB_FROM_YCC = torch.linalg.inv(YCC)


def to_ycc(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 3, H, W) Y, Cb, Cr (chroma centred on 0)."""
    return torch.einsum("ij,bjhw->bihw", YCC.to(x.dtype), x)


def to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", RGB_FROM_YCC.to(ycc.dtype), ycc)


def gray_of(rgb8: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> the 8-bit luma as uint8 (B, 1, H, W)."""
    y = torch.einsum("j,bjhw->bhw", YCC[0].float(), rgb8.float())
    return y.round().clamp(0, 255).to(torch.uint8)[:, None]


# ------------------------------------------------------------------------------------- data
def photo_crops(folder: Path, per_photo: int, seed: int, limit: int | None = None):
    """Deterministic 256x256 crops of every colour photo in ``folder`` (name order) -> (uint8 (N, 3,
    256, 256), names, skipped gray files)."""
    from lcodec.io.image import IMAGE_SUFFIXES, read_image

    rng = np.random.default_rng(seed)
    crops, names, skipped = [], [], []
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    for f in files[:limit]:
        x = read_image(f)
        if x.shape[1] < SIZE or x.shape[2] < SIZE:
            skipped.append(f"{f.name} (smaller than {SIZE})")
            continue
        if torch.equal(x[0], x[1]) and torch.equal(x[0], x[2]):
            skipped.append(f"{f.name} (gray)")
            continue
        x8 = (x * 255).round().to(torch.uint8)
        for k in range(per_photo):
            top = int(rng.integers(0, x.shape[1] - SIZE + 1))
            left = int(rng.integers(0, x.shape[2] - SIZE + 1))
            crops.append(x8[:, top : top + SIZE, left : left + SIZE].clone())
            names.append(f"{f.name}@{top},{left}")
    return torch.stack(crops), names, skipped


def float01(x8: torch.Tensor) -> torch.Tensor:
    return x8.float() / 255


# ------------------------------------------------------------------------------------- models
def trunk(width: int, depth: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    return layers


def zero_last(conv: nn.Conv2d) -> None:
    """Zero the output layer, so that both nets start from the no-colour prediction."""
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)


class PixelNet(nn.Module):
    """Gray pixels (B, 1, 256, 256) in [0, 1] -> RGB: input luma + predicted chroma (not clamped)."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.PixelUnshuffle(4), nn.Conv2d(16, 32, 1), nn.ReLU(),            # 32 x 64 x 64
            nn.PixelUnshuffle(4), nn.Conv2d(512, width, 1), nn.ReLU(),        # width x 16 x 16
            *trunk(width, depth),
            nn.Conv2d(width, 2 * 16, 1), nn.PixelShuffle(4),                  # 2 x 64 x 64
            nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False))  # 2 x 256 x 256
        zero_last(self.net[-3])  # starts at no colour

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        chroma = self.net(gray - 0.5)
        return to_rgb(torch.cat([gray, chroma], 1))


class LatentNet(nn.Module):
    """Standardised gray latents (B, 64, 16, 16) -> standardised colour latents (a residual on the input)."""

    def __init__(self, channels: int, width: int, depth: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), *trunk(width, depth),
                                 nn.Conv2d(width, channels, 3, padding=1))
        zero_last(self.net[-1])  # starts at the gray crop's latents

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.net(z)


def fit(model: nn.Module, inputs, targets, prepare, epochs: int, seed: int, batch: int = 16,
        log: str = "") -> dict[str, object]:
    """Adam 1e-3, cosine decay over all steps, MSE(model(prepare(inputs)), prepare(targets))."""
    n = len(inputs)
    steps = epochs * math.ceil(n / batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    epoch_seconds, losses = [], []
    for e in range(epochs):
        t0, total = time.perf_counter(), 0.0
        for idx in torch.randperm(n, generator=g).split(batch):
            x, y = prepare(inputs[idx], targets[idx])
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        epoch_seconds.append(time.perf_counter() - t0)
        losses.append(total / n)
        print(f"  {log} epoch {e + 1}/{epochs}: train loss {losses[-1]:.5f}, {epoch_seconds[-1]:.1f} s", flush=True)
    return {"epoch_seconds": round(float(np.mean(epoch_seconds)), 2), "train_seconds": round(sum(epoch_seconds), 1),
            "train_loss": [round(v, 6) for v in losses]}


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------- metrics
def chroma_psnr(truth8: torch.Tensor, pred: torch.Tensor, planes: slice = slice(1, 3)) -> torch.Tensor:
    """Per crop: PSNR of the Cb and Cr planes (or of ``planes``) of the 8-bit RGB, peak 255."""
    p8 = (pred.clamp(0, 1) * 255).round() / 255
    a, b = to_ycc(float01(truth8).double())[:, planes] * 255, to_ycc(p8.double())[:, planes] * 255
    return 10 * torch.log10(255.0**2 / ((a - b) ** 2).mean((1, 2, 3)).clamp_min(1e-10))


def metrics(truth8: torch.Tensor, pred: torch.Tensor) -> dict[str, float]:
    """Mean over crops of PSNR-RGB, PSNR of Cb+Cr and of Y (8-bit RGB, peak 255)."""
    from lcodec.eval.metrics import psnr

    return {"psnr_rgb": round(float(psnr(float01(truth8), pred).mean()), 3),
            "psnr_chroma": round(float(chroma_psnr(truth8, pred).mean()), 3),
            "psnr_y": round(float(chroma_psnr(truth8, pred, slice(0, 1)).mean()), 3)}


def by_photo(names: list[str], values: torch.Tensor) -> dict[str, float]:
    photos = sorted({n.split("@")[0] for n in names})
    return {ph: round(float(np.mean([float(v) for n, v in zip(names, values) if n.split("@")[0] == ph])), 2)
            for ph in photos}


def with_luma(pred: torch.Tensor, gray8: torch.Tensor) -> torch.Tensor:
    """Keep the chroma of ``pred`` and put the input luma under it."""
    ycc = to_ycc(pred.clamp(0, 1))
    return to_rgb(torch.cat([float01(gray8), ycc[:, 1:]], 1))


def summary(runs: list[dict[str, float]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k in runs[0]:
        v = [r[k] for r in runs]
        out[k] = round(float(np.mean(v)), 3)
        out[k + "_std"] = round(float(np.std(v)), 3)
        out[k + "_runs"] = v
    return out


# ------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    import lcodec
    from lcodec.data import latent_stats
    from lcodec.registry import get_spec

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help="default docs/results/latent_photo (/tmp/... with --quick)")
    p.add_argument("--codec", default="walloc-rgb")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--crops", type=int, default=2, help="training crops per photo")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: 16 train and 4 val photos, 1 epoch, 1 seed")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.epochs, args.seeds, args.crops = 1, 1, 1
    out_dir = args.out or (Path("/tmp/latent_photo_quick") if args.quick else ROOT / "docs" / "results" / "latent_photo")
    t_start = time.perf_counter()

    t0 = time.perf_counter()
    train8, train_names, train_skipped = photo_crops(DATA / "train", args.crops, 0, 16 if args.quick else None)
    val8, val_names, val_skipped = photo_crops(DATA / "val", 4, 1, 4 if args.quick else None)
    t_read = time.perf_counter() - t0
    gtrain8, gval8 = gray_of(train8), gray_of(val8)
    print(f"{len(train8)} train crops, {len(val8)} val crops ({t_read:.1f} s); skipped {train_skipped + val_skipped}",
          flush=True)

    quality = get_spec(args.codec).default_quality
    codec = lcodec.load(args.codec, quality)

    def encode(x8: torch.Tensor) -> torch.Tensor:
        return torch.cat([codec.encode_latents(float01(x8[i : i + 16]).expand(-1, 3, -1, -1))
                          for i in range(0, len(x8), 16)]).float()

    def decode(z: torch.Tensor) -> torch.Tensor:
        return torch.cat([codec.decode_latents(z[i : i + 16], size=(SIZE, SIZE)) for i in range(0, len(z), 16)])

    t0 = time.perf_counter()
    z_gtrain, z_train, z_gval, z_val = (encode(t) for t in (gtrain8, train8, gval8, val8))
    t_encode = time.perf_counter() - t0
    n_encoded = 2 * (len(train8) + len(val8))
    mean, scale = (s.view(1, -1, 1, 1) for s in latent_stats(codec))
    standard = lambda z: (z - mean) / scale  # noqa: E731
    print(f"encode_latents of {n_encoded} crops: {t_encode:.1f} s; latents {tuple(z_train.shape[1:])}", flush=True)

    # the training loss of predicting no colour (the gray crop / the gray crop's latents): what a fit must beat
    no_colour = {"pixels": float(np.mean([nn.functional.mse_loss(float01(gtrain8[i : i + 64]).expand(-1, 3, -1, -1),
                                                                 float01(train8[i : i + 64])).item()
                                          for i in range(0, len(train8), 64)])),
                 "latents": nn.functional.mse_loss(standard(z_gtrain), standard(z_train)).item()}
    rows: dict[str, dict[str, object]] = {}
    gray_chroma = chroma_psnr(val8, float01(gval8).expand(-1, 3, -1, -1))
    gains: dict[str, list] = {"pixels": [], "latents_input_luma": []}
    t0 = time.perf_counter()
    dec_val = decode(z_val)
    t_decode = time.perf_counter() - t0
    rows["gray"] = metrics(val8, float01(gval8).expand(-1, 3, -1, -1))
    rows["gray_latents_decoded"] = metrics(val8, decode(z_gval))
    rows["round_trip"] = metrics(val8, dec_val)
    rows["round_trip_input_luma"] = metrics(val8, with_luma(dec_val, gval8))
    for k in rows:
        print(k, rows[k], flush=True)

    runs: dict[str, list] = {"pixels": [], "latents": [], "latents_input_luma": []}
    fits: dict[str, list] = {"pixels": [], "latents": []}
    decode_seconds = []
    sizes = {}
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        model = PixelNet(args.width, args.depth)
        sizes["pixels"] = params(model)
        fits["pixels"].append(fit(model, gtrain8, train8, lambda a, b: (float01(a), float01(b)), args.epochs, seed,
                                  log=f"pixels seed {seed}"))
        with torch.no_grad():
            pred = torch.cat([model(float01(gval8[i : i + 16])) for i in range(0, len(gval8), 16)])
        runs["pixels"].append(metrics(val8, pred))
        gains["pixels"].append(chroma_psnr(val8, pred) - gray_chroma)
        print(f"pixels seed {seed}: {runs['pixels'][-1]}", flush=True)

        torch.manual_seed(seed)
        model = LatentNet(z_train.shape[1], args.width, args.depth)
        sizes["latents"] = params(model)
        fits["latents"].append(fit(model, z_gtrain, z_train, lambda a, b: (standard(a), standard(b)), args.epochs,
                                   seed, log=f"latents seed {seed}"))
        with torch.no_grad():
            z_pred = model(standard(z_gval)) * scale + mean
        t0 = time.perf_counter()
        pred = decode(z_pred)
        decode_seconds.append(time.perf_counter() - t0)
        runs["latents"].append(metrics(val8, pred))
        runs["latents_input_luma"].append(metrics(val8, with_luma(pred, gval8)))
        gains["latents_input_luma"].append(chroma_psnr(val8, with_luma(pred, gval8)) - gray_chroma)
        print(f"latents seed {seed}: {runs['latents'][-1]}, with input luma {runs['latents_input_luma'][-1]}",
              flush=True)
    for k, v in runs.items():
        rows[k] = summary(v)
    for k, v in fits.items():
        rows[k] |= {"params": sizes[k], "epoch_seconds": round(float(np.mean([f["epoch_seconds"] for f in v])), 2),
                    "train_seconds": round(float(np.mean([f["train_seconds"] for f in v])), 1),
                    "train_loss_no_colour": round(no_colour[k], 6), "fits": v}
    rows["latents_input_luma"] |= {"params": sizes["latents"]}
    total = time.perf_counter() - t_start

    command = "python benchmarks/latent_photo.py" + (" --quick" if args.quick else "") + "".join(
        f" --{k} {getattr(args, k)}" for k in ("epochs", "seeds", "crops", "width", "depth", "threads")
        if getattr(args, k) != p.get_default(k) and not args.quick)
    if args.out is not None:
        where = args.out.resolve()
        command += f" --out {where.relative_to(ROOT) if where.is_relative_to(ROOT) else where}"
    shape = tuple(z_train.shape[1:])
    out = {
        "command": command,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {torch.get_num_threads()} thread(s), "
                   f"torch {torch.__version__}, Python {platform.python_version()}",
        "codec": {"name": args.codec, "quality": quality, "weights_hash": codec.weights_hash.hex()[:12],
                  "latent_shape": list(shape)},
        "data": {"train_crops": len(train8), "crops_per_train_photo": args.crops, "val_crops": len(val8),
                 "skipped": train_skipped + val_skipped, "val_crops_names": val_names},
        "training": {"epochs": args.epochs, "seeds": args.seeds, "batch": 16, "optimiser": "Adam 1e-3, cosine to 0",
                     "width": args.width, "depth": args.depth},
        "numbers_per_crop": {"pixels_in": SIZE * SIZE, "pixels_out_rgb": 3 * SIZE * SIZE,
                             "latents_in": int(np.prod(shape)), "latents_out": int(np.prod(shape))},
        "seconds": {"read_and_crop": round(t_read, 1), "encode_latents": round(t_encode, 1),
                    "encode_latents_ms_per_crop": round(1000 * t_encode / n_encoded, 1),
                    "decode_latents_ms_per_crop": round(1000 * float(np.mean(decode_seconds + [t_decode])) / len(val8), 1),
                    "total": round(total, 1)},
        "results": rows,
        "chroma_psnr_gain_over_gray_by_val_photo": {k: by_photo(val_names, torch.stack(v).mean(0))
                                                    for k, v in gains.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(out, indent=1) + "\n")
    (out_dir / "results.md").write_text(report(out))
    print(report(out))
    return 0


def report(out: dict) -> str:
    r, n, s, t = out["results"], out["numbers_per_crop"], out["seconds"], out["training"]
    d = out["data"]
    ci = f"{out['codec']['name']} q{out['codec']['quality']}"

    def psnr(row: dict, k: str) -> str:
        v = f"{row[k]:.2f}"
        return v + (f" +- {row[k + '_std']:.2f}" if k + "_std" in row else "")

    def line(label: str, key: str, inp: str, extra: str = "| | |") -> str:
        row = r[key]
        return f"| {label} | {inp} | {psnr(row, 'psnr_rgb')} | {psnr(row, 'psnr_chroma')} | {psnr(row, 'psnr_y')} {extra}"

    px, lt = r["pixels"], r["latents"]
    lines = [
        f"# Colorization of 256x256 photo crops: pixels vs {ci} latents",
        "",
        f"`{out['command']}`",
        "",
        f"{d['train_crops']} training crops ({d['crops_per_train_photo']} per photo of shared/data/images/train), "
        f"{d['val_crops']} val crops (4 per colour photo of shared/data/images/val; skipped: "
        f"{', '.join(d['skipped']) or 'none'}). Trunk {t['depth']} x conv3x3 {t['width']} at 16x16, {t['optimiser']}, "
        f"batch {t['batch']}, {t['epochs']} epochs, {t['seeds']} seeds (mean +- std). PSNR in dB on the val crops "
        f"(8-bit RGB; chroma = full-range BT.601 Cb, Cr; Y = luma). {out['machine']}.",
        "",
        "| method | numbers in per crop | PSNR RGB | PSNR chroma | PSNR Y | params | s/epoch (train s) |",
        "|---|---|---|---|---|---|---|",
        line("gray crop as the output", "gray", f"{n['pixels_in']:,}"),
        line(f"gray crop's latents, decoded", "gray_latents_decoded", f"{n['latents_in']:,}"),
        line("**pixels**: net on gray pixels -> chroma", "pixels", f"{n['pixels_in']:,}",
             f"| {px['params']:,} | {px['epoch_seconds']:.1f} ({px['train_seconds']:.0f}) |"),
        line("**latents**: net on gray latents -> colour latents, decoded", "latents", f"{n['latents_in']:,}",
             f"| {lt['params']:,} | {lt['epoch_seconds']:.1f} ({lt['train_seconds']:.0f}) |"),
        line("latents, decoded, luma from the input", "latents_input_luma", f"{n['latents_in']:,}"),
        line("codec round trip of the colour crop (bound for latents)", "round_trip", "-"),
        line("round trip, luma from the input", "round_trip_input_luma", "-"),
        "",
        f"One-time cost of the latent route: `encode_latents` of the gray and colour crops, {s['encode_latents']:.1f} s "
        f"for {2 * (d['train_crops'] + d['val_crops'])} crops ({s['encode_latents_ms_per_crop']:.0f} ms per crop); "
        f"turning predicted latents into pixels costs `decode_latents`, {s['decode_latents_ms_per_crop']:.0f} ms per crop. "
        f"Reading and cropping the photos: {s['read_and_crop']:.1f} s. Whole run: {s['total']:.0f} s.",
        "",
        f"Training loss during the last epoch (mean of seeds) vs predicting no colour on the training crops: pixels "
        f"{np.mean([f['train_loss'][-1] for f in px['fits']]):.5f} vs {px['train_loss_no_colour']:.5f} (RGB MSE); "
        f"latents {np.mean([f['train_loss'][-1] for f in lt['fits']]):.4f} vs {lt['train_loss_no_colour']:.4f} "
        f"(standardised latent MSE).",
        "",
        "Chroma PSNR gain over the gray crop per val photo (dB, mean of seeds): " + "; ".join(
            f"{k}: " + ", ".join(f"{ph.rsplit('.', 1)[0]} {v:+.2f}" for ph, v in g.items())
            for k, g in out["chroma_psnr_gain_over_gray_by_val_photo"].items()),
        "",
        "Per seed (PSNR RGB / chroma): " + "; ".join(
            f"{k}: " + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(r[k]["psnr_rgb_runs"], r[k]["psnr_chroma_runs"]))
            for k in ("pixels", "latents", "latents_input_luma")),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
