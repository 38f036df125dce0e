"""Recipes for the variable-rate ``walloc-rgb-light`` and ``walloc-rgb-rd`` weights (one file each).

Each run trains the whole six-point ladder at once: every crop gets a random rate point and
its distortion is weighed by that point's lambda (``LadderConfig``; the recipe's ``lmbda`` is
a multiplier, 1.0). The run starts from the plain transform coder (a KLT of 64 training crops'
packet coefficients; gains at the high-rate step for each lambda), so the first steps already
code reasonably and training mostly learns the hyperprior, the gains and the nonlinear
decoder (and, for ``rd``, the encoder branch). The entropy model learns at 3x the rate.
Other settings: ``TrainRecipe``'s defaults (256x256 crops, batches of 8, Adam 1e-3 divided
by 10 after 85% of the steps, seed 0).
"""
from __future__ import annotations

from lcodec.train.loop import TrainRecipe

__all__ = ["RECIPES"]

RECIPES = {
    "walloc-rgb-light": TrainRecipe(codec="walloc-rgb-light", quality=4, lmbda=1.0, steps=4_000, prior_lr_scale=3.0),
    "walloc-rgb-rd": TrainRecipe(codec="walloc-rgb-rd", quality=4, lmbda=1.0, steps=4_000, prior_lr_scale=3.0),
}
