"""Video I/O: raw Y4M (parsed here with numpy) and compressed containers through PyAV.

Policy: every clip is decoded to RGB float32 in [0, 1] with shape (3, T, H, W),
plus its frame rate. Y'CbCr is converted to RGB with one published matrix, here,
so that every path (Y4M reader, MP4 reader, the classical video adapters) agrees:

- BT.601 (ITU-R BT.601-7) unless a decoded frame is tagged BT.709; limited range
  (Y' in [16, 235], Cb/Cr in [16, 240]) unless tagged full range.
- 4:2:0 chroma is sited at the centre of each 2x2 luma block (MPEG-1/JPEG siting,
  Y4M's ``C420jpeg`` and the default): it is upsampled bilinearly and downsampled
  by a 2x2 box average, which are the matching filters for that siting.
  ``C420mpeg2``/``C420paldv`` clips (other sitings) are read the same way, so their
  chroma is off by a quarter chroma sample.

Y4M support: 8-bit ``C420*`` (the default when the tag is absent) and ``C444``;
interlacing tags are ignored (frames are read as progressive pictures).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from lcodec.errors import InputError

__all__ = [
    "read_video",
    "iter_video",
    "video_fps",
    "frame_files",
    "video_writer",
    "y4m_writer",
    "ffv1_writer",
    "VIDEO_OUTPUT_SUFFIXES",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "rgb_to_yuv420",
    "yuv420_to_rgb",
    "frame_to_rgb",
    "VIDEO_SUFFIXES",
]

VIDEO_SUFFIXES = (".y4m", ".mp4", ".mkv", ".mov", ".webm", ".avi")

_KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}
_Y4M_MAGIC = b"YUV4MPEG2"
_FRAME_MAGIC = b"FRAME"


def _forward_matrix(standard: str) -> torch.Tensor:
    """Rows give Y, Pb, Pr from R'G'B' in [0, 1]; Y in [0, 1], Pb/Pr in [-0.5, 0.5]."""
    if standard not in _KR_KB:
        raise InputError(f"unknown colour standard {standard!r}; use one of {sorted(_KR_KB)}")
    kr, kb = _KR_KB[standard]
    kg = 1.0 - kr - kb
    return torch.tensor(
        [
            [kr, kg, kb],
            [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
            [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)],
        ],
        dtype=torch.float64,
    )


def _scale_offset(full_range: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit code value = scale * (Y, Pb, Pr) + offset."""
    scale = (255.0, 255.0, 255.0) if full_range else (219.0, 224.0, 224.0)
    offset = (0.0, 128.0, 128.0) if full_range else (16.0, 128.0, 128.0)
    return torch.tensor(scale, dtype=torch.float64), torch.tensor(offset, dtype=torch.float64)


def rgb_to_ycbcr(rgb: torch.Tensor, dim: int, standard: str = "bt601", full_range: bool = False) -> torch.Tensor:
    """R'G'B' in [0, 1] -> Y'CbCr as unrounded 8-bit code values (float), along channel ``dim``."""
    if rgb.shape[dim] != 3:
        raise InputError(f"expected 3 colour channels along dim {dim}, got shape {tuple(rgb.shape)}")
    scale, offset = _scale_offset(full_range)
    matrix = _forward_matrix(standard) * scale[:, None]
    moved = rgb.movedim(dim, -1).double()
    out = moved @ matrix.T.to(moved.device) + offset.to(moved.device)
    return out.movedim(-1, dim).to(rgb.dtype if rgb.is_floating_point() else torch.float32)


def ycbcr_to_rgb(ycbcr: torch.Tensor, dim: int, standard: str = "bt601", full_range: bool = False) -> torch.Tensor:
    """Y'CbCr 8-bit code values (any float) -> R'G'B' float32 clamped to [0, 1], along channel ``dim``."""
    if ycbcr.shape[dim] != 3:
        raise InputError(f"expected 3 colour channels along dim {dim}, got shape {tuple(ycbcr.shape)}")
    scale, offset = _scale_offset(full_range)
    inverse = torch.linalg.inv(_forward_matrix(standard) * scale[:, None])
    moved = ycbcr.movedim(dim, -1).double() - offset.to(ycbcr.device)
    out = moved @ inverse.T.to(ycbcr.device)
    return out.movedim(-1, dim).clamp(0, 1).float()


def rgb_to_yuv420(rgb: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3, T, H, W) RGB in [0, 1], H and W even -> uint8 planes Y (T, H, W), Cb and Cr (T, H/2, W/2).

    BT.601 limited range; chroma is a 2x2 box average (centre siting), then rounded.
    """
    if rgb.dim() != 4 or rgb.shape[0] != 3:
        raise InputError(f"expected (3, T, H, W) RGB, got shape {tuple(rgb.shape)}")
    if rgb.shape[-1] % 2 or rgb.shape[-2] % 2:
        raise InputError(f"4:2:0 needs even sides, got {rgb.shape[-2]}x{rgb.shape[-1]}; pad first")
    ycc = rgb_to_ycbcr(rgb.detach().cpu().clamp(0, 1).double(), dim=0)  # (3, T, H, W)
    chroma = F.avg_pool2d(ycc[1:].transpose(0, 1), kernel_size=2)  # (T, 2, H/2, W/2)

    def to_u8(a: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(a.round().clamp(0, 255).to(torch.uint8).numpy())

    return to_u8(ycc[0]), to_u8(chroma[:, 0]), to_u8(chroma[:, 1])


def yuv420_to_rgb(
    y: np.ndarray, cb: np.ndarray, cr: np.ndarray, standard: str = "bt601", full_range: bool = False
) -> torch.Tensor:
    """uint8 planes Y (T, H, W), Cb and Cr (T, ceil(H/2), ceil(W/2)) -> (3, T, H, W) RGB in [0, 1].

    Chroma is upsampled bilinearly by exactly 2 (centre siting), then cropped to H x W.
    """
    t, h, w = y.shape
    if cb.shape != cr.shape or cb.shape != (t, (h + 1) // 2, (w + 1) // 2):
        raise InputError(f"chroma planes {cb.shape}/{cr.shape} do not match a 4:2:0 luma plane {y.shape}")
    chroma = torch.from_numpy(np.stack([cb, cr], axis=1)).double()  # (T, 2, h2, w2)
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)[..., :h, :w]
    ycc = torch.cat([torch.from_numpy(y).double().unsqueeze(0), chroma.transpose(0, 1)], dim=0)  # (3, T, H, W)
    return ycbcr_to_rgb(ycc, dim=0, standard=standard, full_range=full_range)


# ------------------------------------------------------------------------------ Y4M
def _parse_y4m_header(line: bytes, path: Path) -> tuple[int, int, float, str, bool]:
    """-> (width, height, fps, chroma tag, full_range) from the stream header line."""
    fields = line.decode("ascii", errors="replace").split()
    if not fields or fields[0].encode() != _Y4M_MAGIC:
        raise InputError(f"{path}: not a YUV4MPEG2 file (header {line[:20]!r})")
    width = height = 0
    fps, chroma, full_range = 0.0, "420jpeg", False
    try:
        for field in fields[1:]:
            key, value = field[0], field[1:]
            if key == "W":
                width = int(value)
            elif key == "H":
                height = int(value)
            elif key == "F":
                num, _, den = value.partition(":")
                fps = float(Fraction(int(num), int(den or 1))) if int(den or 1) else 0.0
            elif key == "C":
                chroma = value
            elif key == "X" and value.upper() == "COLORRANGE=FULL":
                full_range = True
    except ValueError:
        raise InputError(f"{path}: malformed Y4M header {line!r}") from None
    if width <= 0 or height <= 0:
        raise InputError(f"{path}: Y4M header has no valid W/H ({line!r})")
    if not (chroma.startswith("420") and chroma[3:] in ("", "jpeg", "mpeg2", "paldv")) and chroma != "444":
        raise InputError(f"{path}: Y4M chroma format C{chroma} is not supported (8-bit C420* or C444 only)")
    return width, height, fps, chroma, full_range


def _y4m_frames(path: Path, max_frames: int | None) -> Iterator[torch.Tensor]:
    """Frames of a Y4M file one at a time, each (3, H, W) RGB float32."""
    with open(path, "rb") as f:
        header = f.readline(4096)
        if not header.endswith(b"\n"):
            raise InputError(f"{path}: Y4M header line is missing or too long")
        width, height, _, chroma, full_range = _parse_y4m_header(header.rstrip(b"\n"), path)
        if chroma == "444":
            cw, ch = width, height
        else:
            cw, ch = (width + 1) // 2, (height + 1) // 2
        frame_bytes = width * height + 2 * cw * ch
        count = 0
        while max_frames is None or count < max_frames:
            marker = f.readline(4096)
            if not marker:
                break
            if not marker.startswith(_FRAME_MAGIC):
                raise InputError(f"{path}: expected a FRAME marker after frame {count}, got {marker[:16]!r}")
            raw = _read_exact(f, frame_bytes, path, count)
            y = raw[: width * height].reshape(1, height, width)
            cb = raw[width * height : width * height + cw * ch].reshape(1, ch, cw)
            cr = raw[width * height + cw * ch :].reshape(1, ch, cw)
            if chroma == "444":
                ycc = torch.from_numpy(np.stack([y, cb, cr])).double()
                yield ycbcr_to_rgb(ycc, dim=0, full_range=full_range)[:, 0]
            else:
                yield yuv420_to_rgb(y, cb, cr, full_range=full_range)[:, 0]
            count += 1
        if count == 0:
            raise InputError(f"{path}: Y4M file has no frames")


def _y4m_fps(path: Path) -> float:
    with open(path, "rb") as f:
        header = f.readline(4096)
    if not header.endswith(b"\n"):
        raise InputError(f"{path}: Y4M header line is missing or too long")
    return _parse_y4m_header(header.rstrip(b"\n"), path)[2]


def _read_exact(f: BinaryIO, n: int, path: Path, index: int) -> np.ndarray:
    data = f.read(n)
    if len(data) != n:
        raise InputError(f"{path}: frame {index} is truncated ({len(data)} of {n} bytes)")
    return np.frombuffer(bytearray(data), dtype=np.uint8)


# --------------------------------------------------------------------------- PyAV
def _plane_array(plane) -> np.ndarray:
    """One PyAV frame plane -> (height, width) uint8, dropping the line padding."""
    a = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return a[:, : plane.width]


def frame_to_rgb(frame) -> torch.Tensor:
    """One decoded PyAV VideoFrame -> (3, H, W) RGB in [0, 1] (the module's colour policy)."""
    name = frame.format.name
    if name in ("yuv420p", "yuvj420p"):
        y, cb, cr = (_plane_array(p)[None] for p in frame.planes)
        standard = "bt709" if frame.colorspace == 1 else "bt601"  # 1 = AVCOL_SPC_BT709
        full_range = name == "yuvj420p" or frame.color_range == 2  # 2 = AVCOL_RANGE_JPEG
        return yuv420_to_rgb(y, cb, cr, standard=standard, full_range=full_range)[:, 0]
    rgb = frame.to_ndarray(format="rgb24")
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def _pyav_fps(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            return float(rate) if rate else 0.0
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{path}: not a readable video ({exc})") from None


def _pyav_frames(path: Path, max_frames: int | None) -> Iterator[torch.Tensor]:
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{path}: not a readable video ({exc})") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        count = 0
        try:
            for frame in container.decode(container.streams.video[0]):
                yield frame_to_rgb(frame)
                count += 1
                if max_frames is not None and count >= max_frames:
                    break
        except av.FFmpegError as exc:
            raise InputError(f"{path}: decoding failed after {count} frames ({exc})") from None
    if count == 0:
        raise InputError(f"{path}: video stream has no decodable frames")


def _png_frames(path: Path, max_frames: int | None) -> Iterator[torch.Tensor]:
    from lcodec.io.image import read_image_info

    files = frame_files(path)
    size = None
    for i, file in enumerate(files[:max_frames]):
        x, _ = read_image_info(file)
        if size is None:
            size = tuple(x.shape[-2:])
        elif tuple(x.shape[-2:]) != size:
            raise InputError(f"{file}: frame {i} is {x.shape[-1]}x{x.shape[-2]}, the first frame "
                             f"{size[1]}x{size[0]}; every frame of a folder must have one size")
        yield x


def frame_files(path: Path) -> list[Path]:
    """The PNG frames of a folder, in name order (refused if there are none)."""
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise InputError(f"{path}: folder has no .png frames")
    return files


def _check_source(path: Path, max_frames: int | None) -> str:
    """-> "y4m" | "pyav" | "png" for a readable source, or InputError."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be >= 1 or None, got {max_frames}")
    if path.is_dir():
        return "png"
    suffix = path.suffix.lower()
    if suffix == ".y4m":
        return "y4m"
    if suffix in VIDEO_SUFFIXES:
        return "pyav"
    raise InputError(f"{path}: unsupported video suffix {path.suffix!r}; use one of {', '.join(VIDEO_SUFFIXES)} "
                     "or a folder of PNG frames")


def iter_video(path: str | Path, max_frames: int | None = None) -> Iterator[torch.Tensor]:
    """The frames of a clip one at a time, each (3, H, W) RGB float32 in [0, 1]: memory holds one
    frame (plus the demuxer's buffers), whatever the clip's length. ``path``: a ``.y4m`` file, a
    file PyAV reads (``VIDEO_SUFFIXES``) or a folder of PNG frames (name order)."""
    path = Path(path)
    kind = _check_source(path, max_frames)
    if kind == "y4m":
        return _y4m_frames(path, max_frames)
    if kind == "pyav":
        return _pyav_frames(path, max_frames)
    return _png_frames(path, max_frames)


def video_fps(path: str | Path, default: float = 25.0) -> float:
    """The clip's frame rate (``default`` for a PNG folder or a file that declares none)."""
    path = Path(path)
    kind = _check_source(path, None)
    fps = _y4m_fps(path) if kind == "y4m" else _pyav_fps(path) if kind == "pyav" else 0.0
    return fps if fps > 0 else default


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[torch.Tensor, float]:
    """Read a whole clip -> ((3, T, H, W) float32 RGB in [0, 1], frames per second); ``iter_video``
    streams it instead. ``.y4m`` is parsed directly; other suffixes in ``VIDEO_SUFFIXES`` go through
    PyAV; a folder is read as PNG frames (25 fps). ``max_frames`` keeps the first frames only (and
    reads no further)."""
    frames = list(iter_video(path, max_frames))
    return torch.stack(frames, dim=1), video_fps(path, default=0.0 if Path(path).is_file() else 25.0)


# ------------------------------------------------------------------------- writing
VIDEO_OUTPUT_SUFFIXES = (".y4m", ".mkv")


def _even_planes(frame: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3, H, W) RGB -> 4:2:0 planes Y (H, W), Cb/Cr (ceil(H/2), ceil(W/2)); odd sides are padded by
    replicating the last row/column for the chroma average (as Y4M and FFmpeg size odd frames)."""
    h, w = frame.shape[-2:]
    padded = F.pad(frame[None], (0, w % 2, 0, h % 2), mode="replicate")[0] if (h % 2 or w % 2) else frame
    y, cb, cr = rgb_to_yuv420(padded[:, None])
    return y[0, :h, :w], cb[0], cr[0]


def y4m_writer(frames: Iterable[torch.Tensor], fps: float) -> Callable[[BinaryIO], None]:
    """-> ``fill(f)`` writing ``frames`` ((3, H, W) RGB in [0, 1], one at a time) to ``f`` as Y4M
    4:2:0 8-bit (C420jpeg, BT.601 limited range: what ``read_video`` reads back)."""
    rate = Fraction(fps if fps > 0 else 25.0).limit_denominator(1001000)

    def fill(f: BinaryIO) -> None:
        for i, frame in enumerate(frames):
            h, w = frame.shape[-2:]
            if i == 0:
                f.write(f"YUV4MPEG2 W{w} H{h} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode())
            f.write(_FRAME_MAGIC + b"\n")
            for plane in _even_planes(frame):
                f.write(plane.tobytes())

    return fill


def ffv1_writer(frames: Iterable[torch.Tensor], fps: float) -> Callable[[BinaryIO], None]:
    """-> ``fill(f)`` writing ``frames`` to ``f`` as Matroska FFV1, RGB 8-bit (bgr0): lossless for
    the decoded frames rounded to 8 bits."""
    import av

    rate = Fraction(fps if fps > 0 else 25.0).limit_denominator(100000)

    def fill(f: BinaryIO) -> None:
        with av.open(f, "w", format="matroska") as out:
            stream = None
            for i, frame in enumerate(frames):
                rgb = (frame.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
                if stream is None:
                    stream = out.add_stream("ffv1", rate=rate)
                    stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "bgr0"
                vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
                vf.pts = i
                for packet in stream.encode(vf):
                    out.mux(packet)
            if stream is not None:
                for packet in stream.encode(None):
                    out.mux(packet)

    return fill


def video_writer(path: Path, frames: Iterable[torch.Tensor], fps: float) -> Callable[[BinaryIO], None]:
    """The writer ``path``'s suffix picks (``VIDEO_OUTPUT_SUFFIXES``), or InputError."""
    suffix = Path(path).suffix.lower()
    if suffix == ".y4m":
        return y4m_writer(frames, fps)
    if suffix == ".mkv":
        return ffv1_writer(frames, fps)
    raise InputError(f"{path}: write video as {' or '.join(VIDEO_OUTPUT_SUFFIXES)} (FFV1, lossless) "
                     f"or into a folder of PNG frames (an output name without a suffix), not {Path(path).suffix!r}")
