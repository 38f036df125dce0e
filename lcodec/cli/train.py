"""`codec train RECIPE --data DIR`: reproduce (or continue) a shipped weight."""
from __future__ import annotations

import argparse
from pathlib import Path

from lcodec.errors import InputError

__all__ = ["add_parser", "main"]

# Shipped weights that are fitted onto another codec's shipped file by a module of their own,
# not trained from scratch by a recipe: where ``codec train NAME`` sends the user instead.
FITTED_ONTO = {
    "walloc-rgb-rd-gmm": ("walloc-rgb-rd", "python -m lcodec.train.context walloc-rgb-rd-gmm --base walloc-rgb-rd",
                          "docs/results/train_walloc-rgb-rd-gmm/README.md"),
    "walloc-rgb-mcq": ("walloc-rgb-rd", "python -m lcodec.train.codebook walloc-rgb-mcq",
                       "docs/results/train_walloc-rgb-mcq/README.md"),
    **{f"walloc-audio-hp-q{q}": (f"walloc-audio-q{q}", f"python -m lcodec.train.audio_hyperprior {q} "
                                 "--checkpoint CKPT", "docs/models/walloc-audio-hp.md") for q in (1, 2, 3)},
    "walloc-video": ("walloc-rgb-rd", "python -m lcodec.train.video_prior --cache /tmp/video-latents.pt "
                     "--checkpoint CKPT", "docs/models/walloc-video.md"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe (resumes from OUT/checkpoint.pt)")
    p.add_argument("recipe", help="recipe name, e.g. walloc-rgb-q3")
    p.add_argument("--data", type=Path, required=True, help="folder of training images or audio clips")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/RECIPE)")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    p.add_argument("--device", default="cpu")
    p.add_argument("--export", type=Path, default=None, help="write shipped-format weights here when done")
    p.add_argument("--from-shipped", action="store_true",
                   help="start from the shipped weights (and their step) when OUT has no checkpoint")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from lcodec.api import weights_path
    from lcodec.train.loop import export_weights, train
    from lcodec.train.recipes import RECIPES

    if args.recipe in FITTED_ONTO:
        base, command, recipe_doc = FITTED_ONTO[args.recipe]
        raise InputError(f"{args.recipe} is fitted onto {base}'s shipped weights, not trained by a recipe: "
                         f"run `{command} --data DIR --out FILE` (full recipe: {recipe_doc})")
    if args.recipe not in RECIPES:
        raise InputError(f"unknown recipe {args.recipe!r}; available: {', '.join(sorted(RECIPES))}")
    recipe = RECIPES[args.recipe]
    out = args.out or Path("runs") / args.recipe
    init = weights_path(recipe.codec, recipe.quality) if args.from_shipped else None
    if init is not None and not init.exists():
        raise InputError(f"--from-shipped: {recipe.codec} q{recipe.quality} has no weights at {init} to start from; "
                         "drop --from-shipped to train from scratch")
    ckpt = train(recipe, args.data, out, device=args.device, steps=args.steps, init_from=init)
    print(f"checkpoint: {ckpt}")
    if args.export:
        print(f"weights: {export_weights(ckpt, args.export)}")
    return 0
