"""walloc-video-mc: motion-compensated video, every picture coded by walloc-rgb-rd's image
transform and entropy model.

The assembly (``MotionVideoCodec``, on the GOP logic of ``lcodec.codecs.gop``) composes three
parts (DESIGN.md, "Composition"): an image codec (``ComposedCodec``: walloc-rgb-rd's transform,
rate ladder, post-filter and hyperprior with channel context), block motion
(``lcodec.models.motion``: half-pel, overlapped compensation) and the motion vectors' entropy
model (``lcodec.entropy.motion_vectors``). Low-delay P structure::

    frame 0, N, 2N, ...  intra:     an empty motion section, then the image codec's sections of the frame
    every other frame    predicted: the motion field (one vector per 32x32 block), then the image
                                    codec's sections of the residual picture clamp(x - prediction + 128)

A predicted frame is ``clamp(prediction + residual - 128, 0, 255)`` with the prediction read
from the previous decoded frame and the residual decoded by the image codec's synthesis without
its post-filter (trained on photos, the filter is worth 0.02 / 0.09 / 0.00 dB on residuals at
q1 / q3 / q5 of BasketballPass frames 51-62, and costs 0.11 s of a 416x240 frame's 0.5 s, in the
encoder and the decoder alike). Every step the decoder takes is exact: the image codec's
pictures come from its fixed-point synthesis (``lcodec.models.exact``) rounded to 8 bits, and
compensation is integer arithmetic, so the decoded frames, and with them the references of
later frames, are the same on every machine and thread count, and the encoder, which decodes
each frame as the decoder will, never drifts from it.

The motion estimation is the encoder's (integer luma SAD plus ``lam`` times the vector's
Exp-Golomb length, coarse-to-fine; ``lcodec.models.motion.estimate``), with ``lam`` per
quality (``MV_LAMBDA``). Quality q is the image ladder's rate point q for intra and residual
pictures alike.

Measured choices (BasketballPass frames 51-66, ``benchmarks/video_rd.py`` for the full runs):
32x32 blocks with overlapped compensation beat 16x16 blocks (16x16 with overlap: -12% / -31%
bits at q1 / q3 against coding every frame intra; 32x32: -24% / -35%) and plain block copies
(-9% / -27%, with 0.3 dB less); half-pel vectors beat integer ones. walloc-video's latent-domain
temporal prior (``lcodec.entropy.temporal``) on the residual pictures saved 0.4% of their bits at
q3 and doubled their entropy-coding time, so the residuals use rd's intra model.
"""
from __future__ import annotations

import hashlib
from typing import NamedTuple

import torch

from lcodec.codecs.assembly import ComposedCodec
from lcodec.codecs.gop import INTRA, GopCodec
from lcodec.entropy.motion_vectors import MotionVectorModel
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.models.motion import blocks_of, compensate_overlapped, estimate, half_pel_grid
from lcodec.registry import CodecSpec, register_codec

__all__ = ["MotionVideoCodec", "MotionState", "MC_BLOCK", "MC_SEARCH", "MV_LAMBDA", "motion_tables_state",
           "walloc_video_mc"]

MC_BLOCK = 32  # pixels per side of a motion block
MC_SEARCH = 16  # the search range in whole pixels; vectors lie within +-(2 * MC_SEARCH + 1) half-pels
MV_LAMBDA = {1: 32, 2: 24, 3: 16, 4: 12, 5: 8, 6: 8}  # SAD (8-bit luma) per bit of a vector, per quality
RESIDUAL_OFFSET = 128
MOTION_TABLES = "motion_tables"


class MotionState(NamedTuple):
    """What the next frame is coded against: the decoded frame (3, H, W), 8-bit integers (int64),
    and its motion field (None for an intra frame)."""

    picture: torch.Tensor
    mv: torch.Tensor | None


class MotionVideoCodec(GopCodec):
    """Intra frames and motion-compensated residuals, both coded by an image codec (module docstring)."""

    def __init__(self, image: ComposedCodec, motion: MotionVectorModel, *, name: str, quality: int,
                 block: int = MC_BLOCK, search: int = MC_SEARCH, lam: int = 16) -> None:
        super().__init__()
        if image.modality != "image":
            raise ModelError(f"{name}: the frame codec must code images, not {image.modality}")
        if motion.limit != 2 * search + 1:
            raise ModelError(f"{name}: the motion vector model codes +-{motion.limit}, the search needs "
                             f"+-{2 * search + 1}")
        self.image, self.motion = image, motion
        self.name, self.quality = name, quality
        self.block, self.search, self.lam = block, search, lam
        self.weights_hash = bytes(32)

    @property
    def sections_per_frame(self) -> int:
        return 1 + self.image.entropy.num_sections(self.rate)

    # ----------------------------------------------------------------- frames
    def _checked(self, frame: torch.Tensor) -> torch.Tensor:
        """A frame (3, H, W) float in [0, 1] -> its 8-bit integers (int64), checked."""
        if not isinstance(frame, torch.Tensor) or frame.dim() != 3 or frame.shape[0] != 3:
            shape = tuple(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
            raise InputError(f"expected one (3, H, W) frame, got {shape}")
        x = self.image.transform.check_input(frame[None])
        return (x[0].detach().cpu().double() * 255).round_().clamp_(0, 255).long()

    def _code_picture(self, pic: torch.Tensor, residual: bool) -> tuple[list[bytes], torch.Tensor]:
        """An 8-bit picture (3, H, W) -> (the image codec's sections, the picture the decoder
        will show, 8-bit), from the encoder's own write pass."""
        g = self._frame_geometry(*pic.shape[-2:])
        device = next(self.image.parameters()).device
        y64 = self.image.analyse64(pic[None].to(device, torch.float32) / 255)
        sections, y_hat = self.image.entropy.encode(y64, self.rate, self.image.transform.carried(g), latents=True)
        return list(sections), self._picture(y_hat, tuple(pic.shape[-2:]), residual)

    def _picture(self, y_hat: torch.Tensor, size: tuple[int, int], residual: bool) -> torch.Tensor:
        """Decoded latents -> the image codec's exact picture (without the post-filter for a
        residual), rounded to 8 bits (int64)."""
        if residual:
            exact = self.image.exact_decoder()
            if exact is None:
                raise ModelError(f"{self.name} needs an image codec with an exact decoder")
            x = self.image.transform.crop(exact(y_hat.float(), postfilter=False), size)[0]
        else:
            x = self.image.decode_latents(y_hat.float(), size=size)[0]
        return (x.double() * 255).round_().clamp_(0, 255).long()

    def _decode_picture(self, sections: list[bytes], size: tuple[int, int], residual: bool, what: str) -> torch.Tensor:
        g = self._frame_geometry(*size)
        shape = self.image.transform.latent_shape(g, self.image.multiple)
        y_hat = self.image.entropy.decode(tuple(sections), shape, self.rate, self.image.transform.carried(g), what)
        return self._picture(y_hat, size, residual)

    def encode_frame(self, frame: torch.Tensor, prev: MotionState | None) -> tuple[list[bytes], MotionState]:
        """One frame (3, H, W) in [0, 1] -> (its sub-sections, its state: the decoded frame and its
        motion field); ``prev`` (the previous frame's state) None codes it intra."""
        x = self._checked(frame)
        if prev is None:
            sections, decoded = self._code_picture(x, residual=False)
            return [b"", *sections], MotionState(decoded, None)
        if prev.picture.shape != x.shape:
            raise InputError(f"frame of {x.shape[-2]}x{x.shape[-1]} differs in size from the previous one")
        mv = estimate(x, prev.picture, self.block, self.search, self.lam)
        prediction = compensate_overlapped(half_pel_grid(prev.picture), mv, self.block)
        residual = (x - prediction + RESIDUAL_OFFSET).clamp_(0, 255)
        sections, decoded = self._code_picture(residual, residual=True)
        return [self.motion.encode(mv, prev.mv), *sections], MotionState(self._reconstruct(prediction, decoded), mv)

    @staticmethod
    def _reconstruct(prediction: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return (prediction + residual - RESIDUAL_OFFSET).clamp_(0, 255)

    def decode_frame(self, sections: list[bytes], kind: int, size: tuple[int, int], prev: MotionState | None,
                     what: str) -> MotionState:
        """A frame's sub-sections -> its state (the decoded frame, 8-bit integers, and its motion field)."""
        motion, pictures = sections[0], sections[1:]
        if kind == INTRA:
            if motion:
                raise BitstreamError(f"{what}: an intra frame with a motion section (damaged stream)")
            return MotionState(self._decode_picture(pictures, size, False, what), None)
        if prev is None:
            raise BitstreamError(f"{what}: a predicted frame without a previous frame")
        mv = self.motion.decode(motion, blocks_of(*size, self.block), prev.mv, what)
        prediction = compensate_overlapped(half_pel_grid(prev.picture), mv, self.block)
        return MotionState(self._reconstruct(prediction, self._decode_picture(pictures, size, True, what)), mv)

    def frame_pixels(self, state: MotionState, size: tuple[int, int]) -> torch.Tensor:
        """A decoded frame's state -> the frame, float32 in [0, 1]."""
        return state.picture.float() / 255

    def forward(self, x: torch.Tensor):  # pragma: no cover - nothing of its own to train
        raise ModelError(f"{self.name} has nothing to train: it codes with walloc-rgb-rd's weights and stored "
                         "motion vector tables")

    # ----------------------------------------------------------------- weights
    def load_weights(self, state: dict[str, object]) -> None:
        """walloc-rgb-rd's weights (the overlay's base) and the stored motion vector tables."""
        if MOTION_TABLES not in state:
            raise ModelError(f"{self.name} q{self.quality}: the weights hold no motion vector tables")
        self.image.load_weights(state)
        self.motion.load_tables(state[MOTION_TABLES])
        self.weights_hash = hashlib.sha256(self.image.weights_hash + self.motion.tables.sha256.encode()).digest()

    def weights_state(self) -> dict[str, object]:
        return {"name": self.name, "qualities": list(self.qualities), "state_dict": {},
                MOTION_TABLES: self.motion.tables.to_state()}


def motion_tables_state() -> dict[str, object]:
    """walloc-video-mc's weights file: an overlay on walloc-rgb-rd.pt that adds only the motion
    vector tables (built, not trained: ``lcodec.entropy.motion_vectors.geometric_tables``)."""
    from lcodec.api import weights_path

    base = weights_path("walloc-rgb-rd", 1)
    return {"name": "walloc-video-mc", "qualities": [1, 2, 3, 4, 5, 6], "state_dict": {},
            MOTION_TABLES: MotionVectorModel(2 * MC_SEARCH + 1).tables.to_state(),
            "base": base.name, "base_sha256": hashlib.sha256(base.read_bytes()).hexdigest(), "replaced": "motion."}


@register_codec(CodecSpec(
    name="walloc-video-mc", modality="video", qualities=(1, 2, 3, 4, 5, 6), default_quality=3,
    transform="walloc-rgb-rd's image transform on intra frames and on motion-compensated residuals (sym4 wavelet "
              "packet J=3 + CNN encoder/decoder, six-rate gain ladder; its post-filter on intra pictures only); "
              "half-pel overlapped block motion compensation from the previous decoded frame, one vector per "
              "32x32 block",
    entropy_model="rd's hyperprior with channel context for intra and residual pictures; a spatiotemporal model "
                  "of the motion vectors: differences from a spatial (neighbours' median), temporal (the previous "
                  "frame's co-located vector) or joint predictor chosen per frame, each component with the "
                  "cheapest of 12 stored geometric tables",
    paper="Lu et al., DVC: An End-to-end Deep Video Compression Framework, CVPR 2019 (the hybrid structure); "
          "Jacobellis & Yadwadkar, Learned Compression for Compressed Learning, 2024",
    description="learned video codec with motion compensation: low-delay P frames, an intra frame every --gop "
                "frames (default 32)",
    weights={q: "walloc-video-mc.pt" for q in (1, 2, 3, 4, 5, 6)}))
def walloc_video_mc(quality: int) -> MotionVideoCodec:
    from lcodec.codecs.walloc import walloc_rgb_rd

    image = walloc_rgb_rd(quality)
    return MotionVideoCodec(image, MotionVectorModel(2 * MC_SEARCH + 1), name="walloc-video-mc", quality=quality,
                            lam=MV_LAMBDA[quality])
