"""Multi-codebook quantization with a learned categorical prior, after McQuic (Zhu, Yang &
Cohen, "Unified Multivariate Gaussian Mixture for Efficient Neural Image Compression", CVPR 2022).

The latent vector at each position is cut into M groups of d channels. Group m has a
codebook of K codewords c_{m,k} (d-dimensional) and mixture weights pi_{m,k}: together a
multivariate Gaussian mixture with a shared isotropic variance s^2, whose components are
the codewords. Quantizing a group = choosing its most probable component,

    k* = argmin_k  ||y - c_k||^2 / (2 s^2) - ln pi_k        (rate-aware nearest codeword),

and the index k* costs -log2 pi_{k*} bits under the categorical prior. Decoding is a table
lookup. What the range coder sees is one integer index per group and position, coded with
one stored 16-bit table per codebook (``export``), so decoding is exact on every machine;
the encoder's argmin runs in float64 on CPU (the distances come from one matrix product, so only
a tie closer than float64 rounding, ~1e-13 relative, could depend on the BLAS library).

Training: the soft assignment q(k|y) (softmax of the log-posterior above) gives a
differentiable reconstruction, replaced by the hard codeword in the forward pass
(straight-through); the rate is the hard index's -log2 pi, differentiable in pi; a
commitment term pulls encoder outputs and codewords together (van den Oord et al. 2017).

Relation to the scalar hyperprior path (``lcodec.entropy.hyperprior``): no side network and
no per-symbol table choice, so both directions are one matrix product or gather plus a
categorical range-coding pass over M/d times fewer symbols (``benchmarks/entropy_speed.py``
measures it); the price is a fixed rate grid (at most log2 K bits per group).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.walloc import ConfigDict

__all__ = ["MultiCodebookQuantizer", "ResidualCodebooks", "variance_for_slope", "CodebookConfig",
           "CodebookEntropyModel"]

ESCAPE_MASS = 1e-9  # the coder's escape entry: never used for valid indexes


class MultiCodebookQuantizer(nn.Module):
    """y (B, C, h, w) -> indexes (B, M, h, w) int64 in [0, K) -> y_hat (B, C, h, w).

    ``channels`` C must be divisible by ``groups`` M; each group has ``codewords`` K entries.
    """

    def __init__(self, channels: int, groups: int, codewords: int, init_scale: float = 1.0,
                 variance: float = 1.0, commitment: float = 0.25) -> None:
        super().__init__()
        if channels % groups or codewords < 2:
            raise ModelError(f"need channels ({channels}) divisible by groups ({groups}) and >= 2 codewords")
        self.groups, self.codewords, self.dim = groups, codewords, channels // groups
        self.codebooks = nn.Parameter(torch.randn(groups, codewords, self.dim) * init_scale)
        self.logits = nn.Parameter(torch.zeros(groups, codewords))  # mixture weights pi = softmax
        self.log_variance = nn.Parameter(torch.tensor(float(np.log(variance))))
        self.commitment = commitment
        self.tables: CodingTables | None = None

    # ------------------------------------------------------------- geometry
    def _groups(self, y: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, h, w, M, d)."""
        b, c, h, w = y.shape
        if c != self.groups * self.dim:
            raise ModelError(f"expected {self.groups * self.dim} channels, got {c}")
        return y.permute(0, 2, 3, 1).reshape(b, h, w, self.groups, self.dim)

    def _scores(self, g: torch.Tensor, codebooks: torch.Tensor, logits: torch.Tensor,
                log_variance: torch.Tensor) -> torch.Tensor:
        """Log-posterior of every codeword up to a per-vector constant: (M, N, K) for the
        N = B*h*w vectors of each group. ||g - c||^2 = ||g||^2 - 2 g.c + ||c||^2, and ||g||^2
        is the same for every codeword, so it is left out: one batched matrix product."""
        flat = g.reshape(-1, self.groups, self.dim).transpose(0, 1)  # (M, N, d)
        inv_var = torch.exp(-log_variance)
        half_sq = 0.5 * (codebooks * codebooks).sum(-1).unsqueeze(1)  # (M, 1, K)
        bias = F.log_softmax(logits, dim=-1).unsqueeze(1) - half_sq * inv_var  # (M, 1, K)
        return torch.baddbmm(bias, flat * inv_var, codebooks.transpose(1, 2))  # (M, N, K)

    # --------------------------------------------------------------- coding
    @torch.no_grad()
    def indexes(self, y: torch.Tensor) -> torch.Tensor:
        """Most probable codeword per group, (B, M, h, w) int64, computed in float64 on CPU."""
        b, _, h, w = y.shape
        scores = self._scores(self._groups(y.detach().cpu().double()), self.codebooks.detach().cpu().double(),
                              self.logits.detach().cpu().double(), self.log_variance.detach().cpu().double())
        return scores.argmax(-1).reshape(self.groups, b, h, w).transpose(0, 1).contiguous()

    def dequantize(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) indexes -> codewords (B, C, h, w) on the codebooks' device and dtype."""
        if idx.min() < 0 or idx.max() >= self.codewords:
            raise BitstreamError(f"codeword index outside [0, {self.codewords})")
        b, m, h, w = idx.shape
        idx = idx.to(self.codebooks.device)
        words = self.codebooks[torch.arange(m, device=idx.device)[None, :, None, None], idx]  # (B, M, h, w, d)
        return words.permute(0, 1, 4, 2, 3).reshape(b, m * self.dim, h, w)

    def export(self) -> None:
        """Freeze the mixture weights into one integer coding table per codebook."""
        pi = torch.softmax(self.logits.detach().cpu().double(), dim=-1).numpy()
        pmfs = [np.append(p * (1 - ESCAPE_MASS), ESCAPE_MASS) for p in pi]
        self.tables = CodingTables.from_pmfs(pmfs, offsets=[0] * self.groups)

    def _table_indexes(self, shape: tuple[int, ...]) -> np.ndarray:
        b, m, h, w = shape
        return np.broadcast_to(np.arange(m).reshape(1, m, 1, 1), (b, m, h, w)).reshape(-1)

    def _require_tables(self) -> CodingTables:
        if self.tables is None:
            raise ModelError("no codebook coding tables: call export() first")
        return self.tables

    def encode(self, y: torch.Tensor) -> tuple[bytes, torch.Tensor]:
        """(payload, indexes): one categorical symbol per group and position."""
        idx = self.indexes(y)
        return self.encode_indexes(idx), idx

    def encode_indexes(self, idx: torch.Tensor) -> bytes:
        """Range-code indexes (B, M, h, w) with this codebook's stored tables."""
        return encode_symbols(idx.numpy().reshape(-1), self._table_indexes(tuple(idx.shape)), self._require_tables())

    def decode_indexes(self, data: bytes, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """Payload + latent shape (B, C, h, w) -> indexes (B, M, h, w) int64 (exact)."""
        b, _, h, w = shape
        ishape = (b, self.groups, h, w)
        idx = decode_symbols(data, self._table_indexes(ishape), self._require_tables())
        if idx.min() < 0 or idx.max() >= self.codewords:  # an escape decoded from a damaged payload
            raise BitstreamError(f"codeword index outside [0, {self.codewords}) in the payload")
        return torch.from_numpy(idx.reshape(ishape))

    def information_bits(self, idx: torch.Tensor) -> float:
        """Ideal code length of ``idx`` under the stored tables, in bits."""
        t = self._require_tables()
        return float(t.information_content(idx.numpy().reshape(-1), self._table_indexes(tuple(idx.shape))))

    # ------------------------------------------------------------- training
    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(y_hat straight-through (B, C, h, w), bits (B,), commitment loss (scalar))."""
        g = self._groups(y)
        scores = self._scores(g, self.codebooks, self.logits, self.log_variance)  # (M, N, K)
        soft = torch.bmm(torch.softmax(scores, dim=-1), self.codebooks).transpose(0, 1).reshape(g.shape)
        hard_idx = scores.argmax(-1)  # (M, N)
        rows = torch.arange(self.groups, device=y.device)[:, None]
        hard = self.codebooks[rows, hard_idx].transpose(0, 1).reshape(g.shape)  # (B, h, w, M, d)
        y_q = soft + (hard - soft).detach()
        log_pi = F.log_softmax(self.logits, dim=-1)
        bits = -log_pi[rows, hard_idx].reshape(self.groups, y.shape[0], -1).sum((0, 2)) / np.log(2.0)
        commit = ((g - hard.detach()) ** 2).mean() * self.commitment + ((hard - g.detach()) ** 2).mean()
        b, h, w = y.shape[0], y.shape[2], y.shape[3]
        y_hat = y_q.reshape(b, h, w, -1).permute(0, 3, 1, 2)
        return y_hat, bits, commit


def variance_for_slope(slope: float) -> float:
    """The shared variance s^2 whose rate-aware assignment is the entropy-constrained one for a
    rate-distortion slope ``slope`` (squared error per bit): argmax ln pi - ||y - c||^2 / (2 s^2)
    is argmin ||y - c||^2 + slope * (-log2 pi) when 2 s^2 = slope / ln 2."""
    return slope / (2.0 * np.log(2.0))


class ResidualCodebooks(nn.Module):
    """S stages of multi-codebook quantization, each coding what the earlier ones left (residual
    VQ): y (B, C, h, w) -> indexes (B, S, M, h, w) -> y_hat = sum of the stages' codewords.

    Using the first s stages gives a coarser reconstruction at a lower rate, so one stack spans a
    rate ladder (quality s = s stages; a stream of s stages is a prefix of one of more stages).
    Channels are grouped after ``order``, a permutation (strongest channels first, so the
    high-variance ones share groups and the weak ones collapse to near-free codebooks). Each stage
    has its own rate-distortion slope, through its ``log_variance`` (``variance_for_slope``).

    The encoder runs in float64 on CPU: every stage's input is the float64 residual of the stage
    before, so the indexes depend only on y, the codebooks and the priors. The decoder reads the
    indexes with each stage's stored integer tables, whatever machine it runs on.
    """

    def __init__(self, channels: int, stages: int, groups: int, codewords: int) -> None:
        super().__init__()
        if stages < 1:
            raise ModelError(f"need at least one stage, got {stages}")
        self.stages = nn.ModuleList(MultiCodebookQuantizer(channels, groups, codewords) for _ in range(stages))
        self.register_buffer("order", torch.arange(channels))
        self.channels, self.groups, self.codewords = channels, groups, codewords

    def _check(self, used: int) -> None:
        if not 1 <= used <= len(self.stages):
            raise ModelError(f"can use 1 to {len(self.stages)} stages, not {used}")

    @torch.no_grad()
    def indexes(self, y: torch.Tensor, used: int) -> torch.Tensor:
        """y (B, C, h, w) -> (B, used, M, h, w) int64, computed in float64 on CPU."""
        self._check(used)
        residual = y.detach().cpu().double()[:, self.order.cpu()]
        out = []
        for stage in self.stages[:used]:
            idx = stage.indexes(residual)
            residual = residual - stage.dequantize(idx.to(stage.codebooks.device)).cpu().double()
            out.append(idx)
        return torch.stack(out, 1)

    def dequantize(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, S', M, h, w) indexes of the first S' stages -> y_hat (B, C, h, w) float64 on CPU."""
        self._check(idx.shape[1])
        acc = sum(stage.dequantize(idx[:, s]).detach().cpu().double() for s, stage in enumerate(self.stages[:idx.shape[1]]))
        return acc[:, torch.argsort(self.order.cpu())]

    def export(self) -> None:
        for stage in self.stages:
            stage.export()

    def encode(self, idx: torch.Tensor) -> tuple[bytes, ...]:
        """One payload per stage."""
        return tuple(stage.encode_indexes(idx[:, s].contiguous()) for s, stage in enumerate(self.stages[:idx.shape[1]]))

    def decode(self, payloads: tuple[bytes, ...], shape: tuple[int, int, int, int]) -> torch.Tensor:
        """One payload per stage + latent shape (B, C, h, w) -> indexes (B, S', M, h, w) (exact)."""
        self._check(len(payloads))
        return torch.stack([stage.decode_indexes(p, shape) for p, stage in zip(payloads, self.stages)], 1)

    def information_bits(self, idx: torch.Tensor) -> list[float]:
        """Ideal code length of each stage's indexes under its stored tables, in bits."""
        return [stage.information_bits(idx[:, s].contiguous()) for s, stage in enumerate(self.stages[:idx.shape[1]])]

    def min_bits_per_position(self, used: int) -> float:
        """The fewest bits the first ``used`` stages can spend on one position (each group's
        cheapest index under its stored table)."""
        return float(sum(np.sum(stage._require_tables().min_bits()) for stage in self.stages[:used]))

    def forward(self, y: torch.Tensor, used: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training: (y_hat straight-through, bits (B,), commitment loss) over the first ``used`` stages."""
        self._check(used)
        residual = y[:, self.order]
        y_hat = torch.zeros_like(residual)
        bits = y.new_zeros(y.shape[0])
        commit = y.new_zeros(())
        for stage in self.stages[:used]:
            q, b, c = stage(residual)
            y_hat, bits, commit = y_hat + q, bits + b, commit + c
            residual = residual - q.detach()
        return y_hat[:, torch.argsort(self.order)], bits, commit


@dataclass(frozen=True)
class CodebookConfig(ConfigDict):
    """The residual codebook stack (stored in the weights; never inferred from tensor shapes)."""

    stages: int = 6  # one per quality
    groups: int = 16  # codebooks per stage (channels / groups dimensions each)
    codewords: int = 256
    space: int = 6  # the latents are gained with this rate point's gains before quantization


class CodebookEntropyModel(nn.Module):
    """Residual multi-codebook quantization as an entropy model (``lcodec.entropy.model``): rate
    point r uses the first r + 1 stages, one section each; no side information, and a stream of
    fewer stages is a prefix of one of more. It quantizes y itself (the codewords are y_hat)."""

    downsample = 1
    side_sections = 0
    per_item_rates = False  # every item of a batch uses the same stages
    embedded = True  # a stream of r stages is the first r sections of any longer one

    def __init__(self, channels: int, book: CodebookConfig = CodebookConfig()) -> None:
        super().__init__()
        self.book = book
        self.codebook = ResidualCodebooks(channels, book.stages, book.groups, book.codewords)

    def forward(self, y: torch.Tensor, rates: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """(y_hat straight-through, {"y": bits of the hard indexes}); the commitment loss is not bits."""
        used = self.book.stages if rates is None else int(rates[0]) + 1
        y_hat, bits, _ = self.codebook(y, used)
        return y_hat, {"y": bits}

    def num_sections(self, rate: int) -> int:
        return rate + 1

    @torch.no_grad()
    def encode(self, y64: torch.Tensor, rate: int, carried: int, write: bool = True):
        self._check_carried(carried)
        idx = self.codebook.indexes(y64, rate + 1)
        if not write:
            return (), self.codebook.dequantize(idx)
        for stage in self.codebook.stages:
            stage._require_tables()
        return self.codebook.encode(idx), None

    def _check_carried(self, carried: int) -> None:
        if carried != self.codebook.channels:
            raise ModelError("codebooks code whole latent vectors (every channel)")

    def decode_indexes(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
                       what: str) -> torch.Tensor:
        """Sections -> codeword indexes (B, stages, groups, h, w), exactly."""
        self._check_carried(carried)
        positions = int(np.prod(shape)) // shape[1]
        floor = self.codebook.min_bits_per_position(rate + 1) * positions
        if 8 * sum(len(s) for s in sections) < 0.5 * floor:  # half the bound: room for coder rounding
            raise BitstreamError(f"payload is too short for the declared {what}")
        return self.codebook.decode(tuple(sections), tuple(shape))

    def decode(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
               what: str) -> torch.Tensor:
        return self.codebook.dequantize(self.decode_indexes(sections, shape, rate, carried, what))

    @torch.no_grad()
    def estimate_bits(self, y64: torch.Tensor, rate: int, carried: int) -> dict[str, float]:
        """Ideal code length of the indexes under the stored tables, in bits."""
        return {"y": float(sum(self.codebook.information_bits(self.codebook.indexes(y64, rate + 1))))}

    def export(self) -> None:
        self.codebook.export()

    def table_sets(self) -> list[CodingTables]:
        return [s._require_tables() for s in self.codebook.stages]

    def state_entries(self) -> dict[str, object]:
        return {"codebook_config": self.book.to_dict(), "codebook_tables": [t.to_state() for t in self.table_sets()]}

    def load_entries(self, state: dict[str, object]) -> None:
        if CodebookConfig.from_dict(dict(state.get("codebook_config", {}))) != self.book:
            raise ModelError("weights were fitted for another codebook configuration")
        stored = state.get("codebook_tables")
        if not isinstance(stored, list) or len(stored) != self.book.stages:
            raise ModelError("weights lack one table set per codebook stage")
        tables = [CodingTables.from_state(t) for t in stored]
        if any(t.num_tables != self.book.groups for t in tables):
            raise ModelError("stored codebook tables do not fit the configuration")
        for stage, t in zip(self.codebook.stages, tables):
            stage.tables = t
