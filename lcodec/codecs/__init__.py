"""Complete codecs: one generic assembly (transform + entropy model + container) and the
registered specs that name their parts, one module per family."""
from lcodec.codecs.assembly import ComposedCodec, LadderConfig, VariableRateOutput
from lcodec.codecs.base import Codec, RDOutput
from lcodec.codecs import lossless, nirvana, overfit, video, video_mc, vq, walloc, walloc_audio  # noqa: F401  (registers the built-in codecs)

__all__ = ["Codec", "ComposedCodec", "LadderConfig", "RDOutput", "VariableRateOutput"]
