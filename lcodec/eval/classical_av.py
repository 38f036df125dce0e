"""Classical audio and video codecs for the evaluation harness, through PyAV and soundfile.

Every adapter encodes in memory to the WHOLE file a user would store (Ogg Opus,
MP3 with its LAME/Xing header, FLAC, MP4), so rates count container overhead.

Audio (``opus``, ``mp3``, ``flac``): decoded clips are time-aligned with the input
and exactly as long. Encoder delay and padding are removed from the signalling in
the file itself (Ogg Opus pre-skip and final granule position; the LAME tag's
delay/padding in MP3), which FFmpeg applies on decode; any remaining length
difference is trimmed or zero-padded at the end. Opus always runs at 48 kHz and MP3
at an MPEG-1 rate (32, 44.1 or 48 kHz): other inputs are resampled with
``torchaudio.functional.resample`` before encoding and back after decoding.

Video (``h264``, ``h265``, ``av1``): RGB is converted to BT.601 limited-range
Y'CbCr 4:2:0 with ``lcodec.io.video.rgb_to_yuv420`` (and back with the inverse), so
colour conversion is identical for every codec and for the Y4M reader. Sides are
padded (edge replicate) to what the encoder accepts and cropped on decode. Encoders
run single-threaded, so the bytes depend on the settings only, not on the machine.
The encoders' informational SEI message (x264's and x265's version and options text,
about 0.7 and 2.3 KB) is left out of the file: it carries no picture data and would
dominate the rate of small clips. Items without a frame rate are timed at 25 fps.
Quality grids go from the lowest to the highest rate (CRF grids therefore descend).

``h265`` and ``av1`` exist only when PyAV's FFmpeg has the encoder (and, for AV1, a
software decoder); otherwise their factories raise ``ModelError``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lcodec.errors import InputError, ModelError
from lcodec.eval.adapters import Encoded, EvalCodec, MediaItem, register_classical

__all__ = [
    "PyAVAudioCodec",
    "FlacCodec",
    "PyAVVideoCodec",
    "AudioEncoderSettings",
    "VideoEncoderSettings",
    "available_encoder",
]

_DEFAULT_FPS = 25.0  # used for timestamps when an item carries no frame rate


def available_encoder(candidates: tuple[str, ...]) -> str | None:
    """The first FFmpeg encoder among ``candidates`` that this PyAV build has, else None."""
    import av

    for name in candidates:
        try:
            av.codec.Codec(name, "w")
        except av.codec.codec.UnknownCodecError:
            continue
        return name
    return None


def _has_decoder(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "r")
    except av.codec.codec.UnknownCodecError:
        return False
    return True


def _resample(x: torch.Tensor, rate_in: int, rate_out: int) -> torch.Tensor:
    if rate_in == rate_out:
        return x
    import torchaudio.functional

    return torchaudio.functional.resample(x, rate_in, rate_out)


def _fit_length(x: torch.Tensor, n: int) -> torch.Tensor:
    """Trim or zero-pad the last axis to exactly ``n`` samples."""
    if x.shape[-1] >= n:
        return x[..., :n]
    return F.pad(x, (0, n - x.shape[-1]))


def _check_audio(item: MediaItem, max_channels: int, codec: str) -> tuple[int, int]:
    """-> (channels, samples) of a (1, channels, samples) audio item, or InputError."""
    x = item.x
    if x.dim() != 3 or x.shape[0] != 1:
        raise InputError(f"{item.name}: audio must be (1, channels, samples), got {tuple(x.shape)}")
    channels, samples = int(x.shape[1]), int(x.shape[2])
    if not 1 <= channels <= max_channels:
        raise InputError(f"{item.name}: {codec} codes 1 to {max_channels} channels, got {channels}")
    if samples == 0:
        raise InputError(f"{item.name}: audio item has no samples")
    if item.sample_rate <= 0:
        raise InputError(f"{item.name}: audio item needs a positive sample_rate, got {item.sample_rate}")
    return channels, samples


# --------------------------------------------------------------------------- audio
@dataclass(frozen=True)
class AudioEncoderSettings:
    """What differs between the PyAV audio codecs."""

    encoder: str  # FFmpeg encoder name
    container: str  # FFmpeg muxer name
    rates: tuple[int, ...]  # sample rates the encoder runs at, ascending
    max_channels: int


class PyAVAudioCodec:
    """A lossy audio codec through PyAV. ``quality`` is the target bit rate in kbit/s."""

    modality = "audio"

    def __init__(self, name: str, settings: AudioEncoderSettings, qualities: tuple, description: str) -> None:
        self.name, self.settings, self.qualities, self.description = name, settings, qualities, description

    def coding_rate(self, sample_rate: int) -> int:
        """The rate the encoder runs at: the item's own if allowed, else the next allowed one up."""
        if sample_rate in self.settings.rates:
            return sample_rate
        higher = [r for r in self.settings.rates if r > sample_rate]
        return higher[0] if higher else self.settings.rates[-1]

    def encode(self, item: MediaItem, quality) -> Encoded:
        import av

        channels, _ = _check_audio(item, self.settings.max_channels, self.name)
        rate = self.coding_rate(item.sample_rate)
        x = _resample(item.x[0].detach().cpu().float(), item.sample_rate, rate).clamp(-1, 1)  # (C, N')
        layout = "mono" if channels == 1 else "stereo"
        buf = io.BytesIO()
        with av.open(buf, "w", format=self.settings.container) as out:
            stream = out.add_stream(self.settings.encoder, rate=rate, layout=layout)
            stream.bit_rate = int(quality) * 1000
            formats = {f.name for f in stream.codec_context.codec.audio_formats}
            if "fltp" in formats:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.numpy()), format="fltp", layout=layout)
            elif "flt" in formats:
                packed = np.ascontiguousarray(x.numpy().T).reshape(1, -1)  # interleaved (1, N' * C)
                frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
            else:
                raise ModelError(f"{self.settings.encoder} accepts none of fltp/flt (has {sorted(formats)})")
            stream.codec_context.format = frame.format  # float in, no 16-bit conversion on the way
            frame.sample_rate, frame.pts = rate, 0
            for packet in stream.encode(frame):
                out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        return Encoded(buf.getvalue())

    def decode(self, data: bytes, item: MediaItem) -> torch.Tensor:
        import av

        channels, samples = _check_audio(item, self.settings.max_channels, self.name)
        parts: list[np.ndarray] = []
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            for frame in container.decode(stream):
                parts.append(_frame_to_float(frame))  # (C, n)
        if not parts:
            raise ModelError(f"{self.name}: the stream decoded to no audio")
        y = torch.from_numpy(np.concatenate(parts, axis=1))
        if y.shape[0] != channels:
            raise ModelError(f"{self.name}: decoded {y.shape[0]} channels, the item has {channels}")
        y = _resample(y, rate, item.sample_rate)
        return _fit_length(y, samples).clamp(-1, 1).unsqueeze(0).contiguous()


def _frame_to_float(frame) -> np.ndarray:
    """A decoded PyAV AudioFrame -> (channels, samples) float32 in [-1, 1]."""
    a = frame.to_ndarray()
    if not frame.format.is_planar:
        a = a.reshape(-1, frame.layout.nb_channels).T  # interleaved -> (C, n)
    if a.dtype == np.int16:
        return a.astype(np.float32) / 32768.0
    if a.dtype == np.int32:
        return (a.astype(np.float64) / 2147483648.0).astype(np.float32)
    if a.dtype in (np.float32, np.float64):
        return a.astype(np.float32)
    raise ModelError(f"unsupported decoded sample format {frame.format.name}")


class FlacCodec:
    """FLAC through soundfile: lossless at the given bit depth (16: the input is quantized to
    round(x * 32768) first, exactly what ``lcodec.io.audio.write_audio`` stores)."""

    modality = "audio"
    name = "flac"
    qualities = (16,)
    description = "FLAC (libFLAC via soundfile), 16-bit PCM, lossless after 16-bit quantization"

    def encode(self, item: MediaItem, quality) -> Encoded:
        import soundfile as sf

        from lcodec.io.audio import quantize_pcm16

        _check_audio(item, 8, self.name)
        if quality != 16:
            raise InputError(f"flac quality is the bit depth; only 16 is supported, got {quality}")
        pcm = quantize_pcm16(item.x[0].detach().cpu().double().numpy().T)  # (N, C) int16
        buf = io.BytesIO()
        sf.write(buf, pcm, int(item.sample_rate), format="FLAC", subtype="PCM_16")
        return Encoded(buf.getvalue())

    def decode(self, data: bytes, item: MediaItem) -> torch.Tensor:
        import soundfile as sf

        channels, samples = _check_audio(item, 8, self.name)
        pcm, _ = sf.read(io.BytesIO(data), dtype="int16", always_2d=True)  # (N, C)
        if pcm.shape != (samples, channels):
            raise ModelError(f"flac: decoded {pcm.shape[1]} channels x {pcm.shape[0]} samples, "
                             f"the item has {channels} x {samples}")
        y = torch.from_numpy(pcm.T.astype(np.float32) / 32768.0)
        return y.unsqueeze(0).contiguous()


@register_classical("opus")
def _opus() -> EvalCodec:
    return PyAVAudioCodec(
        "opus", AudioEncoderSettings("libopus", "ogg", (48000,), 2),
        (6, 12, 16, 24, 32, 48, 64, 96, 128),
        "Opus (libopus via PyAV) in Ogg, 48 kHz, VBR, complexity 10; quality = kbit/s",
    )


@register_classical("mp3")
def _mp3() -> EvalCodec:
    return PyAVAudioCodec(
        "mp3", AudioEncoderSettings("libmp3lame", "mp3", (32000, 44100, 48000), 2),
        (32, 48, 64, 96, 128, 160, 192, 256),
        "MP3 (LAME via PyAV), CBR, MPEG-1 Layer III with LAME/Xing header; quality = kbit/s",
    )


@register_classical("flac")
def _flac() -> EvalCodec:
    return FlacCodec()


# --------------------------------------------------------------------------- video
@dataclass(frozen=True)
class VideoEncoderSettings:
    """What differs between the PyAV video codecs."""

    encoder: str  # FFmpeg encoder name
    options: Callable[[int], dict[str, str]]  # quality -> encoder options
    min_side: int = 2  # smallest width/height the encoder accepts (sides are also made even)
    bitstream_filter: str | None = None  # FFmpeg bitstream filter applied to every packet before muxing


class PyAVVideoCodec:
    """A video codec through PyAV in MP4, 8-bit 4:2:0. ``quality`` is the encoder's CRF."""

    modality = "video"

    def __init__(self, name: str, settings: VideoEncoderSettings, qualities: tuple, description: str) -> None:
        self.name, self.settings, self.qualities, self.description = name, settings, qualities, description

    def _padded_size(self, height: int, width: int) -> tuple[int, int]:
        def side(n: int) -> int:
            n = max(n, self.settings.min_side)
            return n + n % 2

        return side(height), side(width)

    def encode(self, item: MediaItem, quality) -> Encoded:
        import av

        from lcodec.io.video import rgb_to_yuv420

        t, h, w = _check_video(item)
        ph, pw = self._padded_size(h, w)
        x = item.x[0].detach().cpu().float()  # (3, T, H, W)
        if (ph, pw) != (h, w):
            x = F.pad(x.transpose(0, 1), (0, pw - w, 0, ph - h), mode="replicate").transpose(0, 1)
        y, cb, cr = rgb_to_yuv420(x)  # (T, pH, pW), (T, pH/2, pW/2) x2
        fps = Fraction(item.fps if item.fps > 0 else _DEFAULT_FPS).limit_denominator(100000)
        try:
            return Encoded(self._encode_mp4(t, pw, ph, fps, (y, cb, cr), int(quality)))
        except av.error.FFmpegError as exc:
            raise ModelError(f"{self.name}: FFmpeg could not code {item.name} ({t} frames, {h}x{w}): {exc}") from None

    def _encode_mp4(self, t: int, pw: int, ph: int, fps: Fraction, planes, quality: int) -> bytes:
        import av

        y, cb, cr = planes
        buf = io.BytesIO()
        with av.open(buf, "w", format="mp4") as out:
            stream = out.add_stream(self.settings.encoder, rate=fps, options=self.settings.options(quality))
            stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
            stream.codec_context.colorspace = 6  # AVCOL_SPC_SMPTE170M: BT.601 matrix
            stream.codec_context.color_range = 1  # AVCOL_RANGE_MPEG: limited range
            stream.codec_context.open()
            bsf = None
            if self.settings.bitstream_filter is not None:
                bsf = av.BitStreamFilterContext(self.settings.bitstream_filter, stream)
            packets: list = []
            for i in range(t):
                frame = av.VideoFrame(pw, ph, "yuv420p")
                for plane, values in zip(frame.planes, (y[i], cb[i], cr[i])):
                    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
                    rows[:, : plane.width] = values
                frame.pts = i
                packets += _filtered(bsf, stream.encode(frame))
            packets += _filtered(bsf, stream.encode(None))
            if bsf is not None:
                packets += bsf.filter(None)
            _repair_dts(packets)
            for packet in packets:
                packet.stream = stream
                out.mux(packet)
        return buf.getvalue()

    def decode(self, data: bytes, item: MediaItem) -> torch.Tensor:
        import av

        from lcodec.io.video import frame_to_rgb

        t, h, w = _check_video(item)
        with av.open(io.BytesIO(data)) as container:
            frames = [frame_to_rgb(f)[:, :h, :w] for f in container.decode(container.streams.video[0])]
        if len(frames) != t:
            raise ModelError(f"{self.name}: decoded {len(frames)} frames, the item has {t}")
        return torch.stack(frames, dim=1).unsqueeze(0).contiguous()  # (1, 3, T, H, W)


def _filtered(bsf, packets) -> list:
    """Encoded packets, through the bitstream filter when there is one."""
    return [f for p in packets for f in (bsf.filter(p) if bsf is not None else (p,))]


def _repair_dts(packets: list) -> None:
    """Give packets (in decode order) valid decode timestamps when the encoder's are not: libx265 in
    this PyAV build sometimes leaves the first dts of a short clip uninitialised (seen: -79010218395612
    for a 2-frame clip), which the MP4 muxer refuses. Valid ones (strictly increasing, none after
    its pts nor more frames before it than the clip has) are kept; otherwise dts_i = (the i-th
    smallest pts) - D, with D the largest reorder delay, the least shift for which every dts
    precedes its pts."""
    pts = [p.pts for p in packets]
    dts = [p.dts for p in packets]
    if None in pts or not packets:
        return
    if None not in dts and all(a < b for a, b in zip(dts, dts[1:])) and all(
            q - len(packets) <= d <= q for d, q in zip(dts, pts)):  # no reorder delay beyond the clip
        return
    order = sorted(pts)
    delay = max(s - q for s, q in zip(order, pts))
    for packet, s in zip(packets, order):
        packet.dts = s - delay


def _check_video(item: MediaItem) -> tuple[int, int, int]:
    """-> (frames, height, width) of a (1, 3, T, H, W) video item, or InputError."""
    x = item.x
    if x.dim() != 5 or x.shape[0] != 1 or x.shape[1] != 3:
        raise InputError(f"{item.name}: video must be (1, 3, T, H, W), got {tuple(x.shape)}")
    if min(x.shape[2:]) == 0:
        raise InputError(f"{item.name}: video item is empty, shape {tuple(x.shape)}")
    return int(x.shape[2]), int(x.shape[3]), int(x.shape[4])


_CRF_GRID = (45, 40, 36, 32, 28, 24, 20, 18)


LOW_DELAY_GOP = 32  # intra period of the low-delay settings (walloc-video's default --gop)
_LOW_DELAY = f"bframes=0:keyint={LOW_DELAY_GOP}:min-keyint={LOW_DELAY_GOP}:scenecut=0"


def _x264(name: str, low_delay: bool) -> EvalCodec:
    if available_encoder(("libx264",)) is None:
        raise ModelError(f"{name} needs FFmpeg's libx264 encoder, which this PyAV build lacks")
    extra = {"x264-params": _LOW_DELAY} if low_delay else {}
    settings = VideoEncoderSettings(
        "libx264", lambda q: {"crf": str(q), "preset": "medium", "threads": "1", **extra},
        bitstream_filter="filter_units=remove_types=6",  # SEI: x264's version/options text only
    )
    if low_delay:
        return PyAVVideoCodec(name, settings, _CRF_GRID,
                              f"H.264 (x264 via PyAV) low delay: preset medium, no B-frames, intra period "
                              f"{LOW_DELAY_GOP}, CRF, 1 thread; MP4, yuv420p BT.601")
    return PyAVVideoCodec(name, settings, _CRF_GRID,
                          "H.264 (x264 via PyAV) in MP4, yuv420p BT.601, preset medium, CRF, 1 thread")


def _x265(name: str, low_delay: bool) -> EvalCodec:
    if available_encoder(("libx265",)) is None:
        raise ModelError(f"{name} needs FFmpeg's libx265 encoder, which this PyAV build lacks")
    params = "log-level=error:info=0:pools=none:frame-threads=1"  # info=0: no options SEI
    if low_delay:
        params += ":" + _LOW_DELAY
    # min_side 64 (one CTU): smaller frames corrupt the heap inside x265 in this PyAV build, at random
    # (free(): invalid size, the process aborts; seen at 16x40 up to 48x48, any thread settings);
    # from 64 up no probe crashed (tests/eval/test_classical_av.py)
    settings = VideoEncoderSettings("libx265", lambda q: {"crf": str(q), "preset": "medium", "x265-params": params},
                                    min_side=64)
    if low_delay:
        return PyAVVideoCodec(name, settings, _CRF_GRID,
                              f"H.265/HEVC (x265 via PyAV) low delay: preset medium, no B-frames, intra period "
                              f"{LOW_DELAY_GOP}, CRF, 1 thread; MP4, yuv420p BT.601")
    return PyAVVideoCodec(name, settings, _CRF_GRID,
                          "H.265/HEVC (x265 via PyAV) in MP4, yuv420p BT.601, preset medium, CRF, 1 thread")


@register_classical("h264")
def _h264() -> EvalCodec:
    return _x264("h264", low_delay=False)


@register_classical("h264-ld")
def _h264_ld() -> EvalCodec:
    return _x264("h264-ld", low_delay=True)


@register_classical("h265")
def _h265() -> EvalCodec:
    return _x265("h265", low_delay=False)


@register_classical("h265-ld")
def _h265_ld() -> EvalCodec:
    return _x265("h265-ld", low_delay=True)


_AV1_ENCODERS: dict[str, Callable[[int], dict[str, str]]] = {
    "libsvtav1": lambda q: {"crf": str(q), "preset": "6", "svtav1-params": "lp=1"},
    "libaom-av1": lambda q: {"crf": str(q), "b": "0", "cpu-used": "6", "row-mt": "0", "threads": "1"},
}


@register_classical("av1")
def _av1() -> EvalCodec:
    encoder = available_encoder(tuple(_AV1_ENCODERS))
    if encoder is None:
        raise ModelError(f"av1 needs one of FFmpeg's encoders {', '.join(_AV1_ENCODERS)}; this PyAV build has none")
    if not (_has_decoder("libdav1d") or _has_decoder("libaom-av1")):
        raise ModelError("av1 needs a software AV1 decoder (libdav1d or libaom-av1); this PyAV build has none")
    settings = VideoEncoderSettings(encoder, _AV1_ENCODERS[encoder], min_side=8)
    preset = "preset 6" if encoder == "libsvtav1" else "cpu-used 6"
    return PyAVVideoCodec("av1", settings, (63, 56, 50, 44, 38, 32, 26, 20),
                          f"AV1 ({encoder} via PyAV) in MP4, yuv420p BT.601, {preset}, CRF, 1 thread")
