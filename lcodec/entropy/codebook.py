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

Relation to the scalar hyperprior path (``lcodec.codecs.walloc_hp``): no side network and
no per-symbol table choice, so both directions are one matrix product or gather plus a
categorical range-coding pass over M/d times fewer symbols (``benchmarks/entropy_speed.py``
measures it); the price is a fixed rate grid (at most log2 K bits per group).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables
from lcodec.errors import BitstreamError, ModelError

__all__ = ["MultiCodebookQuantizer"]

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
        data = encode_symbols(idx.numpy().reshape(-1), self._table_indexes(tuple(idx.shape)), self._require_tables())
        return data, idx

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
