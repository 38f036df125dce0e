"""Contract tests for ``lcodec.entropy.integer_net`` written against mutation run 4's survivors
(docs/results/mutation/survivors_2026_run4_integer_net.tsv).

Every expectation comes from the module's documented contract, not from today's outputs:
- the constructor's argument rules (docstring and the refusals it documents), the bit widths
  ``±(2**(bits-1) - 1)`` of weights and biases, the bias scale ``2**(wf + f_in)``, the padding
  range, and the accumulator bound ``max|W| * max|x| * fan_in + max|b| + 2**(shift-1)`` < 2**53;
- the real-unit meaning of a layer (module docstring) and integer convolution computed by
  PyTorch's float64 convolutions on integer-valued tensors (exact below 2**53 in any order);
- the "unit-variance init for the real-valued layer";
- the gradient rule of the straight-through clamp;
- the chain rules of ``IntegerNetwork`` / ``IntegerIndexNet`` and the structure that
  ``index_synthesis``'s docstring describes.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lcodec.entropy import IntegerConv, IntegerIndexNet, IntegerNetwork, index_synthesis
from lcodec.entropy import integer_net
from lcodec.entropy.integer_net import EXACT_LIMIT, _correlate_exact, _transposed_exact, ste_clamp
from lcodec.errors import InputError, ModelError

CONV = {(1, False): F.conv1d, (2, False): F.conv2d, (1, True): F.conv_transpose1d, (2, True): F.conv_transpose2d}


def _ints(shape, seed, lo=-20, hi=21) -> torch.Tensor:
    return torch.randint(lo, hi, shape, generator=torch.Generator().manual_seed(seed)).double()


def _reference_acc(layer: IntegerConv, x: torch.Tensor) -> torch.Tensor:
    """conv(x, W) + b with the layer's integer parameters, by PyTorch's float64 (exact) convolution."""
    x = x.double().clamp(*layer.input_range)
    conv = CONV[(layer.dims, layer.transposed)]
    extra = {"output_padding": layer.stride - 1} if layer.transposed else {}
    return conv(x, layer.integer_weight().double(), layer.integer_bias().double(), stride=layer.stride,
                padding=layer.padding, **extra)


def _round_shift_clamp(acc: torch.Tensor, shift: int, out_max: int) -> torch.Tensor:
    """clamp(floor((acc + 2**(r-1)) / 2**r), 0, out_max), written with true division."""
    if shift > 0:
        acc = torch.floor((acc + 2 ** (shift - 1)) / 2**shift)
    return acc.clamp(0, out_max)


# ------------------------------------------------------------------ straight-through clamp
def test_ste_clamp_gradient_sign_rule_holds_for_small_gradients():
    """Outside [lo, hi] only the sign of the gradient decides (not its size): below lo a gradient
    of +0.5 is blocked, above hi a gradient of +0.5 passes (and the mirrored cases)."""
    x = torch.tensor([-5.0, -5.0, 0.5, 5.0, 5.0], requires_grad=True)
    upstream = torch.tensor([0.5, -0.25, 0.75, 0.5, -0.25])
    (grad,) = torch.autograd.grad(ste_clamp(x, -1.0, 1.0), x, upstream)
    assert grad.tolist() == [0.0, -0.25, 0.75, 0.5, 0.0]



def test_ste_clamp_blocked_gradient_is_zero_even_when_infinite():
    """A blocked gradient is 0 whatever its size: an infinite upstream gradient where the clamp
    blocks it must not turn into NaN (0 * inf) and poison the optimiser's state."""
    x = torch.tensor([-5.0, 5.0, 0.0], requires_grad=True)
    upstream = torch.tensor([float("inf"), float("-inf"), 1.0])
    (grad,) = torch.autograd.grad(ste_clamp(x, -1.0, 1.0), x, upstream)
    assert grad.tolist() == [0.0, 0.0, 1.0]


# ------------------------------------------------------------------ IntegerConv: arguments
def test_integer_conv_signature_defaults():
    """Defaults of the public signature: 8-bit input [0, 255] with 4 fractional bits, output [0, 255]
    with 4 fractional bits, 12-bit weights with 8 fractional bits, 32-bit biases, zero bias, 'same'
    padding."""
    layer = IntegerConv(2, 3, 3)
    assert layer.input_range == (0, 255)
    assert (layer.in_frac, layer.out_frac, layer.out_max) == (4, 4, 255)
    assert (layer.weight_bits, layer.weight_frac, layer.bias_bits) == (12, 8, 32)
    assert layer.weight_max == 2**11 - 1 and layer.bias_max == 2**31 - 1
    assert layer.shift == 8 and layer.padding == 1 and layer.stride == 1 and not layer.transposed
    assert torch.equal(layer.bias.detach(), torch.zeros(3))


_REFUSED = [
    # (kwargs, substring of the refusal)
    (dict(in_channels=0), "odd kernel size"),
    (dict(out_channels=0), "odd kernel size"),
    (dict(kernel_size=4), "odd kernel size"),
    (dict(kernel_size=-1), "odd kernel size"),  # positive kernel size (not only odd)
    (dict(stride=0), "odd kernel size"),
    (dict(stride=-1), "odd kernel size"),
    (dict(transposed=True, stride=1), "stride >= 2"),
    (dict(dims=3), "dims"),
    (dict(input_range=(3, 2)), "lo <= hi"),
    (dict(in_frac=-1, out_frac=0), "fractional bits"),
    (dict(out_frac=-1), "fractional bits"),
    (dict(weight_frac=-1, out_frac=0), "fractional bits"),
    (dict(weight_bits=1), "2..53"),
    (dict(weight_bits=54, input_range=(0, 0)), "2..53"),
    (dict(bias_bits=1), "2..53"),
    (dict(bias_bits=54, input_range=(0, 0), in_frac=0, weight_frac=0, out_frac=0), "2..53"),
    (dict(out_max=0), "out_max"),
    (dict(out_frac=13), "exceeds"),
    (dict(padding=2), "padding"),
    (dict(padding=-1), "padding"),
    (dict(transposed=True, stride=2, padding=1), "padding"),
]


@pytest.mark.parametrize("kwargs, message", _REFUSED, ids=[str(k) for k, _ in _REFUSED])
def test_integer_conv_refuses_invalid_arguments(kwargs, message):
    args = dict(in_channels=2, out_channels=3, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ModelError, match=message):
        IntegerConv(**args)


@pytest.mark.parametrize("kwargs", [
    dict(weight_bits=2), dict(bias_bits=2), dict(out_max=1), dict(input_range=(5, 5)),
    dict(in_channels=1, kernel_size=1, input_range=(0, 1), weight_bits=53, bias_bits=2, in_frac=0, out_frac=8),
    dict(input_range=(0, 0), bias_bits=53, in_frac=0, weight_frac=0, out_frac=0),
    dict(padding=0), dict(padding=1), dict(in_frac=0, weight_frac=0, out_frac=0),
], ids=str)
def test_integer_conv_accepts_the_edges_of_each_rule(kwargs):
    """Each bound of the documented rules is inclusive: 2..53 bits, out_max >= 1, lo <= hi, padding in
    0 .. (k-1)//2, fractional bits >= 0; the layer then computes integer convolution."""
    args = dict(in_channels=2, out_channels=3, kernel_size=3)
    args.update(kwargs)
    layer = IntegerConv(**args)
    assert layer.accumulator_bound() < EXACT_LIMIT
    x = _ints((1, args["in_channels"], 5, 4), 0, -3, 4)
    expected = _round_shift_clamp(_reference_acc(layer, x), layer.shift, layer.out_max)
    assert torch.equal(layer.forward_exact(x), expected)


def test_an_accumulator_bound_of_exactly_2_pow_53_is_refused_and_one_below_accepted():
    """'checks at construction that this bound is below 2**53': bound = 1 * x_max * 1 + 1 + 0."""
    common = dict(weight_bits=2, bias_bits=2, in_frac=0, weight_frac=0, out_frac=0)
    with pytest.raises(ModelError, match="2\\*\\*53"):
        IntegerConv(1, 1, 1, input_range=(0, 2**53 - 1), **common)
    ok = IntegerConv(1, 1, 1, input_range=(0, 2**53 - 2), **common)
    assert ok.accumulator_bound() == 2**53 - 1


@pytest.mark.parametrize("weight_bits", [2, 4, 12])
@pytest.mark.parametrize("bias_bits", [2, 5, 32])
def test_integer_weights_and_biases_saturate_at_their_bit_width(weight_bits, bias_bits):
    """Integer weights lie in ±(2**(weight_bits-1) - 1), biases in ±(2**(bias_bits-1) - 1), on the exact
    path and on the training path alike; large shadow values saturate exactly there. (float64 shadow
    parameters: 2**31 - 1 has no float32 representation, so a float32 training path cannot show it.)"""
    layer = IntegerConv(2, 2, 1, weight_bits=weight_bits, bias_bits=bias_bits).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1e6], [-1e6]]).view(2, 1, 1, 1).expand(2, 2, 1, 1))
        layer.bias.copy_(torch.tensor([1e12, -1e12]))
    w_max, b_max = 2 ** (weight_bits - 1) - 1, 2 ** (bias_bits - 1) - 1
    assert layer.weight_max == w_max and layer.bias_max == b_max
    assert layer.integer_weight().view(2, 2)[:, 0].tolist() == [w_max, -w_max]
    assert layer.integer_bias().tolist() == [b_max, -b_max]
    assert layer.quantized_weight().detach().view(2, 2)[:, 0].tolist() == [w_max, -w_max]
    assert layer.quantized_bias().detach().tolist() == [b_max, -b_max]


def test_real_units_of_a_layer_with_fractional_bits():
    """Module docstring: with x = x' * 2**f_in, W = W' * 2**wf, b = b' * 2**(wf + f_in), the output a
    stands for a / 2**f_out = clamp(conv(x', W') + b', 0, out_max / 2**f_out), rounded half up on the
    2**-f_out grid. Parameters are put on their grids here, so the reference is exact."""
    wf, f_in, f_out = 3, 2, 1
    layer = IntegerConv(2, 3, 3, input_range=(-40, 40), in_frac=f_in, out_frac=f_out, out_max=60,
                        weight_bits=8, weight_frac=wf, bias_bits=16)
    w_real = _ints(layer.weight.shape, 1, -12, 13) / 2**wf
    b_real = torch.tensor([0.75, -1.25, 2.40625], dtype=torch.float64)  # on the 2**-(wf + f_in) grid
    with torch.no_grad():
        layer.weight.copy_(w_real)
        layer.bias.copy_(b_real)
    assert layer.bias_scale() == 2.0 ** (wf + f_in)
    assert layer.integer_bias().tolist() == [24, -40, 77]
    x = _ints((2, 2, 6, 5), 2, -40, 41)
    real = F.conv2d(x / 2**f_in, w_real, b_real, padding=1)
    expected = torch.floor(real * 2**f_out + 0.5).clamp(0, 60)
    got = layer.forward_exact(x)
    assert torch.equal(got, expected)
    assert 0 < (got > 0).float().mean() < 1 and (got == 60).any()  # both clamps and the middle are exercised


@pytest.mark.parametrize("dims", [1, 2])
def test_explicit_padding_is_the_number_of_zeros_on_each_side(dims):
    torch.manual_seed(0)
    shape = (2, 3, 7, 6) if dims == 2 else (2, 3, 9)
    x = _ints(shape, 3, -15, 16)
    for padding in (0, 1, 2):
        layer = IntegerConv(3, 4, 5, dims=dims, stride=1, padding=padding, input_range=(-15, 15), in_frac=0,
                            out_frac=8, out_max=2**30)  # shift 0: the raw accumulator, clamped at 0
        assert layer.padding == padding
        out = layer.forward_exact(x)
        assert torch.equal(out, _reference_acc(layer, x).clamp_min(0))
        assert list(out.shape[2:]) == [n + 2 * padding - 4 for n in shape[2:]]


# ------------------------------------------------------------------ accumulator bound
_BOUND_CASES = [
    # (kwargs, in_channels, kernel_size, dims)
    (dict(input_range=(-100, 5), in_frac=0, weight_frac=8, out_frac=8), 3, 3, 2),  # shift 0, |lo| > |hi|
    (dict(input_range=(-7, 300), in_frac=1, weight_frac=4, out_frac=4), 2, 5, 2),  # shift 1
    (dict(input_range=(-255, 255), in_frac=0, weight_frac=6, out_frac=4), 4, 3, 1),  # shift 2
    (dict(input_range=(0, 31), in_frac=4, weight_frac=8, out_frac=8, bias_bits=20), 5, 3, 2),  # shift 4
    (dict(input_range=(-9, 2), in_frac=1, weight_frac=4, out_frac=0, weight_bits=7, bias_bits=9), 2, 3, 1),  # 5
    (dict(input_range=(-20, 3), in_frac=0, weight_frac=8, out_frac=2, transposed=True, stride=2), 3, 3, 2),
]


@pytest.mark.parametrize("kwargs, c_in, k, dims", _BOUND_CASES)
def test_accumulator_bound_is_the_documented_formula(kwargs, c_in, k, dims):
    """max|W| * max|x| * fan_in + max|b| + 2**(shift-1), with the rounding term only when shift > 0
    (no rounding offset is added otherwise), as an exact integer."""
    layer = IntegerConv(c_in, 2, k, dims=dims, **kwargs)
    lo, hi = kwargs["input_range"]
    shift = kwargs["weight_frac"] + kwargs["in_frac"] - kwargs["out_frac"]
    w_max = 2 ** (kwargs.get("weight_bits", 12) - 1) - 1
    b_max = 2 ** (kwargs.get("bias_bits", 32) - 1) - 1
    expected = w_max * max(abs(lo), abs(hi)) * c_in * k**dims + b_max + (2 ** (shift - 1) if shift > 0 else 0)
    bound = layer.accumulator_bound()
    assert type(bound) is int and bound == expected


def test_accumulator_bound_is_reached_by_the_worst_case_input():
    """The bound covers every partial sum and is attained: all weights at -max|W| against inputs at the
    negative end of the range (|lo| > |hi|), bias at +max|b|, plus the rounding offset."""
    layer = IntegerConv(2, 1, 3, input_range=(-50, 7), in_frac=0, weight_frac=6, out_frac=3, weight_bits=6,
                        bias_bits=10, out_max=2**20)
    with torch.no_grad():
        layer.weight.fill_(-1e3)
        layer.bias.fill_(1e6)
    x = torch.full((1, 2, 5, 5), -50.0, dtype=torch.float64)
    acc = _reference_acc(layer, x)
    worst = acc[0, 0, 2, 2].item() + 2 ** (layer.shift - 1)
    assert worst == layer.accumulator_bound() == 31 * 50 * 18 + 511 + 4
    assert acc.abs().max().item() + 2 ** (layer.shift - 1) <= layer.accumulator_bound()


# ------------------------------------------------------------------ initialisation
@pytest.mark.parametrize("dims, stride, transposed", [(2, 1, False), (2, 2, False), (1, 2, False), (2, 2, True),
                                                      (2, 3, True), (1, 2, True), (1, 3, True)])
def test_initial_real_weights_give_unit_output_variance(dims, stride, transposed):
    """'unit-variance init for the real-valued layer': with i.i.d. unit-variance inputs, an output's
    variance is the sum of the squared weights that reach it. Averaged over the outputs (all phases of
    a transposed convolution) it is 1. The weights are zero-mean (symmetric)."""
    torch.manual_seed(0)
    layer = IntegerConv(16, 16, 3, dims=dims, stride=stride, transposed=transposed)
    w2 = layer.weight.detach().double() ** 2
    spatial = (10,) * dims
    ones = torch.ones(1, 16, *spatial, dtype=torch.float64)
    if transposed:  # no padding: interior outputs (positions k-1 .. (H-1)*s) see all taps of their phase
        var = CONV[(dims, True)](ones, w2, stride=stride)
        for axis in range(2, 2 + dims):
            var = var.narrow(axis, 2, stride * 8)  # whole periods of phases
    else:  # every output of an unpadded convolution sees all taps
        var = CONV[(dims, False)](ones, w2, stride=stride)
    assert 0.85 < var.mean().item() < 1.18, var.mean().item()
    w = layer.weight.detach()
    assert 0.4 < (w < 0).float().mean().item() < 0.6
    assert abs(w.mean().item()) < 0.1 * w.std().item()


# ------------------------------------------------------------------ input checks
@pytest.mark.parametrize("dims, shape", [(2, (3, 2, 7)), (1, (3, 2, 4, 5)), (2, (3, 4, 5, 5)), (1, (3, 4, 6))])
def test_wrong_rank_or_channel_count_is_an_input_error(dims, shape):
    layer = IntegerConv(2, 5, 3, dims=dims)
    x = torch.zeros(shape)
    with pytest.raises(InputError):
        layer.forward_exact(x.double())
    with pytest.raises(InputError):
        layer(x)


# ------------------------------------------------------------------ training path
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("transposed, stride", [(False, 1), (False, 2), (True, 2), (True, 3)])
def test_training_forward_computes_the_exact_integers_in_float64(dims, transposed, stride):
    """The training path is the same arithmetic as the exact one (floor(v + 1/2) rounding, same clamps):
    with float64 parameters and integer inputs every step is exact, so the two paths agree exactly,
    including the output size (ceil(H / s), or H * s when transposed)."""
    torch.manual_seed(1)
    layer = IntegerConv(3, 4, 3, dims=dims, stride=stride, transposed=transposed, input_range=(-20, 20),
                        in_frac=0, weight_frac=4, out_frac=2, out_max=2**12, bias_init=0.5).double().eval()
    shape = (2, 3, 7, 6) if dims == 2 else (2, 3, 11)
    x = _ints(shape, 4, -25, 26)  # some inputs beyond the range: both paths clamp them
    with torch.no_grad():
        train = layer(x)
    exact = layer.forward_exact(x)
    expected = _round_shift_clamp(_reference_acc(layer, x), layer.shift, layer.out_max)
    assert torch.equal(exact, expected) and torch.equal(train, expected)
    sizes = [n * stride if transposed else -(-n // stride) for n in shape[2:]]
    assert list(train.shape) == [2, 4, *sizes]


# ------------------------------------------------------------------ exact convolution paths
def test_correlate_exact_uses_torch_conv_on_cpu_and_the_unfold_path_elsewhere(monkeypatch):
    """_correlate_exact's docstring: on CPU PyTorch's float64 convolution, elsewhere unfold + one matrix
    product. A tensor on the 'meta' device (not CPU) goes through the unfold path with every argument."""
    calls = []
    original = integer_net._correlate_unfold

    def spy(*args, **kwargs):
        calls.append(args[0].device.type)
        return original(*args, **kwargs)

    monkeypatch.setattr(integer_net, "_correlate_unfold", spy)
    x, w, b = _ints((2, 3, 7, 6), 0), _ints((4, 3, 3, 5), 1), _ints((4,), 2)
    expected = F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2))
    assert torch.equal(_correlate_exact(x, w, b, (2, 1), (1, 2)), expected)
    assert calls == []
    meta = _correlate_exact(x.to("meta"), w.to("meta"), b.to("meta"), (2, 1), (1, 2))
    assert calls == ["meta"] and meta.device.type == "meta" and meta.shape == expected.shape


def test_transposed_phases_with_more_row_phases_than_column_phases():
    """Stride (3, 2) with a 2-row kernel: one row phase gets no tap (bias only)."""
    x, w, b = _ints((1, 2, 4, 3), 10), _ints((2, 3, 2, 3), 11), _ints((3,), 12, 1, 30)
    expected = F.conv_transpose2d(x, w, b, stride=(3, 2), padding=(0, 1), output_padding=(2, 1))
    got = _transposed_exact(x, w, b, (2, 3), (3, 2), (0, 1))
    assert got.shape == expected.shape and torch.equal(got, expected)


def test_transposed_phase_with_no_output_row():
    """One input row, k=4, p=2: the output has a single row, so row phase 1 is empty while the column
    phases are not."""
    x, w, b = _ints((1, 2, 1, 3), 13), _ints((2, 3, 4, 3), 14), _ints((3,), 15)
    expected = F.conv_transpose2d(x, w, b, stride=2, padding=(2, 1), output_padding=1)
    got = _transposed_exact(x, w, b, (4, 3), (2, 2), (2, 1))
    assert got.shape == expected.shape == (1, 3, 1, 6) and torch.equal(got, expected)


@pytest.mark.parametrize("dims, shape", [(2, (2, 3, 4, 1)), (2, (2, 3, 1, 1)), (1, (2, 3, 1))])
def test_transposed_layer_on_inputs_of_size_one(dims, shape):
    torch.manual_seed(2)
    layer = IntegerConv(3, 2, 3, dims=dims, stride=2, transposed=True, input_range=(-30, 30), in_frac=0,
                        out_frac=8, out_max=2**40, bias_init=100.0)  # shift 0, positive accumulators
    x = _ints(shape, 16, -30, 31)
    out = layer.forward_exact(x)
    ref = _reference_acc(layer, x)
    assert ref.min() > 0 and torch.equal(out, ref)
    assert list(out.shape[2:]) == [2 * n for n in shape[2:]]


# ------------------------------------------------------------------ networks
def test_network_chain_rules():
    first = IntegerConv(4, 4, 3, out_max=255)
    with pytest.raises(ModelError):
        IntegerNetwork([])
    with pytest.raises(ModelError, match="channels or dims"):  # channels differ, dims agree
        IntegerNetwork([first, IntegerConv(3, 4, 3)])
    with pytest.raises(ModelError, match="channels or dims"):  # dims differ, channels agree
        IntegerNetwork([first, IntegerConv(4, 4, 3, dims=1)])
    with pytest.raises(ModelError, match="in_frac"):
        IntegerNetwork([first, IntegerConv(4, 4, 3, in_frac=3, out_frac=3)])
    with pytest.raises(ModelError, match="cover"):  # does not declare the previous output value 0
        IntegerNetwork([first, IntegerConv(4, 4, 3, input_range=(1, 255))])
    net = IntegerNetwork([first, IntegerConv(4, 2, 3, input_range=(-3, 300))])  # a wider range is fine
    assert len(net.layers) == 2


def test_an_index_net_with_two_indexes():
    torch.manual_seed(3)
    head = IntegerConv(2, 3, 3, input_range=(-5, 5), in_frac=0, out_frac=0, out_max=1, bias_init=0.5)
    net = IntegerIndexNet([head], num_indexes=2)
    assert net.num_indexes == 2
    idx = net.indexes(torch.randint(-5, 6, (2, 2, 4, 4)))
    assert idx.dtype == torch.int64 and set(idx.unique().tolist()) <= {0, 1}
    with pytest.raises(ModelError):
        IntegerIndexNet([head], num_indexes=3)


# ------------------------------------------------------------------ index_synthesis
def test_index_synthesis_signature_defaults():
    """Defaults: symbols clamped to ±255, 8-bit activations with 4 fractional bits, 12-bit weights with
    8 fractional bits, two stride-2 transposed 5x5 layers and a 3x3 head."""
    net = index_synthesis(2, 4, 3, 16)
    assert len(net.layers) == 3
    first, second, head = net.layers
    assert first.input_range == (-255, 255) and first.in_frac == 0
    for layer in (first, second):
        assert layer.transposed and layer.stride == 2 and layer.kernel_size == 5
        assert (layer.out_frac, layer.out_max) == (4, 255)
    assert second.input_range == head.input_range == (0, 255) and second.in_frac == head.in_frac == 4
    assert head.kernel_size == 3 and head.stride == 1 and (head.out_frac, head.out_max) == (0, 15)
    assert all((layer.weight_bits, layer.weight_frac, layer.dims) == (12, 8, 2) for layer in net.layers)


@pytest.mark.parametrize("upsample, dims", [(0, 2), (1, 1), (2, 2), (3, 1)])
def test_index_synthesis_builds_the_documented_chain(upsample, dims):
    act_bits, act_frac, wb, wf, bound, n = 5, 3, 7, 6, 9, 10
    net = index_synthesis(2, 4, 3, n, upsample=upsample, kernel_size=3, head_kernel_size=1, dims=dims,
                          input_bound=bound, act_bits=act_bits, act_frac=act_frac, weight_bits=wb, weight_frac=wf)
    assert isinstance(net, IntegerIndexNet) and net.num_indexes == n
    hidden, head = net.layers[:-1], net.layers[-1]
    assert len(hidden) == max(upsample, 1)
    act_max = 2**act_bits - 1
    for i, layer in enumerate(hidden):
        assert layer.transposed == (upsample > 0) and layer.stride == (2 if upsample > 0 else 1)
        assert layer.input_range == ((-bound, bound) if i == 0 else (0, act_max))
        assert layer.in_frac == (0 if i == 0 else act_frac)
        assert (layer.out_frac, layer.out_max, layer.kernel_size) == (act_frac, act_max, 3)
    assert head.input_range == (0, act_max) and head.in_frac == act_frac and head.kernel_size == 1
    assert (head.out_frac, head.out_max, head.stride, head.transposed) == (0, n - 1, 1, False)
    for layer in net.layers:
        assert (layer.dims, layer.weight_bits, layer.weight_frac, layer.weight_max) == (dims, wb, wf, 2 ** (wb - 1) - 1)
    z = torch.randint(-12, 13, (2, 2, 3, 2) if dims == 2 else (2, 2, 3))
    idx = net.indexes(z)
    assert idx.shape == (2, 3, *[m * 2**upsample for m in z.shape[2:]])
    assert idx.min() >= 0 and idx.max() <= n - 1


@pytest.mark.parametrize("n", [64, 9])
def test_index_synthesis_head_starts_in_the_middle_of_the_index_range(n):
    """bias_init of the head is (num_indexes - 1) / 2 real units: with its weights at zero every index is
    that middle rounded half up (floor(v + 1/2))."""
    net = index_synthesis(2, 4, 3, n, upsample=1, kernel_size=3)
    head = net.layers[-1]
    assert head.bias.detach().tolist() == [(n - 1) / 2] * 3
    with torch.no_grad():
        head.weight.zero_()
    idx = net.indexes(torch.randint(-5, 6, (1, 2, 3, 3)))
    assert torch.equal(idx, torch.full_like(idx, n // 2))
