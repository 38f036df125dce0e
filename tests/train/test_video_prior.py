"""The temporal prior's fit (lcodec.train.video_prior) on small synthetic latents: it starts as the
intra model, its objective is what the encoder pays (each block the cheaper mode), it resumes from
its checkpoint, and --temporal-only moves only the weights that read the temporal context."""
import torch

from lcodec.codecs.video import video_codec
from lcodec.train.video_prior import _bits, cache_states, fit


def _data(codec, frames: int = 3):
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(1, 192, 8, 8, generator=gen) * 0.3
    lat = torch.cat([base + 0.05 * t * torch.randn(1, 192, 8, 8, generator=gen) for t in range(frames)])
    latents = {"clip": lat}
    return latents, cache_states(latents, codec, rates=(0, 1))


def test_the_fit_starts_as_the_intra_model_and_charges_the_cheaper_mode():
    codec = video_codec(1, load_temporal=False)
    latents, states = _data(codec)
    gains = torch.exp(codec.image.log_gain.detach().float())
    y = latents["clip"][1:2] * gains[0][None, :, None, None]
    k = states["clip"][0]
    intra = codec.image.entropy.estimate_bits(y.double(), 0, 192)["y"]
    # against an unrelated previous frame the temporal mode loses in most blocks: each block is
    # charged at most its intra cost (the encoder would pick intra there)
    unrelated = torch.randint(-3, 4, k[:1].shape, generator=torch.Generator().manual_seed(5)).float()
    with torch.no_grad():
        bits = _bits(codec.temporal, y, unrelated, torch.tensor([0]))
        far_bits = _bits(codec.temporal, y, unrelated * 0 + 50, torch.tensor([0]))
    assert float(bits) <= intra + 1e-3
    assert float(far_bits) <= intra + 1e-3
    # a frame identical to the previous one costs less than its intra coding
    y0 = latents["clip"][:1] * gains[0][None, :, None, None]
    with torch.no_grad():
        same = _bits(codec.temporal, y0, k[:1].float(), torch.tensor([0]))
    assert float(same) < codec.image.entropy.estimate_bits(y0.double(), 0, 192)["y"]


def test_fit_resumes_and_temporal_only_keeps_the_intra_weights(tmp_path):
    codec = video_codec(1, load_temporal=False)
    latents, states = _data(codec)
    gains = torch.exp(codec.image.log_gain.detach().float())
    before = {k: v.clone() for k, v in codec.temporal.state_dict().items()}
    ckpt = tmp_path / "prior.ckpt"
    fit(codec.temporal, latents, states, gains, steps=2, batch=2, rates=(0, 1), checkpoint=ckpt,
        checkpoint_every=1, temporal_only=True)
    hid, cs = codec.temporal.context.hidden_channels, codec.temporal.context.width
    moved = False
    for s, head in enumerate(codec.temporal.context.heads):
        w0 = before[f"context.heads.{s}.weight"]
        assert torch.equal(head.weight[:, :hid], w0[:, :hid])
        assert torch.equal(head.weight[:, hid + cs :], w0[:, hid + cs :])
        assert torch.equal(head.bias, before[f"context.heads.{s}.bias"])
        moved |= not torch.equal(head.weight[:, hid : hid + cs], w0[:, hid : hid + cs])
    assert moved
    log = fit(codec.temporal, latents, states, gains, steps=3, batch=2, rates=(0, 1), checkpoint=ckpt,
              temporal_only=True)
    assert torch.load(ckpt, weights_only=False)["step"] == 3
    assert isinstance(log, list)
