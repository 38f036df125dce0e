"""docs/architecture.md stays true: its "add a codec in one page" block runs as written, and the
toy codec it registers round-trips through the registry like any shipped codec."""
import re

import pytest
import torch

from lcodec import registry
from lcodec.bitstream.container import read_container
from lcodec.errors import BitstreamError
from tests.conftest import ROOT

DOC = ROOT / "docs" / "architecture.md"


@pytest.fixture(scope="module")
def page():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "the page has one runnable block"
    namespace: dict[str, object] = {"__name__": "architecture_doc"}
    try:
        exec(compile(blocks[0], str(DOC), "exec"), namespace)
        yield namespace
    finally:
        registry._REGISTRY.pop("toy-block", None)


def test_the_toy_codec_is_registered_and_built_from_the_two_parts(page):
    spec = registry.get_spec("toy-block")
    assert spec.modality == "image" and "factorized" in spec.entropy_model
    codec = page["codec"]
    assert type(codec.transform).__name__ == "BlockTransform"
    assert type(codec.entropy).__name__ == "FactorizedEntropyModel"


def test_the_toy_codec_round_trips_exactly(page):
    codec, x, data = page["codec"], page["x"], page["data"]
    header = read_container(data)
    assert (header.codec, header.quality, header.geometry.shape) == ("toy-block", 1, tuple(x.shape))
    # the factorized model codes round(y): the decoder gets exactly the encoder's symbols
    y64 = codec.analyse64(x)
    symbols, shape = codec.decompress_latents(data)
    assert shape == tuple(x.shape) and symbols.shape == codec.latent_shape(x.shape) == (1, 12, 10, 13)
    assert torch.equal(symbols.long(), torch.round(y64).long())
    assert torch.equal(codec.encode_latents(x), symbols)
    x_hat = codec.decompress(data)
    assert torch.equal(x_hat, codec.decode_latents(symbols, size=(37, 50)))
    # 60 steps of training already beat a flat grey image, and the rate is what the model says
    assert float(((x_hat - x) ** 2).mean()) < float(((0.5 - x) ** 2).mean())
    assert abs(8 * len(header.sections[0]) - codec.estimate_bits(x)) < 0.05 * codec.estimate_bits(x) + 64


def test_weights_reload_through_the_registry_give_the_same_bytes(page):
    codec, x, data = page["codec"], page["x"], page["data"]
    other = registry.create_codec("toy-block", 1)
    other.load_weights(codec.weights_state())
    assert other.weights_hash == codec.weights_hash
    assert other.compress(x) == data
    assert torch.equal(other.decompress(data), codec.decompress(data))
    fresh = registry.create_codec("toy-block", 1)  # other (untrained) weights: refused by the hash
    fresh.eval()
    fresh.export()
    with pytest.raises(BitstreamError, match="different toy-block q1 weights"):
        fresh.decompress(data)
