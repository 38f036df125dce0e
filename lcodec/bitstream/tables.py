"""Immutable integer coding tables: the only probabilities a range coder ever sees.

Built ONCE when a model is exported (on CPU, float64), stored with the weights,
and loaded as integers by encoder and decoder alike (the tensorflow-compression
rule: tables are never regenerated independently on the two sides).

Each table ``t`` covers the symbols ``offsets[t] .. offsets[t] + lengths[t] - 2``;
its last entry is the *escape* symbol, which stands for any value outside that
range (the value itself is then coded separately, see ``lcodec.bitstream.coder``).
Every entry has at least one count and each row sums to exactly ``2**precision``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from lcodec.errors import ModelError

__all__ = ["CodingTables", "quantize_pmf", "PRECISION"]

PRECISION = 16


def quantize_pmf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Turn a float pmf (last entry = escape mass) into integer counts summing to 2**precision.

    Every entry gets at least one count; rounding error is settled on the largest entries,
    deterministically (ties broken by index).
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    n = pmf.size
    total = 1 << precision
    if n < 2 or n > total // 2:
        raise ModelError(f"a coding table needs 2..{total // 2} entries, got {n}")
    pmf = np.clip(pmf, 0.0, None)
    if not np.isfinite(pmf).all() or pmf.sum() <= 0:
        raise ModelError("cannot build a coding table from a pmf with no finite positive mass")
    pmf = pmf / pmf.sum()
    counts = np.floor(pmf * (total - n)).astype(np.int64) + 1  # every entry >= 1
    # each floor drops less than one count, so the counts sum to at most (total - n) + n: the
    # deficit is never negative (and about n at most); it goes to the largest entries first
    deficit = total - int(counts.sum())
    order = np.argsort(-pmf, kind="stable")
    i = 0
    while deficit > 0:
        step = min(deficit, deficit // n + 1)
        counts[order[i % n]] += step
        deficit -= step
        i += 1
    return counts


@dataclass(frozen=True, eq=False)
class CodingTables:
    """A stack of integer pmfs (counts), one row per table, padded with zeros.

    counts:  (T, Lmax) int64, row t valid in [:lengths[t]], last valid entry = escape
    offsets: (T,) int64, symbol value of entry 0 in each table
    lengths: (T,) int64, number of entries including the escape
    """

    precision: int
    counts: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        counts = np.array(self.counts, dtype=np.int64)
        offsets = np.array(self.offsets, dtype=np.int64).reshape(-1)
        lengths = np.array(self.lengths, dtype=np.int64).reshape(-1)
        if counts.ndim != 2 or counts.shape[0] != offsets.size or offsets.size != lengths.size:
            raise ModelError("coding tables: counts, offsets and lengths disagree in shape")
        if (lengths < 2).any() or (lengths > counts.shape[1]).any():
            raise ModelError("coding tables: invalid lengths")
        valid = np.arange(counts.shape[1])[None, :] < lengths[:, None]
        if (counts[valid] < 1).any() or (counts[~valid] != 0).any():
            raise ModelError("coding tables: every in-range entry needs >= 1 count, padding must be 0")
        if (counts.sum(axis=1) != (1 << self.precision)).any():
            raise ModelError(f"coding tables: every row must sum to exactly 2**{self.precision}")
        for name, arr in (("counts", counts), ("offsets", offsets), ("lengths", lengths)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @classmethod
    def from_pmfs(cls, pmfs: list[np.ndarray], offsets: list[int], precision: int = PRECISION) -> "CodingTables":
        rows = [quantize_pmf(p, precision) for p in pmfs]
        width = max(r.size for r in rows)
        counts = np.zeros((len(rows), width), dtype=np.int64)
        for t, r in enumerate(rows):
            counts[t, : r.size] = r
        return cls(precision, counts, np.asarray(offsets), np.array([r.size for r in rows]))

    @property
    def num_tables(self) -> int:
        return int(self.offsets.size)

    @property
    def sha256(self) -> str:
        """Content hash over precision and all integer arrays (little-endian int64)."""
        h = hashlib.sha256()
        h.update(np.int64(self.precision).tobytes())
        for arr in (self.offsets, self.lengths, self.counts):
            h.update(np.asarray(arr.shape, dtype="<i8").tobytes())
            h.update(arr.astype("<i8").tobytes())
        return h.hexdigest()

    def min_bits(self) -> np.ndarray:
        """(T,) the fewest bits any symbol can cost under each table: precision - log2(largest count)
        (payload floors: a stream shorter than its symbols' floor is refused before decoding)."""
        return self.precision - np.log2(self.counts.max(axis=1))

    def information_content(self, symbols: np.ndarray, indexes: np.ndarray) -> float:
        """Ideal code length in bits of ``symbols`` under the tables, escapes counted as the
        escape entry only (the escaped values themselves cost extra; see the coder)."""
        symbols = np.asarray(symbols, dtype=np.int64).reshape(-1)
        indexes = np.asarray(indexes, dtype=np.int64).reshape(-1)
        pos = symbols - self.offsets[indexes]
        last = self.lengths[indexes] - 1
        pos = np.where((pos < 0) | (pos >= last), last, pos)
        counts = self.counts[indexes, pos]
        return float(np.sum(self.precision - np.log2(counts)))

    def to_state(self) -> dict[str, object]:
        """Plain dict of integer tensors for ``torch.save(..., weights_only=True)``. Only each
        row's first ``lengths[t]`` counts are stored, concatenated (the rest are zero), as int32:
        counts are below 2**precision <= 2**16. ``width`` keeps the padded shape (it is hashed)."""
        import torch

        rows = [self.counts[t, : self.lengths[t]] for t in range(self.num_tables)]
        return {
            "precision": self.precision,
            "packed": torch.from_numpy(np.concatenate(rows).astype(np.int32)),
            "width": int(self.counts.shape[1]),
            "offsets": torch.from_numpy(np.array(self.offsets, dtype=np.int64)),
            "lengths": torch.from_numpy(np.array(self.lengths, dtype=np.int64)),
        }

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "CodingTables":
        """Read ``to_state``'s dict; also the earlier layout with the padded ``counts`` matrix."""
        lengths = np.asarray(state["lengths"].numpy(), dtype=np.int64)
        if "packed" in state:
            packed = np.asarray(state["packed"].numpy(), dtype=np.int64)
            width = int(state["width"])
            if lengths.min(initial=1) < 1 or lengths.max(initial=0) > width or packed.size != lengths.sum():
                raise ModelError("stored coding tables are inconsistent (packed counts vs lengths)")
            counts = np.zeros((lengths.size, width), dtype=np.int64)
            mask = np.arange(width)[None, :] < lengths[:, None]
            counts[mask] = packed
        else:
            counts = np.asarray(state["counts"].numpy(), dtype=np.int64)
        return cls(int(state["precision"]), counts, np.asarray(state["offsets"].numpy(), dtype=np.int64), lengths)
