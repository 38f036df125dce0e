"""Recipes for the ``walloc-rgb-hp`` weights (one per rate point, same lambdas as walloc-rgb).

Each run starts from the shipped walloc-rgb transform of the same rate point (``init_weights``
copies ``analysis.*`` and ``synthesis.*``; the side path starts fresh) and trains everything
jointly; the factorized prior on z learns 3x faster. Other settings: ``TrainRecipe``'s
defaults (256x256 crops, batches of 8, Adam 1e-3 divided by 10 after 85% of the steps, seed 0).
"""
from __future__ import annotations

from lcodec.train.loop import TrainRecipe

__all__ = ["RECIPES"]

RECIPES = {
    "walloc-rgb-hp-q1": TrainRecipe(codec="walloc-rgb-hp", quality=1, lmbda=0.004, steps=3_000,
                                    prior_lr_scale=3.0, init_weights="walloc-rgb-q1"),
    "walloc-rgb-hp-q3": TrainRecipe(codec="walloc-rgb-hp", quality=3, lmbda=0.022, steps=3_000,
                                    prior_lr_scale=3.0, init_weights="walloc-rgb-q3"),
}
