"""Built-in MPQ tasks; importing this package registers them with ``lcodec.eval.mpq``.

Each module imports only torch and numpy at import time; torchvision and torchaudio
models are loaded when a task is built.
"""
from lcodec.eval.tasks import mnist, torchaudio_asr, torchvision_imagenet

__all__ = ["mnist", "torchaudio_asr", "torchvision_imagenet"]
