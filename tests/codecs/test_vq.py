"""The VQ codec's parts against their contracts: nearest-codeword quantization, the three index
priors' exact round trips and the shortest-payload choice, context ids, k-means, the prior fitting,
erasure masks and restoration; then the shipped vq-rgb through the public API."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lcodec
from lcodec.codecs.vq import decompress_with_erasures, erasure_mask
from lcodec.entropy.vq_index import CODING_BITS, MODES, VQIndexConfig, VQIndexModel, context_ids, ladder_sizes
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.train.vq import kmeans, nearest
from lcodec.train.vq_ladder import fit_priors
from tests.conftest import FIXTURES

CFG = VQIndexConfig(code_dim=4, codewords=16, min_codewords=4, context_classes=2)


def _tables(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """Random pmfs as counts >= 1 summing to 2**CODING_BITS."""
    p = rng.dirichlet(np.full(k, 0.3), size=rows)
    counts = 1 + np.floor(p * ((1 << CODING_BITS) - k)).astype(np.int64)
    counts[:, 0] += (1 << CODING_BITS) - counts.sum(1)
    return counts


def _model(level: int, seed: int = 0) -> VQIndexModel:
    rng = np.random.default_rng(seed)
    m = VQIndexModel(CFG, level)
    c = CFG.context_classes
    for k in m.sizes:
        getattr(m, f"codebook_{k}").copy_(torch.from_numpy(rng.normal(size=(k, CFG.code_dim))).float())
        getattr(m, f"classes_{k}").copy_(torch.from_numpy(rng.integers(0, c, k)))
        m.set_tables(k, _tables(rng, 1, k), _tables(rng, (c + 1) ** 2, k))
    return m


def test_ladder_sizes_halve_down_to_the_smallest():
    assert ladder_sizes(CFG) == [4, 8, 16]
    assert ladder_sizes(VQIndexConfig()) == [64, 128, 256, 512, 1024, 2048, 4096]
    with pytest.raises(ModelError):
        VQIndexConfig(codewords=100)


def test_indexes_are_the_nearest_codeword():
    m = _model(2)
    z = torch.randn(2, CFG.code_dim, 3, 5, dtype=torch.float64)
    idx = m.indexes(z)
    book = m.codebook().double()
    flat = z.permute(0, 2, 3, 1).reshape(-1, CFG.code_dim)
    brute = torch.stack([torch.argmin(((book - v) ** 2).sum(1)) for v in flat]).reshape(2, 3, 5)
    assert torch.equal(idx, brute)
    assert torch.equal(m.vectors(idx), book.float()[idx].permute(0, 3, 1, 2))


def test_context_ids_match_their_definition():
    classes = torch.tensor([0, 1, 1, 0])
    g = torch.tensor([[[0, 1, 2], [3, 2, 1]]])
    got = context_ids(g, classes, 2)
    c = 2
    for i in range(2):
        for j in range(3):
            left = classes[g[0, i, j - 1]] if j > 0 else c
            up = classes[g[0, i - 1, j]] if i > 0 else c
            assert got[0, i, j] == (c + 1) * left + up


@pytest.mark.parametrize("mode", range(len(MODES)))
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 7), (1, 9, 4)])
def test_every_prior_round_trips_exactly(mode, shape):
    m = _model(2, seed=sum(shape) + mode)
    idx = torch.from_numpy(np.random.default_rng(mode).integers(0, m.size, shape))
    payload = m.encode_indexes(idx, mode)
    assert torch.equal(m.decode_indexes(bytes([mode]) + payload, shape), idx)


def test_encoder_writes_the_shortest_payload_and_never_more_than_uniform():
    m = _model(2, seed=3)
    # indexes drawn from the histogram table: a prior that fits them beats the uniform code
    p = m.tables[16]["histogram"][0] / (1 << CODING_BITS)
    idx = torch.from_numpy(np.random.default_rng(0).choice(16, size=(1, 20, 20), p=p))
    z = m.vectors(idx).double()
    section = m.encode(z, 0, CFG.code_dim)[0][0]
    lengths = [len(m.encode_indexes(idx, k)) for k in range(len(MODES))]
    assert len(section) - 1 == min(lengths) and section[0] == int(np.argmin(lengths))
    assert len(section) - 1 <= 4 * math.ceil(400 * 4 / 32) + 4
    assert torch.equal(m.decode(m.encode(z, 0, 4)[0], (1, 4, 20, 20), 0, 4), z.float().double())


def test_damaged_sections_raise_bitstream_error():
    m = _model(1)
    with pytest.raises(BitstreamError):
        m.decode_indexes(b"", (1, 2, 2))
    with pytest.raises(BitstreamError):
        m.decode_indexes(bytes([7]) + bytes(8), (1, 2, 2))
    with pytest.raises(BitstreamError):
        m.decode_indexes(bytes([2, 1, 2]), (1, 2, 2))


def test_tables_are_checked_and_required():
    m = VQIndexModel(CFG, 0)
    with pytest.raises(ModelError):
        m.encode_indexes(torch.zeros(1, 2, 2, dtype=torch.long), 1)
    bad = np.full((1, 4), 1 << (CODING_BITS - 2))
    bad[0, 0] += 1
    with pytest.raises(ModelError):
        m.set_tables(4, bad, _tables(np.random.default_rng(0), 9, 4))


def test_state_entries_round_trip():
    m = _model(2, seed=5)
    n = VQIndexModel(CFG, 2)
    n.load_entries(m.state_entries())
    for k in m.sizes:
        for name in ("histogram", "context"):
            assert np.array_equal(m.tables[k][name], n.tables[k][name])


def test_kmeans_recovers_separated_clusters_and_respects_weights():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    x = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g, dtype=torch.float64) for c in centres])
    got = kmeans(x, 3, iters=20)
    dist = torch.cdist(centres, got).min(1).values
    assert (dist < 0.1).all()
    # weights: one cluster of two points, one much heavier -> the centre lies next to the heavy one
    pts = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    assert abs(float(kmeans(pts, 1, weights=torch.tensor([9.0, 1.0]))[0, 0]) - 0.1) < 1e-9
    assert torch.equal(nearest(got.float(), got.float()), torch.arange(3))


def test_fitted_priors_are_valid_tables_and_pick_the_best_alpha():
    rng = np.random.default_rng(0)
    k, c = 8, 2
    classes = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    grids = []
    for _ in range(20):  # a Markov chain along rows: the left neighbour's class predicts the next
        g = np.zeros((1, 6, 6), dtype=np.int64)
        for i in range(6):
            for j in range(6):
                prev = classes[g[0, i, j - 1]] if j else rng.integers(2)
                g[0, i, j] = rng.integers(0, 4) + 4 * int(prev if rng.random() < 0.9 else 1 - prev)
        grids.append(torch.from_numpy(g))
    hist, ctx, info = fit_priors(grids, classes, k, c)
    for t in (hist, ctx):
        assert (t >= 1).all() and (t.sum(1) == 1 << CODING_BITS).all()
    bits = info["held_out_bits_per_index"]
    assert info["alpha_scores"][info["alpha"]] == min(info["alpha_scores"].values()) == bits["context"]
    assert bits["context"] < bits["histogram"] <= bits["uniform"] + 0.05


def test_erasure_mask_loses_the_asked_fraction():
    m = erasure_mask((2, 8, 10), 0.2, seed=1)
    assert m.dtype == torch.bool and m.shape == (2, 8, 10)
    assert m.sum(dim=(1, 2)).tolist() == [16, 16]
    assert torch.equal(m, erasure_mask((2, 8, 10), 0.2, seed=1))
    assert not erasure_mask((1, 3, 3), 0.0).any()
    with pytest.raises(InputError):
        erasure_mask((1, 3, 3), 1.5)


# ------------------------------------------------------------------ the shipped codec
@pytest.fixture(scope="module")
def photo():
    from lcodec.io.image import read_image

    return read_image(FIXTURES / "coffee_481x321.png")[None]


def test_spec_names_a_vq_transform_and_a_ladder():
    from lcodec.registry import get_spec

    spec = get_spec("vq-rgb")
    assert "VQ" in spec.transform and "vector-quantized" in spec.transform
    assert spec.qualities == tuple(range(1, 8))


@pytest.mark.parametrize("quality", [1, 7])
def test_shipped_round_trip_rate_bound_and_size(photo, quality):
    codec = lcodec.load("vq-rgb", quality)
    data = codec.compress(photo)
    x_hat = lcodec.decompress(data)
    assert x_hat.shape == photo.shape
    assert torch.equal(x_hat, lcodec.decompress(data))
    positions = math.ceil(321 / 16) * math.ceil(481 / 16)
    k = 2 ** (quality + 5)
    section = codec.parse(data).sections[0]
    # never more than the uniform code (log2 K bits per index) plus the range coder's last word
    assert len(section) - 1 <= 4 * math.ceil(positions * math.log2(k) / 32) + 4


def test_lower_quality_spends_fewer_bits(photo):
    sizes = [len(lcodec.load("vq-rgb", q).compress(photo)) for q in (1, 4, 7)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_odd_sizes_decode_to_their_size():
    x = torch.rand(1, 3, 37, 53)
    assert lcodec.decompress(lcodec.load("vq-rgb", 3).compress(x)).shape == x.shape


def test_restoration_beats_filling_with_the_mean_code(photo):
    codec = lcodec.load("vq-rgb", 7)
    data = codec.compress(photo)
    full = lcodec.decompress(data)
    same, none = decompress_with_erasures(codec, data, 0.0)
    assert not none.any() and torch.equal(same, full)
    restored, lost = decompress_with_erasures(codec, data, 0.2, seed=0)
    assert lost.float().mean().item() == pytest.approx(0.2, abs=0.01)
    z_hat, shape = codec.decompress_latents(data)
    mean_code = codec.entropy.codebook().float().mean(0)[None, :, None, None]
    naive = codec.decode_latents(torch.where(lost[:, None], mean_code, z_hat.float()), size=shape[2:])

    def mse(y):
        return float(((y - photo) ** 2).mean())

    assert mse(full) < mse(restored) < mse(naive)
    with pytest.raises(InputError):
        decompress_with_erasures(codec, data, torch.zeros(1, 2, 2, dtype=torch.bool))


def test_context_payload_is_anti_diagonals_with_rows_increasing():
    """The stream format (module docstring): mode 2 codes anti-diagonal by anti-diagonal, rows
    increasing within one, each index with its context's table; rebuilt here symbol by symbol."""
    import constriction

    m = _model(2, seed=7)
    idx = torch.from_numpy(np.random.default_rng(1).integers(0, m.size, (2, 4, 5)))
    ctx = context_ids(idx, m.classes(), CFG.context_classes)
    table = np.ldexp(m.tables[m.size]["context"].astype(np.float64), -CODING_BITS)
    enc = constriction.stream.queue.RangeEncoder()
    fam = constriction.stream.model.Categorical(perfect=False)
    for b in range(2):
        for d in range(4 + 5 - 1):
            for r in range(4):
                c = d - r
                if 0 <= c < 5:
                    enc.encode(np.array([idx[b, r, c]], np.int32), fam, table[ctx[b, r, c]][None])
    assert m.encode_indexes(idx, 2) == enc.get_compressed().astype("<u4").tobytes()


def test_unseen_contexts_back_off_to_the_histogram():
    """fit_priors: context tables back off to the histogram, so a context never seen in training
    gets the histogram's table."""
    k, c = 8, 2
    classes = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    rng = np.random.default_rng(0)
    grids = [torch.from_numpy(rng.choice(4, size=(1, 5, 5), p=[0.55, 0.3, 0.1, 0.05])) for _ in range(20)]
    hist, ctx, _ = fit_priors(grids, classes, k, c)
    unseen = (c + 1) * 1 + 1  # left and up both of class 1: never occurs
    np.testing.assert_allclose(ctx[unseen], hist[0], rtol=1e-6, atol=2)
    assert ctx[unseen][:4].sum() > 0.9 * (1 << CODING_BITS)


def test_load_entries_rejects_another_config():
    m = _model(2, seed=5)
    other = VQIndexModel(VQIndexConfig(code_dim=8, codewords=16, min_codewords=4, context_classes=2), 2)
    with pytest.raises(ModelError):
        other.load_entries(m.state_entries())


def test_shipped_stream_decodes_to_the_encoders_indexes(photo):
    """The decoder's code vectors are the codewords of the indexes the encoder chose."""
    codec = lcodec.load("vq-rgb", 7)
    idx = codec.entropy.indexes(codec.transform.analyse64(photo, codec.multiple))
    z_hat, _ = codec.decompress_latents(codec.compress(photo))
    assert torch.equal(z_hat.float(), codec.entropy.vectors(idx))
