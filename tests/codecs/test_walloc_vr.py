"""Variable-rate WaLLoC (walloc-rgb-light / walloc-rgb-rd): one weights file, six rates.

What walloc-rgb-hp's tests already cover (the hyperprior's exact indexes, hostile streams)
is shared code; these tests check what the gains, the ladder and the rd encoder add."""
from dataclasses import replace

import pytest
import torch

from lcodec.bitstream.container import read_container, write_container
from lcodec.codecs.assembly import ComposedCodec, LadderConfig, initial_step
from lcodec.errors import BitstreamError, ModelError
from lcodec.registry import create_codec, get_spec
from lcodec.train.recipes import RECIPES
from tests.codecs.parts import decompress_symbols, latent_symbols

NAMES = ("walloc-rgb-light", "walloc-rgb-rd")


def _untrained(name: str, photo: torch.Tensor, quality: int = 4) -> ComposedCodec:
    """Seeded, untrained, started from the KLT of the photo's crops; the rd branch made non-zero."""
    torch.manual_seed(0)
    codec = create_codec(name, quality)
    crops = [photo[0, :, r : r + 128, c : c + 128] for r in (0, 64, 160) for c in (0, 128, 256)]
    codec.init_from_data(crops)
    with torch.no_grad():
        if codec.transform.analysis.branch is not None:
            torch.nn.init.normal_(codec.transform.analysis.branch[-1].weight, std=0.003)
        codec.entropy.h_a[2].weight.mul_(4)
        codec.entropy.index_net.layers[-1].weight.mul_(4)
    codec.eval()
    codec.export()
    return codec


@pytest.fixture(scope="module", params=NAMES)
def vr(request, photo) -> ComposedCodec:
    return _untrained(request.param, photo)


def _at(codec: ComposedCodec, quality: int) -> ComposedCodec:
    other = create_codec(codec.name, quality)
    other.load_weights(codec.weights_state())
    return other.eval()


def test_one_weights_state_codes_every_rate_in_order(vr, photo):
    sizes, errors = [], []
    for q in vr.ladder.qualities:
        codec = _at(vr, q)
        assert codec.weights_hash == vr.weights_hash  # one model, one hash
        data = codec.compress(photo)
        assert read_container(data).quality == q
        x_hat = codec.decompress(data)
        sizes.append(len(data))
        errors.append(float(((x_hat - photo) ** 2).mean()))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert errors == sorted(errors, reverse=True)


@pytest.mark.parametrize("size", [(321, 481), (1, 1), (13, 40)])
def test_round_trip_symbols_and_the_latent_api(vr, photo, size):
    x = photo[..., : size[0], : size[1]]
    data = vr.compress(x)
    y_sym, z_sym = latent_symbols(vr, x)
    y_dec, z_dec, shape = decompress_symbols(vr, data)
    assert torch.equal(y_dec, y_sym) and torch.equal(z_dec, z_sym) and shape == tuple(x.shape)
    y_hat, _ = vr.decompress_latents(data)
    assert torch.equal(y_hat, vr.encode_latents(x))  # gained latents, (B, 192, 2*ceil(H/32), 2*ceil(W/32))
    assert y_hat.shape == vr.latent_shape(x.shape) and y_hat.shape[1] == 192
    x_hat = vr.decompress(data)
    assert x_hat.shape == x.shape
    # the latents alone give the picture before a restoration filter (the stream's own side
    # information, which rd's encoder adds where it pays): the stream without that section
    c = read_container(data)
    plain = write_container(replace(c, sections=c.sections[: vr.entropy.num_sections(vr.rate)]))
    assert torch.equal(vr.decode_latents(y_hat, size=size), vr.decompress(plain))


def test_coding_path_matches_the_training_path(vr, photo):
    """The float64 encoder (linear, or linear + CNN branch for rd) times the float64 gains is the
    float32 training path's y, and the branch really contributes for rd."""
    x = photo[..., :64, :96]
    x64 = vr.transform.pad(x.double(), vr.multiple)
    coded = vr.analyse64(x)
    with torch.no_grad():
        trained = vr.transform.analysis(vr.transform.pad(x, vr.multiple)) * vr._gain(torch.tensor([vr.quality - 1]), 4)
        assert float((coded - trained.double()).abs().max()) < 1e-3 * float(coded.abs().max())
        linear = vr.transform.analysis.g_a(vr.transform.analysis.wpt(x64.float() - 0.5)).double() * vr.gain64()
    differs = float((coded - linear).abs().max()) > 1e-2
    assert differs == (vr.transform.analysis.branch is not None)


def test_a_stream_names_its_rate_and_other_rates_refuse_it(vr, photo):
    data = vr.compress(photo[..., :32, :32])
    with pytest.raises(BitstreamError, match=f"{vr.name} q4, not {vr.name} q2"):
        _at(vr, 2).decompress(data)


def test_klt_start_and_gains_at_the_high_rate_step(photo):
    codec = create_codec("walloc-rgb-light", 1)
    codec.init_from_data([photo[0, :, :256, :256]])
    w = codec.transform.analysis.g_a.weight[:, :, 0, 0].double()  # (192, 768)
    assert torch.allclose(w @ w.T, torch.eye(192, dtype=torch.float64), atol=1e-5)  # orthonormal rows
    assert torch.equal(codec.transform.synthesis.skip.weight[:, :, 0, 0], codec.transform.analysis.g_a.weight[:, :, 0, 0].T)
    steps = torch.exp(-codec.log_gain.detach()[:, 0]).double()
    expected = torch.tensor([initial_step(v) for v in codec.ladder.lmbdas], dtype=torch.float64)
    assert torch.allclose(steps, expected, rtol=1e-6) and (steps.diff() < 0).all()
    # the step formula: d/dstep [lambda 255^2 step^2/12 + 3 (h - log2 step)] = 0
    lmbda, step = 0.01, initial_step(0.01)
    assert lmbda * 255**2 * step / 6 == pytest.approx(3 / (step * torch.log(torch.tensor(2.0)).item()))


def test_training_samples_rates_and_weighs_each_image_by_its_lambda(photo):
    codec = create_codec("walloc-rgb-rd", 4).train()
    torch.manual_seed(1)
    x = torch.rand(6, 3, 64, 64)
    out = codec(x)
    ladder = torch.tensor(codec.ladder.lmbdas).tolist()  # as float32, like the training path
    assert out.lmbda.shape == (6,) and set(out.lmbda.tolist()) <= set(ladder)
    assert len(set(out.lmbda.tolist())) > 1
    loss, shown = codec.rd_loss(out, x, 1.0)
    mse = ((out.x_hat - x) ** 2).flatten(1).mean(1)
    bpp = (out.bits["y"] + out.bits["z"]) / (64 * 64)
    weight = (torch.tensor(codec.ladder.lmbdas).log().mean().exp() / out.lmbda) ** 0.5  # balance 0.5
    assert codec.ladder.balance == 0.5
    assert loss.item() == pytest.approx((weight * (out.lmbda * 255**2 * mse + bpp)).mean().item(), rel=1e-5)
    assert set(shown) == {"bpp", "psnr", "side_bpp"}
    loss.backward()
    for name in ("log_gain", "transform.analysis.g_a.weight", "transform.analysis.branch.3.weight",
                 "entropy.h_a.0.weight", "transform.synthesis.skip.weight"):
        grad = dict(codec.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    codec.eval()  # evaluation uses the codec's own rate point for every image
    assert set(codec(x).lmbda.tolist()) == {ladder[3]}


def test_the_loss_balance_evens_out_the_rates():
    ladder = LadderConfig(balance=0.5)
    lmbdas = torch.tensor(ladder.lmbdas, dtype=torch.float64)
    w = ladder.loss_weights(lmbdas)
    assert float(w.log().sum()) == pytest.approx(0.0, abs=1e-12)  # 1 at the geometric mean
    assert float(w[0] / w[-1]) == pytest.approx((0.075 / 0.0008) ** 0.5)
    assert torch.equal(LadderConfig().loss_weights(lmbdas), torch.ones(6, dtype=torch.float64))
    with pytest.raises(ModelError, match="balance"):
        LadderConfig(balance=2.0)


def test_weights_serve_the_whole_ladder_and_refuse_another(vr):
    state = vr.weights_state()
    assert state["qualities"] == [1, 2, 3, 4, 5, 6] and state["quality"] == 0
    other = create_codec(vr.name, 6)
    other.ladder = LadderConfig(lmbdas=(0.001, 0.01))
    with pytest.raises(ModelError, match="another rate ladder"):
        other.load_weights(state)
    with pytest.raises(ModelError, match="increasing"):
        LadderConfig(lmbdas=(0.01, 0.001))
    assert LadderConfig.from_dict({"lmbdas": [0.001, 0.01]}) == LadderConfig(lmbdas=(0.001, 0.01))


def test_registry_and_recipes():
    for name in NAMES:
        spec = get_spec(name)
        assert spec.qualities == (1, 2, 3, 4, 5, 6)
        r = RECIPES[name]
        assert (r.codec, r.lmbda) == (name, 1.0)
    assert set(get_spec("walloc-rgb-rd").weights.values()) == {"walloc-rgb-rd.pt"}
    assert set(get_spec("walloc-rgb-light").weights.values()) == {"walloc-rgb-light.pt"}
    assert RECIPES["walloc-rgb-light"].init_weights == "walloc-rgb-rd"  # fine-tuned from the rd weights


def test_the_shipped_ladder_loads_from_one_file_and_rates_are_ordered(photo):
    import lcodec
    from lcodec.api import weights_path

    spec = get_spec("walloc-rgb-rd")
    assert set(spec.weights_sha256) == set(spec.qualities)  # every rate ships
    assert len({weights_path("walloc-rgb-rd", q) for q in spec.qualities}) == 1
    sizes = [len(lcodec.load("walloc-rgb-rd", quality=q).compress(photo)) for q in spec.qualities]
    assert sizes == sorted(sizes) and sizes[0] * 4 < sizes[-1]
    with pytest.raises(ModelError, match="not available"):
        lcodec.load("walloc-rgb-rd", quality=7)
    with pytest.raises(ModelError, match="no shipped weights .*codec train walloc-rgb-hp"):
        lcodec.load("walloc-rgb-hp")



@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("quality", [1, 6])
def test_shipped_ladder_streams_cross_between_cpu_and_cuda(photo, quality):
    """The float64 encoder and the gains run on CPU, the integer index network on the codec's
    device: a CUDA-loaded codec writes the CPU's bytes and reads the CPU's symbols."""
    import lcodec

    cpu = lcodec.load("walloc-rgb-rd", quality=quality)
    gpu = lcodec.load("walloc-rgb-rd", quality=quality, device="cuda")
    stream = cpu.compress(photo)
    assert gpu.compress(photo.cuda()) == stream
    y_cpu, z_cpu, _ = decompress_symbols(cpu, stream)
    y_gpu, z_gpu, _ = decompress_symbols(gpu, stream)
    assert torch.equal(y_cpu, y_gpu.cpu()) and torch.equal(z_cpu, z_gpu.cpu())
    assert float((gpu.decompress(stream).cpu() - cpu.decompress(stream)).abs().max()) < 1 / 255  # float decoder; CUDA convolutions may use TF32
