"""WaLLoC audio codec: 1-D wavelet packet + shallow autoencoder + factorized prior.

The 1-D variant of ``lcodec.models.walloc`` (same modules, ``dims=1``)::

    x (B, 1|2, N) float in [-1, 1] at any sample rate
      |  resample to 48 kHz (torchaudio), mono -> (sqrt2 x, 0)
      |  mid/side: M = (L + R)/sqrt2, S = (L - R)/sqrt2        fixed, orthonormal
      |  divide by the quantizer step (a stored constant per rate point)
      |  pad (replicate) to a multiple of 2^J samples
      |  WaveletPacket1d(J=8, sym8)    (B, 2*256, N/256)       256 equal subbands per channel
      |  g_a: 1x1, block-diagonal M | S (linear)  -> y (B, 512, N/256)
      |  round, factorized prior, range coder                   (mono: the S half is not sent)
      |  g_s: linear skip + residual 3-tap CNN at 187.5 positions/s
      |  inverse packet, inverse mid/side, crop, resample back
    x_hat (B, 1|2, N) at the input's sample rate

One model codes mono and stereo: because the encoder is block-diagonal, a mono
signal's side latents are exactly ``round(bias_S)``; the decoder fills them in and
the stream carries only the mid half. There are no chunks, so no chunk borders: the
whole clip is transformed at once (up to ``MAX_AUDIO_SAMPLES`` per channel).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.container import Container, read_container
from lcodec.codecs.base import RDOutput
from lcodec.codecs.walloc import WallocCodecBase
from lcodec.errors import BitstreamError, InputError
from lcodec.models.walloc import WallocConfig
from lcodec.registry import CodecSpec, register_codec

__all__ = ["WallocAudioCodec", "MODEL_RATE", "MAX_AUDIO_SAMPLES", "WALLOC_AUDIO_CONFIGS"]

MODEL_RATE = 48_000
MAX_AUDIO_SAMPLES = 2**26  # per channel, at the model rate: about 23 minutes at 48 kHz
MIN_RATE, MAX_RATE = 1_000, 768_000
_SQRT_HALF = math.sqrt(0.5)


def _mid_side(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, N) L/R <-> M/S; the orthonormal matrix is its own inverse."""
    left, right = x[:, 0], x[:, 1]
    return torch.stack([(left + right) * _SQRT_HALF, (left - right) * _SQRT_HALF], dim=1)


def model_length(samples: int, sample_rate: int) -> int:
    """Samples per channel after resampling ``samples`` at ``sample_rate`` to the model rate."""
    return samples if sample_rate == MODEL_RATE else -(-samples * MODEL_RATE // sample_rate)


def _resample(x: torch.Tensor, rate_in: int, rate_out: int, length: int) -> torch.Tensor:
    """Resample the last axis (torchaudio's windowed sinc) and fit it to exactly ``length`` samples."""
    if rate_in != rate_out:
        from torchaudio.functional import resample

        g = math.gcd(rate_in, rate_out)
        x = resample(x, rate_in // g, rate_out // g)
    n = x.shape[-1]
    return x[..., :length] if n >= length else F.pad(x, (0, length - n))


class WallocAudioCodec(WallocCodecBase):
    """WaLLoC for mono and stereo audio.

    Tensors: x (B, C, N) or (C, N), C in {1, 2}, float in [-1, 1]; latents (B, 512, P) integers
    with P = max(ceil(N_48k / 256), 8) positions (187.5 per second of audio).
    """

    modality = "audio"
    sample_rate = MODEL_RATE
    storage_dtype = torch.float16  # shipped weights in half precision (see WallocCodecBase)

    def __init__(self, cfg: WallocConfig, name: str = "walloc-audio", quality: int = 0, init_step: float = 0.02) -> None:
        super().__init__(cfg, name, quality)
        if cfg.dims != 1 or cfg.in_channels != 2 or cfg.encoder_groups != 2:
            raise ValueError("the audio codec needs a 1-D, 2-channel config with a mid|side block encoder")
        self._init_as_classical(init_step)

    @torch.no_grad()
    def _init_as_classical(self, step: float) -> None:
        """Start training from a plain transform coder with quantizer step ``step``.

        The signal is divided by ``step`` before the packet (a fixed buffer, stored with the
        weights) and multiplied back after it, so every learned weight works in units of the
        step and starts near 1: the encoder as the identity, the decoder's skip as the identity.
        """
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

    def positions(self, n_model: int) -> int:
        """Latent positions for ``n_model`` samples at the model rate (at least 8: the sym8
        packet needs 16 coefficients per band at its deepest level)."""
        return max(-(-n_model // self.factor), 8)

    def _check_input(self, x: torch.Tensor, sample_rate: int) -> torch.Tensor:
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

    def _to_mid_side(self, x: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """(B, 1|2, N) at ``sample_rate`` -> padded mid/side (B, 2, 256 P) at the model rate."""
        n_model = model_length(x.shape[-1], sample_rate)
        x = _resample(x, sample_rate, MODEL_RATE, n_model)
        if x.shape[1] == 1:
            ms = torch.cat([x * math.sqrt(2.0), torch.zeros_like(x)], dim=1)
        else:
            ms = _mid_side(x)
        pad = self.positions(n_model) * self.factor - n_model
        ms = ms * self.signal_scale.double().cpu()
        return F.pad(ms, (0, pad), mode="replicate") if pad else ms

    # ------------------------------------------------------------ training path
    def forward(self, x: torch.Tensor) -> RDOutput:
        """x (B, 2, N) stereo at 48 kHz -> reconstruction and estimated bits (training path)."""
        n = x.shape[-1]
        scale = self.signal_scale.float()
        ms = _mid_side(x) * scale
        pad = self.positions(n) * self.factor - n
        y = self.analysis(F.pad(ms, (0, pad), mode="replicate") if pad else ms)
        y_tilde, bits = self.prior(y)
        y_dec = y + (torch.round(y) - y).detach() if self.training else y_tilde  # straight-through
        x_hat = _mid_side(self.synthesis(y_dec)[..., :n] / scale)
        return RDOutput(x_hat=x_hat, bits={"y": bits})

    @staticmethod
    def rd_loss(out: RDOutput, x: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, dict[str, float]]:
        """lambda * MSE + bits per stereo sample frame; shown as kbps at 48 kHz and SNR in dB."""
        mse = torch.mean((out.x_hat - x) ** 2)
        bits_per_frame = out.total_bits.mean() / x.shape[-1]
        snr = 10 * math.log10(max(float(torch.mean(x**2)), 1e-12) / max(mse.item(), 1e-12))
        return lmbda * mse + bits_per_frame, {"kbps": bits_per_frame.item() * MODEL_RATE / 1000, "snr": snr}

    # -------------------------------------------------------- compressed domain
    @torch.no_grad()
    def encode_latents(self, x: torch.Tensor, sample_rate: int = MODEL_RATE) -> torch.Tensor:
        """x (B, 1|2, N) at ``sample_rate`` -> integer latents (B, 512, P) as int32 (mid half first).

        Runs in float64 (see ``WallocCodecBase._light_encode``); for mono input the side half
        is exactly round(bias) of the side encoder.
        """
        x = self._check_input(x, sample_rate)
        ms = self._to_mid_side(x.detach().cpu().double(), int(sample_rate))
        return torch.round(self._light_encode(ms)).to(torch.int32)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Integer latents (B, 512, P) -> stereo x_hat (B, 2, 256 P) at 48 kHz, cropped to ``length``."""
        dev = next(self.synthesis.parameters()).device
        x_hat = _mid_side(self.synthesis(latents.to(dev, torch.float32)) / self.signal_scale.float())
        if length is not None:
            x_hat = x_hat[..., :length]
        return x_hat.clamp_(-1, 1)

    def _side_fill(self) -> torch.Tensor:
        """The side latents of any mono signal: round(bias) of the side block, (C/2,) int32."""
        return torch.round(self.analysis.g_a.bias.detach().cpu().double()[self.side_slice]).to(torch.int32)

    # ------------------------------------------------------------------ coding
    def _indexes(self, shape: tuple[int, int, int], first_channel: int = 0) -> np.ndarray:
        b, c, p = shape
        ch = np.arange(first_channel, first_channel + c).reshape(1, c, 1)
        return np.broadcast_to(ch, (b, c, p)).reshape(-1)

    def _sent(self, z: torch.Tensor, channels: int) -> torch.Tensor:
        """The latents a stream carries: all of them for stereo, the mid half for mono."""
        return z if channels == 2 else z[:, : self.side_slice.start]

    def compress(self, x: torch.Tensor, sample_rate: int = MODEL_RATE) -> bytes:
        """x (B, 1|2, N) or (1|2, N) in [-1, 1] at ``sample_rate`` -> a complete lcodec container."""
        tables = self._require_tables()
        x = self._check_input(x, sample_rate)
        z = self._sent(self.encode_latents(x, sample_rate), x.shape[1]).numpy()
        payload = encode_symbols(z.reshape(-1), self._indexes(z.shape), tables)
        return self._container(x.shape, (payload,), bit_depth=16, sample_rate=int(sample_rate))

    def parse(self, data: bytes) -> Container:
        """Read and validate a container meant for this codec (raises BitstreamError)."""
        c = read_container(data)
        self._check_header(c, "audio")
        shape, rate = c.geometry.shape, c.geometry.sample_rate
        if len(shape) != 3 or shape[1] not in (1, 2) or shape[0] < 1 or shape[2] < 1:
            raise BitstreamError(f"stream geometry {shape} is not a mono or stereo audio batch")
        if not MIN_RATE <= rate <= MAX_RATE:
            raise BitstreamError(f"stream declares a sample rate of {rate} Hz, outside {MIN_RATE}..{MAX_RATE}")
        if shape[0] > 256 or model_length(shape[2], rate) > MAX_AUDIO_SAMPLES:
            raise BitstreamError(f"stream declares {shape} at {rate} Hz, beyond this codec's limits")
        if len(c.sections) != 1:
            raise BitstreamError(f"expected 1 section, found {len(c.sections)}")
        b, ch, p = self.latent_shape(shape, rate)
        sent = slice(0, ch) if shape[1] == 2 else slice(0, self.side_slice.start)
        self._check_payload_floor(c.sections[0], b * p, sent, f"{shape[2]} samples at {rate} Hz")
        return c

    def latent_shape(self, shape: tuple[int, ...], sample_rate: int) -> tuple[int, int, int]:
        return (shape[0], self.cfg.latent_channels, self.positions(model_length(shape[2], sample_rate)))

    def decompress_latents(self, data: bytes) -> tuple[torch.Tensor, tuple[int, ...], int]:
        """Container -> (integer latents (B, 512, P), original shape, original sample rate)."""
        c = self.parse(data)
        shape, rate = c.geometry.shape, c.geometry.sample_rate
        b, ch, p = self.latent_shape(shape, rate)
        sent_channels = ch if shape[1] == 2 else self.side_slice.start
        z = decode_symbols(c.sections[0], self._indexes((b, sent_channels, p)), self._require_tables())
        z = torch.from_numpy(z.reshape(b, sent_channels, p).astype(np.int32))
        if shape[1] == 1:
            side = self._side_fill().view(1, -1, 1).expand(b, -1, p)
            z = torch.cat([z, side], dim=1)
        return z, shape, rate

    @torch.no_grad()
    def decompress(self, data: bytes) -> torch.Tensor:
        """Container -> x_hat (B, C, N) float32 in [-1, 1] at the stream's own sample rate."""
        z, shape, rate = self.decompress_latents(data)
        n_model = model_length(shape[2], rate)
        x_hat = self.decode_latents(z, length=n_model).cpu()
        if shape[1] == 1:
            x_hat = x_hat.mean(dim=1, keepdim=True)
        return _resample(x_hat, MODEL_RATE, rate, shape[2]).clamp_(-1, 1).contiguous()

    def estimate_bits(self, x: torch.Tensor, sample_rate: int = MODEL_RATE) -> float:
        """The model's own (float) estimate of the payload size for x, in bits."""
        x = self._check_input(x, sample_rate)
        with torch.no_grad():
            z = self.encode_latents(x, sample_rate).float()
            bits = -torch.log2(self.prior.likelihood(z))
            return float(self._sent(bits, x.shape[1]).sum())


_AUDIO = WallocConfig(in_channels=2, levels=8, wavelet="sym8", latent_channels=512, decoder_channels=256,
                      decoder_blocks=3, dims=1, encoder_groups=2)
# One set of weights per rate point: same architecture, different lambda (see the recipes).
WALLOC_AUDIO_CONFIGS: dict[int, WallocConfig] = {1: _AUDIO, 2: _AUDIO, 3: _AUDIO}
# Where training starts (the quantizer step of the plain transform coder it is initialised as).
_INIT_STEP = {1: 0.066, 2: 0.024, 3: 0.0076}


@register_codec(
    CodecSpec(
        name="walloc-audio",
        modality="audio",
        qualities=tuple(WALLOC_AUDIO_CONFIGS),
        default_quality=2,
        transform="mid/side + sym8 wavelet packet J=8 (1-D) + linear encoder + residual CNN decoder at 1/256 rate",
        entropy_model="factorized prior (Balle et al. 2018), 16-bit integer tables",
        paper="Jacobellis & Yadwadkar, Learned Compression for Compressed Learning, 2024",
        description="WaLLoC for mono/stereo audio coded at 48 kHz (other rates are resampled); "
                    "q1/q2/q3 aim at about 24/48/96 kbps for stereo music",
        weights={q: f"walloc-audio-q{q}.pt" for q in WALLOC_AUDIO_CONFIGS},
        sample_rate=MODEL_RATE,
    )
)
def walloc_audio(quality: int) -> WallocAudioCodec:
    return WallocAudioCodec(WALLOC_AUDIO_CONFIGS[quality], name="walloc-audio", quality=quality,
                            init_step=_INIT_STEP[quality])
