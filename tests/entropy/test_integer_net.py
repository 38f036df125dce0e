"""Integer side-information network: exactness, determinism, QAT and the 2**53 guard.

What is compared where:
- ``forward_exact`` (float64 holding integers) is the only path used for coding; it must give
  identical int64 indexes across thread counts, batch compositions, processes and devices.
- The float32 quantization-aware ``forward`` is a training approximation; for a small net
  (all sums far below 2**24) it agrees with the exact path on (almost) every index.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.entropy import GaussianConditional, IntegerConv, IntegerIndexNet, IntegerNetwork, index_synthesis
from lcodec.errors import InputError, ModelError
from tests.conftest import with_one_and_two_threads

ROOT = Path(__file__).resolve().parents[2]
NET_KWARGS = dict(in_channels=4, hidden_channels=8, out_channels=6, num_indexes=64)


def make_net(seed: int = 0) -> IntegerIndexNet:
    torch.manual_seed(seed)
    net = index_synthesis(**NET_KWARGS)
    with torch.no_grad():  # spread the indexes over the table, as a trained net would
        net.layers[-1].weight.mul_(4.0)
    return net.eval()


def hyper_symbols(shape=(5, 4, 5, 6), seed: int = 1) -> torch.Tensor:
    return torch.randint(-8, 9, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("transposed,stride", [(False, 1), (False, 2), (True, 2), (True, 3)])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_exact_convolution_matches_torch_on_small_integers(dims, transposed, stride, kernel):
    """Transposed layers run by output phase (no zero insertion): checked against torch's own."""
    torch.manual_seed(0)
    layer = IntegerConv(3, 5, kernel, stride=stride, transposed=transposed, dims=dims, input_range=(-30, 30),
                        in_frac=0, out_frac=8, out_max=2**40)  # shift 0: the raw accumulator, clamped at 0
    x = torch.randint(-30, 31, (2, 3, 7, 6) if dims == 2 else (2, 3, 11)).double()
    conv = {(1, False): F.conv1d, (2, False): F.conv2d,
            (1, True): F.conv_transpose1d, (2, True): F.conv_transpose2d}[(dims, transposed)]
    extra = {"output_padding": stride - 1} if transposed else {}
    ref = conv(x, layer.integer_weight().double(), layer.integer_bias().double(), stride=stride,
               padding=(kernel - 1) // 2, **extra)
    out = layer.forward_exact(x)
    assert torch.equal(out, ref.clamp_min(0))
    spatial = x.shape[2:]
    expected = [n * stride for n in spatial] if transposed else [-(-n // stride) for n in spatial]
    assert list(out.shape[2:]) == expected


def test_exact_outputs_are_integer_indexes_and_the_qat_path_agrees():
    net = make_net()
    z = hyper_symbols()
    idx = net.indexes(z)
    assert idx.dtype == torch.int64 and idx.shape == (5, 6, 20, 24)
    assert idx.min() >= 0 and idx.max() <= 63 and idx.unique().numel() > 10
    # float inputs holding integers give the same result; non-integers are refused
    assert torch.equal(net.forward_exact(z.double()), idx)
    with pytest.raises(InputError):
        net.forward_exact(z.float() + 0.25)
    # the float32 training path (rounded, eval) computes the same integers up to float32 kernel effects
    with torch.no_grad():
        qat = net(z.float())
    assert torch.equal(qat, torch.round(qat))
    assert (qat.long() == idx).float().mean() >= 0.999
    # the exact path uses integer weights and biases within their declared bits
    for layer, state in zip(net.layers, net.integer_state()):
        assert state["weight"].dtype == torch.int64 and state["weight"].abs().max() <= layer.weight_max


def test_exact_indexes_do_not_depend_on_thread_count_or_batch_composition():
    net = make_net()
    z = hyper_symbols()
    one, two = with_one_and_two_threads(lambda: net.indexes(z))
    assert torch.equal(one, two)
    for i in range(z.shape[0]):
        assert torch.equal(net.indexes(z[i : i + 1]), one[i : i + 1])
    perm = torch.tensor([3, 0, 4, 2, 1])
    assert torch.equal(net.indexes(z[perm]), one[perm])
    big = torch.cat([z, hyper_symbols(seed=7), z])
    assert torch.equal(net.indexes(big)[-5:], one)


_CHILD = """
import json, sys, torch
from lcodec.entropy import index_synthesis
path = sys.argv[1]
blob = torch.load(path, weights_only=True)
torch.set_num_threads(2)
net = index_synthesis(**json.loads(sys.argv[2]))
net.load_state_dict(blob["state"])
torch.save({"indexes": net.eval().indexes(blob["z"])}, path + ".out")
"""


def test_exact_indexes_are_identical_in_a_separate_process(tmp_path):
    net = make_net()
    z = hyper_symbols()
    path = tmp_path / "net.pt"
    torch.save({"state": net.state_dict(), "z": z}, path)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", _CHILD, str(path), json.dumps(NET_KWARGS)],
                   check=True, cwd=tmp_path, env=env, timeout=120)
    child = torch.load(str(path) + ".out", weights_only=True)["indexes"]
    assert child.dtype == torch.int64 and torch.equal(child, net.indexes(z))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_exact_indexes_are_identical_on_cpu_and_gpu():
    net = index_synthesis(in_channels=32, hidden_channels=64, out_channels=48, num_indexes=64)
    z = torch.randint(-20, 21, (3, 32, 12, 10))
    cpu = net.indexes(z)
    gpu = net.to("cuda").indexes(z.to("cuda"))
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)


def test_the_2_pow_53_bound_rejects_oversized_layers():
    # 2**23 * 2**20 * 9 * 512 > 2**53 on the exact path
    with pytest.raises(ModelError, match="2\\*\\*53"):
        IntegerConv(512, 8, 3, weight_bits=24, input_range=(0, 2**20), out_frac=0)
    # a layer just inside the bound is accepted, and its bound is reported exactly
    ok = IntegerConv(512, 8, 3, weight_bits=20, input_range=(0, 2**20), out_frac=0, bias_bits=32)
    assert ok.accumulator_bound() < 2**53
    # a chain whose next layer does not declare the previous output range is refused
    first = IntegerConv(4, 4, 3, out_max=255)
    with pytest.raises(ModelError):
        IntegerNetwork([first, IntegerConv(4, 4, 3, input_range=(0, 127))])
    with pytest.raises(ModelError):  # an index head must output [0, num_indexes - 1] with no fraction
        IntegerIndexNet([first, IntegerConv(4, 4, 3, out_frac=0, out_max=31)], num_indexes=64)


def test_a_few_qat_steps_reduce_the_rate_of_the_latents():
    torch.manual_seed(0)
    net = index_synthesis(2, 8, 3, 64, upsample=1, kernel_size=3).train()
    gc = GaussianConditional()
    z = torch.randint(-4, 5, (8, 2, 4, 4)).float()
    sigma = torch.tensor([0.3, 4.0, 40.0]).view(1, 3, 1, 1)
    y = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * sigma
    opt = torch.optim.Adam(net.parameters(), lr=5e-2)
    losses = []
    for _ in range(25):
        scales = gc.scales_from_indexes(net(z))
        _, bits = gc(y, scales, training=False)
        loss = bits.mean() / y[0].numel()
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
    # the exact indexes of the trained net follow the channel scales
    idx = net.eval().indexes(z.long())
    means = idx.float().mean(dim=(0, 2, 3))
    assert means[0] < means[1] < means[2]


def test_round_trip_with_tables_selected_by_the_integer_net():
    net = make_net()
    gc = GaussianConditional().eval()
    tables = gc.tables()
    z = hyper_symbols((2, 4, 3, 4))
    indexes = net.indexes(z)  # (2, 6, 12, 16)
    g = torch.Generator().manual_seed(3)
    means = torch.randn(indexes.shape, generator=g) * 5
    y = means + torch.randn(indexes.shape, generator=g) * gc.scales_from_indexes(indexes)
    symbols = gc.symbols(y, means)
    flat_idx = indexes.numpy().reshape(-1)
    payload = encode_symbols(symbols.numpy().reshape(-1), flat_idx, tables)
    # the decoder recomputes the indexes from the same integer symbols z (exactly) and decodes
    decoded = decode_symbols(payload, net.indexes(z.clone()).numpy().reshape(-1), tables)
    np.testing.assert_array_equal(decoded, symbols.numpy().reshape(-1))
    y_hat = gc.reconstruct(torch.from_numpy(decoded).view(symbols.shape), means)
    assert (y_hat - y).abs().max() <= 0.5 + 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_straight_through_clamp_gradient_clause_by_clause(dtype):
    """Contract of ``_StraightThroughClamp`` (its docstring and comment): forward is clamp(x, lo, hi);
    the gradient passes unchanged inside [lo, hi] (bounds included) and, outside, only where a
    descent step (x -= lr * grad) moves x back towards the range: below lo only grad < 0, above hi
    only grad > 0. Everything else gets exactly zero. Every (region, sign) pair is checked."""
    from lcodec.entropy.integer_net import _StraightThroughClamp

    lo, hi = -1.5, 2.0
    #                 below lo          at lo    inside        at hi   above hi
    xs = torch.tensor([-9.0, -1.5001, -1.5, -0.3, 0.0, 1.9, 2.0, 2.0001, 7.0], dtype=dtype)
    region = ["below", "below", "in", "in", "in", "in", "in", "above", "above"]
    for sign in (-1.0, 1.0):
        upstream = sign * torch.arange(1, xs.numel() + 1, dtype=dtype)  # distinct magnitudes
        x = xs.clone().requires_grad_(True)
        y = _StraightThroughClamp.apply(x, lo, hi)
        assert torch.equal(y.detach(), xs.clamp(lo, hi))
        (grad,) = torch.autograd.grad(y, x, upstream)
        for i, where in enumerate(region):
            passes = where == "in" or (where == "below" and sign < 0) or (where == "above" and sign > 0)
            assert grad[i].item() == (upstream[i].item() if passes else 0.0), (where, sign, xs[i].item())
    # zero upstream gradient stays zero everywhere
    x = xs.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_StraightThroughClamp.apply(x, lo, hi), x, torch.zeros_like(xs))
    assert torch.equal(grad, torch.zeros_like(xs))
