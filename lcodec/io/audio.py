"""Audio I/O with soundfile (libsndfile): WAV, FLAC, Ogg (Vorbis/Opus) and MP3.

Policy: every file is decoded to float32 (channels, samples) in [-1, 1] plus its
sample rate. Integer PCM is scaled by 1 / 2^(bits-1) (libsndfile's convention), so a
16-bit sample k reads as exactly k / 32768. Output is written as 16-bit PCM for WAV
and FLAC, Vorbis for .ogg. Writing quantizes a value v in [-1, 1] to
round(v * 32768) clipped to [-32768, 32767], so reading it back gives k / 32768 and
write -> read is exact for any audio that came from a 16-bit file.

Float files (``FLOAT``/``DOUBLE`` subtypes, e.g. 32-bit float WAV) may hold samples beyond full scale. They are
refused with the peak found (never clipped silently), unless the caller asks for
``normalize=True``: then the whole file is scaled by 1 / peak, so its peak becomes exactly 1.
Files with NaN or infinite samples are refused either way.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lcodec.errors import InputError
from lcodec.io.output import OutputFile

__all__ = ["read_audio", "read_audio_info", "AudioInfo", "write_audio", "encode_audio", "quantize_pcm16", "AUDIO_SUFFIXES", "AUDIO_OUTPUT_SUFFIXES"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
AUDIO_OUTPUT_SUFFIXES = tuple(_WRITE_FORMATS)
# Files that store float samples, which may lie anywhere; integer PCM reads within [-1, 1) by
# construction, and the small overshoot a lossy decoder (Vorbis, Opus, MP3) may produce is left as is.
_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


@dataclass(frozen=True)
class AudioInfo:
    peak: float  # largest |sample| in the file as stored
    gain: float  # what the samples were multiplied by on reading (1.0 unless normalized)


def read_audio_info(path: str | Path, normalize: bool = False) -> tuple[torch.Tensor, int, AudioInfo]:
    """Read an audio file -> ((channels, samples) float32 in [-1, 1], sample rate in Hz, AudioInfo).

    A float file whose peak is beyond 1 is refused, or scaled by 1 / peak with ``normalize``.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an audio file")
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise InputError(f"{path}: unsupported audio suffix {path.suffix!r}; use one of {', '.join(AUDIO_SUFFIXES)}")
    try:
        stored_as_float = sf.info(str(path)).subtype in _FLOAT_SUBTYPES
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InputError(f"{path}: not a readable audio file ({exc})") from None
    if data.shape[0] == 0:
        raise InputError(f"{path}: audio file has no samples")
    if not np.isfinite(data).all():
        raise InputError(f"{path}: the file holds NaN or infinite samples (or values beyond the float32 "
                         "range); repair or re-export it")
    peak = float(np.abs(data).max())
    gain = 1.0
    if peak > 1.0 and stored_as_float:
        if not normalize:
            raise InputError(
                f"{path}: float samples reach {peak:g}, beyond full scale (+-1); they would be clipped. "
                f"Scale the file into [-1, 1] first, or pass --normalize to scale it by 1/{peak:g}"
            )
        gain = 1.0 / peak
        data = np.clip(data * np.float32(gain), -1.0, 1.0)  # the clip only absorbs float32 rounding at the peak
    x = torch.from_numpy(np.ascontiguousarray(data.T))
    return x, int(rate), AudioInfo(peak=peak, gain=gain)


def read_audio(path: str | Path, normalize: bool = False) -> tuple[torch.Tensor, int]:
    """Read an audio file -> ((channels, samples) float32 in [-1, 1], sample rate in Hz)."""
    x, rate, _ = read_audio_info(path, normalize)
    return x, rate


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
    atomically (``lcodec.io.output.OutputFile``): encoded in memory, then moved into place.
    """
    path = Path(path)
    with OutputFile(path) as out:
        out.write(encode_audio(x, rate, path.suffix))
