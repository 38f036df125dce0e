"""A few real training steps, resume, and export to loadable shipped-format weights."""
import dataclasses
import json

import torch
from PIL import Image

from lcodec.registry import create_codec
from lcodec.train.loop import TrainRecipe, export_weights, train
from tests.conftest import FIXTURES


def test_train_resume_export(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    img = Image.open(FIXTURES / "coffee_481x321.png")
    img.crop((0, 0, 64, 48)).save(data / "a.png")  # smaller than the crop: padded
    img.crop((100, 100, 300, 200)).save(data / "b.png")
    recipe = TrainRecipe(codec="walloc-rgb", quality=3, lmbda=0.01, crop=64, batch_size=2, steps=4,
                         checkpoint_every_s=1e9)
    run = tmp_path / "run"
    train(recipe, data, run, steps=2, progress=False)
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 2 and ck["recipe"] == dataclasses.asdict(recipe)
    first = {k: v.clone() for k, v in ck["model"].items()}
    train(recipe, data, run, progress=False)  # resumes and finishes the remaining 2 steps
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 4
    assert any(not torch.equal(first[k], ck["model"][k]) for k in first)
    lines = (run / "log.jsonl").read_text().splitlines()
    assert all("bpp" in json.loads(line) for line in lines)

    weights = export_weights(run / "checkpoint.pt", tmp_path / "walloc-rgb-q3.pt")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest) == {"walloc-rgb-q3.pt"}
    codec = create_codec("walloc-rgb", 3)
    codec.load_weights(torch.load(weights, weights_only=True))
    x = torch.rand(1, 3, 24, 40)
    assert codec.eval().decompress(codec.compress(x)).shape == x.shape


def test_continue_from_shipped_weights(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    Image.open(FIXTURES / "coffee_481x321.png").crop((0, 0, 96, 80)).save(data / "a.png")
    recipe = TrainRecipe(codec="walloc-rgb", quality=3, lmbda=0.01, crop=32, batch_size=2, steps=3,
                         checkpoint_every_s=1e9)
    train(recipe, data, tmp_path / "first", steps=2, progress=False)
    shipped = export_weights(tmp_path / "first" / "checkpoint.pt", tmp_path / "w.pt")
    assert torch.load(shipped, weights_only=True)["training"]["step"] == 2
    train(recipe, data, tmp_path / "second", progress=False, init_from=shipped)
    ck = torch.load(tmp_path / "second" / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 3  # continued at the exported step, one more to the recipe's end


def test_learning_rate_drops_at_the_same_fraction_of_this_runs_steps():
    from lcodec.train.loop import _lr

    r = TrainRecipe(codec="walloc-rgb", quality=3, lmbda=0.01, steps=4_000, lr=1e-3)
    assert _lr(r, 0, 4_000) == 1e-3 / 200  # warm-up
    assert _lr(r, 3_399, 4_000) == 1e-3 and _lr(r, 3_400, 4_000) == 1e-4
    # a continuation run (--from-shipped --steps 50000) keeps the full rate until 85% of 50,000
    assert _lr(r, 10_000, 50_000) == 1e-3 and _lr(r, 42_500, 50_000) == 1e-4
