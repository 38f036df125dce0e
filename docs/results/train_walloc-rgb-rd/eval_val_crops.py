"""Estimated RD of fine-tuned rd checkpoints on val crops (as run 2026-11-23, CPU, 2 threads).

python eval_val_crops.py STEP BASE.pt CKPT_DIR... : every STEP-th val image (2: 8 of 16), its top-left
512x512 (or smaller) crop, eval-mode forward (rounded symbols, the model's own bits) at q1..q6;
mean bpp and PSNR per quality; BD-rate of each checkpoint against BASE. The model's estimate is
within 1.5% of the file size, so this ranks checkpoints without writing streams.
"""
import dataclasses, sys, glob, torch
torch.set_num_threads(2)
from lcodec.codecs.walloc_vr import VR_HYPER_RD, VR_LADDER, WALLOC_RGB_RD, WallocVariableRateCodec
from lcodec.io.image import read_image
from lcodec.eval.bdrate import bd_rate
files = sorted(glob.glob('/work/shared/data/images/val/*'))[:: int(sys.argv[1])]
xs = []
for f in files:
    x = read_image(f)[None]
    h, w = x.shape[-2:]
    xs.append(x[..., : min(h, 512), : min(w, 512)])
def model(src):
    c = WallocVariableRateCodec(WALLOC_RGB_RD, dataclasses.replace(VR_HYPER_RD, context_hidden=128), VR_LADDER, name='walloc-rgb-rd', quality=4)
    if src.endswith('.pt'):
        c.load_state_dict(torch.load(src, weights_only=True)['state_dict'], strict=False)
    else:
        sd = {}
        for p in 'ab': sd.update(torch.load(f'{src}/model_{p}.pt', weights_only=True))
        sd.pop("_step"); c.load_state_dict(sd, strict=False)
    return c.eval()
res = {}
for src in sys.argv[2:]:
    c = model(src); pts = []
    with torch.no_grad():
        for q in range(1, 7):
            c.quality = q; b = p = 0
            for x in xs:
                o = c(c._pad(x) if False else x)
                n = x.shape[-1] * x.shape[-2]
                mse = ((o.x_hat.clamp(0, 1) - x) ** 2).mean()
                b += float(o.total_bits.sum()) / n; p += float(10 * torch.log10(1 / mse))
            pts.append((b / len(xs), p / len(xs)))
    res[src] = pts
    print(src, ' '.join(f'{b:.3f}/{p:.2f}' for b, p in pts), flush=True)
a = res[sys.argv[2]]
for s in sys.argv[3:]:
    b = res[s]; print('BD', s, bd_rate([u for u,_ in a],[v for _,v in a],[u for u,_ in b],[v for _,v in b]).value)
