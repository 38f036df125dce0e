"""The HCLT probabilistic circuit (lcodec.entropy.circuit), checked against its contracts: exact
integer renormalisation, coding counts, marginals against brute-force enumeration, the decoder's
walk against the encoder's layered passes, and Chow-Liu structure learning on a known chain."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lcodec.entropy.circuit import (CODING_BITS, HCLT, MESSAGE_BITS, TABLE_BITS, HCLTConfig, IntegerHCLT,
                                    TreeStructure, chow_liu_tree, quantize, renorm)
from lcodec.errors import ModelError

# a small tree: root 2 with children 0 and 4; 0 has children 1 and 3; 3 has child 5
PARENT = np.array([2, 0, -1, 0, 2, 3])
CFG = HCLTConfig(variables=6, values=4, hidden=3, mi_bins=2)


def random_hclt(cfg: HCLTConfig = CFG, parent: np.ndarray = PARENT, seed: int = 0) -> HCLT:
    g = torch.Generator().manual_seed(seed)
    m = HCLT(cfg, parent, seed=seed)
    k, d, v = cfg.hidden, cfg.variables, cfg.values
    for name, shape in (("prior", (k,)), ("trans", (d, k, k)), ("emit", (d, k, v))):
        t = torch.rand(shape, generator=g, dtype=torch.float64) ** 3 + 0.02  # uneven tables
        getattr(m, name).copy_(t / t.sum(-1, keepdim=True))
    return m


def joint_table(c: IntegerHCLT) -> np.ndarray:
    """p(x) for every x in values**D, by summing the hidden states out one configuration at a time."""
    d, k, v = c.cfg.variables, c.cfg.hidden, c.cfg.values
    prior = c.prior.numpy() / 2**TABLE_BITS
    trans = c.trans.numpy() / 2**TABLE_BITS
    emit = c.emit.numpy() / 2**TABLE_BITS
    parent = c.tree.parent
    p = np.zeros((v,) * d)
    for z in itertools.product(range(k), repeat=d):
        w = 1.0
        for i in range(d):
            w *= prior[z[i]] if parent[i] < 0 else trans[i, z[parent[i]], z[i]]
        e = np.ones((v,) * d) * w
        for i in range(d):
            shape = [1] * d
            shape[i] = v
            e = e * emit[i, z[i]].reshape(shape)
        p += e
    return p


def test_renorm_keeps_ratios_and_is_a_power_of_two_shift():
    g = torch.Generator().manual_seed(1)
    m = torch.floor(torch.rand(50, 7, generator=g, dtype=torch.float64) * 2.0**45) + 1
    out = renorm(m)
    top = out.amax(-1)
    assert ((top >= 2**(MESSAGE_BITS - 1)) & (top < 2**MESSAGE_BITS)).all()
    assert (out >= 1).all() and torch.equal(out, torch.floor(out))
    # the shift is exact: the same power of two for the whole vector, rounded down afterwards
    shift = torch.log2(m.amax(-1) / top).round()
    assert torch.equal(out, torch.floor(m * torch.ldexp(torch.ones(50, 1, dtype=torch.float64), -shift[:, None].long()))
                       .clamp(min=1))
    # a message's scale carries nothing: scaling the input by any power of two gives the same integers
    assert torch.equal(renorm(m * 2.0**-20), out) and torch.equal(renorm(m * 8.0), out)


def test_quantize_gives_valid_proportional_counts():
    g = torch.Generator().manual_seed(2)
    q = torch.floor(torch.rand(200, 256, generator=g, dtype=torch.float64) ** 8 * 2.0**47)
    q[0] = 0.0
    q[0, 3] = 5.0  # one-hot conditional
    counts = quantize(q)
    assert counts.dtype == torch.int64
    assert (counts.sum(-1) == 2**CODING_BITS).all() and (counts >= 1).all()
    assert counts[0, 3] == 2**CODING_BITS - 255
    # proportional to q: within one count of the exact share (plus the remainder on the argmax)
    exact = 1 + q[1:] / q[1:].sum(-1, keepdim=True) * (2**CODING_BITS - 256)
    off = (counts[1:].double() - exact).abs()
    off.scatter_(-1, q[1:].argmax(-1, keepdim=True), 0.0)
    assert off.max() <= 1.0
    # order-preserving: a larger q never gets fewer counts
    a = torch.sort(q[5]).indices
    assert (counts[5][a].diff() >= 0).all()


def test_integer_conditionals_match_brute_force_marginals():
    c = random_hclt().export()
    p = joint_table(c)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    x = torch.from_numpy(np.array(list(itertools.product(range(4), repeat=6)))[::7])  # 586 configurations
    pi = c.beliefs(x)
    q = c.conditionals(pi, torch.arange(6))  # (B, D, V)
    q = (q / q.sum(-1, keepdim=True)).numpy()
    order = c.tree.order
    for row, xi in enumerate(x.numpy()):
        for pos, i in enumerate(order):
            known = order[:pos]
            # p(x_i = . | x_known) by marginalising the brute-force joint
            marg = p
            axes = tuple(a for a in range(6) if a not in known and a != i)
            marg = marg.sum(axis=axes, keepdims=True)
            idx = tuple(xi[a] if a in known else slice(None) if a == i else 0 for a in range(6))
            want = marg[idx].reshape(-1)
            want = want / want.sum()
            np.testing.assert_allclose(q[row, i], want, rtol=1e-5, atol=1e-9)


def test_float_log_likelihood_matches_brute_force():
    m = random_hclt(seed=3)
    # the float model's own tables, enumerated
    c = IntegerHCLT.__new__(IntegerHCLT)
    c.cfg, c.tree = m.cfg, m.tree
    c.prior, c.trans, c.emit = m.prior * 2**TABLE_BITS, m.trans * 2**TABLE_BITS, m.emit * 2**TABLE_BITS
    p = joint_table(c)
    x = torch.tensor([[0, 1, 2, 3, 0, 1], [3, 3, 3, 3, 3, 3], [1, 0, 0, 2, 1, 3]])
    want = np.log([p[tuple(r)] for r in x.numpy()])
    np.testing.assert_allclose(m.log_likelihood(x).numpy(), want, rtol=1e-5)


def test_decoder_walk_computes_the_encoders_integers():
    c = random_hclt(seed=4).export()
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 4, (40, 6), generator=g)
    want = quantize(c.conditionals(c.beliefs(x), torch.arange(6)))  # (B, D, V)
    seen = {}

    def code_node(i, q):
        seen[i] = quantize(q)
        return x[:, i]

    assert torch.equal(c.walk(40, code_node), x)
    for i in range(6):
        assert torch.equal(seen[i], want[:, i]), f"node {i}"


def test_beliefs_of_an_item_do_not_depend_on_its_batch():
    c = random_hclt(seed=6).export()
    x = torch.randint(0, 4, (9, 6), generator=torch.Generator().manual_seed(7))
    whole = c.beliefs(x)
    for i in (0, 4, 8):
        assert torch.equal(c.beliefs(x[i:i + 1])[0], whole[i])
    assert torch.equal(c.beliefs(x.flip(0)), whole.flip(0))


def test_chow_liu_recovers_a_markov_chain():
    rng = np.random.default_rng(0)
    n, d = 4000, 7
    perm = np.array([3, 0, 6, 1, 5, 2, 4])  # chain order over the columns
    x = np.zeros((n, d), dtype=np.int64)
    x[:, perm[0]] = rng.integers(0, 8, n)
    for a, b in zip(perm[:-1], perm[1:]):
        flip = rng.random(n) < 0.15
        x[:, b] = np.where(flip, rng.integers(0, 8, n), x[:, a])
    parent = chow_liu_tree(x, 8, bins=8)
    edges = {frozenset((v, int(parent[v]))) for v in range(d) if parent[v] >= 0}
    assert edges == {frozenset((int(a), int(b))) for a, b in zip(perm[:-1], perm[1:])}
    assert parent[perm[3]] == -1  # rooted at the centre of the chain


def test_tree_structure_orders():
    t = TreeStructure(PARENT)
    assert t.root == 2 and t.order.tolist() == [2, 0, 1, 3, 5, 4]
    assert [c for c in t.children] == [[1, 3], [], [0, 4], [5], [], []]
    for bad in (np.array([-1, -1, 0]), np.array([1, 2, 0]), np.array([-1, 5, 0])):
        with pytest.raises(ModelError):
            TreeStructure(bad)


def test_em_is_monotone_and_fits_a_mixture():
    rng = np.random.default_rng(1)
    z = rng.integers(0, 3, 600)
    centres = np.array([[0, 1, 2, 3, 0, 1], [3, 3, 0, 0, 1, 2], [1, 2, 3, 1, 2, 0]])
    x = np.where(rng.random((600, 6)) < 0.8, centres[z], rng.integers(0, 4, (600, 6)))
    x = torch.from_numpy(x)
    m = HCLT(CFG, chow_liu_tree(x.numpy(), 4, 2))
    m.init_from_clusters(x)
    hist = m.em(x, 8, alpha_trans=1e-4, alpha_emit=1e-4)
    bpd = [h["train_bpd"] for h in hist] + [float(-m.log_likelihood(x).mean() / (6 * math.log(2)))]
    assert all(b <= a + 1e-6 for a, b in zip(bpd, bpd[1:])), bpd  # EM never lowers the likelihood
    after = bpd[-1]
    # the data's entropy is about 6 * H(0.8 + 0.05, 0.05, 0.05, 0.05) + log2(3) bits: EM gets near it
    h = -(0.85 * math.log2(0.85) + 3 * 0.05 * math.log2(0.05))
    assert after < (6 * h + math.log2(3)) / 6 + 0.1


def test_export_and_integer_tables_are_checked():
    c = random_hclt().export()
    for t in c.tables():
        assert (t.counts.sum(-1) == 2**TABLE_BITS).all() and (t.counts >= 1).all()
    with pytest.raises(ModelError, match="rows"):
        IntegerHCLT(CFG, PARENT, c.prior.numpy() * 2, c.trans.numpy(), c.emit.numpy())
    with pytest.raises(ModelError, match="shape"):
        IntegerHCLT(CFG, PARENT, c.prior.numpy(), c.trans.numpy()[:5], c.emit.numpy())
