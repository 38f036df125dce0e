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
            # 8-bit values in the transform's channels; fixed-size transforms (pc-mnist) at their size
            cfg = getattr(codec.transform, "cfg", None)
            h, w = (cfg.height, cfg.width) if hasattr(cfg, "height") else (20, 30)
            x = torch.round(torch.rand(1, codec.transform.in_channels, h, w) * 255) / 255
            fit = {"steps": 3} if hasattr(codec, "fit") else {}  # codecs fitted per image: a short fit
            assert codec.decompress(codec.compress(x, **fit)).shape == x.shape
        if spec.modality == "video":
            x = torch.round(torch.rand(1, 3, 4, 20, 30) * 255) / 255
            fit = {"steps": 2} if hasattr(codec, "fit") else {}  # codecs fitted per video: a short fit
            assert codec.decompress(codec.compress(x, **fit)).shape == x.shape


def test_recipe_only_codecs_say_how_to_get_their_weights():
    unshipped = [s for s in list_codecs() if not s.weights]
    assert {s.name for s in unshipped} == {"walloc-rgb-hp"}
    for spec in unshipped:
        with pytest.raises(ModelError, match="no shipped weights .*codec train"):
            lcodec.load(spec.name)


def test_overlay_weights_take_the_rest_from_their_pinned_base(tmp_path):
    """A weights file laid over another (``lcodec.api.with_base``): the base's other tensors and
    entries, the file's own on top; a missing or changed base is refused, never half-loaded."""
    from lcodec.api import file_sha256, with_base

    base = tmp_path / "base.pt"
    torch.save({"name": "b", "tables": 1, "state_dict": {"t.a": torch.ones(2), "context.h": torch.zeros(3)}}, base)
    over = {"name": "o", "base": "base.pt", "base_sha256": file_sha256(base), "replaced": "context.",
            "state_dict": {"context.h": torch.full((4,), 2.0)}}
    got = with_base(over, tmp_path / "over.pt")
    assert got["name"] == "o" and got["tables"] == 1 and "base" not in got
    assert set(got["state_dict"]) == {"t.a", "context.h"} and torch.equal(got["state_dict"]["context.h"], torch.full((4,), 2.0))
    assert with_base({"name": "plain"}, tmp_path / "x.pt") == {"name": "plain"}
    torch.save({"name": "b", "state_dict": {"t.a": torch.zeros(2)}}, base)  # the base changed
    with pytest.raises(ModelError, match="another version"):
        with_base(over, tmp_path / "over.pt")
    base.unlink()
    with pytest.raises(ModelError, match="missing"):
        with_base(over, tmp_path / "over.pt")
