"""The one generic codec: a transform plus an entropy model (DESIGN.md, "Composition").

``ComposedCodec`` runs, for any transform (``lcodec.models.transforms``) and any entropy model
(``lcodec.entropy.model``)::

    x --transform.analyse64--> y --x gain[q]--> y_q --entropy.encode--> sections --> container
    x_hat <--transform.finish-- post-filter[q] <--transform.synthesise-- y_hat_q / gain[q] <--entropy.decode--

with two optional parts that work with any transform: a rate ladder (``LadderConfig``: per-rate
gain units, Cui et al. 2021, so one model spans several rates) and a decoder-side post-filter
told the rate (images). An image ladder may also send a per-image restoration filter
(``restoration=True``: ``lcodec.models.restoration``, fitted by the encoder, one section after
the entropy model's; a stream without that section decodes as before). Encoder-side refinement
of the latents (``compress(refine=N)``, ``lcodec.codecs.refine``) is the assembly's too.

Weights files keep each role's tensors under their own names without a role prefix (the
names every shipped file has used since 0.1): ``state_dict()`` and ``load_state_dict()`` use
them; ``named_parameters()`` shows the roles (``transform.``, ``entropy.``).
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from lcodec.bitstream.coder import CODER_ID, CODER_VERSION
from lcodec.bitstream.container import Container, Geometry, read_container, write_container
from lcodec.bitstream.tables import CodingTables
from lcodec.codecs.base import Codec, RDOutput
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.models.postfilter import PostFilter
from lcodec.models.walloc import ConfigDict

__all__ = ["ComposedCodec", "LadderConfig", "VariableRateOutput", "initial_step", "weights_digest"]

_ROLES = ("transform.", "entropy.")


@dataclass(frozen=True)
class LadderConfig(ConfigDict):
    """The rate points of one variable-rate model: quality q uses ``lmbdas[q - 1]``."""

    lmbdas: tuple[float, ...] = (0.0008, 0.002, 0.005, 0.012, 0.03, 0.075)
    # Training only: each item's loss is multiplied by (geometric-mean lambda / its lambda) ** balance.
    # The loss of the highest rate is ~10x the lowest's, so with 0 the top rates steer the shared
    # weights; 0.5 evens the loss scales out (measured: -3.3% BD-rate at equal steps, see the model card).
    balance: float = 0.0
    # The entropy model keeps one factorized prior on its side information per rate point
    # (z's spread grows with the rate's gain; lcodec.train.zprior fits them on a trained ladder).
    rate_z_priors: bool = False
    # > 0: a decoder-side post-filter of this width (lcodec.models.postfilter), told the rate point,
    # fitted after the ladder by lcodec.train.postfilter; 0: none
    postfilter: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lmbdas", tuple(float(v) for v in self.lmbdas))  # lists from checkpoints
        if not self.lmbdas or any(b <= a for a, b in zip(self.lmbdas, self.lmbdas[1:])) or self.lmbdas[0] <= 0:
            raise ModelError(f"ladder lambdas must be positive and increasing, got {self.lmbdas}")
        if not 0.0 <= self.balance <= 1.0:
            raise ModelError(f"ladder balance must be in [0, 1], got {self.balance}")

    def loss_weights(self, lmbda: torch.Tensor) -> torch.Tensor:
        """Per-item loss weights (geometric-mean lambda / lambda) ** balance, same shape as ``lmbda``."""
        mean = math.exp(sum(math.log(v) for v in self.lmbdas) / len(self.lmbdas))
        return (mean / lmbda) ** self.balance

    @property
    def qualities(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.lmbdas) + 1))


def initial_step(lmbda: float) -> float:
    """Quantization step of an orthonormal transform coder that minimises
    lambda * 255^2 * MSE + bits per pixel at high rate.

    Per coefficient the error is step^2 / 12 and the rate h - log2(step) bits; with 3
    coefficients per pixel, d/d(step) of the loss is zero at step^2 = 18 / (lambda 255^2 ln 2).
    """
    return math.sqrt(18.0 / (lmbda * 255.0**2 * math.log(2.0)))


@dataclass(frozen=True)
class VariableRateOutput(RDOutput):
    """RDOutput plus the lambda each item was trained at, (B,) (None without a ladder)."""

    lmbda: torch.Tensor | None = None


def weights_digest(state_dict: dict[str, torch.Tensor], tables: CodingTables) -> bytes:
    """sha256 over the tensors (name, shape, float32 little-endian bytes) and the tables."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        t = state_dict[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(np.asarray(t.shape, dtype="<i8").tobytes())
        h.update(t.numpy().astype("<f4").tobytes())
    h.update(bytes.fromhex(tables.sha256))
    return h.digest()


class ComposedCodec(Codec):
    """transform + entropy model (+ optional rate ladder and post-filter); see the module docstring.

    ``grid``: the latent grid is padded to a multiple of this and of the entropy model's
    ``downsample`` (``multiple``).
    ``gain_space`` > 0: the latents always use that rate point's gains (an entropy model whose
    rate points are not quantizer steps, such as codebook stages, codes one latent space).
    ``carry_tables`` / ``carry_entries``: weights-file entries, and tensors no part owns, that the
    weights hash covers although no part uses them (a file laid over another codec's keeps
    naming the whole file it was fitted on, as its streams' headers always have).
    """

    def __init__(self, transform: nn.Module, entropy: nn.Module, *, name: str, quality: int,
                 ladder: LadderConfig | None = None, gain_space: int = 0, grid: int = 1,
                 carry_tables: tuple[str, ...] = (), carry_entries: tuple[str, ...] = (),
                 restoration: bool = False) -> None:
        super().__init__()
        self.transform = transform
        self.entropy = entropy
        self.name, self.quality, self.modality = name, quality, transform.modality
        self.ladder = ladder
        self.gain_space = gain_space
        self.multiple = math.lcm(grid, entropy.downsample)
        self.postfilter: PostFilter | None = None
        self.exact_decode = True  # False: decode with the float synthesis (the training path's)
        if restoration and (ladder is None or transform.modality != "image"):
            raise ModelError(f"{name}: a restoration filter needs an image transform and a rate ladder")
        self.restoration = restoration  # the encoder may send a per-image filter (lcodec.models.restoration)
        if ladder is not None:
            if quality not in ladder.qualities:
                raise ModelError(f"{name}: quality {quality} not in {ladder.qualities}")
            steps = torch.tensor([initial_step(v) for v in ladder.lmbdas])
            self.log_gain = nn.Parameter(-torch.log(steps)[:, None].repeat(1, transform.latent_channels))
            if ladder.postfilter:
                self.postfilter = PostFilter(len(ladder.lmbdas), ladder.postfilter)
        self.carry_tables, self.carry_entries = carry_tables, carry_entries
        self.carried_state: dict[str, torch.Tensor] = {}
        self.carried: dict[str, object] = {}
        self.weights_hash = bytes(32)
        flat = [self._flat(k) for k in nn.Module.state_dict(self)]
        if len(set(flat)) != len(flat):
            raise ModelError(f"{name}: the transform and the entropy model share tensor names")

    # ------------------------------------------------------------------ names
    @staticmethod
    def _flat(key: str) -> str:
        for role in _ROLES:
            if key.startswith(role):
                return key[len(role):]
        return key

    def state_dict(self, *args, **kwargs):  # type: ignore[override]
        """The tensors under the weights files' names (each role's own names, no role prefix)."""
        if args or kwargs:  # called by a parent module: the ordinary nested names
            return super().state_dict(*args, **kwargs)
        return OrderedDict((self._flat(k), v) for k, v in super().state_dict().items())

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        nested = {self._flat(k): k for k in nn.Module.state_dict(self)}
        return super().load_state_dict({nested.get(k, k): v for k, v in state_dict.items()}, strict=strict,
                                       assign=assign)

    @property
    def qualities(self) -> tuple[int, ...]:
        return self.ladder.qualities if self.ladder is not None else (self.quality,)

    @property
    def sample_rate(self) -> int:
        return getattr(self.transform, "sample_rate", 0)

    @property
    def side_sections(self) -> int:
        return self.entropy.side_sections

    @property
    def rate(self) -> int:
        """The entropy model's rate point: quality - 1 on a ladder, else 0."""
        return self.quality - 1 if self.ladder is not None else 0

    # ------------------------------------------------------------- the gains
    def _gain_index(self, index: torch.Tensor) -> torch.Tensor:
        return torch.full_like(index, self.gain_space - 1) if self.gain_space else index

    def _gain(self, index: torch.Tensor, dims: int) -> torch.Tensor:
        """(B,) rate indexes -> (B, C, 1, ...) gains."""
        return torch.exp(self.log_gain[self._gain_index(index)]).view(len(index), -1, *[1] * (dims - 2))

    def gain64(self, dims: int = 4) -> torch.Tensor:
        """This quality's gains in float64 on CPU, (1, C, 1, ...): the same numbers on every machine."""
        g = self.gain_space or self.quality
        return torch.exp(self.log_gain.detach().cpu().double()[g - 1]).view(1, -1, *[1] * (dims - 2))

    # ------------------------------------------------------------ training path
    def forward(self, x: torch.Tensor) -> VariableRateOutput:
        """The differentiable path. On a ladder, training gives each item a random rate point (if the
        entropy model allows it); in eval mode every item uses ``quality``."""
        b = x.shape[0]
        if self.ladder is not None and self.training and self.entropy.per_item_rates:
            index = torch.randint(len(self.ladder.lmbdas), (b,)).to(x.device)
        else:
            index = torch.full((b,), self.rate, device=x.device)
        y = self.transform.analyse(x, self.multiple)
        gain = self._gain(index, y.dim()) if self.ladder is not None else None
        if gain is not None:
            y = y * gain
        y_dec, bits = self.entropy(y, index if self.ladder is not None else None)
        if gain is not None:
            y_dec = y_dec / gain
        x_pad = self.transform.synthesise(y_dec)
        if self.postfilter is not None:
            x_pad = self.postfilter(x_pad, index)
        lmbda = torch.tensor(self.ladder.lmbdas, device=x.device)[index] if self.ladder is not None else None
        return VariableRateOutput(x_hat=self.transform.train_output(x_pad, x), bits=bits, lmbda=lmbda)

    def rd_loss(self, out: VariableRateOutput, x: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, dict[str, float]]:
        """mean over items of w_i (lambda_i * D_i + R_i): D the transform's distortion (images:
        255^2 * MSE), R bits per pixel (audio: per sample frame), lambda_i the recipe's ``lmbda``
        times the item's rate point on a ladder, w_i the ladder's ``loss_weights`` (else 1)."""
        distortion, units, shown = self.transform.rd_terms(out.x_hat, x)
        rate = out.total_bits / units
        lam = lmbda if out.lmbda is None else lmbda * out.lmbda
        weight = self.ladder.loss_weights(out.lmbda) if self.ladder is not None else 1.0
        loss = (weight * (lam * distortion + rate)).mean()
        if self.modality == "audio":
            shown = {"kbps": rate.mean().item() * self.sample_rate / 1000, **shown}
        else:
            shown = {"bpp": rate.mean().item(), **shown}
        if "z" in out.bits:
            shown["side_bpp"] = (out.bits["z"].mean() / units).item()
        return loss, shown

    @torch.no_grad()
    def init_from_data(self, crops: list[torch.Tensor]) -> bool:
        """A fresh ladder starts as the plain transform coder (``transform.init_from_data``: a KLT
        of ``crops``); returns whether anything was initialised."""
        if self.ladder is None or not hasattr(self.transform, "init_from_data"):
            return False
        self.transform.init_from_data(crops)
        return True

    # -------------------------------------------------------- compressed domain
    def _media(self, sample_rate: int | None) -> dict[str, int]:
        """The media arguments of the transform: audio has a sample rate (default: the model's)."""
        if self.modality == "audio":
            return {"sample_rate": self.sample_rate if sample_rate is None else sample_rate}
        if sample_rate is not None:
            raise InputError(f"{self.name} codes {self.modality}, which has no sample rate")
        return {}

    def latent_shape(self, shape: tuple[int, ...], sample_rate: int | None = None) -> tuple[int, ...]:
        """The shape of ``encode_latents`` for an input of ``shape`` (batched), without coding it."""
        media = self._media(sample_rate)
        geometry = Geometry(shape=tuple(int(s) for s in shape), sample_rate=media.get("sample_rate", 0))
        return self.transform.latent_shape(geometry, self.multiple)

    def analyse64(self, x: torch.Tensor, **media) -> torch.Tensor:
        """Checked input -> the latents the entropy model codes (gained on a ladder), float64 on CPU."""
        y64 = self.transform.analyse64(x, self.multiple, **media)
        return y64 * self.gain64(y64.dim()) if self.ladder is not None else y64

    @torch.no_grad()
    def encode_latents(self, x: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """x -> the decoder's latents y_hat (int32 symbols for a factorized model, else float32;
        gained on a ladder), as ``decompress_latents`` gives them back from the stream."""
        media = self._media(sample_rate)
        x = self.transform.check_input(x, **media)
        geometry = self.transform.geometry(x, **media)
        _, y_hat = self.entropy.encode(self.analyse64(x, **media), self.rate, self.transform.carried(geometry),
                                       write=False)
        return self._complete(y_hat, geometry)

    def _complete(self, y_hat: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        if y_hat.shape[1] != self.transform.latent_channels:
            y_hat = self.transform.fill(y_hat, geometry)
        return y_hat.float() if y_hat.is_floating_point() else y_hat

    @torch.no_grad()
    def synthesise(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> the synthesis output of the padded size, before the post-filter and the clamp
        (what ``lcodec.train.postfilter`` fits the filter on)."""
        if self.ladder is not None:
            latents = latents.cpu().double() / self.gain64(latents.dim())
        return self.transform.synthesise(latents)

    @torch.no_grad()
    def _decode_padded(self, latents: torch.Tensor, exact: bool | None = None) -> torch.Tensor:
        """Latents -> the padded output after the post-filter: the exact decoder where the
        transform has one and ``exact`` (default: ``exact_decode``) asks for it, else float."""
        exact = self.exact_decoder() if (self.exact_decode if exact is None else exact) else None
        if exact is not None:
            return exact(latents).to(latents.device)
        x_pad = self.synthesise(latents)
        return self.postfilter(x_pad, self.quality - 1) if self.postfilter is not None else x_pad

    def exact_decoder(self):
        """This codec's fixed-point synthesis (``lcodec.models.exact``: the same output on every
        machine and thread count), built on first use for the loaded weights and rate; None where
        the transform has none yet (the decoder then runs in float)."""
        from lcodec.models.exact import ExactWallocDecoder

        exact_synthesis = getattr(self.transform, "exact_synthesis", None)  # WaLLoC's transforms
        if exact_synthesis is None:
            return None
        pre, synthesis = exact_synthesis()
        cached = getattr(self, "_exact", None)
        if cached is None or cached[0] != self.weights_hash:
            inv_gain = None
            if self.ladder is not None:
                g = self.gain_space or self.quality
                inv_gain = np.array([1.0 / math.exp(v) for v in self.log_gain.detach().cpu().double()[g - 1].tolist()])
            cached = (self.weights_hash, ExactWallocDecoder(synthesis, inv_gain, self.postfilter, self.quality - 1, pre))
            self._exact = cached
        return cached[1]

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, size=None, length: int | None = None) -> torch.Tensor:
        """Latents -> x_hat clamped to the media's range; images cropped to ``size`` (H, W), audio
        (stereo at the model rate) to ``length`` samples, if given. What a stream adds beside its
        latents is not applied here (a restoration filter, a grayscale mark): ``decompress`` does.
        Image latents may come without their batch dimension (C, h, w), as ``LatentDataset`` serves
        them: x_hat is then (3, H, W)."""
        if not isinstance(latents, torch.Tensor):
            raise InputError(f"expected a latent tensor, got {type(latents).__name__}")
        single = self.modality == "image" and latents.dim() == 3
        if single:
            latents = latents.unsqueeze(0)
        want = self.transform.latent_channels
        if self.modality == "image" and (latents.dim() != 4 or latents.shape[1] != want):
            raise InputError(f"{self.name} latents are (B, {want}, h, w) or ({want}, h, w), got {tuple(latents.shape)}")
        x_hat = self.transform.crop(self._decode_padded(latents), size if length is None else length)
        return x_hat[0] if single else x_hat

    # ------------------------------------------------------------------ coding
    def compress(self, x: torch.Tensor, sample_rate: int | None = None, *, refine: int = 0,
                 progress: bool = False, restoration: bool | None = None) -> bytes:
        """x (batched or not) -> a complete lcodec container. Images: (B, 3, H, W) in [0, 1]; audio:
        (B, 1|2, N) in [-1, 1] with ``sample_rate=``. ``refine`` > 0: that many steps of encoder-side
        latent refinement before the symbols are chosen (``lcodec.codecs.refine``; the decoder is
        unchanged). ``restoration`` False: a codec that sends per-image restoration filters writes
        the stream without that section (faster to encode; None: the codec's own setting)."""
        if restoration and not self.restoration:
            raise ModelError(f"{self.name} sends no restoration filter")
        restore = self.restoration if restoration is None else restoration
        media = self._media(sample_rate)
        x = self.transform.check_input(x, **media)
        geometry = self.transform.geometry(x, **media)
        carried = self.transform.carried(geometry)
        y64 = self.analyse64(x, **media)
        # with a restoration filter the encoder decodes too: the entropy model also returns y_hat
        latents = {"latents": True} if restore else {}
        if refine:
            from lcodec.codecs.refine import refine_latents

            z = self.entropy.hyper_analysis(y64) if hasattr(self.entropy, "hyper_analysis") else None
            y64 = refine_latents(self, x, y64, z, refine, progress=progress)
            sections, y_hat = self.entropy.encode(y64, self.rate, carried, z=z, **latents)
        else:
            sections, y_hat = self.entropy.encode(y64, self.rate, carried, **latents)
        sections = tuple(sections)
        if restore:
            sections = (*sections, self._restoration_section(x, y_hat, geometry))
        return self._container(geometry, sections)

    @torch.no_grad()
    def _restoration_section(self, x: torch.Tensor, y_hat: torch.Tensor, geometry: Geometry) -> bytes:
        """The per-image restoration filters the encoder chooses (``restoration.choose``) for the
        decoder's latents ``y_hat``, fitted on what the decoder will show: the exact decoder's
        output, so that the stream's bytes are the same on every machine and thread count."""
        from lcodec.models import restoration

        x_hat = self.transform.finish(self._decode_padded(self._complete(y_hat, geometry), exact=True), geometry)
        lmbda = self.ladder.lmbdas[self.quality - 1]
        return restoration.pack(restoration.choose(x_hat, x.cpu(), lmbda, gray=geometry.shape[1] == 1))

    def _container(self, geometry: Geometry, sections: tuple[bytes, ...]) -> bytes:
        return write_container(Container(codec=self.name, quality=self.quality, weights_hash=self.weights_hash,
                                         coder_id=CODER_ID, coder_version=CODER_VERSION, modality=self.modality,
                                         geometry=geometry, sections=sections))

    def _check_header(self, c: Container) -> None:
        """Refuse a stream written by another codec, quality, weights set or coder."""
        if c.codec != self.name or c.quality != self.quality:
            raise BitstreamError(f"stream is for {c.codec} q{c.quality}, not {self.name} q{self.quality}")
        if c.modality != self.modality:
            raise BitstreamError(f"stream holds {c.modality}, {self.name} codes {self.modality}")
        if c.weights_hash != self.weights_hash:
            raise BitstreamError(
                f"stream was written with different {self.name} q{self.quality} weights "
                f"(stream {c.weights_hash.hex()[:12]}, loaded {self.weights_hash.hex()[:12]})")
        if c.coder_id != CODER_ID:
            raise BitstreamError(f"unknown range coder id {c.coder_id}")

    def parse(self, data: bytes) -> Container:
        """Read and validate a container meant for this codec (raises BitstreamError): header,
        geometry within limits, section count; the payload floors are checked as it is decoded,
        before anything of the declared size is allocated."""
        c = read_container(data)
        self._check_header(c)
        self.transform.check_geometry(c.geometry)
        expected = self.entropy.num_sections(self.rate)
        if len(c.sections) != expected and not (self.restoration and len(c.sections) == expected + 1):
            side = f", {self.entropy.side_sections} of side information" if self.entropy.side_sections else ""
            extra = " (+1 restoration filter)" if self.restoration else ""
            raise BitstreamError(f"expected {expected}{extra} sections{side}, found {len(c.sections)}")
        return c

    def _entropy_sections(self, c: Container) -> tuple[tuple[bytes, ...], bytes | None]:
        """A parsed container's sections -> (the entropy model's, the restoration section or None)."""
        n = self.entropy.num_sections(self.rate)
        return c.sections[:n], (c.sections[n] if len(c.sections) > n else None)

    def decompress_latents(self, data: bytes):
        """Container -> (latents as ``encode_latents`` gives them, original shape), without running the
        decoder; audio adds the original sample rate."""
        c = self.parse(data)
        g = c.geometry
        y_hat = self.entropy.decode(self._entropy_sections(c)[0], self.transform.latent_shape(g, self.multiple),
                                    self.rate, self.transform.carried(g), self.transform.describe(g))
        y_hat = self._complete(y_hat, g)
        return (y_hat, g.shape, g.sample_rate) if self.modality == "audio" else (y_hat, g.shape)

    @torch.no_grad()
    def decompress(self, data: bytes) -> torch.Tensor:
        c = self.parse(data)
        section = self._entropy_sections(c)[1]
        filters = None
        if section is not None:  # checked before the decoder runs
            from lcodec.models import restoration

            gray = c.geometry.shape[1] == 1
            filters = restoration.unpack(section, c.geometry.shape[0], 1 if gray else 3)
        y_hat = self.decompress_latents(data)[0]
        x_hat = self.transform.finish(self._decode_padded(y_hat), c.geometry)
        return x_hat if filters is None else restoration.restore_batch(x_hat, filters, gray)

    def truncate(self, data: bytes, quality: int) -> bytes:
        """A stream of an embedded entropy model (``entropy.embedded``: a lower rate point's sections
        are a prefix of a higher one's) at quality Q -> the same item's stream at ``quality`` <= Q,
        without re-encoding; byte for byte what ``compress`` at ``quality`` writes."""
        if not getattr(self.entropy, "embedded", False):
            raise ModelError(f"{self.name}: its streams are not embedded; encode again at the lower quality")
        c = read_container(data)
        if c.codec != self.name or c.modality != self.modality:
            raise BitstreamError(f"stream is for {c.codec} ({c.modality}), not {self.name}")
        if c.weights_hash != self.weights_hash:
            raise BitstreamError(f"stream was written with different {self.name} weights")
        if c.quality not in self.qualities or len(c.sections) != self.entropy.num_sections(c.quality - 1):
            raise BitstreamError(f"stream declares q{c.quality} with {len(c.sections)} sections")
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= c.quality:
            raise InputError(f"a q{c.quality} stream can be cut to quality 1..{c.quality}, not {quality!r}")
        return write_container(replace(c, quality=quality,
                                       sections=c.sections[: self.entropy.num_sections(quality - 1)]))

    @torch.no_grad()
    def estimate_bits_split(self, x: torch.Tensor, sample_rate: int | None = None) -> dict[str, float]:
        """The model's own (float) estimate of each kind of section's payload in bits ({"y": ...},
        plus "z" for side information)."""
        media = self._media(sample_rate)
        x = self.transform.check_input(x, **media)
        geometry = self.transform.geometry(x, **media)
        return self.entropy.estimate_bits(self.analyse64(x, **media), self.rate, self.transform.carried(geometry))

    def estimate_bits(self, x: torch.Tensor, sample_rate: int | None = None) -> float:
        """The model's own (float) estimate of the whole payload, in bits."""
        return sum(self.estimate_bits_split(x, sample_rate).values())

    # ----------------------------------------------------------------- export
    @torch.no_grad()
    def _round_to_storage(self) -> None:
        """Round every float32 parameter and buffer to the storage precision, in place (what ships
        is exactly what was measured and hashed)."""
        dtype = self.transform.storage_dtype
        if dtype == torch.float32:
            return
        for t in nn.Module.state_dict(self).values():
            if t.dtype == torch.float32:
                t.copy_(t.to(dtype).to(torch.float32))

    def _stored(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().cpu()
        return t.to(self.transform.storage_dtype) if t.dtype == torch.float32 else t

    def _carried_tables(self) -> list[CodingTables]:
        out: list[CodingTables] = []
        for key in self.carry_tables:
            value = self.carried.get(key)
            if value is None:
                raise ModelError(f"{self.name}: the {key!r} entry of the weights it is laid over is missing; "
                                 "load its shipped weights first")
            out.extend(CodingTables.from_state(v) for v in (value if isinstance(value, list) else [value]))
        return out

    def _digest(self) -> bytes:
        """sha256 over the tensors and the first table set, then the other table sets' hashes."""
        sets = [*self._carried_tables(), *self.entropy.table_sets()]
        first = weights_digest({**self.carried_state, **self.state_dict()}, sets[0])
        if len(sets) == 1:
            return first
        return hashlib.sha256(first + b"".join(bytes.fromhex(t.sha256) for t in sets[1:])).digest()

    def export(self) -> None:
        """Round to the storage precision, freeze the entropy model into integer tables, hash."""
        self._round_to_storage()
        self.entropy.export()
        self.weights_hash = self._digest()

    def weights_state(self) -> dict[str, object]:
        try:
            entries = self.entropy.state_entries()
        except ModelError as exc:
            raise ModelError(f"{self.name}: {exc}") from None
        state: dict[str, object] = {
            **{k: self.carried[k] for k in (*self.carry_entries, *self.carry_tables) if k in self.carried},
            "name": self.name,
            "quality": 0 if self.ladder is not None else self.quality,
            self.transform.config_key: self.transform.cfg.to_dict(),
            "state_dict": {k: self._stored(v) for k, v in self.state_dict().items()},
            **entries,
        }
        if self.ladder is not None:
            state.update(qualities=list(self.ladder.qualities), ladder_config=self.ladder.to_dict())
        return state

    def carry_from(self, state: dict[str, object]) -> None:
        """Keep the entries and tensors of a weights file that this codec carries without using."""
        if not (self.carry_tables or self.carry_entries):
            return
        own = set(self.state_dict())
        self.carried_state = {k: v for k, v in dict(state["state_dict"]).items() if k not in own}
        self.carried = {k: state[k] for k in (*self.carry_tables, *self.carry_entries) if k in state}

    def load_weights(self, state: dict[str, object]) -> None:
        """Load shipped weights (every config must match this codec's; widths are never inferred)."""
        try:
            self.transform.load_config(state[self.transform.config_key])
            if self.ladder is not None and LadderConfig.from_dict(dict(state.get("ladder_config", {}))) != self.ladder:
                raise ModelError("weights were trained for another rate ladder")
            self.entropy.load_entries(state)
        except ModelError as exc:
            raise ModelError(f"{self.name} q{self.quality}: {exc}") from None
        tensors = dict(state["state_dict"])
        self.carry_from(state)
        own = set(self.state_dict())
        self.load_state_dict({k: v for k, v in tensors.items() if k in own or not self.carry_tables})
        self.weights_hash = self._digest()
