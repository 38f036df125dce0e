"""lcodec: learned data codecs with deterministic, self-describing bitstreams.

>>> import lcodec
>>> codec = lcodec.load("walloc-rgb")          # shipped weights, CPU, eval mode
>>> data = codec.compress(x)                   # x: (1, 3, H, W) float in [0, 1]
>>> x_hat = lcodec.decompress(data)            # codec found from the header
"""
from lcodec.errors import BitstreamError, InputError, LcodecError, ModelError
from lcodec.registry import CodecSpec, list_codecs, register_codec

__version__ = "0.1.0"

__all__ = [
    "load",
    "list_codecs",
    "decompress",
    "register_codec",
    "CodecSpec",
    "LcodecError",
    "BitstreamError",
    "ModelError",
    "InputError",
    "__version__",
]


def __getattr__(name: str):  # lazy: `import lcodec.bitstream` must not pull in torch
    if name in ("load", "decompress"):
        from lcodec import api

        return getattr(api, name)
    raise AttributeError(f"module 'lcodec' has no attribute {name!r}")
