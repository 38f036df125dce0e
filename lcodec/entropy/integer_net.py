"""Integer side-information networks (in the spirit of Ballé, Johnston & Minnen 2019,
"Integer networks for data compression with latent-variable models").

A conditional entropy model is only decodable if encoder and decoder pick the same
probability table for every symbol. A float network does not guarantee that: its
output depends on summation order (threads, batch composition, BLAS blocking, GPU vs
CPU), and one flipped table index garbles the rest of the stream. The network here
therefore computes table INDEXES with integer arithmetic only.

Layer (``IntegerConv``), on integer tensors (fixed point: a value ``a`` with ``f``
fractional bits stands for ``a / 2**f``)::

    acc = conv(x, W) + b                     W, b, x integers
    a   = clamp(floor((acc + 2**(r-1)) / 2**r), 0, out_max)       r = wf + f_in - f_out

with integer weights ``W = clamp(round(W' * 2**wf), -(2**(wb-1) - 1), 2**(wb-1) - 1)``
(``wf`` fractional bits, ``wb`` weight bits), bias ``b = clamp(round(b' * 2**(wf + f_in)),
±(2**(bb-1) - 1))``, and the clipped rectifier ``clamp(., 0, out_max)`` as activation.
In real units the layer is ``min(max(conv(x', W') + b', 0), out_max / 2**f_out)`` with
weights and activations on power-of-two grids.

Training (``forward``, quantization-aware): the float shadow parameters ``W'``, ``b'`` are
rounded to the integer grid with a straight-through estimator (identity gradient), the
convolution runs in the parameters' float dtype with the ordinary (fast) conv kernels,
the division and rounding use the same ``floor(v + 1/2)`` with an identity gradient, and
the clamps pass gradients inside the range and wherever the gradient pushes a value back
into it (so saturated units and indexes can recover). Inputs may be non-integer (noisy
hyper-latents) on this path. It is an approximation of the exact path used for coding.

Exact inference (``forward_exact``, no autograd) is the only path used for coding:

1. Inputs are clamped, as int64, to the first layer's declared ``input_range``; weights and
   biases are rounded exactly (``W' * 2**wf`` only changes the exponent of a float, and
   ``round`` of a float is exact); everything is then held in float64.
2. Convolutions are data movement plus one matrix product: zero padding and ``unfold``
   (im2col) only copy values; the matrix product ``W @ columns`` forms sums of products of
   integers. On CPU this is PyTorch's own float64 convolution (im2col + a float64 GEMM:
   no float64 kernel exists in oneDNN, NNPACK or XNNPACK); on other devices the two steps
   are written out (``_correlate_exact``). A transposed convolution is computed by output
   phase (``_transposed_exact``): the same products as zero insertion, without the zeros.
3. Every such product and every partial sum, in any order, has magnitude at most
   ``max|W| * max|x| * fan_in + max|b| + 2**(r-1)`` (the bound over all terms at once).
   ``IntegerConv`` checks at construction that this bound is below ``2**53``; below it,
   every integer is exactly representable in float64, so each product and each addition
   is exact, whatever the order, blocking, FMA use or thread count of the BLAS routine,
   on any CPU or GPU (PyTorch's float64 matrix product has no TF32-like reduced-precision
   mode; no FFT or Winograd algorithm, which a GPU convolution library may choose, is used).
4. The division by ``2**r`` is a multiplication by ``2**-r`` (exact: exponent change) and
   ``floor`` is exact; the clamps are exact.

Hence ``forward_exact`` returns bit-identical integers on every machine, thread count and
batch composition. The network ends in an index head (``IntegerIndexNet``): a last layer
with no fractional bits and ``out_max = num_indexes - 1``, whose outputs are table indexes
into a fixed ``scale_table`` (``lcodec.entropy.gaussian``); the training path returns the
same indexes as floats with straight-through gradients.

Shapes: 2-D layers take (B, C, H, W), 1-D layers (B, C, N); a stride-``s`` convolution
maps ``H`` to ``ceil(H / s)``, a stride-``s`` transposed convolution maps ``H`` to ``H * s``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lcodec.errors import InputError, ModelError

__all__ = [
    "EXACT_LIMIT",
    "IntegerConv",
    "IntegerIndexNet",
    "IntegerNetwork",
    "index_synthesis",
    "ste_clamp",
]

EXACT_LIMIT = 2**53  # integers of magnitude below this are exact in float64


class _StraightThroughClamp(torch.autograd.Function):
    """clamp(x, lo, hi); the gradient passes inside [lo, hi] and where it points back into it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        # descent moves x by -grad: below lo it must grow (grad < 0), above hi shrink (grad > 0)
        passes = ((x >= ctx.lo) | (grad < 0)) & ((x <= ctx.hi) | (grad > 0))
        return torch.where(passes, grad, grad.new_zeros(())), None, None  # blocked: 0, even for inf


def ste_clamp(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return _StraightThroughClamp.apply(x, lo, hi)


def _ste_round_half_up(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 1/2) forward, identity gradient (same tie rule as the exact path)."""
    return x + (torch.floor(x + 0.5) - x).detach()


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class IntegerConv(nn.Module):
    """One integer convolution (or transposed convolution) with a clipped-rectifier output.

    Args:
        in_channels, out_channels, kernel_size (odd), stride.
        transposed: a stride-``s`` transposed convolution (upsampling by ``s``) instead of a
            stride-``s`` convolution (downsampling by ``s``).
        dims: 2 for (B, C, H, W), 1 for (B, C, N).
        input_range: (lo, hi) integer bounds of the input; inputs are clamped to it.
        in_frac, out_frac: fractional bits of the input and output fixed-point values.
        out_max: the output is clamped to ``[0, out_max]`` (integer units).
        weight_bits, weight_frac: integer weights lie in ``±(2**(weight_bits-1) - 1)`` and stand
            for ``W / 2**weight_frac``.
        bias_bits: integer biases lie in ``±(2**(bias_bits-1) - 1)``.
        bias_init: initial real-valued bias (e.g. the middle of an index range for a head).
        padding: zeros added on each side (default ``(kernel_size - 1) // 2``; 0 for a caller that
            pads and offsets the input itself, e.g. to evaluate one phase of a strided grid).

    Raises ``ModelError`` when the accumulator bound (see the module docstring) is not
    below ``2**53``, so the exact path could lose integers.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 transposed: bool = False, dims: int = 2, input_range: tuple[int, int] = (0, 255),
                 in_frac: int = 4, out_frac: int = 4, out_max: int = 255, weight_bits: int = 12,
                 weight_frac: int = 8, bias_bits: int = 32, bias_init: float = 0.0,
                 padding: int | None = None) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ModelError(f"IntegerConv dims must be 1 or 2, got {dims}")
        if min(in_channels, out_channels, kernel_size, stride) < 1 or kernel_size % 2 == 0:
            raise ModelError("IntegerConv needs positive channels and stride and an odd kernel size")
        if transposed and stride < 2:
            raise ModelError("a transposed IntegerConv needs stride >= 2 (use a convolution for stride 1)")
        lo, hi = int(input_range[0]), int(input_range[1])
        if lo > hi:
            raise ModelError(f"input_range must be (lo, hi) with lo <= hi, got {input_range}")
        if min(in_frac, out_frac, weight_frac) < 0 or not 2 <= weight_bits <= 53 or not 2 <= bias_bits <= 53:
            raise ModelError("fractional bits must be >= 0 and weight/bias bits within 2..53")
        if out_max < 1:
            raise ModelError(f"out_max must be >= 1, got {out_max}")
        shift = weight_frac + in_frac - out_frac
        if shift < 0:
            raise ModelError(f"out_frac={out_frac} exceeds weight_frac + in_frac = {weight_frac + in_frac}")

        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = int(kernel_size), int(stride)
        self.transposed, self.dims = bool(transposed), int(dims)
        self.input_range = (lo, hi)
        self.in_frac, self.out_frac, self.out_max = int(in_frac), int(out_frac), int(out_max)
        self.weight_bits, self.weight_frac, self.bias_bits = int(weight_bits), int(weight_frac), int(bias_bits)
        self.shift = shift
        self.weight_max = 2 ** (weight_bits - 1) - 1
        self.bias_max = 2 ** (bias_bits - 1) - 1
        self.padding = (kernel_size - 1) // 2 if padding is None else int(padding)
        if not 0 <= self.padding <= (kernel_size - 1) // 2 or (transposed and padding is not None):
            raise ModelError("IntegerConv padding must lie in 0 .. (kernel_size - 1) // 2 (not for transposed)")

        bound = self.accumulator_bound()
        if bound >= EXACT_LIMIT:
            raise ModelError(
                f"integer layer ({in_channels}->{out_channels}, k={kernel_size}) can reach |acc| = {bound} "
                f">= 2**53 = {EXACT_LIMIT} (max|W| {self.weight_max} * max|x| {max(abs(lo), abs(hi))} * "
                f"fan-in {self.fan_in} + max|b| {self.bias_max} + rounding): float64 would not be exact; "
                "use fewer weight/activation/bias bits or a smaller fan-in")

        shape = (in_channels, out_channels) if transposed else (out_channels, in_channels)
        effective_fan_in = self.fan_in / (stride**dims if transposed else 1)
        limit = math.sqrt(3.0 / effective_fan_in)  # unit-variance init for the real-valued layer
        self.weight = nn.Parameter(torch.empty(*shape, *([kernel_size] * dims)).uniform_(-limit, limit))
        self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init)))

    @property
    def fan_in(self) -> int:
        """Input values per output value (an upper bound for transposed convolutions)."""
        return self.in_channels * self.kernel_size**self.dims

    def accumulator_bound(self) -> int:
        """max|W| * max|x| * fan_in + max|b| + 2**(shift-1): bounds every partial sum (exact int)."""
        x_max = max(abs(self.input_range[0]), abs(self.input_range[1]))
        rounding = 2 ** (self.shift - 1) if self.shift > 0 else 0
        return self.weight_max * x_max * self.fan_in + self.bias_max + rounding

    # --- parameters on the integer grid -------------------------------------------------
    def bias_scale(self) -> float:
        """Integer bias units per real unit: 2**(weight_frac + in_frac)."""
        return float(2 ** (self.weight_frac + self.in_frac))

    def quantized_weight(self) -> torch.Tensor:
        """Integer-valued weights (float, straight-through gradient to the shadow weights)."""
        w = _ste_round(self.weight * float(2**self.weight_frac))
        return ste_clamp(w, -self.weight_max, self.weight_max)

    def quantized_bias(self) -> torch.Tensor:
        b = _ste_round(self.bias * self.bias_scale())
        return ste_clamp(b, -self.bias_max, self.bias_max)

    @torch.no_grad()
    def integer_weight(self) -> torch.Tensor:
        """The integer weights, int64 (same values as ``quantized_weight``, computed exactly)."""
        w = torch.round(self.weight.detach().to(torch.float64) * float(2**self.weight_frac))
        return w.clamp(-self.weight_max, self.weight_max).to(torch.int64)

    @torch.no_grad()
    def integer_bias(self) -> torch.Tensor:
        b = torch.round(self.bias.detach().to(torch.float64) * self.bias_scale())
        return b.clamp(-self.bias_max, self.bias_max).to(torch.int64)

    # --- training path ------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            raise InputError(f"IntegerConv expects (B, {self.in_channels}, {'H, W' if self.dims == 2 else 'N'}), "
                             f"got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantization-aware training path: integer-valued output (float) with STE gradients."""
        self._check_input(x)
        x = ste_clamp(x, self.input_range[0], self.input_range[1])
        w, b = self.quantized_weight(), self.quantized_bias()
        conv = {(1, False): F.conv1d, (2, False): F.conv2d,
                (1, True): F.conv_transpose1d, (2, True): F.conv_transpose2d}[(self.dims, self.transposed)]
        if self.transposed:
            acc = conv(x, w, b, stride=self.stride, padding=self.padding, output_padding=self.stride - 1)
        else:
            acc = conv(x, w, b, stride=self.stride, padding=self.padding)
        a = _ste_round_half_up(acc * float(2.0**-self.shift))
        return ste_clamp(a, 0, self.out_max)

    # --- exact path -----------------------------------------------------------------------
    @torch.no_grad()
    def forward_exact(self, x: torch.Tensor) -> torch.Tensor:
        """Exact integer layer on float64 tensors holding integers; returns float64 integers.

        x: (B, C_in, H, W) or (B, C_in, N), float64 with integer values (see ``IntegerNetwork``).
        """
        self._check_input(x)
        x = x.to(torch.float64).clamp(self.input_range[0], self.input_range[1])
        w = self.integer_weight().to(device=x.device, dtype=torch.float64)
        b = self.integer_bias().to(device=x.device, dtype=torch.float64)
        if self.dims == 1:  # a 1-D signal is a 2-D one of height 1
            x = x.unsqueeze(2)
            w = w.unsqueeze(-2)
        k, s, p = self.kernel_size, self.stride, self.padding
        kh = 1 if self.dims == 1 else k
        ph = 0 if self.dims == 1 else p
        sh = 1 if self.dims == 1 else s
        if self.transposed:
            acc = _transposed_exact(x, w, b, (kh, k), (sh, s), (ph, p))
        else:
            acc = _correlate_exact(x, w, b, (sh, s), (ph, p))
        if self.shift > 0:
            acc = torch.floor((acc + float(2 ** (self.shift - 1))) * float(2.0**-self.shift))
        out = acc.clamp(0, self.out_max)
        return out.squeeze(2) if self.dims == 1 else out

    def extra_repr(self) -> str:
        kind = "transposed " if self.transposed else ""
        return (f"{self.in_channels}, {self.out_channels}, {kind}k={self.kernel_size}, s={self.stride}, "
                f"dims={self.dims}, in={self.input_range}/2^{self.in_frac}, out=[0, {self.out_max}]/2^{self.out_frac}, "
                f"w={self.weight_bits}b/2^{self.weight_frac}")


def _correlate_exact(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: tuple[int, int],
                     padding: tuple[int, int]) -> torch.Tensor:
    """conv2d (cross-correlation) of float64 integers, exactly: x (B, C_in, H, W), w (C_out, C_in, kh, kw).

    On CPU, PyTorch's float64 convolution is im2col + a float64 matrix product (oneDNN, NNPACK and
    XNNPACK have no float64 kernels, so no FFT or Winograd can be chosen): the argument of the
    module docstring holds. Elsewhere (CUDA, whose libraries may pick FFT or Winograd) the same
    two steps are written out: ``unfold`` (copies only) and one matrix product.
    """
    if x.device.type == "cpu":
        return F.conv2d(x, w, b, stride=stride, padding=padding)
    return _correlate_unfold(x, w, b, stride, padding)


def _correlate_unfold(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: tuple[int, int],
                      padding: tuple[int, int]) -> torch.Tensor:
    """``_correlate_exact`` off the CPU: ``unfold`` (copies only) and one matrix product. A
    function of its own so that the CPU tests can check it against ``conv2d``."""
    B, _, H, W_ = x.shape
    (kh, kw), c_out = w.shape[-2:], w.shape[0]
    out_h = (H + 2 * padding[0] - kh) // stride[0] + 1
    out_w = (W_ + 2 * padding[1] - kw) // stride[1] + 1
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (B, C_in*kh*kw, L)
    return (torch.matmul(w.reshape(c_out, -1), cols) + b.view(1, -1, 1)).view(B, c_out, out_h, out_w)


def _transposed_exact(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: tuple[int, int],
                      s: tuple[int, int], p: tuple[int, int]) -> torch.Tensor:
    """Exact stride-``s`` transposed convolution (output ``s`` times the input size) of float64
    integers, by phases: output row ``o = s*a + r`` only meets the kernel taps ``t = t0 + s*m``
    with ``t0 = (k-1-p - r) mod s`` (the others fall on inserted zeros), at input rows ``a + d + m``
    with ``d = (r + t0 - (k-1-p)) / s``. So each of the ``s*s`` output phases is a stride-1
    correlation of the input with a sub-kernel (``_correlate_exact``), and the products are the
    same integer products as with zero insertion (1/s^2 of the work).

    x (B, C_in, H, W); w (C_in, C_out, kh, kw) as stored by a transposed convolution;
    b (C_out,) -> (B, C_out, s_h*H + kh-1-2p_h, s_w*W + kw-1-2p_w), the size of zero insertion
    with ``output_padding = s - 1``.
    """
    B, _, H, W_ = x.shape
    wf = w.transpose(0, 1).flip(-1, -2)  # (C_out, C_in, kh, kw): the correlation kernel
    c_out = wf.shape[0]
    size = [s[i] * (H, W_)[i] + k[i] - 1 - 2 * p[i] for i in range(2)]
    out = x.new_empty(B, c_out, *size)
    margin = max(k)
    xp = F.pad(x, (margin, margin, margin, margin))  # zeros: outside the input
    for rh in range(s[0]):
        for rw in range(s[1]):
            taps, rows = [], []
            for axis, r in ((0, rh), (1, rw)):
                q = k[axis] - 1 - p[axis]
                t0 = (q - r) % s[axis]
                m = len(range(t0, k[axis], s[axis]))  # taps in this phase
                count = len(range(r, size[axis], s[axis]))  # outputs in this phase
                d = (r + t0 - q) // s[axis]
                taps.append(slice(t0, k[axis], s[axis]))
                rows.append((margin + d, count, m))
            (h0, nh, mh), (w0, nw, mw) = rows
            if nh == 0 or nw == 0:
                continue
            if mh * mw == 0:  # no tap reaches this phase: the bias alone
                out[:, :, rh :: s[0], rw :: s[1]] = b.view(1, -1, 1, 1)
                continue
            window = xp[:, :, h0 : h0 + nh + mh - 1, w0 : w0 + nw + mw - 1]
            sub = wf[:, :, taps[0], taps[1]]
            out[:, :, rh :: s[0], rw :: s[1]] = _correlate_exact(window, sub, b, (1, 1), (0, 0))
    return out


class IntegerNetwork(nn.Module):
    """A chain of ``IntegerConv`` layers whose fixed-point formats and ranges match.

    forward(x): training path (float, integer values, STE gradients).
    forward_exact(x_int): int64 output, bit-identical everywhere (see the module docstring).
    """

    def __init__(self, layers: Sequence[IntegerConv]) -> None:
        super().__init__()
        if not layers:
            raise ModelError("an IntegerNetwork needs at least one layer")
        for i in range(1, len(layers)):
            prev, cur = layers[i - 1], layers[i]
            if cur.in_channels != prev.out_channels or cur.dims != prev.dims:
                raise ModelError(f"integer layer {i} does not take layer {i - 1}'s output (channels or dims)")
            if cur.in_frac != prev.out_frac:
                raise ModelError(f"integer layer {i}: in_frac {cur.in_frac} != previous out_frac {prev.out_frac}")
            if cur.input_range[0] > 0 or cur.input_range[1] < prev.out_max:
                raise ModelError(f"integer layer {i}: input_range {cur.input_range} does not cover "
                                 f"[0, {prev.out_max}], so its 2**53 bound would not hold")
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def forward_exact(self, x: torch.Tensor) -> torch.Tensor:
        """x: integer tensor (or float holding integers) (B, C, ...) -> int64 output on x's device.

        Values are clamped to the first layer's ``input_range`` (as int64) before anything else.
        """
        if x.is_floating_point():
            if not torch.isfinite(x).all() or not torch.equal(x, torch.round(x)):
                raise InputError("forward_exact needs integer inputs (quantized symbols)")
            x = x.to(torch.float64).clamp(*self.layers[0].input_range).to(torch.int64)
        elif x.dtype == torch.bool or x.is_complex():
            raise InputError(f"forward_exact needs an integer tensor, got {x.dtype}")
        v = x.to(torch.int64).clamp(*self.layers[0].input_range).to(torch.float64)
        for layer in self.layers:
            v = layer.forward_exact(v)
        return v.to(torch.int64)

    @torch.no_grad()
    def integer_state(self) -> list[dict[str, torch.Tensor]]:
        """Per layer: the int64 ``weight`` and ``bias`` the exact path uses (for export/inspection)."""
        return [{"weight": layer.integer_weight(), "bias": layer.integer_bias()} for layer in self.layers]


class IntegerIndexNet(IntegerNetwork):
    """An ``IntegerNetwork`` whose last layer is an index head: integer outputs in [0, num_indexes - 1].

    forward(z): training path, (B, C, ...) float indexes (integer values, STE gradients); map them
        to scales with ``GaussianConditional.scales_from_indexes`` so the rate loss trains the net.
    indexes(z_int) / forward_exact(z_int): int64 table indexes, bit-identical everywhere.
    """

    def __init__(self, layers: Sequence[IntegerConv], num_indexes: int) -> None:
        super().__init__(layers)
        head = self.layers[-1]
        if num_indexes < 2 or head.out_max != num_indexes - 1 or head.out_frac != 0:
            raise ModelError(f"the index head must have out_frac=0 and out_max=num_indexes-1={num_indexes - 1}, "
                             f"got out_frac={head.out_frac}, out_max={head.out_max}")
        self.num_indexes = int(num_indexes)

    def indexes(self, z: torch.Tensor) -> torch.Tensor:
        """Exact table indexes (int64) for integer hyper-latent symbols ``z``."""
        return self.forward_exact(z)


def index_synthesis(in_channels: int, hidden_channels: int, out_channels: int, num_indexes: int, *,
                    upsample: int = 2, kernel_size: int = 5, head_kernel_size: int = 3, dims: int = 2,
                    input_bound: int = 255, act_bits: int = 8, act_frac: int = 4,
                    weight_bits: int = 12, weight_frac: int = 8) -> IntegerIndexNet:
    """A hyper-synthesis that outputs table indexes, from integer hyper-latents.

    (B, in_channels, h, w) -> ``upsample`` stride-2 transposed integer convolutions with
    clipped-rectifier activations (``act_bits`` bits, ``act_frac`` of them fractional) ->
    a stride-1 integer convolution head -> indexes (B, out_channels, h * 2**upsample, w * 2**upsample)
    in [0, num_indexes - 1]. With ``upsample=0`` the hidden layers are stride-1 convolutions
    (one of them). The first layer takes signed symbols clamped to ``±input_bound``.
    """
    act_max = 2**act_bits - 1
    common = dict(dims=dims, weight_bits=weight_bits, weight_frac=weight_frac)
    layers: list[IntegerConv] = []
    c_in, in_range, in_frac = in_channels, (-input_bound, input_bound), 0
    for i in range(max(upsample, 1)):
        transposed = upsample > 0
        layers.append(IntegerConv(c_in, hidden_channels, kernel_size, stride=2 if transposed else 1,
                                  transposed=transposed, input_range=in_range, in_frac=in_frac,
                                  out_frac=act_frac, out_max=act_max, **common))
        c_in, in_range, in_frac = hidden_channels, (0, act_max), act_frac
    layers.append(IntegerConv(c_in, out_channels, head_kernel_size, input_range=in_range, in_frac=in_frac,
                              out_frac=0, out_max=num_indexes - 1, bias_init=(num_indexes - 1) / 2, **common))
    return IntegerIndexNet(layers, num_indexes)
