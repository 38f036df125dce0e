"""The WaLLoC audio codecs: the 1-D WaLLoC transform (``lcodec.models.transforms.WallocAudioTransform``)
with a factorized prior (``walloc-audio``) or a hyperprior (``walloc-audio-hp``), built
by the generic assembly::

    x (B, 1|2, N) float in [-1, 1] at any sample rate
      |  resample to 48 kHz, mid/side, / step, pad, sym8 packet J=8, block-diagonal linear encoder
      |  y (B, 512, P), 187.5 positions per second       (mono streams carry only the 256 mid latents)
      |  entropy model: factorized (one table per channel), or hyperprior (tables chosen per
      |  position by an exact integer network from side information z (B, 16, P/2); per
      |  channel the encoder may keep walloc-audio's table instead, whichever costs fewer bits)
      |  residual 3-tap CNN decoder, inverse packet, x step, inverse mid/side, crop, resample back
    x_hat (B, 1|2, N) at the input's sample rate

The hyperprior pairing is configuration (``AUDIO_HYPER``: the 1-D MeanScaleHyperprior with Laplace
tables, inside ``ChannelChoiceHyperprior`` with walloc-audio's factorized prior) plus a fit: the
same transform weights as walloc-audio (its weights file holds only the entropy model, laid over
walloc-audio-qN.pt), a hyperprior fitted
on CPU on the frozen transform's latents (``python -m lcodec.train.audio_hyperprior``). A
factorized prior has one density per channel for the whole clip; the hyperprior follows
loudness and timbre as they change.
"""
from __future__ import annotations

from lcodec.codecs.assembly import ComposedCodec
from lcodec.entropy.channel_choice import ChannelChoiceHyperprior
from lcodec.entropy.hyperprior import HyperpriorConfig
from lcodec.entropy.model import FactorizedEntropyModel
from lcodec.models.transforms import MAX_AUDIO_SAMPLES, MODEL_RATE, WallocAudioTransform, model_length
from lcodec.models.walloc import WallocConfig
from lcodec.registry import CodecSpec, register_codec

__all__ = ["MODEL_RATE", "MAX_AUDIO_SAMPLES", "WALLOC_AUDIO", "AUDIO_HYPER", "model_length", "audio_codec"]

WALLOC_AUDIO = WallocConfig(in_channels=2, levels=8, wavelet="sym8", latent_channels=512, decoder_channels=256,
                            decoder_blocks=3, dims=1, encoder_groups=2)
# Where training starts (the quantizer step of the plain transform coder it is initialised as).
INIT_STEP = {1: 0.066, 2: 0.024, 3: 0.0076}
# the side path of walloc-audio-hp: z has 16 channels at 93.75 positions per second (small: 150k
# weights; the means' last convolution is grouped 64 ways). y is coded with Laplace tables: with
# Gaussian ones the fitted model spent 6% MORE than the factorized prior on held-out music
# (54.6 vs 51.5 kbit/s at q2, model estimate), with Laplace tables 11% less (45.8); most latents
# round to 0, so the smallest scale (0.04) matters too. The means stay at 0 (the decoder's quantizer
# is walloc-audio's round(y)); fitted for rate they cost distortion (docs/models/walloc-audio-hp.md)
AUDIO_HYPER = HyperpriorConfig(hyper_channels=16, analysis_hidden=32, index_hidden=32, num_scales=64,
                               min_scale=0.04, max_scale=128.0, mean_groups=64, family="laplace", tail_mass=1e-5)
_TRANSFORM = "mid/side + sym8 wavelet packet J=8 (1-D) + linear encoder + residual CNN decoder at 1/256 rate"
_PAPER = "Jacobellis & Yadwadkar, Learned Compression for Compressed Learning, 2024"


def audio_codec(entropy: str, name: str, quality: int) -> ComposedCodec:
    """walloc-audio's transform at ``quality`` with a "factorized" or "hyperprior" entropy model."""
    transform = WallocAudioTransform(WALLOC_AUDIO, init_step=INIT_STEP[quality])
    if entropy == "factorized":
        model = FactorizedEntropyModel(WALLOC_AUDIO.latent_channels)
    else:
        model = ChannelChoiceHyperprior(WALLOC_AUDIO.latent_channels, AUDIO_HYPER, dims=1)
    return ComposedCodec(transform, model, name=name, quality=quality)


@register_codec(CodecSpec(
    name="walloc-audio", modality="audio", qualities=(1, 2, 3), default_quality=2, transform=_TRANSFORM,
    entropy_model="factorized prior (Balle et al. 2018), 16-bit integer tables", paper=_PAPER,
    description="WaLLoC for mono/stereo audio coded at 48 kHz (other rates are resampled); "
                "q1/q2/q3 aim at about 24/48/96 kbps for stereo music",
    weights={q: f"walloc-audio-q{q}.pt" for q in (1, 2, 3)}, sample_rate=MODEL_RATE))
def walloc_audio(quality: int) -> ComposedCodec:
    return audio_codec("factorized", "walloc-audio", quality)


@register_codec(CodecSpec(
    name="walloc-audio-hp", modality="audio", qualities=(1, 2, 3), default_quality=2, transform=_TRANSFORM,
    entropy_model="hyperprior (Balle et al. 2018), 1-D: the mean-scale model with its means held at 0, "
                  "Laplace tables chosen by exact integer indexes; per channel the encoder may keep walloc-audio's "
                  "factorized table instead; fitted on CPU onto walloc-audio's frozen transform",
    paper=_PAPER,
    description="walloc-audio's transform with a hyperprior that follows loudness over time; "
                "same decoder quality, fewer bits (python -m lcodec.train.audio_hyperprior)",
    weights={q: f"walloc-audio-hp-q{q}.pt" for q in (1, 2, 3)}, sample_rate=MODEL_RATE))
def walloc_audio_hp(quality: int) -> ComposedCodec:
    return audio_codec("hyperprior", "walloc-audio-hp", quality)
