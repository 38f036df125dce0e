"""First estimate (2026-11-23) behind LadderConfig.rate_z_priors: val z bits under the shared prior
vs under per-rate, per-channel histograms of 150 training crops. Printed: -4.8% (q1), -1.3%, -0.6%,
-3.4%, -7.9%, -15.3% (q6). The shipped fit is lcodec.train.zprior.
"""
import torch, glob, random, numpy as np
torch.set_num_threads(2)
import lcodec
from lcodec.io.image import read_image
from PIL import Image
rng = random.Random(0)
train = sorted(glob.glob('../shared/data/images/train/*'))
val = [read_image(f)[None] for f in sorted(glob.glob('../shared/data/images/val/*'))]
c = lcodec.load('walloc-rgb-rd', 1)
gains = torch.exp(c.log_gain.detach().double())
R = 20
for q in range(6):
    zs = []
    for k in range(150):
        img = Image.open(rng.choice(train)).convert('RGB')
        l, t = rng.randrange(img.size[0]-256+1), rng.randrange(img.size[1]-256+1)
        x = torch.from_numpy(np.array(img.crop((l,t,l+256,t+256)))).permute(2,0,1)[None].float()/255
        with torch.no_grad():
            y = c.analysis(x).double() * gains[q][None,:,None,None]
            zs.append(c._hyper_analysis(y)[0].reshape(48,-1))
    Z = torch.cat(zs,1).clamp(-R,R) + R
    cnt = torch.stack([torch.bincount(Z[ch], minlength=2*R+1) for ch in range(48)]).double() + 0.5
    logp = torch.log2(cnt / cnt.sum(1, keepdim=True))
    cur = new = n = 0
    c.quality = q+1
    for x in val:
        with torch.no_grad():
            y64, z = c._analyse(x)
        cur += -torch.log2(c.prior.likelihood(z.float())).sum().item()
        zz = z[0].reshape(48,-1).clamp(-R,R)+R
        new += -logp.gather(1, zz).sum().item(); n += x.shape[-1]*x.shape[-2]
    print(q+1, 'val z bpp current %.4f  per-rate histogram %.4f  (%.1f%%)' % (cur/n, new/n, 100*(new/cur-1)), flush=True)
