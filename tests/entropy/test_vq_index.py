"""The VQ index entropy model (``lcodec.entropy.vq_index``) on its own, small and fast: the config
checks and the codebook ladder, nearest-codeword search against brute force (and its float64
contract), the straight-through forward, context ids and anti-diagonals against their definitions,
the three payloads rebuilt symbol by symbol with constriction and compared with their ideal code
lengths, exact round trips (batch > 1, h != w), the shortest-payload choice, the table checks, the
coding-table sets and the stored entries."""
from __future__ import annotations

import lzma
import math
import re

import constriction
import numpy as np
import pytest
import torch

from lcodec.entropy.vq_index import (
    CODING_BITS,
    MODES,
    VQIndexConfig,
    VQIndexModel,
    _pack,
    _probabilities,
    _unpack,
    context_ids,
    ladder_sizes,
)
from lcodec.errors import BitstreamError, ModelError

C = 3  # context classes: not a power of two, so (C + 1) differs from C, 2 C, 2**k
CFG = VQIndexConfig(code_dim=3, codewords=16, min_codewords=4, context_classes=C)
ROWS = (C + 1) ** 2
TOTAL = 1 << CODING_BITS


def counts_from(p: np.ndarray) -> np.ndarray:
    """Rows of probabilities -> integer counts >= 1 summing to 2**CODING_BITS per row."""
    p = np.atleast_2d(p)
    k = p.shape[1]
    counts = 1 + np.floor(p / p.sum(1, keepdims=True) * (TOTAL - k)).astype(np.int64)
    counts[np.arange(len(counts)), counts.argmax(1)] += TOTAL - counts.sum(1)
    return counts


def random_counts(rng, rows, k, alpha=0.4):
    return counts_from(rng.dirichlet(np.full(k, alpha), size=rows))


def uniform_counts(rows, k):
    return np.full((rows, k), TOTAL // k, dtype=np.int64)


def make_model(level: int, seed: int = 0) -> VQIndexModel:
    """Random codewords of very different norms (so the nearest one is not the largest dot
    product), random classes using every class, random tables for every ladder level."""
    rng = np.random.default_rng(seed)
    m = VQIndexModel(CFG, level)
    for k in m.sizes:
        book = rng.normal(size=(k, CFG.code_dim)) * rng.uniform(0.2, 3.0, size=(k, 1))
        getattr(m, f"codebook_{k}").copy_(torch.from_numpy(book))
        cls = np.concatenate([np.arange(C), rng.integers(0, C, k - C)])
        getattr(m, f"classes_{k}").copy_(torch.from_numpy(rng.permutation(cls)))
        m.set_tables(k, random_counts(rng, 1, k), random_counts(rng, ROWS, k))
    return m


def ref_context(idx, classes, b, r, col):
    """The module docstring: (C + 1) * class(left) + class(up), class C outside the grid."""
    left = int(classes[idx[b, r, col - 1]]) if col > 0 else C
    up = int(classes[idx[b, r - 1, col]]) if r > 0 else C
    return (C + 1) * left + up


def ref_payload(m: VQIndexModel, idx: torch.Tensor, mode: int) -> tuple[bytes, float]:
    """The payload of one mode, coded symbol by symbol with constriction's concrete models, and
    its ideal code length in bits."""
    k = m.size
    t = m.tables[k]
    enc = constriction.stream.queue.RangeEncoder()
    bits = 0.0
    b, h, w = idx.shape
    if mode < 2:  # batch, rows, columns in order
        for v in idx.reshape(-1).tolist():
            if mode == 0:
                enc.encode(np.array([v], np.int32), constriction.stream.model.Uniform(k))
                bits += math.log2(k)
            else:
                p = t["histogram"][0] / TOTAL
                enc.encode(np.array([v], np.int32), constriction.stream.model.Categorical(p, perfect=False))
                bits -= math.log2(t["histogram"][0, v] / TOTAL)
    else:  # item by item, anti-diagonal by anti-diagonal, rows increasing
        classes = m.classes()
        for i in range(b):
            for d in range(h + w - 1):
                for r in range(h):
                    col = d - r
                    if 0 <= col < w:
                        ctx = ref_context(idx, classes, i, r, col)
                        v = int(idx[i, r, col])
                        p = t["context"][ctx] / TOTAL
                        enc.encode(np.array([v], np.int32), constriction.stream.model.Categorical(p, perfect=False))
                        bits -= math.log2(t["context"][ctx, v] / TOTAL)
    return enc.get_compressed().astype("<u4").tobytes(), bits


def rand_idx(k, shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, k, shape))


# ------------------------------------------------------------------ config and ladder
def test_config_defaults_and_dict_round_trip():
    cfg = VQIndexConfig()
    assert (cfg.code_dim, cfg.codewords, cfg.min_codewords, cfg.context_classes) == (32, 4096, 64, 8)
    assert ladder_sizes(cfg) == [64, 128, 256, 512, 1024, 2048, 4096]
    assert VQIndexConfig.from_dict(CFG.to_dict()) == CFG
    with pytest.raises(ModelError, match="unknown VQIndexConfig keys"):
        VQIndexConfig.from_dict({**CFG.to_dict(), "levels": 3})
    assert MODES == ("uniform", "histogram", "context") and CODING_BITS == 20


@pytest.mark.parametrize("kw", [
    dict(codewords=96, min_codewords=32),  # K not a power of two
    dict(codewords=64, min_codewords=24),  # min not a power of two
    dict(codewords=64, min_codewords=1, context_classes=1),  # min below 2
    dict(codewords=16, min_codewords=32),  # min above K
    dict(codewords=64, min_codewords=8, context_classes=1),  # classes below 2
    dict(codewords=64, min_codewords=8, context_classes=9),  # classes above min
    dict(codewords=1 << 17, min_codewords=64),  # K above 65536
])
def test_config_refuses_invalid_sizes(kw):
    with pytest.raises(ModelError, match="must be powers of two with 2 <= classes <= min <= codewords <= 65536"):
        VQIndexConfig(**kw)


def test_config_accepts_the_boundaries():
    for kw in (dict(codewords=1 << 16, min_codewords=1 << 16, context_classes=2),
               dict(codewords=2, min_codewords=2, context_classes=2),
               dict(codewords=64, min_codewords=8, context_classes=8),
               dict(codewords=64, min_codewords=8, context_classes=5)):
        VQIndexConfig(**kw)


@pytest.mark.parametrize("m,k", [(2, 2), (4, 16), (64, 4096), (8, 1024)])
def test_ladder_doubles_from_the_smallest_to_the_largest(m, k):
    got = ladder_sizes(VQIndexConfig(codewords=k, min_codewords=m, context_classes=2))
    assert got == [m * 2**i for i in range(int(math.log2(k // m)) + 1)]
    assert got[0] == m and got[-1] == k


# ------------------------------------------------------------------ context ids and tables
@pytest.mark.parametrize("shape", [(2, 4, 6), (1, 5, 2), (3, 1, 1)])
def test_context_ids_match_their_definition(shape):
    rng = np.random.default_rng(sum(shape))
    classes = torch.from_numpy(rng.integers(0, C, 16))
    idx = torch.from_numpy(rng.integers(0, 16, shape))
    got = context_ids(idx, classes, C)
    assert got.shape == idx.shape and got.dtype == torch.int64
    b, h, w = shape
    for i in range(b):
        for r in range(h):
            for col in range(w):
                assert int(got[i, r, col]) == ref_context(idx, classes, i, r, col), (i, r, col)
    assert int(got.max()) < ROWS and int(got[:, 0, 0].unique().numel()) == 1  # corner: both outside
    assert int(got[0, 0, 0]) == (C + 1) * C + C


def test_probabilities_are_counts_over_2_to_the_20_exactly():
    counts = random_counts(np.random.default_rng(0), 3, 8)
    p = _probabilities(counts)
    assert p.dtype == np.float64
    assert np.array_equal(p * TOTAL, counts.astype(np.float64))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-15)


def test_pack_is_lzma_of_little_endian_int32_and_unpack_inverts_it():
    a = np.array([[1, 2, TOTAL - 3], [7, 0, 5]], dtype=np.int64)
    blob = _pack(a)
    assert lzma.decompress(blob) == a.astype("<i4").tobytes()
    back = _unpack(blob, (2, 3))
    assert back.dtype == np.int64 and np.array_equal(back, a)
    assert np.array_equal(_unpack(blob, (3, 2)), a.reshape(3, 2))  # only the entry count is checked
    with pytest.raises(ModelError, match=re.escape("stored table of 6 entries, expected (4, 2)")):
        _unpack(blob, (4, 2))


# ------------------------------------------------------------------ the model
@pytest.mark.parametrize("level", [-1, 3])
def test_level_outside_the_ladder_is_refused(level):
    with pytest.raises(ModelError, match=f"ladder level {level} outside 0..2"):
        VQIndexModel(CFG, level)


def test_construction_registers_every_levels_buffers():
    m = VQIndexModel(CFG, 1)
    assert m.sizes == [4, 8, 16] and m.level == 1 and m.size == 8 and m.tables == {}
    state = m.state_dict()
    for k in (4, 8, 16):
        assert state[f"codebook_{k}"].shape == (k, 3) and state[f"codebook_{k}"].dtype == torch.float32
        assert state[f"classes_{k}"].shape == (k,) and state[f"classes_{k}"].dtype == torch.int64
        assert not state[f"codebook_{k}"].any() and not state[f"classes_{k}"].any()
        assert m.codebook(k) is getattr(m, f"codebook_{k}") and m.classes(k) is getattr(m, f"classes_{k}")
    assert m.codebook() is m.codebook_8 and m.classes() is m.classes_8
    assert (m.downsample, m.side_sections, m.per_item_rates, m.embedded) == (1, 0, False, False)
    assert m.num_sections(0) == 1 and m.num_sections(5) == 1


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_indexes_are_the_nearest_codeword_by_brute_force(level, dtype):
    m = make_model(level, seed=level)
    g = torch.Generator().manual_seed(level)
    z = (torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64) * 2).to(dtype)
    idx = m.indexes(z)
    assert idx.shape == (2, 4, 5) and idx.dtype == torch.int64
    book = m.codebook().double().numpy()
    zz = z.double().numpy()
    for b in range(2):
        for i in range(4):
            for j in range(5):
                d = ((book - zz[b, :, i, j]) ** 2).sum(1)
                assert int(idx[b, i, j]) == int(np.argmin(d))
    largest_dot = torch.argmax(torch.einsum("kd,bdhw->bkhw", m.codebook().double(), z.double()), 1)
    assert not torch.equal(idx, largest_dot)  # the norms matter here
    assert torch.equal(m.indexes(m.vectors(idx)), idx)  # a codeword is its own nearest


def test_indexes_resolve_distances_below_float32_rounding():
    """The search runs in float64 on the float64 code vectors: at 1e4 a float32 ulp is u = 2**-10;
    with codewords (1e4, 0) and (1e4 + u, 3u/4), the points (1e4 + 0.6u, 0) and (1e4 + 0.4u, 3u/4)
    are nearest to the first and the second codeword, but rounded to float32 (1e4 + u, 0) and
    (1e4, 3u/4) they would be nearest to the other one."""
    u = 2.0**-10
    m = VQIndexModel(VQIndexConfig(code_dim=2, codewords=2, min_codewords=2, context_classes=2), 0)
    m.codebook().copy_(torch.tensor([[1e4, 0.0], [1e4 + u, 0.75 * u]]))
    assert m.codebook()[1].tolist() == [1e4 + u, 0.75 * u]  # stored exactly
    z = torch.tensor([[1e4 + 0.6 * u, 0.0], [1e4 + 0.4 * u, 0.75 * u]], dtype=torch.float64)
    book = m.codebook().double()
    ref = [int(torch.argmin(((book - v) ** 2).sum(1))) for v in z]
    rounded = [int(torch.argmin(((book - v) ** 2).sum(1))) for v in z.float().double()]
    assert ref == [0, 1] and rounded == [1, 0]
    assert m.indexes(z.T.reshape(1, 2, 1, 2)).tolist() == [[ref]]


def test_indexes_refuse_the_wrong_code_dimension():
    with pytest.raises(ModelError, match="expected 3-dimensional code vectors, got 4"):
        make_model(0).indexes(torch.zeros(1, 4, 2, 2))


def test_vectors_gather_the_codewords():
    m = make_model(2)
    idx = rand_idx(16, (2, 3, 5))
    v = m.vectors(idx)
    assert v.shape == (2, 3, 3, 5) and v.dtype == torch.float32 and v.is_contiguous()
    for b in range(2):
        for i in range(3):
            for j in range(5):
                assert torch.equal(v[b, :, i, j], m.codebook()[idx[b, i, j]])


@pytest.mark.parametrize("level", [0, 1])
def test_forward_is_straight_through_with_the_uniform_code_length(level):
    m = make_model(level, seed=4)
    z = torch.randn(2, 3, 3, 7, generator=torch.Generator().manual_seed(0)).requires_grad_()
    q, bits = m(z)
    assert torch.allclose(q.detach(), m.vectors(m.indexes(z)), rtol=0, atol=1e-6)  # z + (q - z) rounds
    w = torch.randn(q.shape, generator=torch.Generator().manual_seed(1))
    (q * w).sum().backward()
    assert torch.equal(z.grad, w)
    assert set(bits) == {"y"} and bits["y"].shape == (2,)
    assert torch.allclose(bits["y"], torch.full((2,), 21 * math.log2(m.size)))


# ------------------------------------------------------------------ tables
def test_set_tables_checks_shape_counts_and_sums():
    m = VQIndexModel(CFG, 1)
    rng = np.random.default_rng(0)
    hist, ctx = random_counts(rng, 1, 8), random_counts(rng, ROWS, 8)
    zero = hist.copy()
    zero[0, zero.argmin()] -= zero[0].min()  # a zero count, sum still 2**20 - min
    zero[0, zero.argmax()] += hist[0].min()
    assert zero.sum() == TOTAL and zero.min() == 0
    off = hist.copy()
    off[0, 0] += 1
    for bad_hist, bad_ctx, name, rows in (
        (random_counts(rng, 2, 8), ctx, "histogram", 1),
        (random_counts(rng, 1, 4), ctx, "histogram", 1),
        (zero, ctx, "histogram", 1),
        (off, ctx, "histogram", 1),
        (hist, random_counts(rng, ROWS - 1, 8), "context", ROWS),
        (hist, random_counts(rng, ROWS, 16), "context", ROWS),
        (hist, np.vstack([ctx[:-1], off]), "context", ROWS),
    ):
        with pytest.raises(ModelError, match=re.escape(f"{name} table for K=8 must be ({rows}, 8) counts >= 1 "
                                                       f"summing to 2**20")):
            m.set_tables(8, bad_hist, bad_ctx)
    assert m.tables == {}
    m.set_tables(8, hist.astype(np.int32), ctx.tolist())
    assert m.tables[8]["histogram"].dtype == np.int64 and m.tables[8]["context"].dtype == np.int64
    assert np.array_equal(m.tables[8]["histogram"], hist) and np.array_equal(m.tables[8]["context"], ctx)


def test_tables_of_the_own_level_are_required():
    m = VQIndexModel(CFG, 1)
    rng = np.random.default_rng(1)
    with pytest.raises(ModelError, match="no index tables for the 8-codeword codebook"):
        m.export()
    m.set_tables(16, random_counts(rng, 1, 16), random_counts(rng, ROWS, 16))
    with pytest.raises(ModelError, match="no index tables for the 8-codeword codebook"):
        m.export()
    with pytest.raises(ModelError, match="no index tables for the 8-codeword codebook"):
        m.encode_indexes(rand_idx(8, (1, 2, 2)), 2)
    assert len(m.encode_indexes(rand_idx(8, (1, 2, 2)), 0)) > 0  # the uniform code needs none
    m.set_tables(8, random_counts(rng, 1, 8), random_counts(rng, ROWS, 8))
    m.export()


def test_table_sets_cover_the_stored_levels_in_ladder_order():
    m = VQIndexModel(CFG, 0)
    with pytest.raises(ModelError, match="no index tables; load the shipped weights"):
        m.table_sets()
    rng = np.random.default_rng(2)
    stored = {}
    for k in (16, 4):  # set out of order, one level missing
        stored[k] = (random_counts(rng, 1, k), random_counts(rng, ROWS, k))
        m.set_tables(k, *stored[k])
    sets = m.table_sets()
    assert len(sets) == 2
    for t, k in zip(sets, (4, 16)):
        assert t.precision == CODING_BITS and t.num_tables == 1 + ROWS
        assert np.array_equal(t.counts, np.vstack(stored[k]))
        assert not t.offsets.any() and (t.lengths == k).all()
    assert sets[0].sha256 != sets[1].sha256


def test_state_entries_round_trip_and_checks():
    m = make_model(2, seed=5)
    state = m.state_entries()
    assert state["vq_index_config"] == CFG.to_dict()
    assert set(state["vq_tables"]) == {"4", "8", "16"}
    for k in (4, 8, 16):
        for name in ("histogram", "context"):
            blob = state["vq_tables"][str(k)][name]
            assert isinstance(blob, bytes) and np.array_equal(_unpack(blob, m.tables[k][name].shape), m.tables[k][name])
    n = VQIndexModel(CFG, 0)
    n.load_entries(state)
    assert set(n.tables) == {4, 8, 16}
    for k in (4, 8, 16):
        for name in ("histogram", "context"):
            assert np.array_equal(n.tables[k][name], m.tables[k][name])
    other = VQIndexModel(VQIndexConfig(code_dim=3, codewords=16, min_codewords=4, context_classes=2), 0)
    with pytest.raises(ModelError, match="weights were fitted for"):
        other.load_entries(state)
    swapped = {"vq_index_config": CFG.to_dict(),
               "vq_tables": {"8": {"histogram": state["vq_tables"]["8"]["context"],
                                   "context": state["vq_tables"]["8"]["histogram"]}}}
    with pytest.raises(ModelError, match="stored table of 128 entries, expected"):
        VQIndexModel(CFG, 1).load_entries(swapped)
    bad = m.tables[8]["histogram"].copy()
    bad[0, 0] += 1
    broken = {"vq_index_config": CFG.to_dict(),
              "vq_tables": {"8": {"histogram": _pack(bad), "context": state["vq_tables"]["8"]["context"]}}}
    with pytest.raises(ModelError, match="histogram table for K=8"):
        VQIndexModel(CFG, 1).load_entries(broken)


# ------------------------------------------------------------------ coding
@pytest.mark.parametrize("h,w", [(1, 1), (1, 4), (4, 1), (3, 5), (5, 3), (4, 4)])
def test_anti_diagonals_cover_the_grid_once_rows_increasing(h, w):
    diagonals = make_model(0)._grid(torch.zeros(2, h, w))
    assert len(diagonals) == h + w - 1
    seen = []
    for d, (rows, cols) in enumerate(diagonals):
        assert list(rows) == sorted(rows) and (np.asarray(rows) + np.asarray(cols) == d).all()
        ref = [(r, d - r) for r in range(h) if 0 <= d - r < w]
        assert list(zip(rows.tolist(), cols.tolist())) == ref
        seen += ref
    assert sorted(seen) == [(r, c) for r in range(h) for c in range(w)]


@pytest.mark.parametrize("mode", range(3))
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 6, 2), (1, 1, 1)])
def test_payloads_are_the_reference_streams_near_their_ideal_length(mode, shape):
    m = make_model(1, seed=mode)
    idx = rand_idx(m.size, shape, seed=sum(shape))
    ref, ideal = ref_payload(m, idx, mode)
    got = m.encode_indexes(idx, mode)
    assert got == ref
    assert ideal - 1e-6 <= 8 * len(got) <= ideal + 64


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("mode", range(3))
@pytest.mark.parametrize("shape", [(2, 3, 7), (1, 6, 2), (1, 1, 1), (3, 1, 4)])
def test_every_mode_round_trips_exactly(level, mode, shape):
    m = make_model(level, seed=mode + 10 * level)
    idx = rand_idx(m.size, shape, seed=mode + sum(shape))
    got = m.decode_indexes(bytes([mode]) + m.encode_indexes(idx, mode), shape)
    assert got.dtype == torch.int64 and torch.equal(got, idx)


def _grid_from_contexts(m, rule, shape, rng, noise=0.1):
    """Index grids whose every index is rule[context id] (else random with prob. ``noise``)."""
    b, h, w = shape
    idx = torch.zeros(shape, dtype=torch.int64)
    for i in range(b):
        for r in range(h):
            for col in range(w):
                ctx = ref_context(idx, m.classes(), i, r, col)
                idx[i, r, col] = int(rng.integers(0, m.size)) if rng.random() < noise else int(rule[ctx])
    return idx


@pytest.mark.parametrize("expected", [0, 1, 2])
def test_encoder_writes_the_shortest_payload(expected):
    """Each prior wins on data it fits: uniform indexes under skewed tables, histogram-drawn indexes
    under flat context tables, context-driven indexes under a flat histogram."""
    rng = np.random.default_rng(expected)
    m = make_model(1, seed=20 + expected)
    k = m.size
    shape = (2, 6, 9)
    if expected == 0:
        m.set_tables(k, counts_from(np.r_[0.7, np.full(k - 1, 0.3 / (k - 1))]), random_counts(rng, ROWS, k, 0.2))
        idx = rand_idx(k, shape, seed=3)
    elif expected == 1:
        p = np.r_[0.6, 0.2, 0.1, np.full(k - 3, 0.1 / (k - 3))]
        m.set_tables(k, counts_from(p), uniform_counts(ROWS, k))
        idx = torch.from_numpy(rng.choice(k, size=shape, p=p))
    else:
        rule = rng.integers(0, k, ROWS)
        ctx = np.full((ROWS, k), 0.1 / (k - 1))
        ctx[np.arange(ROWS), rule] = 0.9
        m.set_tables(k, uniform_counts(1, k), counts_from(ctx))
        idx = _grid_from_contexts(m, rule, shape, rng)
    z = m.vectors(idx).double() + 0.01 * torch.randn(m.vectors(idx).shape, dtype=torch.float64,
                                                       generator=torch.Generator().manual_seed(0))
    assert torch.equal(m.indexes(z), idx)
    sections, z_hat = m.encode(z, 0, 0)
    lengths = [len(m.encode_indexes(idx, mode)) for mode in range(3)]
    assert len(sections) == 1 and sections[0][0] == expected
    assert lengths[expected] < min(lengths[j] for j in range(3) if j != expected)
    assert sections[0][1:] == m.encode_indexes(idx, expected)
    assert z_hat.dtype == torch.float64 and torch.equal(z_hat, m.vectors(idx).double())
    back = m.decode(tuple(sections), (2, 3, 6, 9), 0, 0)
    assert back.dtype == torch.float64 and torch.equal(back, z_hat)
    assert m.estimate_bits(z, 0, 0) == {"y": 8.0 * len(sections[0])}


def test_uniform_wins_ties():
    """With flat tables every payload is as long as the uniform one: the baseline is kept."""
    m = make_model(1, seed=6)
    m.set_tables(8, uniform_counts(1, 8), uniform_counts(ROWS, 8))
    idx = rand_idx(8, (1, 5, 7), seed=1)
    assert len({len(m.encode_indexes(idx, mode)) for mode in range(3)}) == 1
    sections, _ = m.encode(m.vectors(idx).double(), 0, 0)
    assert sections[0][0] == 0


def test_encode_without_writing_returns_only_the_reconstruction():
    m = VQIndexModel(CFG, 1)  # no tables: nothing may be coded
    m.codebook().copy_(torch.randn(8, 3, generator=torch.Generator().manual_seed(0)))
    z = torch.randn(2, 3, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sections, z_hat = m.encode(z, 0, 0, write=False)
    assert sections == [] and torch.equal(z_hat, m.vectors(m.indexes(z)).double())


@pytest.mark.parametrize("section", [b"", bytes([3]) + bytes(4), bytes([255]), bytes([1]) + bytes(3),
                                     bytes([2]) + bytes(5)])
def test_damaged_sections_are_refused(section):
    with pytest.raises(BitstreamError, match=re.escape("damaged VQ index section (bad mode byte or length)")):
        make_model(0).decode_indexes(section, (1, 2, 2))


def test_decoding_without_tables_is_a_model_error():
    m = VQIndexModel(CFG, 1)
    with pytest.raises(ModelError, match="no index tables for the 8-codeword codebook"):
        m.decode_indexes(bytes([2]) + bytes(4), (1, 2, 2))
