import pytest
import torch

import lcodec
from lcodec.errors import ModelError
from lcodec.registry import CodecSpec, create_codec, list_codecs, register_codec


def _spec(name: str) -> CodecSpec:
    return CodecSpec(name=name, modality="image", qualities=(1,), default_quality=1,
                     transform="t", entropy_model="e", paper="p")


def test_names_are_validated_and_unique():
    with pytest.raises(ModelError, match="lowercase"):
        register_codec(_spec("Bad_Name"))
    with pytest.raises(ModelError, match="twice"):
        register_codec(_spec("walloc-rgb"))(lambda quality: None)


def test_unknown_names_and_kwargs_raise():
    with pytest.raises(ModelError, match="unknown codec"):
        create_codec("nope")
    with pytest.raises(ModelError, match="bad arguments"):
        create_codec("walloc-rgb", width=12)


def test_pattern_listing_and_public_api():
    assert [s.name for s in list_codecs("walloc-*")] == [s.name for s in lcodec.list_codecs("walloc-*")]
    assert list_codecs("zzz-*") == []
    assert lcodec.load("walloc-rgb-q3").quality == 3


@pytest.mark.parametrize("spec", [s for s in list_codecs() if s.weights], ids=lambda s: s.name)
def test_every_shipped_codec_loads_and_round_trips(spec):
    assert set(spec.weights) == set(spec.qualities)  # a shipped codec ships every rate
    for q in spec.qualities:
        codec = lcodec.load(spec.name, quality=q)
        assert not codec.training and codec.modality == spec.modality
        assert spec.weights_sha256.get(q), "shipped weights must be listed in weights/manifest.json"
        if spec.modality == "image":
            x = torch.rand(1, 3, 20, 30)
            assert codec.decompress(codec.compress(x)).shape == x.shape


def test_recipe_only_codecs_say_how_to_get_their_weights():
    unshipped = [s for s in list_codecs() if not s.weights]
    assert {s.name for s in unshipped} == {"walloc-rgb-hp"}
    for spec in unshipped:
        with pytest.raises(ModelError, match="no shipped weights .*codec train"):
            lcodec.load(spec.name)
