"""walloc-rgb-mcq: residual codebooks on rd's transform, with the shipped weights."""
import pytest
import torch

import lcodec
from lcodec.bitstream.container import read_container, write_container
from lcodec.errors import BitstreamError, InputError, ModelError
from tests.conftest import assert_refused_cheaply, set_dims, with_one_and_two_threads
from tests.codecs.parts import decompress_indexes, latent_indexes


@pytest.fixture(scope="module")
def small(photo):
    return photo[..., 40:136, 100:260].contiguous()  # 96x160


@pytest.fixture(scope="module")
def mcq():
    return {q: lcodec.load("walloc-rgb-mcq", quality=q) for q in (1, 2, 4, 6)}


def test_round_trip_decodes_the_encoders_indexes_and_latents(mcq, small):
    c = mcq[2]
    data = c.compress(small)
    idx, shape = decompress_indexes(c, data)
    assert shape == tuple(small.shape)
    assert idx.shape == (1, 2, 16, 12, 20) and idx.dtype == torch.int64
    assert torch.equal(idx, latent_indexes(c, small))
    y_hat, _ = c.decompress_latents(data)
    assert torch.equal(y_hat, c.encode_latents(small))
    x_hat = c.decompress(data)
    assert x_hat.shape == small.shape
    assert torch.equal(x_hat, c.decode_latents(y_hat, size=small.shape[-2:]))


def test_a_lower_quality_stream_is_a_prefix_of_a_higher_one(mcq, small):
    q2, q4 = mcq[2].compress(small), mcq[4].compress(small)
    low, high = read_container(q2), read_container(q4)
    assert len(low.sections) == 2 and len(high.sections) == 4
    assert high.sections[:2] == low.sections
    # so a stored stream can be cut down without re-encoding, to exactly what compress writes
    assert mcq[4].truncate(q4, 2) == q2
    assert torch.equal(mcq[2].decompress(mcq[6].truncate(q4, 2)), mcq[2].decompress(q2))
    assert mcq[4].truncate(q4, 4) == q4
    for bad in (0, 5, 2.0, True):
        with pytest.raises(InputError, match="cut to quality 1..4"):
            mcq[4].truncate(q4, bad)
    with pytest.raises(BitstreamError, match="not walloc-rgb-mcq"):
        mcq[4].truncate(lcodec.load("walloc-rgb-rd", quality=2).compress(small), 1)


def test_rate_and_quality_rise_with_the_stages_and_match_the_estimate(mcq, photo):
    pixels = photo.shape[-2] * photo.shape[-1]
    bpp, psnr = [], []
    for q in (1, 2, 4, 6):
        data = mcq[q].compress(photo)
        payload = 8 * sum(len(s) for s in read_container(data).sections)
        est = mcq[q].estimate_bits(photo)
        assert abs(payload - est) < 0.01 * est + 64 * q  # the coder's overhead: a few bytes per section
        x_hat = mcq[q].decompress(data)
        bpp.append(8 * len(data) / pixels)
        psnr.append(-10 * torch.log10(((x_hat - photo) ** 2).mean()).item())
    assert bpp == sorted(bpp) and psnr == sorted(psnr)
    assert 0.05 < bpp[0] < 0.3 and bpp[-1] > 1.0  # the ladder spans the 0.1-1.5 bpp
    assert psnr[-1] - psnr[0] > 6


def test_indexes_do_not_depend_on_threads_or_batch_composition(mcq, small, photo):
    c = mcq[4]
    one, two = with_one_and_two_threads(lambda: latent_indexes(c, small))
    assert torch.equal(one, two)
    other = photo[..., 100:196, 200:360]
    both = latent_indexes(c, torch.cat([other, small]))
    assert torch.equal(both[1:], one)


def test_bad_streams_and_calls_are_refused(mcq, small):
    c = mcq[2]
    data = c.compress(small)
    with pytest.raises(BitstreamError):
        c.decompress(data[:-20])
    with pytest.raises(BitstreamError, match="not walloc-rgb-mcq q4"):
        mcq[4].decompress(data)
    parsed = read_container(data)
    with pytest.raises(BitstreamError, match="sections"):
        c.decompress(write_container(parsed.__class__(**{**parsed.__dict__, "sections": parsed.sections[:1]})))
    assert_refused_cheaply(c.decompress, set_dims(data, (1, 3, 8000, 8000)))
    with pytest.raises(ModelError, match="refinement"):
        c.compress(small, refine=5)


def test_codebook_file_is_laid_over_rd_and_hashes_every_stage(mcq):
    rd = lcodec.load("walloc-rgb-rd", quality=2)
    c = mcq[2]
    for name in ("analysis.g_a.weight", "synthesis.skip.weight", "postfilter.head.weight"):
        if name in rd.state_dict():
            assert torch.equal(c.state_dict()[name], rd.state_dict()[name])
    assert c.weights_hash == mcq[6].weights_hash != rd.weights_hash
    assert sorted(c.entropy.codebook.order.tolist()) == list(range(192))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_and_cpu_write_and_read_the_same_streams(mcq, small):
    """The codeword search runs in float64 on CPU wherever the codec lives, and decoding gathers
    stored codewords by integer indexes: the same bytes and latents on either device."""
    cpu = mcq[4]
    gpu = lcodec.load("walloc-rgb-mcq", quality=4, device="cuda")
    data = cpu.compress(small)
    assert gpu.compress(small.cuda()) == data
    assert torch.equal(decompress_indexes(gpu, data)[0], decompress_indexes(cpu, data)[0])
    assert torch.equal(gpu.decompress_latents(data)[0].cpu(), cpu.decompress_latents(data)[0])
    x_gpu = gpu.decompress(data).cpu()
    assert float((x_gpu - cpu.decompress(data)).abs().max()) < 1 / 255  # float decoder; CUDA may use TF32
