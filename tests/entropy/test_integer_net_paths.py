"""The exact convolution paths of lcodec.entropy.integer_net against PyTorch's own convolutions on
small integers (where float64 is exact in any order): the unfold path that runs off the CPU, and
the phase decomposition of the transposed convolution. Written against mutation run 4's survivors."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from lcodec.entropy.integer_net import _correlate_exact, _correlate_unfold, _transposed_exact


def _ints(shape, seed, lo=-20, hi=21):
    return torch.randint(lo, hi, shape, generator=torch.Generator().manual_seed(seed)).double()


@pytest.mark.parametrize("k, stride, padding", [((3, 3), (1, 1), (1, 1)), ((5, 3), (2, 1), (2, 0)),
                                                  ((1, 1), (1, 1), (0, 0)), ((4, 4), (2, 2), (1, 1)),
                                                  ((3, 5), (1, 3), (0, 2))])
def test_the_unfold_path_equals_conv2d(k, stride, padding):
    x, w, b = _ints((2, 3, 9, 11), 0), _ints((4, 3, *k), 1), _ints((4,), 2)
    expected = F.conv2d(x, w, b, stride=stride, padding=padding)
    got = _correlate_unfold(x, w, b, stride, padding)
    assert got.shape == expected.shape and torch.equal(got, expected)
    assert torch.equal(_correlate_exact(x, w, b, stride, padding), expected)


@pytest.mark.parametrize("k, s, p", [(k, s, p) for k, s, p in itertools.product((2, 3, 4, 5), (1, 2, 3), (0, 1, 2))
                                     if p <= k - 1])
def test_transposed_phases_equal_conv_transpose2d(k, s, p):
    """Output size s*H + k - 1 - 2p, as zero insertion with output_padding s - 1 gives."""
    x, w, b = _ints((2, 3, 5, 4), 3), _ints((3, 2, k, k), 4), _ints((2,), 5)
    expected = F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=s - 1)
    got = _transposed_exact(x, w, b, (k, k), (s, s), (p, p))
    assert got.shape == expected.shape and torch.equal(got, expected)


def test_transposed_phases_with_different_axes():
    x, w, b = _ints((1, 2, 4, 6), 6), _ints((2, 3, 5, 3), 7), _ints((3,), 8)
    expected = F.conv_transpose2d(x, w, b, stride=(2, 3), padding=(2, 1), output_padding=(1, 2))
    assert torch.equal(_transposed_exact(x, w, b, (5, 3), (2, 3), (2, 1)), expected)
