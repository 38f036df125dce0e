"""Multi-codebook quantizer (McQuic-style): exact index round trips, MAP assignment, rate honesty."""
import numpy as np
import pytest
import torch

from lcodec.entropy.codebook import MultiCodebookQuantizer, ResidualCodebooks, variance_for_slope
from lcodec.errors import BitstreamError, ModelError


@pytest.fixture()
def vq() -> MultiCodebookQuantizer:
    torch.manual_seed(0)
    q = MultiCodebookQuantizer(channels=12, groups=3, codewords=16, init_scale=2.0)
    with torch.no_grad():
        q.logits.copy_(torch.randn(3, 16) * 2)  # a skewed prior, so the rate differs per index
    q.export()
    return q


def test_round_trip_is_exact_and_decodes_to_the_codewords(vq):
    y = torch.randn(2, 12, 5, 7) * 2
    data, idx = vq.encode(y)
    assert idx.shape == (2, 3, 5, 7) and idx.dtype == torch.int64
    back = vq.decode_indexes(data, tuple(y.shape))
    assert torch.equal(back, idx)
    y_hat = vq.dequantize(back)
    assert y_hat.shape == y.shape
    # each group of y_hat is exactly one codeword of its own codebook
    g = y_hat.permute(0, 2, 3, 1).reshape(-1, 3, 4)
    for m in range(3):
        gap = (g[:, m, None, :] - vq.codebooks[m].detach()[None]).abs().sum(-1).min(1).values
        assert (gap == 0).all()


def test_assignment_is_the_map_component_and_the_prior_shifts_it(vq):
    y = torch.randn(1, 12, 4, 4) * 2
    idx = vq.indexes(y)
    g = y.permute(0, 2, 3, 1).reshape(-1, 3, 4).double()
    for m in range(3):
        dist = torch.cdist(g[:, m], vq.codebooks[m].detach().double()) ** 2
        score = -dist / (2 * torch.exp(vq.log_variance.detach().double())) + torch.log_softmax(vq.logits[m].detach().double(), 0)
        assert torch.equal(idx[0, m].reshape(-1), score.argmax(1))
    flat = MultiCodebookQuantizer(12, 3, 16)
    with torch.no_grad():
        flat.codebooks.copy_(vq.codebooks)
    nearest = torch.cdist(g[:, 0], vq.codebooks[0].detach().double()).argmin(1)
    assert torch.equal(flat.indexes(y)[0, 0].reshape(-1), nearest)  # uniform prior: the nearest codeword


def test_payload_is_at_least_the_information_content_and_close_to_it(vq):
    y = torch.randn(4, 12, 16, 16) * 2
    data, idx = vq.encode(y)
    ideal = vq.information_bits(idx)
    assert ideal <= 8 * len(data) <= ideal * 1.01 + 64


def test_indexes_do_not_depend_on_input_precision_batch_or_threads(vq):
    y = torch.randn(3, 12, 6, 6) * 2
    a = vq.indexes(y)
    assert torch.equal(a, vq.indexes(y.double()))
    assert torch.equal(a[1:2], vq.indexes(y[1:2]))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.equal(vq.indexes(y), a)
    finally:
        torch.set_num_threads(threads)


def test_training_path_straight_through_bits_and_gradients(vq):
    vq.train()
    y = (torch.randn(2, 12, 3, 3) * 2).requires_grad_()
    y_hat, bits, commit = vq(y)
    assert torch.allclose(y_hat, vq.dequantize(vq.indexes(y)), atol=1e-5)  # forward value = hard codeword
    idx = vq.indexes(y)
    log_pi = torch.log_softmax(vq.logits.detach(), -1)
    expected = -sum(log_pi[m, idx[:, m]].sum((1, 2)) for m in range(3)) / np.log(2)
    assert torch.allclose(bits, expected.float(), rtol=1e-5)
    (y_hat.square().sum() + bits.sum() + commit).backward()
    for p in (y, vq.codebooks, vq.logits):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_bad_configuration_indexes_and_payloads_are_refused(vq):
    with pytest.raises(ModelError):
        MultiCodebookQuantizer(10, 3, 16)
    with pytest.raises(ModelError, match="export"):
        MultiCodebookQuantizer(12, 3, 16).encode(torch.zeros(1, 12, 2, 2))
    with pytest.raises(BitstreamError):
        vq.dequantize(torch.full((1, 3, 1, 1), 16))
    data, _ = vq.encode(torch.randn(1, 12, 8, 8))
    rng = np.random.default_rng(0)
    for _ in range(10):
        garbage = rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
        try:
            idx = vq.decode_indexes(garbage, (1, 12, 8, 8))
        except BitstreamError:
            continue
        assert idx.min() >= 0 and idx.max() < 16


def _fitted_stack(data: torch.Tensor, slopes=(4.0, 0.5)) -> ResidualCodebooks:
    """A two-stage stack fitted to ``data`` (N, 12) by the shipped procedure."""
    from lcodec.train.codebook import fit_stack

    stack = ResidualCodebooks(channels=12, stages=len(slopes), groups=3, codewords=32)
    fit_stack(stack, data, list(slopes), iters=10, seed=0)
    stack.export()
    return stack


@pytest.fixture(scope="module")
def stack_data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(4000, 12, generator=g) * torch.linspace(4.0, 0.2, 12)[torch.randperm(12, generator=g)]


def test_residual_stages_refine_and_round_trip_exactly(stack_data):
    stack = _fitted_stack(stack_data)
    y = stack_data[:600].T.reshape(1, 12, 20, 30)
    errors, bits = [], []
    for used in (1, 2):
        idx = stack.indexes(y, used)
        assert idx.shape == (1, used, 3, 20, 30)
        payloads = stack.encode(idx)
        assert torch.equal(stack.decode(payloads, tuple(y.shape)), idx)
        errors.append(float(((stack.dequantize(idx) - y.double()) ** 2).mean()))
        bits.append(sum(stack.information_bits(idx)))
    assert errors[1] < 0.6 * errors[0] and bits[1] > bits[0]  # the second stage codes what the first left
    assert errors[0] < 0.5 * float(y.var())  # far better than coding nothing
    # the stack's indexes are each stage's MAP codeword of the residual, in the stored channel order
    first = stack.stages[0].indexes(y.double()[:, stack.order])
    assert torch.equal(stack.indexes(y, 1)[:, 0], first)


def test_entropy_constrained_fit_trades_rate_for_error_with_its_slope(stack_data):
    from lcodec.train.codebook import fit_stage

    results = {}
    for slope in (0.2, 5.0):
        stage = MultiCodebookQuantizer(12, 3, 32)
        log = fit_stage(stage, stack_data.double(), slope, iters=10, seed=0)
        assert torch.exp(stage.log_variance).item() == pytest.approx(variance_for_slope(slope), rel=1e-6)
        cost = [e["squared_error_per_vector"] + slope * e["bits_per_vector"] for e in log]
        assert cost[-1] < cost[0]  # Lloyd iterations lower the Lagrangian
        results[slope] = log[-1]
    # a steeper slope spends fewer bits for more error
    assert results[5.0]["bits_per_vector"] < 0.8 * results[0.2]["bits_per_vector"]
    assert results[5.0]["squared_error_per_vector"] > results[0.2]["squared_error_per_vector"]


def test_stack_refuses_bad_stage_counts(stack_data):
    stack = _fitted_stack(stack_data, slopes=(1.0,))
    with pytest.raises(ModelError, match="stages"):
        stack.indexes(torch.zeros(1, 12, 2, 2), 2)
    with pytest.raises(ModelError):
        ResidualCodebooks(12, 0, 3, 8)
