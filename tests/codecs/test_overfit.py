"""overfit-rgb: the overfitted image codec (transform lcodec.models.overfit, entropy lcodec.entropy.arm).

Contracts checked: the integer upsampler is bilinear x2 (half-pixel, edge replicate) times 16, the
ARM and the weight coder round-trip any integers (odd sizes, escapes), the decoder reproduces the
encoder's fitted picture exactly, decoding is identical across thread counts, fitting lowers the
distortion and lambda orders the rates, hostile streams are refused, and the CLI wires the budget.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lcodec
from lcodec.bitstream.coder import ChunkDecoder, decode_symbols, encode_chunks, encode_symbols
from lcodec.bitstream.container import read_container, write_container
from lcodec.codecs.overfit import OverfitCodec
from lcodec.entropy.arm import ArmEntropyModel, decode_integer_params, encode_integer_params
from lcodec.errors import BitstreamError, InputError
from lcodec.models.overfit import FRAC, OverfitSynthesis, level_sizes, upsample2

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "overfit-rgb-q4.bin"
# sha256 of the decoded 8-bit pixels of GOLDEN (exact integer decoder: the same on every machine)
GOLDEN_PIXELS = "342d96d837c714e7c66998544e1e18a710b4ad212fea3b08302a96b21485693c"


@pytest.fixture(scope="module")
def codec() -> OverfitCodec:
    return lcodec.load("overfit-rgb", 4)


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth test picture with an edge (something a fit can learn in a few dozen steps)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([yy, xx, (xx > 0.5).float() * 0.6 + 0.2])
    return (base * 0.8 + 0.1 + 0.02 * torch.rand(3, h, w, generator=g)).clamp(0, 1).unsqueeze(0)


@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (6, 7), (9, 4)])
def test_upsample2_is_bilinear_times_16(h, w):
    a = torch.randint(-50, 50, (1, 1, h, w))
    ref = F.interpolate(a.double(), scale_factor=2, mode="bilinear", align_corners=False)
    out = upsample2(a, (2 * h, 2 * w))
    assert out.dtype == torch.int64
    assert torch.equal(out.double(), ref * 16)
    assert tuple(upsample2(a, (2 * h - 1, 2 * w)).shape[-2:]) == (2 * h - 1, 2 * w)  # odd sizes crop


def test_stack_exact_matches_float_path_to_its_rounding():
    t = OverfitSynthesis()
    h, w = 13, 21
    grids = [torch.randint(-20, 21, (1, 1, *s)) for s in level_sizes(h, w, t.cfg.levels)]
    exact = t.stack_exact(grids, (h, w)).double()
    real = t.stack([g.double() for g in grids], (h, w))  # units of 2**-FRAC, unrounded
    assert (exact - real).abs().max() <= 0.5
    assert not torch.equal(exact, torch.zeros_like(exact))
    assert exact.shape == (1, t.cfg.levels, h, w) and FRAC == 8


def test_chunks_roundtrip_and_one_chunk_is_encode_symbols(codec):
    tables = codec.entropy.tables
    rng = np.random.default_rng(0)
    chunks = [(rng.integers(-30, 31, n), rng.integers(0, tables.num_tables, n)) for n in (5, 0, 17, 3)]
    chunks.append((np.array([10**6, -(10**6)]), np.array([0, 3])))  # escapes
    data = encode_chunks(chunks, tables)
    dec = ChunkDecoder(data, tables)
    for s, i in chunks:
        assert np.array_equal(dec.next(i), s)
    s, i = chunks[2]
    assert encode_chunks([(s, i)], tables) == encode_symbols(s, i, tables)
    assert np.array_equal(decode_symbols(encode_symbols(s, i, tables), i, tables), s)


def test_integer_params_roundtrip_with_large_values(codec):
    tables = codec.entropy.tables
    g = torch.Generator().manual_seed(1)
    tensors = [torch.randint(-300, 300, (4, 3, 3, 3), generator=g), torch.tensor([2**22, -(2**22) + 1, 0]),
               torch.zeros(2, 2, dtype=torch.int64)]
    data = encode_integer_params(tensors, tables)
    back = decode_integer_params(data, [tuple(t.shape) for t in tensors], tables)
    assert all(torch.equal(a, b) for a, b in zip(tensors, back))
    with pytest.raises(BitstreamError):
        decode_integer_params(data[:1], [tuple(t.shape) for t in tensors], tables)


@pytest.mark.parametrize("h,w", [(1, 1), (3, 5), (17, 9)])
def test_arm_roundtrip_random_weights(codec, h, w):
    arm = ArmEntropyModel(codec.entropy.cfg, 4)
    arm.tables = codec.entropy.tables
    with torch.no_grad():
        for layer in arm.net.layers:
            layer.weight.normal_(0, 0.3)
            layer.bias.normal_(0, 2)
    g = torch.Generator().manual_seed(h * w)
    grids = [torch.randint(-40, 41, (1, 1, *s), generator=g) for s in level_sizes(h, w, 4)]
    data = arm.encode(grids)
    back = arm.decode(data, (h, w))
    assert all(torch.equal(a, b) for a, b in zip(grids, back))


def test_decoder_reproduces_the_fitted_picture_and_fit_helps(codec):
    x = _image(24, 40)
    data = codec.compress(x, steps=100)
    grids = [torch.round(g.detach()).clamp(-127, 127).to(torch.int64) for g in codec.transform.latents]
    expected = codec.transform.decode_exact(grids, (24, 40)).to(torch.uint8)  # the encoder's own picture
    c2 = lcodec.load("overfit-rgb", 4)
    got = c2.decompress_pixels(data)
    assert torch.equal(got, expected)
    assert torch.equal(c2.decompress(data), got.float() / 255)
    # the fit's rate estimate of the rounded grids is what the coder writes (within coder slack)
    with torch.no_grad():
        est = float(codec.entropy([g.float() for g in grids]))
    assert abs(8 * len(read_container(data).sections[1]) - est) <= 0.03 * est + 64
    mse_fit = torch.mean((got.float() / 255 - x) ** 2)
    fresh = lcodec.load("overfit-rgb", 4)
    fresh._fresh(0)
    fresh.transform.init_grids(24, 40)
    with torch.no_grad():  # the picture before any fitting step (zero latents, initial networks)
        before = fresh.transform([g.detach() for g in fresh.transform.latents], (24, 40))
    assert mse_fit < 0.5 * torch.mean((before - x) ** 2)



def test_the_fit_leaves_the_finest_grids_at_zero(codec):
    """FROZEN_LEVELS (lcodec.codecs.overfit): the full-resolution grid stays 0 through the fit (it
    took most of the rate for little PSNR), is still coded and decoded, and the other grids carry
    the picture."""
    from lcodec.codecs.overfit import FROZEN_LEVELS

    assert FROZEN_LEVELS >= 1
    x = _image(24, 40, seed=3)
    data = codec.compress(x, steps=40)
    grids = list(codec.transform.latents)
    assert all(not g.requires_grad and not bool(g.detach().any()) for g in grids[:FROZEN_LEVELS])
    assert any(bool(torch.round(g.detach()).any()) for g in grids[FROZEN_LEVELS:])
    assert codec.decompress(data).shape == x.shape


def test_rate_term_steers_the_fit():
    """Quality q fits with lambda OVERFIT_LMBDAS[q - 1], decreasing in q; a strong rate weight gives
    far fewer latent bits than none at all (same image, same steps)."""
    from lcodec.codecs.overfit import OVERFIT_LMBDAS

    assert [lcodec.load("overfit-rgb", q).lmbda for q in range(1, 7)] == list(OVERFIT_LMBDAS)
    assert all(a > b for a, b in zip(OVERFIT_LMBDAS, OVERFIT_LMBDAS[1:]))
    x = _image(16, 24, seed=3)
    sizes = []
    for lmbda in (0.0, 20.0):
        c = lcodec.load("overfit-rgb", 4)
        c.lmbda = lmbda
        sizes.append(len(read_container(c.compress(x, steps=60)).sections[1]))
    assert sizes[1] < 0.7 * sizes[0]


@pytest.mark.slow
def test_lambda_orders_the_rates():
    x = _image(32, 48, seed=3)
    lo = lcodec.load("overfit-rgb", 1).compress(x, steps=200)
    hi = lcodec.load("overfit-rgb", 6).compress(x, steps=200)
    assert len(read_container(lo).sections[1]) < len(read_container(hi).sections[1])


def test_encode_is_repeatable_in_one_process(codec):
    x = _image(16, 16, seed=5)
    assert codec.compress(x, steps=6) == codec.compress(x, steps=6)


def test_decode_identical_across_thread_counts(tmp_path, codec):
    data = codec.compress(_image(20, 28, seed=7), steps=5)
    stream = tmp_path / "s.bin"
    stream.write_bytes(data)
    prog = ("import sys, hashlib, torch, lcodec; torch.set_num_threads(int(sys.argv[2])); "
            "d = open(sys.argv[1], 'rb').read(); "
            "print(hashlib.sha256(lcodec.load('overfit-rgb', 4).decompress_pixels(d).numpy().tobytes()).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", prog, str(stream), str(n)], capture_output=True, text=True,
                           check=True).stdout.strip() for n in (1, 2)}
    here = hashlib.sha256(codec.decompress_pixels(data).numpy().tobytes()).hexdigest()
    assert outs == {here}


def test_golden_stream_decodes_to_the_recorded_pixels(codec):
    pixels = codec.decompress_pixels(GOLDEN.read_bytes())
    assert hashlib.sha256(pixels.numpy().tobytes()).hexdigest() == GOLDEN_PIXELS


def test_hostile_streams_are_refused(codec):
    data = GOLDEN.read_bytes()
    c = read_container(data)
    for bad in (data[: len(data) // 2], data[:-1]):
        with pytest.raises(BitstreamError):
            codec.decompress(bad)
    # a valid container whose payloads are damaged: refused or decoded, never another exception
    rng = np.random.default_rng(0)
    for k in range(20):
        secs = [bytearray(s) for s in c.sections]
        s = secs[k % 2]
        s[int(rng.integers(len(s)))] ^= 1 << int(rng.integers(8))
        forged = write_container(type(c)(**{**c.__dict__, "sections": tuple(bytes(v) for v in secs)}))
        try:
            out = codec.decompress_pixels(forged)
            assert out.shape == (1, 3, *c.geometry.shape[2:])
        except BitstreamError:
            pass
    for shape in ((1, 3, 20000, 5), (1, 1, 32, 48), (2, 3, 32, 48)):
        forged = write_container(type(c)(**{**c.__dict__, "geometry": type(c.geometry)(shape=shape)}))
        with pytest.raises(BitstreamError, match="shape"):
            codec.decompress(forged)
    other = write_container(type(c)(**{**c.__dict__, "quality": 2}))
    with pytest.raises(BitstreamError, match="q2"):
        codec.decompress(other)


def test_bad_input(codec):
    with pytest.raises(InputError, match="batch"):
        codec.compress(torch.rand(2, 3, 8, 8), steps=1)
    with pytest.raises(InputError):
        codec.compress(torch.rand(1, 1, 8, 8), steps=1)
    with pytest.raises(InputError):
        codec.compress(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), steps=1)
    with pytest.raises(InputError, match="preset"):
        codec.compress(torch.rand(1, 3, 8, 8), preset="ludicrous")
    with pytest.raises(InputError):
        codec.compress(torch.rand(1, 3, 8, 8), steps=0)


def test_cli_budget_flags(tmp_path):
    from PIL import Image

    from lcodec.cli.main import main

    png = tmp_path / "a.png"
    Image.fromarray((_image(12, 20)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(png)
    out = tmp_path / "a.bin"
    assert main(["encode", str(png), str(out), "--codec", "overfit-rgb", "--steps", "5", "--quality", "2"]) == 0
    assert read_container(out.read_bytes()).quality == 2
    assert main(["decode", str(out), str(tmp_path / "b.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "b.png")).shape == (12, 20, 3)
    # the budget flags are refused for a pretrained codec, and nothing is written
    assert main(["encode", str(png), str(tmp_path / "c.bin"), "--steps", "5"]) != 0
    assert not (tmp_path / "c.bin").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_exact_decode_cuda_equals_cpu(codec):
    """The ARM's indexes and the synthesis' pixels from the exact path on CUDA equal the CPU's."""
    data = GOLDEN.read_bytes()
    cpu = codec.decompress_pixels(data)
    c = read_container(data)
    h, w = c.geometry.shape[2:]
    grids = codec.entropy.decode(c.sections[1], (h, w))  # networks loaded by decompress_pixels
    codec.transform.to("cuda")
    try:
        gpu = codec.transform.decode_exact([g.cuda() for g in grids], (h, w)).cpu().to(torch.uint8)
        arm = codec.entropy.to("cuda")
        ctx = arm._input(grids[0].cuda(), torch.zeros_like(grids[0]).cuda(), 2, 0)
        assert torch.equal(arm.net.forward_exact(ctx).cpu(), arm.net.cpu().forward_exact(ctx.cpu()))
    finally:
        codec.transform.to("cpu")
        codec.entropy.to("cpu")
    assert torch.equal(gpu, cpu)
