"""WaLLoC image transform + mean-scale Gaussian hyperprior with an exact integer side path.

Transform of Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning" (2024);
hyperprior of Ballé, Minnen, Singh, Hwang & Johnston (2018) with the means of Minnen,
Ballé & Toderici (2018); table indexes from an integer network (Ballé, Johnston & Minnen
2019, see ``lcodec.entropy.integer_net``)::

    x (B, 3, H, W), padded (replicate) to multiples of 32
      |  g_a: Haar packet J=4 + linear 1x1        y (B, 64, H/16, W/16)     float64 on CPU when coding
      |  h_a: conv3x3 64->96, GELU, conv5x5/2 ->  z (B, 32, H/32, W/32)     float64 on CPU when coding
      |  round z, factorized prior                 -> section 1
      |  index_net (exact integers): z_int  ->  table indexes (B, 64, H/16, W/16)
      |  h_m (float):                z_int  ->  means         (B, 64, H/16, W/16)
      |  symbols = round(y - means), coded with gaussian table[index] -> section 2
      |  y_hat = symbols + means;  g_s (residual CNN at 1/16) -> x_hat, cropped
    x_hat (B, 3, H, W)

Only integers decoded from the stream and integer weights choose the tables, so the
symbols decode identically on every machine; the means (float64 on CPU on both sides)
only shift symbols and move the reconstruction by rounding errors. The encoder's
roundings (z, and the symbols) are evaluated in float32 with a float64 referee near
rounding boundaries (``lcodec.codecs.refereed``): the float64 path's integers, faster.

With ``HyperpriorConfig.context_slices`` = S >= 2 (``walloc-rgb-rd``), y is coded in S
channel slices, one section each, and the tables of slice s also read the symbols of
the earlier slices (``lcodec.entropy.channel_context``; still integers only).
The transform (``analysis.*``, ``synthesis.*``) has the walloc-rgb architecture, so
training starts from the shipped walloc-rgb weights (recipe ``init_weights``).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.container import Container
from lcodec.bitstream.tables import CodingTables
from lcodec.codecs.base import RDOutput
from lcodec.codecs.refereed import (SYMBOL_MARGIN, Z_MARGIN, conv_at_elements, conv_at_positions, conv_transpose64,
                                    round_refereed)
from lcodec.codecs.walloc import _LIGHT, WallocCodecBase, WallocImageCodec, weights_digest
from lcodec.entropy.channel_context import ChannelContext
from lcodec.entropy.scale_mixture import ScaleMixtureContext
from lcodec.entropy.factorized import FactorizedPrior
from lcodec.entropy.gaussian import GaussianConditional, scale_table
from lcodec.entropy.integer_net import index_synthesis
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.cpu import run_on_cpu
from lcodec.models.walloc import ConfigDict, WallocConfig
from lcodec.registry import CodecSpec, register_codec

__all__ = ["HyperpriorConfig", "WallocHyperpriorCodec", "WALLOC_RGB_HP_CONFIGS"]


@dataclass(frozen=True)
class HyperpriorConfig(ConfigDict):
    """Widths of the side path (stored in every checkpoint; never inferred from weights)."""

    hyper_channels: int = 32  # z
    analysis_hidden: int = 96  # h_a
    index_hidden: int = 64  # the integer index network
    num_scales: int = 64  # Gaussian tables, log-spaced scales min_scale .. max_scale
    min_scale: float = 0.11
    max_scale: float = 64.0  # shipped walloc-rgb latents stay below |y| = 40; larger values are escape-coded
    # >= 2: y is coded in this many channel slices, each conditioned on the earlier ones
    # (lcodec.entropy.channel_context); 0: the plain hyperprior
    context_slices: int = 0
    context_hidden: int = 128  # width of each slice's mean correction (0: the context only picks tables)
    # True: the context's tables are two-component Gaussian scale mixtures (stored integer tables,
    # lcodec.entropy.scale_mixture; needs context_slices >= 2 and context_hidden = 0)
    context_mixture: bool = False


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class WallocHyperpriorCodec(WallocCodecBase):
    """WaLLoC for RGB images with a mean-scale Gaussian hyperprior.

    ``prior`` is the factorized model of z (its tables are ``tables``, section 1); ``gaussian``
    holds the scale table of y (its integer tables are ``y_tables``, section 2).
    Tensors: x (B, 3, H, W) float in [0, 1]; latents y_hat (B, 64, 2*ceil(H/32), 2*ceil(W/32))
    float32; hyper-latents z (B, 32, ceil(H/32), ceil(W/32)) integers.
    """

    modality = "image"
    side_sections = 1  # section 1 is the side information z (benchmarks report it apart)
    index_band_positions = 2**15  # y positions per exact-index band (bounds the decoder's memory)
    storage_dtype = torch.float16  # shipped weights in half precision (see WallocCodecBase)

    def __init__(self, cfg: WallocConfig, hyper: HyperpriorConfig = HyperpriorConfig(),
                 name: str = "walloc-rgb-hp", quality: int = 0) -> None:
        super().__init__(cfg, name, quality)
        if cfg.dims != 2:
            raise ModelError("the hyperprior codec is for images (dims=2)")
        self.hyper = hyper
        c, n = cfg.latent_channels, hyper.hyper_channels
        self.prior = FactorizedPrior(n)  # replaces the base's prior on y: here it models z
        self.h_a = nn.Sequential(
            nn.Conv2d(c, hyper.analysis_hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hyper.analysis_hidden, n, 5, stride=2, padding=2),
        )
        self.index_net = index_synthesis(n, hyper.index_hidden, c, hyper.num_scales, upsample=1)
        self.h_m = nn.Sequential(
            nn.ConvTranspose2d(n, c, 4, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1),
        )
        nn.init.zeros_(self.h_m[2].weight)  # means start at 0: the shipped transform's symbols
        nn.init.zeros_(self.h_m[2].bias)
        self.gaussian = GaussianConditional(scale_table(hyper.num_scales, hyper.min_scale, hyper.max_scale))
        self.y_tables: CodingTables | None = None
        self.context: ChannelContext | None = None
        if hyper.context_mixture and (hyper.context_slices < 2 or hyper.context_hidden):
            raise ModelError("context_mixture needs context_slices >= 2 and context_hidden = 0")
        if hyper.context_mixture:
            self.context = ScaleMixtureContext(c, hyper.context_slices, hyper.index_hidden,
                                               self.gaussian.scale_table.numpy())
        elif hyper.context_slices:
            self.context = ChannelContext(c, hyper.context_slices, hyper.index_hidden, hyper.num_scales,
                                          hyper.context_hidden)
        if self.context is not None:  # the index net's head then only initialises the slices' heads
            self.context.init_from_head(self.index_net.layers[-1])

    @property
    def factor(self) -> int:
        """Padding multiple: the transform downsamples by 2^J, h_a by another 2."""
        return 2 ** (self.cfg.levels + 1)

    # ------------------------------------------------------------ training path
    def forward(self, x: torch.Tensor) -> RDOutput:
        x_hat, bits = self._rd_path(x)
        return RDOutput(x_hat=x_hat, bits=bits)

    def _rd_path(self, x: torch.Tensor, gain: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The differentiable path: (x_hat, {"y": bits, "z": bits}). ``gain`` (B, C, 1, 1), if
        given, scales y before quantization and back before synthesis (variable-rate codecs)."""
        h, w = x.shape[-2:]
        y = self.analysis(self._pad(x))  # (B, 64, H/16, W/16)
        if gain is not None:
            y = y * gain
        z = self.h_a(y)  # (B, 32, H/32, W/32)
        z_bits = self._z_bits(z)
        z_hat = _ste_round(z)  # the decoder's side networks see integers, as when coding
        means = self.h_m(z_hat)
        if self.context is not None:
            y_dec, y_bits = self.context(y, means, self.index_net.layers[0](z_hat),
                                         lambda v, sc, m: self.gaussian(v, sc, m)[1], self.gaussian.scales_from_indexes)
        else:
            scales = self.gaussian.scales_from_indexes(self.index_net(z_hat))
            _, y_bits = self.gaussian(y, scales, means)
            y_dec = _ste_round(y - means) + means  # straight-through, like walloc-rgb
        if gain is not None:
            y_dec = y_dec / gain
        x_hat = self.synthesis(y_dec)[..., :h, :w]
        return x_hat, {"y": y_bits, "z": z_bits}

    def _z_bits(self, z: torch.Tensor) -> torch.Tensor:
        """Training path: bits of z per batch item under the factorized prior."""
        return self.prior(z)[1]

    def _z_prior(self) -> FactorizedPrior:
        """The prior z is coded with (the variable-rate ladders may keep one per rate point)."""
        return self.prior

    @staticmethod
    def rd_loss(out: RDOutput, x: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, dict[str, float]]:
        """lambda * 255^2 * MSE + bpp (y and z together); shows bpp, psnr and the side bpp."""
        loss, shown = WallocImageCodec.rd_loss(out, x, lmbda)
        side = out.bits["z"].mean() / (x.shape[-2] * x.shape[-1])
        return loss, {**shown, "side_bpp": side.item()}

    # ----------------------------------------------------------------- geometry
    # the image codec's input handling, padding to this codec's multiple of 32 (``factor``)
    _pad = WallocImageCodec._pad
    _check_input = WallocImageCodec._check_input

    def latent_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(B, 3, H, W) -> shape of y: (B, 64, 2*ceil(H/32), 2*ceil(W/32))."""
        b, _, h, w = self.hyper_shape(shape)
        return (b, self.cfg.latent_channels, 2 * h, 2 * w)

    def hyper_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(B, 3, H, W) -> shape of z: (B, 32, ceil(H/32), ceil(W/32))."""
        b, _, h, w = shape
        return (b, self.hyper.hyper_channels, self.padded_side(h) // self.factor, self.padded_side(w) // self.factor)

    # ------------------------------------------------------------ exact pieces
    @staticmethod
    def _run64(module: nn.Module, x64: torch.Tensor) -> torch.Tensor:
        """``module`` applied in float64 on CPU (its float32 parameters widened exactly)."""
        return run_on_cpu(module, x64)

    @staticmethod
    def _run32(module: nn.Module, x32: torch.Tensor) -> torch.Tensor:
        """``module`` applied in float32 on CPU."""
        return run_on_cpu(module, x32)

    @torch.no_grad()
    def _hyper_analysis(self, y64: torch.Tensor) -> torch.Tensor:
        """float64 y (B, C, h, w) -> integer z (B, N, h/2, w/2) int64 on CPU: round(h_a(y)) as
        float64 evaluates it, computed in float32 with a float64 referee (``refereed``)."""
        conv1, act, conv2 = self.h_a
        approx = self._run32(self.h_a, y64.float())

        def exact_at(index: torch.Tensor) -> torch.Tensor:
            # each flagged value from its receptive field: the first layer (float64) at the k*k
            # positions the second reads (zero outside y, as its padding), then the dot product
            (k, _), (s, _), (p, _) = conv2.kernel_size, conv2.stride, conv2.padding
            b, c, i, j = index.T
            d = torch.arange(k) - p
            gi = (s * i[:, None, None] + d[None, :, None]).expand(-1, k, k).reshape(-1)
            gj = (s * j[:, None, None] + d[None, None, :]).expand(-1, k, k).reshape(-1)
            h, w = y64.shape[-2:]
            inside = ((gi >= 0) & (gi < h) & (gj >= 0) & (gj < w)).double()[:, None]
            pos = torch.stack([b.repeat_interleave(k * k), gi.clamp(0, h - 1), gj.clamp(0, w - 1)], 1)
            hidden = act(conv_at_positions(y64, conv1, pos)) * inside  # (N*k*k, C_hidden)
            w2 = conv2.weight.detach().cpu().double()[c]  # (N, C_hidden, k, k)
            taps = w2.permute(0, 2, 3, 1).reshape(len(index), k * k, -1)
            bias = conv2.bias.detach().cpu().double()[c]
            return torch.einsum("ntc,ntc->n", hidden.view(len(index), k * k, -1), taps) + bias

        return round_refereed(approx, Z_MARGIN, exact_at)

    @torch.no_grad()
    def _symbols(self, y64: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """round(y - means(z)) int64 on CPU, as float64 evaluates it: h_m's first layers in
        float64, its last (widest) convolution in float32 with a float64 referee (``refereed``)."""
        up, act, conv = self.h_m
        hidden = act(conv_transpose64(z.cpu().double(), up))
        approx = y64.float() - self._run32(conv, hidden.float())  # float32: y's rounding is far below the margin
        return round_refereed(approx, SYMBOL_MARGIN,
                              lambda index: y64[tuple(index.T)] - conv_at_elements(hidden, conv, index))

    @torch.no_grad()
    def _means(self, z: torch.Tensor) -> torch.Tensor:
        """Integer z -> means of y, float64 on CPU (encoder and decoder alike)."""
        return self._run64(self.h_m, z.cpu().double())

    @torch.no_grad()
    def table_indexes(self, z: torch.Tensor) -> torch.Tensor:
        """Integer z (B, 32, h, w) -> table indexes (B, 64, 2h, 2w) int64 on CPU, bit-exact.

        Runs ``index_net.forward_exact`` on the network's device, one band of rows at a time
        (with a halo of 2 rows of z: the receptive field reaches 1), so memory stays bounded.
        """
        dev = next(self.index_net.parameters()).device
        b, _, h, w = z.shape
        out = torch.empty((b, self.cfg.latent_channels, 2 * h, 2 * w), dtype=torch.int64)
        rows = max(1, self.index_band_positions // (4 * w))
        halo = 2
        for i in range(b):
            for r0 in range(0, h, rows):
                r1 = min(h, r0 + rows)
                s0, s1 = max(0, r0 - halo), min(h, r1 + halo)
                band = self.index_net.forward_exact(z[i : i + 1, :, s0:s1].to(dev))
                out[i : i + 1, :, 2 * r0 : 2 * r1] = band[:, :, 2 * (r0 - s0) : 2 * (r1 - s0)].cpu()
        return out

    def _z_indexes(self, shape: tuple[int, ...]) -> np.ndarray:
        b, c, h, w = shape
        return np.broadcast_to(np.arange(c).reshape(1, c, 1, 1), (b, c, h, w)).reshape(-1)

    @torch.no_grad()
    def latent_symbols(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, H, W) -> (y symbols round(y - means), z symbols), both int64 on CPU.

        Everything before the symbols is float64 on CPU, or float32 refereed by float64 where
        a value is near a rounding boundary (``lcodec.codecs.refereed``), so rounding ties, and
        hence the bytes, do not depend on thread count or device.
        """
        y64, z = self._analyse(x)
        if self.context is not None:
            return torch.cat(self._context_encode(y64, z, y_hat=False)[0], 1), z
        return self._symbols(y64, z), z

    def _analyse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (y float64 (B, C, h, w), integer z) on CPU."""
        x = self._check_input(x)
        y64 = self._light_encode(self._pad(x.detach().cpu().double()))  # (B, C, H/2^J, W/2^J)
        return y64, self._hyper_analysis(y64)

    def _hidden(self, z: torch.Tensor) -> torch.Tensor:
        """Integer z -> the index network's hidden integer features (float64, CPU), exactly."""
        dev = next(self.index_net.parameters()).device
        return self.index_net.layers[0].forward_exact(z.double().to(dev)).cpu()

    def _context_encode(self, y64: torch.Tensor, z: torch.Tensor, y_hat: bool = True):
        """(symbols per slice, table indexes per slice, y_hat float64 or None) with the channel
        context. A context that only picks tables (no mean corrections) leaves every symbol
        round(y - mean), so the symbols come from the refereed float32 path (``_symbols``: the
        same integers as float64) and float64 means are computed only when ``y_hat`` is asked for."""
        if self.context.means:
            return self.context.encode(y64, self._means(z), self._hidden(z))
        symbols = list(self._symbols(y64, z).split(self.context.width, dim=1))
        indexes = self.context.slice_indexes(self._hidden(z), symbols)
        return symbols, indexes, (torch.cat(symbols, 1).double() + self._means(z)) if y_hat else None

    # -------------------------------------------------------- compressed domain
    @torch.no_grad()
    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) -> y_hat = symbols + means (B, 64, 2*ceil(H/32), 2*ceil(W/32)) float32."""
        if self.context is not None:
            return self._context_encode(*self._analyse(x))[2].float()
        y_sym, z = self.latent_symbols(x)
        return (y_sym.double() + self._means(z)).float()

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """y_hat -> x_hat (B, 3, H, W) clamped to [0, 1], cropped to ``size`` if given."""
        return WallocImageCodec.decode_latents(self, latents, size)

    # ------------------------------------------------------------------ coding
    def compress(self, x: torch.Tensor, refine: int = 0, progress: bool = False) -> bytes:
        """x (B, 3, H, W) or (3, H, W) in [0, 1] -> a complete lcodec container (z, then y).

        ``refine`` > 0: that many steps of encoder-side latent refinement (``refine_latents``;
        variable-rate codecs only) before the symbols are chosen; the decoder is unchanged.
        """
        z_tables, y_tables = self._coding_tables(), self._require_y_tables()
        x = self._check_input(x)
        y64, z = self._analyse(x)
        if refine:
            y64 = self.refine_latents(x, y64, z, refine, progress=progress)
        if self.context is not None:  # one section per slice, in coding order
            symbols, indexes, _ = self._context_encode(y64, z, y_hat=False)
        else:
            symbols, indexes = [self._symbols(y64, z)], [self.table_indexes(z)]
        z_payload = encode_symbols(z.numpy().reshape(-1), self._z_indexes(tuple(z.shape)), z_tables)
        y_payloads = [encode_symbols(s.numpy().reshape(-1), i.numpy().reshape(-1), y_tables)
                      for s, i in zip(symbols, indexes)]
        return self._container(x.shape, (z_payload, *y_payloads), bit_depth=8)

    def refine_latents(self, x: torch.Tensor, y64: torch.Tensor, z: torch.Tensor, steps: int,
                       progress: bool = False) -> torch.Tensor:
        """Encoder-side refinement of y (``WallocVariableRateCodec``); a plain hyperprior codec has no
        rate point's lambda to refine for."""
        raise ModelError(f"{self.name}: encoder refinement needs a variable-rate codec "
                         "(walloc-rgb-light, walloc-rgb-rd)")

    @property
    def y_sections(self) -> int:
        """Range-coded sections of y: one per channel slice with the context, else one."""
        return self.context.slices if self.context is not None else 1

    def parse(self, data: bytes) -> Container:
        """Read and validate a container meant for this codec (raises BitstreamError).

        Both sections are checked against the fewest bits their declared symbols could take
        before anything of the declared size is allocated (y against its cheapest table here,
        and against the actual tables once the indexes are known, in ``decompress_symbols``).
        """
        c = self._read_image_stream(data)
        shape = c.geometry.shape
        if len(c.sections) != 1 + self.y_sections:
            raise BitstreamError(f"expected {1 + self.y_sections} sections (z, then y in {self.y_sections}), "
                                 f"found {len(c.sections)}")
        b, _, hz, wz = self.hyper_shape(shape)
        what = f"{shape[2]}x{shape[3]} image"
        self._check_payload_floor(c.sections[0], b * hz * wz, slice(None), f"{what} (side information)")
        cheapest = float(self._require_y_tables().min_bits().min())
        per_section = math.prod(self.latent_shape(shape)) // self.y_sections
        for payload in c.sections[1:]:
            self._check_floor(payload, per_section * cheapest, what)
        return c

    @staticmethod
    def _check_floor(payload: bytes, min_bits: float, what: str) -> None:
        if 8 * len(payload) < 0.5 * min_bits:  # half the bound leaves room for coder rounding
            raise BitstreamError(f"payload of {len(payload)} bytes is too short for the declared {what}")

    def _decode(self, data: bytes) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...], torch.Tensor]:
        """Container -> (y symbols, z symbols, original shape, y_hat float64)."""
        c = self.parse(data)
        y_tables = self._require_y_tables()
        zshape = self.hyper_shape(c.geometry.shape)
        z = decode_symbols(c.sections[0], self._z_indexes(zshape), self._coding_tables())
        z = torch.from_numpy(z.reshape(zshape))
        what = f"{c.geometry.shape[2]}x{c.geometry.shape[3]} image"

        floor_bits = y_tables.min_bits()  # once per stream, not per section

        def read(section: int, indexes: torch.Tensor) -> torch.Tensor:
            flat = indexes.numpy().reshape(-1)
            min_bits = np.bincount(flat, minlength=y_tables.num_tables) @ floor_bits
            self._check_floor(c.sections[1 + section], float(min_bits), what)
            return torch.from_numpy(decode_symbols(c.sections[1 + section], flat, y_tables).reshape(indexes.shape))

        means = self._means(z)
        if self.context is not None:
            symbols, y_hat = self.context.decode(means, self._hidden(z), read)
            return torch.cat(symbols, 1), z, c.geometry.shape, y_hat
        y_sym = read(0, self.table_indexes(z))
        return y_sym, z, c.geometry.shape, y_sym.double() + means

    def decompress_symbols(self, data: bytes) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
        """Container -> (y symbols, z symbols, original shape), integers as the encoder had them."""
        return self._decode(data)[:3]

    def decompress_latents(self, data: bytes) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Container -> (y_hat float32, original shape), without running the decoder."""
        _, _, shape, y_hat = self._decode(data)
        return y_hat.float(), shape

    @torch.no_grad()
    def decompress(self, data: bytes) -> torch.Tensor:
        y_hat, shape = self.decompress_latents(data)
        return self.decode_latents(y_hat, size=(shape[2], shape[3]))

    @torch.no_grad()
    def estimate_bits_split(self, x: torch.Tensor) -> dict[str, float]:
        """The model's own (float) estimate of each section's payload in bits: {"y": ..., "z": ...}."""
        if self.context is not None:
            y64, z = self._analyse(x)
            symbols, indexes, _ = self._context_encode(y64, z, y_hat=False)
            y_sym, index = torch.cat(symbols, 1), torch.cat(indexes, 1)
        else:
            y_sym, z = self.latent_symbols(x)
            index = self.table_indexes(z)
        if self.hyper.context_mixture:  # the stored mixture tables' own cost
            y_bits = self._require_y_tables().information_content(y_sym.numpy(), index.numpy())
        else:
            scales = self.gaussian.scale_table.cpu()[index]  # float64
            y_bits = -torch.log2(self.gaussian.likelihood(y_sym.double(), scales)).sum()
        prior = self._z_prior()
        z_float = z.to(next(prior.parameters()).device, torch.float32)
        z_bits = -torch.log2(prior.likelihood(z_float)).sum()
        return {"y": float(y_bits), "z": float(z_bits)}

    def estimate_bits(self, x: torch.Tensor) -> float:
        """The model's own (float) estimate of the whole payload (both sections), in bits."""
        return sum(self.estimate_bits_split(x).values())

    # ----------------------------------------------------------------- export
    def _require_y_tables(self) -> CodingTables:
        if self.y_tables is None:
            raise ModelError(f"{self.name}: no Gaussian coding tables; load shipped weights or call export()")
        return self.y_tables

    def _digest(self) -> bytes:
        """sha256 over ``_digest_parts``: the tensors, the z tables and the y tables."""
        return hashlib.sha256(b"".join(self._digest_parts())).digest()

    def _digest_parts(self) -> list[bytes]:
        return [weights_digest(self.state_dict(), self._require_tables()),
                bytes.fromhex(self._require_y_tables().sha256)]

    def export(self) -> None:
        """Round to the storage precision, freeze both entropy models into integer tables, hash."""
        self._round_to_storage()
        self.tables = self.prior.export_tables()
        self.y_tables = self.context.tables() if self.hyper.context_mixture else self.gaussian.tables()
        self.weights_hash = self._digest()

    def weights_state(self) -> dict[str, object]:
        return {
            **super().weights_state(),
            "hyper_config": self.hyper.to_dict(),
            "y_tables": self._require_y_tables().to_state(),
        }

    def load_weights(self, state: dict[str, object]) -> None:
        """Load shipped weights (both configs must match this codec's; widths are never inferred)."""
        stored = WallocConfig.from_dict(dict(state["config"]))
        if "hyper_config" not in state or "y_tables" not in state:
            raise ModelError(f"{self.name} q{self.quality}: weights lack the hyperprior config or Gaussian tables "
                             "(are they walloc-rgb weights? those only initialise training: init_weights)")
        hyper = HyperpriorConfig.from_dict(dict(state["hyper_config"]))
        if stored != self.cfg or hyper != self.hyper:
            raise ModelError(f"{self.name} q{self.quality}: weights were trained for {stored}, {hyper}, "
                             f"not {self.cfg}, {self.hyper}")
        tables = CodingTables.from_state(state["tables"])
        y_tables = CodingTables.from_state(state["y_tables"])
        y_count = self.context.num_tables if self.hyper.context_mixture else self.hyper.num_scales
        if tables.num_tables != self.hyper.hyper_channels or y_tables.num_tables != y_count:
            raise ModelError(f"{self.name} q{self.quality}: stored tables do not fit the configuration")
        self.load_state_dict(state["state_dict"])
        self.tables, self.y_tables = tables, y_tables
        self.weights_hash = self._digest()


# One set of weights per rate point; the transform is walloc-rgb's, so its weights start training.
# Registered for training and for the variable-rate codecs built on it; its weights are not shipped.
WALLOC_RGB_HP_CONFIGS: dict[int, WallocConfig] = {1: _LIGHT, 2: _LIGHT, 3: _LIGHT}


@register_codec(
    CodecSpec(
        name="walloc-rgb-hp",
        modality="image",
        qualities=tuple(WALLOC_RGB_HP_CONFIGS),
        default_quality=3,
        transform="Haar wavelet packet J=4 + linear 1x1 encoder + residual CNN decoder at 1/16 resolution",
        entropy_model="mean-scale Gaussian hyperprior (Balle et al. 2018; Minnen et al. 2018); table indexes "
                      "from an exact integer network, factorized prior on z; 16-bit integer tables",
        paper="Jacobellis & Yadwadkar, Learned Compression for Compressed Learning, 2024; "
              "Balle, Johnston & Minnen, Integer Networks for Data Compression with Latent-Variable Models, 2019",
        description="WaLLoC for RGB images with a hyperprior whose table choice is bit-exact on every machine. "
                    "Weights not shipped since 0.1 (superseded by walloc-rgb-light / walloc-rgb-rd, which keeps "
                    "lcodec/weights under 50 MB); reproduce them with `codec train walloc-rgb-hp-qN`",
    )
)
def walloc_rgb_hp(quality: int) -> WallocHyperpriorCodec:
    return WallocHyperpriorCodec(WALLOC_RGB_HP_CONFIGS[quality], name="walloc-rgb-hp", quality=quality)
