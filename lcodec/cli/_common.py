"""Shared helpers for the thin CLI subcommands."""
from __future__ import annotations

import sys
from pathlib import Path

from lcodec.errors import InputError

__all__ = ["fail", "check_output", "read_bytes"]


def fail(msg: str) -> int:
    print(f"codec: error: {msg}", file=sys.stderr)
    return 1


def check_output(src: Path, dst: Path, force: bool) -> None:
    """Refuse to clobber: the output must not exist (unless forced) nor be the input."""
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise InputError(f"output {dst} is the input file")
    if dst.is_dir():
        raise InputError(f"output {dst} is a folder")
    if dst.exists() and not force:
        raise InputError(f"{dst} already exists (use --force to overwrite)")
    if not dst.parent.exists():
        raise InputError(f"output folder {dst.parent} does not exist")


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder")
    return path.read_bytes()
