"""nirvana-video: video as the weights of small networks, one per group of frames, fitted at encode
time (NIRVANA, Maiya et al., CVPR 2023). Nothing is pretrained; the codec composes

    transform       ``lcodec.models.nirvana.NirvanaNet``: patch coordinates -> a group's frames
    entropy model   ``lcodec.entropy.weights``: a learned Laplace rate estimate for the fit, and
                    per-tensor integer tables written into the stream for the coding

Encoding, group by group (G frames each; the last group may be shorter): the network starts from
the previous group's decoded weights (the first from a seeded initialisation), is fitted with
straight-through rounding to loss = MSE + lambda * estimated bpp, and its integers are coded:
a key group codes the integers themselves, any other group their change from the previous group's.
The per-tensor steps are learned on the first group and then kept for the whole stream, so the
integers of consecutive groups are on the same grid. A key group starts every ``gop`` frames (the
group that holds frame k * gop), so decoding can start there.

Stream (one lcodec container, modality "video", geometry (1, 3, T, H, W) with the frame rate),
three sections::

    index    little-endian uint32: [version=1, group G, gop, groups N, then per group: kind (0 key,
             1 delta), byte length]
    steps    float32 little-endian, one step per network tensor
    payload  every group's weights section (``encode_integer_tensors``) back to back

The container's CRC covers all three, so damage is refused before any frame is written. The
integer weights decode bit-exactly everywhere; the frames come from a float32 network (see
``lcodec.models.nirvana``). Memory: encoding holds one group of frames and two networks, decoding
the stream, one network and one group of frames.
"""
from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction
from typing import Iterable, Iterator

import numpy as np
import torch

from lcodec.bitstream.coder import CODER_ID, CODER_VERSION
from lcodec.bitstream.container import Container, Geometry, read_container, write_container
from lcodec.codecs.base import Codec
from lcodec.codecs.fitting import StepBudget, cosine_scale
from lcodec.codecs.video import frame_span, video_frames
from lcodec.entropy.weights import WeightPrior, decode_integer_tensors, encode_integer_tensors
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.models.exact_nirvana import ExactNirvanaNet
from lcodec.models.nirvana import NirvanaConfig, NirvanaNet
from lcodec.registry import CodecSpec, register_codec

__all__ = ["NirvanaCodec", "GroupIndex", "NIRVANA_LMBDAS", "PRESETS", "nirvana_tables_state"]

NIRVANA_LMBDAS = (0.08, 0.02, 0.005)  # quality q: loss = MSE + lambda * bpp
PRESETS = {"fast": 100, "medium": 200, "slow": 600}  # fitting steps per group (the first group: x FIRST)
DEFAULT_PRESET = "medium"
FIRST = 2  # the first group starts from scratch: it gets this many times the steps
LR = 5e-3  # Adam step on the weights (per tensor: LR / its initial step, in integer units)
WARM_LR = 0.3  # a group warm-started from the previous one: LR times this (bus CIF, 100 steps:
# the delta groups' bytes -49% for -0.2 dB against 1.0)
STEP_LR = 1e-2
PRIOR_LR = 5e-2
DEFAULT_GOP = 10**6  # one key group: every other group codes its change
MAX_FRAMES = 2**20
MAX_SIDE = 4096
KEY, DELTA = 0, 1
_INDEX_VERSION = 1


def nirvana_tables_state() -> dict[str, object]:
    """nirvana-video's stored file: no tables (they travel in the stream), only the network layout,
    which the weights hash covers."""
    return {"name": "nirvana-video", "quality": 0, "qualities": list(range(1, len(NIRVANA_LMBDAS) + 1)),
            "config": json.dumps(NirvanaConfig().to_dict(), sort_keys=True)}


class GroupIndex:
    """The stream's group index: kind and byte length of every group (module docstring)."""

    def __init__(self, group: int, gop: int, kinds: list[int], lengths: list[int]) -> None:
        self.group, self.gop, self.kinds, self.lengths = group, gop, kinds, lengths

    def to_bytes(self) -> bytes:
        head = [_INDEX_VERSION, self.group, self.gop, len(self.kinds)]
        return np.asarray(head + [v for k, n in zip(self.kinds, self.lengths) for v in (k, n)], dtype="<u4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, frames: int, group: int) -> "GroupIndex":
        if len(data) % 4 or len(data) < 16:
            raise BitstreamError("video group index is damaged (its length is not 4 + 2k uint32)")
        a = np.frombuffer(data, dtype="<u4").astype(np.int64)
        version, g, gop, count = (int(v) for v in a[:4])
        if group < 1:
            raise BitstreamError(f"video group index declares groups of {group} frames")
        if version != _INDEX_VERSION:
            raise BitstreamError(f"unknown video group index version {version}")
        if g != group or count != -(-frames // group) or len(a) != 4 + 2 * count or gop < 1:
            raise BitstreamError(f"video group index declares {count} groups of {g} frames; the header says "
                                 f"{frames} frames, this codec fits groups of {group}")
        rows = a[4:].reshape(count, 2)
        kinds = rows[:, 0].tolist()
        if kinds[0] != KEY or any(k not in (KEY, DELTA) for k in kinds):
            raise BitstreamError("video group index is damaged (group kinds)")
        return cls(g, gop, kinds, rows[:, 1].tolist())

    def offsets(self) -> list[int]:
        return [0, *np.cumsum(self.lengths).tolist()][: len(self.lengths)]


def _psnr(mse: float) -> float:
    return -10 * math.log10(max(mse, 1e-12))


class NirvanaCodec(Codec):
    """Per-group networks fitted at encode time + a weights entropy model (module docstring)."""

    modality = "video"
    exact_decode = True  # decode with lcodec.models.exact_nirvana; False: the float network

    def __init__(self, cfg: NirvanaConfig, *, name: str, quality: int, lmbda: float) -> None:
        super().__init__()
        self.cfg, self.name, self.quality, self.lmbda = cfg, name, int(quality), float(lmbda)
        self.net = NirvanaNet(cfg)
        self.weights_hash = bytes(32)

    @property
    def qualities(self) -> tuple[int, ...]:
        return tuple(range(1, len(NIRVANA_LMBDAS) + 1))

    @property
    def group(self) -> int:
        return self.cfg.group

    def load_weights(self, state: dict[str, object]) -> None:
        config = json.dumps(self.cfg.to_dict(), sort_keys=True)
        if state.get("config") != config:
            raise ModelError(f"{self.name}: the stored file describes another network layout")
        self.weights_hash = hashlib.sha256(b"nirvana-video/1 " + config.encode()).digest()

    def padded(self, h: int, w: int) -> tuple[int, int]:
        p = self.cfg.patch
        return -(-h // p) * p, -(-w // p) * p

    def macs_per_pixel(self, h: int, w: int) -> float:
        return self.net.macs_per_pixel(*self.padded(h, w)) * math.prod(self.padded(h, w)) / (h * w)

    # ------------------------------------------------------------------ fitting
    def _fresh(self, seed: int = 0) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = NirvanaNet(self.cfg)

    def fit(self, frames: torch.Tensor, prev: list[torch.Tensor] | None, steps: int, *, learn_steps: bool,
            seconds: float | None = None, bar=None, seed: int = 0) -> dict[str, float]:
        """Fit ``self.net`` (already initialised) to ``frames`` (n <= G, 3, H, W) in [0, 1]: loss =
        MSE + lambda * bpp, the rate of the integers (``prev`` given: of their change from ``prev``).
        ``learn_steps`` False keeps the per-tensor steps. Stops after ``steps`` or, with
        ``seconds``, the steps that fit in it (measured on the first 5). Returns {"steps",
        "seconds", "psnr", "bits"} of the last step."""
        n, _, h, w = frames.shape
        ph, pw = self.padded(h, w)
        net = self.net
        prior = WeightPrior(net.num_tensors)
        lr = LR * (1.0 if prev is None else WARM_LR)
        groups = [{"params": [t.u], "lr": lr / t.step.item()} for t in net.tensors]
        if learn_steps:
            groups.append({"params": [t.log_step for t in net.tensors], "lr": STEP_LR})
        groups.append({"params": list(prior.parameters()), "lr": PRIOR_LR})
        base = [g["lr"] for g in groups]
        opt = torch.optim.Adam(groups)
        pixels = n * h * w
        budget = StepBudget(steps, seconds, bar)
        mse = bits = torch.zeros(())
        with torch.random.fork_rng():  # the rate estimate's noise: seeded, the caller's generator untouched
            torch.manual_seed(seed)
            net.train()
            try:
                while budget.running:
                    scale = cosine_scale(budget.i, budget.total)
                    for g, lr in zip(opt.param_groups, base):
                        g["lr"] = lr * scale
                    x_hat = net((ph, pw))[:n, :, :h, :w]
                    mse = torch.mean((x_hat - frames) ** 2)
                    values = [t.u for t in net.tensors] if prev is None else [t.u - p for t, p in zip(net.tensors, prev)]
                    bits = prior.bits(values)
                    loss = mse + self.lmbda * bits / pixels
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    budget.tick()
                    if budget.report():
                        bar.set_postfix(psnr=f"{_psnr(mse.item()):.2f}", kbit=f"{bits.item() / 1000:.1f}")
            finally:
                net.eval()
        return {"steps": float(budget.i), "seconds": budget.elapsed, "psnr": _psnr(mse.item()), "bits": bits.item()}

    # ------------------------------------------------------------------ coding
    def _check_frame(self, frame: torch.Tensor, t: int, size: tuple[int, int] | None) -> torch.Tensor:
        if not isinstance(frame, torch.Tensor) or frame.dim() != 3 or frame.shape[0] != 3:
            shape = tuple(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
            raise InputError(f"frame {t}: expected an RGB frame (3, H, W), got {shape}")
        if not torch.is_floating_point(frame) or not torch.isfinite(frame).all():
            raise InputError(f"frame {t}: expected finite float values in [0, 1]")
        if size is not None and tuple(frame.shape[-2:]) != size:
            raise InputError(f"frame {t} is {frame.shape[-1]}x{frame.shape[-2]}, frame 0 {size[1]}x{size[0]}")
        if not all(1 <= s <= MAX_SIDE for s in frame.shape[-2:]):
            raise InputError(f"frame of {frame.shape[-2]}x{frame.shape[-1]}; {self.name} codes 1 .. {MAX_SIDE} per side")
        return frame.float().clamp(0, 1)

    def _groups(self, frames: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Frames one at a time -> groups (n <= G, 3, H, W), checked."""
        size, buf = None, []
        for t, frame in enumerate(frames):
            if t >= MAX_FRAMES:
                raise InputError(f"{self.name} codes at most {MAX_FRAMES} frames per stream")
            frame = self._check_frame(frame, t, size)
            size = tuple(frame.shape[-2:])
            buf.append(frame)
            if len(buf) == self.group:
                yield torch.stack(buf)
                buf = []
        if buf:
            yield torch.stack(buf)
        elif size is None:
            raise InputError("the video has no frames")

    def compress(self, x: torch.Tensor, fps: float = 25.0, gop: int = DEFAULT_GOP, progress: bool = False,
                 **budget) -> bytes:
        """(1, 3, T, H, W) or (3, T, H, W) float video in [0, 1] -> a complete lcodec container."""
        frames = video_frames(x, self.name)
        return self.compress_frames(frames, fps=fps, gop=gop, progress=progress, total=len(frames), **budget)

    def compress_frames(self, frames: Iterable[torch.Tensor], fps: float = 25.0, gop: int = DEFAULT_GOP,
                        progress: bool = False, total: int | None = None, *, steps: int | None = None,
                        seconds: float | None = None, preset: str | None = None, seed: int = 0,
                        log=None) -> bytes:
        """Frames (3, H, W) one at a time -> a complete lcodec container. Budget per group:
        ``steps``, or a ``preset`` (``PRESETS``, default medium), optionally capped by ``seconds``
        per frame; the first group gets ``FIRST`` times as much. ``log``, if given, is called with
        each group's fit statistics."""
        from tqdm import tqdm

        if isinstance(gop, bool) or not isinstance(gop, int) or gop < 1:
            raise InputError(f"gop must be an integer >= 1, got {gop!r}")
        if not fps > 0 or not math.isfinite(fps):
            raise InputError(f"fps must be positive, got {fps}")
        if preset is not None and preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        per_group = int(steps) if steps is not None else PRESETS[preset or DEFAULT_PRESET]
        if per_group < 1 or (seconds is not None and not seconds > 0):
            raise InputError("the fit needs steps >= 1 and seconds > 0")
        kinds, payload, steps_used = [], [], None
        prev, count, size = None, 0, None
        self._fresh(seed)
        outer = tqdm(total=total, disable=not progress, unit="frame", desc=f"{self.name} q{self.quality}")
        try:
            for g, group in enumerate(self._groups(frames)):
                n = group.shape[0]
                size = tuple(group.shape[-2:])
                key = g == 0 or count // gop != (count + n - 1) // gop or count % gop == 0
                first = g == 0
                budget = per_group * (FIRST if first else 1)
                inner = tqdm(total=budget, disable=not progress, leave=False, unit="step", desc=f"group {g}")
                try:
                    stats = self.fit(group, None if key else prev, budget, learn_steps=first,
                                     seconds=None if seconds is None else seconds * n * (FIRST if first else 1),
                                     bar=inner if progress else None, seed=seed + g)
                finally:
                    inner.close()
                ints = [t.integers() for t in self.net.tensors]
                if first:
                    steps_used = [float(np.float32(t.step.item())) for t in self.net.tensors]  # what the stream holds
                for t, n_, s in zip(self.net.tensors, ints, steps_used):
                    t.set_integers(n_, s)  # the encoder continues from what the decoder will have
                coded = ints if key else [a - b for a, b in zip(ints, prev)]
                payload.append(encode_integer_tensors(coded))
                kinds.append(KEY if key else DELTA)
                prev = ints
                count += n
                if log is not None:
                    log({"group": g, "frames": n, "kind": "key" if key else "delta", "bytes": len(payload[-1]), **stats})
                outer.update(n)
                outer.set_postfix(psnr=f"{stats['psnr']:.2f}", kbit=f"{8 * sum(map(len, payload)) / 1000:.1f}")
        finally:
            outer.close()
        rate = Fraction(fps).limit_denominator(1001000)
        geometry = Geometry(shape=(1, 3, count, *size), fps_num=rate.numerator, fps_den=rate.denominator)
        index = GroupIndex(self.group, gop, kinds, [len(p) for p in payload]).to_bytes()
        steps_bytes = np.asarray(steps_used, dtype="<f4").tobytes()
        return write_container(Container(codec=self.name, quality=self.quality, weights_hash=self.weights_hash,
                                         coder_id=CODER_ID, coder_version=CODER_VERSION, modality="video",
                                         geometry=geometry, sections=(index, steps_bytes, b"".join(payload))))

    def parse(self, data: bytes) -> tuple[Container, GroupIndex]:
        """Read and validate a stream meant for this codec (raises BitstreamError)."""
        c = read_container(data)
        if c.codec != self.name or c.quality != self.quality:
            raise BitstreamError(f"stream is for {c.codec} q{c.quality}, not {self.name} q{self.quality}")
        if c.modality != "video" or c.coder_id != CODER_ID:
            raise BitstreamError(f"stream holds {c.modality} (coder {c.coder_id}), not {self.name} video")
        if c.weights_hash != self.weights_hash:
            raise BitstreamError(f"stream was written for another {self.name} network layout")
        shape = c.geometry.shape
        if (len(shape) != 5 or shape[:2] != (1, 3) or not 1 <= shape[2] <= MAX_FRAMES
                or not all(1 <= s <= MAX_SIDE for s in shape[3:])):
            raise BitstreamError(f"stream geometry {shape} is not one RGB video {self.name} codes")
        if len(c.sections) != 3:
            raise BitstreamError(f"expected 3 sections (group index, steps, payload), found {len(c.sections)}")
        index = GroupIndex.from_bytes(c.sections[0], shape[2], self.group)
        if len(c.sections[1]) != 4 * self.net.num_tensors:
            raise BitstreamError(f"expected {self.net.num_tensors} steps, the section holds {len(c.sections[1])} bytes")
        steps = np.frombuffer(c.sections[1], dtype="<f4")
        if not (np.isfinite(steps).all() and (steps > 0).all()):
            raise BitstreamError("the stream's weight steps are not positive numbers")
        if sum(index.lengths) != len(c.sections[2]):
            raise BitstreamError("video group index and payload disagree in length")
        return c, index

    def frame_range(self, frames: int, span: tuple[int, int] | None) -> tuple[int, int]:
        return frame_span(frames, span)

    def iter_integers(self, data: bytes, start: int = 0, stop: int | None = None,
                      parsed: tuple[Container, GroupIndex] | None = None) -> Iterator[tuple[int, list[torch.Tensor]]]:
        """(group, its integer weights) for groups ``start`` .. ``stop`` - 1, decoding from the last
        key group at or before ``start``; ``parsed``: ``parse(data)`` already done by the caller."""
        c, index = parsed or self.parse(data)
        stop = len(index.kinds) if stop is None else stop
        first = max(g for g in range(start + 1) if index.kinds[g] == KEY)
        offsets, payload, shapes = index.offsets(), c.sections[2], self.net.shapes()
        prev = None
        for g in range(first, stop):
            part = payload[offsets[g] : offsets[g] + index.lengths[g]]
            coded = decode_integer_tensors(part, shapes)
            ints = coded if index.kinds[g] == KEY else [a + b for a, b in zip(coded, prev)]
            prev = ints
            if g >= start:
                yield g, ints

    @torch.no_grad()
    def iter_decompress(self, data: bytes, frames: tuple[int, int] | None = None) -> Iterator[torch.Tensor]:
        """Stream -> decoded frames (3, H, W) one at a time, frames[0] .. frames[1] - 1 (default all)."""
        c, index = self.parse(data)
        t_all, h, w = c.geometry.shape[2:]
        a, b = self.frame_range(t_all, frames)
        steps = np.frombuffer(c.sections[1], dtype="<f4").astype(np.float64).tolist()
        size = self.padded(h, w)
        for g, ints in self.iter_integers(data, a // self.group, -(-b // self.group), parsed=(c, index)):
            if self.exact_decode:  # fixed point: the same frames on every machine and thread count
                out = ExactNirvanaNet(self.cfg, ints, steps)(size)[:, :, :h, :w].clamp(0, 1)
            else:
                for t, n, s in zip(self.net.tensors, ints, steps):
                    t.set_integers(n, s)
                out = self.net(size)[:, :, :h, :w].clamp(0, 1)
            for k in range(self.group):
                if a <= g * self.group + k < b:
                    yield out[k]

    def decompress(self, data: bytes, frames: tuple[int, int] | None = None) -> torch.Tensor:
        """Stream -> (1, 3, T, H, W) float32 in [0, 1]."""
        return torch.stack(list(self.iter_decompress(data, frames)), dim=1)[None]

    def forward(self, x: torch.Tensor):  # pragma: no cover - no shared training path
        raise ModelError(f"{self.name} is fitted per video by compress(); it has no training forward")


@register_codec(CodecSpec(
    name="nirvana-video", modality="video", qualities=tuple(range(1, len(NIRVANA_LMBDAS) + 1)), default_quality=2,
    transform="implicit neural representation (NIRVANA): per group of 3 frames a SIREN over patch coordinates "
              "(width 128) with a conv + PixelShuffle head, fitted at encode time, warm-started from the "
              "previous group's network, quantisation-aware with learned per-tensor steps",
    entropy_model="weights: each tensor's integers (key groups) or their change from the previous group's, "
                  "range-coded with per-tensor integer tables written into the stream",
    paper="Maiya et al., NIRVANA: Neural Implicit Representations of Videos with Adaptive Networks and "
          "Autoregressive Patch-wise Modeling (CVPR 2023)",
    description="fitted to each video at encode time; no pretraining; weights decode exactly",
    weights={q: "nirvana-video.pt" for q in range(1, len(NIRVANA_LMBDAS) + 1)}))
def nirvana_video(quality: int) -> NirvanaCodec:
    return NirvanaCodec(NirvanaConfig(), name="nirvana-video", quality=quality, lmbda=NIRVANA_LMBDAS[quality - 1])
