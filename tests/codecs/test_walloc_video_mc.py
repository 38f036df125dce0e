"""walloc-video-mc: the stream contract (round trip = the encoder's own reconstruction, random
access, determinism, golden bytes, damaged streams), the composition (an intra frame is
walloc-rgb-rd coding the frame) and what motion compensation is for (moving content is cheap)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lcodec.bitstream.container import read_container, write_container
from lcodec.codecs.gop import INTRA, PREDICTED, FrameIndex
from lcodec.errors import BitstreamError, InputError

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "tests" / "data" / "basketball_96x64_6f.y4m"
GOLDEN = ROOT / "tests" / "data" / "golden" / "walloc-video-mc.json"


@pytest.fixture(scope="module")
def video():
    import lcodec

    return lcodec.load("walloc-video-mc", 3)


def _u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().long()


def _frames(video, data: bytes) -> list[list[bytes]]:
    """Each frame's sub-sections, cut from the payload by the frame index."""
    c, index = video.parse(data)
    out, pos = [], 0
    for lengths in index.lengths:
        parts = []
        for n in lengths:
            parts.append(c.sections[1][pos : pos + n])
            pos += n
        out.append(parts)
    return out


def test_the_decoder_shows_what_the_encoder_reconstructed(video, basketball):
    """Frame by frame, the decoded frame is the encoder's reconstruction (the reference of the next
    frame): prediction + decoded residual - 128, with the residual decoded by rd's exact decoder."""
    data = video.compress(basketball, fps=50, gop=4)
    c, index = video.parse(data)
    assert c.geometry.shape == (1, 3, 6, 64, 96) and c.geometry.fps_num / c.geometry.fps_den == 50
    assert index.kinds == [INTRA, PREDICTED, PREDICTED, PREDICTED, INTRA, PREDICTED]
    x_hat = video.decompress(data)
    assert x_hat.shape == basketball.shape and x_hat.dtype == torch.float32
    prev = None
    for t in range(6):
        sections, prev = video.encode_frame(basketball[0, :, t], None if t % 4 == 0 else prev)
        assert torch.equal(_u8(x_hat[0, :, t]), prev.picture), t
        assert sections == _frames(video, data)[t], t


def test_a_predicted_frame_is_the_prediction_plus_rds_decoded_residual(video, basketball):
    """The composition, spelled out with the parts: motion field from the section, overlapped
    compensation from the decoded previous frame, rd's exact synthesis of the residual sections
    without its post-filter."""
    import lcodec
    from lcodec.models.motion import blocks_of, compensate_overlapped, half_pel_grid

    data = video.compress(basketball[:, :, :2], gop=4)
    frames = _frames(video, data)
    x_hat = _u8(video.decompress(data))
    rd = lcodec.load("walloc-rgb-rd", 3)
    mv = video.motion.decode(frames[1][0], blocks_of(64, 96, 32), None, "frame 1")
    prediction = compensate_overlapped(half_pel_grid(x_hat[0, :, 0]), mv, 32)
    residual_stream = write_container(replace(read_container(rd.compress(basketball[:, :, 1], restoration=False)),
                                              sections=tuple(frames[1][1:])))
    latents = rd.decompress_latents(residual_stream)[0]
    residual = _u8(rd.transform.crop(rd.exact_decoder()(latents, postfilter=False), (64, 96))[0])
    with_filter = _u8(rd.decompress(residual_stream)[0])
    assert not torch.equal(residual, with_filter)  # the post-filter would change the picture
    assert torch.equal(x_hat[0, :, 1], (prediction + residual - 128).clamp(0, 255))


def test_intra_frames_are_walloc_rgb_rd_coding_the_frame(video, basketball):
    """With --gop 1 each frame is an empty motion section, then rd's own entropy-model sections for
    that frame (as 8-bit RGB: frames are coded in 8 bits), and it decodes to rd's picture of it."""
    import lcodec

    rd = lcodec.load("walloc-rgb-rd", 3)
    data = video.compress(basketball, gop=1)
    _, index = video.parse(data)
    assert index.kinds == [INTRA] * 6
    x_hat = video.decompress(data)
    for t, sections in enumerate(_frames(video, data)):
        frame = _u8(basketball[:, :, t]).float() / 255
        own = rd.compress(frame, restoration=False)
        assert sections == [b"", *read_container(own).sections], t
        assert torch.equal(_u8(x_hat[:, :, t]), _u8(rd.decompress(own)))


def _moving(frames: int, step: tuple[int, int]) -> torch.Tensor:
    """A smooth texture panning by ``step`` pixels per frame (1, 3, T, 96, 128)."""
    g = torch.Generator().manual_seed(0)
    big = F.interpolate(torch.rand(1, 3, 40, 48, generator=g), size=(160, 192), mode="bicubic").clamp(0, 1)
    return torch.stack([big[0, :, 20 + t * step[0] : 116 + t * step[0], 20 + t * step[1] : 148 + t * step[1]]
                        for t in range(frames)], 1)[None]


def test_motion_makes_a_pan_cheap_and_no_worse(video):
    """The purpose: content that moves costs a small part of an intra frame, at no lower PSNR."""
    x = _moving(4, (2, 3))
    intra, mc = video.compress(x, gop=1), video.compress(x, gop=4)
    _, index = video.parse(mc)
    bits = [sum(ls) for ls in index.lengths]
    assert max(bits[1:]) < 0.5 * bits[0], bits

    def psnr(data):
        return float(-10 * torch.log10(((video.decompress(data) - x) ** 2).mean()))

    assert psnr(mc) > psnr(intra) - 0.3, (psnr(mc), psnr(intra))


def test_predicted_frames_cost_less_than_intra_frames_on_real_motion(video, basketball):
    gop1 = len(video.compress(basketball, gop=1))
    gop6 = len(video.compress(basketball, gop=6))
    assert gop6 < 0.8 * gop1, (gop6, gop1)


_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
import lcodec
from lcodec.io.video import read_video
x, fps = read_video(sys.argv[2])
codec = lcodec.load("walloc-video-mc", 3)
data = codec.compress(x.unsqueeze(0), fps=fps, gop=4)
print(hashlib.sha256(data).hexdigest(), hashlib.sha256(codec.decompress(data).numpy().tobytes()).hexdigest())
"""


def test_identical_bytes_and_frames_across_processes_and_threads(video, basketball):
    data = video.compress(basketball, fps=50, gop=4)
    here = f"{hashlib.sha256(data).hexdigest()} {hashlib.sha256(video.decompress(data).numpy().tobytes()).hexdigest()}"
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", _SCRIPT, str(threads), str(CLIP)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        assert out.stdout.strip() == here


def test_golden_bitstream(basketball, request):
    """sha256 of the streams the shipped weights write for the fixture basketball, and of their decoded
    8-bit frames, at three qualities."""
    import lcodec

    got = {}
    for q in (1, 3, 6):
        codec = lcodec.load("walloc-video-mc", q)
        data = codec.compress(basketball, fps=50, gop=4)
        got[f"walloc-video-mc-q{q}"] = hashlib.sha256(data).hexdigest()
        got[f"walloc-video-mc-q{q}-frames"] = hashlib.sha256(
            _u8(codec.decompress(data)).to(torch.uint8).numpy().tobytes()).hexdigest()
    if request.config.getoption("--regenerate-golden"):
        GOLDEN.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(GOLDEN.read_text())


def _resealed(video, data: bytes, frames: list[list[bytes]]) -> bytes:
    """The stream with its frames' sub-sections replaced, index and CRC rebuilt (a valid container)."""
    c, index = video.parse(data)
    index = FrameIndex(index.gop, index.kinds, [[len(s) for s in f] for f in frames])
    payload = b"".join(s for f in frames for s in f)
    return write_container(replace(c, sections=(index.to_bytes(), payload)))


def test_resealed_streams_with_lying_sections_are_refused(video, basketball):
    """Streams whose CRC is valid but whose content lies: an intra frame with a motion section, a
    motion section choosing a table that does not exist, a stream made for another codec."""
    data = video.compress(basketball[:, :, :3], gop=4)
    frames = _frames(video, data)
    with_motion = [[frames[1][0], *frames[0][1:]], *frames[1:]]
    with pytest.raises(BitstreamError, match="intra frame with a motion section"):
        video.decompress(_resealed(video, data, with_motion))
    bad_table = [frames[0], [b"\xff" + frames[1][0][1:], *frames[1][1:]], frames[2]]
    with pytest.raises(BitstreamError, match="frame 1: motion vector section"):
        video.decompress(_resealed(video, data, bad_table))
    import lcodec

    other = lcodec.load("walloc-video", 3)
    with pytest.raises(BitstreamError, match="walloc-video-mc"):
        other.decompress(data)


def test_a_frame_that_is_not_rgb_is_refused(video, basketball):
    """(The arguments every GOP codec refuses: tests/codecs/test_gop_codecs.py.)"""
    with pytest.raises(InputError, match=r"\(3, H, W\) frame"):
        video.encode_frame(basketball[0, :2, 0], None)
    _, state = video.encode_frame(basketball[0, :, 0, :32, :32], None)
    with pytest.raises(InputError, match="differs in size"):  # called directly, without compress's check
        video.encode_frame(basketball[0, :, 1], state)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_and_cpu_write_and_read_the_same_streams(video, basketball):
    """Motion and the exact synthesis run in integers on the CPU; the image codec's analysis may
    run on CUDA: a CUDA encoder writes the CPU encoder's bytes (or at least streams both decode
    to the same frames, since the decode of a given stream never depends on the device)."""
    import copy

    gpu = copy.deepcopy(video).cuda()
    here = video.compress(basketball, gop=4)
    there = gpu.compress(basketball.cuda(), gop=4)
    assert torch.equal(gpu.decompress(here).cpu(), video.decompress(here))
    assert torch.equal(gpu.decompress(there).cpu(), video.decompress(there))
