"""Complete codecs (transform + entropy model + container), one module per family."""
from lcodec.codecs.base import Codec, RDOutput
from lcodec.codecs.walloc import WallocImageCodec
from lcodec.codecs.walloc_audio import WallocAudioCodec
from lcodec.codecs.walloc_hp import WallocHyperpriorCodec
from lcodec.codecs.walloc_vr import WallocVariableRateCodec
from lcodec.codecs.walloc_mcq import WallocCodebookCodec

__all__ = ["Codec", "RDOutput", "WallocImageCodec", "WallocAudioCodec", "WallocHyperpriorCodec",
           "WallocVariableRateCodec", "WallocCodebookCodec"]
