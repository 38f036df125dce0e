"""Contract tests for the multi-codebook quantizer's training path, its residual stack and the
codebook entropy model, written against mutation run 5's survivors. References are computed
here from the docstrings: the soft assignment is the posterior over codewords under a Gaussian
of variance exp(log_variance) with prior softmax(logits)."""
import math

import numpy as np
import pytest
import torch

from lcodec.entropy.codebook import (CodebookConfig, CodebookEntropyModel, MultiCodebookQuantizer,
                                     ResidualCodebooks, variance_for_slope)


def make_vq(seed=0, channels=6, groups=2, codewords=5, commitment=0.25) -> MultiCodebookQuantizer:
    torch.manual_seed(seed)
    q = MultiCodebookQuantizer(channels, groups, codewords, init_scale=1.5, variance=0.7, commitment=commitment)
    with torch.no_grad():
        q.logits.copy_(torch.randn(groups, codewords))
    return q.double()


def reference_soft_and_hard(q, y):
    """Per position and group: posterior-weighted codeword (soft) and MAP codeword (hard)."""
    b, c, h, w = y.shape
    var = math.exp(float(q.log_variance.detach()))
    books, logp = q.codebooks.detach().double(), torch.log_softmax(q.logits.detach().double(), -1)
    soft, hard, idx = torch.zeros_like(y), torch.zeros_like(y), torch.zeros(b, q.groups, h, w, dtype=torch.long)
    for bi in range(b):
        for i in range(h):
            for j in range(w):
                for m in range(q.groups):
                    v = y[bi, m * q.dim:(m + 1) * q.dim, i, j]
                    post = logp[m] - ((v[None] - books[m]) ** 2).sum(-1) / (2 * var)
                    p = torch.softmax(post, 0)
                    soft[bi, m * q.dim:(m + 1) * q.dim, i, j] = p @ books[m]
                    k = int(post.argmax())
                    hard[bi, m * q.dim:(m + 1) * q.dim, i, j] = books[m, k]
                    idx[bi, m, i, j] = k
    return soft, hard, idx, logp


def test_forward_values_bits_and_commitment_follow_the_docstring():
    q = make_vq()
    y = torch.randn(2, 6, 3, 4, dtype=torch.float64) * 1.5  # h != w
    y_hat, bits, commit = q(y)
    soft, hard, idx, logp = reference_soft_and_hard(q, y)
    torch.testing.assert_close(y_hat, hard)
    assert torch.equal(q.indexes(y), idx)
    expected_bits = torch.tensor([-sum(float(logp[m, idx[bi, m]].sum()) for m in range(2)) / math.log(2)
                                  for bi in range(2)], dtype=torch.float64)
    torch.testing.assert_close(bits, expected_bits)
    mse = float(((y - hard) ** 2).mean())
    torch.testing.assert_close(commit, torch.tensor((1 + 0.25) * mse, dtype=torch.float64))


def test_forward_gradients_straight_through_the_soft_assignment_and_split_the_commitment():
    q = make_vq(seed=1)
    y = (torch.randn(1, 6, 2, 3, dtype=torch.float64) * 1.5).requires_grad_()
    y_hat, _, _ = q(y)
    weights = torch.randn_like(y_hat)
    (y_hat * weights).sum().backward()
    # reference: gradient of the soft reconstruction (computed by finite differences, independently)
    eps, g_ref = 1e-6, torch.zeros_like(y)
    for k in range(y.numel()):
        d = torch.zeros_like(y).view(-1)
        d[k] = eps
        d = d.view_as(y)
        plus = (reference_soft_and_hard(q, y.detach() + d)[0] * weights).sum()
        minus = (reference_soft_and_hard(q, y.detach() - d)[0] * weights).sum()
        g_ref.view(-1)[k] = (plus - minus) / (2 * eps)
    torch.testing.assert_close(y.grad, g_ref, rtol=1e-5, atol=1e-7)
    # the commitment: the encoder side (y) is pulled with weight `commitment`, the codebooks with 1
    q.zero_grad()
    y2 = y.detach().clone().requires_grad_()
    _, _, commit = q(y2)
    commit.backward()
    hard = reference_soft_and_hard(q, y2.detach())[1]
    torch.testing.assert_close(y2.grad, 0.25 * 2 * (y2.detach() - hard) / y2.numel())
    assert q.logits.grad is None or float(q.logits.grad.abs().sum()) == 0.0


def test_forward_bits_gradient_reaches_the_logits():
    q = make_vq(seed=2)
    y = torch.randn(2, 6, 2, 2, dtype=torch.float64)
    _, bits, _ = q(y)
    bits.sum().backward()
    # d(-log2 softmax(l)[k]) / dl = (softmax(l) - onehot(k)) / ln 2, summed over the chosen k
    idx = q.indexes(y)
    p = torch.softmax(q.logits.detach(), -1)
    expected = torch.zeros_like(p)
    for m in range(2):
        counts = torch.bincount(idx[:, m].reshape(-1), minlength=5).double()
        expected[m] = (counts.sum() * p[m] - counts) / math.log(2)
    torch.testing.assert_close(q.logits.grad, expected)


def test_export_tables_code_each_index_at_its_prior_probability():
    q = make_vq(seed=3)
    q.export()
    pi = torch.softmax(q.logits.detach().double(), -1).numpy()
    t = q.tables
    assert t.num_tables == 2
    probs = t.counts[:, :5] / float(1 << t.precision)
    np.testing.assert_allclose(probs, pi, rtol=2e-3, atol=3e-5)  # the escape entry holds only ~1e-9


def test_variance_for_slope_makes_the_map_assignment_entropy_constrained():
    assert variance_for_slope(1.0) == pytest.approx(1.0 / (2 * math.log(2)))
    rng = np.random.default_rng(4)
    slope = 0.8
    books, logits = rng.normal(size=(6, 3)), rng.normal(size=6)
    logp = logits - np.log(np.exp(logits).sum())
    s2 = variance_for_slope(slope)
    for v in rng.normal(size=(50, 3)):
        sq = ((v - books) ** 2).sum(-1)
        assert np.argmax(logp - sq / (2 * s2)) == np.argmin(sq + slope * (-logp / np.log(2)))


def test_residual_stack_training_path_equals_stage_by_stage_quantization():
    torch.manual_seed(5)
    stack = ResidualCodebooks(channels=6, stages=3, groups=2, codewords=4).double()
    with torch.no_grad():
        stack.order.copy_(torch.tensor([3, 0, 5, 1, 4, 2]))
        for s, st in enumerate(stack.stages):
            st.codebooks.mul_(2.0 ** -s)
    y = torch.randn(2, 6, 3, 2, dtype=torch.float64) * 2
    for used in (1, 2, 3):
        y_hat, bits, commit = stack(y, used)
        residual, acc, bits_ref, commit_ref = y[:, stack.order], 0, torch.zeros(2, dtype=torch.float64), 0.0
        for st in stack.stages[:used]:
            q, b, c = st(residual)
            acc, bits_ref, commit_ref = acc + q, bits_ref + b, commit_ref + c
            residual = residual - q
        torch.testing.assert_close(y_hat, acc[:, torch.argsort(stack.order)])
        torch.testing.assert_close(bits, bits_ref)
        torch.testing.assert_close(commit, commit_ref)
        # and the same reconstruction as the coding path (indexes -> dequantize)
        torch.testing.assert_close(y_hat, stack.dequantize(stack.indexes(y, used)))
    assert bits.shape == (2,) and commit.dim() == 0


def test_entropy_model_forward_uses_rate_plus_one_stages_or_all():
    torch.manual_seed(6)
    book = CodebookConfig(stages=3, groups=2, codewords=4)
    model = CodebookEntropyModel(6, book).double()
    y = torch.randn(2, 6, 2, 3, dtype=torch.float64)
    for rate in (0, 1, 2):
        y_hat, bits = model(y, torch.tensor([rate, rate]))
        ref_hat, ref_bits, _ = model.codebook(y, rate + 1)
        torch.testing.assert_close(y_hat, ref_hat)
        torch.testing.assert_close(bits["y"], ref_bits)
        assert set(bits) == {"y"}
    y_all, bits_all = model(y)
    torch.testing.assert_close(y_all, model.codebook(y, 3)[0])
    assert model.num_sections(0) == 1 and model.num_sections(2) == 3


def test_entropy_model_state_entries_round_trip():
    torch.manual_seed(7)
    book = CodebookConfig(stages=2, groups=2, codewords=4)
    model = CodebookEntropyModel(6, book)
    model.export()
    entries = model.state_entries()
    assert entries["codebook_config"] == book.to_dict() and len(entries["codebook_tables"]) == 2
    other = CodebookEntropyModel(6, book)
    other.load_entries(entries)
    for a, b in zip(model.table_sets(), other.table_sets()):
        np.testing.assert_array_equal(a.counts, b.counts)
    from lcodec.errors import ModelError
    bad_cases = [({**entries, "codebook_config": CodebookConfig(stages=2, groups=2, codewords=8).to_dict()},
                  "another codebook configuration"),
                 ({"codebook_config": book.to_dict()}, "one table set per codebook stage"),
                 ({**entries, "codebook_tables": entries["codebook_tables"][:1]}, "one table set per codebook stage"),
                 ({**entries, "codebook_tables": tuple(entries["codebook_tables"])}, "one table set per codebook stage")]
    for state, message in bad_cases:
        with pytest.raises(ModelError, match=message):
            CodebookEntropyModel(6, book).load_entries(state)
    wide = CodebookEntropyModel(6, CodebookConfig(stages=2, groups=3, codewords=4))
    wide.export()
    with pytest.raises(ModelError, match="do not fit the configuration"):
        CodebookEntropyModel(6, book).load_entries({**entries, "codebook_tables": wide.state_entries()["codebook_tables"]})


def exported_model(seed=8, stages=3) -> CodebookEntropyModel:
    torch.manual_seed(seed)
    model = CodebookEntropyModel(6, CodebookConfig(stages=stages, groups=2, codewords=4))
    with torch.no_grad():
        for s, st in enumerate(model.codebook.stages):
            st.codebooks.mul_(2.0 ** -s)
            st.logits.copy_(torch.randn(2, 4) * 2)
    model.export()
    return model


def test_entropy_model_coding_is_an_embedded_prefix_and_decodes_exactly():
    model = exported_model()
    y = torch.randn(2, 6, 3, 5, dtype=torch.float64) * 2
    assert model.embedded and model.side_sections == 0 and model.downsample == 1
    long_sections, none = model.encode(y, 2, 6)
    assert none is None and len(long_sections) == 3
    for rate in (0, 1, 2):
        sections, _ = model.encode(y, rate, 6)
        assert tuple(sections) == tuple(long_sections[: rate + 1])  # a prefix of the longer stream
        idx = model.decode_indexes(sections, (2, 6, 3, 5), rate, 6, "test")
        assert idx.shape == (2, rate + 1, 2, 3, 5) and torch.equal(idx, model.codebook.indexes(y, rate + 1))
        y_hat = model.decode(sections, (2, 6, 3, 5), rate, 6, "test")
        _, y_dec = model.encode(y, rate, 6, write=False)
        assert torch.equal(y_hat, y_dec) and torch.equal(y_hat, model.codebook.dequantize(idx))
        est = model.estimate_bits(y, rate, 6)["y"]
        assert est == pytest.approx(sum(model.codebook.information_bits(idx)))
        assert 8 * sum(len(s) for s in sections) <= est + 64 * (rate + 1)


def test_entropy_model_refuses_partial_channels_and_short_payloads():
    from lcodec.errors import BitstreamError, ModelError

    model = exported_model()
    y = torch.randn(1, 6, 4, 4, dtype=torch.float64) * 2
    for call in (lambda: model.encode(y, 0, 5), lambda: model.decode_indexes((b"",), (1, 6, 4, 4), 0, 5, "x")):
        with pytest.raises(ModelError, match="every channel"):
            call()
    sections, _ = model.encode(y, 1, 6)
    # the floor: half the cheapest bits per position of the used stages, over every position
    floor = model.codebook.min_bits_per_position(2) * 16
    expected = sum(float(np.sum(st.tables.min_bits())) for st in model.codebook.stages[:2])
    assert model.codebook.min_bits_per_position(2) == pytest.approx(expected)
    assert model.codebook.min_bits_per_position(1) < model.codebook.min_bits_per_position(2)
    short = int(np.floor(0.5 * floor / 8 - 1e-9))
    if short > 0:
        with pytest.raises(BitstreamError, match="too short for the declared test grid"):
            model.decode_indexes((bytes(short), b""), (1, 6, 4, 4), 1, 6, "test grid")
    big = (1, 6, 64, 64)  # far more positions than these bytes could hold
    with pytest.raises(BitstreamError, match="too short for the declared"):
        model.decode_indexes(sections, big, 1, 6, "big grid")
    with pytest.raises(ModelError):
        CodebookEntropyModel(6, CodebookConfig(stages=2, groups=2, codewords=4)).encode(y, 0, 6)


def test_quantizer_information_bits_are_minus_log2_of_the_table():
    q = make_vq(seed=9).float()
    q.export()
    idx = torch.randint(0, 5, (2, 2, 3, 3))
    t = q.tables
    expected = sum(float(t.precision - np.log2(t.counts[m, int(k)])) for b in range(2) for m in range(2)
                   for k in idx[b, m].reshape(-1))
    assert q.information_bits(idx) == pytest.approx(expected)
