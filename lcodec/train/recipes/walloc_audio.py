"""Recipes that reproduce the shipped ``walloc-audio`` weights (one per rate point).

Split of ../shared/data/audio (stated here, used by the benchmark): the models train on
four of the seven 48 kHz music clips below; glock, guitar and sopr, every speech clip and
the misc clips are held out for evaluation.

Loss = lambda * MSE + bits per stereo sample frame. For a uniform quantizer of step D on
coefficients that are coded, the rate falls by 2/(D ln 2) bits per frame per unit of D while
MSE grows by D/6, so lambda = 12 / (D^2 ln 2) targets a step of about D; the codec starts as
that plain transform coder (``_INIT_STEP``) and training moves every weight from there.
"""
from __future__ import annotations

from lcodec.train.loop import TrainRecipe

__all__ = ["RECIPES", "TRAIN_CLIPS"]

TRAIN_CLIPS = ("castanets48_stereo.wav", "encodec_test_48k.wav", "harpsichord48_stereo.wav", "moonlight48_stereo.wav")


def _recipe(quality: int, lmbda: float, steps: int) -> TrainRecipe:
    return TrainRecipe(codec="walloc-audio", quality=quality, lmbda=lmbda, crop=32768, batch_size=8,
                       steps=steps, include=TRAIN_CLIPS, prior_lr_scale=10.0)


RECIPES = {
    "walloc-audio-q1": _recipe(1, 4_000.0, 2_400),
    "walloc-audio-q2": _recipe(2, 30_000.0, 2_400),
    "walloc-audio-q3": _recipe(3, 300_000.0, 2_400),
}
