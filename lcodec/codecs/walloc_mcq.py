"""WaLLoC image transform + residual multi-codebook quantization (McQuic-style), ``walloc-rgb-mcq``.

The entropy model of Zhu, Yang & Cohen, "Unified Multivariate Gaussian Mixture for Efficient
Neural Image Compression" (McQuic, CVPR 2022), on walloc-rgb-rd's trained transform: each latent
vector (192 channels at one 8x8 block) is quantized by codebooks instead of per channel, and only
the codeword indexes are range-coded, with one stored categorical table per codebook::

    y = g_a(packet(x)) * gain[space]       (B, 192, H/8, W/8)   rd's encoder, rd's gains of rate 6
    stage 1..q: 16 groups of 12 channels, 256 codewords each; stage s codes what 1..s-1 left
    y_hat = sum of the q stages' codewords;  x_hat = post-filter_q(g_s(y_hat / gain[space]))

Quality q uses the first q stages, so the six qualities form a rate ladder (a q-stage stream is
a prefix of any longer one; ``truncate`` cuts a stream down without re-encoding). There is no
side network and no per-symbol table choice: encoding is rd's analysis plus a nearest-codeword
search (one matrix product per stage), decoding is q*16 categorical symbols per position and a
gather. The price is rate-distortion: unconditional
priors cannot follow the image's local activity the way the hyperprior's tables do (measured in
the model card).

Fitting (``python -m lcodec.train.codebook``) is entropy-constrained Lloyd iteration
(Chou, Lookabaugh & Gray 1989) per stage on the latents of training crops, each stage at the
rate-distortion slope of rd's rate point of the same number; the transform is not retrained.
The weights file holds only the codebooks and their tables, laid over walloc-rgb-rd.pt
(pinned by sha256).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from lcodec.bitstream.container import Container, read_container, write_container
from lcodec.bitstream.tables import CodingTables
from lcodec.codecs.walloc_vr import (VR_HYPER_RD, VR_LADDER_Z_PF, WALLOC_RGB_RD, VariableRateOutput,
                                     WallocVariableRateCodec, _spec)
from lcodec.entropy.codebook import ResidualCodebooks
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.models.walloc import ConfigDict
from lcodec.registry import register_codec

__all__ = ["CodebookConfig", "WallocCodebookCodec"]


@dataclass(frozen=True)
class CodebookConfig(ConfigDict):
    """The residual codebook stack (stored in the weights; never inferred from tensor shapes)."""

    stages: int = 6  # one per quality
    groups: int = 16  # codebooks per stage (channels / groups dimensions each)
    codewords: int = 256
    space: int = 6  # the latents are gained with this rate point's gains before quantization


class WallocCodebookCodec(WallocVariableRateCodec):
    """walloc-rgb-rd's transform and post-filter, y coded by residual codebooks (module docstring).

    Tensors: x (B, 3, H, W) in [0, 1]; latents (``encode_latents``) are y_hat in the gained space
    of rate point ``space``, (B, 192, S(H)/8, S(W)/8) float32 with S(n) = n padded to a multiple
    of 16 (at least 32), the same space at every quality.

    The hyperprior tensors of rd are loaded with the rest of rd's file (the class shares rd's
    configuration so that they fit) but take no part in coding.
    """

    side_sections = 0  # every section is main latents (one per stage)

    def __init__(self, quality: int, book: CodebookConfig = CodebookConfig(), name: str = "walloc-rgb-mcq") -> None:
        super().__init__(WALLOC_RGB_RD, VR_HYPER_RD, VR_LADDER_Z_PF, name=name, quality=quality)
        if book.stages != len(self.ladder.lmbdas):
            raise ModelError(f"{name}: one codebook stage per quality is needed ({len(self.ladder.lmbdas)})")
        self.book = book
        self.codebook = ResidualCodebooks(self.cfg.latent_channels, book.stages, book.groups, book.codewords)

    # ------------------------------------------------------------- the space
    def _gain64(self) -> torch.Tensor:
        """The space's gains (float64, CPU, (1, C, 1, 1)): encoder and decoder divide by the same."""
        return torch.exp(self.log_gain.detach().cpu().double()[self.book.space - 1])[None, :, None, None]

    def forward(self, x: torch.Tensor) -> VariableRateOutput:
        """Differentiable path at this quality: straight-through codewords, bits of the hard indexes
        under the learned priors; ``bits["commit"]`` is not bits but the codebooks' commitment loss,
        kept apart (``rd_loss`` does not count it)."""
        h, w = x.shape[-2:]
        gain = torch.exp(self.log_gain[self.book.space - 1])[None, :, None, None]
        y = self.analysis(self._pad(x)) * gain
        y_hat, bits, _ = self.codebook(y, self.quality)
        x_hat = self.synthesis(y_hat / gain)
        if self.postfilter is not None:
            x_hat = self.postfilter(x_hat, self.quality - 1)
        lmbda = torch.full((x.shape[0],), self.ladder.lmbdas[self.quality - 1], device=x.device)
        return VariableRateOutput(x_hat=x_hat[..., :h, :w], bits={"y": bits}, lmbda=lmbda)

    def rd_loss(self, out: VariableRateOutput, x: torch.Tensor, lmbda: float):
        pixels = x.shape[-2] * x.shape[-1]
        mse = ((out.x_hat - x) ** 2).flatten(1).mean(1)
        bpp = out.bits["y"] / pixels
        loss = (lmbda * out.lmbda * 255.0**2 * mse + bpp).mean()
        return loss, {"bpp": bpp.mean().item(), "psnr": (10 * torch.log10(1 / mse.detach().clamp_min(1e-10))).mean().item()}

    # -------------------------------------------------------- compressed domain
    @torch.no_grad()
    def _indexes(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        y64 = self._light_encode(self._pad(x.detach().cpu().double()))
        return self.codebook.indexes(y64, self.quality)

    @torch.no_grad()
    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) -> y_hat, the sum of the first ``quality`` stages' codewords, float32."""
        return self.codebook.dequantize(self._indexes(x)).float()

    def latent_indexes(self, x: torch.Tensor) -> torch.Tensor:
        """x -> the codeword indexes the stream holds, (B, quality, groups, S(H)/8, S(W)/8) int64."""
        return self._indexes(x)

    # ------------------------------------------------------------------ coding
    def compress(self, x: torch.Tensor, refine: int = 0, progress: bool = False) -> bytes:
        """x (B, 3, H, W) or (3, H, W) in [0, 1] -> a complete container, one section per stage."""
        if refine:
            raise ModelError(f"{self.name}: encoder refinement is for the Gaussian ladders (rd, light)")
        for stage in self.codebook.stages:
            stage._require_tables()
        x = self._check_input(x)
        return self._container(x.shape, self.codebook.encode(self._indexes(x)), bit_depth=8)

    def parse(self, data: bytes) -> Container:
        c = self._read_image_stream(data)
        shape = c.geometry.shape
        if len(c.sections) != self.quality:
            raise BitstreamError(f"expected {self.quality} sections (one per codebook stage), found {len(c.sections)}")
        b, _, h, w = self.latent_shape(shape)
        floor = self.codebook.min_bits_per_position(self.quality) * b * h * w
        if 8 * sum(len(s) for s in c.sections) < 0.5 * floor:  # half the bound: room for coder rounding
            raise BitstreamError(f"payload is too short for the declared {shape[2]}x{shape[3]} image")
        return c

    def truncate(self, data: bytes, quality: int) -> bytes:
        """A stream of this codec at quality Q -> the same image's stream at ``quality`` <= Q, with no
        re-encoding: a q-stream's stage sections are the first q of any longer one's (residual stages),
        so this keeps those under a rewritten header. The result is byte for byte what ``compress``
        at ``quality`` writes. Works at any quality of this object (the weights are shared)."""
        c = read_container(data)
        if c.codec != self.name or c.modality != "image":
            raise BitstreamError(f"stream is for {c.codec} ({c.modality}), not {self.name}")
        if c.weights_hash != self.weights_hash:
            raise BitstreamError(f"stream was written with different {self.name} weights")
        if not 1 <= c.quality <= self.book.stages or len(c.sections) != c.quality:
            raise BitstreamError(f"stream declares q{c.quality} with {len(c.sections)} stage sections")
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= c.quality:
            raise InputError(f"a q{c.quality} stream can be cut to quality 1..{c.quality}, not {quality!r}")
        return write_container(replace(c, quality=quality, sections=c.sections[:quality]))

    def decompress_indexes(self, data: bytes) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Container -> (codeword indexes (B, quality, groups, h, w), original shape), exactly."""
        c = self.parse(data)
        return self.codebook.decode(c.sections, self.latent_shape(c.geometry.shape)), c.geometry.shape

    def decompress_latents(self, data: bytes) -> tuple[torch.Tensor, tuple[int, ...]]:
        idx, shape = self.decompress_indexes(data)
        return self.codebook.dequantize(idx).float(), shape

    def estimate_bits(self, x: torch.Tensor) -> float:
        """Ideal code length of the indexes under the stored tables, in bits."""
        return float(sum(self.codebook.information_bits(self._indexes(x))))

    # ----------------------------------------------------- not for this codec
    def _not_here(self, *args, **kwargs):
        raise ModelError(f"{self.name} codes codeword indexes, not Gaussian symbols")

    latent_symbols = decompress_symbols = estimate_bits_split = refine_latents = _not_here

    # ----------------------------------------------------------------- export
    def export(self) -> None:
        self._round_to_storage()  # the tables are built from the stored (float16) priors
        self.codebook.export()
        super().export()

    def _digest_parts(self) -> list[bytes]:
        """rd's, plus every stage's tables (one hash for the file, the same at every quality)."""
        return super()._digest_parts() + [bytes.fromhex(s._require_tables().sha256) for s in self.codebook.stages]

    def weights_state(self) -> dict[str, object]:
        return {**super().weights_state(), "codebook_config": self.book.to_dict(),
                "codebook_tables": [s._require_tables().to_state() for s in self.codebook.stages]}

    def load_weights(self, state: dict[str, object]) -> None:
        if CodebookConfig.from_dict(dict(state.get("codebook_config", {}))) != self.book:
            raise ModelError(f"{self.name}: weights were fitted for another codebook configuration")
        stored = state.get("codebook_tables")
        if not isinstance(stored, list) or len(stored) != self.book.stages:
            raise ModelError(f"{self.name}: weights lack one table set per codebook stage")
        tables = [CodingTables.from_state(t) for t in stored]
        if any(t.num_tables != self.book.groups for t in tables):
            raise ModelError(f"{self.name}: stored codebook tables do not fit the configuration")
        for stage, t in zip(self.codebook.stages, tables):  # before the base computes the digest
            stage.tables = t
        super().load_weights(state)


@register_codec(_spec("walloc-rgb-mcq",
                      "walloc-rgb-rd's encoder, decoder and post-filter (its weights file holds only the "
                      "codebooks and their tables, over walloc-rgb-rd.pt)",
                      "walloc-rgb-rd's transform with McQuic-style residual multi-codebook quantization: "
                      "six rates = one to six stages; fast entropy coding, lower rate-distortion than rd",
                      shipped=True,
                      entropy="residual multi-codebook quantization (McQuic, Zhu et al. 2022): per stage 16 "
                              "codebooks of 256 codewords over 12-channel groups, entropy-constrained; "
                              "indexes coded with one stored 16-bit categorical table per codebook"))
def walloc_rgb_mcq(quality: int) -> WallocCodebookCodec:
    return WallocCodebookCodec(quality)

