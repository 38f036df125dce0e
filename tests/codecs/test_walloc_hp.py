"""walloc-rgb-hp (WaLLoC + mean-scale hyperprior, exact integer table indexes) on an untrained codec:
round trips, exact symbols and indexes everywhere, rate honesty, hostile streams."""
import copy
import hashlib
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from lcodec.bitstream.container import read_container, write_container
from lcodec.codecs.assembly import ComposedCodec
from lcodec.entropy.model import channel_indexes
from lcodec.entropy.gaussian import gaussian_tables
from lcodec.errors import BitstreamError, ModelError
from lcodec.registry import create_codec, get_spec
from lcodec.train.recipes import RECIPES
from tests.conftest import FIXTURES, ROOT, assert_refused_cheaply, reseal, set_dims, with_one_and_two_threads
from tests.codecs.parts import decompress_symbols, latent_symbols


def _untrained(seed: int = 0) -> ComposedCodec:
    """A seeded, untrained codec, scaled so latents, side symbols, means and indexes all vary."""
    torch.manual_seed(seed)
    codec = create_codec("walloc-rgb-hp", 3)
    with torch.no_grad():
        codec.transform.analysis.g_a.weight.mul_(20)
        codec.entropy.h_a[2].weight.mul_(4)
        codec.entropy.index_net.layers[-1].weight.mul_(4)
        torch.nn.init.normal_(codec.entropy.h_m[2].weight, std=0.05)
    codec.eval()
    codec.export()
    return codec


@pytest.fixture(scope="module")
def hp() -> ComposedCodec:
    return _untrained()


@pytest.fixture(scope="module")
def stream(hp, photo) -> bytes:
    return hp.compress(photo)


def _crop(photo: torch.Tensor, h: int, w: int) -> torch.Tensor:
    top, left = min(100, 321 - h), min(200, 481 - w)
    return photo[..., top : top + h, left : left + w].contiguous()


@pytest.mark.parametrize("size", [(321, 481), (9, 17), (1, 1), (33, 1)])
def test_round_trip_odd_sizes_decodes_the_encoders_symbols(hp, photo, size):
    x = _crop(photo, *size)
    data = hp.compress(x)
    x_hat = hp.decompress(data)
    assert x_hat.shape == x.shape and x_hat.dtype == torch.float32
    assert torch.isfinite(x_hat).all() and 0.0 <= float(x_hat.min()) and float(x_hat.max()) <= 1.0
    y_sym, z_sym = latent_symbols(hp, x)
    y_dec, z_dec, shape = decompress_symbols(hp, data)
    assert torch.equal(y_dec, y_sym) and torch.equal(z_dec, z_sym) and shape == tuple(x.shape)
    assert y_sym.shape == hp.latent_shape(x.shape) and z_sym.shape == hp.entropy.hyper_shape(hp.latent_shape(x.shape))
    # means are computed in float64 on CPU on both sides: the latent API agrees exactly
    y_hat, _ = hp.decompress_latents(data)
    assert torch.equal(y_hat, hp.encode_latents(x))
    assert torch.equal(hp.decode_latents(y_hat, size=size), x_hat)


def test_untrained_fixture_exercises_every_part(hp, photo):
    y_sym, z_sym = latent_symbols(hp, photo)
    indexes = hp.entropy.table_indexes(z_sym)
    assert indexes.dtype == torch.int64 and indexes.shape == y_sym.shape
    assert indexes.unique().numel() > 20 and z_sym.abs().max() > 2 and y_sym.abs().max() > 2
    assert float(hp.entropy.means(z_sym).abs().max()) > 0.1


def test_payload_is_at_least_the_information_content_and_close_to_the_estimate(hp, photo, stream):
    z_payload, y_payload = (8 * len(s) for s in read_container(stream).sections)
    y_sym, z_sym = latent_symbols(hp, photo)
    z_ideal = hp.entropy.tables.information_content(z_sym.numpy().reshape(-1), channel_indexes(tuple(z_sym.shape)))
    y_ideal = hp.entropy.y_tables.information_content(y_sym.numpy().reshape(-1), hp.entropy.table_indexes(z_sym).numpy().reshape(-1))
    assert z_payload >= z_ideal and y_payload >= y_ideal
    split = hp.estimate_bits_split(photo)
    assert split["y"] > 0 and split["z"] > 0 and z_payload > 0 and y_payload > 0
    assert hp.estimate_bits(photo) == pytest.approx(split["y"] + split["z"])
    assert z_payload + y_payload <= 1.01 * hp.estimate_bits(photo) + 64
    assert z_payload <= 1.01 * split["z"] + 32 and y_payload <= 1.01 * split["y"] + 32


def test_indexes_are_identical_across_threads_batches_and_bands(hp, photo):
    a, b = photo[..., :96, :128], photo[..., 100:196, 200:328]
    _, z_a = latent_symbols(hp, a)
    _, z_b = latent_symbols(hp, b)
    _, z_ab = latent_symbols(hp, torch.cat([a, b]))
    assert torch.equal(z_ab, torch.cat([z_a, z_b]))  # batch composition does not move the side symbols
    one, two = with_one_and_two_threads(lambda: hp.entropy.table_indexes(z_ab))
    assert torch.equal(one, two)  # whole streams with 2 threads: the subprocess test below
    assert torch.equal(one[:1], hp.entropy.table_indexes(z_a)) and torch.equal(one[1:], hp.entropy.table_indexes(z_b))
    banded = copy.copy(hp)  # same modules; row bands of one z row each (halo included)
    banded.index_band_positions = 1
    assert torch.equal(banded.entropy.table_indexes(z_ab), one)


_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from lcodec.io.image import read_image
from lcodec.registry import create_codec
from tests.codecs.parts import latent_symbols
codec = create_codec("walloc-rgb-hp", 3)
codec.load_weights(torch.load(sys.argv[2], weights_only=True))
codec.eval()
x = read_image(sys.argv[3]).unsqueeze(0)
_, z = latent_symbols(codec, x)
indexes = codec.entropy.table_indexes(z).numpy().tobytes()
print(hashlib.sha256(codec.compress(x)).hexdigest(), hashlib.sha256(indexes).hexdigest())
"""


def test_identical_bytes_and_indexes_in_subprocesses_with_1_and_2_threads(hp, photo, stream, tmp_path):
    weights = tmp_path / "hp.pt"
    torch.save(hp.weights_state(), weights)
    # passive OpenMP waiting: on a busy 2-core machine spinning threads make the 2-thread run ~50x slower
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    image = str(FIXTURES / "coffee_481x321.png")
    runs = [subprocess.Popen([sys.executable, "-c", _SCRIPT, str(n), str(weights), image], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env) for n in (1, 2)]
    _, z = latent_symbols(hp, photo)
    indexes = hp.entropy.table_indexes(z).numpy().tobytes()
    here = f"{hashlib.sha256(stream).hexdigest()} {hashlib.sha256(indexes).hexdigest()}"
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert out.strip() == here


def test_weights_state_round_trip_and_both_table_sets_in_the_hash(hp, photo, stream):
    other = create_codec("walloc-rgb-hp", 3)
    other.load_weights(hp.weights_state())
    other.eval()
    assert other.weights_hash == hp.weights_hash
    assert torch.equal(decompress_symbols(other, stream)[0], latent_symbols(hp, photo)[0])
    changed = copy.deepcopy(hp)
    changed.entropy.y_tables = gaussian_tables(hp.entropy.gaussian.scale_table.numpy(), tail_mass=1e-6)
    assert changed._digest() != hp.weights_hash
    with pytest.raises(ModelError, match="hyperprior config"):
        other.load_weights({k: v for k, v in hp.weights_state().items() if k != "y_tables"})
    with pytest.raises(ModelError, match="no coding tables"):
        create_codec("walloc-rgb-hp", 3).compress(photo)


def test_training_path_bits_loss_and_gradients():
    codec = _untrained().train()
    x = torch.rand(2, 3, 64, 64)
    out = codec(x)
    assert set(out.bits) == {"y", "z"} and out.bits["y"].shape == (2,) and (out.bits["z"] > 0).all()
    loss, shown = codec.rd_loss(out, x, 0.022)
    assert set(shown) == {"bpp", "psnr", "side_bpp"} and 0 < shown["side_bpp"] < shown["bpp"]
    loss.backward()
    for name in ("entropy.h_a.0.weight", "entropy.index_net.layers.0.weight", "entropy.h_m.0.weight",
                 "entropy.prior.biases.0", "transform.analysis.g_a.weight"):
        grad = dict(codec.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_registry_recipes_and_initialisation_from_walloc_rgb():
    spec = get_spec("walloc-rgb-hp")
    assert spec.qualities == (1, 2, 3) and spec.default_quality == 3
    assert spec.weights == {} and "codec train walloc-rgb-hp-qN" in spec.description  # recipes only
    import lcodec

    with pytest.raises(ModelError, match="no shipped weights .*codec train walloc-rgb-hp"):
        lcodec.load("walloc-rgb-hp")
    for q, lmbda, init in ((1, 0.004, 1), (2, 0.010, 3), (3, 0.022, 3)):
        r = RECIPES[f"walloc-rgb-hp-q{q}"]
        assert (r.codec, r.quality, r.lmbda, r.init_weights) == ("walloc-rgb-hp", q, lmbda, f"walloc-rgb-q{init}")
    from lcodec.train.loop import init_from_shipped

    copied = init_from_shipped(create_codec("walloc-rgb-hp", 3), "walloc-rgb-q3")
    assert {n.split(".")[0] for n in copied} == {"analysis", "synthesis"}


# --------------------------------------------------------------- hostile streams


@pytest.mark.parametrize("dims", [(1, 3, 10**6, 10**6), (1, 3, 8192, 8192), (1, 3, 2048, 2048),
                                  (256, 3, 512, 512), (10**6, 3, 16, 16), (1, 4, 16, 16)])
def test_forged_geometry_is_refused_before_allocation(hp, photo, dims):
    assert_refused_cheaply(hp.decompress, set_dims(hp.compress(photo[..., :16, :16]), dims))


def test_truncated_or_restructured_streams_raise(hp, photo):
    data = hp.compress(photo[..., :64, :96])
    for cut in (0, 3, 10, 60, len(data) // 2, len(data) - 5, len(data) - 1):
        with pytest.raises(BitstreamError):
            hp.decompress(data[:cut])
        if cut > 8:  # a valid CRC over the cut stream reaches the section-length checks
            with pytest.raises(BitstreamError):
                hp.decompress(reseal(data[:cut]))
    c = read_container(data)
    z_payload, y_payload = c.sections
    for sections in [(z_payload,), (z_payload, y_payload, y_payload), (z_payload, y_payload[: len(y_payload) // 8])]:
        forged = write_container(replace(c, sections=sections))
        with pytest.raises(BitstreamError):
            hp.decompress(forged)
    wrong_hash = bytearray(data)
    wrong_hash[6 + data[5] + 1] ^= 0xFF
    with pytest.raises(BitstreamError, match="different walloc-rgb-hp"):
        hp.decompress(reseal(bytes(wrong_hash)))


def test_garbage_payloads_with_valid_crc_decode_or_raise_cleanly(hp, photo):
    data = hp.compress(photo[..., :64, :64])
    c = read_container(data)
    rng = np.random.default_rng(0)
    for trial in range(12):
        sections = [bytearray(s) for s in c.sections]
        target = sections[trial % 2]
        target[:] = rng.integers(0, 256, len(target), dtype=np.uint8).tobytes()
        forged = write_container(replace(c, sections=tuple(map(bytes, sections))))
        try:
            out = hp.decompress(forged)
        except BitstreamError:
            continue
        assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_encodes_and_cpu_decodes_byte_exactly_and_back(hp, photo, stream):
    """The integer index network runs on the codec's device; the float64 parts run on CPU."""
    gpu = copy.deepcopy(hp).cuda()
    y_sym, z_sym = latent_symbols(hp, photo)
    assert torch.equal(gpu.entropy.table_indexes(z_sym.cuda()), hp.entropy.table_indexes(z_sym))
    from_gpu = gpu.compress(photo.cuda())
    assert from_gpu == stream  # CUDA encoder, CPU encoder: the same bytes
    y_cpu, z_cpu, _ = decompress_symbols(hp, from_gpu)  # CUDA -> CPU
    y_gpu, z_gpu, _ = decompress_symbols(gpu, stream)  # CPU -> CUDA
    assert torch.equal(y_cpu, y_sym) and torch.equal(z_cpu, z_sym)
    assert torch.equal(y_gpu, y_sym) and torch.equal(z_gpu, z_sym)
    assert float((gpu.decompress(stream).cpu() - hp.decompress(from_gpu)).abs().max()) < 1 / 255  # float decoder; CUDA convolutions may use TF32
