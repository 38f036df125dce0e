"""A small PixelCNN (van den Oord et al. 2016): the neural autoregressive baseline of
benchmarks/lossless_mnist.py, trained on the same digits (MNIST test 0-8999) for about the CPU
time pc-mnist's circuit took to fit, and coded with the same range coder.

Masked 7x7 convolution (mask A), residual blocks of masked 3x3 convolutions (mask B), 256-way
softmax per pixel. Encoding is one forward pass for a batch; decoding runs one pass per pixel (784
per batch), with probabilities rounded to 2**-20 counts (``lcodec.entropy.circuit.quantize``) so
that encoder and decoder agree in one process. A baseline, not a codec: it makes no claim of
cross-machine exactness.

    python benchmarks/pixelcnn.py --minutes 10 --checkpoint /tmp/pixelcnn.pt --out docs/results/lossless_mnist/pixelcnn.pt
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import constriction
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lcodec.entropy.circuit import CODING_BITS, quantize  # noqa: E402

_FAMILY = constriction.stream.model.Categorical(perfect=False)


class MaskedConv(nn.Conv2d):
    def __init__(self, cin: int, cout: int, k: int, mask: str) -> None:
        super().__init__(cin, cout, k, padding=k // 2)
        m = torch.ones_like(self.weight)
        c = k // 2
        m[:, :, c, c + (mask == "B"):] = 0
        m[:, :, c + 1:] = 0
        self.register_buffer("mask", m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    def __init__(self, channels: int = 48, blocks: int = 5) -> None:
        super().__init__()
        self.first = MaskedConv(1, channels, 7, "A")
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), MaskedConv(channels, channels, 3, "B"), nn.ReLU(),
                          MaskedConv(channels, channels, 3, "B")) for _ in range(blocks))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, 128, 1), nn.ReLU(), nn.Conv2d(128, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) values 0..255 -> logits (B, 256, H, W)."""
        h = self.first(x / 127.5 - 1.0)
        for blk in self.blocks:
            h = h + blk(h)
        return self.head(h)


def bits(model: PixelCNN, x: torch.Tensor) -> torch.Tensor:
    """Bits per image under the model's float softmax, (B,)."""
    logp = F.log_softmax(model(x.float()), 1)
    return -logp.gather(1, x.long()).sum((1, 2, 3)) / math.log(2)


def counts(logits: torch.Tensor) -> torch.Tensor:
    """logits (B, 256) -> integer counts summing to 2**20 (each >= 1)."""
    p = torch.softmax(logits.double(), -1)
    return quantize(torch.floor(p * 2.0**40))


@torch.no_grad()
def encode(model: PixelCNN, x: torch.Tensor, chunk: int = 100) -> bytes:
    """(B, 1, 28, 28) int values -> one range-coded stream: chunks of ``chunk`` images, pixels in raster
    order within a chunk (images within a pixel). Each chunk's probabilities come from one forward pass
    on full images, the same shapes the decoder runs, so both sum the same products in the same order
    (the pixels the masks hide enter every sum multiplied by an exact zero)."""
    enc = constriction.stream.queue.RangeEncoder()
    for part in x.split(chunk):
        logits = model(part.float())  # (b, 256, H, W)
        c = counts(logits.permute(2, 3, 0, 1).reshape(-1, 256))  # (H*W*b, 256), raster order
        sym = part[:, 0].permute(1, 2, 0).reshape(-1)
        enc.encode(sym.to(torch.int32).numpy(), _FAMILY, np.ldexp(c.numpy().astype(np.float64), -CODING_BITS))
    return enc.get_compressed().astype("<u4").tobytes()


@torch.no_grad()
def decode(model: PixelCNN, data: bytes, b: int, h: int = 28, w: int = 28, chunk: int = 100) -> torch.Tensor:
    """One full-image forward pass per pixel and chunk (h * w passes), as ``encode`` computed them."""
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    out = []
    for start in range(0, b, chunk):
        x = torch.zeros(min(chunk, b - start), 1, h, w)
        for i in range(h):
            for j in range(w):
                c = counts(model(x)[:, :, i, j])
                x[:, 0, i, j] = torch.from_numpy(dec.decode(_FAMILY, np.ldexp(c.numpy().astype(np.float64),
                                                                              -CODING_BITS)).astype(np.float32))
        out.append(x)
    return torch.cat(out)


def train(x: torch.Tensor, minutes: float, checkpoint: Path | None, batch: int = 64, lr: float = 2e-3,
          log: Path | None = None) -> PixelCNN:
    """Adam on (N, 1, 28, 28) values for ``minutes`` of wall time in all (resumes from ``checkpoint``)."""
    torch.manual_seed(0)
    model = PixelCNN()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    state = {"seconds": 0.0, "steps": 0, "history": []}
    if checkpoint is not None and checkpoint.exists():
        ck = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = {"seconds": ck["seconds"], "steps": ck["steps"], "history": list(ck["history"])}
        print(f"resumed at step {state['steps']} ({state['seconds'] / 60:.1f} min)", file=sys.stderr)
    g = torch.Generator().manual_seed(state["steps"])
    t0, last_save = time.perf_counter() - state["seconds"], time.perf_counter()
    while time.perf_counter() - t0 < minutes * 60:
        idx = torch.randint(0, len(x), (batch,), generator=g)
        loss = bits(model, x[idx]).mean() / 784
        opt.zero_grad()
        loss.backward()
        opt.step()
        state["steps"] += 1
        if state["steps"] % 50 == 0:
            state["history"].append({"step": state["steps"], "seconds": round(time.perf_counter() - t0, 1),
                                     "train_bpd": float(loss)})
            print(json.dumps(state["history"][-1]), file=sys.stderr, flush=True)
        if checkpoint is not None and time.perf_counter() - last_save > 60:
            state["seconds"] = time.perf_counter() - t0
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), **state}, checkpoint)
            last_save = time.perf_counter()
    state["seconds"] = time.perf_counter() - t0
    if checkpoint is not None:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), **state}, checkpoint)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps({"minutes": minutes, "batch": batch, "lr": lr, **state}, indent=1) + "\n")
    model.train_state = state
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    from lcodec.train.circuit import FIT, load_mnist

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/mnist"))
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--log", type=Path, default=None)
    args = p.parse_args(argv)
    x = load_mnist(args.data, FIT).reshape(-1, 1, 28, 28)
    model = train(x, args.minutes, args.checkpoint, log=args.log)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
