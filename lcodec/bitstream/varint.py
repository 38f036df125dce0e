"""Unsigned LEB128 varints and zigzag-mapped signed integers: the small integer fields that some
sections carry beside their range-coded payload (table headers of coded network weights,
restoration filter weights)."""
from __future__ import annotations

from lcodec.errors import BitstreamError

__all__ = ["get_varint", "put_varint", "unzigzag", "zigzag"]


def put_varint(out: bytearray, v: int) -> None:
    """Append ``v`` >= 0, seven bits per byte, low bits first, high bit set on all but the last."""
    if v < 0:
        raise ValueError("varint of a negative number")
    while True:
        byte = v & 0x7F
        v >>= 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return


def get_varint(data: bytes, pos: int, damaged: str) -> tuple[int, int]:
    """The varint at ``pos`` -> (value, position after it); ``BitstreamError(damaged)`` if it runs
    past the end of ``data`` or beyond 64 bits."""
    v, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise BitstreamError(damaged)
        byte = data[pos]
        pos += 1
        v |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return v, pos


def zigzag(v: int) -> int:
    """Signed -> unsigned: 0, -1, 1, -2, 2, ... -> 0, 1, 2, 3, 4, ..."""
    return 2 * v if v >= 0 else -2 * v - 1


def unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2
