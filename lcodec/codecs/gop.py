"""The low-delay GOP assembly shared by the frame-by-frame video codecs (``walloc-video``,
``walloc-video-mc``): GOP structure, frame index, container, streamed encode and decode.

A ``GopCodec`` codes frame t intra when t % gop == 0, else predicted from frame t - 1's state,
so decoding can start at any intra frame. A concrete codec supplies the per-frame parts:
``image`` (the image codec whose transform checks frame sizes), ``sections_per_frame``,
``encode_frame(frame, prev) -> (sub-sections, state)``, ``decode_frame(sub-sections, kind, size,
prev, what) -> state`` and ``frame_pixels(state, size) -> (3, H, W)`` float in [0, 1].

Stream (one lcodec container, modality "video", geometry (1, 3, T, H, W) with the frame rate):
two sections, a frame index and the payload. The index is little-endian uint32:
``[version=1, gop, frames, sub-sections per frame S, then per frame: kind (0 intra, 1 predicted),
S lengths]``; the payload is every frame's sub-sections back to back. The container's CRC covers
both, so damage is refused before any frame is written. Memory: encoding holds one frame and the
previous frame's state plus the stream written so far; decoding holds the stream, one frame
and the state.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable, Iterator

import numpy as np
import torch

from lcodec.bitstream.coder import CODER_ID, CODER_VERSION
from lcodec.bitstream.container import Container, Geometry, read_container, write_container
from lcodec.codecs.base import Codec
from lcodec.errors import BitstreamError, InputError

__all__ = ["GopCodec", "FrameIndex", "DEFAULT_GOP", "MAX_FRAMES", "INTRA", "PREDICTED", "frame_span", "video_frames"]

DEFAULT_GOP = 32
MAX_FRAMES = 2**24
INTRA, PREDICTED = 0, 1
_INDEX_VERSION = 1


def video_frames(x: torch.Tensor, name: str) -> tuple[torch.Tensor, ...]:
    """A video tensor (1, 3, T, H, W) or (3, T, H, W) -> its frames (3, H, W); anything else is an
    ``InputError`` naming the codec."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"expected a torch.Tensor video, got {type(x).__name__}")
    if x.dim() == 5:
        if x.shape[0] != 1:
            raise InputError(f"{name} codes one video at a time, got a batch of {x.shape[0]}")
        x = x[0]
    if x.dim() != 4 or x.shape[0] != 3:
        raise InputError(f"expected a video tensor (1, 3, T, H, W), got {tuple(x.shape)}")
    return x.unbind(1)


def frame_span(frames: int, span: tuple[int, int] | None) -> tuple[int, int]:
    """Frames a .. b - 1 of a stream of ``frames`` (``span`` None: all), checked."""
    a, b = (0, frames) if span is None else span
    if not 0 <= a < b <= frames:
        raise InputError(f"frames {a}:{b} outside the stream's 0:{frames}")
    return a, b


class FrameIndex:
    """The stream's frame index: kind and sub-section lengths of every frame (module docstring)."""

    def __init__(self, gop: int, kinds: list[int], lengths: list[list[int]]) -> None:
        self.gop, self.kinds, self.lengths = gop, kinds, lengths

    def to_bytes(self) -> bytes:
        per = len(self.lengths[0]) if self.lengths else 0
        rows = [[k, *ls] for k, ls in zip(self.kinds, self.lengths)]
        head = [_INDEX_VERSION, self.gop, len(self.kinds), per]
        return np.asarray(head + [v for r in rows for v in r], dtype="<u4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, frames: int, per: int) -> "FrameIndex":
        if len(data) % 4 or len(data) < 16:
            raise BitstreamError("video frame index is damaged (its length is not 4 + 4k uint32)")
        a = np.frombuffer(data, dtype="<u4").astype(np.int64)
        version, gop, count, width = (int(v) for v in a[:4])
        if version != _INDEX_VERSION:
            raise BitstreamError(f"unknown video frame index version {version}")
        if count != frames or width != per or len(a) != 4 + count * (1 + per) or gop < 1:
            raise BitstreamError(f"video frame index declares {count} frames of {width} sections (gop {gop}); "
                                 f"the header says {frames} frames, this codec codes {per}")
        rows = a[4:].reshape(count, 1 + per)
        kinds = rows[:, 0].tolist()
        if kinds and kinds[0] != INTRA or any(k not in (INTRA, PREDICTED) for k in kinds):
            raise BitstreamError("video frame index is damaged (frame kinds)")
        return cls(gop, kinds, rows[:, 1:].tolist())

    def offsets(self) -> list[int]:
        """Byte offset of each frame's first sub-section in the payload."""
        sizes = [sum(ls) for ls in self.lengths]
        return [0, *np.cumsum(sizes).tolist()][: len(sizes)]


class GopCodec(Codec):
    """Low-delay P frames with an intra frame every ``gop`` (module docstring); the per-frame
    coding is the concrete codec's."""

    modality = "video"

    @property
    def qualities(self) -> tuple[int, ...]:
        return self.image.qualities

    @property
    def rate(self) -> int:
        return self.image.rate

    def _frame_geometry(self, h: int, w: int) -> Geometry:
        return Geometry(shape=(1, 3, h, w))

    # ------------------------------------------------------------------ coding
    def compress(self, x: torch.Tensor, fps: float = 25.0, gop: int = DEFAULT_GOP, progress: bool = False) -> bytes:
        """(1, 3, T, H, W) or (3, T, H, W) float video in [0, 1] -> a complete lcodec container."""
        frames = video_frames(x, self.name)
        return self.compress_frames(frames, fps=fps, gop=gop, progress=progress, total=len(frames))

    @torch.no_grad()
    def compress_frames(self, frames: Iterable[torch.Tensor], fps: float = 25.0, gop: int = DEFAULT_GOP,
                        progress: bool = False, total: int | None = None) -> bytes:
        """Frames (3, H, W) one at a time (an iterator: memory holds one frame and the previous
        latents) -> a complete lcodec container."""
        from tqdm import tqdm

        if isinstance(gop, bool) or not isinstance(gop, int) or gop < 1:
            raise InputError(f"gop must be an integer >= 1 (1: every frame intra), got {gop!r}")
        if not fps > 0 or not math.isfinite(fps):
            raise InputError(f"fps must be positive, got {fps}")
        kinds, lengths, payload = [], [], []
        size, prev = None, None
        for t, frame in enumerate(tqdm(frames, total=total, disable=not progress, unit="frame")):
            if t >= MAX_FRAMES:
                raise InputError(f"{self.name} codes at most {MAX_FRAMES} frames per stream")
            if size is None:
                size = tuple(frame.shape[-2:])
            elif tuple(frame.shape[-2:]) != size:
                raise InputError(f"frame {t} is {frame.shape[-1]}x{frame.shape[-2]}, frame 0 {size[1]}x{size[0]}")
            intra = t % gop == 0
            sections, prev = self.encode_frame(frame, None if intra else prev)
            kinds.append(INTRA if intra else PREDICTED)
            lengths.append([len(s) for s in sections])
            payload.extend(sections)
        if size is None:
            raise InputError("the video has no frames")
        rate = Fraction(fps).limit_denominator(1001000)
        geometry = Geometry(shape=(1, 3, len(kinds), *size), fps_num=rate.numerator, fps_den=rate.denominator)
        index = FrameIndex(gop, kinds, lengths).to_bytes()
        return write_container(Container(codec=self.name, quality=self.quality, weights_hash=self.weights_hash,
                                         coder_id=CODER_ID, coder_version=CODER_VERSION, modality="video",
                                         geometry=geometry, sections=(index, b"".join(payload))))

    def parse(self, data: bytes) -> tuple[Container, FrameIndex]:
        """Read and validate a stream meant for this codec (raises BitstreamError)."""
        c = read_container(data)
        if c.codec != self.name or c.quality != self.quality:
            raise BitstreamError(f"stream is for {c.codec} q{c.quality}, not {self.name} q{self.quality}")
        if c.modality != "video":
            raise BitstreamError(f"stream holds {c.modality}, {self.name} codes video")
        if c.weights_hash != self.weights_hash:
            raise BitstreamError(f"stream was written with different {self.name} weights "
                                 f"(stream {c.weights_hash.hex()[:12]}, loaded {self.weights_hash.hex()[:12]})")
        if c.coder_id != CODER_ID:
            raise BitstreamError(f"unknown range coder id {c.coder_id}")
        shape = c.geometry.shape
        if len(shape) != 5 or shape[:2] != (1, 3) or not 1 <= shape[2] <= MAX_FRAMES:
            raise BitstreamError(f"stream geometry {shape} is not one RGB video")
        self.image.transform.check_geometry(self._frame_geometry(*shape[3:]))
        if len(c.sections) != 2:
            raise BitstreamError(f"expected 2 sections (frame index, payload), found {len(c.sections)}")
        index = FrameIndex.from_bytes(c.sections[0], shape[2], self.sections_per_frame)
        if sum(map(sum, index.lengths)) != len(c.sections[1]):
            raise BitstreamError("video frame index and payload disagree in length")
        return c, index

    def frame_range(self, frames: int, span: tuple[int, int] | None) -> tuple[int, int]:
        return frame_span(frames, span)

    def _states(self, c: Container, index: FrameIndex, start: int, stop: int) -> Iterator[tuple[int, int, FrameState]]:
        """Decode frames ``start`` (an intra frame) .. ``stop`` - 1: (t, kind, state) one at a time."""
        offsets, payload, size = index.offsets(), c.sections[1], tuple(c.geometry.shape[3:])
        prev = None
        for t in range(start, stop):
            pos, parts = offsets[t], []
            for n in index.lengths[t]:
                parts.append(payload[pos : pos + n])
                pos += n
            kind = index.kinds[t]
            prev = self.decode_frame(parts, kind, size, None if kind == INTRA else prev, f"frame {t}")
            yield t, kind, prev

    @torch.no_grad()
    def iter_decompress(self, data: bytes, frames: tuple[int, int] | None = None) -> Iterator[torch.Tensor]:
        """Stream -> decoded frames (3, H, W) one at a time, frames[0] .. frames[1] - 1 (default all),
        starting the decode at the last intra frame at or before frames[0]."""
        c, index = self.parse(data)
        t_all, h, w = c.geometry.shape[2:]
        a, b = self.frame_range(t_all, frames)
        start = max(t for t in range(a + 1) if index.kinds[t] == INTRA)
        for t, _, state in self._states(c, index, start, b):
            if t >= a:
                yield self.frame_pixels(state, (h, w))

    def decompress(self, data: bytes, frames: tuple[int, int] | None = None) -> torch.Tensor:
        """Stream -> (1, 3, T, H, W) float32 in [0, 1]."""
        return torch.stack(list(self.iter_decompress(data, frames)), dim=1)[None]

