"""Encoder-side rate-distortion optimised quantization (RDOQ) of y for walloc-rgb-rd.

Each symbol s0 = round(y - mean) != 0 is moved one step toward 0 when the bits it saves under its
own table outweigh the squared-error increase in the (gained) latent domain:
    (1 + 2 e) < kappa * (bits(s0) - bits(s0 - sign(s0))),   e = |y - mean| - |s0| in [-1/2, 1/2].
kappa = 2 ln2 / 12 ~ 0.116 is the slope of uniform step-1 quantization at high rate. Greedy, one
pass: the tables of later slices are recomputed from the new symbols. The decoder is unchanged.

python rdoq.py STRIDE KAPPA... (val images [::STRIDE], the model's own bits, real PSNR)
"""
import glob
import sys

import torch
torch.set_num_threads(2)
import lcodec
from lcodec.io.image import read_image
from lcodec.eval.bdrate import bd_rate

files = sorted(glob.glob('../shared/data/images/val/*'))[::int(sys.argv[1])]
xs = [read_image(f)[None] for f in files]
kappas = [float(k) for k in sys.argv[2:]]
curves = {k: [] for k in [0.0] + kappas}


def bits_of(c, s, idx):
    sc = c.gaussian.scale_table.cpu()[idx]
    return -torch.log2(c.gaussian.likelihood(s.double(), sc))


for q in range(1, 7):
    c = lcodec.load('walloc-rgb-rd', q)
    for k in curves:
        b = p = moved = total = 0
        for x in xs:
            n = x.shape[-1] * x.shape[-2]
            y64, z = c._analyse(x)
            means = c._means(z)
            r = y64 - means
            s = torch.round(r)
            hidden = c._hidden(z)
            w = c.context.width
            if k > 0:
                idx = torch.cat(c.context.slice_indexes(hidden, list(s.split(w, 1))), 1)
                s1 = s - torch.sign(s)
                e = r.abs() - s.abs()
                gain = bits_of(c, s, idx) - bits_of(c, s1, idx)
                move = (s != 0) & ((1 + 2 * e) < k * gain)
                s = torch.where(move, s1, s)
                moved += int(move.sum()); total += s.numel()
            idx = torch.cat(c.context.slice_indexes(hidden, list(s.split(w, 1))), 1)
            yb = float(bits_of(c, s, idx).sum())
            prior = c._z_prior()
            zb = float(-torch.log2(prior.likelihood(z.float())).sum())
            xh = c.decode_latents((s + means).float(), tuple(x.shape[-2:]))
            xq = (x * 255).round() / 255; xh = (xh * 255).round() / 255
            b += (yb + zb) / n; p += float(10 * torch.log10(1 / ((xh - xq) ** 2).mean()))
        curves[k].append((b / len(xs), p / len(xs)))
        print(q, k, tuple(round(v, 4) for v in curves[k][-1]), 'moved %.4f' % (moved / max(total, 1)), flush=True)
base = curves[0.0]
for k in kappas:
    t = curves[k]
    print('kappa', k, 'BD-rate vs plain rounding %.2f%%' % bd_rate([u for u, _ in base], [v for _, v in base], [u for u, _ in t], [v for _, v in t]).value)
