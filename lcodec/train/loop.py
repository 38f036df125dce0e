"""Rate-distortion training: loss = lambda * D + R as the codec defines it (``rd_loss``), resumable.

Checkpoints hold the model, optimizer, step and recipe; ``train`` continues from
``out_dir/checkpoint.pt`` when it exists, so a run cut short loses at most one
checkpoint interval, and a GPU session can continue a CPU run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lcodec.errors import InputError
from lcodec.registry import create_codec
from lcodec.train.pack_weights import save_deflated

__all__ = ["TrainRecipe", "train", "export_weights", "init_from_shipped", "fit_parser", "load_for_fit", "save_fit",
           "record_in_manifest"]


@dataclass(frozen=True)
class TrainRecipe:
    codec: str
    quality: int
    lmbda: float
    crop: int = 256
    batch_size: int = 8
    steps: int = 10_000
    lr: float = 1e-3
    lr_drop_at: float = 0.85  # fraction of steps after which lr is divided by 10
    seed: int = 0
    checkpoint_every_s: float = 120.0
    include: tuple[str, ...] = ()  # file names in the data folder to train on (empty: all of them)
    prior_lr_scale: float = 1.0  # learning rate of the entropy model (all but analysis/synthesis) relative to lr
    freeze_transform_steps: int = 0  # the transform (analysis/synthesis) stays fixed for this many steps
    init_samples: int = 64  # crops a codec with ``init_from_data`` (e.g. a KLT) starts from
    init_weights: str = ""  # shipped weights ("walloc-rgb-q3") whose same-named, same-shaped tensors start a fresh run


def _lr(recipe: TrainRecipe, step: int, total: int) -> float:
    """Warm-up over 200 steps, then /10 after ``lr_drop_at`` of this run's ``total`` steps (so a
    continuation with ``--steps 50000`` drops at 42,500, not at the recipe's own 85%)."""
    warm = min(1.0, (step + 1) / 200)
    return recipe.lr * warm * (0.1 if step >= recipe.lr_drop_at * total else 1.0)


def _save(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size); initialises torch.distributed when launched by torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if str(device).startswith("cuda") else "gloo")
    return (dist.get_rank() if world > 1 else 0), world


def train(
    recipe: TrainRecipe,
    data_dir: str | Path,
    out_dir: str | Path,
    device: str = "cpu",
    steps: int | None = None,
    progress: bool = True,
    init_from: str | Path | None = None,
) -> Path:
    """Train (or resume) ``recipe`` on images in ``data_dir``; returns the checkpoint path.

    Without a checkpoint in ``out_dir``, ``init_from`` (a shipped weights file) starts the
    run from those weights at the step they were exported at, with a fresh optimizer:
    how a session with more compute continues improving the committed weights.

    Under ``torchrun --nproc_per_node N`` each process trains on its own share of every
    step's samples (global batch = N x batch_size) and gradients are averaged (DDP);
    rank 0 alone writes the log and checkpoints.
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from tqdm import tqdm

    from lcodec.api import _stored_qualities
    from lcodec.train.data import make_dataset

    rank, world = _distributed(device)
    if str(device).startswith("cuda") and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    total = recipe.steps if steps is None else steps
    torch.manual_seed(recipe.seed)
    codec = create_codec(recipe.codec, recipe.quality).to(device)
    transform = list(codec.transform.parameters())
    entropy = [p for p in codec.parameters() if all(p is not q for q in transform)]
    groups = [{"params": transform, "scale": 1.0, "transform": True},
              {"params": entropy, "scale": recipe.prior_lr_scale, "transform": False}]
    opt = torch.optim.Adam([g for g in groups if g["params"]], lr=recipe.lr)
    step = 0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ck["recipe"]["codec"] != recipe.codec or ck["recipe"]["quality"] != recipe.quality:
            raise InputError(f"{ckpt_path} belongs to another recipe ({ck['recipe']['codec']})")
        codec.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step = int(ck["step"])
    elif init_from is not None:
        shipped = torch.load(init_from, map_location="cpu", weights_only=True)
        if shipped.get("name") != recipe.codec or recipe.quality not in _stored_qualities(shipped):
            raise InputError(f"{init_from} holds {shipped.get('name')} q{shipped.get('quality')}, not this recipe's codec")
        codec.load_weights(shipped)
        codec.to(device)
        step = int(shipped.get("training", {}).get("step", 0))
    elif recipe.init_weights:
        copied = init_from_shipped(codec, recipe.init_weights)
        if rank == 0:
            print(f"initialised {len(copied)} tensors from shipped {recipe.init_weights}")
    data = make_dataset(codec, data_dir, crop=recipe.crop, seed=recipe.seed, include=recipe.include)
    fresh = not ckpt_path.exists() and init_from is None and not recipe.init_weights
    if fresh and codec.init_from_data([data[i] for i in range(recipe.init_samples)]):  # e.g. a KLT of the data
        codec.to(device)
    model = DistributedDataParallel(codec) if world > 1 else codec
    lead = rank == 0
    log = (out_dir / "log.jsonl").open("a") if lead else None

    def save() -> None:
        if lead:
            _save(ckpt_path, {"recipe": dataclasses.asdict(recipe), "model": codec.state_dict(),
                              "optimizer": opt.state_dict(), "step": step, "world_size": world})

    model.train()
    last_save = time.time()
    bar = tqdm(total=total, initial=step, disable=not (progress and lead), desc=f"{recipe.codec} q{recipe.quality}")
    while step < total:
        first = (step * world + rank) * recipe.batch_size  # every sample index is used once
        x = torch.stack([data[first + j] for j in range(recipe.batch_size)]).to(device)
        for g in opt.param_groups:
            frozen = g["transform"] and step < recipe.freeze_transform_steps
            g["lr"] = 0.0 if frozen else _lr(recipe, step, total) * g["scale"]
        out = model(x)
        loss, shown = codec.rd_loss(out, x, recipe.lmbda)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})
        if log is not None and step % 50 == 0:
            log.write(json.dumps({"step": step, "loss": loss.item(), **shown, "world_size": world}) + "\n")
            log.flush()
        if time.time() - last_save > recipe.checkpoint_every_s:
            save()
            last_save = time.time()
    bar.close()
    save()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return ckpt_path


def init_from_shipped(codec: torch.nn.Module, name: str) -> list[str]:
    """Copy the tensors of shipped weights ``name`` (e.g. "walloc-rgb-q3") whose names and shapes
    match ``codec``'s into it (a new entropy model on a trained transform); returns their names."""
    from lcodec.api import weights_path

    state = torch.load(weights_path(name), map_location="cpu", weights_only=True)["state_dict"]
    own = codec.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise InputError(f"shipped {name} shares no tensors with {type(codec).__name__}")
    codec.load_state_dict(matched, strict=False)
    return sorted(matched)


def export_weights(checkpoint: str | Path, dest: str | Path) -> Path:
    """Turn a training checkpoint into shipped weights: state dict + frozen integer tables."""
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    codec = create_codec(ck["recipe"]["codec"], ck["recipe"]["quality"])
    codec.load_state_dict(ck["model"])
    codec.eval()
    codec.export()
    return save_weights(codec, dest, {"recipe": ck["recipe"], "step": int(ck["step"])})


def save_weights(codec: torch.nn.Module, dest: str | Path, training: dict, over: Path | None = None,
                 replaced: str | tuple[str, ...] = "") -> Path:
    """Write an exported codec's weights (with how they were trained) and record the file's
    sha256 in the folder's manifest.json.

    ``over``: a shipped weights file (same folder) this one is laid over: only the tensors whose
    names start with ``replaced`` (a prefix or a tuple of them) are written, with the base's name
    and sha256; ``lcodec.load``
    takes every other tensor from the base (``lcodec.api.with_base``)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    state = {**codec.weights_state(), "training": training}
    if over is not None:
        if not replaced:
            raise InputError("an overlay weights file needs the prefix of the tensors it replaces")
        prefixes = (replaced,) if isinstance(replaced, str) else tuple(replaced)
        state["state_dict"] = {k: v for k, v in state["state_dict"].items() if k.startswith(prefixes)}
        replaced = replaced if isinstance(replaced, str) else list(prefixes)
        state.update(base=over.name, base_sha256=hashlib.sha256(over.read_bytes()).hexdigest(), replaced=replaced)
    save_deflated(state, dest)
    record_in_manifest(dest)
    return dest


def record_in_manifest(dest: Path) -> None:
    """Record a weights file's sha256 in its folder's manifest.json."""
    manifest_path = dest.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[dest.name] = hashlib.sha256(dest.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")


# ------------------------------------------------------------- post-hoc fits onto shipped weights
# (``python -m lcodec.train.context`` and ``python -m lcodec.train.zprior``: a part of a shipped
# ladder is re-fitted on CPU while every other tensor stays as shipped)
def drop_lr(opt: torch.optim.Optimizer, step: int, steps: int, lr: float) -> None:
    """The post-hoc fits' schedule: ``lr`` until 80% of ``steps``, then ``lr / 10``."""
    if step == int(0.8 * steps) + 1:
        for group in opt.param_groups:
            group["lr"] = lr / 10


def fit_parser(prog: str, description: str, needs: str, crops: int, steps: int, lr: float):
    """The arguments both fits share: codec, --data, --held-out, --crops, --steps, --lr, --seed,
    --out, --log."""
    import argparse

    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("codec", help=f"a shipped ladder whose config has {needs}, e.g. walloc-rgb-rd")
    ap.add_argument("--data", required=True, type=Path, help="training images")
    ap.add_argument("--held-out", type=Path, default=None, help="images to report the fitted part on (e.g. images/val)")
    ap.add_argument("--crops", type=int, default=crops)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="weights file to write")
    ap.add_argument("--log", type=Path, default=None, help="JSON log to write")
    return ap


def load_for_fit(name: str, refit: str | tuple[str, ...], source: str | None = None) -> tuple[torch.nn.Module, Path, dict]:
    """A codec ``name`` at its default quality holding the shipped file's tensors (of codec
    ``source`` if given, e.g. the ladder a variant is fitted onto), all but those under ``refit``
    (state-dict prefixes, e.g. "context."), which the caller re-initialises and fits. Returns
    (codec in eval mode, path of the shipped file, its loaded state)."""
    from lcodec.api import weights_path, with_base
    from lcodec.registry import get_spec

    codec = create_codec(name, get_spec(name).default_quality)
    base = weights_path(source or name)
    state = with_base(torch.load(base, map_location="cpu", weights_only=True), base)
    own = codec.state_dict()
    kept = {k: v for k, v in state["state_dict"].items() if not k.startswith(refit) and k in own}
    missing = [k for k in own if not k.startswith(refit) and k not in kept]
    if missing:
        raise InputError(f"{base} lacks {len(missing)} tensors of {name} (e.g. {missing[0]})")
    codec.load_state_dict(kept, strict=False)
    codec.eval()
    return codec, base, state


def save_fit(codec: torch.nn.Module, args, procedure: str, base: Path, state: dict, results: dict,
             log_only: dict | None = None, replaced: str = "") -> dict:
    """Export ``codec`` and write it to ``args.out`` with how it was fitted (``procedure``, the
    arguments, the base file's sha256 and training record, ``results``); the same record plus
    ``log_only`` (e.g. a per-step log) goes to ``args.log`` if given. ``replaced``: write only the
    tensors under that prefix, laid over ``base`` (``save_weights``). Returns the record."""
    codec.export()
    info = {"procedure": procedure, "args": {k: str(v) for k, v in vars(args).items()},
            "base_weights_sha256": hashlib.sha256(base.read_bytes()).hexdigest(),
            "base_training": state.get("training"), **results}
    save_weights(codec, args.out, info, over=base if replaced else None, replaced=replaced)
    if args.log:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        args.log.write_text(json.dumps({**info, **(log_only or {})}, indent=1) + "\n")
    return info
