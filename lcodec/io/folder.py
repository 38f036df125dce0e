"""Writing decoded video frames into a folder of PNG files the way ``OutputFile`` writes a file:
checked before the work, complete or absent.

``FolderOutput(path, force)`` reserves ``NAME.lcodec-partial/`` beside ``NAME`` at once (so a
missing or read-only parent is reported before any decoding); ``write_frames`` fills it with
``frame_00000.png``, ``frame_00001.png``, ... and renames it onto ``NAME``. On any error the
partial folder is removed. An existing ``NAME`` is replaced only with ``force``, and only if it
holds nothing but PNG files (a folder of frames written before): nothing else is deleted.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType
from typing import Iterable

import torch

from lcodec.errors import InputError
from lcodec.io.output import partial_path

__all__ = ["FolderOutput"]


class FolderOutput:
    def __init__(self, path: str | Path, force: bool = False) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        parent = self.path.parent
        if not parent.is_dir():
            raise InputError(f"output folder {parent} does not exist; create it first (mkdir -p {parent})")
        if self.path.exists():
            if not self.path.is_dir():
                raise InputError(f"{self.path} is a file; a folder of PNG frames needs a new name")
            if not force:
                raise InputError(f"{self.path} already exists (use --force to replace its PNG frames)")
            others = [p.name for p in self.path.iterdir() if p.suffix.lower() != ".png"]
            if others:
                raise InputError(f"{self.path} holds files other than PNG frames ({others[0]}, ...); "
                                 "it is not replaced, choose another output name")
        if self.partial.is_dir():
            shutil.rmtree(self.partial)  # left by an earlier write of this name that was killed
        try:
            self.partial.mkdir()
        except OSError as exc:
            raise InputError(f"cannot write to folder {parent} ({exc.strerror}); "
                             "choose an output folder you can write to") from None
        self._open = True

    def write_frames(self, frames: Iterable[torch.Tensor]) -> int:
        """Write every frame (3, H, W) as PNG, then move the folder onto the destination."""
        from lcodec.io.image import write_image

        if not self._open:
            raise InputError(f"{self.path} was already written or discarded")
        try:
            count = 0
            for count, frame in enumerate(frames, 1):
                (self.partial / f"frame_{count - 1:05d}.png").write_bytes(write_image("x.png", frame))
            if self.path.exists():
                shutil.rmtree(self.path)
            self.partial.rename(self.path)
            self._open = False
            return count
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        if self._open:
            self._open = False
            shutil.rmtree(self.partial, ignore_errors=True)

    def __enter__(self) -> FolderOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.discard()
