import sys, json, time, torch, math
from pathlib import Path
from lcodec.train import audio_hyperprior as ah
from lcodec.train.recipes.walloc_audio import TRAIN_CLIPS
from lcodec.io.audio import AUDIO_SUFFIXES
torch.set_num_threads(1)
name, steps, data, family = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
q = int(sys.argv[5]) if len(sys.argv) > 5 else 2
lr = float(sys.argv[6]) if len(sys.argv) > 6 else 3e-3
import os, dataclasses
import lcodec.codecs.walloc_audio as wa
if os.environ.get("HYPER"):
    wa.AUDIO_HYPER = dataclasses.replace(wa.AUDIO_HYPER, **json.loads(os.environ["HYPER"]))
print(wa.AUDIO_HYPER, flush=True)
codec, base = ah.build(q)
D = Path("/work/shared/data/audio")
music = sorted(p for p in (D/"music_stereo_48k").iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
train = [p for p in music if p.name in TRAIN_CLIPS]; held = [p for p in music if p.name not in TRAIN_CLIPS]
if data == "all":
    train += sorted(p for d in ("speech", "misc") for p in (D/d).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
cache = Path(f"/tmp/ahp/lat_q{q}_{data}.pt")
if cache.exists():
    yt, yh = torch.load(cache)
else:
    yt, yh = ah.cache_latents(codec, train, augment=True, progress=False), ah.cache_latents(codec, held, progress=False)
    torch.save((yt, yh), cache)
print("train latents", len(yt), sum(y.shape[-1] for y in yt), flush=True)
if family == "laplace":
    g = codec.entropy.gaussian
    def lik(y, scales, means=None):
        v = torch.abs(y - means if means is not None else y)
        b = scales.clamp_min(g.scale_bound)
        # P(|X-m| in bin) for Laplace(b): cdf via exp
        lo = torch.exp(-(v - 0.5).clamp_min(0) / b)
        hi = torch.exp(-(v + 0.5) / b)
        inner = 1 - 0.5 * torch.exp(-(0.5 - v).clamp_min(0) / b) - 0.5 * hi
        p = torch.where(v >= 0.5, 0.5 * (lo - hi), inner)
        return p.clamp_min(g.likelihood_bound)
    g.likelihood = lik
import os
if os.environ.get("NOMEAN"):
    for prm in codec.entropy.h_m.parameters(): prm.requires_grad_(False)
t0 = time.time()
log = ah.fit(codec, yt, steps, lr=lr, held=yh, checkpoint=Path(f"/tmp/ahp/{name}.ckpt"), checkpoint_every=250, progress=False)
for e in log: print(json.dumps(e), flush=True)
print("factorized", ah.factorized_kbps(q, yh), "time", time.time() - t0)
