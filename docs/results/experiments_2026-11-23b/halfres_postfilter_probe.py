"""Is decoder capacity what walloc-rgb-rd lacks? A half-resolution branch beside the shipped post-filter.

The shipped post-filter (lcodec.models.postfilter: 4 3x3 layers, 32 channels at full resolution,
receptive field 9 pixels) gained +0.07 to +0.27 dB. This probe asks whether a wider view pays: a
branch at half resolution (pixel-unshuffle to 12 channels, 4 3x3 layers of 48 channels, zero-initialised
output, a bias per rate; receptive field about 18 pixels, about 2/3 of the filter's cost per pixel),
added to the shipped filter's output. Arm A fine-tunes the shipped filter alone (lr 3e-4), arm B the
shipped filter and the branch (lr 1e-3 for the branch), 600 Adam steps each, same batches (16 random
128x128 sub-crops of 600 cached 192x192 training crops at round-robin rates, lr / 10 after 80%).
Scored as lcodec.train.postfilter scores: PSNR per rate on 256x256 centre crops of the 16 val images.

    OMP_NUM_THREADS=2 .venv/bin/python docs/results/experiments_2026-11-23b/halfres_postfilter_probe.py 600 A B

(about 10 minutes per arm on 2 threads). Result, gain in dB over the shipped filter, q1..q6:
    A (more steps for the shipped filter): +0.023 +0.043 +0.026 +0.014 +0.003 +0.004
    B (with the half-resolution branch):   +0.025 +0.037 +0.022 +0.009 -0.001 +0.000
The branch adds nothing over further fine-tuning, and fine-tuning adds at most 0.04 dB (about 1%
in rate at rd's slope): the decoder side is saturated; what is missing is in the latents, that is,
in the transform and its joint training. Not shipped.
"""
import copy, itertools, json, random, sys, time
import torch, torch.nn.functional as F
from torch import nn
torch.set_num_threads(2)
from lcodec.api import load as create_codec
from lcodec.io.image import read_image
from lcodec.train.data import list_images, random_crops
from lcodec.train.postfilter import cache_decoded, _psnr

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 600
class Half(nn.Module):
    def __init__(self, rates, ch=48, layers=4):
        super().__init__()
        self.first = nn.Conv2d(12, ch, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1) for _ in range(layers - 2)])
        self.last = nn.Conv2d(ch, 12, 3, padding=1)
        nn.init.zeros_(self.last.weight); nn.init.zeros_(self.last.bias)
        self.rate_bias = nn.Parameter(torch.zeros(rates, ch))
    def forward(self, x, q):
        q = torch.as_tensor(q).reshape(-1).expand(x.shape[0])
        h = self.first(F.pixel_unshuffle(x - 0.5, 2)) + self.rate_bias[q][:, :, None, None]
        for c in self.body: h = c(F.gelu(h))
        return F.pixel_shuffle(self.last(F.gelu(h)), 2)

codec = create_codec("walloc-rgb-rd", 4)
rng = random.Random(0)
crops = list(itertools.islice(random_crops(list_images("../shared/data/images/train"), 192, rng), 600))
cache = cache_decoded(codec, crops, progress=False)
held = []
for f in list_images("../shared/data/images/val"):
    x = read_image(f)[None]; h, w = x.shape[-2:]; s = min(256, h, w)
    held.append(x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])
held_syn = {}
with torch.no_grad():
    for q in range(6):
        codec.quality = q + 1
        held_syn[q] = [codec.synthesise(codec.encode_latents(x))[..., : x.shape[-2], : x.shape[-1]] for x in held]

def run(arm):
    torch.manual_seed(0); gen = torch.Generator().manual_seed(0)
    pf = copy.deepcopy(codec.postfilter); pf.train()
    half = Half(6) if arm == "B" else None
    groups = [{"params": pf.parameters(), "lr": 3e-4}] + ([{"params": half.parameters(), "lr": 1e-3}] if half else [])
    opt = torch.optim.Adam(groups)
    f = lambda s, q: pf(s, q) + (half(s, q) if half is not None else 0)
    t0 = time.time()
    for step in range(1, STEPS + 1):
        if step == int(0.8 * STEPS):
            for g in opt.param_groups: g["lr"] /= 10
        i = torch.randint(len(cache["q"]), (16,), generator=gen)
        r, c = (int(v) for v in torch.randint(192 - 128 + 1, (2,), generator=gen))
        x = cache["x"][i, :, r:r+128, c:c+128].float() / 255
        s = cache["syn"][i, :, r:r+128, c:c+128].float()
        loss = ((f(s, cache["q"][i]).clamp(0, 1) - x) ** 2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    pf.eval()
    rows = []
    with torch.no_grad():
        for q in range(6):
            base = sum(_psnr(codec.postfilter(s, q), x) for s, x in zip(held_syn[q], held)) / len(held)
            new = sum(_psnr(f(s, q), x) for s, x in zip(held_syn[q], held)) / len(held)
            rows.append({"q": q + 1, "shipped": round(base, 4), arm: round(new, 4), "gain": round(new - base, 4)})
    return {"arm": arm, "steps": STEPS, "seconds": round(time.time() - t0), "rows": rows}

for arm in sys.argv[2:] or ("A", "B"):
    print(json.dumps(run(arm)), flush=True)
