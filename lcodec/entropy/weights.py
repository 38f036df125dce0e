"""Entropy model of network weights fitted at encode time (implicit-neural-representation codecs):
a differentiable rate estimate for fitting, and exact coding whose tables travel in the stream.

Fitting (``WeightPrior``): the integers of each tensor (or their change from the previous group's
integers) are modelled by a zero-mean discrete Laplace with a learned scale per tensor; the rate
estimate is their information content with uniform noise added (Balle et al.), differentiable in
the weights and the scales.

Coding (``encode_integer_tensors`` / ``decode_integer_tensors``): each tensor gets its own integer
table, chosen by the encoder and written into the section before the range-coded symbols, so the
decoder needs no stored tables and never computes a probability in floating point (DESIGN.md,
determinism). A table is one of:

    0 histogram  covers lo .. lo + n - 1: the quantised histogram of the tensor itself
                 (``TABLE_PRECISION`` bits, each count written as a varint)
    1 uniform    covers lo .. lo + n - 1 with equal counts (described by lo and n only)
    2 zero       every value is 0 (no symbols are coded)

the cheapest one (table bytes + coded bits) per tensor. Values outside a table's range go through
the coder's escape, so a histogram never needs more than ``MAX_ENTRIES`` entries. Section layout::

    per tensor: kind byte, then for kinds 0/1: zigzag-varint lo, varint n, (kind 0: n varint counts)
    then the range-coded symbols of every tensor with a table, in order (``encode_symbols``)
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables, quantize_pmf
from lcodec.bitstream.varint import get_varint, put_varint, unzigzag, zigzag
from lcodec.entropy.model import check_floor
from lcodec.errors import BitstreamError

__all__ = ["WeightPrior", "encode_integer_tensors", "decode_integer_tensors", "TABLE_PRECISION", "MAX_ENTRIES"]

TABLE_PRECISION = 12
MAX_ENTRIES = 1024
HISTOGRAM, UNIFORM, ZERO = 0, 1, 2
_ESCAPE_BITS = 1.0 + math.log2(33.0)  # side bit + length class (coder.py); overshoot bits added per value


class WeightPrior(nn.Module):
    """Learned zero-mean discrete Laplace per tensor: ``bits(values)`` for the fitting loss."""

    def __init__(self, count: int, init_scale: float = 2.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.full((count,), math.log(init_scale)))

    def bits(self, values: list[torch.Tensor], noise: bool = True) -> torch.Tensor:
        """Estimated bits of every tensor's integers (continuous values; uniform noise added when
        ``noise``), summed."""
        total = torch.zeros(())
        for i, v in enumerate(values):
            if noise:
                v = v + torch.rand_like(v) - 0.5
            b = self.log_scale[i].exp().clamp_min(0.05)
            # -log P(the unit bin around v) under Laplace(0, b), with only non-positive exponents
            # (an overflowing branch of torch.where would poison the gradient with NaN)
            a = v.abs()
            tail = (a - 0.5) / b - torch.log(-0.5 * torch.expm1(-1 / b))  # |v| >= 1/2: closed form
            centre = -torch.log((1 - 0.5 * (torch.exp(-(a + 0.5) / b) + torch.exp(-(0.5 - a).clamp_min(0) / b)))
                                .clamp_min(1e-9))
            nats = torch.where(a >= 0.5, tail, centre)
            total = total + nats.sum() / math.log(2)
        return total


_DAMAGED = "the network-weights section is damaged (a table runs past its end)"


def uniform_counts(n: int) -> np.ndarray:
    """n equal entries plus the escape, summing to 2**TABLE_PRECISION (integers only)."""
    total = 1 << TABLE_PRECISION
    counts = np.full(n + 1, total // (n + 1), dtype=np.int64)
    counts[: total % (n + 1)] += 1
    return counts


def _escape_bits(s: np.ndarray, lo: int, n: int) -> float:
    d = np.where(s < lo, lo - 1 - s, s - lo - n)
    d = d[(s < lo) | (s >= lo + n)]
    return d.size * _ESCAPE_BITS + float(np.floor(np.log2(d + 1.0)).sum())


def _bits(counts: np.ndarray, s: np.ndarray, lo: int) -> float:
    n = counts.size - 1
    pos = np.clip(s - lo, 0, n)
    pos = np.where((s < lo) | (s >= lo + n), n, pos)
    return float(np.sum(TABLE_PRECISION - np.log2(counts[pos]))) + _escape_bits(s, lo, n)


def _choose(s: np.ndarray) -> tuple[int, int, np.ndarray | None, bytes]:
    """The cheapest table for integers ``s``: (kind, lo, counts or None, header bytes)."""
    if s.size == 0 or not s.any():
        return ZERO, 0, None, bytes([ZERO])
    lo_all, hi_all = int(s.min()), int(s.max())
    options = []
    # uniform over the full range (when it is small), else a clipped range with escapes
    n = min(hi_all - lo_all + 1, MAX_ENTRIES)
    uni = uniform_counts(n)
    head = bytearray([UNIFORM])
    put_varint(head, zigzag(lo_all))
    put_varint(head, n)
    options.append((8 * len(head) + _bits(uni, s, lo_all), UNIFORM, lo_all, uni, bytes(head)))
    # histogram over the central range holding all but the rarest values
    if hi_all - lo_all + 1 <= MAX_ENTRIES:
        lo, hi = lo_all, hi_all
    else:
        lo, hi = (int(v) for v in np.quantile(s, [0.001, 0.999]).round())
        hi = min(hi, lo + MAX_ENTRIES - 1)
    hist = np.bincount(np.clip(s, lo, hi) - lo, minlength=hi - lo + 1).astype(np.float64)
    hist[0] -= np.sum(s < lo)
    hist[-1] -= np.sum(s > hi)
    escaped = float(np.sum((s < lo) | (s > hi)))
    pmf = np.append(hist + 1e-3, escaped + 1e-3)
    counts = quantize_pmf(pmf, TABLE_PRECISION)
    head = bytearray([HISTOGRAM])
    put_varint(head, zigzag(lo))
    put_varint(head, counts.size - 1)
    for c in counts[:-1]:
        put_varint(head, int(c))
    options.append((8 * len(head) + _bits(counts, s, lo), HISTOGRAM, lo, counts, bytes(head)))
    _, kind, lo, counts, head = min(options, key=lambda o: o[0])
    return kind, lo, counts, head


def _stack(rows: list[tuple[int, np.ndarray]]) -> CodingTables:
    width = max(c.size for _, c in rows)
    counts = np.zeros((len(rows), width), dtype=np.int64)
    for i, (_, c) in enumerate(rows):
        counts[i, : c.size] = c
    return CodingTables(TABLE_PRECISION, counts, np.array([lo for lo, _ in rows]), np.array([c.size for _, c in rows]))


def encode_integer_tensors(tensors: list[torch.Tensor]) -> bytes:
    """Integer tensors -> one section: their tables, then their range-coded values (module docstring)."""
    heads, rows, symbols, indexes = [], [], [], []
    for t in tensors:
        s = t.detach().reshape(-1).to(torch.int64).numpy()
        kind, lo, counts, head = _choose(s)
        heads.append(head)
        if kind != ZERO:
            symbols.append(s)
            indexes.append(np.full(s.size, len(rows)))
            rows.append((lo, counts))
    body = encode_symbols(np.concatenate(symbols), np.concatenate(indexes), _stack(rows)) if rows else b""
    return b"".join(heads) + body


def decode_integer_tensors(data: bytes, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    """Inverse of ``encode_integer_tensors`` for tensors of ``shapes`` (int64). Damaged data raises
    ``BitstreamError``."""
    pos, kinds, rows = 0, [], []
    total = 1 << TABLE_PRECISION
    for _ in shapes:
        if pos >= len(data):
            raise BitstreamError("the network-weights section is too short")
        kind = data[pos]
        pos += 1
        kinds.append(kind)
        if kind == ZERO:
            continue
        if kind not in (HISTOGRAM, UNIFORM):
            raise BitstreamError(f"the network-weights section names an unknown table kind {kind}")
        u, pos = get_varint(data, pos, _DAMAGED)
        n, pos = get_varint(data, pos, _DAMAGED)
        if not 1 <= n <= MAX_ENTRIES:
            raise BitstreamError(f"a weights table declares {n} entries (1 .. {MAX_ENTRIES})")
        if kind == UNIFORM:
            counts = uniform_counts(n)
        else:
            counts = np.empty(n + 1, dtype=np.int64)
            for i in range(n):
                counts[i], pos = get_varint(data, pos, _DAMAGED)
            counts[n] = total - int(counts[:n].sum())
            if (counts < 1).any():
                raise BitstreamError("a weights table's counts do not sum to its precision")
        rows.append((unzigzag(u), counts))
    values = iter(())
    if rows:
        sizes = [int(np.prod(s)) for s, k in zip(shapes, kinds) if k != ZERO]
        indexes = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)])
        tables = _stack(rows)
        # refuse a body far shorter than its symbols could take (a header with its payload cut off
        # would otherwise decode to arbitrary values)
        check_floor(data[pos:], float(np.dot(sizes, tables.min_bits())), "network weights")
        flat = decode_symbols(data[pos:], indexes, tables)
        values = iter(np.split(flat, np.cumsum(sizes)[:-1]))
    out = []
    for shape, kind in zip(shapes, kinds):
        if kind == ZERO:
            out.append(torch.zeros(shape, dtype=torch.int64))
        else:
            out.append(torch.from_numpy(np.ascontiguousarray(next(values))).reshape(shape))
    return out
