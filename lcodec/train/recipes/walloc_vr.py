"""Recipes for the variable-rate ``walloc-rgb-light`` and ``walloc-rgb-rd`` weights (one file each).

Each run trains the whole six-point ladder at once: every crop gets a random rate point and
its distortion is weighed by that point's lambda (``LadderConfig``; the recipe's ``lmbda`` is
a multiplier, 1.0). The run starts from the plain transform coder (a KLT of 64 training crops'
packet coefficients; gains at the high-rate step for each lambda), so the first steps already
code reasonably and training mostly learns the hyperprior, the gains and the nonlinear
decoder (and, for ``rd``, the encoder branch). The entropy model learns at 3x the rate, and
each image's loss is scaled by the ladder's balance weight (``LadderConfig.loss_weights``).

``walloc-rgb-light``: fine-tuned from the shipped rd weights (``init_weights``: every tensor but
the encoder branch), Adam 3e-4, batches of 8, 1,500 steps, lr /10 after 80%: a CPU run
(47 minutes on 2 threads). Train rd first.

``walloc-rgb-rd``: batches of 16, 26,500 steps, lr divided by 10 after 90% of them: a GPU run
(``codec train walloc-rgb-rd --device cuda``; about 17 minutes on one H100). How the shipped
file was actually made (session of 2026-11-22, device time boxed at 10 minutes a call):
steps 0-11,761 ran beside an unbalanced twin on the same GPU (the A/B that chose
balance 0.5); the run then continued from its weights with a fresh Adam state, and the lr
drop came at step 23,868 (time-based) instead of 23,850; the last checkpoint was step 26,543.
The 40 PNG training photos travelled to the GPU as 4:4:4 JPEG (quality 95, then 90 in the
second segment) to fit the transfer limit. Logs: ``docs/results/train_walloc-rgb-rd/``.
"""
from __future__ import annotations

from lcodec.train.loop import TrainRecipe

__all__ = ["RECIPES"]

RECIPES = {
    # CPU fine-tune from the shipped rd weights (same decoder and hyperprior, encoder without the branch)
    "walloc-rgb-light": TrainRecipe(codec="walloc-rgb-light", quality=4, lmbda=1.0, steps=1_500, lr=3e-4,
                                    lr_drop_at=0.8, prior_lr_scale=3.0, init_weights="walloc-rgb-rd"),
    # a GPU recipe (about 17 minutes on one H100; days on 2 CPU cores), see the module docstring
    "walloc-rgb-rd": TrainRecipe(codec="walloc-rgb-rd", quality=4, lmbda=1.0, steps=26_500, batch_size=16,
                                 lr_drop_at=0.9, prior_lr_scale=3.0),
}
