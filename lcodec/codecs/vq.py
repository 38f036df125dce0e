"""Images at extreme rates: the VQ autoencoder (``lcodec.models.vq``) plus the codebook-index
entropy model (``lcodec.entropy.vq_index``), built by the generic assembly.

| codec | transform | entropy model | rates |
|---|---|---|---|
| vq-rgb | rd's wavelet analysis/synthesis + VQ autoencoder at 1/16 | k-means codebook ladder + context prior | 7 (64 ... 4096 codewords) |

Quality q uses the 2**(q + 5)-codeword codebook: q1 = 64 codewords (at most 6 bits per 16x16
block, about 0.023 bpp), q7 = 4096 (at most 12 bits, 0.047 bpp), all from one weights file laid
over walloc-rgb-rd.pt. ``decompress_with_erasures`` decodes with a fraction of the index positions
lost and predicts them with the restoration network.
"""
from __future__ import annotations

import torch

from lcodec.codecs.assembly import ComposedCodec
from lcodec.codecs.walloc import WALLOC_RGB_RD
from lcodec.entropy.vq_index import VQIndexConfig, VQIndexModel, ladder_sizes
from lcodec.errors import InputError
from lcodec.models.vq import VQAutoencoder, VQConfig
from lcodec.registry import CodecSpec, register_codec

__all__ = ["VQ_RGB", "VQ_RGB_INDEX", "vq_codec", "erasure_mask", "decompress_with_erasures"]

VQ_RGB = VQConfig(base_channels=WALLOC_RGB_RD.latent_channels, code_dim=32, hidden=128)
VQ_RGB_INDEX = VQIndexConfig(code_dim=32, codewords=4096, min_codewords=64, context_classes=8)
_QUALITIES = tuple(range(1, len(ladder_sizes(VQ_RGB_INDEX)) + 1))


def vq_codec(quality: int) -> ComposedCodec:
    """rd's analysis and synthesis (their tensors come from walloc-rgb-rd.pt, which the weights hash
    covers whole: ``carry_*``, as walloc-rgb-mcq does), the VQ autoencoder, codebook ``quality``."""
    return ComposedCodec(VQAutoencoder(VQ_RGB, WALLOC_RGB_RD), VQIndexModel(VQ_RGB_INDEX, quality - 1),
                         name="vq-rgb", quality=quality,
                         carry_tables=("tables", "y_tables", "rate_tables"), carry_entries=("hyper_config", "config"))


@register_codec(CodecSpec(
    name="vq-rgb", modality="image", qualities=_QUALITIES, default_quality=_QUALITIES[-1],
    transform="VQ (vector-quantized autoencoder), downsampling 16: walloc-rgb-rd's wavelet analysis and "
              "synthesis with a CNN encoder/decoder and 32-dimensional codewords at 1/16 between them",
    entropy_model="codebook indexes: k-means ladder of 64 ... 4096 codewords; uniform, histogram or "
                  "causal-context prior (left and upper neighbours' classes), 20-bit integer tables",
    paper="Mao et al., Extreme Image Compression using Fine-tuned VQGANs (DCC 2024); van den Oord et al., "
          "Neural Discrete Representation Learning (2017)",
    description="extreme rates (0.01-0.05 bpp): one index per 16x16 block; restores lost indexes",
    weights={q: "vq-rgb.pt" for q in _QUALITIES}))
def vq_rgb(quality: int) -> ComposedCodec:
    return vq_codec(quality)


def erasure_mask(shape: tuple[int, int, int], fraction: float, seed: int = 0) -> torch.Tensor:
    """A random mask (B, h, w) with round(fraction * h * w) lost positions per item."""
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"erased fraction must be in [0, 1], got {fraction}")
    b, h, w = shape
    g = torch.Generator().manual_seed(seed)
    n = round(fraction * h * w)
    mask = torch.zeros(b, h * w, dtype=torch.bool)
    for i in range(b):
        mask[i, torch.randperm(h * w, generator=g)[:n]] = True
    return mask.reshape(b, h, w)


@torch.no_grad()
def decompress_with_erasures(codec: ComposedCodec, data: bytes, lost: torch.Tensor | float,
                             seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a vq-rgb stream as if the index positions in ``lost`` had not arrived: a boolean mask
    (B, h, w) over the index grid (``codec.latent_shape``), or a fraction of positions lost at random
    (``erasure_mask`` with ``seed``). The lost code vectors are predicted from the ones that arrived
    by the restoration network. Returns (image, mask)."""
    if not isinstance(codec.transform, VQAutoencoder):
        raise InputError(f"{codec.name} has no lost-index restoration (a VQ codec has)")
    z_hat, shape = codec.decompress_latents(data)
    grid = (z_hat.shape[0], z_hat.shape[2], z_hat.shape[3])
    mask = erasure_mask(grid, float(lost), seed) if not isinstance(lost, torch.Tensor) else lost.bool()
    if tuple(mask.shape) != grid:
        raise InputError(f"erasure mask of shape {tuple(mask.shape)}, the stream's index grid is {grid}")
    restored = codec.transform.restore(z_hat, mask) if mask.any() else z_hat
    return codec.decode_latents(restored, size=(shape[2], shape[3])), mask
