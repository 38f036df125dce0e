"""The phase-parallel ARM of overfit-rgb (``lcodec.entropy.arm``) on its own, small and fast: the
phase lattice, masks and coarse-level contexts against their definitions in the module docstring;
the network input of every phase position rebuilt patch by patch in the test; causality of the
table choice; the encoder's stream rebuilt chunk by chunk from those reference patches; exact round
trips on non-square grids with escapes; the training path's bits against a float64 Laplace
reference (both activation paths), batching and gradient signs; the weight coder's per-tensor
table choice, escape cost and section checks."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcodec.bitstream.coder import encode_chunks
from lcodec.entropy.arm import (
    MEAN_OFFSET,
    NUM_SCALES,
    PHASES,
    SCALE_INIT,
    ArmConfig,
    ArmEntropyModel,
    _coarse,
    _coded_bits,
    _phase_mask,
    arm_scales,
    decode_integer_params,
    encode_integer_params,
)
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.overfit import LATENT_BOUND, level_sizes

CFG = ArmConfig(hidden=4)
LEVELS = 3
# the module docstring: phase 0 (even row, even col), 1 (odd, odd), 2 (even, odd), 3 (odd, even)
DOC_PHASE = {(0, 0): 0, (1, 1): 1, (0, 1): 2, (1, 0): 3}


@pytest.fixture(scope="module")
def tables():
    """The Laplace tables the codec ships (``overfit_tables_state``: 16-bit counts)."""
    return ArmEntropyModel(CFG, LEVELS).conditional.tables(16)


def make_arm(tables=None, seed=0, cfg=CFG, levels=LEVELS) -> ArmEntropyModel:
    """An ARM with random weights large enough to spread the table indexes and the means widely
    (small tables under far-off means: many symbols escape)."""
    torch.manual_seed(seed)
    arm = ArmEntropyModel(cfg, levels)
    with torch.no_grad():
        for layer, (ws, bs) in zip(arm.net.layers, [(0.5, 1.0), (0.7, 1.0), (3.0, 4.0)]):
            layer.weight.normal_(0, ws)
            layer.bias.normal_(0, bs)
        arm.net.layers[-1].bias += 31
    arm.tables = tables
    return arm


def make_grids(h, w, levels=LEVELS, bound=20, seed=1, batch=1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(-bound, bound + 1, (batch, 1, *s), generator=g) for s in level_sizes(h, w, levels)]


# ------------------------------------------------------------------ references
def ref_patch(grids, level, i, j, p, k):
    """The 4 x k x k input of the symbol at (i, j) of ``level`` in phase ``p``, from the module
    docstring: the level's values where their phase is already decoded (else 0), the mask of those,
    the coarser level's value at (i // 2, j // 2) (0 at the coarsest level), the level number;
    everything 0 outside the grid."""
    y = grids[level][0, 0]
    h, w = y.shape
    parent = grids[level + 1][0, 0] if level + 1 < len(grids) else None
    r = k // 2
    patch = torch.zeros(1, 4, k, k, dtype=torch.int64)
    for a in range(k):
        for b in range(k):
            ii, jj = i + a - r, j + b - r
            if 0 <= ii < h and 0 <= jj < w:
                known = DOC_PHASE[(ii % 2, jj % 2)] < p
                patch[0, 0, a, b] = int(y[ii, jj]) if known else 0
                patch[0, 1, a, b] = int(known)
                patch[0, 2, a, b] = int(parent[ii // 2, jj // 2]) if parent is not None else 0
                patch[0, 3, a, b] = level
    return patch


def ref_steps(arm, grids):
    """Coding order (coarsest level first, phases 0..3, positions row-major) with each symbol's
    (scale index, mean) from the network run on its reference patch alone."""
    steps = []
    for level in range(len(grids) - 1, -1, -1):
        h, w = grids[level].shape[-2:]
        for p in range(4):
            pos = [(i, j) for i in range(h) for j in range(w) if DOC_PHASE[(i % 2, j % 2)] == p]
            if not pos:
                continue
            patches = torch.cat([ref_patch(grids, level, i, j, p, arm.cfg.kernel) for i, j in pos])
            out = arm.net.forward_exact(patches)
            assert out.shape == (len(pos), 2, 1, 1)
            idx = out[:, 0, 0, 0].numpy()
            mu = out[:, 1, 0, 0].numpy() - MEAN_OFFSET
            y = np.array([int(grids[level][0, 0, i, j]) for i, j in pos])
            steps.append((level, p, pos, y, idx, mu))
    return steps


def laplace_bits(v, b):
    """-log2 of the unit-bin mass of a zero-mean Laplace(b) at integer v (float64, floored at 1e-9
    as the conditional's likelihood bound)."""
    v = abs(float(v))
    p = -math.expm1(-0.5 / b) if v == 0 else 0.5 * math.exp(-(v - 0.5) / b) * -math.expm1(-1.0 / b)
    return -math.log2(max(p, 1e-9))


def ref_coded_bits(tables, s, k):
    """Bits of symbol s under table k by the coder's layout (lcodec.bitstream.coder): in range, the
    table's own entry; outside, the escape entry + a side bit + a uniform class over 33 values + the
    floor(log2(d + 1)) low bits of the overshoot d."""
    o, n = int(tables.offsets[k]), int(tables.lengths[k])
    prec = tables.precision
    if o <= s < o + n - 1:
        return prec - math.log2(int(tables.counts[k, s - o]))
    d = (o - 1 - s) if s < o else (s - (o + n - 1))
    assert d >= 0
    return prec - math.log2(int(tables.counts[k, n - 1])) + 1 + math.log2(33) + math.floor(math.log2(d + 1))


# ------------------------------------------------------------------ constants and config
def test_phase_lattice_and_scale_table_follow_the_docstring():
    assert PHASES == ((0, 0), (1, 1), (0, 1), (1, 0))
    assert {ph: i for i, ph in enumerate(PHASES)} == DOC_PHASE
    s = arm_scales()
    assert s.dtype == np.float64 and s.shape == (NUM_SCALES,) == (64,)
    np.testing.assert_allclose(s, np.geomspace(0.11, 64.0, 64), rtol=1e-12)
    assert s[0] == pytest.approx(0.11, rel=1e-14) and s[-1] == pytest.approx(64.0, rel=1e-14)
    assert MEAN_OFFSET == 31 and SCALE_INIT == 31


def test_config_defaults_and_dict_round_trip():
    cfg = ArmConfig()
    got = (cfg.hidden, cfg.kernel, cfg.act_bits, cfg.act_frac, cfg.weight_bits, cfg.weight_frac)
    assert got == (16, 3, 13, 7, 12, 7)
    assert 2 ** (cfg.act_bits - cfg.act_frac) == 64  # activations in [0, 64)
    other = ArmConfig(hidden=5, kernel=5)
    assert ArmConfig.from_dict(other.to_dict()) == other
    with pytest.raises(ModelError, match="unknown ArmConfig keys"):
        ArmConfig.from_dict({**cfg.to_dict(), "width": 3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden = 8  # type: ignore[misc]


# ------------------------------------------------------------------ masks and contexts
@pytest.mark.parametrize("h,w", [(1, 1), (1, 4), (3, 5), (6, 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_phase_mask_marks_exactly_the_phases_already_decoded(h, w, dtype):
    like = torch.zeros(2, 1, 1, 1, dtype=dtype)
    for phase in range(5):
        m = _phase_mask(h, w, phase, like)
        assert m.shape == (1, 1, h, w) and m.dtype == dtype
        ref = torch.tensor([[float(DOC_PHASE[(i % 2, j % 2)] < phase) for j in range(w)] for i in range(h)])
        assert torch.equal(m[0, 0].double(), ref.double()), (phase, m)


@pytest.mark.parametrize("h,w", [(1, 1), (5, 7), (6, 3), (4, 4)])
def test_coarse_is_the_parent_nearest_upsampled_and_cropped(h, w):
    g = torch.Generator().manual_seed(h * 10 + w)
    parent = torch.randint(-9, 10, (2, 3, -(-h // 2), -(-w // 2)), generator=g)
    like = torch.zeros(2, 3, h, w, dtype=torch.int64)
    out = _coarse(parent, h, w, like)
    assert out.shape == (2, 3, h, w)
    for i in range(h):
        for j in range(w):
            assert torch.equal(out[..., i, j], parent[..., i // 2, j // 2])
    z = _coarse(None, h, w, like.double() + 5)
    assert z.shape == like.shape and z.dtype == torch.float64 and not z.any()


def test_phases_skip_only_phases_without_positions():
    arm = ArmEntropyModel(CFG, LEVELS)
    for (h, w), ref in {(1, 1): [0], (1, 6): [0, 2], (3, 1): [0, 3], (2, 2): [0, 1, 2, 3]}.items():
        got = list(arm._phases(h, w))
        assert [p for p, _, _ in got] == ref
        assert all((py, px) == PHASES[p] for p, py, px in got)


# ------------------------------------------------------------------ construction
def test_network_layout_follows_the_config():
    cfg = ArmConfig(hidden=5, kernel=5, act_bits=12, act_frac=6, weight_bits=10, weight_frac=6)
    arm = ArmEntropyModel(cfg, levels=4)
    assert arm.levels == 4 and arm.cfg is cfg and arm.tables is None
    l0, l1, l2 = arm.net.layers
    assert (l0.in_channels, l0.out_channels, l0.kernel_size, l0.stride, l0.padding) == (4, 5, 5, 2, 0)
    assert (l1.in_channels, l1.out_channels, l1.kernel_size, l1.stride) == (5, 5, 1, 1)
    assert (l2.in_channels, l2.out_channels, l2.kernel_size, l2.stride) == (5, 2, 1, 1)
    assert l0.input_range == (-LATENT_BOUND, LATENT_BOUND) and l0.in_frac == 0
    for layer in (l0, l1):
        assert layer.out_frac == 6 and layer.out_max == 2**12 - 1
    assert l1.input_range == (0, 2**12 - 1) and l1.in_frac == 6 and l2.in_frac == 6
    assert l2.out_frac == 0 and l2.out_max == NUM_SCALES - 1
    for layer in (l0, l1, l2):
        assert (layer.weight_bits, layer.weight_frac, layer.bias_bits) == (10, 6, 24)
    assert l2.bias.tolist() == [float(SCALE_INIT), float(MEAN_OFFSET)]  # scale head, mean head (mu = 0)
    assert arm.macs_per_latent == 4 * 5 * 25 + 5 * 5 + 5 * 2
    assert ArmEntropyModel().macs_per_latent == 4 * 16 * 9 + 16 * 16 + 16 * 2
    assert ArmEntropyModel().levels == 7
    cond = arm.conditional
    assert cond.family == "laplace" and cond.tail_mass == 1e-6
    np.testing.assert_array_equal(cond.scale_table.numpy(), arm_scales())


def test_fresh_heads_choose_the_initial_table_and_a_zero_mean():
    arm = ArmEntropyModel(CFG, LEVELS)
    with torch.no_grad():
        arm.net.layers[-1].weight.zero_()
    y = torch.randint(-5, 6, (1, 1, 5, 6))
    out = arm.net.forward_exact(arm._input(y, torch.zeros_like(y), 1, 0))
    assert (out[:, 0] == SCALE_INIT).all() and (out[:, 1] - MEAN_OFFSET == 0).all()


# ------------------------------------------------------------------ the network input
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("h,w", [(5, 8), (6, 3), (1, 4)])
def test_input_windows_are_the_causal_patches_of_the_phase_positions(kernel, h, w):
    arm = ArmEntropyModel(ArmConfig(hidden=4, kernel=kernel), LEVELS)
    grids = make_grids(h, w, seed=kernel + h)
    for level in range(LEVELS):
        y = grids[level]
        gh, gw = y.shape[-2:]
        coarse = _coarse(grids[level + 1] if level + 1 < LEVELS else None, gh, gw, y)
        for p, py, px in arm._phases(gh, gw):
            inp = arm._input(y, coarse, p, level)
            cols = F.unfold(inp.double(), kernel, stride=2)  # what the stride-2, unpadded conv sees
            rows, cols_n = range(py, gh, 2), range(px, gw, 2)
            assert cols.shape == (1, 4 * kernel * kernel, len(rows) * len(cols_n))
            n = 0
            for i in rows:
                for j in cols_n:
                    ref = ref_patch(grids, level, i, j, p, kernel).double().reshape(-1)
                    assert torch.equal(cols[0, :, n], ref), (level, p, i, j)
                    n += 1


def test_table_choice_depends_on_causal_neighbours_only():
    """Checked on the first layer's output (4 channels, rarely all saturated): changing the values
    of this phase or of the later ones never changes it; the decoded neighbours and the coarser
    level do change it (for random weights)."""
    arm = make_arm()
    first = arm.net.layers[0]
    g = torch.Generator().manual_seed(5)
    grids = make_grids(6, 9)
    changed_by_neighbours = changed_by_parent = cases = 0
    for level in range(LEVELS):
        y = grids[level]
        h, w = y.shape[-2:]
        coarse = _coarse(grids[level + 1] if level + 1 < LEVELS else None, h, w, y)
        for p, _, _ in arm._phases(h, w):
            def first_out(yy, cc):
                return first.forward_exact(arm._input(yy, cc, p, level).double())

            base = first_out(y, coarse)
            future = (1 - _phase_mask(h, w, p, y)).bool()  # this phase and the later ones
            y2 = torch.where(future, torch.randint(-50, 51, y.shape, generator=g), y)
            assert torch.equal(first_out(y2, coarse), base)
            cases += 1
            changed_by_neighbours += not torch.equal(first_out(torch.where(future, y, y + 7), coarse), base)
            changed_by_parent += not torch.equal(first_out(y, coarse + 9), base)
    assert cases == 12
    assert changed_by_neighbours == 9  # every phase but phase 0 of each level
    assert changed_by_parent == 12
    # and the whole network: only the causal part of the grid matters for the table and the mean
    y = grids[0]
    h, w = y.shape[-2:]
    coarse = _coarse(grids[1], h, w, y)
    for p in range(4):
        future = (1 - _phase_mask(h, w, p, y)).bool()
        y2 = torch.where(future, -y, y)
        assert torch.equal(arm.net.forward_exact(arm._input(y2, coarse, p, 0)),
                           arm.net.forward_exact(arm._input(y, coarse, p, 0)))


# ------------------------------------------------------------------ coding
@pytest.mark.parametrize("h,w", [(7, 10), (5, 2), (1, 1), (1, 6)])
def test_encode_is_the_chunk_stream_of_the_reference_tables(tables, h, w):
    arm = make_arm(tables)
    grids = make_grids(h, w, seed=h + 3 * w)
    chunks = [(y - mu, idx) for _, _, _, y, idx, mu in ref_steps(arm, grids)]
    assert arm.encode(grids) == encode_chunks(chunks, tables)


@pytest.mark.parametrize("h,w", [(1, 1), (2, 1), (1, 6), (9, 4), (6, 11)])
def test_round_trip_is_exact_with_escapes(tables, h, w):
    arm = make_arm(tables, seed=h * w)
    grids = make_grids(h, w, bound=LATENT_BOUND, seed=h + w)
    grids[0][0, 0, 0, 0] = LATENT_BOUND
    grids[0][0, 0, -1, -1] = -LATENT_BOUND
    data = arm.encode(grids)
    back = arm.decode(data, (h, w))
    assert len(back) == LEVELS
    for a, b, s in zip(grids, back, level_sizes(h, w, LEVELS)):
        assert b.dtype == torch.int64 and b.shape == (1, 1, *s)
        assert torch.equal(a, b)


def test_payload_is_the_ideal_code_length_with_escapes(tables):
    arm = make_arm(tables, seed=0)
    grids = make_grids(12, 17, seed=4, bound=40)
    steps = ref_steps(arm, grids)
    ideal = sum(ref_coded_bits(tables, int(s), int(k)) for _, _, _, y, idx, mu in steps for s, k in zip(y - mu, idx))
    escapes = sum(int(not (tables.offsets[k] <= s < tables.offsets[k] + tables.lengths[k] - 1))
                  for _, _, _, y, idx, mu in steps for s, k in zip(y - mu, idx))
    assert escapes > 10  # the escape path is exercised
    payload = 8 * len(arm.encode(grids))
    assert ideal - 1 <= payload <= ideal + 64, (payload, ideal)


def test_decoded_latents_never_leave_the_latent_range(tables):
    """A stream whose symbols put latents beyond +-LATENT_BOUND (an encoder given values outside its
    contract) decodes to the clamped values: the network clamps its inputs to that range on both
    sides, so the tables stay in step and every other latent comes back exactly."""
    arm = make_arm(tables, seed=1)
    grids = make_grids(5, 6, seed=3)
    grids[0][0, 0, 1, 2] = 500
    grids[1][0, 0, 0, 1] = -400
    back = arm.decode(arm.encode(grids), (5, 6))
    for a, b in zip(grids, back):
        assert torch.equal(b, a.clamp(-LATENT_BOUND, LATENT_BOUND))
    assert int(back[0][0, 0, 1, 2]) == LATENT_BOUND and int(back[1][0, 0, 0, 1]) == -LATENT_BOUND


def test_coding_without_tables_is_refused():
    arm = make_arm(None)
    grids = make_grids(3, 4)
    with pytest.raises(BitstreamError, match="no coding tables"):
        arm.encode(grids)
    with pytest.raises(BitstreamError, match="no coding tables"):
        arm.decode(b"\0" * 8, (3, 4))


# ------------------------------------------------------------------ training path
def _ref_bits(arm, grids, table):
    return sum(laplace_bits(v - m, table[k]) for _, _, _, y, idx, mu in ref_steps(arm, grids)
               for v, k, m in zip(y, idx, mu))


@pytest.mark.parametrize("h,w", [(7, 10), (4, 1)])
def test_forward_bits_are_the_laplace_code_length_of_the_exact_tables(h, w):
    arm = make_arm(seed=3)
    grids = make_grids(h, w, seed=11)
    ref = _ref_bits(arm, grids, arm_scales())
    with torch.no_grad():
        got = arm([g.float() for g in grids], exact_activations=True)
    assert got.dim() == 0
    assert float(got) == pytest.approx(ref, rel=1e-5)


def test_relaxed_forward_matches_when_no_activation_needs_rounding():
    """Hidden weights that are integers in real units and biases on the 2**-act_frac grid keep
    every activation on its grid, so the relaxed path must give the exact tables' bits."""
    arm = make_arm(seed=4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        l1 = arm.net.layers[1]
        l1.weight.copy_(torch.randint(-1, 2, l1.weight.shape, generator=g).float())
        l1.bias.copy_(torch.randint(-300, 300, l1.bias.shape, generator=g).float() / 2**CFG.act_frac)
    grids = make_grids(8, 5, seed=12)
    ref = _ref_bits(arm, grids, arm_scales())
    with torch.no_grad():
        assert float(arm([x.float() for x in grids])) == pytest.approx(ref, rel=1e-5)
        assert float(arm([x.float() for x in grids], exact_activations=True)) == pytest.approx(ref, rel=1e-5)


def test_forward_sums_over_the_batch():
    arm = make_arm(seed=5)
    grids = make_grids(6, 7, batch=2, seed=13)
    with torch.no_grad():
        both = float(arm([g.float() for g in grids], exact_activations=True))
        one = [float(arm([g[i:i + 1].float() for g in grids], exact_activations=True)) for i in range(2)]
    assert one[0] != pytest.approx(one[1])
    assert both == pytest.approx(sum(one), rel=1e-6)


def test_forward_gradients_reach_every_layer_and_the_grids():
    arm = make_arm(seed=6)
    g = torch.Generator().manual_seed(3)
    grids = [(y.float() + torch.rand(y.shape, generator=g) - 0.5).requires_grad_() for y in make_grids(6, 7)]
    for exact in (False, True):
        arm.zero_grad()
        for y in grids:
            y.grad = None
        bits = arm(grids, exact_activations=exact)
        bits.backward()
        for layer in arm.net.layers:
            for p in (layer.weight, layer.bias):
                assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
        for y in grids:
            assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


@pytest.mark.parametrize("exact", [False, True])
def test_head_gradients_have_the_signs_of_the_rate(exact):
    """Zero last-layer weights: every symbol gets the initial table and mean 0. For zero grids a
    larger scale only costs bits; for grids far from the mean it saves bits; values above the mean
    pull the mean up."""
    arm = ArmEntropyModel(CFG, LEVELS)
    with torch.no_grad():
        arm.net.layers[-1].weight.zero_()
    sizes = level_sizes(5, 6, LEVELS)
    for fill, scale_sign, mean_sign in ((0.0, 1, 0), (40.0, -1, -1)):
        arm.zero_grad()
        arm([torch.full((1, 1, *s), fill) for s in sizes], exact_activations=exact).backward()
        gs, gm = arm.net.layers[-1].bias.grad.tolist()
        assert np.sign(gs) == scale_sign
        assert np.sign(gm) == mean_sign


def test_training_steps_lower_the_rate():
    """Plain gradient steps on the training path's bits lower them (no optimizer object: its first
    step alone would cost this file a second)."""
    arm = make_arm(seed=7)
    grids = [g.float() for g in make_grids(6, 6, bound=3, seed=2)]
    with torch.no_grad():
        start = float(arm(grids))
    for _ in range(10):
        arm.zero_grad()
        arm(grids).backward()
        with torch.no_grad():
            for p in arm.parameters():
                p -= 3e-3 * p.grad
    with torch.no_grad():
        assert float(arm(grids)) < 0.9 * start


# ------------------------------------------------------------------ network weights in the stream
def test_coded_bits_count_the_table_entry_and_the_escape(tables):
    rng = np.random.default_rng(1)
    for k in (0, 17, 40, 63):
        o, n = int(tables.offsets[k]), int(tables.lengths[k])
        s = np.concatenate([rng.integers(o - 3000, o + n + 3000, 60), [o - 1, o, o + n - 2, o + n - 1, o + n]])
        ref = sum(ref_coded_bits(tables, int(v), k) for v in s)
        assert _coded_bits(tables, s, k) == pytest.approx(ref, rel=1e-12)
        real = 8 * len(encode_chunks([(s, np.full(s.size, k))], tables))
        assert ref - 1 <= real <= ref + 64


def test_weight_coder_picks_each_tensors_cheapest_table_and_round_trips(tables):
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    laplace20 = torch.from_numpy(np.round(rng.laplace(0, 20, 2000)).astype(np.int64))
    tensors = [
        torch.zeros(3, 2, 3, 3, dtype=torch.int64),
        laplace20,
        torch.randint(-300, 301, (4, 3, 1, 1), generator=g),
        torch.tensor([2**23 - 1, -(2**23 - 1), 0, 5]),  # 24-bit biases: escapes
        torch.zeros(0, dtype=torch.int64),
        torch.tensor(-7),
    ]
    data = encode_integer_params(tensors, tables)
    n = len(tensors)
    flats = [t.reshape(-1).numpy() for t in tensors]
    costs = [[sum(ref_coded_bits(tables, int(v), k) for v in s) for k in range(tables.num_tables)] for s in flats]
    choice = list(data[:n])
    for c, row in zip(choice, costs):
        assert row[c] == pytest.approx(min(row), rel=1e-12)
    assert choice[0] == 0  # zeros: the narrowest table
    assert 10 <= arm_scales()[choice[1]] <= 40  # Laplace(20) samples: a table of about that scale
    assert data[n:] == encode_chunks([(s, np.full(s.size, c)) for s, c in zip(flats, choice)], tables)
    back = decode_integer_params(data, [tuple(t.shape) for t in tensors], tables)
    assert len(back) == n
    for a, b in zip(tensors, back):
        assert b.dtype == torch.int64 and b.shape == a.shape and torch.equal(a, b)


def test_weight_section_checks(tables):
    tensors = [torch.arange(-4, 5).reshape(3, 3), torch.tensor([1, 2])]
    shapes = [tuple(t.shape) for t in tensors]
    data = encode_integer_params(tensors, tables)
    with pytest.raises(BitstreamError, match="too short"):
        decode_integer_params(data[:1], shapes, tables)
    with pytest.raises(BitstreamError, match="too short"):
        decode_integer_params(b"", [(1,)], tables)
    for bad in (NUM_SCALES, 255):
        with pytest.raises(BitstreamError, match="names a table that does not exist"):
            decode_integer_params(bytes([data[0], bad]) + data[2:], shapes, tables)
    # the last table exists: a stream that names it decodes
    last = bytes([NUM_SCALES - 1]) + encode_chunks([(np.array([3, -2]), np.full(2, NUM_SCALES - 1))], tables)
    assert torch.equal(decode_integer_params(last, [(2,)], tables)[0], torch.tensor([3, -2]))
    with pytest.raises(BitstreamError, match="multiple of 4"):
        decode_integer_params(data[:-1], shapes, tables)
    assert decode_integer_params(data[:2], [(0,), (0,)], tables)[0].numel() == 0
