"""The entropy model of block motion vectors (``walloc-video-mc``'s motion field).

Each vector (dy, dx), in half-pel units and raster order, is coded as its difference from the
median predictor of its left, upper and upper-right neighbours (``lcodec.models.motion.
median_predictor``, computed from vectors already decoded). The differences of each component
are coded with one of ``len(RATIOS)`` stored tables, a two-sided geometric law
``p(d) ~ r**|d|`` on [-span, span] plus an escape; the encoder picks the cheapest table for the
vertical and for the horizontal components of the frame and writes the two choices first.

Section layout: ``[table of dy (1 byte), table of dx (1 byte)]`` then one range-coded stream
(``lcodec.bitstream.coder``) of the differences, dy and dx of each block in turn.

Determinism: the tables are integer counts stored in the codec's weights file; the tables a
stream selects and the predictors are integers from the stream, so every decoder rebuilds the
same vectors. A vector beyond the codec's search range is refused as a damaged stream.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import PRECISION, CodingTables
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.motion import median_predictor

__all__ = ["MotionVectorModel", "RATIOS", "geometric_tables"]

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

    def encode(self, mv: torch.Tensor) -> bytes:
        """A motion field (nby, nbx, 2) of integers in [-limit, limit] -> its section."""
        m = mv.long()
        if m.dim() != 3 or m.shape[-1] != 2 or int(m.abs().max()) > self.limit:
            raise ModelError(f"motion field must be (nby, nbx, 2) within +-{self.limit}, got {tuple(m.shape)}")
        d = (m - median_predictor(m)).reshape(-1, 2).numpy()
        choice = []
        for c in range(2):
            costs = [self.tables.information_content(d[:, c], np.full(len(d), t)) for t in range(len(RATIOS))]
            choice.append(int(np.argmin(costs)))
        indexes = np.tile(np.asarray(choice, dtype=np.int64), len(d))
        return bytes(choice) + encode_symbols(d.reshape(-1), indexes, self.tables)

    def decode(self, data: bytes, blocks: tuple[int, int], what: str) -> torch.Tensor:
        """Inverse of ``encode`` for a field of ``blocks`` = (nby, nbx): the vectors (nby, nbx, 2)
        int64; a damaged section (unknown table, vector beyond the limit) is a ``BitstreamError``."""
        nby, nbx = blocks
        if len(data) < 2 or data[0] >= len(RATIOS) or data[1] >= len(RATIOS):
            raise BitstreamError(f"{what}: motion vector section is damaged (table choice)")
        indexes = np.tile(np.asarray([data[0], data[1]], dtype=np.int64), nby * nbx)
        d = decode_symbols(data[2:], indexes, self.tables).reshape(nby, nbx, 2).tolist()
        mv = [[[0, 0] for _ in range(nbx)] for _ in range(nby)]
        zero = [0, 0]
        for i in range(nby):
            for j in range(nbx):
                a = mv[i][j - 1] if j else zero
                if i == 0:
                    p = a
                else:
                    b = mv[i - 1][j]
                    c = mv[i - 1][j + 1] if j + 1 < nbx else (mv[i - 1][j - 1] if j else zero)
                    p = [sorted((a[k], b[k], c[k]))[1] for k in range(2)]
                v = [p[0] + d[i][j][0], p[1] + d[i][j][1]]
                if abs(v[0]) > self.limit or abs(v[1]) > self.limit:
                    raise BitstreamError(f"{what}: motion vector beyond the search range (damaged stream)")
                mv[i][j] = v
        return torch.tensor(mv, dtype=torch.long).reshape(nby, nbx, 2)
