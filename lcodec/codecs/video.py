"""walloc-video: video as a sequence of frames, each coded by an image transform, the entropy model
of a predicted frame spatiotemporal (STEM-style, ``lcodec.entropy.temporal``).

The assembly (``VideoCodec``, on the GOP logic of ``lcodec.codecs.gop``) composes two parts (DESIGN.md,
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

Stream: the GOP container of ``lcodec.codecs.gop`` (frame index + payload); a frame's
sub-sections are the image codec's sections (intra) or the temporal model's (predicted).
"""
from __future__ import annotations

import hashlib
import math

import torch

from lcodec.codecs.assembly import ComposedCodec, weights_digest
from lcodec.codecs.gop import (DEFAULT_GOP, INTRA, MAX_FRAMES, PREDICTED, FrameIndex, GopCodec, frame_span,
                               video_frames)
from lcodec.entropy.temporal import FrameState, TemporalConfig, TemporalHyperprior
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.registry import CodecSpec, register_codec

__all__ = ["VideoCodec", "VIDEO_TEMPORAL", "DEFAULT_GOP", "INTRA", "PREDICTED", "MAX_FRAMES", "FrameIndex", "frame_span",
           "video_codec", "video_frames", "walloc_video"]

VIDEO_TEMPORAL = TemporalConfig()
TEMPORAL_PREFIX = "temporal."


class VideoCodec(GopCodec):
    """An image codec for intra frames plus a temporal entropy model for predicted frames (module
    docstring). ``gop``: the default intra period (1: every frame intra)."""

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
    def sections_per_frame(self) -> int:
        return self.temporal.num_sections

    # ----------------------------------------------------------------- frames
    def _analyse(self, frame: torch.Tensor) -> torch.Tensor:
        x = self.image.transform.check_input(frame)
        if x.shape[0] != 1:
            raise InputError(f"expected one (3, H, W) frame, got {tuple(frame.shape)}")
        y64 = self.image.transform.analyse64(x, self.multiple)
        return y64 * self.image.gain64(y64.dim())

    def frame_pixels(self, state: FrameState, size: tuple[int, int]) -> torch.Tensor:
        """A decoded frame's state -> the frame, exactly as the image codec decodes its own latents (float32)."""
        return self.image.decode_latents(state.y_hat.float(), size=size)[0]

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
