"""The transform role of a codec (DESIGN.md, "Composition"): media <-> latents y.

A transform owns analysis and synthesis, the input checks and padding geometry of its media,
and the differentiable training path. It knows nothing of quantization or entropy coding:
``lcodec.codecs.assembly.ComposedCodec`` runs transform -> quantizer -> entropy model ->
container. Every transform here implements:

- ``modality``, ``config_key`` (the weights-file entry of its config), ``cfg``, ``storage_dtype``
- ``check_input(x, **media) -> x`` (batched), ``geometry(x, **media) -> Geometry``,
  ``check_geometry(geometry)`` (raises BitstreamError for a stream's declared geometry)
- ``latent_shape(geometry, multiple)``: the shape of y when its spatial/temporal grid must be a
  multiple of ``multiple`` latent positions (an entropy model with a stride-2 side path asks for 2)
- ``analyse64(x, multiple, **media)``: the coding path, float64 on CPU (bytes stable across
  machines and thread counts); ``analyse(x, multiple)``: the training path (float, autograd)
- ``synthesise(y_hat)``: latents -> the padded signal (float32), ``finish(x, geometry)``:
  crop/clamp/resample to the media the stream describes, ``crop(x, size)``: the public
  ``decode_latents`` cropping, ``train_output(x_pad, x)``: the training path's cropping
- ``carried(geometry)``: how many leading latent channels a stream carries (the rest are known
  to the decoder, ``fill``); ``rd_terms(x_hat, x, bits)``: distortion and rate units for the loss
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.bitstream.container import Geometry
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.models.cpu import run_on_cpu
from lcodec.models.walloc import WallocAnalysis, WallocConfig, WallocSynthesis, packet_klt

__all__ = ["ImageTransform", "gray_mean", "packet_least_side", "WallocImageTransform", "WallocAudioTransform", "MAX_IMAGE_PIXELS", "MAX_BATCH", "MODEL_RATE",
           "MAX_AUDIO_SAMPLES", "model_length", "mid_side", "resample"]

MAX_IMAGE_PIXELS = 2**26  # 64 Mpixel per image: decoding needs a few GB of RAM beyond this
MAX_BATCH = 256  # items per stream
RANGE_SLACK = 1e-3  # float images may overshoot [0, 1] by rounding (resampling, colour conversion) this much
MODEL_RATE = 48_000
MAX_AUDIO_SAMPLES = 2**26  # per channel, at the model rate: about 23 minutes at 48 kHz
MIN_RATE, MAX_RATE = 1_000, 768_000
_SQRT_HALF = math.sqrt(0.5)


class _Walloc(nn.Module):
    """What the image and audio WaLLoC transforms share: the module pair and the float64 encoder."""

    config_key = "config"
    storage_dtype = torch.float16  # shipped weights in half precision

    def __init__(self, cfg: WallocConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.analysis = WallocAnalysis(cfg)
        self.synthesis = WallocSynthesis(cfg)

    @property
    def factor(self) -> int:
        return 2**self.cfg.levels

    @property
    def latent_channels(self) -> int:
        return self.cfg.latent_channels

    @torch.no_grad()
    def project64(self, padded64: torch.Tensor) -> torch.Tensor:
        """Padded float64 input -> real-valued latents, float64 on CPU: the same operations as
        ``WallocAnalysis`` in float64 (cheap for a linear encoder; the nonlinear "rd" encoder runs
        whole in float64), so rounding ties, and the bytes, are stable across machines."""
        if self.analysis.branch is not None:
            return run_on_cpu(self.analysis, padded64)
        coeffs = self.analysis.wpt(padded64 - self.analysis.offset)
        g_a = self.analysis.g_a
        conv = F.conv1d if self.cfg.dims == 1 else F.conv2d
        return conv(coeffs, g_a.weight.detach().cpu().double(), g_a.bias.detach().cpu().double(),
                    groups=self.cfg.encoder_groups)

    def synthesise(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Latents -> the padded synthesis output, float32 on the synthesis' device (differentiable:
        the training path runs it too)."""
        dev = next(self.synthesis.parameters()).device
        return self.synthesis(y_hat.to(dev, torch.float32))

    def exact_synthesis(self) -> tuple[nn.Module | None, nn.Module]:
        """(a module run before it or None, the synthesis): what ``synthesise`` runs, which
        ``lcodec.models.exact`` mirrors in fixed point."""
        return None, self.synthesis

    def carried(self, geometry: Geometry) -> int:
        return self.cfg.latent_channels

    def load_config(self, stored: dict) -> None:
        cfg = WallocConfig.from_dict(dict(stored))
        if cfg != self.cfg:
            raise ModelError(f"weights were trained for {cfg}, not {self.cfg}")


def gray_mean(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W): ``((r + g) + b) / 3`` per pixel, summed in float64 in that order
    and rounded once to float32, so the result is the same on every machine.

    Why a grayscale stream decodes to the mean: an RGB decoder given a gray image returns three
    slightly different values per pixel; by convexity their mean is never further from the gray
    original than the three are on average, and their errors are partly independent, so it is
    usually closer (on the four grayscale images of images/val, walloc-rgb-rd gains 0.13-0.84 dB
    PSNR at the same bytes)."""
    d = x.double()
    return (((d[:, 0] + d[:, 1]) + d[:, 2]) / 3).float().unsqueeze(1)


class ImageTransform:
    """What every RGB image transform shares, as a mixin before ``nn.Module``: input checks,
    replicate padding to a multiple of ``factor`` (times the codec's ``multiple``), the stream's
    geometry, cropping and clamping, the MSE loss terms and config loading. A subclass sets
    ``in_channels``, ``factor`` (input pixels per latent position), ``latent_channels`` and
    ``cfg`` (a ``ConfigDict``), and implements ``analyse``, ``analyse64`` and ``synthesise``;
    see docs/architecture.md."""

    modality = "image"
    config_key = "config"
    storage_dtype = torch.float32

    # ----------------------------------------------------------------- geometry
    def padded_side(self, n: int, multiple: int = 1) -> int:
        step = self.factor * multiple
        return -(-n // step) * step

    def pad(self, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = self.padded_side(h, multiple) - h, self.padded_side(w, multiple) - w
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """An image batch (B, C, H, W) or one image (C, H, W), float in [0, 1] or uint8; grayscale
        (C = 1) is expanded to RGB (and its stream is marked grayscale, see ``geometry``). Values
        outside [0, 1] (beyond float rounding) are refused."""
        if not isinstance(x, torch.Tensor):
            raise InputError(f"expected a torch.Tensor image, got {type(x).__name__}")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() == 4 and x.shape[1] == 1 and self.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)  # grayscale: the same picture in R, G and B
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputError(f"expected an image tensor (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-1] < 1 or x.shape[-2] < 1 or x.shape[0] < 1:
            raise InputError(f"empty image tensor {tuple(x.shape)}")
        if x.shape[-1] * x.shape[-2] > MAX_IMAGE_PIXELS:
            raise InputError(f"image of {x.shape[-2]}x{x.shape[-1]} exceeds the {MAX_IMAGE_PIXELS}-pixel limit")
        if x.dtype == torch.uint8:
            return x.float() / 255.0  # 8-bit pixels
        if not torch.is_floating_point(x):
            raise InputError(f"expected a float image in [0, 1] or uint8 pixels, got dtype {x.dtype}")
        if not torch.isfinite(x).all():
            raise InputError("image contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
            hint = "; divide 8-bit values by 255" if hi > 2 else ""
            raise InputError(f"float image values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]{hint}")
        return x

    def geometry(self, x: torch.Tensor) -> Geometry:
        """The stream's geometry of a checked batch: (B, 3, H, W), or (B, 1, H, W) for a grayscale
        batch (an RGB transform given images whose three channels are equal everywhere, as a
        grayscale file or a (B, 1, H, W) tensor gives them), which ``finish`` decodes gray."""
        shape = tuple(int(s) for s in x.shape)
        if self.in_channels == 3 and torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2]):
            shape = (shape[0], 1, *shape[2:])
        return Geometry(shape=shape, bit_depth=8, sample_rate=0)

    def check_geometry(self, geometry: Geometry) -> None:
        shape = geometry.shape
        if len(shape) != 4 or shape[1] not in ((1, 3) if self.in_channels == 3 else (self.in_channels,)):
            raise BitstreamError(f"stream geometry {shape} is not an RGB or grayscale image batch")
        if shape[2] * shape[3] > MAX_IMAGE_PIXELS or shape[0] > MAX_BATCH:
            raise BitstreamError(f"stream declares an image batch of {shape}, beyond this codec's limits")

    def describe(self, geometry: Geometry) -> str:
        gray = " grayscale" if geometry.shape[1] == 1 and self.in_channels == 3 else ""
        return f"{geometry.shape[2]}x{geometry.shape[3]}{gray} image"

    def latent_shape(self, geometry: Geometry, multiple: int = 1) -> tuple[int, ...]:
        b, _, h, w = geometry.shape
        return (b, self.latent_channels, self.padded_side(h, multiple) // self.factor,
                self.padded_side(w, multiple) // self.factor)

    def carried(self, geometry: Geometry) -> int:
        return self.latent_channels

    # ------------------------------------------------------------------- output
    def train_output(self, x_pad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x_pad[..., : x.shape[-2], : x.shape[-1]]

    def crop(self, x_pad: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        x_hat = x_pad.clamp_(0, 1)
        return x_hat if size is None else x_hat[..., : size[0], : size[1]]

    def finish(self, x_pad: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """The decoder's padded output -> the images the stream describes: cropped and clamped;
        for a grayscale stream, each pixel's three decoded values replaced by their mean
        (``gray_mean``) in all three channels."""
        x_hat = self.crop(x_pad, (geometry.shape[2], geometry.shape[3]))
        if geometry.shape[1] == 1 and x_hat.shape[1] == 3:
            x_hat = gray_mean(x_hat).expand(-1, 3, -1, -1).contiguous()
        return x_hat

    @staticmethod
    def rd_terms(x_hat: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, int, dict[str, float]]:
        """(per-item distortion 255^2 * MSE, pixels per item (the rate unit), what to show)."""
        mse = ((x_hat - x) ** 2).flatten(1).mean(1)
        psnr = (10 * torch.log10(1.0 / mse.detach().clamp_min(1e-10))).mean()
        return mse * 255.0**2, x.shape[-2] * x.shape[-1], {"psnr": psnr.item()}

    def load_config(self, stored: dict) -> None:
        cfg = type(self.cfg).from_dict(dict(stored))
        if cfg != self.cfg:
            raise ModelError(f"weights were trained for {cfg}, not {self.cfg}")


def packet_least_side(wpt: nn.Module, levels: int) -> int:
    """The shortest side a wavelet packet of ``levels`` accepts: its deepest level must hold one
    period of a filter longer than Haar's."""
    return (wpt.filter_length - 1) * 2 ** (levels - 1) if wpt.filter_length > 2 else 1


class WallocImageTransform(ImageTransform, _Walloc):
    """WaLLoC for RGB images (Jacobellis & Yadwadkar 2024): wavelet packet + shallow autoencoder.

    x (B, 3, H, W) float in [0, 1] -> y (B, C, S(H)/2^J, S(W)/2^J), S(n) = n padded (replicate)
    to the codec's multiple, and long enough for the packet's deepest level to hold one period of
    a longer filter; the reconstruction is cropped back.
    """

    storage_dtype = torch.float16  # shipped weights in half precision

    def __init__(self, cfg: WallocConfig) -> None:
        if cfg.dims != 2:
            raise ModelError("the WaLLoC image transform needs dims=2")
        super().__init__(cfg)

    @property
    def in_channels(self) -> int:
        return self.cfg.in_channels

    def padded_side(self, n: int, multiple: int = 1) -> int:
        return super().padded_side(max(n, packet_least_side(self.analysis.wpt, self.cfg.levels)), multiple)

    # ------------------------------------------------------------------- paths
    def analyse(self, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        return self.analysis(self.pad(x, multiple))

    @torch.no_grad()
    def analyse64(self, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        return self.project64(self.pad(x.detach().cpu().double(), multiple))

    @torch.no_grad()
    def init_from_data(self, crops: list[torch.Tensor]) -> None:
        """Start as the plain transform coder: the encoder projection and the decoder's linear skip
        become the KLT (strongest ``latent_channels`` components) of the packet coefficients of
        ``crops`` (each (3, h, w), sides divisible by 2^J)."""
        basis = packet_klt(self.analysis.wpt, crops, self.analysis.offset)[: self.cfg.latent_channels]  # (C, K)
        self.analysis.g_a.weight.copy_(basis[:, :, None, None].float())
        self.analysis.g_a.bias.zero_()
        self.synthesis.skip.weight.copy_(basis.T[:, :, None, None].float())
        self.synthesis.skip.bias.zero_()


def mid_side(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, N) L/R <-> M/S; the orthonormal matrix is its own inverse."""
    left, right = x[:, 0], x[:, 1]
    return torch.stack([(left + right) * _SQRT_HALF, (left - right) * _SQRT_HALF], dim=1)


def model_length(samples: int, sample_rate: int) -> int:
    """Samples per channel after resampling ``samples`` at ``sample_rate`` to the model rate."""
    return samples if sample_rate == MODEL_RATE else -(-samples * MODEL_RATE // sample_rate)


def resample(x: torch.Tensor, rate_in: int, rate_out: int, length: int) -> torch.Tensor:
    """Resample the last axis (torchaudio's windowed sinc) and fit it to exactly ``length`` samples."""
    if rate_in != rate_out:
        from torchaudio.functional import resample as _resample

        g = math.gcd(rate_in, rate_out)
        x = _resample(x, rate_in // g, rate_out // g)
    return fit_length(x, length)


def fit_length(x: torch.Tensor, length: int) -> torch.Tensor:
    """The last axis cut or zero-padded to exactly ``length`` samples."""
    n = x.shape[-1]
    return x[..., :length] if n >= length else F.pad(x, (0, length - n))


class WallocAudioTransform(_Walloc):
    """WaLLoC for mono and stereo audio: resample to 48 kHz, mid/side, divide by a stored step,
    1-D packet + block-diagonal (mid | side) linear encoder; the decoder inverts each step.

    x (B, 1|2, N) float in [-1, 1] at any rate -> y (B, C, P), P = max(ceil(N_48k / 2^J), 8)
    rounded up to the codec's multiple. Because the encoder is block-diagonal, a mono signal's
    side latents are exactly the side block's bias: streams of mono audio carry only the mid
    half (``carried``) and the decoder fills the side half in (``fill``).
    """

    modality = "audio"
    sample_rate = MODEL_RATE

    def __init__(self, cfg: WallocConfig, init_step: float = 0.02) -> None:
        if cfg.dims != 1 or cfg.in_channels != 2 or cfg.encoder_groups != 2:
            raise ModelError("the audio transform needs a 1-D, 2-channel config with a mid|side block encoder")
        super().__init__(cfg)
        self._init_as_classical(init_step)

    @torch.no_grad()
    def _init_as_classical(self, step: float) -> None:
        """Start training from a plain transform coder with quantizer step ``step``: the signal is
        divided by ``step`` before the packet (a stored buffer) and multiplied back after it, so the
        learned weights work in units of the step, the encoder and the decoder's skip start as
        identities."""
        self.register_buffer("signal_scale", torch.tensor(1.0 / step, dtype=torch.float64))
        if self.cfg.latent_channels == self.cfg.coefficient_channels:
            g_a, skip = self.analysis.g_a, self.synthesis.skip
            per_group = self.cfg.latent_channels // self.cfg.encoder_groups
            g_a.weight.copy_(torch.eye(per_group).repeat(self.cfg.encoder_groups, 1).unsqueeze(-1))
            g_a.bias.zero_()
            skip.weight.copy_(torch.eye(self.cfg.latent_channels).unsqueeze(-1))
            skip.bias.zero_()

    # ----------------------------------------------------------------- geometry
    @property
    def side_slice(self) -> slice:
        half = self.cfg.latent_channels // 2
        return slice(half, self.cfg.latent_channels)

    def positions(self, n_model: int, multiple: int = 1) -> int:
        """Latent positions for ``n_model`` samples at the model rate (at least 8: the sym8 packet
        needs 16 coefficients per band at its deepest level), a multiple of ``multiple``."""
        p = max(-(-n_model // self.factor), 8)
        return -(-p // multiple) * multiple

    def check_input(self, x: torch.Tensor, sample_rate: int = MODEL_RATE) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputError(f"expected a torch.Tensor of audio, got {type(x).__name__}")
        if x.dim() == 2:
            x = x.unsqueeze(0)
        if x.dim() != 3 or x.shape[1] not in (1, 2):
            raise InputError(f"expected audio shaped (B, 1|2, samples) or (1|2, samples), got {tuple(x.shape)}")
        if x.shape[0] < 1 or x.shape[-1] < 1:
            raise InputError(f"empty audio tensor {tuple(x.shape)}")
        if not isinstance(sample_rate, (int, np.integer)) or not MIN_RATE <= int(sample_rate) <= MAX_RATE:
            raise InputError(f"sample rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, got {sample_rate!r}")
        if model_length(x.shape[-1], int(sample_rate)) > MAX_AUDIO_SAMPLES:
            raise InputError(f"{x.shape[-1]} samples at {sample_rate} Hz exceed this codec's limit of "
                             f"{MAX_AUDIO_SAMPLES} samples per channel at {MODEL_RATE} Hz; split the file")
        if not torch.is_floating_point(x):
            raise InputError(f"expected float audio in [-1, 1], got dtype {x.dtype}")
        if not torch.isfinite(x).all():
            raise InputError("audio contains NaN or infinite values")
        return x

    def geometry(self, x: torch.Tensor, sample_rate: int = MODEL_RATE) -> Geometry:
        return Geometry(shape=tuple(int(s) for s in x.shape), bit_depth=16, sample_rate=int(sample_rate))

    def check_geometry(self, geometry: Geometry) -> None:
        shape, rate = geometry.shape, geometry.sample_rate
        if len(shape) != 3 or shape[1] not in (1, 2) or shape[0] < 1 or shape[2] < 1:
            raise BitstreamError(f"stream geometry {shape} is not a mono or stereo audio batch")
        if not MIN_RATE <= rate <= MAX_RATE:
            raise BitstreamError(f"stream declares a sample rate of {rate} Hz, outside {MIN_RATE}..{MAX_RATE}")
        if shape[0] > MAX_BATCH or model_length(shape[2], rate) > MAX_AUDIO_SAMPLES:
            raise BitstreamError(f"stream declares {shape} at {rate} Hz, beyond this codec's limits")

    def describe(self, geometry: Geometry) -> str:
        return f"{geometry.shape[2]} samples at {geometry.sample_rate} Hz"

    def latent_shape(self, geometry: Geometry, multiple: int = 1) -> tuple[int, ...]:
        shape = geometry.shape
        return (shape[0], self.cfg.latent_channels,
                self.positions(model_length(shape[2], geometry.sample_rate), multiple))

    def carried(self, geometry: Geometry) -> int:
        """Stereo streams carry every latent channel, mono streams the mid half."""
        return self.cfg.latent_channels if geometry.shape[1] == 2 else self.side_slice.start

    def fill(self, latents: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """Complete latents (B, carried, P) with what the decoder knows of the rest: a mono
        signal's side latents are round(bias) of the side block (integers, as the encoder's)."""
        b, c, p = latents.shape
        if c == self.cfg.latent_channels:
            return latents
        side = torch.round(self.analysis.g_a.bias.detach().cpu().double()[self.side_slice])
        return torch.cat([latents, side.to(latents.dtype).view(1, -1, 1).expand(b, -1, p)], dim=1)

    # ------------------------------------------------------------------- paths
    def _to_mid_side(self, x: torch.Tensor, sample_rate: int, multiple: int) -> torch.Tensor:
        """(B, 1|2, N) at ``sample_rate`` -> padded, scaled mid/side (B, 2, 2^J P) at the model rate."""
        n_model = model_length(x.shape[-1], sample_rate)
        x = resample(x, sample_rate, MODEL_RATE, n_model)
        if x.shape[1] == 1:
            ms = torch.cat([x * math.sqrt(2.0), torch.zeros_like(x)], dim=1)
        else:
            ms = mid_side(x)
        pad = self.positions(n_model, multiple) * self.factor - n_model
        ms = ms * self.signal_scale.double().cpu()
        return F.pad(ms, (0, pad), mode="replicate") if pad else ms

    def analyse(self, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        """Training path: stereo x (B, 2, N) at 48 kHz -> y."""
        n = x.shape[-1]
        ms = mid_side(x) * self.signal_scale.float()
        pad = self.positions(n, multiple) * self.factor - n
        return self.analysis(F.pad(ms, (0, pad), mode="replicate") if pad else ms)

    @torch.no_grad()
    def analyse64(self, x: torch.Tensor, multiple: int = 1, sample_rate: int = MODEL_RATE) -> torch.Tensor:
        return self.project64(self._to_mid_side(x.detach().cpu().double(), int(sample_rate), multiple))

    def train_output(self, x_pad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return mid_side(x_pad[..., : x.shape[-1]] / self.signal_scale.float())

    def crop(self, x_pad: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Padded synthesis output -> stereo (B, 2, N) at 48 kHz in [-1, 1], cropped to ``length``."""
        x_hat = mid_side(x_pad / self.signal_scale.float())
        if length is not None:
            x_hat = x_hat[..., :length]
        return x_hat.clamp_(-1, 1)

    def finish(self, x_pad: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """-> (B, C, N) float32 in [-1, 1] at the stream's own rate and channel count."""
        shape, rate = geometry.shape, geometry.sample_rate
        x_hat = self.crop(x_pad, model_length(shape[2], rate)).cpu()
        if shape[1] == 1:
            x_hat = x_hat.mean(dim=1, keepdim=True)
        if rate != MODEL_RATE:  # in integers (the same samples everywhere) where the kernel is small
            from lcodec.models.exact import exact_resample

            out = exact_resample(x_hat, MODEL_RATE, rate, shape[2])
            if out is not None:
                return out.clamp_(-1, 1).contiguous()
        return resample(x_hat, MODEL_RATE, rate, shape[2]).clamp_(-1, 1).contiguous()

    @staticmethod
    def rd_terms(x_hat: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, int, dict[str, float]]:
        """(per-item MSE, samples per item for the rate unit, what to show: SNR in dB)."""
        mse = ((x_hat - x) ** 2).flatten(1).mean(1)
        snr = 10 * math.log10(max(float(torch.mean(x**2)), 1e-12) / max(float(mse.mean()), 1e-12))
        return mse, x.shape[-1], {"snr": snr}
