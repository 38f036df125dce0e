"""Lossless codecs: the identity pixel transform (``lcodec.models.pixels``) plus a probabilistic
circuit entropy model (``lcodec.entropy.circuit_model``), built by the generic assembly.

| codec | transform | entropy model | data |
|---|---|---|---|
| pc-mnist | 28x28 8-bit grayscale pixels | HCLT, 32 hidden states, exact integer evaluation | MNIST digits |

Liu, Mandt & Van den Broeck, "Lossless Compression with Probabilistic Circuits" (ICLR 2022). The
circuit is fitted by EM on CPU (``python -m lcodec.train.circuit``) on MNIST test digits 0-8999;
digits 9000-9999 are never used for fitting or tuning (docs/models/pc-mnist.md).
"""
from __future__ import annotations

from lcodec.codecs.assembly import ComposedCodec
from lcodec.entropy.circuit import HCLTConfig
from lcodec.entropy.circuit_model import CircuitEntropyModel
from lcodec.models.pixels import PixelConfig, PixelTransform
from lcodec.registry import CodecSpec, register_codec

__all__ = ["PC_MNIST", "MNIST_PIXELS", "lossless_codec"]

MNIST_PIXELS = PixelConfig(channels=1, height=28, width=28)
PC_MNIST = HCLTConfig(variables=784, values=256, hidden=32, mi_bins=4)


def lossless_codec(pixels: PixelConfig, circuit: HCLTConfig, name: str) -> ComposedCodec:
    return ComposedCodec(PixelTransform(pixels), CircuitEntropyModel(circuit), name=name, quality=1)


@register_codec(CodecSpec(
    name="pc-mnist", modality="image", qualities=(1,), default_quality=1,
    transform="identity: 28x28 8-bit grayscale pixels (lossless)",
    entropy_model="probabilistic circuit: hidden Chow-Liu tree (HCLT), 32 hidden states, evaluated in exact "
                  "integer arithmetic; per-pixel conditionals as 20-bit integer tables",
    paper="Liu, Mandt & Van den Broeck, Lossless Compression with Probabilistic Circuits, ICLR 2022",
    description="lossless 28x28 grayscale digits (MNIST); one image or a whole dataset per stream",
    weights={1: "pc-mnist.pt"}))
def pc_mnist(quality: int) -> ComposedCodec:
    return lossless_codec(MNIST_PIXELS, PC_MNIST, "pc-mnist")
