"""Device-only: estimated RD of checkpoints on 48 fixed training crops, per quality; BD of each vs the first."""
import json, sys, torch
from lcodec.registry import create_codec
from lcodec.train.data import ImageCropDataset
from lcodec.eval.bdrate import bd_rate
DEV = "cuda" if torch.cuda.is_available() else "cpu"
data = ImageCropDataset(".gpu/train", crop=256, length=48, seed=123)
x = torch.stack([data[i] for i in range(48)]).to(DEV)
res = {}
for path in sys.argv[1:]:
    ck = torch.load(path, map_location=DEV, weights_only=True)
    c = create_codec("walloc-rgb-rd", 4).to(DEV); c.load_state_dict(ck["model"]); c.eval()
    pts = []
    with torch.no_grad():
        for q in range(1, 7):
            c.quality = q
            out = c(x)
            mse = ((out.x_hat.clamp(0, 1) - x) ** 2).flatten(1).mean(1)
            pts.append((float((out.total_bits / (256 * 256)).mean()), float((10 * torch.log10(1 / mse)).mean())))
    res[path] = {"step": int(ck["step"]), "points": pts}
    print(path, ck["step"], [f"{b:.3f}/{p:.2f}" for b, p in pts], flush=True)
paths = list(res)
for p in paths[1:]:
    a, b = res[paths[0]]["points"], res[p]["points"]
    r = bd_rate([u for u, _ in a], [v for _, v in a], [u for u, _ in b], [v for _, v in b])
    print("BD-rate", p, "vs", paths[0], r, flush=True)
    res[p]["bd_vs_first"] = r.value
json.dump(res, open(sys.argv[1].rsplit("/", 2)[0] + "/eval.json", "w"), indent=1, default=str)
