"""Recipe that reproduces the shipped ``walloc-rgb`` weights."""
from __future__ import annotations

from lcodec.train.loop import TrainRecipe

__all__ = ["RECIPES"]

RECIPES = {
    "walloc-rgb-q1": TrainRecipe(
        codec="walloc-rgb",
        quality=1,
        lmbda=0.004,
        crop=256,
        batch_size=8,
        steps=6_000,
        lr=1e-3,
        lr_drop_at=0.85,
        seed=0,
    ),
    "walloc-rgb-q3": TrainRecipe(
        codec="walloc-rgb",
        quality=3,
        lmbda=0.022,
        crop=256,
        batch_size=8,
        steps=10_000,
        lr=1e-3,
        lr_drop_at=0.85,
        seed=0,
    ),
}
