"""The lcodec container, format version 1 (specified byte by byte in docs/bitstream.md).

Pure numpy/stdlib. Reading is defensive: every length is checked against the
bytes actually present before anything is sliced or allocated, and every failure
is a ``BitstreamError`` with a message that says what is wrong.
"""
from __future__ import annotations

import os
import secrets
import stat
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from lcodec.errors import BitstreamError, InputError

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "Geometry",
    "Container",
    "write_container",
    "read_container",
    "atomic_write",
    "MODALITIES",
]

MAGIC = b"LCDC"
FORMAT_VERSION = 1
MODALITIES = ("image", "audio", "video")
MAX_NAME = 64
MAX_NDIM = 6
MAX_SECTIONS = 16
MAX_ELEMENTS = 2**31  # sanity cap on the declared geometry; codecs apply tighter limits
_FIXED_TAIL = struct.Struct("<B32sB3BB")  # quality, weights hash, coder id, coder version x3, modality


@dataclass(frozen=True)
class Geometry:
    """Original data geometry: full tensor shape plus media facts needed to write it back."""

    shape: tuple[int, ...]
    bit_depth: int = 8
    sample_rate: int = 0
    fps_num: int = 0
    fps_den: int = 0


@dataclass(frozen=True)
class Container:
    codec: str
    quality: int
    weights_hash: bytes
    coder_id: int
    coder_version: tuple[int, int, int]
    modality: str
    geometry: Geometry
    sections: tuple[bytes, ...] = field(default_factory=tuple)

    @property
    def header_bytes(self) -> int:
        return len(write_container(self)) - sum(len(s) for s in self.sections)


def write_container(c: Container) -> bytes:
    name = c.codec.encode("utf-8")
    if not 1 <= len(name) <= MAX_NAME:
        raise InputError(f"codec name must be 1..{MAX_NAME} bytes")
    if len(c.weights_hash) != 32:
        raise InputError("weights hash must be 32 bytes (sha256)")
    if c.modality not in MODALITIES:
        raise InputError(f"modality must be one of {MODALITIES}")
    g = c.geometry
    if not 1 <= len(g.shape) <= MAX_NDIM or any(not 1 <= d < 2**32 for d in g.shape):
        raise InputError(f"geometry shape {g.shape} cannot be stored")
    if len(c.sections) > MAX_SECTIONS or any(len(s) >= 2**32 for s in c.sections):
        raise InputError("too many or too large sections")
    out = bytearray(MAGIC)
    out += struct.pack("<BB", FORMAT_VERSION, len(name)) + name
    out += _FIXED_TAIL.pack(c.quality, c.weights_hash, c.coder_id, *c.coder_version, MODALITIES.index(c.modality))
    out += struct.pack("<B", len(g.shape)) + struct.pack(f"<{len(g.shape)}I", *g.shape)
    out += struct.pack("<BIII", g.bit_depth, g.sample_rate, g.fps_num, g.fps_den)
    out += struct.pack("<B", len(c.sections)) + struct.pack(f"<{len(c.sections)}I", *map(len, c.sections))
    for s in c.sections:
        out += s
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise BitstreamError(f"stream is truncated: {what} runs past the end of the data")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def read_container(data: bytes) -> Container:
    """Parse and validate a container. Raises ``BitstreamError`` on anything malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise BitstreamError("not an lcodec stream (bad magic; expected b'LCDC')")
    if len(data) < 6:
        raise BitstreamError("stream is truncated inside the header")
    if data[4] != FORMAT_VERSION:
        raise BitstreamError(f"unsupported container format version {data[4]} (this lcodec reads {FORMAT_VERSION})")
    if len(data) < 10:
        raise BitstreamError("stream is truncated inside the header")
    (crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(data[:-4]) != crc:
        raise BitstreamError("stream is corrupted or truncated (CRC32 mismatch)")
    r = _Reader(data, len(data) - 4)
    r.take(5, "magic and version")
    (name_len,) = r.unpack("<B", "codec name length")
    if not 1 <= name_len <= MAX_NAME:
        raise BitstreamError(f"invalid codec name length {name_len}")
    try:
        codec = r.take(name_len, "codec name").decode("utf-8")
    except UnicodeDecodeError:
        raise BitstreamError("codec name is not valid UTF-8") from None
    quality, whash, coder_id, v0, v1, v2, mod = r.unpack(_FIXED_TAIL.format, "header")
    if mod >= len(MODALITIES):
        raise BitstreamError(f"unknown modality id {mod}")
    (ndim,) = r.unpack("<B", "geometry rank")
    if not 1 <= ndim <= MAX_NDIM:
        raise BitstreamError(f"invalid geometry rank {ndim}")
    shape = r.unpack(f"<{ndim}I", "geometry shape")
    elements = 1
    for d in shape:
        if d < 1:
            raise BitstreamError(f"geometry {shape} has an empty dimension")
        elements *= d
    if elements > MAX_ELEMENTS:
        raise BitstreamError(f"geometry {shape} declares {elements} elements, above the limit {MAX_ELEMENTS}")
    bit_depth, rate, fps_num, fps_den = r.unpack("<BIII", "media facts")
    (nsec,) = r.unpack("<B", "section count")
    if nsec > MAX_SECTIONS:
        raise BitstreamError(f"invalid section count {nsec}")
    lengths = r.unpack(f"<{nsec}I", "section lengths")
    if r.pos + sum(lengths) != r.end:
        raise BitstreamError(
            f"section lengths add up to {sum(lengths)} bytes but {r.end - r.pos} are present"
        )
    sections = tuple(r.take(n, f"section {i}") for i, n in enumerate(lengths))
    return Container(
        codec=codec,
        quality=quality,
        weights_hash=whash,
        coder_id=coder_id,
        coder_version=(v0, v1, v2),
        modality=MODALITIES[mod],
        geometry=Geometry(tuple(shape), bit_depth, rate, fps_num, fps_den),
        sections=sections,
    )


def atomic_write(path: str | os.PathLike[str], data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and rename: no partial
    file on failure. The file gets the mode a plain ``open()`` would give it (0o666 under the
    umask: 0644 under umask 022); replacing an existing file keeps that file's permission bits."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; refusing to overwrite it (overwrite=False)")
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist")
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            if mode != 0o666 and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)  # an existing file's own bits, not masked again
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
