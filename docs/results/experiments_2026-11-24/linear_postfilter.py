"""Upper-bound probe for a decoder-side post-filter on walloc-rgb-rd: a per-rate linear (Wiener)
filter, 7x7 neighbourhood across the three colour channels (+ bias), fitted by least squares on
decoded training crops and applied to held-out val crops.

python linear_postfilter.py CROPS  (training crops per rate; val: 16 centre crops 256x256)
"""
import itertools
import random
import sys

import torch
torch.set_num_threads(1)
import torch.nn.functional as F
import lcodec
from lcodec.io.image import read_image
from lcodec.train.data import list_images, random_crops

K = 7
n_train = int(sys.argv[1])
files = list_images('../shared/data/images/train')
train = [x.float()[None] / 255 for x in itertools.islice(random_crops(files, 256, random.Random(5)), n_train)]
val = []
for f in list_images('../shared/data/images/val'):
    x = read_image(f)[None]
    h, w = x.shape[-2:]
    val.append(x[..., (h - 256) // 2:(h - 256) // 2 + 256, (w - 256) // 2:(w - 256) // 2 + 256])


def feats(xh):
    p = F.unfold(F.pad(xh, (K // 2,) * 4, mode='replicate'), K)  # (1, 3*K*K, HW)
    return torch.cat([p[0].T, torch.ones(p.shape[-1], 1)], 1).double()


def psnr(a, b):
    a = (a.clamp(0, 1) * 255).round(); b = (b * 255).round()
    return float(10 * torch.log10(255 ** 2 / ((a - b) ** 2).mean()))


for q in range(1, 7):
    c = lcodec.load('walloc-rgb-rd', q)
    dec = lambda x: c.decode_latents(c.encode_latents(x), tuple(x.shape[-2:]))  # noqa: E731
    A = torch.zeros(3 * K * K + 1, 3 * K * K + 1, dtype=torch.float64); B = torch.zeros(3 * K * K + 1, 3, dtype=torch.float64)
    for x in train:
        f = feats(dec(x)); t = x[0].reshape(3, -1).T.double()
        A += f.T @ f; B += f.T @ t
    W = torch.linalg.solve(A + 1e-6 * torch.eye(A.shape[0], dtype=torch.float64), B)
    before = after = 0
    for x in val:
        xh = dec(x)
        y = (feats(xh) @ W).T.reshape(1, 3, *x.shape[-2:]).float()
        before += psnr(xh, x) / len(val); after += psnr(y, x) / len(val)
    print(q, 'val PSNR %.3f -> %.3f (%+.3f dB)' % (before, after, after - before), flush=True)
