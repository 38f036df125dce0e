"""Training recipes: small dataclass configs, one per shipped weight."""
from lcodec.train.recipes.walloc_audio import RECIPES as _WALLOC_AUDIO
from lcodec.train.recipes.walloc_rgb import RECIPES as _WALLOC_RGB
from lcodec.train.recipes.walloc_rgb_hp import RECIPES as _WALLOC_RGB_HP
from lcodec.train.recipes.walloc_vr import RECIPES as _WALLOC_VR

RECIPES = {**_WALLOC_RGB, **_WALLOC_RGB_HP, **_WALLOC_AUDIO, **_WALLOC_VR}

__all__ = ["RECIPES"]
