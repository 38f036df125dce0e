"""WaLLoC image codecs: wavelet packet + shallow autoencoder + factorized prior.

Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning" (2024);
factorized prior of Ballé et al. (2018). See ``lcodec.models.walloc`` for the
data flow. Arbitrary sizes: the image is padded (replicate) to a multiple of
2^J inside the codec and the reconstruction is cropped back.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from lcodec.bitstream.coder import CODER_ID, CODER_VERSION, decode_symbols, encode_symbols
from lcodec.bitstream.container import Container, Geometry, read_container, write_container
from lcodec.bitstream.tables import CodingTables
from lcodec.codecs.base import Codec, RDOutput
from lcodec.entropy.factorized import FactorizedPrior
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.models.cpu import run_on_cpu
from lcodec.models.walloc import WallocAnalysis, WallocConfig, WallocSynthesis
from lcodec.registry import CodecSpec, register_codec

__all__ = ["WallocCodecBase", "WallocImageCodec", "MAX_IMAGE_PIXELS", "MAX_BATCH", "weights_digest"]

MAX_IMAGE_PIXELS = 2**26  # 64 Mpixel per image: decoding needs a few GB of RAM beyond this
MAX_BATCH = 256  # images per stream


class WallocCodecBase(Codec):
    """What every WaLLoC codec shares (images and audio): the transform pair, a factorized
    prior with its frozen integer tables, the weights hash, stream header checks, and the
    float64 light encoder."""

    # dtype of float32 tensors in the shipped weights file; float16 halves the file. export()
    # rounds the model to it first, so what ships is exactly what was measured and hashed.
    storage_dtype: torch.dtype = torch.float32

    def __init__(self, cfg: WallocConfig, name: str, quality: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.name = name
        self.quality = quality
        self.analysis = WallocAnalysis(cfg)
        self.synthesis = WallocSynthesis(cfg)
        self.prior = FactorizedPrior(cfg.latent_channels)
        self.tables: CodingTables | None = None
        self.weights_hash = bytes(32)

    @property
    def factor(self) -> int:
        return 2**self.cfg.levels

    def padded_side(self, n: int) -> int:
        """Length of an axis of n samples after padding: a multiple of ``factor``, and long
        enough for the packet's deepest level to hold one period of a longer filter (sym4
        needs 64 pixels at J=4); the reconstruction is cropped back."""
        wpt = self.analysis.wpt
        least = (wpt.filter_length - 1) * 2 ** (self.cfg.levels - 1) if wpt.filter_length > 2 else 1
        return -(-max(n, least) // self.factor) * self.factor

    @torch.no_grad()
    def _light_encode(self, x64: torch.Tensor) -> torch.Tensor:
        """Padded float64 input -> real-valued latents, float64 on CPU.

        The same operations as ``WallocAnalysis`` in float64: cheap for a linear encoder,
        and it keeps rounding ties (and so the bytes) stable across thread counts and machines.
        """
        if self.analysis.branch is not None:  # the nonlinear "rd" encoder: all of it in float64
            return run_on_cpu(self.analysis, x64)
        coeffs = self.analysis.wpt(x64 - self.analysis.offset)
        g_a = self.analysis.g_a
        conv = F.conv1d if self.cfg.dims == 1 else F.conv2d
        return conv(coeffs, g_a.weight.detach().cpu().double(), g_a.bias.detach().cpu().double(),
                    groups=self.cfg.encoder_groups)

    def _container(self, shape: tuple[int, ...], sections: tuple[bytes, ...], bit_depth: int,
                   sample_rate: int = 0) -> bytes:
        """A complete container of this codec's header and the given range-coded sections."""
        return write_container(
            Container(
                codec=self.name,
                quality=self.quality,
                weights_hash=self.weights_hash,
                coder_id=CODER_ID,
                coder_version=CODER_VERSION,
                modality=self.modality,
                geometry=Geometry(shape=tuple(int(s) for s in shape), bit_depth=bit_depth, sample_rate=sample_rate),
                sections=sections,
            )
        )

    def _require_tables(self) -> CodingTables:
        if self.tables is None:
            raise ModelError(f"{self.name}: no coding tables; load shipped weights or call export()")
        return self.tables

    def _coding_tables(self) -> CodingTables:
        """The tables the factorized section is coded with: the stored ones (a variable-rate ladder
        may pick one set per rate point)."""
        return self._require_tables()

    def _check_header(self, c: Container, modality: str) -> None:
        """Refuse a stream written by another codec, quality, weights set or coder."""
        if c.codec != self.name or c.quality != self.quality:
            raise BitstreamError(f"stream is for {c.codec} q{c.quality}, not {self.name} q{self.quality}")
        if c.modality != modality:
            raise BitstreamError(f"stream holds {c.modality}, {self.name} codes {modality}")
        if c.weights_hash != self.weights_hash:
            raise BitstreamError(
                f"stream was written with different {self.name} q{self.quality} weights "
                f"(stream {c.weights_hash.hex()[:12]}, loaded {self.weights_hash.hex()[:12]})"
            )
        if c.coder_id != CODER_ID:
            raise BitstreamError(f"unknown range coder id {c.coder_id}")

    def _read_image_stream(self, data: bytes) -> Container:
        """read_container + ``_check_header`` + an RGB image batch within this codec's limits
        (every image parser starts here, before anything of the declared size is allocated)."""
        c = read_container(data)
        self._check_header(c, "image")
        shape = c.geometry.shape
        if len(shape) != 4 or shape[1] != self.cfg.in_channels:
            raise BitstreamError(f"stream geometry {shape} is not an RGB image batch")
        if shape[2] * shape[3] > MAX_IMAGE_PIXELS or shape[0] > MAX_BATCH:
            raise BitstreamError(f"stream declares an image batch of {shape}, beyond this codec's limits")
        return c

    def _check_payload_floor(self, payload: bytes, positions: int, channels: slice, what: str) -> None:
        """Each symbol costs at least (precision - log2(largest count)) bits under its table, so a
        payload far shorter than that sum cannot hold the declared geometry: refuse it before
        allocating or decoding anything of that size (half the bound leaves room for coder rounding)."""
        t = self._coding_tables()
        per_position = np.sum(t.min_bits()[channels])
        if 8 * len(payload) < 0.5 * positions * float(per_position):
            raise BitstreamError(f"payload of {len(payload)} bytes is too short for the declared {what}")

    # ----------------------------------------------------------------- export
    @torch.no_grad()
    def _round_to_storage(self) -> None:
        """Round every float32 parameter and buffer to ``storage_dtype`` precision, in place."""
        if self.storage_dtype == torch.float32:
            return
        for t in self.state_dict().values():
            if t.dtype == torch.float32:
                t.copy_(t.to(self.storage_dtype).to(torch.float32))

    def _stored(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().cpu()
        return t.to(self.storage_dtype) if t.dtype == torch.float32 else t

    def export(self) -> None:
        """Round to the storage precision, freeze the prior into integer coding tables, hash."""
        self._round_to_storage()
        self.tables = self.prior.export_tables()
        self.weights_hash = weights_digest(self.state_dict(), self.tables)

    def weights_state(self) -> dict[str, object]:
        tables = self._require_tables()
        return {
            "name": self.name,
            "quality": self.quality,
            "config": self.cfg.to_dict(),
            "state_dict": {k: self._stored(v) for k, v in self.state_dict().items()},
            "tables": tables.to_state(),
        }

    def load_weights(self, state: dict[str, object]) -> None:
        """Load shipped weights (config must match this codec's; widths are never inferred)."""
        stored = WallocConfig.from_dict(dict(state["config"]))
        if stored != self.cfg:
            raise ModelError(f"{self.name} q{self.quality}: weights were trained for {stored}, not {self.cfg}")
        self.load_state_dict(state["state_dict"])
        self.tables = CodingTables.from_state(state["tables"])
        self.weights_hash = weights_digest(self.state_dict(), self.tables)


class WallocImageCodec(WallocCodecBase):
    """WaLLoC for RGB images with a factorized prior on the latents.

    Tensors: x (B, 3, H, W) float in [0, 1]; latents (B, C, ceil(H/2^J), ceil(W/2^J)) integers.
    """

    modality = "image"
    storage_dtype = torch.float16  # shipped weights in half precision (see WallocCodecBase)

    def __init__(self, cfg: WallocConfig, name: str = "walloc-rgb", quality: int = 0) -> None:
        super().__init__(cfg, name, quality)

    # ----------------------------------------------------------------- geometry
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = self.padded_side(h) - h, self.padded_side(w) - w
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputError(f"expected a torch.Tensor image, got {type(x).__name__}")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != self.cfg.in_channels:
            raise InputError(f"expected an image tensor (B, {self.cfg.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-1] < 1 or x.shape[-2] < 1 or x.shape[0] < 1:
            raise InputError(f"empty image tensor {tuple(x.shape)}")
        if x.shape[-1] * x.shape[-2] > MAX_IMAGE_PIXELS:
            raise InputError(f"image of {x.shape[-2]}x{x.shape[-1]} exceeds the {MAX_IMAGE_PIXELS}-pixel limit")
        if not torch.is_floating_point(x):
            raise InputError(f"expected a float image in [0, 1], got dtype {x.dtype}")
        if not torch.isfinite(x).all():
            raise InputError("image contains NaN or infinite values")
        return x

    # ------------------------------------------------------------ training path
    def forward(self, x: torch.Tensor) -> RDOutput:
        h, w = x.shape[-2:]
        y = self.analysis(self._pad(x))  # (B, C, H/2^J, W/2^J)
        y_tilde, bits = self.prior(y)
        y_dec = y + (torch.round(y) - y).detach() if self.training else y_tilde  # straight-through
        x_hat = self.synthesis(y_dec)[..., :h, :w]
        return RDOutput(x_hat=x_hat, bits={"y": bits})

    @staticmethod
    def rd_loss(out: RDOutput, x: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, dict[str, float]]:
        """Training objective lambda * 255^2 * MSE + bpp, and what the progress bar shows."""
        mse = torch.mean((out.x_hat - x) ** 2)
        bpp = out.total_bits.mean() / (x.shape[-2] * x.shape[-1])
        psnr = -10 * math.log10(max(mse.item(), 1e-10))
        return lmbda * 255**2 * mse + bpp, {"bpp": bpp.item(), "psnr": psnr}

    # -------------------------------------------------------- compressed domain
    @torch.no_grad()
    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) -> integer latents (B, C, ceil(H/2^J), ceil(W/2^J)) as int32.

        The light encoder runs in float64: cheap, and it keeps rounding ties (and so the
        bytes) stable across thread counts and machines.
        """
        x = self._check_input(x)
        y = self._light_encode(self._pad(x.detach().cpu().double()))
        return torch.round(y).to(torch.int32)  # (B, C, H/2^J, W/2^J)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Integer latents -> x_hat (B, 3, H, W) clamped to [0, 1], cropped to ``size`` if given."""
        dev = next(self.synthesis.parameters()).device
        x_hat = self.synthesis(latents.to(dev, torch.float32)).clamp_(0, 1)
        if size is not None:
            x_hat = x_hat[..., : size[0], : size[1]]
        return x_hat

    # ------------------------------------------------------------------ coding
    def _indexes(self, shape: tuple[int, ...]) -> np.ndarray:
        b, c, h, w = shape
        return np.broadcast_to(np.arange(c).reshape(1, c, 1, 1), (b, c, h, w)).reshape(-1)

    def compress(self, x: torch.Tensor) -> bytes:
        """x (B, 3, H, W) or (3, H, W) in [0, 1] -> a complete lcodec container."""
        tables = self._require_tables()
        x = self._check_input(x)
        z = self.encode_latents(x).numpy()
        payload = encode_symbols(z.reshape(-1), self._indexes(z.shape), tables)
        return self._container(x.shape, (payload,), bit_depth=8)

    def parse(self, data: bytes) -> Container:
        """Read and validate a container meant for this codec (raises BitstreamError)."""
        c = self._read_image_stream(data)
        shape = c.geometry.shape
        if len(c.sections) != 1:
            raise BitstreamError(f"expected 1 section, found {len(c.sections)}")
        b, _, h, w = self.latent_shape(shape)
        self._check_payload_floor(c.sections[0], b * h * w, slice(None), f"{shape[2]}x{shape[3]} image")
        return c

    def latent_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        b, _, h, w = shape
        return (b, self.cfg.latent_channels, self.padded_side(h) // self.factor, self.padded_side(w) // self.factor)

    def decompress_latents(self, data: bytes) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Container -> (integer latents, original shape), without running the decoder."""
        c = self.parse(data)
        zshape = self.latent_shape(c.geometry.shape)
        z = decode_symbols(c.sections[0], self._indexes(zshape), self._require_tables())
        return torch.from_numpy(z.reshape(zshape).astype(np.int32)), c.geometry.shape

    @torch.no_grad()
    def decompress(self, data: bytes) -> torch.Tensor:
        z, shape = self.decompress_latents(data)
        return self.decode_latents(z, size=(shape[2], shape[3]))

    def estimate_bits(self, x: torch.Tensor) -> float:
        """The model's own (float) estimate of the payload size for x, in bits."""
        with torch.no_grad():
            z = self.encode_latents(x).float()
            return float(-torch.log2(self.prior.likelihood(z)).sum())


def weights_digest(state_dict: dict[str, torch.Tensor], tables: CodingTables) -> bytes:
    """sha256 over the tensors (name, shape, float32 little-endian bytes) and the tables."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        t = state_dict[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(np.asarray(t.shape, dtype="<i8").tobytes())
        h.update(t.numpy().astype("<f4").tobytes())
    h.update(bytes.fromhex(tables.sha256))
    return h.digest()


_LIGHT = WallocConfig(levels=4, wavelet="haar", latent_channels=64, decoder_channels=192, decoder_blocks=4)
# One set of weights per rate point (same architecture, different lambda; see the recipes).
WALLOC_RGB_CONFIGS: dict[int, WallocConfig] = {1: _LIGHT, 3: _LIGHT}


@register_codec(
    CodecSpec(
        name="walloc-rgb",
        modality="image",
        qualities=tuple(WALLOC_RGB_CONFIGS),
        default_quality=3,
        transform="Haar wavelet packet J=4 + linear 1x1 encoder + residual CNN decoder at 1/16 resolution",
        entropy_model="factorized prior (Balle et al. 2018), 16-bit integer tables",
        paper="Jacobellis & Yadwadkar, Learned Compression for Compressed Learning, 2024",
        description="WaLLoC for RGB images: light linear encoder, shipped weights trained on shared/data/images/train",
        weights={q: f"walloc-rgb-q{q}.pt" for q in WALLOC_RGB_CONFIGS},
    )
)
def walloc_rgb(quality: int) -> WallocImageCodec:
    return WallocImageCodec(WALLOC_RGB_CONFIGS[quality], name="walloc-rgb", quality=quality)
