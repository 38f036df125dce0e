"""Contract tests for the HCLT circuit and its entropy-model wrapper, written against mutation
run 5's survivors: mutual information and the Chow-Liu tree against plain references written
here, the emission M-step against its docstring, and the table storage round trips."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lcodec.entropy.circuit import HCLT, TABLE_BITS, HCLTConfig, IntegerHCLT, chow_liu_tree, mutual_information
from lcodec.entropy.circuit_model import CircuitEntropyModel
from lcodec.errors import BitstreamError, InputError, ModelError
from tests.entropy.test_circuit import CFG, PARENT, random_hclt


def reference_mi(x: np.ndarray, values: int, bins: int) -> np.ndarray:
    """Pairwise MI (nats) of equal-width-binned columns, counts smoothed by 1e-3 per cell."""
    n, d = x.shape
    b = np.clip(np.floor(x * bins / values).astype(int), 0, bins - 1)
    out = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            if i == j:
                continue
            c = np.zeros((bins, bins))
            np.add.at(c, (b[:, i], b[:, j]), 1.0)
            p = (c + 1e-3) / (n + 1e-3 * bins * bins)
            pi, pj = p.sum(1), p.sum(0)
            out[i, j] = max(0.0, float((p * np.log(p / np.outer(pi, pj))).sum()))
    return out


def test_mutual_information_matches_a_per_pair_reference():
    rng = np.random.default_rng(0)
    n, values = 400, 16
    a = rng.integers(0, values, n)
    x = np.stack([a, (a + rng.integers(0, 3, n)) % values, rng.integers(0, values, n),
                  values - 1 - a, np.minimum(a // 2 + rng.integers(0, 2, n), values - 1)], axis=1)
    for bins in (2, 3, 4):
        mi = mutual_information(x, values, bins)
        np.testing.assert_allclose(mi, reference_mi(x, values, bins), rtol=1e-9, atol=1e-12)
        assert (np.diag(mi) == 0).all()
    assert mutual_information(x, values, 4)[0, 3] > 0.5  # a and values-1-a: fully dependent


def maximum_spanning_edges(w: np.ndarray) -> set[frozenset[int]]:
    """Prim's algorithm on a dense symmetric weight matrix (maximum weight)."""
    d = len(w)
    seen, edges = {0}, set()
    while len(seen) < d:
        best = max(((i, j) for i in seen for j in range(d) if j not in seen), key=lambda e: w[e])
        edges.add(frozenset(best))
        seen.add(best[1])
    return edges


def eccentricity(parent: np.ndarray, node: int) -> int:
    d = len(parent)
    adj = {i: set() for i in range(d)}
    for c, p in enumerate(parent):
        if p >= 0:
            adj[c].add(int(p))
            adj[int(p)].add(c)
    dist, frontier = {node: 0}, [node]
    while frontier:
        nxt = []
        for u in frontier:
            for v in adj[u]:
                if v not in dist:
                    dist[v] = dist[u] + 1
                    nxt.append(v)
        frontier = nxt
    return max(dist.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chow_liu_tree_is_the_maximum_spanning_tree_rooted_at_its_centre(seed):
    rng = np.random.default_rng(seed)
    n, d, values = 600, 9, 8
    x = np.zeros((n, d), dtype=np.int64)
    x[:, 0] = rng.integers(0, values, n)
    parents = [-1] + [int(rng.integers(0, i)) for i in range(1, d)]  # a random tree of dependencies
    for i in range(1, d):
        noise = rng.integers(-1, 2, n) * (rng.random(n) < 0.3 + 0.05 * i)
        x[:, i] = np.clip(x[:, parents[i]] + noise, 0, values - 1)
    parent = chow_liu_tree(x, values, bins=4)
    assert parent.dtype == np.int64 and parent.shape == (d,) and (parent < 0).sum() == 1
    edges = {frozenset((c, int(p))) for c, p in enumerate(parent) if p >= 0}
    assert edges == maximum_spanning_edges(mutual_information(x, values, 4))
    root = int(np.flatnonzero(parent < 0)[0])
    assert eccentricity(parent, root) == min(eccentricity(parent, i) for i in range(d))


def test_chow_liu_tree_default_bins_are_four():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 16, (300, 6))
    x[:, 1] = x[:, 0] // 4 * 4 + rng.integers(0, 4, 300)  # dependent only at 4-bin resolution
    np.testing.assert_array_equal(chow_liu_tree(x, 16), chow_liu_tree(x, 16, bins=4))


def reference_emission_update(counts, x, values, alpha, smooth):
    """The docstring of HCLT._emission_update, written with loops."""
    hist = np.bincount(x.reshape(-1), minlength=values).astype(np.float64)
    base = (hist + 1) / (hist + 1).sum()
    counts = counts.copy()
    if smooth > 0:
        sharp = hist > 4 * np.median(hist)
        r = math.ceil(3 * smooth)
        kern = {o: math.exp(-0.5 * (o / smooth) ** 2) for o in range(-r, r + 1)}
        for row in counts.reshape(-1, values):
            old = row.copy()
            soft_mass = old[~sharp].sum()
            spread = np.zeros(values)
            for u in np.flatnonzero(~sharp):
                num = sum(kern[o] * old[u + o] for o in kern if 0 <= u + o < values and not sharp[u + o])
                den = sum(kern[o] for o in kern if 0 <= u + o < values and not sharp[u + o])
                spread[u] = num / den
            row[~sharp] = spread[~sharp] * soft_mass / max(spread[~sharp].sum(), 1e-12)
    e = counts + alpha * base
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("smooth", [0.0, 0.7, 1.5])
def test_emission_update_follows_its_docstring(smooth):
    cfg = HCLTConfig(variables=3, values=12, hidden=2, mi_bins=2)
    m = random_hclt(cfg, np.array([-1, 0, 0]))
    rng = np.random.default_rng(5)
    x = rng.integers(0, 12, (200, 3))
    x[:120, :] = 5  # value 5 is "sharp": far above 4x the median frequency
    counts = rng.random((3, 2, 12)) * 10
    got = m._emission_update(torch.from_numpy(counts), torch.from_numpy(x), alpha=0.5, smooth=smooth)
    ref = reference_emission_update(counts, x, 12, 0.5, smooth)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)
    if smooth:
        hist = np.bincount(x.reshape(-1), minlength=12)
        assert hist[5] > 4 * np.median(hist)  # the sharp value really is one


def test_integer_tables_round_trip_and_reject_the_wrong_configuration():
    c = random_hclt().export()
    back = IntegerHCLT.from_tables(CFG, PARENT, c.tables())
    for name in ("prior", "trans", "trans_t", "emit", "emit_t"):
        assert torch.equal(getattr(back, name), getattr(c, name))
    t = c.tables()
    wrong_cfg = HCLTConfig(variables=6, values=5, hidden=3, mi_bins=2)
    for bad_cfg, bad_tables in ((CFG, t[:2]), (CFG, t + t[:1]), (CFG, [t[0], t[2], t[1]]), (wrong_cfg, t),
                                (HCLTConfig(variables=6, values=4, hidden=4, mi_bins=2), t),
                                (HCLTConfig(variables=7, values=4, hidden=3, mi_bins=2), t)):
        with pytest.raises(ModelError, match="stored HCLT tables do not fit the configuration"):
            IntegerHCLT.from_tables(bad_cfg, PARENT, bad_tables)


def test_to_device_keeps_every_table_and_the_structure():
    c = random_hclt().export()
    moved = c.to("cpu")
    assert moved is not c and moved.cfg == c.cfg and moved.tree is c.tree
    for name in ("prior", "trans", "trans_t", "emit", "emit_t"):
        assert torch.equal(getattr(moved, name), getattr(c, name)), name
    x = torch.randint(0, CFG.values, (5, CFG.variables))
    every = torch.arange(CFG.variables)
    assert torch.equal(moved.conditionals(moved.beliefs(x), every), c.conditionals(c.beliefs(x), every))


def test_state_entries_round_trip_through_load_entries():
    m = CircuitEntropyModel(CFG)
    m.set_circuit(random_hclt(seed=3))
    m.export()
    entries = m.state_entries()
    assert entries["circuit_config"] == CFG.to_dict()
    assert entries["circuit_tables"].dtype == torch.uint8
    fresh = CircuitEntropyModel(CFG)
    fresh.load_entries({**entries, "state_dict": {"parent": torch.from_numpy(PARENT)}})
    for name in ("prior", "trans", "emit"):
        assert torch.equal(getattr(fresh.circuit, name), getattr(m.circuit, name))
    assert fresh.parent.tolist() == PARENT.tolist()
    # the tables really are packed (neighbour differences, LZMA): smaller than raw int32 rows
    raw_bytes = 4 * (CFG.hidden + CFG.variables * CFG.hidden * (CFG.hidden + CFG.values))
    assert entries["circuit_tables"].numel() < raw_bytes + 64
    assert (m.circuit.emit.sum(-1) == 1 << TABLE_BITS).all()


def test_set_circuit_rejects_a_circuit_of_another_size_and_forward_is_refused():
    m = CircuitEntropyModel(CFG)
    with pytest.raises(ModelError, match="circuit was fitted as"):
        m.set_circuit(random_hclt(HCLTConfig(variables=6, values=5, hidden=3, mi_bins=2)))
    with pytest.raises(ModelError, match="fitted by EM, not by gradients"):
        m(torch.zeros(1, 1, 6))


# ------------------------------------------------------------ the entropy-model role (run 6)
def fitted_model(seed: int = 0) -> CircuitEntropyModel:
    m = CircuitEntropyModel(CFG)
    m.set_circuit(random_hclt(seed=seed))
    m.export()
    return m


def symbols_under(m: CircuitEntropyModel, x: torch.Tensor) -> float:
    """Ideal bits of items x (N, D) in the coding order, from brute-force conditionals: p(x_i | x_<i)
    is a ratio of marginals, each summed over the hidden states and the unobserved variables."""
    from tests.entropy.test_circuit import joint_table

    p = joint_table(m.circuit)
    order = m.circuit.tree.order
    total = 0.0
    for item in x.tolist():
        seen = []
        for i in order:
            axes = tuple(a for a in range(CFG.variables) if a not in seen + [int(i)])
            marg = p.sum(axis=axes) if axes else p
            idx_num = tuple(item[a] for a in sorted(seen + [int(i)]))
            num = marg[idx_num]
            den = marg.sum(axis=sorted(seen + [int(i)]).index(int(i)))[tuple(item[a] for a in sorted(seen))] \
                if seen else 1.0
            total -= math.log2(num / den)
            seen.append(int(i))
    return total


def test_coding_round_trip_and_rate_of_the_entropy_model():
    m = fitted_model()
    assert m.num_sections(0) == 1 and m.side_sections == 0 and m.downsample == 1
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, CFG.values, (5, 1, 2, 3), generator=g)  # 6 variables per item, row-major
    (payload,), symbols = m.encode(x.double(), 0, 1)
    assert symbols.dtype == torch.int32 and torch.equal(symbols, x.int())
    out = m.decode((payload,), (5, 1, 2, 3), 0, 1, "test items")
    assert out.dtype == torch.int32 and out.shape == (5, 1, 2, 3) and torch.equal(out, x.int())
    ideal = symbols_under(m, x.reshape(5, -1))
    est = m.estimate_bits(x.double(), 0, 1)["y"]
    assert est == pytest.approx(ideal, rel=1e-3, abs=0.5)  # integer counts of 2**20: tiny loss
    assert 8 * len(payload) <= ideal + 64 and len(payload) % 4 == 0
    info = m.information(x.reshape(5, -1))
    assert info.shape == (5,) and float(info.sum()) == pytest.approx(est)
    empty, syms = m.encode(x.double(), 0, 1, write=False)
    assert empty == () and torch.equal(syms, x.int())


def test_the_entropy_model_refuses_bad_latents_and_streams():
    m = fitted_model()
    x = torch.randint(0, CFG.values, (2, 1, 6)).double()
    with pytest.raises(InputError, match="codes 6 symbols per item, got 5"):
        m.encode(x[..., :5], 0, 1)
    with pytest.raises(InputError, match="not integer-valued"):
        m.encode(x + 0.25, 0, 1)
    with pytest.raises(InputError, match=r"values must be integers in 0\.\.3"):
        m.encode(x + 4, 0, 1)
    with pytest.raises(InputError, match=r"values must be integers in 0\.\.3"):
        m.encode(x - 5, 0, 1)
    (payload,), _ = m.encode(x, 0, 1)
    with pytest.raises(BitstreamError, match="declares 2 x 7 symbols, not 6 symbols per item"):
        m.decode((payload,), (2, 1, 7), 0, 1, "2 x 7 symbols")
    with pytest.raises(BitstreamError, match="not a multiple of 4 bytes"):
        m.decode((payload[:-1],), (2, 1, 6), 0, 1, "x")
    with pytest.raises(BitstreamError, match="empty payload for 2 x items"):
        m.decode((b"",), (2, 1, 6), 0, 1, "items")
    with pytest.raises(ModelError, match="no integer circuit"):
        CircuitEntropyModel(CFG).decode((payload,), (2, 1, 6), 0, 1, "x")
    with pytest.raises(ModelError, match="no integer circuit"):
        CircuitEntropyModel(CFG).encode(x, 0, 1)
    # carried channels: only the first `carried` channels are the circuit's variables
    two = torch.cat([x.reshape(2, 1, 6), torch.full((2, 1, 6), 0.5, dtype=torch.float64)], 1)
    (p2,), s2 = m.encode(two, 0, 1)
    assert p2 == payload and torch.equal(s2, x.int())
    assert torch.equal(m.decode((p2,), (2, 2, 6), 0, 1, "x"), x.int())


def test_probabilities_are_counts_over_2_20():
    from lcodec.entropy.circuit_model import _probabilities

    counts = torch.tensor([[1, 2**19, 2**19 - 1]], dtype=torch.int64)
    p = _probabilities(counts)
    assert p.dtype == np.float64 and p.tolist() == [[2.0**-20, 0.5, 0.5 - 2.0**-20]]


def test_load_entries_refuses_each_missing_or_foreign_part():
    m = fitted_model()
    entries = {**m.state_entries(), "state_dict": {"parent": torch.from_numpy(PARENT)}}
    other_cfg = HCLTConfig(variables=6, values=4, hidden=4, mi_bins=2)
    cases = [({k: v for k, v in entries.items() if k != "circuit_tables"}, "the weights hold no circuit tables"),
             ({k: v for k, v in entries.items() if k != "circuit_config"}, "the weights hold no circuit tables"),
             ({**entries, "circuit_config": other_cfg.to_dict()}, "weights hold a circuit"),
             ({**entries, "circuit_tables": torch.zeros(10, dtype=torch.uint8)}, "stored circuit tables are damaged"),
             ({k: v for k, v in entries.items() if k != "state_dict"}, r"no circuit structure \(parent\)"),
             ({**entries, "state_dict": {}}, r"no circuit structure \(parent\)")]
    import lzma
    short = torch.frombuffer(bytearray(lzma.compress(b"\x00" * 8)), dtype=torch.uint8)
    cases.append(({**entries, "circuit_tables": short}, "stored circuit tables do not fit"))
    for state, message in cases:
        fresh = CircuitEntropyModel(CFG)
        with pytest.raises(ModelError, match=message):
            fresh.load_entries(state)
        assert fresh.circuit is None
    fresh = CircuitEntropyModel(CFG)
    assert fresh.parent.tolist() == [-1] * 6 and fresh.float_model is None
    fresh.load_entries(entries)
    assert fresh.parent.dtype == torch.int64 and fresh.parent.tolist() == PARENT.tolist()
    assert fresh.table_sets()[2].counts.shape == (6 * 3, 4)
    with pytest.raises(ModelError, match="no integer circuit; load shipped weights or call export"):
        CircuitEntropyModel(CFG).table_sets()
    unexported = CircuitEntropyModel(CFG)
    with pytest.raises(ModelError, match="no integer circuit"):
        unexported.export()


def test_hclt_config_limits():
    HCLTConfig(variables=2, values=2, hidden=2, mi_bins=2)  # the smallest circuit
    HCLTConfig(variables=2, values=256, hidden=256, mi_bins=2)  # the largest values and hidden states
    defaults = HCLTConfig()
    assert (defaults.variables, defaults.values, defaults.hidden, defaults.mi_bins) == (784, 256, 16, 4)
    for bad in ({"variables": 1}, {"values": 1}, {"values": 257}, {"hidden": 1}, {"hidden": 257}, {"mi_bins": 1}):
        kwargs = {"variables": 2, "values": 2, "hidden": 2, "mi_bins": 2, **bad}
        with pytest.raises(ModelError, match="invalid HCLT config"):
            HCLTConfig(**kwargs)


def test_check_values_accepts_exactly_the_circuits_alphabet():
    c = random_hclt().export()
    ok = torch.tensor([[0, 3, 1, 2, 3, 0]])
    assert torch.equal(c.check_values(ok), ok) and c.check_values(ok.int()).dtype == torch.int64
    assert c.check_values(torch.zeros(0, 6, dtype=torch.int64)).shape == (0, 6)  # no items
    for bad in (torch.tensor([[0, 4, 1, 2, 3, 0]]), torch.tensor([[0, -1, 1, 2, 3, 0]])):
        with pytest.raises(InputError, match=r"values must be integers in 0\.\.3"):
            c.check_values(bad)
    for shape in ((6,), (1, 5), (1, 1, 6)):
        with pytest.raises(InputError, match=rf"expected \(items, 6\) values, got \({', '.join(map(str, shape))},?\)"):
            c.check_values(torch.zeros(shape, dtype=torch.int64))


def random_tree(d: int, rng) -> np.ndarray:
    parent = np.array([-1] + [int(rng.integers(0, i)) for i in range(1, d)])
    perm = rng.permutation(d)  # relabel so the root is not always node 0
    out = np.empty(d, dtype=np.int64)
    out[perm] = np.where(parent < 0, -1, perm[np.maximum(parent, 0)])
    return out


def test_tree_structure_against_its_definitions():
    from lcodec.entropy.circuit import TreeStructure

    rng = np.random.default_rng(7)
    for d in (1, 2, 5, 12):
        parent = random_tree(d, rng)
        t = TreeStructure(parent.tolist())  # any integer sequence
        assert t.parent.dtype == np.int64 and t.root == int(np.flatnonzero(parent < 0)[0])
        children = {v: sorted(int(c) for c in np.flatnonzero(parent == v)) for v in range(d)}
        assert t.children == [children[v] for v in range(d)]

        def ancestors(v):
            n = 0
            while parent[v] >= 0:
                v, n = parent[v], n + 1
            return n

        assert t.depth.tolist() == [ancestors(v) for v in range(d)]
        assert [lv.tolist() for lv in t.levels] == [[v for v in range(d) if ancestors(v) == k]
                                                   for k in range(max(map(ancestors, range(d))) + 1)]
        pre = []

        def visit(v):
            pre.append(v)
            for c in children[v]:
                visit(c)

        visit(t.root)
        assert t.order.dtype == np.int64 and t.order.tolist() == pre
        assert t.position.tolist() == [pre.index(v) for v in range(d)]
        assert t.rank.tolist() == [children[parent[v]].index(v) if parent[v] >= 0 else 0 for v in range(d)]

        def subtree(v):
            return 1 + sum(subtree(c) for c in children[v])

        assert t.size.tolist() == [subtree(v) for v in range(d)]
        assert t.max_children == max(len(c) for c in children.values())
        nodes = np.arange(d)
        for r in range(3):
            sel, kids = t.by_rank(nodes, r)
            assert sel.tolist() == [v for v in range(d) if len(children[v]) > r]
            assert kids.tolist() == [children[v][r] for v in sel.tolist()]


def test_tree_structure_refuses_what_is_not_a_tree():
    from lcodec.entropy.circuit import TreeStructure

    TreeStructure(np.array([-1, 0, 1]))  # parents up to d - 1 are in range
    for parent in ([0, 0, 1], [-1, -1, 0], [-1, 0, 3]):
        with pytest.raises(ModelError, match="exactly one root and parents in range"):
            TreeStructure(np.array(parent))
    with pytest.raises(ModelError, match="not reachable from the root"):
        TreeStructure(np.array([-1, 2, 1]))  # 1 and 2 are each other's parent


def test_float_hclt_starts_normalised_and_seeded():
    m = HCLT(CFG, PARENT, seed=3)
    k, d, v = CFG.hidden, CFG.variables, CFG.values
    assert m.prior.dtype == torch.float64 and torch.allclose(m.prior, torch.full((k,), 1 / k, dtype=torch.float64))
    assert m.trans.shape == (d, k, k) and m.emit.shape == (d, k, v)
    for t in (m.trans, m.emit):
        assert t.dtype == torch.float64
        torch.testing.assert_close(t.sum(-1), torch.ones(t.shape[:-1], dtype=torch.float64))
        # entries start as uniform(0.5, 1.5) before normalising: within a factor 3 of each other per row
        ratio = t.max(-1).values / t.min(-1).values
        assert (ratio < 3).all() and (ratio > 1.01).all()
    again, other, default = HCLT(CFG, PARENT, seed=3), HCLT(CFG, PARENT, seed=4), HCLT(CFG, PARENT)
    assert torch.equal(again.trans, m.trans) and torch.equal(again.emit, m.emit)
    assert not torch.equal(other.trans, m.trans) and not torch.equal(other.emit, m.emit)
    assert torch.equal(default.emit, HCLT(CFG, PARENT, seed=0).emit)
    with pytest.raises(ModelError, match="tree over 5 variables, config says 6"):
        HCLT(CFG, PARENT[:5])


def test_integer_hclt_checks_each_table_by_name():
    c = random_hclt().export()
    prior, trans, emit = c.prior.numpy(), c.trans.numpy(), c.emit.numpy()
    edge = emit.copy()
    edge[0, 0, :] = 1
    edge[0, 0, 0] += (1 << TABLE_BITS) - emit.shape[-1]  # counts of exactly 1 are allowed
    IntegerHCLT(CFG, PARENT, prior, trans, edge)
    zero = prior.copy()
    zero[0], zero[1] = zero[0] + zero[1], 0
    cases = [((prior[:2], trans, emit), r"HCLT prior table has shape \(2,\), expected \(3,\)"),
             ((prior, trans[:5], emit), r"HCLT trans table has shape \(5, 3, 3\), expected \(6, 3, 3\)"),
             ((prior, trans, emit[:, :2]), r"HCLT emit table has shape"),
             ((zero, trans, emit), "HCLT prior rows must be counts >= 1"),
             ((prior, trans, np.where(edge == 1, 0, edge)), "HCLT emit rows must be counts >= 1"),
             ((prior, trans + 1, emit), r"HCLT trans rows must be counts >= 1 summing to 2\*\*16")]
    for (p, t, e), message in cases:
        with pytest.raises(ModelError, match=message):
            IntegerHCLT(CFG, PARENT, p, t, e)
