"""The mean-scale hyperprior as an entropy model on its own (no transform, no codec), small enough
for mutation testing: the module docstring's pipeline checked step by step in float64, the exact
pieces against plain float64 evaluation, coding round trips in 1-D and 2-D, the section checks and
the weights' entries."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lcodec.entropy.hyperprior import HyperpriorConfig, MeanScaleHyperprior
from lcodec.errors import BitstreamError, ModelError

HYPER = HyperpriorConfig(hyper_channels=3, analysis_hidden=8, index_hidden=8, num_scales=12, min_scale=0.2,
                         max_scale=20.0)


def make(dims=2, rates=0, hyper=HYPER, channels=4, seed=0) -> MeanScaleHyperprior:
    torch.manual_seed(seed)
    m = MeanScaleHyperprior(channels, hyper, dims=dims, rates=rates)
    with torch.no_grad():
        m.h_a[2].weight.mul_(6)  # z spread over several integers
        torch.nn.init.normal_(m.h_m[2].weight, std=0.3)  # non-zero means
        m.h_m[2].bias.normal_(0, 0.5)
        m.index_net.layers[-1].weight.mul_(8)  # several tables in use
    m.eval()
    m.export()
    return m


def latents(dims=2, seed=1, batch=2):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 4, 8, 6) if dims == 2 else (batch, 4, 16)
    return torch.randn(shape, generator=g, dtype=torch.float64) * 3


# ------------------------------------------------------------------ construction
def test_constructor_refuses_invalid_combinations():
    with pytest.raises(ModelError, match="1-D or 2-D latents, not dims=3"):
        MeanScaleHyperprior(4, HYPER, dims=3)
    with pytest.raises(ModelError, match="channel context is for 2-D"):
        MeanScaleHyperprior(4, dataclasses.replace(HYPER, context_slices=2), dims=1)
    with pytest.raises(ModelError, match="mean_groups=2 needs 1-D latents"):
        MeanScaleHyperprior(4, dataclasses.replace(HYPER, mean_groups=2), dims=2)
    with pytest.raises(ModelError, match="divides 4 channels"):
        MeanScaleHyperprior(4, dataclasses.replace(HYPER, mean_groups=3), dims=1)
    MeanScaleHyperprior(4, dataclasses.replace(HYPER, mean_groups=2), dims=1)  # allowed
    with pytest.raises(ModelError, match="use family='gaussian'"):
        MeanScaleHyperprior(4, dataclasses.replace(HYPER, family="laplace", context_mixture=True, context_slices=2,
                                                   context_hidden=0))
    for bad in ({"context_slices": 0}, {"context_slices": 2, "context_hidden": 8}):
        with pytest.raises(ModelError, match="context_mixture needs context_slices >= 2 and context_hidden = 0"):
            MeanScaleHyperprior(4, dataclasses.replace(HYPER, context_mixture=True, **bad))


def test_layer_shapes_follow_the_config_and_means_start_at_zero():
    torch.manual_seed(0)
    for dims, conv in ((2, torch.nn.Conv2d), (1, torch.nn.Conv1d)):
        m = MeanScaleHyperprior(4, HYPER, dims=dims)
        a, act, b = m.h_a
        assert isinstance(a, conv) and isinstance(b, conv) and isinstance(act, torch.nn.GELU)
        assert (a.in_channels, a.out_channels, a.kernel_size[0], a.padding[0]) == (4, 8, 3, 1)
        assert (b.in_channels, b.out_channels, b.kernel_size[0], b.stride[0], b.padding[0]) == (8, 3, 5, 2, 2)
        up, _, last = m.h_m
        assert (up.in_channels, up.out_channels, up.kernel_size[0], up.stride[0], up.padding[0]) == (3, 4, 4, 2, 1)
        assert (last.in_channels, last.out_channels, last.kernel_size[0], last.padding[0]) == (4, 4, 3, 1)
        assert last.weight.abs().sum() == 0 and last.bias.abs().sum() == 0
        assert m.gaussian.scale_table.numel() == 12 and m.prior.channels == 3
        np.testing.assert_allclose(float(m.gaussian.scale_table[0]), 0.2)
        np.testing.assert_allclose(float(m.gaussian.scale_table[-1]), 20.0)
        assert m.side_sections == 1 and m.y_sections == 1 and m.num_sections(0) == 2
        assert m.rate_priors is None and m.context is None
    grouped = MeanScaleHyperprior(4, dataclasses.replace(HYPER, mean_groups=2), dims=1)
    assert grouped.h_m[2].groups == 2


def test_rate_priors_start_as_copies_of_the_shared_prior():
    torch.manual_seed(0)
    m = MeanScaleHyperprior(4, HYPER, rates=3)
    assert len(m.rate_priors) == 3
    for prior in m.rate_priors:
        for (k, a), (k2, b) in zip(prior.state_dict().items(), m.prior.state_dict().items()):
            assert k == k2 and torch.equal(a, b)


# ------------------------------------------------------------------ training path
@pytest.mark.parametrize("dims", [2, 1])
def test_forward_follows_the_docstring_pipeline(dims):
    m = make(dims)
    y = latents(dims).float().requires_grad_()
    y_dec, bits = m(y)
    with torch.no_grad():
        z = m.h_a(y)
        z_hat = torch.round(z)
        means = m.h_m(z_hat)
        scales = m.gaussian.scales_from_indexes(m.index_net(z_hat))
        y_bits_ref = m.gaussian(y, scales, means)[1]
        z_bits_ref = m.prior(z)[1]
    assert set(bits) == {"y", "z"}
    torch.testing.assert_close(bits["y"], y_bits_ref)
    torch.testing.assert_close(bits["z"], z_bits_ref)
    torch.testing.assert_close(y_dec, torch.round(y.detach() - means) + means)
    g = torch.randn_like(y_dec)
    grad, = torch.autograd.grad((y_dec * g).sum(), y, retain_graph=True)
    # straight-through in y (plus the path through the means, which y reaches via h_a -> rounded z: none)
    torch.testing.assert_close(grad, g)
    (bits["y"].sum() + bits["z"].sum()).backward()
    assert all(p.grad is not None for p in m.h_a.parameters())  # the rate reaches the analysis
    assert all(p.grad is not None for p in m.h_m.parameters())


def test_each_item_is_charged_under_its_own_rate_points_prior():
    m = make(rates=3)
    with torch.no_grad():
        for r, prior in enumerate(m.rate_priors):  # make the priors differ
            for p in prior.parameters():
                p.add_(0.3 * (r + 1))
    y = latents(batch=4).float()
    rates = torch.tensor([2, 0, 2, 1])
    _, bits = m(y, rates)
    z = m.h_a(y)
    for i, r in enumerate(rates.tolist()):
        torch.testing.assert_close(bits["z"][i], m.rate_priors[r](z[i : i + 1])[1][0])
    _, shared = m(y)  # no rates: the shared prior
    torch.testing.assert_close(shared["z"], m.prior(z)[1])
    assert m.z_prior(1) is m.rate_priors[1]


def test_z_tables_per_rate_and_their_errors():
    m = make(rates=2)
    assert m.z_tables(0) is m.rate_tables[0] and m.z_tables(1) is m.rate_tables[1]
    plain = make()
    assert plain.z_tables(3) is plain.tables and plain.z_prior(3) is plain.prior
    torch.manual_seed(0)
    fresh = MeanScaleHyperprior(4, HYPER, rates=2)
    with pytest.raises(ModelError, match="no per-rate z tables"):
        fresh.z_tables(0)
    with pytest.raises(ModelError, match="no per-rate z tables"):
        fresh.table_sets()
    with pytest.raises(ModelError, match=r"no coding tables \(z\)"):
        MeanScaleHyperprior(4, HYPER).z_tables(0)


# ------------------------------------------------------------------ exact pieces
@pytest.mark.parametrize("dims", [2, 1])
def test_exact_pieces_equal_plain_float64_evaluation(dims):
    m = make(dims)
    y64 = latents(dims)
    m64 = make(dims).double()
    with torch.no_grad():
        z_ref = torch.round(m64.h_a(y64))
        z = m.hyper_analysis(y64)
        assert z.dtype == torch.int64 and torch.equal(z.double(), z_ref)
        means_ref = m64.h_m(z_ref)
        torch.testing.assert_close(m.means(z), means_ref, rtol=0, atol=1e-12)
        sym = m.symbols(y64, z)
        assert sym.dtype == torch.int64 and torch.equal(sym.double(), torch.round(y64 - means_ref))
        idx = m.table_indexes(z)
        assert idx.dtype == torch.int64 and idx.shape == y64.shape
        assert torch.equal(idx, m.index_net.forward_exact(z.double()).long())
        assert idx.min() >= 0 and idx.max() < 12 and len(idx.unique()) > 2


@pytest.mark.parametrize("dims", [2, 1])
def test_table_indexes_in_bands_equal_the_whole_grid(dims):
    m = make(dims)
    z = m.hyper_analysis(latents(dims, batch=2))
    whole = m.index_net.forward_exact(z.double()).long()
    m.index_band_positions = 1  # one row (2-D) or one position (1-D) of z per band
    assert torch.equal(m.table_indexes(z), whole)
    m.index_band_positions = 4 * z.shape[-1] * 2 if dims == 2 else 6  # a few rows per band, uneven end
    assert torch.equal(m.table_indexes(z), whole)


# ------------------------------------------------------------------ coding
@pytest.mark.parametrize("dims,rates,rate", [(2, 0, 0), (1, 0, 0), (2, 2, 1)])
def test_round_trip_gives_the_encoders_latents(dims, rates, rate):
    m = make(dims, rates=rates)
    y64 = latents(dims)
    sections, none = m.encode(y64, rate, 4)
    assert none is None and len(sections) == m.num_sections(rate) == 2
    y_hat = m.decode(sections, tuple(y64.shape), rate, 4, "test latents")
    _, y_hat_enc = m.encode(y64, rate, 4, write=False)
    z = m.hyper_analysis(y64)
    ref = m.symbols(y64, z).double() + m.reconstruction_means(z)  # symbols from the float64 means
    assert torch.equal(y_hat, ref) and torch.equal(y_hat_enc, ref)
    sym, z_dec, _ = m.decode_symbols(sections, tuple(y64.shape), rate, 4, "test latents")
    assert torch.equal(z_dec, z) and torch.equal(sym, m.symbols(y64, z))
    # the given z is used as is
    z_other = z + 1
    sec2, _ = m.encode(y64, rate, 4, z=z_other)
    _, z2, _ = m.decode_symbols(sec2, tuple(y64.shape), rate, 4, "test latents")
    assert torch.equal(z2, z_other)


def test_carried_channels_are_a_prefix():
    m = make()
    y64 = latents()
    sections, _ = m.encode(y64, 0, 2)
    y_hat = m.decode(sections, tuple(y64.shape), 0, 2, "two channels")
    full = m.decode(m.encode(y64, 0, 4)[0], tuple(y64.shape), 0, 4, "all channels")
    assert y_hat.shape == (2, 2, 8, 6) and torch.equal(y_hat, full[:, :2])
    _, partial = m.encode(y64, 0, 2, write=False)
    assert torch.equal(partial, full[:, :2])


def test_payloads_use_this_rates_z_tables():
    m = make(rates=2)
    with torch.no_grad():
        for p in m.rate_priors[1].parameters():
            p.add_(0.7)
    m.export()
    y64 = latents()
    s0, _ = m.encode(y64, 0, 4)
    s1, _ = m.encode(y64, 1, 4)
    assert s0[1:] == s1[1:] and s0[0] != s1[0]  # same y sections; z coded with another table set
    z = m.hyper_analysis(y64)
    for rate, sec in ((0, s0), (1, s1)):
        assert torch.equal(m.decode_symbols(sec, tuple(y64.shape), rate, 4, "x")[1], z)


def test_hyper_shape_halves_the_grid():
    m = make()
    assert m.hyper_shape((2, 4, 8, 6)) == (2, 3, 4, 3)
    assert make(1).hyper_shape((1, 4, 16)) == (1, 3, 8)


@pytest.mark.parametrize("dims", [2, 1])
def test_short_sections_are_refused_before_decoding(dims):
    m = make(dims)
    y64 = latents(dims)
    z_sec, y_sec = m.encode(y64, 0, 4)[0]
    shape = tuple(y64.shape)
    with pytest.raises(BitstreamError, match=r"too short for the declared test \(side information\)"):
        m.decode((b"", y_sec), shape, 0, 4, "test")
    with pytest.raises(BitstreamError, match="too short for the declared test"):
        m.decode((z_sec, b""), shape, 0, 4, "test")
    with pytest.raises(BitstreamError, match="too short for the declared test"):
        m.decode((z_sec, y_sec[:4]), shape, 0, 4, "test")
    # a stream declaring a much larger grid needs more than these bytes
    big = (shape[0], shape[1], *[16 * g for g in shape[2:]])
    with pytest.raises(BitstreamError, match="too short"):
        m.decode((z_sec, y_sec), big, 0, 4, "test")


def test_check_sections_floor_is_half_the_cheapest_symbol_cost():
    m = make()
    shape = (1, 4, 64, 48)  # only checked, never decoded
    z_floor = 32 * 24 * float(np.sum(m.z_tables(0).min_bits()))  # every z position, summed over channels
    y_floor = 64 * 48 * 4 * float(m.y_tables.min_bits().min())
    n_z, n_y = int(np.ceil(0.5 * z_floor / 8)), int(np.ceil(0.5 * y_floor / 8))
    assert n_z > 4 and n_y > 4
    m.check_sections((bytes(n_z), bytes(n_y), bytes(n_y)), shape, 0, 4, "x")
    with pytest.raises(BitstreamError, match="side information"):
        m.check_sections((bytes(n_z - 1), bytes(n_y)), shape, 0, 4, "x")
    with pytest.raises(BitstreamError, match="too short for the declared x$"):
        m.check_sections((bytes(n_z), bytes(n_y - 1)), shape, 0, 4, "x")
    # fewer carried channels: a proportionally smaller floor
    n_half = int(np.ceil(0.5 * y_floor / 2 / 8))
    m.check_sections((bytes(n_z), bytes(n_half)), shape, 0, 2, "x")
    with pytest.raises(BitstreamError):
        m.check_sections((bytes(n_z), bytes(n_half - 1)), shape, 0, 2, "x")


def test_estimate_bits_is_close_to_the_payloads():
    m = make()
    y64 = latents(batch=1)
    z_sec, y_sec = m.encode(y64, 0, 4)[0]
    est = m.estimate_bits(y64, 0, 4)
    assert set(est) == {"y", "z"}
    # the float estimate charges outliers beyond a table's range more than the escape code costs
    assert 0.75 * 8 * len(y_sec) <= est["y"] <= 1.3 * 8 * len(y_sec) + 64
    assert 0.75 * 8 * len(z_sec) - 64 <= est["z"] <= 1.3 * 8 * len(z_sec) + 64
    two = m.estimate_bits(y64, 0, 2)
    assert two["y"] < est["y"] and two["z"] == est["z"]


# ------------------------------------------------------------------ weights
def test_entries_round_trip_and_refuse_mismatches():
    m = make(rates=2)
    entries = m.state_entries()
    assert entries["hyper_config"] == HYPER.to_dict() and len(entries["rate_tables"]) == 2
    assert len(m.table_sets()) == 4 and m.table_sets()[0] is m.tables and m.table_sets()[1] is m.y_tables
    torch.manual_seed(3)
    other = MeanScaleHyperprior(4, HYPER, rates=2)
    other.load_entries(entries)
    for a, b in zip(other.table_sets(), m.table_sets()):
        np.testing.assert_array_equal(a.counts, b.counts)
    plain = make()
    assert "rate_tables" not in plain.state_entries() and len(plain.table_sets()) == 2
    cases = [
        ({k: v for k, v in entries.items() if k != "hyper_config"}, "lack the hyperprior config"),
        ({k: v for k, v in entries.items() if k != "y_tables"}, "lack the hyperprior config"),
        ({**entries, "hyper_config": dataclasses.replace(HYPER, num_scales=13).to_dict()}, "weights were trained for"),
        ({**entries, "tables": entries["y_tables"]}, "hyperprior tables do not fit"),
        ({**entries, "y_tables": entries["tables"]}, "hyperprior tables do not fit"),
        ({k: v for k, v in entries.items() if k != "rate_tables"}, "one z table set per rate point"),
        ({**entries, "rate_tables": entries["rate_tables"][:1]}, "one z table set per rate point"),
        ({**entries, "rate_tables": tuple(entries["rate_tables"])}, "one z table set per rate point"),
        ({**entries, "rate_tables": [entries["y_tables"]] * 2}, "per-rate z tables do not fit"),
    ]
    for state, message in cases:
        torch.manual_seed(3)
        target = MeanScaleHyperprior(4, HYPER, rates=2)
        with pytest.raises(ModelError, match=message):
            target.load_entries(state)
        assert target.tables is None and target.rate_tables is None  # nothing half-loaded


def test_forward_with_a_channel_context_charges_each_slice_under_its_gaussian():
    hyper = dataclasses.replace(HYPER, context_slices=2, context_hidden=8)
    m = make(hyper=hyper)
    assert m.y_sections == 2 and m.num_sections(0) == 3
    y = latents().float()
    y_dec, bits = m(y)
    with torch.no_grad():
        z_hat = torch.round(m.h_a(y))
        means = m.h_m(z_hat)
        hidden = m.index_net.layers[0](z_hat)
        seen = []

        def gaussian_bits(v, scales, mu):  # each slice's latents under their own scales and means
            seen.append(v.shape)
            return m.gaussian(v, scales, mu)[1]

        ref_dec, ref_bits = m.context(y, means, hidden, gaussian_bits, m.gaussian.scales_from_indexes)
    assert len(seen) == 2 and all(s[1] == 2 for s in seen)  # one call per slice of 2 channels
    torch.testing.assert_close(bits["y"], ref_bits)
    torch.testing.assert_close(y_dec, ref_dec)
    torch.testing.assert_close(bits["z"], m.prior(m.h_a(y))[1])


@pytest.mark.parametrize("context_slices,context_hidden", [(0, 0), (2, 0), (2, 8)])
def test_the_write_pass_returns_the_decoders_latents_when_asked(context_slices, context_hidden):
    """``encode(..., latents=True)``: the same sections as a plain encode, and the y_hat the decoder
    will compute (the model contract's second value), with and without a channel context whose
    slices correct the means (``context_hidden`` > 0)."""
    torch.manual_seed(3)
    hyper = dataclasses.replace(HYPER, context_slices=context_slices, context_hidden=context_hidden)
    m = MeanScaleHyperprior(4, hyper, dims=2)
    with torch.no_grad():
        m.h_a[2].weight.mul_(6)
        torch.nn.init.normal_(m.h_m[2].weight, std=0.3)
        m.h_m[2].bias.normal_(0, 0.5)
        for net in (m.context.means if m.context is not None else []):
            torch.nn.init.normal_(net[-1].weight, std=0.3)  # non-zero mean corrections
    m.eval()
    m.export()
    y64 = latents()
    sections, y_hat = m.encode(y64, 0, 4, latents=True)
    assert sections == m.encode(y64, 0, 4)[0] and m.encode(y64, 0, 4)[1] is None
    decoded = m.decode(sections, tuple(y64.shape), 0, 4, "test latents")
    assert torch.equal(y_hat, decoded) and torch.equal(m.encode(y64, 0, 4, write=False)[1], decoded)
    if context_hidden:  # the slices' corrections really move the second slice's means
        z = m.hyper_analysis(y64)
        plain = m.symbols(y64, z).double() + m.reconstruction_means(z)
        assert not torch.equal(decoded[:, 2:], plain[:, 2:])
