"""Encoder-side per-image latent refinement (SGA-like, straight-through rounding), 2026-11-23.

python latent_refinement.py ITERS LR IMAGE... (val image names): Adam on the gained latents y of
walloc-rgb-rd at q2 and q5 against lambda * 255^2 * MSE + bits (z and y rates at the rounded
symbols), then real bytes and PSNR. Result: the surrogate loss rose (e.g. chelsea q2, lr 0.005,
10 steps: 0.315 -> 0.336) and the files grew (+9.7%); straight-through gradients through z's
rounding mislead it. Needs soft-to-hard annealing; not shipped.
"""
import torch, sys, time, glob
torch.set_num_threads(2)
import lcodec
from lcodec.io.image import read_image
from lcodec.bitstream.container import read_container
def ste(v): return v + (torch.round(v) - v).detach()
def refine(c, x, iters, lr):
    xp = c._pad(x); h, w = x.shape[-2:]
    gain = c._gain64().float()
    with torch.no_grad():
        y0 = c.analysis(xp) * gain
    y = y0.clone().requires_grad_()
    opt = torch.optim.Adam([y], lr=lr)
    lam = c.ladder.lmbdas[c.quality - 1]; prior = c._z_prior()
    def ybits(v, sc, m):
        return -torch.log2(c.gaussian.likelihood(ste(v - m), sc)).flatten(1).sum(1)
    for p in c.parameters(): p.requires_grad_(False)
    for it in range(iters):
        z = c.h_a(y); zh = ste(z)
        zb = -torch.log2(prior.likelihood(zh)).sum()
        means = c.h_m(zh)
        y_dec, yb = c.context(y, means, c.index_net.layers[0](zh), ybits, c.gaussian.scales_from_indexes)
        xh = c.synthesis(y_dec / gain)[..., :h, :w]
        mse = ((xh - x) ** 2).mean()
        loss = lam * 255**2 * mse + (zb + yb.sum()) / (h * w)
        opt.zero_grad(); loss.backward(); opt.step()
        if it % 3 == 0 or it == iters - 1: print(it, round(loss.item(), 4), round((lam * 255**2 * mse).item(), 4), round((zb/(h*w)).item(), 4), round((yb.sum()/(h*w)).item(), 4), flush=True)
    return y.detach()
def measure(c, x, y=None):
    if y is not None:
        orig = c._light_encode
        c._light_encode = lambda x64: y.double()
    try:
        d = c.compress(x)
    finally:
        if y is not None: c._light_encode = orig
    xh = c.decompress(d)
    xq = (x * 255).round() / 255; xh = (xh * 255).round() / 255
    return 8 * len(d) / (x.shape[-1] * x.shape[-2]), float(10 * torch.log10(1 / ((xh - xq) ** 2).mean()))
iters, lr = int(sys.argv[1]), float(sys.argv[2])
for f in sys.argv[3:]:
    x = read_image('../shared/data/images/val/' + f)[None]
    for q in (2, 5):
        c = lcodec.load('walloc-rgb-rd', q).eval()
        b0, p0 = measure(c, x)
        t = time.time(); y = refine(c, x, iters, lr); t = time.time() - t
        b1, p1 = measure(c, x, y)
        lam = c.ladder.lmbdas[q-1]
        print(f'{f} q{q} bpp {b0:.4f}->{b1:.4f} ({100*(b1/b0-1):+.1f}%) psnr {p0:.3f}->{p1:.3f} ({p1-p0:+.3f}) refine {t:.1f}s', flush=True)
