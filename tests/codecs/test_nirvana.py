"""nirvana-video: networks fitted per group of frames (transform lcodec.models.nirvana, entropy
lcodec.entropy.weights).

Contracts checked: the decoder rebuilds exactly the integer weights the encoder fitted (key groups
and deltas), in this process and in a fresh one; the decoded frames are the encoder's network's
frames; the fit lowers the distortion, lambda orders the rates and a static clip's later groups
cost a fraction of the first (warm start + deltas); decoding can start at a key group; hostile
streams and bad inputs are refused; the CLI wires the budget and leaves nothing behind on failure.
"""
from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lcodec
from lcodec.bitstream.container import read_container, write_container
from lcodec.codecs.nirvana import DELTA, KEY, GroupIndex, NirvanaCodec
from lcodec.errors import BitstreamError, InputError
from lcodec.models.nirvana import NirvanaConfig, NirvanaNet

SMALL = NirvanaConfig(width=32, feat=4, head=4)


def _codec(lmbda: float = 0.005, cfg: NirvanaConfig = SMALL) -> NirvanaCodec:
    c = NirvanaCodec(cfg, name="nirvana-video", quality=2, lmbda=lmbda)
    c.weights_hash = hashlib.sha256(b"test").digest()
    return c


def _clip(t: int = 7, h: int = 20, w: int = 28, static: bool = False, seed: int = 0) -> torch.Tensor:
    """A smooth moving pattern (something a fit learns in a few dozen steps), (1, 3, T, H, W)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    frames = []
    for k in range(t):
        s = 0 if static else 0.05 * k
        frames.append(torch.stack([yy, (xx + s) % 1, 0.5 + 0.3 * torch.sin(6 * (xx + yy + s))]))
    x = torch.stack(frames, 1) * 0.8 + 0.1 + 0.01 * torch.rand(3, t, h, w, generator=g)
    return x.clamp(0, 1).unsqueeze(0)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(torch.mean((a - b) ** 2).item())


@pytest.fixture(scope="module")
def coded():
    """A 7-frame clip (groups of 3, 3, 1) with a key group at frame 6 (gop 6): stream, the
    integers the encoder ended each group with, and the frames its network gave."""
    c, x = _codec(), _clip()
    ints, frames = [], []
    logs = []

    def log(stats):
        ints.append([t.integers().clone() for t in c.net.tensors])
        with torch.no_grad():
            frames.append(c.net(c.padded(*x.shape[-2:]))[: stats["frames"], :, : x.shape[-2], : x.shape[-1]].clamp(0, 1))
        logs.append(stats)

    data = c.compress(x, fps=30, gop=6, steps=30, log=log)
    return c, x, data, ints, torch.cat(frames), logs


def test_stream_layout_groups_and_key_groups(coded):
    c, x, data, _, _, logs = coded
    head = read_container(data)
    assert head.modality == "video" and head.geometry.shape == (1, 3, 7, 20, 28)
    assert head.geometry.fps_num / head.geometry.fps_den == 30
    index = GroupIndex.from_bytes(head.sections[0], 7, 3)
    assert index.kinds == [KEY, DELTA, KEY]  # frame 6 starts a key group (gop 6)
    assert [l["kind"] for l in logs] == ["key", "delta", "key"] and [l["frames"] for l in logs] == [3, 3, 1]
    assert index.lengths == [l["bytes"] for l in logs] and sum(index.lengths) == len(head.sections[2])


def test_decoder_rebuilds_the_encoders_integers_and_frames(coded):
    c, x, data, ints, frames, _ = coded
    decoded = list(c.iter_integers(data))
    assert [g for g, _ in decoded] == [0, 1, 2]
    for (_, got), want in zip(decoded, ints):
        assert all(torch.equal(a, b) for a, b in zip(got, want))
    c.exact_decode = False  # the float decoder runs the encoder's network
    y = c.decompress(data)
    assert y.shape == x.shape
    assert torch.allclose(y[0].permute(1, 0, 2, 3), frames, atol=1e-6)
    c.exact_decode = True  # the fixed-point one: within a small fraction of an 8-bit level
    y = c.decompress(data)
    assert float((y[0].permute(1, 0, 2, 3) - frames).abs().max()) < 0.25 / 255
    flat = x.mean(dim=(2, 3, 4), keepdim=True).expand_as(x)
    assert _psnr(y, x) > _psnr(flat, x) + 2  # a 30-step fit already beats each channel's mean colour


def test_decoding_starts_at_a_key_group_and_spans_match(coded):
    c, x, data, _, _, _ = coded
    full = c.decompress(data)
    assert torch.equal(c.decompress(data, frames=(4, 7)), full[:, :, 4:7])
    assert torch.equal(c.decompress(data, frames=(6, 7)), full[:, :, 6:7])
    assert [g for g, _ in c.iter_integers(data, start=2)] == [2]  # a key group: nothing before it decoded
    with pytest.raises(InputError, match="outside"):
        c.decompress(data, frames=(3, 9))


def _integer_digest(name: str, data: bytes) -> str:
    code = ("import sys, hashlib, torch, lcodec\n"
            "c = lcodec.load('nirvana-video', int(sys.argv[1]))\n"
            "h = hashlib.sha256()\n"
            "for g, ints in c.iter_integers(open(sys.argv[2], 'rb').read()):\n"
            "    for t in ints: h.update(t.numpy().astype('<i8').tobytes())\n"
            "print(h.hexdigest())\n")
    return code


def test_shipped_codec_weights_decode_identically_in_another_process(tmp_path):
    """Decoded weights identical across processes (and thread counts): the range coder sees only
    integers from the stream."""
    c = lcodec.load("nirvana-video", 1)
    x = _clip(t=4, h=16, w=16)
    data = c.compress(x, steps=3)
    path = tmp_path / "s.bin"
    path.write_bytes(data)
    h = hashlib.sha256()
    for _, ints in c.iter_integers(data):
        for t in ints:
            h.update(t.numpy().astype("<i8").tobytes())
    code = _integer_digest("nirvana-video", data)
    for threads in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code, "1", str(path)], capture_output=True, text=True,
                             env={"OMP_NUM_THREADS": threads, "PATH": "/usr/bin:/bin"}, check=True)
        assert out.stdout.strip() == h.hexdigest()


def test_fitting_lowers_distortion_and_lambda_orders_rates():
    x = _clip(t=3, h=24, w=24)
    short = _codec()
    p_short = _psnr(short.decompress(short.compress(x, steps=2)), x)
    long_ = _codec()
    p_long = _psnr(long_.decompress(long_.compress(x, steps=60)), x)
    assert p_long > p_short + 3
    sizes = [len(_codec(lmbda).compress(x, steps=60)) for lmbda in (1e-4, 0.05)]
    assert sizes[1] < 0.8 * sizes[0]


def test_static_clip_later_groups_cost_a_fraction_of_the_first():
    """Warm start + deltas: on a still clip the second group's network barely changes."""
    c = _codec(lmbda=0.002)
    logs = []
    c.compress(_clip(t=6, static=True), steps=40, log=logs.append)
    assert [l["kind"] for l in logs] == ["key", "delta"]
    assert logs[1]["bytes"] < 0.5 * logs[0]["bytes"]


def test_first_group_learns_the_steps_later_groups_keep_them():
    c = _codec()
    steps = []
    c.compress(_clip(t=6), steps=10, log=lambda s: steps.append([t.step.item() for t in c.net.tensors]))
    assert steps[0] == steps[1]
    assert steps[0] != [t.step.item() for t in NirvanaNet(SMALL).tensors]


def test_bad_inputs_are_refused():
    c = _codec()
    with pytest.raises(InputError, match="no frames"):
        c.compress_frames(iter([]), steps=1)
    with pytest.raises(InputError, match="frame 1 is"):
        c.compress_frames([torch.rand(3, 8, 8), torch.rand(3, 8, 10)], steps=1)
    with pytest.raises(InputError, match="RGB frame"):
        c.compress_frames([torch.rand(1, 8, 8)], steps=1)
    with pytest.raises(InputError, match="finite"):
        c.compress_frames([torch.full((3, 8, 8), float("nan"))], steps=1)
    with pytest.raises(InputError, match="gop"):
        c.compress(_clip(t=2), gop=0, steps=1)
    with pytest.raises(InputError, match="preset"):
        c.compress(_clip(t=2), preset="turbo")
    with pytest.raises(InputError, match="steps"):
        c.compress(_clip(t=2), steps=0)


def test_hostile_streams_are_refused(coded):
    c, _, data, _, _, _ = coded
    head = read_container(data)

    def resealed(**changes):
        fields = {f: getattr(head, f) for f in ("codec", "quality", "weights_hash", "coder_id", "coder_version",
                                                 "modality", "geometry", "sections")}
        fields.update(changes)
        return write_container(type(head)(**fields))

    index = bytearray(head.sections[0])
    index[4:8] = (0).to_bytes(4, "little")  # groups of 0 frames
    steps = bytearray(head.sections[1])
    steps[0:4] = b"\x00\x00\xc0\x7f"  # NaN step
    for bad, match in ((resealed(sections=head.sections[:2]), "3 sections"),
                       (resealed(sections=(bytes(index), *head.sections[1:])), "groups of"),
                       (resealed(sections=(head.sections[0], bytes(steps), head.sections[2])), "steps"),
                       (resealed(sections=(*head.sections[:2], head.sections[2][:-4])), "length"),
                       (resealed(weights_hash=bytes(32)), "network layout"),
                       (resealed(quality=3), "q3"),
                       (data[:-9], "truncated")):
        with pytest.raises(BitstreamError, match=match):
            c.decompress(bad)


def test_cli_fits_with_the_budget_flags_and_info_lists_the_groups(tmp_path, capsys):
    from lcodec.io.video import read_video, y4m_writer
    from tests.cli.test_cli_first_hour import _info, run

    clip = tmp_path / "c.y4m"
    with open(clip, "wb") as f:
        y4m_writer(iter(_clip(t=4, h=16, w=24)[0].unbind(1)), 24.0)(f)
    out = tmp_path / "c.bin"
    assert run("encode", clip, out, "--codec", "nirvana-video", "--quality", "1", "--steps", "3", "--gop", "3") == 0
    info = _info(capsys, out)
    assert (info["codec"], info["frames"], info["group"], info["gop"], info["key_groups"]) == ("nirvana-video", 4, 3, 3, 2)
    assert len(info["bits_per_group"]) == 2 and sum(info["bits_per_group"]) < 8 * info["total_bytes"]
    assert run("decode", out, tmp_path / "d.y4m") == 0
    y, fps = read_video(tmp_path / "d.y4m")
    assert y.shape == (3, 4, 16, 24) and fps == 24
    # an interrupted fit (Ctrl-C) ends with an error and leaves no output file behind
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    mp = pytest.MonkeyPatch()
    mp.setattr(NirvanaCodec, "fit", interrupted)
    try:
        assert run("encode", clip, tmp_path / "e.bin", "--codec", "nirvana-video", "--steps", "3") != 0
    finally:
        mp.undo()
    assert not (tmp_path / "e.bin").exists() and not list(tmp_path.glob("e.bin*"))


def test_decoder_cost_matches_a_flop_count():
    """macs_per_pixel against torch's own count of the network's multiply-adds (flops / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = NirvanaNet(NirvanaConfig())
    h, w = 48, 64
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net((h, w))
    assert counter.get_total_flops() / 2 / (net.cfg.group * h * w) == pytest.approx(net.macs_per_pixel(h, w), rel=1e-6)


# ------------------------------------------------------------------ exact decode (issue 29)
GOLDEN_STREAM = Path(__file__).resolve().parents[1] / "data" / "golden" / "nirvana-video-q1.bin"
# sha256 of the uint8 frames that GOLDEN_STREAM decodes to with the exact decoder (any machine)
GOLDEN_FRAMES_SHA256 = "9d71198addcb21c16a636ca33396621b7e6f6336b42bcaabdda658a44fe60184"

_DECODE = ("import sys, hashlib, torch\n"
           "torch.set_num_threads(int(sys.argv[1]))\n"
           "import lcodec\n"
           "c = lcodec.load('nirvana-video', 1)\n"
           "y = c.decompress(open(sys.argv[2], 'rb').read())\n"
           "print(hashlib.sha256(torch.round(y * 255).to(torch.uint8).numpy().tobytes()).hexdigest())\n")


def test_exact_decode_gives_the_same_frames_with_1_and_2_threads_in_separate_processes():
    """A committed stream (4 frames of 20x28, two groups) decodes to the same uint8 frames with 1
    and 2 threads, and to the pinned hash (so on every machine)."""
    got = {t: subprocess.run([sys.executable, "-c", _DECODE, t, str(GOLDEN_STREAM)], capture_output=True,
                             text=True, check=True).stdout.strip() for t in ("1", "2")}
    assert got["1"] == got["2"] == GOLDEN_FRAMES_SHA256


def test_exact_sine_is_sine_to_a_few_steps_and_its_table_is_pinned():
    from lcodec.models.exact_nirvana import exact_sin, sine_table

    a = torch.cat([torch.arange(-40000, 40000, 7), torch.tensor([2**25, -2**25, 2**24 + 12345])]).double()
    want = torch.sin(a / 2**14)  # float64 reference
    err = (exact_sin(a) / 2**14 - want).abs().max()
    assert float(err) < 8e-5  # phase within pi / 2**16 (4.8e-5) of the true one, value rounded to 2**-14 (3.1e-5)
    assert hashlib.sha256(sine_table().numpy().tobytes()).hexdigest() == (
        "6cd653e32a6a2faacc1630784f3b0b2655f8d610a8e52b2c41ebf0fbe50af65b")

