"""Fit pc-mnist's probabilistic circuit (``lcodec.entropy.circuit``) by EM on CPU.

The split (documented in docs/models/pc-mnist.md and kept): of the 10,000 MNIST test digits in
../shared/data/mnist, digits 0-8999 fit the circuit; 9000-9999 are never read here, only by the
benchmark. With ``--tune``, 0-7999 fit and 8000-8999 report validation bits (how the settings
were chosen); without it the circuit fits all of 0-8999.

    python -m lcodec.train.circuit --data ../shared/data/mnist --checkpoint /tmp/pc.ckpt \\
        --out lcodec/weights/pc-mnist.pt --log docs/results/train_pc-mnist/log.json

Steps: the Chow-Liu tree of the digits' pairwise mutual information; a start from a k-means
mixture (every node's state = its digit's cluster); then full-batch EM steps with the emissions
smoothed over neighbouring values. A checkpoint after every step; a killed run resumes from it.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lcodec.errors import InputError

__all__ = ["FIT", "TUNE_FIT", "TUNE_VALID", "TEST", "load_mnist", "fit", "main"]

FIT = range(0, 9000)
TUNE_FIT, TUNE_VALID = range(0, 8000), range(8000, 9000)
TEST = range(9000, 10000)  # never fitted on or tuned on: the benchmark's digits
IMAGES = "t10k-images-idx3-ubyte.gz"


def load_mnist(root: str | Path, span: range) -> torch.Tensor:
    """Digits ``span`` of the MNIST test set under ``root`` -> (N, 784) int64 values 0..255."""
    from lcodec.io.dataset import read_dataset_uint8

    path = Path(root) / IMAGES
    if not path.exists():
        raise InputError(f"{path}: the MNIST test images are missing (see ../shared/data/README.md)")
    a = read_dataset_uint8(path)
    if len(a) < span.stop:
        raise InputError(f"{path} holds {len(a)} digits, the split needs {span.stop}")
    return torch.from_numpy(a[span.start:span.stop].reshape(len(span), -1).astype(np.int64))


def fit(x: torch.Tensor, cfg, steps: int, smooth: float, alpha_emit: float, alpha_trans: float,
        checkpoint: Path | None, valid: torch.Tensor | None = None, log=None):
    """EM fit of an HCLT on (N, D) integer data, resuming from ``checkpoint`` if it exists."""
    from lcodec.entropy.circuit import HCLT, chow_liu_tree

    history: list[dict] = []
    best: dict | None = None
    if checkpoint is not None and checkpoint.exists():
        ck = torch.load(checkpoint, weights_only=True)
        model = HCLT(cfg, ck["parent"].numpy())
        for name in ("prior", "trans", "emit"):
            getattr(model, name).copy_(ck[name])
        history = list(ck["history"])
        best = ck.get("best")
        print(f"resumed from {checkpoint} at step {len(history)}", file=sys.stderr)
    else:
        t0 = time.perf_counter()
        model = HCLT(cfg, chow_liu_tree(x.numpy(), cfg.values, cfg.mi_bins))
        model.init_from_clusters(x)
        print(f"tree and k-means start in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    def step_done(rec: dict) -> None:
        nonlocal best
        rec["step"] = len(history) + 1
        history.append(rec)
        if "valid_bpd" in rec and (best is None or rec["valid_bpd"] < best["valid_bpd"]):
            best = {"step": rec["step"], "valid_bpd": rec["valid_bpd"],
                    **{n: getattr(model, n).clone() for n in ("prior", "trans", "emit")}}
        if checkpoint is not None:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"parent": torch.from_numpy(model.tree.parent), "prior": model.prior, "trans": model.trans,
                        "emit": model.emit, "history": history, "best": best}, tmp)
            tmp.replace(checkpoint)
        if log is not None:
            log(rec, history)

    model.em(x, max(0, steps - len(history)), alpha_trans=alpha_trans, alpha_emit=alpha_emit, smooth=smooth,
             valid=valid, log=step_done, progress=True)
    if best is not None:  # with a validation set: the step with the fewest validation bits
        for name in ("prior", "trans", "emit"):
            getattr(model, name).copy_(best[name])
        print(f"kept EM step {best['step']} ({best['valid_bpd']:.4f} bits/dim on the validation digits)",
              file=sys.stderr)
    return model, history


def main(argv: list[str] | None = None) -> int:
    from lcodec.codecs.lossless import PC_MNIST

    p = argparse.ArgumentParser(prog="python -m lcodec.train.circuit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/mnist"))
    p.add_argument("--hidden", type=int, default=PC_MNIST.hidden)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--smooth", type=float, default=8.0, help="emission smoothing width over values (0: off)")
    p.add_argument("--alpha-emit", type=float, default=1.0)
    p.add_argument("--alpha-trans", type=float, default=0.1)
    p.add_argument("--tune", action="store_true", help="fit on 0-7999 and report bits on 8000-8999")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="write the exported codec's weights here")
    p.add_argument("--log", type=Path, default=None, help="JSON log of the fit")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import dataclasses

    cfg = dataclasses.replace(PC_MNIST, hidden=args.hidden)
    x = load_mnist(args.data, TUNE_FIT if args.tune else FIT)
    valid = load_mnist(args.data, TUNE_VALID) if args.tune else None
    settings = {k: getattr(args, k) for k in ("hidden", "steps", "smooth", "alpha_emit", "alpha_trans", "tune")}
    split = "0-7999 (valid 8000-8999)" if args.tune else "0-8999"

    def log(rec: dict, history: list[dict]) -> None:
        print(json.dumps(rec), file=sys.stderr, flush=True)
        if args.log is not None:
            args.log.parent.mkdir(parents=True, exist_ok=True)
            args.log.write_text(json.dumps({"recipe": "lcodec.train.circuit", "settings": settings,
                                            "fit_digits": split, "history": history}, indent=1) + "\n")

    model, history = fit(x, cfg, args.steps, args.smooth, args.alpha_emit, args.alpha_trans, args.checkpoint,
                         valid, log)
    if args.out is not None:
        from lcodec.registry import create_codec
        from lcodec.train.loop import save_weights

        if cfg != PC_MNIST:
            raise InputError(f"pc-mnist ships hidden={PC_MNIST.hidden}; --out needs that size")
        codec = create_codec("pc-mnist")
        codec.entropy.set_circuit(model)
        codec.export()
        fit_bits = float(codec.entropy.information(x).mean()) / x.shape[1]
        save_weights(codec, args.out, {"recipe": "lcodec.train.circuit", "settings": settings, "fit_digits": split,
                                       "steps": len(history), "fit_bpd_integer": fit_bits})
        print(f"wrote {args.out}: integer circuit {fit_bits:.4f} bits/dim on the fitted digits", file=sys.stderr)
    if history:
        last = history[-1]
        print(f"EM step {last['step']}: {last['train_bpd']:.4f} bits/dim fitted"
              + (f", {last['valid_bpd']:.4f} valid" if "valid_bpd" in last else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
