"""How much would a checkerboard spatial context save on the non-anchor half? Nonparametric estimate:
per slice, histograms of symbols given (table index) vs given (table index, neighbour magnitude bin),
fitted on one half of cached training crops, cross-entropy on the other half. (2026-11-23, walloc-rgb-rd with its channel context.)
Result: the neighbours save 1.0% of the non-anchor half and 1.1% of the anchor half; not built."""
import torch, numpy as np
torch.set_num_threads(2)
import lcodec
from lcodec.train.context import cache_latents
from lcodec.train.data import list_images
c = lcodec.load('walloc-rgb-rd', 4).eval()
cache = cache_latents(c, list_images('../shared/data/images/train'), 600, seed=5, progress=False)
N = len(cache['q'])
with torch.no_grad():
    syms, idxs = [], []
    for i in range(0, N, 40):
        r = cache['r'][i:i+40].double()
        s, ix, _ = c.context.encode(r, torch.zeros_like(r), cache['hidden'][i:i+40].double())
        syms.append(torch.cat(s, 1)); idxs.append(torch.cat(ix, 1))
S, I = torch.cat(syms), torch.cat(idxs)   # (N, C, h, w)
h, w = S.shape[-2:]
ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
non = ((ii + jj) % 2 == 1)
m = S.abs().clamp(max=3).double()
nb = torch.zeros_like(m)
nb[..., 1:, :] += m[..., :-1, :]; nb[..., :-1, :] += m[..., 1:, :]; nb[..., :, 1:] += m[..., :, :-1]; nb[..., :, :-1] += m[..., :, 1:]
B = nb.clamp(max=7).long()
# also: channel-neighbour feature already used by the context; here spatial only
R = 24
sym = S.clamp(-R, R) + R
half = N // 2
def xent(keys_fit, sym_fit, keys_ev, sym_ev, nkeys):
    cnt = torch.zeros(nkeys, 2 * R + 1, dtype=torch.float64)
    cnt.index_put_((keys_fit, sym_fit), torch.ones_like(sym_fit, dtype=torch.float64), accumulate=True)
    cnt += 0.02
    logp = torch.log2(cnt / cnt.sum(1, keepdim=True))
    return -logp[keys_ev, sym_ev].sum().item()
sel = non[None, None].expand_as(S)
fit, ev = torch.zeros(N, dtype=torch.bool), torch.zeros(N, dtype=torch.bool); fit[:half] = True; ev[half:] = True
for name, mask in [('non-anchor', sel), ('anchor', ~sel)]:
    mf = mask & fit[:, None, None, None]; me = mask & ev[:, None, None, None]
    a = xent(I[mf], sym[mf], I[me], sym[me], 72)
    b = xent(I[mf] * 8 + B[mf], sym[mf], I[me] * 8 + B[me], sym[me], 72 * 8)
    gauss = -torch.log2(c.gaussian.likelihood(S[me].double(), c.gaussian.scale_table.cpu()[I[me]])).sum().item()
    print(name, 'model %.0f  hist|idx %.0f  hist|idx,nb %.0f  -> spatial saves %.1f%% of this half' % (gauss, a, b, 100 * (1 - b / a)))
