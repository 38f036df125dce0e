"""Recipes for the ``walloc-rgb-hp`` weights (one per rate point; q1 and q3 use walloc-rgb's lambdas).

Each run starts from the shipped walloc-rgb transform of the same rate point (``init_weights``
copies ``analysis.*`` and ``synthesis.*``; the side path starts fresh). For the first 1,000
steps the transform stays fixed and only the entropy model (h_a, the integer index network,
the means network, the prior on z) learns, at 3x the learning rate; then everything trains
jointly. (Without the freeze, the untrained hyperprior's rate gradient wrecks the shipped
transform in the first few hundred steps.) Other settings: ``TrainRecipe``'s
defaults (256x256 crops, batches of 8, Adam 1e-3 divided by 10 after 85% of the steps, seed 0).
"""
from __future__ import annotations

from lcodec.train.loop import TrainRecipe

__all__ = ["RECIPES"]

RECIPES = {
    "walloc-rgb-hp-q1": TrainRecipe(codec="walloc-rgb-hp", quality=1, lmbda=0.004, steps=3_000,
                                    prior_lr_scale=3.0, init_weights="walloc-rgb-q1", freeze_transform_steps=1_000),
    "walloc-rgb-hp-q2": TrainRecipe(codec="walloc-rgb-hp", quality=2, lmbda=0.010, steps=3_000,
                                    prior_lr_scale=3.0, init_weights="walloc-rgb-q3", freeze_transform_steps=1_000),
    "walloc-rgb-hp-q3": TrainRecipe(codec="walloc-rgb-hp", quality=3, lmbda=0.022, steps=3_000,
                                    prior_lr_scale=3.0, init_weights="walloc-rgb-q3", freeze_transform_steps=1_000),
}
