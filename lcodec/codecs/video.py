"""walloc-video: video as a sequence of frames, each coded by an image transform, the entropy model
of a predicted frame spatiotemporal (STEM-style, ``lcodec.entropy.temporal``).

The assembly (``VideoCodec``) composes two parts and adds the GOP logic (DESIGN.md,
"Composition"): an image codec (``ComposedCodec``: walloc-rgb-rd's transform, rate ladder,
post-filter and intra entropy model) and a temporal entropy model built over that intra model.
Low-delay P structure::

    frame 0, N, 2N, ...  intra:     the image codec's own sections (`codec encode` of the frame as a PNG)
    every other frame    predicted: per 32x32-pixel block, the intra tables or the temporal ones
                                    (the previous frame's integer state as prediction and context)

so decoding can start at any intra frame. Quality q is the image ladder's rate point q. Every
frame, predicted or not, reconstructs exactly as walloc-rgb-rd reconstructs it as a still image
(the temporal prior changes the rate, not the picture), and is padded and cropped as the image
codec does it (arbitrary sizes).

Stream (one lcodec container, modality "video", geometry (1, 3, T, H, W) with the frame rate):
two sections, a frame index and the payload. The index is little-endian uint32:
``[version=1, gop, frames, sub-sections per frame S, then per frame: kind (0 intra, 1 predicted),
S lengths]``; the payload is every frame's sub-sections back to back. The container's CRC covers
both, so damage is refused before any frame is written. Memory: encoding holds one frame and the
previous frame's state plus the stream written so far; decoding holds the stream, one frame
and the state.
"""
from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from typing import Iterable, Iterator

import numpy as np
import torch

from lcodec.bitstream.coder import CODER_ID, CODER_VERSION
from lcodec.bitstream.container import Container, Geometry, read_container, write_container
from lcodec.codecs.assembly import ComposedCodec, weights_digest
from lcodec.codecs.base import Codec
from lcodec.entropy.temporal import FrameState, TemporalConfig, TemporalHyperprior
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.registry import CodecSpec, register_codec

__all__ = ["VideoCodec", "VIDEO_TEMPORAL", "DEFAULT_GOP", "FrameIndex", "frame_span", "video_codec", "video_frames", "walloc_video"]

DEFAULT_GOP = 32
MAX_FRAMES = 2**24
INTRA, PREDICTED = 0, 1
_INDEX_VERSION = 1
VIDEO_TEMPORAL = TemporalConfig()
TEMPORAL_PREFIX = "temporal."


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


class VideoCodec(Codec):
    """An image codec for intra frames plus a temporal entropy model for predicted frames (module
    docstring). ``gop``: the default intra period (1: every frame intra)."""

    modality = "video"

    def __init__(self, image: ComposedCodec, temporal: TemporalHyperprior, *, name: str, quality: int) -> None:
        super().__init__()
        if image.modality != "image":
            raise ModelError(f"{name}: the frame codec must code images, not {image.modality}")
        if image.entropy.num_sections(image.rate) != temporal.num_sections:
            raise ModelError(f"{name}: intra and predicted frames must have as many sections")
        self.image, self.temporal = image, temporal
        self.name, self.quality = name, quality
        self.multiple = math.lcm(image.multiple, temporal.downsample)
        self.weights_hash = bytes(32)

    @property
    def qualities(self) -> tuple[int, ...]:
        return self.image.qualities

    @property
    def rate(self) -> int:
        return self.image.rate

    @property
    def sections_per_frame(self) -> int:
        return self.temporal.num_sections

    # ----------------------------------------------------------------- frames
    def _frame_geometry(self, h: int, w: int) -> Geometry:
        return Geometry(shape=(1, 3, h, w))

    def _analyse(self, frame: torch.Tensor) -> torch.Tensor:
        x = self.image.transform.check_input(frame)
        if x.shape[0] != 1:
            raise InputError(f"expected one (3, H, W) frame, got {tuple(frame.shape)}")
        y64 = self.image.transform.analyse64(x, self.multiple)
        return y64 * self.image.gain64(y64.dim())

    def _pixels(self, y_hat64: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Decoded latents -> the frame, exactly as the image codec decodes its own latents (float32)."""
        return self.image.decode_latents(y_hat64.float(), size=size)[0]

    def encode_frame(self, frame: torch.Tensor, prev: FrameState | None) -> tuple[list[bytes], FrameState]:
        """One frame (3, H, W) -> (its sub-sections, its state: decoded latents and integer state);
        ``prev`` None codes it intra, else conditioned on the previous frame's state."""
        y64 = self._analyse(frame)
        if prev is None:
            g = self._frame_geometry(*frame.shape[-2:])
            sections, _ = self.image.entropy.encode(y64, self.rate, self.image.transform.carried(g))
            # the state the decoder will have, from the sections themselves
            return list(sections), self.decode_frame(list(sections), INTRA, tuple(frame.shape[-2:]), None, "frame")
        if prev.y_hat.shape != y64.shape:
            raise InputError(f"frame of {frame.shape[-2]}x{frame.shape[-1]} differs in size from the previous one")
        return self.temporal.encode(y64, prev.k, self.rate)

    def decode_frame(self, sections: list[bytes], kind: int, size: tuple[int, int], prev: FrameState | None,
                     what: str) -> FrameState:
        """A frame's sub-sections -> its state (decoded latents float64, integer state)."""
        g = self._frame_geometry(*size)
        shape = self.image.transform.latent_shape(g, self.multiple)
        if kind == INTRA:
            symbols, _, y_hat = self.image.entropy.decode_symbols(tuple(sections), shape, self.rate,
                                                                  self.image.transform.carried(g), what)
            return FrameState(y_hat, symbols)
        if prev is None:
            raise BitstreamError(f"{what}: a predicted frame without a previous frame")
        return self.temporal.decode(sections, shape, prev.k, self.rate, what)

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
                yield self._pixels(state.y_hat, (h, w))

    def decompress(self, data: bytes, frames: tuple[int, int] | None = None) -> torch.Tensor:
        """Stream -> (1, 3, T, H, W) float32 in [0, 1]."""
        return torch.stack(list(self.iter_decompress(data, frames)), dim=1)[None]

    def forward(self, x: torch.Tensor):  # pragma: no cover - training runs on cached latents
        raise ModelError(f"{self.name} trains its temporal prior on cached latents: lcodec.train.video_prior")

    @torch.no_grad()
    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, T, H, W) -> the decoder's latents of every frame (T, C, h, w) float32, GOP 32."""
        c, index = self.parse(self.compress(x))
        return torch.cat([state.y_hat.float() for _, _, state in self._states(c, index, 0, len(index.kinds))])

    def decode_latents(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """(T, C, h, w) latents -> (1, 3, T, H, W) frames (cropped to ``size`` if given)."""
        return torch.stack([self.image.decode_latents(y[None].float(), size=size)[0] for y in latents], 1)[None]

    # ----------------------------------------------------------------- weights
    def _own_state(self) -> dict[str, torch.Tensor]:
        """The tensors this codec adds to the image codec's, under their weights-file names."""
        return {TEMPORAL_PREFIX + k: v for k, v in self.temporal.state_dict().items()}

    def _digest(self) -> bytes:
        """sha256 over the image codec's weights hash and this codec's own tensors (its tables are
        the image codec's, already covered)."""
        own = weights_digest(self._own_state(), self.image.entropy.table_sets()[0])
        return hashlib.sha256(self.image.weights_hash + own).digest()

    @torch.no_grad()
    def export(self) -> None:
        """Round the own tensors to half precision (what ships is what is measured), hash."""
        for t in self._own_state().values():
            if t.dtype == torch.float32:
                t.copy_(t.half().float())
        self.weights_hash = self._digest()

    def weights_state(self) -> dict[str, object]:
        """The own tensors (half precision, under ``temporal.``) and entries; saved laid over the image
        codec's file (``lcodec.train.loop.save_weights(over=..., replaced="temporal.")``)."""
        return {"name": self.name, "qualities": list(self.qualities),
                "state_dict": {k: v.detach().cpu().half() if v.dtype == torch.float32 else v
                               for k, v in self._own_state().items()},
                **self.temporal.state_entries()}

    def load_weights(self, state: dict[str, object]) -> None:
        tensors = dict(state["state_dict"])
        image = {k: v for k, v in tensors.items() if not k.startswith(TEMPORAL_PREFIX)}
        own = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items() if k.startswith(TEMPORAL_PREFIX)}
        self.image.load_weights({**state, "state_dict": image})
        if own:
            try:
                self.temporal.load_entries(state)
                missing = sorted(set(self._own_state()) - set(own))
                if missing:
                    raise ModelError(f"weights lack {missing[0]} (and {len(missing) - 1} more)")
            except ModelError as exc:
                raise ModelError(f"{self.name} q{self.quality}: {exc}") from None
            self.temporal.load_state_dict({k[len(TEMPORAL_PREFIX):]: v for k, v in own.items()})
            self.weights_hash = self._digest()

    def load_image_weights(self) -> None:
        """The image codec's shipped weights only (a temporal prior about to be fitted)."""
        from lcodec.api import weights_path, with_base

        path = weights_path(self.image.name, self.quality)
        self.image.load_weights(with_base(torch.load(path, map_location="cpu", weights_only=True), path))


def video_codec(quality: int, load_temporal: bool = True) -> VideoCodec:
    """walloc-video at ``quality`` in eval mode: the shipped weights (``lcodec.load``), or with
    ``load_temporal`` False rd's shipped weights and an untrained temporal prior (to be fitted)."""
    if load_temporal:
        from lcodec.api import load

        return load("walloc-video", quality)
    codec = walloc_video(quality)
    codec.load_image_weights()
    codec.temporal.init_from_base()  # the heads start as the loaded intra model's
    return codec.eval()


@register_codec(CodecSpec(
    name="walloc-video", modality="video", qualities=(1, 2, 3, 4, 5, 6), default_quality=3,
    transform="walloc-rgb-rd's image transform on every frame (sym4 wavelet packet J=3 + CNN encoder/decoder, "
              "six-rate gain ladder, post-filter)",
    entropy_model="spatiotemporal: intra frames by rd's hyperprior with channel context; predicted frames per "
                  "32x32-pixel block either the same or a temporal mode that codes the change of the integer state "
                  "from the previous frame, its tables chosen by exact integer heads over the frame's hyperprior, "
                  "the previous frame's state and earlier channel slices",
    paper="Liu et al., Spatiotemporal Entropy Model is All You Need for Learned Video Compression, 2021; "
          "Jacobellis & Yadwadkar, Learned Compression for Compressed Learning, 2024",
    description="learned video codec: low-delay P frames, an intra frame every --gop frames (default 32)",
    weights={q: "walloc-video.pt" for q in (1, 2, 3, 4, 5, 6)}))
def walloc_video(quality: int) -> VideoCodec:
    from lcodec.codecs.walloc import walloc_rgb_rd

    image = walloc_rgb_rd(quality)
    return VideoCodec(image, TemporalHyperprior(image.entropy, VIDEO_TEMPORAL), name="walloc-video", quality=quality)
