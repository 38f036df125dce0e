"""The fixed-point means network (``lcodec.models.exact.ExactMeans``) and its use for the decoded
latents (``MeanScaleHyperprior.reconstruction_means``): checked against an independent float64
evaluation of PyTorch's own transposed / grouped convolutions on dyadic weights (where float64 is
exact), against the float64 means of the shipped codecs, and for encoder/decoder agreement."""
from __future__ import annotations

import torch
from torch import nn

import lcodec
from lcodec.models.exact import ACT_BITS, GELU_RANGE, ExactMeans, gelu_table


def _dyadic_(module: nn.Module, gen: torch.Generator, step: float = 2.0**-8, peak: int = 200) -> None:
    """Weights and biases set to multiples of ``step`` below ``peak * step``: exactly representable
    in the 16-bit per-channel integers, so the only rounding left is the activations'."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randint(-peak, peak + 1, p.shape, generator=gen).double() * step)


def _reference(h_m: nn.Sequential, z: torch.Tensor) -> torch.Tensor:
    """floor(v * 2**14 + 1/2) after each layer, GELU from the integer table (x above its range, 0
    below), computed with PyTorch's
    float64 (transposed, grouped) convolutions: exact here, since every product and sum of these
    dyadic values stays far below 2**53."""
    up, _, conv = (m.double() for m in h_m)
    a = torch.floor(up(z.double()) * 2.0**ACT_BITS + 0.5)
    inside = gelu_table()[(a.clamp(-GELU_RANGE, GELU_RANGE) + GELU_RANGE).long()]
    a = torch.where(a > GELU_RANGE, a, torch.where(a < -GELU_RANGE, torch.zeros_like(a), inside))  # GELU's tails
    return torch.floor(conv(a * 2.0**-ACT_BITS) * 2.0**ACT_BITS + 0.5) * 2.0**-ACT_BITS


def test_lowering_matches_pytorchs_transposed_and_grouped_convolutions():
    """2-D (a stride-2 transposed 4x4 then a 3x3) and 1-D (transposed then a grouped conv, as
    walloc-audio-hp's h_m): the zero-stuffed, flipped, re-padded lowering and the block-diagonal
    expansion give exactly the reference's values."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        (nn.Sequential(nn.ConvTranspose2d(6, 8, 4, stride=2, padding=1), nn.GELU(), nn.Conv2d(8, 8, 3, padding=1)),
         torch.randint(-20, 21, (2, 6, 5, 7), generator=gen)),
        (nn.Sequential(nn.ConvTranspose1d(4, 12, 4, stride=2, padding=1), nn.GELU(),
                       nn.Conv1d(12, 12, 3, padding=1, groups=3)),
         torch.randint(-20, 21, (2, 4, 9), generator=gen)),
    ]
    for h_m, z in cases:
        _dyadic_(h_m, gen)
        got = ExactMeans(h_m)(z)
        ref = _reference(h_m, z)
        assert got.shape == ref.shape
        assert torch.equal(got, ref)


def _rd_z(photo):
    codec = lcodec.load("walloc-rgb-rd")
    return codec, codec.entropy.hyper_analysis(codec.analyse64(photo[..., :128, :192]))


def test_shipped_means_within_a_hundredth_of_the_float_means(photo):
    """The fixed-point means differ from the float64 ones by the weights' and activations'
    rounding only: far below the latents' quantisation step of 1 (measured: max 0.006)."""
    codec, z = _rd_z(photo)
    diff = (codec.entropy.reconstruction_means(z) - codec.entropy.means(z)).abs()
    assert float(diff.max()) < 0.02 and float(diff.mean()) < 0.002
    audio = lcodec.load("walloc-audio-hp")
    z1 = torch.randint(-6, 7, (1, audio.entropy.hyper.hyper_channels, 40), generator=torch.Generator().manual_seed(1))
    diff = (audio.entropy.reconstruction_means(z1) - audio.entropy.means(z1)).abs()
    assert float(diff.max()) < 0.02 and float(diff.mean()) < 0.002


def test_means_are_multiples_of_the_grid_and_independent_of_threads_and_batch(photo):
    codec, z = _rd_z(photo)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.entropy.reconstruction_means(z)
        torch.set_num_threads(2)
        pair = codec.entropy.reconstruction_means(torch.cat([z.flip(-1), z]))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one * 2.0**ACT_BITS, torch.round(one * 2.0**ACT_BITS))
    assert torch.equal(pair[1:], one)


def test_means_follow_weight_changes():
    """The integer tables are rebuilt when h_m's weights change in place (training, loading), also
    through ``.data``, which does not bump a tensor's version counter."""
    entropy = lcodec.load("walloc-rgb-rd").entropy
    z = torch.randint(-3, 4, (1, entropy.hyper.hyper_channels, 3, 4), generator=torch.Generator().manual_seed(2))
    before = entropy.reconstruction_means(z)
    entropy.h_m[2].bias.data.add_(0.25)
    after = entropy.reconstruction_means(z)
    assert torch.allclose(after - before, torch.full_like(before, 0.25), atol=2.0**-ACT_BITS)


def test_encoder_latents_equal_decoded_latents(photo):
    """What the encoder takes as the decoded latents (restoration filters, video references, and
    ``encode_latents``) is what the decoder computes from the stream, to the bit."""
    x = photo[..., :96, :128]
    for name in ("walloc-rgb-rd", "walloc-rgb-light"):
        codec = lcodec.load(name)
        decoded, _ = codec.decompress_latents(codec.compress(x))
        assert torch.equal(codec.encode_latents(x), decoded)
