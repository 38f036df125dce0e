"""Probe: what would a tables-only checkerboard context (He et al. 2021) save on walloc-rgb-rd?

    python docs/results/train_walloc-rgb-rd/checkerboard_probe.py 2,5     # about 3 min on 2 threads

rd's symbols are kept; the latent positions are split into anchors ((row + col) even) and the rest.
Each non-anchor latent's stored table is re-chosen from (rd's table index, the activity of the same
channel's 4 anchor neighbours: sum of min(|symbol|, 15), 7 bins) by a lookup fitted on the symbols
of 60 random 256x256 train crops (the best of rd's 72 tables per cell), then scored on 24 val crops.
A lookup on one channel is a crude stand-in for a learned head on all channels, so read the result
as an order of magnitude. Measured 2026-11-23:

    q2: non-anchor bits -1.63%; all y bits -0.81%
    q5: non-anchor bits -1.93%; all y bits -0.96%

So a checkerboard context that only picks tables (as rd's channel context does) is worth about 1%
of the y bits; the larger gains reported for spatial contexts need mean prediction as well.
"""
import itertools, random, sys
import numpy as np, torch, lcodec
from lcodec.train.data import list_images, random_crops
torch.set_num_threads(2)
BINS = np.array([1, 2, 3, 5, 8, 13])  # activity (sum of 4 same-channel anchor |s|, clamped 15) -> 7 bins

def collect(codec, files, n, seed):
    out = []
    for c in itertools.islice(random_crops(files, 256, random.Random(seed)), n):
        x = c[None].float() / 255
        y64, z = codec._analyse(x)
        symbols, indexes, _ = codec._context_encode(y64, z, y_hat=False)
        s = torch.cat(symbols, 1)[0].numpy(); i = torch.cat(indexes, 1)[0].numpy()
        C, h, w = s.shape
        yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        anchor = (yy + xx) % 2 == 0
        a = np.minimum(np.abs(s), 15) * anchor
        p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
        act = p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]
        na = ~anchor
        out.append((s[:, na].ravel(), i[:, na].ravel(), np.digitize(act[:, na].ravel(), BINS), s[:, anchor].ravel(), i[:, anchor].ravel()))
    return out

res = {}
for q in [int(v) for v in sys.argv[1].split(",")]:
    codec = lcodec.load("walloc-rgb-rd", quality=q)
    T = codec._require_y_tables()
    tr = collect(codec, list_images("../shared/data/images/train"), 60, 11)
    va = collect(codec, list_images("../shared/data/images/val"), 24, 3)
    S = np.concatenate([t[0] for t in tr]); I = np.concatenate([t[1] for t in tr]); B = np.concatenate([t[2] for t in tr])
    nT = T.num_tables
    remap = {}
    for i in np.unique(I):
        for b in range(len(BINS) + 1):
            m = (I == i) & (B == b)
            if not m.any():
                continue
            vals = S[m]
            costs = [T.information_content(vals, np.full(vals.size, j)) for j in range(nT)]
            remap[(i, b)] = int(np.argmin(costs))
    Sv = np.concatenate([t[0] for t in va]); Iv = np.concatenate([t[1] for t in va]); Bv = np.concatenate([t[2] for t in va])
    Sa = np.concatenate([t[3] for t in va]); Ia = np.concatenate([t[4] for t in va])
    Jv = np.array([remap.get((i, b), i) for i, b in zip(Iv, Bv)])
    base_na = T.information_content(Sv, Iv); new_na = T.information_content(Sv, Jv); anc = T.information_content(Sa, Ia)
    print(f"q{q}: non-anchor bits {new_na / base_na - 1:+.2%}; all y bits {(new_na + anc) / (base_na + anc) - 1:+.2%}", flush=True)
