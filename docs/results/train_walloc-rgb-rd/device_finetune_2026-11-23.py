"""Device-only driver (kept in docs/results/train_walloc-rgb-rd/ as it ran): joint fine-tune of
walloc-rgb-rd with the channel context's float mean corrections (context_hidden=H), time-boxed.

argv: init (a shipped .pt weights file, or a folder with model_*.pt from an earlier segment),
      seconds, lr, drop_at (fraction of seconds after which lr /10), out folder, seed, H
env STE=1: y rate from straight-through rounded symbols (the exact cost). env MEANS_LR: absolute lr of the mean corrections (FROZEN=1: transform and the rest of the
entropy model fixed, only the mean corrections train). Writes out/model_a.pt, out/model_b.pt (fp32 state dict split in two), out/log.jsonl.
"""
import dataclasses, json, os, sys, time
import torch

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.backends.cudnn.benchmark = True
from lcodec.codecs.walloc_vr import VR_HYPER_RD, VR_LADDER, WALLOC_RGB_RD, WallocVariableRateCodec
from lcodec.train.data import ImageCropDataset

init, seconds, lr, drop_at, out, seed, H = sys.argv[1:8]
seconds, lr, drop_at, seed, H = float(seconds), float(lr), float(drop_at), int(seed), int(H)
DEV = "cuda" if torch.cuda.is_available() else "cpu"
BATCH = int(os.environ.get("BATCH", "16"))
os.makedirs(out, exist_ok=True)
torch.manual_seed(seed)
codec = WallocVariableRateCodec(WALLOC_RGB_RD, dataclasses.replace(VR_HYPER_RD, context_hidden=H), VR_LADDER,
                                name="walloc-rgb-rd", quality=4)
if init.endswith(".pt"):
    shipped = torch.load(init, map_location="cpu", weights_only=True)
    r = codec.load_state_dict(shipped["state_dict"], strict=False)
    assert not r.unexpected_keys and all(k.startswith("context.means.") for k in r.missing_keys), r
    step0 = int(shipped.get("training", {}).get("step", 0))
else:
    sd = {}
    for part in ("a", "b"):
        sd.update(torch.load(os.path.join(init, f"model_{part}.pt"), map_location="cpu", weights_only=True))
    step0 = int(sd.pop("_step").item())
    codec.load_state_dict({k: v.float() for k, v in sd.items()})
if os.environ.get("STE"):  # y's rate at the rounded symbols (straight-through), not y + U(-1/2, 1/2)
    gauss = codec.gaussian
    def _ste_forward(y, scales, means=None, training=None):
        r = y - means if means is not None else y
        y_hat = r + (torch.round(r) - r).detach() + (means if means is not None else 0)
        return y_hat, -torch.log2(gauss.likelihood(y_hat, scales, means)).flatten(1).sum(dim=1)
    gauss.forward = _ste_forward
codec.to(DEV).train()
transform = [p for n, p in codec.named_parameters() if n.startswith(("analysis.", "synthesis."))]
means = [p for n, p in codec.named_parameters() if n.startswith("context.means.")]
entropy = [p for p in codec.parameters() if all(p is not q for q in transform + means)]
MEANS_LR = float(os.environ.get("MEANS_LR", "0"))  # 0: the entropy group's lr (3 x lr)
rest = 0.0 if os.environ.get("FROZEN") else 1.0
groups = [{"params": transform, "scale": rest}, {"params": entropy, "scale": 3.0 * rest},
          {"params": means, "scale": MEANS_LR / lr if MEANS_LR else 3.0}]
opt = torch.optim.Adam([g for g in groups if g["scale"] > 0], lr=lr)
for g in groups:
    if g["scale"] == 0:
        for p in g["params"]:
            p.requires_grad_(False)
data = ImageCropDataset(".gpu/train", crop=256, length=10**9, seed=seed)
log = open(os.path.join(out, "log.jsonl"), "a")
t0, step, i = time.time(), step0, 0
acc = {"loss": 0.0, "bpp": 0.0, "psnr": 0.0, "side_bpp": 0.0}
print(f"start at step {step0}, {sum(p.numel() for p in codec.parameters())} params, device {DEV}", flush=True)
while time.time() - t0 < seconds:
    x = torch.stack([data[i * BATCH + j] for j in range(BATCH)]).to(DEV, non_blocking=True)
    el = time.time() - t0
    scale = min(1.0, (i + 1) / 200) * (0.1 if el > drop_at * seconds else 1.0)
    for g in opt.param_groups:
        g["lr"] = lr * g["scale"] * scale
    outp = codec(x)
    loss, shown = codec.rd_loss(outp, x, 1.0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(codec.parameters(), 1.0)
    opt.step()
    i += 1
    step += 1
    acc["loss"] += loss.item()
    for k in ("bpp", "psnr", "side_bpp"):
        acc[k] += shown[k]
    if i % 200 == 0:
        rec = {"step": step, "t": round(time.time() - t0, 1), "lr_scale": scale, **{k: v / 200 for k, v in acc.items()}}
        log.write(json.dumps(rec) + "\n"); log.flush()
        print(rec, flush=True)
        acc = dict.fromkeys(acc, 0.0)
sd = {k: v.detach().cpu() for k, v in codec.state_dict().items()}
keys = list(sd)
half = len(keys) // 2
torch.save({**{k: sd[k] for k in keys[:half]}, "_step": torch.tensor(step)}, os.path.join(out, "model_a.pt"))
torch.save({k: sd[k] for k in keys[half:]}, os.path.join(out, "model_b.pt"))
print("saved at step", step, "after", round(time.time() - t0), "s", flush=True)
