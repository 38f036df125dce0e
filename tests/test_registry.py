import pytest
import torch

import lcodec
from lcodec.errors import ModelError
from lcodec.registry import CodecSpec, create_codec, get_spec, list_codecs, register_codec


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
    for q in spec.weights:
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


def test_rates_that_are_not_shipped_say_how_to_get_their_weights():
    """Every rate either ships (listed in the manifest) or is recipe-only: loading it names the
    `codec train` command and the file it would write; only the rates below are recipe-only."""
    from lcodec.api import weights_path
    from lcodec.train.recipes import RECIPES

    unshipped = {(s.name, q) for s in list_codecs() for q in s.qualities if q not in s.weights}
    assert unshipped == {("walloc-rgb-hp", 1), ("walloc-rgb-hp", 2), ("walloc-rgb-hp", 3), ("walloc-rgb", 1)}
    for name, q in sorted(unshipped):
        assert f"{name}-q{q}" in RECIPES and not weights_path(name, q).exists()
        with pytest.raises(ModelError, match=f"no shipped weights .*codec train {name}-q{q} --export"):
            lcodec.load(name, quality=q)
    shipped = {(s.name, q) for s in list_codecs() for q in s.weights}
    assert all(get_spec(n).weights_sha256.get(q) for n, q in shipped)


def test_a_user_trained_rate_loads_from_where_codec_train_exports_it(tmp_path, monkeypatch):
    """The recipe-only walloc-rgb q1, exported to its conventional path, loads like a shipped rate."""
    import lcodec.api as api

    monkeypatch.setattr(api, "WEIGHTS_DIR", tmp_path)
    from lcodec.train.loop import save_weights

    codec = create_codec("walloc-rgb", 1).eval()
    codec.export()  # what `codec train ... --export` does at the end of a run
    save_weights(codec, tmp_path / "walloc-rgb-q1.pt", {"step": 0})
    got = lcodec.load("walloc-rgb", quality=1)
    assert got.quality == 1 and not got.training and got.weights_hash == codec.weights_hash


def test_shipped_weights_folder_stays_well_under_50_mb():
    """DESIGN.md: the whole weights folder well under 50 MB (a pip wheel users download)."""
    from lcodec.api import WEIGHTS_DIR

    total = sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir() if p.is_file())
    assert total < 47e6, f"lcodec/weights holds {total / 1e6:.1f} MB"


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
