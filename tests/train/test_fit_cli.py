"""The post-hoc fit CLIs (``python -m lcodec.train.zprior`` / ``lcodec.train.context``) end to end
on a tiny run: they refit only their part of the shipped ladder and write loadable weights."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from lcodec.errors import InputError
from lcodec.registry import create_codec
from tests.codecs.parts import decompress_symbols, latent_symbols

PHOTO = Path(__file__).resolve().parents[1] / "data" / "coffee_481x321.png"


@pytest.fixture()
def data_dir(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    shutil.copy(PHOTO, d / "coffee.png")
    return d


def _reload(name: str, path: Path, quality: int):
    codec = create_codec(name, quality)
    codec.load_weights(torch.load(path, map_location="cpu", weights_only=True))
    return codec.eval()


def test_zprior_cli_refits_only_the_rate_priors(data_dir, tmp_path, photo):
    from lcodec.api import load
    from lcodec.train import zprior

    out, log = tmp_path / "w" / "walloc-rgb-light.pt", tmp_path / "fit.json"
    assert zprior.main(["walloc-rgb-light", "--data", str(data_dir), "--held-out", str(data_dir), "--crops", "2",
                        "--steps", "5", "--out", str(out), "--log", str(log)]) == 0
    record = json.loads(log.read_text())
    assert record["procedure"] == "python -m lcodec.train.zprior" and len(record["rates"]) == 6
    assert json.loads((out.parent / "manifest.json").read_text())["walloc-rgb-light.pt"]
    fitted, shipped = _reload("walloc-rgb-light", out, 2), load("walloc-rgb-light", quality=2)
    a, b = fitted.state_dict(), shipped.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("rate_priors."))  # nothing else moved
    x = photo[..., :64, :96]
    data = fitted.compress(x)
    assert torch.equal(decompress_symbols(fitted, data)[0], latent_symbols(shipped, x)[0])  # same y, new z tables


def test_context_cli_writes_a_decodable_ladder(data_dir, tmp_path, photo):
    from lcodec.train import context

    out = tmp_path / "walloc-rgb-rd.pt"
    assert context.main(["walloc-rgb-rd", "--data", str(data_dir), "--crops", "2", "--steps", "2", "--batch", "2",
                         "--out", str(out)]) == 0
    codec = _reload("walloc-rgb-rd", out, 3)
    x = photo[..., :64, :96]
    y, z, _ = decompress_symbols(codec, codec.compress(x))
    assert torch.equal(y, latent_symbols(codec, x)[0])


def test_fits_refuse_a_codec_without_the_part(data_dir, tmp_path):
    from lcodec.train import context, zprior

    with pytest.raises(InputError, match="no channel context"):
        context.main(["walloc-rgb-light", "--data", str(data_dir), "--out", str(tmp_path / "a.pt")])
    with pytest.raises(InputError, match="one z prior"):
        zprior.main(["walloc-rgb", "--data", str(data_dir), "--out", str(tmp_path / "b.pt")])
