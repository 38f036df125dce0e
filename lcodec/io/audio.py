"""Audio I/O with soundfile (libsndfile): WAV, FLAC, Ogg (Vorbis/Opus) and MP3.

Policy: every file is decoded to float32 (channels, samples) in [-1, 1] plus its
sample rate. Integer PCM is scaled by 1 / 2^(bits-1) (libsndfile's convention), so a
16-bit sample k reads as exactly k / 32768. Output is written as 16-bit PCM for WAV
and FLAC, Vorbis for .ogg. Writing quantizes a value v in [-1, 1] to
round(v * 32768) clipped to [-32768, 32767], so reading it back gives k / 32768 and
write -> read is exact for any audio that came from a 16-bit file.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from lcodec.errors import InputError

__all__ = ["read_audio", "write_audio", "encode_audio", "quantize_pcm16", "AUDIO_SUFFIXES", "AUDIO_OUTPUT_SUFFIXES"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
AUDIO_OUTPUT_SUFFIXES = tuple(_WRITE_FORMATS)


def read_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Read an audio file -> ((channels, samples) float32 in [-1, 1], sample rate in Hz)."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an audio file")
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise InputError(f"{path}: unsupported audio suffix {path.suffix!r}; use one of {', '.join(AUDIO_SUFFIXES)}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InputError(f"{path}: not a readable audio file ({exc})") from None
    if data.shape[0] == 0:
        raise InputError(f"{path}: audio file has no samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


def quantize_pcm16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 codes round(x * 32768), clipped; the inverse of reading k / 32768."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def encode_audio(x: torch.Tensor, rate: int, suffix: str) -> bytes:
    """(channels, samples) or (1, channels, samples) audio in [-1, 1] -> file bytes for ``suffix``."""
    import soundfile as sf

    fmt = _WRITE_FORMATS.get(suffix.lower())
    if fmt is None:
        raise InputError(f"cannot write audio as {suffix!r}; use one of {', '.join(_WRITE_FORMATS)}")
    if x.dim() == 3:
        if x.shape[0] != 1:
            raise InputError(f"can write one clip at a time, got a batch of {x.shape[0]}")
        x = x[0]
    if x.dim() != 2 or x.shape[-1] == 0:
        raise InputError(f"expected audio shaped (channels, samples), got {tuple(x.shape)}")
    if rate <= 0:
        raise InputError(f"sample rate must be positive, got {rate}")
    data = x.detach().cpu().double().clamp(-1, 1).numpy().T  # (samples, channels)
    if fmt[1] == "PCM_16":
        data = quantize_pcm16(data)
    buf = io.BytesIO()
    sf.write(buf, data, int(rate), format=fmt[0], subtype=fmt[1])
    return buf.getvalue()


def write_audio(path: str | Path, x: torch.Tensor, rate: int) -> None:
    """Write (channels, samples) or (1, channels, samples) audio in [-1, 1] to ``path``.

    The format follows the suffix (see ``_WRITE_FORMATS``). The file is written
    atomically: encoded in memory, then moved into place.
    """
    path = Path(path)
    data = encode_audio(x, rate, path.suffix)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
