"""One exception family for everything lcodec raises on purpose."""
from __future__ import annotations

__all__ = ["LcodecError", "BitstreamError", "ModelError", "InputError"]


class LcodecError(Exception):
    """Base class: every error lcodec raises deliberately derives from it."""


class BitstreamError(LcodecError):
    """A stream is not a valid lcodec container (wrong magic, truncated, corrupted, ...)."""


class ModelError(LcodecError):
    """A codec, its configuration or its weights are unusable (unknown name, bad kwargs, hash mismatch)."""


class InputError(LcodecError):
    """User input cannot be processed (missing file, unsupported format, wrong tensor shape)."""
