"""lcodec.train.context: the rate-only fit of a channel context on cached latents."""
import torch

from lcodec.train.context import cache_latents, exact_bits, fit_context
from tests.codecs.test_channel_context import _codec
from tests.conftest import FIXTURES


def test_fit_moves_only_the_context_and_lowers_the_rate(photo, tmp_path):
    codec = _codec(photo, context_weights=False)  # starts as the plain hyperprior
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes((FIXTURES / "coffee_481x321.png").read_bytes())
    cache = cache_latents(codec, [folder / "a.png"], crops=24, size=64, progress=False)
    assert cache["hidden"].dtype == torch.uint8 and cache["r"].shape[1] == codec.transform.latent_channels
    assert set(cache["q"].tolist()) <= set(range(len(codec.ladder.lmbdas)))
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    start = exact_bits(codec, cache)
    log = fit_context(codec, cache, steps=60, lr=3e-3, batch=8, progress=False)
    assert log and all(torch.isfinite(torch.tensor(e["y_bpp"])) for e in log)
    after = codec.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("context.") for k in changed)
    assert exact_bits(codec, cache) < start  # on its own training crops, the context pays


def test_save_weights_creates_the_folder_and_records_the_hash(photo, tmp_path):
    import hashlib
    import json

    from lcodec.train.loop import save_weights

    codec = _codec(photo)
    dest = save_weights(codec, tmp_path / "new" / "folder" / "w.pt", {"procedure": "test"})
    manifest = json.loads((dest.parent / "manifest.json").read_text())
    assert manifest == {"w.pt": hashlib.sha256(dest.read_bytes()).hexdigest()}
    assert torch.load(dest, weights_only=True)["training"] == {"procedure": "test"}
