"""The WaLLoC image codecs: each one a spec naming a transform, an entropy model and weights,
built by the generic assembly (``lcodec.codecs.assembly.ComposedCodec``).

| codec | transform (``lcodec.models.transforms``) | entropy model (``lcodec.entropy``) | rates |
|---|---|---|---|
| walloc-rgb | Haar J=4, linear encoder | factorized | one weights file per rate |
| walloc-rgb-hp | Haar J=4, linear encoder | mean-scale hyperprior | one file per rate (recipe only) |
| walloc-rgb-light | sym4 J=3, linear encoder | hyperprior, z prior per rate | ladder (gains) + post-filter |
| walloc-rgb-rd | sym4 J=3, linear + CNN encoder | hyperprior + channel context | ladder + post-filter |
| walloc-rgb-rd-gmm | rd's | hyperprior + context, scale-mixture tables | ladder + post-filter |
| walloc-rgb-mcq | rd's | residual multi-codebooks (McQuic) | stages; rd's gains of rate 6 |

WaLLoC: Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning" (2024). The
variable-rate ladders (one model, six rates, per-rate gain units of Cui et al. 2021) were
trained on a lent GPU and their entropy-model parts fitted on CPU onto the frozen transform
(``lcodec.train.context``, ``zprior``, ``postfilter``, ``codebook``); see the model cards.
"""
from __future__ import annotations

import dataclasses

from lcodec.codecs.assembly import ComposedCodec, LadderConfig
from lcodec.entropy.codebook import CodebookConfig, CodebookEntropyModel
from lcodec.entropy.hyperprior import HyperpriorConfig, MeanScaleHyperprior
from lcodec.entropy.model import FactorizedEntropyModel
from lcodec.models.transforms import WallocImageTransform
from lcodec.models.walloc import WallocConfig
from lcodec.registry import CodecSpec, register_codec

__all__ = ["WALLOC_RGB", "WALLOC_RGB_LIGHT", "WALLOC_RGB_RD", "VR_HYPER", "VR_HYPER_RD", "VR_HYPER_RD_GMM",
           "VR_LADDER", "VR_LADDER_Z_PF", "image_codec", "ladder_codec", "ladder_spec"]

_WALLOC_PAPER = "Jacobellis & Yadwadkar, Learned Compression for Compressed Learning, 2024"
_LIGHT_TRANSFORM = "Haar wavelet packet J=4 + linear 1x1 encoder + residual CNN decoder at 1/16 resolution"

# walloc-rgb and walloc-rgb-hp: one set of weights per rate point (same architecture, different lambda)
WALLOC_RGB = WallocConfig(levels=4, wavelet="haar", latent_channels=64, decoder_channels=192, decoder_blocks=4)
# the ladders: sym4 J=3 packet, 192 latents; light has the linear encoder, rd adds a CNN branch
_PACKET = dict(levels=3, wavelet="sym4", latent_channels=192)
WALLOC_RGB_LIGHT = WallocConfig(**_PACKET)
WALLOC_RGB_RD = WallocConfig(**_PACKET, encoder_blocks=2, encoder_channels=128)
VR_HYPER = HyperpriorConfig(hyper_channels=48, analysis_hidden=128, index_hidden=96, num_scales=72,
                            min_scale=0.11, max_scale=256.0)
# rd codes y in 4 channel slices whose tables also read the earlier slices' symbols
# (lcodec.entropy.channel_context; fitted on CPU onto the GPU-trained ladder: lcodec.train.context)
VR_HYPER_RD = dataclasses.replace(VR_HYPER, context_slices=4, context_hidden=0)
# rd-gmm: rd's transform and side path, its tables two-component Gaussian scale mixtures
# (lcodec.entropy.scale_mixture; fitted on CPU onto rd's frozen transform: lcodec.train.context --base)
VR_HYPER_RD_GMM = dataclasses.replace(VR_HYPER_RD, context_mixture=True)
VR_LADDER = LadderConfig(balance=0.5)
# z priors fitted per rate (lcodec.train.zprior) and a post-filter (lcodec.train.postfilter)
VR_LADDER_Z_PF = dataclasses.replace(VR_LADDER, rate_z_priors=True, postfilter=32)


def image_codec(cfg: WallocConfig, entropy: str, name: str, quality: int,
                hyper: HyperpriorConfig = HyperpriorConfig()) -> ComposedCodec:
    """A single-rate WaLLoC image codec: ``entropy`` "factorized" or "hyperprior"."""
    transform = WallocImageTransform(cfg)
    if entropy == "factorized":
        model = FactorizedEntropyModel(cfg.latent_channels)
    else:
        model = MeanScaleHyperprior(cfg.latent_channels, hyper, dims=2)
    return ComposedCodec(transform, model, name=name, quality=quality)


def ladder_codec(cfg: WallocConfig, hyper: HyperpriorConfig, ladder: LadderConfig, name: str,
                 quality: int, restoration: bool = False) -> ComposedCodec:
    """A variable-rate WaLLoC image codec: the transform, a hyperprior and a rate ladder (and, with
    ``restoration``, per-image restoration filters in its streams)."""
    rates = len(ladder.lmbdas) if ladder.rate_z_priors else 0
    return ComposedCodec(WallocImageTransform(cfg), MeanScaleHyperprior(cfg.latent_channels, hyper, dims=2, rates=rates),
                         name=name, quality=quality, ladder=ladder, restoration=restoration)


@register_codec(CodecSpec(
    name="walloc-rgb", modality="image", qualities=(1, 3), default_quality=3, transform=_LIGHT_TRANSFORM,
    entropy_model="factorized prior (Balle et al. 2018), 16-bit integer tables", paper=_WALLOC_PAPER,
    description="WaLLoC for RGB images: light linear encoder, shipped weights trained on shared/data/images/train. "
                "q1 is no longer shipped (walloc-rgb-rd q1 needs half its bits for the same PSNR, and "
                "lcodec/weights stays well under 50 MB); reproduce it with `codec train walloc-rgb-q1`",
    weights={3: "walloc-rgb-q3.pt"}))
def walloc_rgb(quality: int) -> ComposedCodec:
    return image_codec(WALLOC_RGB, "factorized", "walloc-rgb", quality)


@register_codec(CodecSpec(
    name="walloc-rgb-hp", modality="image", qualities=(1, 2, 3), default_quality=3, transform=_LIGHT_TRANSFORM,
    entropy_model="mean-scale Gaussian hyperprior (Balle et al. 2018; Minnen et al. 2018); table indexes "
                  "from an exact integer network, factorized prior on z; 16-bit integer tables",
    paper=_WALLOC_PAPER + "; Balle, Johnston & Minnen, Integer Networks for Data Compression with "
                          "Latent-Variable Models, 2019",
    description="WaLLoC for RGB images with a hyperprior whose table choice is bit-exact on every machine. "
                "Weights not shipped since 0.1 (superseded by walloc-rgb-light / walloc-rgb-rd, which keeps "
                "lcodec/weights under 50 MB); reproduce them with `codec train walloc-rgb-hp-qN`"))
def walloc_rgb_hp(quality: int) -> ComposedCodec:
    return image_codec(WALLOC_RGB, "hyperprior", "walloc-rgb-hp", quality)


_LADDER_ENTROPY = ("mean-scale Gaussian hyperprior (Balle et al. 2018; Minnen et al. 2018) with per-rate gain "
                   "units (Cui et al. 2021); table indexes from an exact integer network; 16-bit integer tables")
_LADDER_PAPERS = _WALLOC_PAPER + ("; Cui et al., Asymmetric Gained Deep Image Compression With Continuous Rate "
                                  "Adaptation, 2021")


def ladder_spec(name: str, transform: str, description: str, entropy: str = _LADDER_ENTROPY) -> CodecSpec:
    """The spec of a shipped six-rate image ladder (one weights file for every quality)."""
    return CodecSpec(name=name, modality="image", qualities=VR_LADDER.qualities, default_quality=4,
                     transform=transform, entropy_model=entropy, paper=_LADDER_PAPERS, description=description,
                     weights={q: f"{name}.pt" for q in VR_LADDER.qualities})


@register_codec(ladder_spec(
    "walloc-rgb-light", "sym4 wavelet packet J=3 + linear 1x1 encoder (192->192) + residual CNN decoder at 1/8",
    "variable-rate WaLLoC, light (linear) encoder: six rates from one weights file, the same "
    "decoder design as walloc-rgb-rd (fine-tuned from it)"))
def walloc_rgb_light(quality: int) -> ComposedCodec:
    return ladder_codec(WALLOC_RGB_LIGHT, VR_HYPER, VR_LADDER_Z_PF, "walloc-rgb-light", quality)


@register_codec(ladder_spec(
    "walloc-rgb-rd", "sym4 wavelet packet J=3 + linear encoder with a residual CNN branch + residual CNN "
    "decoder at 1/8", "variable-rate WaLLoC, stronger encoder for the best rate-distortion: six rates, one file",
    entropy=_LADDER_ENTROPY + "; y coded in 4 channel slices whose tables also read the earlier slices' "
    "symbols (channel context, Minnen & Singh 2020)"))
def walloc_rgb_rd(quality: int) -> ComposedCodec:
    return ladder_codec(WALLOC_RGB_RD, VR_HYPER_RD, VR_LADDER_Z_PF, "walloc-rgb-rd", quality, restoration=True)


@register_codec(ladder_spec(
    "walloc-rgb-rd-gmm", "walloc-rgb-rd's (the same tensors: its weights file holds only the entropy model's "
    "heads and tables, over walloc-rgb-rd.pt)",
    "walloc-rgb-rd with Gaussian-mixture tables: six rates; same reconstruction as rd, different rate",
    entropy=_LADDER_ENTROPY + "; y in 4 channel slices, each latent's table a two-component Gaussian "
    "scale mixture (weights, scales from exact integer heads; Cheng et al. 2020) from a "
    "stored set of integer-mixed tables"))
def walloc_rgb_rd_gmm(quality: int) -> ComposedCodec:
    return ladder_codec(WALLOC_RGB_RD, VR_HYPER_RD_GMM, VR_LADDER_Z_PF, "walloc-rgb-rd-gmm", quality, restoration=True)


@register_codec(ladder_spec(
    "walloc-rgb-mcq", "walloc-rgb-rd's encoder, decoder and post-filter (its weights file holds only the "
    "codebooks and their tables, over walloc-rgb-rd.pt)",
    "walloc-rgb-rd's transform with McQuic-style residual multi-codebook quantization: "
    "six rates = one to six stages; fast entropy coding, lower rate-distortion than rd",
    entropy="residual multi-codebook quantization (McQuic, Zhu et al. 2022): per stage 16 "
            "codebooks of 256 codewords over 12-channel groups, entropy-constrained; "
            "indexes coded with one stored 16-bit categorical table per codebook"))
def walloc_rgb_mcq(quality: int) -> ComposedCodec:
    """rd's transform, gains (of rate ``space``) and post-filter; y coded by residual codebooks. The
    weights hash also covers rd's hyperprior tensors and tables, which its file is laid over and
    which take no part in coding (``carry_*``); its latent grid is padded to even sizes, as rd's."""
    book = CodebookConfig()
    return ComposedCodec(WallocImageTransform(WALLOC_RGB_RD), CodebookEntropyModel(WALLOC_RGB_RD.latent_channels, book),
                         name="walloc-rgb-mcq", quality=quality, ladder=VR_LADDER_Z_PF, gain_space=book.space, grid=2,
                         carry_tables=("tables", "y_tables", "rate_tables"), carry_entries=("hyper_config",))
