"""Device-only driver (not shipped): one walloc-rgb-rd training process.

argv: variant (A: plain loss, B: per-rate balanced loss), total steps, run dir.
env DROP_S: divide lr by 10 after this many seconds (time-based drop for a time-boxed call).
env INIT_PREFIX: when the run dir has no checkpoint, start from PREFIX_syn.pt + PREFIX_rest.pt (fresh Adam).
"""
import dataclasses, os, sys, time, torch
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.backends.cudnn.benchmark = True
import lcodec.train.loop as loop
from lcodec.codecs.walloc_vr import WallocVariableRateCodec
from lcodec.registry import create_codec
from lcodec.train.recipes.walloc_vr import RECIPES

variant, total, run_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
DEV = "cuda" if torch.cuda.is_available() else "cpu"
if variant == "B":  # per-rate loss balance: each sample's loss x sqrt(lambda_gm / lambda_i)
    base = WallocVariableRateCodec.rd_loss
    def rd_loss(out, x, lmbda):
        pixels = x.shape[-2] * x.shape[-1]
        mse = ((out.x_hat - x) ** 2).flatten(1).mean(1)
        bpp = out.total_bits / pixels
        gm = torch.tensor([0.0008, 0.002, 0.005, 0.012, 0.03, 0.075]).log().mean().exp()
        w = (gm.to(x.device) / out.lmbda) ** 0.5
        loss = (w * (lmbda * out.lmbda * 255.0**2 * mse + bpp)).mean()
        _, shown = base(out, x, lmbda)
        return loss, shown
    WallocVariableRateCodec.rd_loss = staticmethod(rd_loss)
r = dataclasses.replace(RECIPES["walloc-rgb-rd"], batch_size=16, steps=total, checkpoint_every_s=20)
if os.environ.get("DROP_S"):
    t0, drop = time.time(), float(os.environ["DROP_S"])
    def _lr(recipe, step, total):
        dropped = time.time() - t0 > drop
        if dropped and not getattr(_lr, "said", False):
            print("lr drop at step", step, flush=True); _lr.said = True
        return recipe.lr * (0.1 if dropped else 1.0)
    loop._lr = _lr
ck = os.path.join(run_dir, "checkpoint.pt")
if not os.path.exists(ck) and os.environ.get("INIT_PREFIX"):
    p = os.environ["INIT_PREFIX"]
    parts = [torch.load(f"{p}_{t}.pt", map_location="cpu", weights_only=True) for t in ("syn", "rest")]
    codec = create_codec(r.codec, r.quality)
    codec.load_state_dict({**parts[0]["model"], **parts[1]["model"]})
    transform = [q for n, q in codec.named_parameters() if n.startswith(("analysis.", "synthesis."))]
    entropy = [q for q in codec.parameters() if all(q is not t for t in transform)]
    opt = torch.optim.Adam([{"params": transform, "scale": 1.0, "transform": True},
                            {"params": entropy, "scale": r.prior_lr_scale, "transform": False}], lr=r.lr)
    os.makedirs(run_dir, exist_ok=True)
    torch.save({"recipe": dataclasses.asdict(r), "model": codec.state_dict(), "optimizer": opt.state_dict(),
                "step": int(parts[0]["step"]), "world_size": 1}, ck)
    print("rebuilt checkpoint from", p, "at step", parts[0]["step"], flush=True)
loop.train(r, ".gpu/train", run_dir, device=DEV, progress=False)
