"""The spatiotemporal entropy model of block motion vectors (``walloc-video-mc``'s motion field).

Each vector (dy, dx), in half-pel units and raster order, is coded as its difference from a
predictor, one of three the encoder picks per frame (``PREDICTORS``):

- ``spatial``: the median of the left, upper and upper-right neighbours' vectors
  (``lcodec.models.motion.median_predictor``);
- ``temporal``: the previous frame's vector at the same block (zero after an intra frame);
- ``joint``: the median of the left and upper neighbours' vectors and the co-located one
  (``lcodec.models.motion.joint_predictor``).

Neighbours are vectors already decoded. The differences of each component are coded with one of
``len(RATIOS)`` stored tables, a two-sided geometric law ``p(d) ~ r**|d|`` on [-span, span] plus
an escape; the encoder picks the predictor and, for the vertical and the horizontal components,
the table that make the frame's field cheapest, and writes the three choices first.

Section layout: ``[predictor (1 byte), table of dy (1 byte), table of dx (1 byte)]`` then one
range-coded stream (``lcodec.bitstream.coder``) of the differences, dy and dx of each block in turn.

Determinism: the tables are integer counts stored in the codec's weights file; the choices and the
predictors are integers from the stream, so every decoder rebuilds the same vectors. A vector
beyond the codec's search range is refused as a damaged stream.

Measured on the estimator's fields of BasketballPass frames 51-62 and bus frames 1-12 (q1, 32x32
blocks): spatial 469 / 555 bits per frame, temporal 409 / 318, joint 394 / 403.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import PRECISION, CodingTables
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.motion import joint_predictor, median_predictor

__all__ = ["MotionVectorModel", "PREDICTORS", "RATIOS", "geometric_tables"]

PREDICTORS = ("spatial", "temporal", "joint")

# the two-sided geometric laws, as exact fractions (numerator, denominator) of r
RATIOS = ((1, 20), (1, 8), (1, 4), (2, 5), (1, 2), (3, 5), (7, 10), (4, 5), (17, 20), (9, 10), (19, 20), (39, 40))


def geometric_tables(span: int, precision: int = PRECISION) -> CodingTables:
    """One table per ratio r of ``RATIOS``: p(d) proportional to r**|d| for |d| <= span, and an
    escape entry with the mass of one more step. The unnormalised weights are exact integers
    (``2**60 * r**|d|`` by integer division), so the tables are the same on every machine."""
    if span < 1:
        raise ModelError(f"a motion vector table needs a span >= 1, got {span}")
    pmfs = []
    for num, den in RATIOS:
        d = np.abs(np.arange(-span, span + 2))  # the last entry: the escape
        weights = [max(1, (1 << 60) * num**int(k) // den**int(k)) for k in d]
        pmfs.append(np.asarray(weights, dtype=np.float64))
    return CodingTables.from_pmfs(pmfs, [-span] * len(RATIOS), precision)


class MotionVectorModel(nn.Module):
    """Codes a motion field whose components lie in [-limit, limit] (module docstring)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = int(limit)
        self.tables = geometric_tables(2 * self.limit)

    def load_tables(self, state: dict[str, object]) -> None:
        """The stored tables (``CodingTables.to_state``) replace the built ones."""
        tables = CodingTables.from_state(state)
        if tables.num_tables != len(RATIOS) or int(tables.offsets[0]) != -2 * self.limit:
            raise ModelError(f"stored motion vector tables do not fit a search limit of {self.limit}")
        self.tables = tables

    def _predictor(self, mode: int, mv: torch.Tensor, colocated: torch.Tensor) -> torch.Tensor:
        if mode == 0:
            return median_predictor(mv)
        return colocated.long() if mode == 1 else joint_predictor(mv, colocated)

    def _cheapest(self, d: np.ndarray) -> tuple[list[int], float]:
        """The cheapest table of each component's differences d (n, 2), and the total bits."""
        choice, total = [], 0.0
        for c in range(2):
            costs = [self.tables.information_content(d[:, c], np.full(len(d), t)) for t in range(len(RATIOS))]
            choice.append(int(np.argmin(costs)))
            total += costs[choice[-1]]
        return choice, total

    def encode(self, mv: torch.Tensor, colocated: torch.Tensor | None = None) -> bytes:
        """A motion field (nby, nbx, 2) of integers in [-limit, limit] -> its section; ``colocated``:
        the previous frame's field (None: zeros, as after an intra frame)."""
        m = mv.long()
        if m.dim() != 3 or m.shape[-1] != 2 or int(m.abs().max()) > self.limit:
            raise ModelError(f"motion field must be (nby, nbx, 2) within +-{self.limit}, got {tuple(m.shape)}")
        col = torch.zeros_like(m) if colocated is None else colocated.long()
        if col.shape != m.shape:
            raise ModelError(f"co-located field {tuple(col.shape)} differs from the field {tuple(m.shape)}")
        best = None
        for mode in range(len(PREDICTORS)):
            d = (m - self._predictor(mode, m, col)).reshape(-1, 2).numpy()
            choice, bits = self._cheapest(d)
            if best is None or bits < best[0]:
                best = (bits, mode, choice, d)
        _, mode, choice, d = best
        indexes = np.tile(np.asarray(choice, dtype=np.int64), len(d))
        return bytes([mode, *choice]) + encode_symbols(d.reshape(-1), indexes, self.tables)

    def decode(self, data: bytes, blocks: tuple[int, int], colocated: torch.Tensor | None, what: str) -> torch.Tensor:
        """Inverse of ``encode`` for a field of ``blocks`` = (nby, nbx): the vectors (nby, nbx, 2)
        int64; a damaged section (unknown predictor or table, vector beyond the limit) is a
        ``BitstreamError``."""
        nby, nbx = blocks
        if len(data) < 3 or data[0] >= len(PREDICTORS) or data[1] >= len(RATIOS) or data[2] >= len(RATIOS):
            raise BitstreamError(f"{what}: motion vector section is damaged (predictor or table choice)")
        mode = data[0]
        indexes = np.tile(np.asarray([data[1], data[2]], dtype=np.int64), nby * nbx)
        d = decode_symbols(data[3:], indexes, self.tables).reshape(nby, nbx, 2)
        col = torch.zeros(nby, nbx, 2, dtype=torch.long) if colocated is None else colocated.long()
        if mode == 1:  # temporal: no dependence on this frame's vectors
            mv = col + torch.from_numpy(d)
        else:
            mv = self._sequential(mode, d.tolist(), col.tolist(), nby, nbx)
        if int(mv.abs().max()) > self.limit:
            raise BitstreamError(f"{what}: motion vector beyond the search range (damaged stream)")
        return mv

    @staticmethod
    def _sequential(mode: int, d: list, col: list, nby: int, nbx: int) -> torch.Tensor:
        """The vectors in raster order, each its predictor (from vectors already rebuilt) plus d."""
        mv = [[[0, 0] for _ in range(nbx)] for _ in range(nby)]
        zero = [0, 0]
        for i in range(nby):
            for j in range(nbx):
                if mode == 0:  # spatial median (H.264's rule at the edges)
                    a = mv[i][j - 1] if j else zero
                    if i == 0:
                        p = a
                    else:
                        b = mv[i - 1][j]
                        c = mv[i - 1][j + 1] if j + 1 < nbx else (mv[i - 1][j - 1] if j else zero)
                        p = [sorted((a[k], b[k], c[k]))[1] for k in range(2)]
                else:  # joint: left, up, co-located; a missing neighbour is the co-located vector
                    c = col[i][j]
                    a = mv[i][j - 1] if j else c
                    b = mv[i - 1][j] if i else c
                    p = [sorted((a[k], b[k], c[k]))[1] for k in range(2)]
                mv[i][j] = [p[0] + d[i][j][0], p[1] + d[i][j][1]]
        return torch.tensor(mv, dtype=torch.long).reshape(nby, nbx, 2)
