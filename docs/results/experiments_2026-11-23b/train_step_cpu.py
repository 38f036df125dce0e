"""What does one training step cost on this project's CPU machine (2 threads)?

Adam steps on batches of 16 random 256x256 images, rate + distortion loss, for two CompressAI
architectures and for the walloc-rgb-rd ladder's own training path (``rd_loss`` over ``forward``),
all freshly built (untrained weights: the architecture is what costs, not the values):

    OMP_NUM_THREADS=2 .venv/bin/python docs/results/experiments_2026-11-23b/train_step_cpu.py

Result (2026-11-23, seconds per step, three steps each):
    bmshj2018-hyperprior q5 (N=128, M=192): 12.16, 11.70, 11.42
    mbt2018-mean q5 (N=192, M=320):         20.87, 20.97, 20.22
    walloc-rgb-rd:                           5.44,  5.07,  4.70

So rd's own recipe (26,500 steps, about 17 minutes on one H100) would take about 37 hours here,
and a deeper Balle/Minnen-class transform, the kind that sits near BPG (roughly -20% vs WebP in
PSNR), costs 2.3-4x more per step and needs several times rd's step count.
"""
import time, torch
torch.set_num_threads(2)
from compressai.zoo import mbt2018_mean, bmshj2018_hyperprior
from lcodec.codecs.walloc_vr import walloc_rgb_rd
for name, m in [("bmshj2018-hyperprior q5 (N=128,M=192)", bmshj2018_hyperprior(quality=5)),
                ("mbt2018-mean q5 (N=192,M=320)", mbt2018_mean(quality=5))]:
    m.train(); opt = torch.optim.Adam(m.parameters(), 1e-4)
    x = torch.rand(16, 3, 256, 256)
    ts = []
    for i in range(3):
        t = time.time(); out = m(x)
        loss = sum(l.log().sum() for l in out["likelihoods"].values()) * -1 / (16*256*256) + ((out["x_hat"]-x)**2).mean()*1000
        opt.zero_grad(); loss.backward(); opt.step(); ts.append(time.time()-t)
    print(name, "s/step (batch 16, 256x256):", [round(t,2) for t in ts], flush=True)
c = walloc_rgb_rd(4); m = c; m.train(); opt = torch.optim.Adam(m.parameters(), 1e-4)
x = torch.rand(16, 3, 256, 256); ts=[]
for i in range(3):
    t=time.time(); out = m(x); loss,_ = m.rd_loss(out, x, 1.0); opt.zero_grad(); loss.backward(); opt.step(); ts.append(time.time()-t)
print("walloc-rgb-rd s/step:", [round(t,2) for t in ts])
