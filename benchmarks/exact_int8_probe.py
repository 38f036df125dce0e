"""Probe (issue 29): an exact int8 path for one IntConv layer, against the float64 IntConv.gemm
and float32 conv2d. Not used by the decoder.

Activations and 16-bit weights are split into balanced 7-bit digits; every digit pair is one
``torch._int_mm`` (int8 x int8 -> int32, exact), recombined in int64 with shifts and rescaled by an
arithmetic shift. Prints whether the integers equal ``IntConv.gemm``'s and the times for a
192 -> 192 3x3 layer at 64x64, with 1 and 2 threads.

    python benchmarks/exact_int8_probe.py

Measured 2026-12-07 on a quiet 2-core AVX-512/VNNI/AMX machine: equal; 1 thread: fp32 13.9 ms,
float64 IntConv 34.0 ms, int8 digits 70.5 ms; 2 threads: 6.9, 19.5, 43.3 ms (the digit split and
the int64 recombination cost more than the GEMMs save).

Tried again 2026-12-07 (not kept): 8-bit balanced digits (2 weight digits, 3 activation digits
chosen by the input's range, the rare weight above 32639 as a third sparse digit), both weight
digits stacked into one GEMM per band, float64 recombination, larger bands: the integers equal
``IntConv.gemm``'s, but 25.5 ms against 27.2 ms on 2 threads for this layer (the GEMM alone 16 ms;
digit split, im2col and recombination the rest), and 2-4x slower than float64 on rd's 32-channel
post-filter layers and 1x1 layers. 8-bit digits would also need a saturation check on CPUs
without VNNI (vpmaddubsw saturates u8 x s8 pairs). So float64 GEMMs stay.
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lcodec.models.exact import IntConv  # noqa: E402

torch.manual_seed(0)

def digits(a, b, L):
    half, mask = 1 << (b - 1), (1 << b) - 1
    out = []
    for _ in range(L):
        d = ((a + half) & mask) - half
        out.append(d.to(torch.int8))
        a = (a - d) >> b
    assert not bool(a.any())
    return out

def limbs_for(maxabs, b):
    L = 1
    while maxabs >= 2 ** (b * L - 2):
        L += 1
    return L

class Int8Conv:
    def __init__(self, conv: IntConv, b=7):
        self.c, self.b = conv, b
        w = conv.weight.long()  # (O, C, kh, kw)
        O, C = w.shape[:2]
        kh, kw = conv.kernel
        wt = w.reshape(O, C, kh, kw).permute(0, 2, 3, 1).reshape(O, kh * kw * C)  # tap-major
        self.Lw = limbs_for(int(wt.abs().max()), b)
        self.W = torch.cat(digits(wt, b, self.Lw), 0).contiguous()  # (Lw*O, taps*C)
        self.bias = conv.bias.long().view(-1, 1)
        shifts = -torch.log2(conv.shift).round().long()  # s_c
        self.s = shifts.view(-1, 1)
        self.O, self.C = O, C

    def gemm(self, x, width, rows, slack=2):
        c, b = self.c, self.b
        kh, kw = c.kernel
        O, C = self.O, self.C
        n = rows * width
        xi = x.long()
        La = limbs_for(int(xi.abs().max()), b)
        xd = digits(xi, b, La)
        out = torch.empty(O, n + slack, dtype=torch.float64)
        out[:, n:] = 0
        band = max(256, c.band_values // O)
        for f0 in range(0, n, band):
            bl = min(n, f0 + band) - f0
            acc = self.bias.expand(O, bl).clone()
            for i, d in enumerate(xd):
                col = torch.cat([d[:, f0 + ti * width + tj: f0 + ti * width + tj + bl] for ti in range(kh) for tj in range(kw)], 0)
                R = torch._int_mm(self.W, col)  # (Lw*O, bl) int32
                for j in range(self.Lw):
                    acc += R[j * O:(j + 1) * O].long() << (b * (i + j))
            pos = self.s >= 1
            half = torch.where(pos, 1 << (self.s.clamp_min(1) - 1), 0)
            res = torch.where(pos, (acc + half) >> self.s.clamp_min(0), acc << (-self.s).clamp_min(0))
            out[:, f0:f0 + bl] = res.clamp_(-2**25, 2**25).double()
        return out

C = O = 192
H = W = 64
w = np.random.randn(O, C, 3, 3) * 0.03
bias = np.random.randn(O) * 0.1
conv = IntConv(w, bias, 14, 2, 1)
a = torch.round(torch.randn(C, (H + 2) * (W + 2) + 2).double() * 2**14 * 0.5)
ref = conv.gemm(a, W + 2, H)
i8 = Int8Conv(conv)
got = i8.gemm(a, W + 2, H)
print("equal:", torch.equal(ref, got))
def t(f, n=5):
    f(); t0 = time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter() - t0) / n
xf = torch.randn(1, C, H, W); wf = torch.from_numpy(w).float(); bf = torch.from_numpy(bias).float()
for th in (1, 2):
    torch.set_num_threads(th)
    print(th, "threads: fp32 conv2d %.1f ms, fp64 IntConv %.1f ms, int8 %.1f ms" % (
        1e3 * t(lambda: torch.nn.functional.conv2d(xf, wf, bf, padding=1)),
        1e3 * t(lambda: conv.gemm(a, W + 2, H)), 1e3 * t(lambda: i8.gemm(a, W + 2, H))), "La", limbs_for(int(a.abs().max()), 7), "Lw", i8.Lw)
