"""Range coding of integer symbols with integer tables (constriction's queue coder).

Every probability handed to constriction is ``count / 2**precision`` with integer
counts from stored ``CodingTables``: exact in float64, so encoder and decoder on
any machine build the same models. Work is vectorised per table, never per symbol:
symbols that share a table are coded in one call, in their original order.

Stream layout (one constriction queue, 32-bit words, little-endian on disk):

1. for each table index t in increasing order: the symbols whose index is t,
   as positions ``symbol - offsets[t]``; out-of-range symbols are sent as the
   table's last entry (escape);
2. for the escaped symbols, in order: a side bit (below / above the range), then
   the Exp-Golomb length class ``n`` of the overshoot ``d`` (d >= 0) under a
   uniform model over 0..32, then, grouped by class in increasing order,
   the ``n`` low bits of ``d + 1`` (without its leading one) in chunks of <= 16 bits.
"""
from __future__ import annotations

import constriction
import numpy as np

from lcodec.bitstream.tables import CodingTables
from lcodec.errors import BitstreamError, InputError

__all__ = ["encode_symbols", "decode_symbols", "encode_chunks", "ChunkDecoder", "CODER_ID", "CODER_VERSION"]

CODER_ID = 1  # constriction queue range coder, 32-bit words
CODER_VERSION = (0, 5, 0)
_MAX_CLASS = 33  # overshoot d < 2**32 -> d + 1 has at most 33 bits
_MAX_ABS_SYMBOL = 2**31 - 1

_model = constriction.stream.model


def _categorical(tables: CodingTables, t: int) -> "constriction.stream.model.Categorical":
    counts = tables.counts[t, : tables.lengths[t]]
    return _model.Categorical(counts.astype(np.float64) / float(1 << tables.precision), perfect=False)


def _check_indexes(indexes: np.ndarray, tables: CodingTables) -> np.ndarray:
    indexes = np.asarray(indexes).reshape(-1).astype(np.int64, copy=False)
    if indexes.size and (indexes.min() < 0 or indexes.max() >= tables.num_tables):
        raise BitstreamError(f"table index out of range 0..{tables.num_tables - 1}")
    return indexes


def _groups(indexes: np.ndarray):
    """(table, positions using it) for each used table in increasing order, positions in
    natural order: one stable sort instead of a pass over all symbols per table. Indexes
    are checked non-negative; the sort runs on the narrowest unsigned type that holds them
    (numpy sorts 8- and 16-bit keys stably by radix, ~6x faster than int64 keys)."""
    if not indexes.size:
        return
    top = int(indexes.max())
    key = indexes.astype(np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int64)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(indexes, minlength=top + 1)
    for t, sel in enumerate(np.split(order, np.cumsum(counts)[:-1])):
        if sel.size:
            yield t, sel


def _checked_symbols(symbols: np.ndarray, indexes: np.ndarray, tables: CodingTables) -> tuple[np.ndarray, np.ndarray]:
    symbols = np.asarray(symbols).reshape(-1)
    if symbols.size and not np.issubdtype(symbols.dtype, np.integer):
        raise InputError("symbols must be integers")
    if symbols.size and max(-int(symbols.min()), int(symbols.max())) > _MAX_ABS_SYMBOL:
        raise InputError(f"symbol magnitude above {_MAX_ABS_SYMBOL}; the latents are not finite-range")
    symbols = symbols.astype(np.int64, copy=False)
    indexes = _check_indexes(indexes, tables)
    if indexes.size != symbols.size:
        raise InputError(f"{symbols.size} symbols but {indexes.size} table indexes")
    return symbols, indexes


def _encode_into(enc, symbols: np.ndarray, indexes: np.ndarray, tables: CodingTables) -> None:
    offsets = tables.offsets[indexes]
    last = (tables.lengths - 1)[indexes]
    pos = symbols - offsets
    escaped = pos.view(np.uint64) >= last.view(np.uint64)  # below the range (pos < 0) or at/above its end
    np.putmask(pos, escaped, last)
    for t, sel in _groups(indexes):
        enc.encode(pos[sel].astype(np.int32), _categorical(tables, t))
    if escaped.any():
        s, o, n = symbols[escaped], offsets[escaped], last[escaped]
        below = s < o
        overshoot = np.where(below, o - 1 - s, s - o - n)  # >= 0
        _encode_escapes(enc, (~below).astype(np.int32), overshoot)


def encode_symbols(symbols: np.ndarray, indexes: np.ndarray, tables: CodingTables) -> bytes:
    """Range-code integer ``symbols`` with table ``indexes[i]`` for symbol i. Returns the words."""
    return encode_chunks([(symbols, indexes)], tables)


def encode_chunks(chunks, tables: CodingTables) -> bytes:
    """Range-code a sequence of (symbols, indexes) chunks into one stream, each chunk laid out
    as ``encode_symbols`` lays out a whole stream (its symbols by table, then its escapes), one
    after the other. A decoder reads them back one chunk at a time (``ChunkDecoder``), so the
    indexes of a chunk may depend on the symbols of the chunks before it (autoregressive
    models). One chunk gives exactly the bytes of ``encode_symbols``."""
    checked = [_checked_symbols(s, i, tables) for s, i in chunks]  # all checked before any coding
    enc = constriction.stream.queue.RangeEncoder()
    for symbols, indexes in checked:
        _encode_into(enc, symbols, indexes, tables)
    return enc.get_compressed().astype("<u4").tobytes()


def _encode_escapes(enc, sides: np.ndarray, d: np.ndarray) -> None:
    v = d + 1  # >= 1
    classes = np.zeros(v.size, dtype=np.int64)  # bits after the leading one: floor(log2(v)), exactly
    for bit in (16, 8, 4, 2, 1):
        big = (v >> (classes + bit)) > 0
        classes += np.where(big, bit, 0)
    enc.encode(sides, _model.Uniform(2))
    enc.encode(classes.astype(np.int32), _model.Uniform(_MAX_CLASS))
    for n in np.unique(classes):
        rest = v[classes == n] - (1 << int(n))
        _encode_bits(enc, rest, int(n))


def _encode_bits(enc, values: np.ndarray, nbits: int) -> None:
    shift = 0
    while shift < nbits:
        width = min(16, nbits - shift)
        enc.encode(((values >> shift) & ((1 << width) - 1)).astype(np.int32), _model.Uniform(1 << width))
        shift += width


def _decode_bits(dec, count: int, nbits: int) -> np.ndarray:
    values = np.zeros(count, dtype=np.int64)
    shift = 0
    while shift < nbits:
        width = min(16, nbits - shift)
        values |= dec.decode(_model.Uniform(1 << width), count).astype(np.int64) << shift
        shift += width
    return values


def _decode_from(dec, indexes: np.ndarray, tables: CodingTables) -> np.ndarray:
    pos = np.empty(indexes.size, dtype=np.int64)
    for t, sel in _groups(indexes):
        pos[sel] = dec.decode(_categorical(tables, t), sel.size)
    offsets = tables.offsets[indexes]
    last = tables.lengths[indexes] - 1
    symbols = pos + offsets
    escaped = pos == last
    count = int(escaped.sum())
    if count:
        sides = dec.decode(_model.Uniform(2), count).astype(bool)
        classes = dec.decode(_model.Uniform(_MAX_CLASS), count).astype(np.int64)
        v = np.empty(count, dtype=np.int64)
        for n in np.unique(classes):
            sel = classes == n
            v[sel] = _decode_bits(dec, int(sel.sum()), int(n)) + (1 << int(n))
        d = v - 1
        symbols[escaped] = np.where(sides, offsets[escaped] + last[escaped] + d, offsets[escaped] - 1 - d)
    return symbols


def _words(data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise BitstreamError("range-coded section length is not a multiple of 4 bytes")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


class ChunkDecoder:
    """Reads the chunks of an ``encode_chunks`` stream back in order: ``next(indexes)`` returns
    the next chunk's symbols (int64, in the order of ``indexes``). Malformed data raises
    ``BitstreamError``; the symbol count is fixed by the indexes, so it never hangs."""

    def __init__(self, data: bytes, tables: CodingTables) -> None:
        self.tables = tables
        try:
            self._dec = constriction.stream.queue.RangeDecoder(_words(data))
        except BitstreamError:
            raise
        except Exception as exc:  # pragma: no cover - constriction accepts any word array
            raise BitstreamError(f"range-coded data is corrupted: {exc}") from None

    def next(self, indexes: np.ndarray) -> np.ndarray:
        indexes = _check_indexes(indexes, self.tables)
        try:
            return _decode_from(self._dec, indexes, self.tables)
        except BitstreamError:
            raise
        except Exception as exc:  # constriction reports invalid data as ValueError/RuntimeError
            raise BitstreamError(f"range-coded data is corrupted: {exc}") from None


def decode_symbols(data: bytes, indexes: np.ndarray, tables: CodingTables) -> np.ndarray:
    """Inverse of ``encode_symbols``: the symbols (int64), in the order of ``indexes``.

    Malformed data raises ``BitstreamError``; it never hangs (the symbol count is fixed by
    ``indexes``) and never allocates more than the indexes imply.
    """
    return ChunkDecoder(data, tables).next(indexes)
