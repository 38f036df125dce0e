"""Recipes that reproduce the shipped ``walloc-rgb`` weights (one per rate point).

Everything not listed takes ``TrainRecipe``'s defaults: 256x256 crops, batches of 8,
Adam 1e-3 divided by 10 after 85% of the steps, seed 0.
"""
from __future__ import annotations

from lcodec.train.loop import TrainRecipe

__all__ = ["RECIPES"]

RECIPES = {
    "walloc-rgb-q1": TrainRecipe(codec="walloc-rgb", quality=1, lmbda=0.004, steps=6_000),
    "walloc-rgb-q3": TrainRecipe(codec="walloc-rgb", quality=3, lmbda=0.022, steps=10_000),
}
