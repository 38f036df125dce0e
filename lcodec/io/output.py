"""Writing an output file the way a user expects: checked before the work, complete or absent.

``OutputFile(path)`` is opened before any encoding or decoding starts. It creates
``NAME.lcodec-partial`` beside ``NAME`` right away, so a destination that is missing, not a
folder or not writable is reported at once, in one line, before minutes of work. ``write(data)``
fills the partial file and renames it onto ``NAME`` (atomic on one file system): readers see
either the old file or the new one, never half of it. On any error the partial file is removed.

- Mode: the partial file is created with ``open()``'s own 0o666 masked by the umask (0644 under
  umask 022), exactly like a file written with plain ``open()``; replacing an existing file
  keeps that file's permission bits, as rewriting it in place would.
- A process killed outright (SIGKILL, power loss) cannot clean up: it leaves
  ``NAME.lcodec-partial``, a visible name that says which output it was and who wrote it. The
  next write of the same ``NAME`` removes it first.

Whether an existing ``NAME`` may be replaced is the caller's decision (``codec --force``).
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Callable

from lcodec.errors import InputError

__all__ = ["OutputFile", "PARTIAL_SUFFIX", "partial_path"]

PARTIAL_SUFFIX = ".lcodec-partial"


def partial_path(path: str | os.PathLike[str]) -> Path:
    """Where ``path`` is written until it is complete: ``NAME.lcodec-partial`` in the same folder."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _folder_problem(folder: Path) -> str | None:
    if not folder.exists():
        return f"output folder {folder} does not exist; create it first (mkdir -p {folder})"
    if not folder.is_dir():
        return f"{folder} is a file, not a folder; choose an output path inside a folder"
    return None


def _why(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


class OutputFile:
    """A destination reserved before the work and written whole at the end (see the module doc)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        folder = self.path.parent
        problem = _folder_problem(folder)
        if problem:
            raise InputError(problem)
        if self.path.is_dir():
            raise InputError(f"output {self.path} is a folder; give a file name inside it")
        try:
            if self.partial.is_file() or self.partial.is_symlink():
                self.partial.unlink()  # left by an earlier write of this name that was killed
            self._fd: int | None = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise InputError(f"cannot write to folder {folder} ({_why(exc)}); "
                             "choose an output folder you can write to") from None

    def write(self, data: bytes) -> None:
        """Write all of ``data`` and move it onto the destination; the partial file is gone after."""
        self.write_with(lambda f: f.write(data))

    def write_with(self, fill: Callable[[BinaryIO], object]) -> None:
        """``fill(f)`` writes the content to the open partial file ``f`` (in pieces, so a long output
        never sits whole in memory), then the file is moved onto the destination, as ``write``; if
        ``fill`` raises, the partial file is removed."""
        if self._fd is None:
            raise InputError(f"{self.path} was already written or discarded")
        fd, self._fd = self._fd, None
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
                ours = os.path.exists(self.partial) and os.path.samestat(os.stat(self.partial), os.fstat(f.fileno()))
            if not ours:  # another writer of the same name replaced our partial file: leave theirs alone
                raise InputError(f"another process is writing {self.path} at the same time; try again")
            if self.path.exists():
                os.chmod(self.partial, stat.S_IMODE(self.path.stat().st_mode))
            os.replace(self.partial, self.path)
        except InputError:
            raise
        except OSError as exc:
            self._remove_partial()
            raise InputError(f"could not write {self.path} ({_why(exc)})") from None
        except BaseException:
            self._remove_partial()
            raise

    def discard(self) -> None:
        """Give up: close and remove the partial file (a no-op after ``write``)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
            self._remove_partial()

    def _remove_partial(self) -> None:
        try:
            self.partial.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.discard()
