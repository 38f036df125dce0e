"""Multi-codebook quantizer (McQuic-style): exact index round trips, MAP assignment, rate honesty."""
import numpy as np
import pytest
import torch

from lcodec.entropy.codebook import MultiCodebookQuantizer
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
