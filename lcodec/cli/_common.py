"""Shared helpers for the thin CLI subcommands."""
from __future__ import annotations

import sys
from pathlib import Path

from lcodec.bitstream.container import Container, read_container
from lcodec.errors import BitstreamError, InputError, LcodecError
from lcodec.io.output import PARTIAL_SUFFIX, OutputFile

__all__ = ["fail", "open_output", "read_bytes", "read_stream", "about_file", "OUTPUT_HELP"]

OUTPUT_HELP = (f"OUTPUT is written as OUTPUT{PARTIAL_SUFFIX} and renamed when complete, with the mode a plain "
               f"file gets under your umask; a {PARTIAL_SUFFIX} file left by a killed run is removed by the next "
               "write of the same OUTPUT.")


def fail(msg: str) -> int:
    print(f"codec: error: {msg}", file=sys.stderr)
    return 1


def open_output(src: Path, dst: Path, force: bool) -> OutputFile:
    """Check the destination and reserve it, before any work: refuses to clobber (unless forced)
    or to overwrite the input, and reports a missing or read-only folder right away."""
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise InputError(f"output {dst} is the input file; choose another output name")
    if dst.is_dir():
        raise InputError(f"output {dst} is a folder; give a file name inside it")
    if dst.exists() and not force:
        raise InputError(f"{dst} already exists (use --force to overwrite)")
    return OutputFile(dst)


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file")
    return path.read_bytes()


_STREAM_HINTS = (
    ("not an lcodec stream", "give a file written by `codec encode`"),
    ("truncated", "the file is incomplete (an interrupted copy or download?): copy or encode it again"),
    ("corrupted", "the file is damaged: copy or encode it again"),
    ("format version", "it was written by another lcodec version: decode it with that version"),
)


def about_file(path: Path, exc: LcodecError) -> LcodecError:
    """The same error, its message naming ``path`` and (for stream errors) saying what to do."""
    msg = str(exc)
    if isinstance(exc, BitstreamError):
        hint = next((h for key, h in _STREAM_HINTS if key in msg), None)
        msg = f"{msg}; {hint}" if hint else msg
    if str(path) not in msg:
        msg = f"{path}: {msg}"
    return type(exc)(msg)


def read_stream(path: Path) -> tuple[bytes, Container]:
    """An lcodec stream's bytes and parsed container; errors name the file."""
    data = read_bytes(path)
    try:
        return data, read_container(data)
    except BitstreamError as exc:
        raise about_file(path, exc) from None
