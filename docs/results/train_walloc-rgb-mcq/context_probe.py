"""Would a context prior cut walloc-rgb-mcq's bits? A probe, not part of the codec.

    python docs/results/train_walloc-rgb-mcq/context_probe.py 120 docs/results/train_walloc-rgb-mcq/context_probe.json

Fits conditional tables (add-one counts) on the q6 indexes of 120 random 256x256 train crops and
measures their code length on 24 random val crops (held out), against unconditional tables
refitted the same way and against the shipped tables. About 45 s on 2 threads.

Contexts (all computable by a decoder from already-decoded integers):
  A: stage-1 activity at the same position: how many of the 16 groups are not stage 1's mode, binned
  B: same stage, causal neighbours (left + top): their count of non-mode groups, binned
  C: previous stage, same group: is its index that stage's mode (2 bins)
"""
import itertools, random, sys, json
import numpy as np
import torch
import lcodec
from lcodec.train.codebook import latent_vectors
from lcodec.train.data import list_images

torch.set_num_threads(2)
codec = lcodec.load("walloc-rgb-mcq", quality=6)
S, M, K = 6, 16, 256


def idx_of(files, n, seed):
    ys = latent_vectors(codec, files, n, seed=seed)
    return [codec.codebook.indexes(y, 6)[0].numpy() for y in ys]  # (S, M, h, w)


train = idx_of(list_images("../shared/data/images/train"), int(sys.argv[1]) if len(sys.argv) > 1 else 120, 7)
val = idx_of(list_images("../shared/data/images/val"), 24, 3)
modes = []
for s, st in enumerate(codec.codebook.stages):
    counts = st._require_tables().counts  # (M, K+1)
    modes.append(np.argmax(counts[:, :K], axis=1))
modes = np.array(modes)  # (S, M)


def base_bits(idx):
    tot = np.zeros(S)
    for s, st in enumerate(codec.codebook.stages):
        tot[s] = st.information_bits(torch.from_numpy(idx[s][None]).contiguous())
    return tot


def active(idx):  # (S, M, h, w) bool: not the mode
    return idx != modes[:, :, None, None]


def bin4(n):  # count 0..16 -> 0..3
    return np.digitize(n, [1, 3, 7])


def contexts(idx, kind):
    a = active(idx)
    if kind == "none":
        return np.zeros_like(idx)
    if kind == "A":
        c = bin4(a[0].sum(0))  # (h, w)
        c = np.broadcast_to(c[None, None], idx.shape).copy()
        c[0] = 0  # stage 1 cannot condition on itself
        return c
    if kind == "B":
        n = a.sum(1).astype(np.int64)  # (S, h, w)
        left = np.pad(n, ((0, 0), (0, 0), (1, 0)))[:, :, :-1]
        top = np.pad(n, ((0, 0), (1, 0), (0, 0)))[:, :-1, :]
        c = bin4((left + top) // 2)
        return np.broadcast_to(c[:, None], idx.shape)
    if kind == "C":
        prev = np.concatenate([np.ones_like(a[:1]), a[:-1]], 0)
        return prev.astype(np.int64)
    raise ValueError(kind)


def fit_and_score(kind, nctx):
    counts = np.ones((S, M, nctx, K))  # add-one
    for idx in train:
        c = contexts(idx, kind)
        for s in range(S):
            for m in range(M):
                np.add.at(counts[s, m], (c[s, m].ravel(), idx[s, m].ravel()), 1)
    logp = np.log2(counts / counts.sum(-1, keepdims=True))
    bits = np.zeros(S)
    for idx in val:
        c = contexts(idx, kind)
        for s in range(S):
            for m in range(M):
                bits[s] += -logp[s, m, c[s, m].ravel(), idx[s, m].ravel()].sum()
    return bits


base = sum(base_bits(i) for i in val)
res = {"stored_tables": base.tolist()}
# unconditional tables refitted the same way (add-one, same crops): the reference, so that a
# context's figure is its own effect and not that of refitting on other data
res["refit_no_context"] = fit_and_score("none", 1).tolist()
for kind, n in (("A", 4), ("B", 4), ("C", 2)):
    res[kind] = fit_and_score(kind, n).tolist()
cum = {k: np.cumsum(v).tolist() for k, v in res.items()}
for k, v in cum.items():
    print(k, " ".join(f"q{q+1}:{v[q]/cum['refit_no_context'][q]-1:+.1%}" for q in range(S)))
out = {"train_crops": len(train), "val_crops": len(val),
       "bits_per_stage": res, "bits_cumulative_by_quality": cum,
       "change_vs_refit_no_context": {k: [v[q] / cum["refit_no_context"][q] - 1 for q in range(S)] for k, v in cum.items()}}
json.dump(out, open(sys.argv[2] if len(sys.argv) > 2 else "context_probe.json", "w"), indent=1)
