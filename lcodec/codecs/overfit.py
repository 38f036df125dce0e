"""overfit-rgb: an image codec fitted to each image at encode time (Cool-chic / C3 style), from
two parts: the overfitted transform (``lcodec.models.overfit``: latent grids at 7 resolutions,
bilinear upsampling, an 800 MAC/pixel integer synthesis) and the ARM entropy model
(``lcodec.entropy.arm``: an exact integer network over causal neighbours choosing Laplace tables).

Nothing is pretrained: ``compress`` fits the grids and both networks to the image with a
rate-distortion loss (MSE + lambda * bpp; uniform noise on the latents for the first 80% of the
steps, then straight-through rounding), then codes the networks' integer weights and the latents.
The only stored data are the integer Laplace tables (``overfit-rgb.pt``, 64 scales).

Stream: one lcodec container, geometry (1, 3, H, W), two sections:
``[network weights: one table byte per tensor + range-coded integers, synthesis then ARM]``,
``[latents: range-coded, coarsest level first, four phases per level]``.
Decoding is integer arithmetic from end to end (ARM, upsampling, synthesis), so the same stream
gives the same pixels on every machine and thread count.

Encoder budget: ``steps`` (quality presets below) or ``seconds``; ``progress=True`` shows a bar
with the running PSNR and bpp. Decoding cost: ``decoder_macs_per_pixel``.
"""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import torch

from lcodec.bitstream.coder import CODER_ID, CODER_VERSION
from lcodec.bitstream.container import Container, Geometry, read_container, write_container
from lcodec.bitstream.tables import CodingTables
from lcodec.codecs.base import Codec
from lcodec.codecs.fitting import StepBudget, cosine_scale
from lcodec.entropy.arm import ArmConfig, ArmEntropyModel, arm_scales, decode_integer_params, encode_integer_params
from lcodec.entropy.integer_net import IntegerConv
from lcodec.entropy.model import ste_round
from lcodec.errors import BitstreamError, InputError, ModelError
from lcodec.models.overfit import LATENT_BOUND, MAX_SIDE, OverfitConfig, OverfitSynthesis
from lcodec.registry import CodecSpec, register_codec

__all__ = ["OverfitCodec", "PRESETS", "OVERFIT_LMBDAS", "overfit_tables_state"]

# quality q fits with lambda OVERFIT_LMBDAS[q - 1] (loss = MSE on [0, 1] + lambda * bpp)
OVERFIT_LMBDAS = (0.04, 0.02, 0.01, 0.005, 0.0025, 0.0012)
PRESETS = {"fast": 300, "medium": 1000, "slow": 3000}
DEFAULT_PRESET = "medium"
NOISE_FRACTION = 0.8
LR = 1e-2
LATENT_LR_SCALE = 3.0
ARM_LR_SCALE = 1.0
RATE_RAMP = 0.3  # the rate weight grows linearly from 0 to lambda over this fraction of the steps
# the finest grids the fit leaves at zero (still coded: nearly free under the ARM). Fitted, the
# full-resolution grid took most of the rate (1 latent per pixel, 0.83 bpp at q3 on a 256x256 crop)
# for little PSNR: left at zero, 500 steps need 3.2-3.8x WebP's rate instead of 5.0-8.0x
# (benchmarks/overfit_probe.py --frozen-levels; docs/models/overfit-rgb.md)
FROZEN_LEVELS = 1


def overfit_tables_state() -> dict[str, object]:
    """The stored data of overfit-rgb: the integer Laplace tables, built once (float64) and shipped."""
    arm = ArmEntropyModel()
    return {"name": "overfit-rgb", "quality": 0, "qualities": list(range(1, len(OVERFIT_LMBDAS) + 1)),
            "scales": torch.from_numpy(arm_scales()), "tables": arm.conditional.tables(16).to_state()}


class OverfitCodec(Codec):
    """An overfitted transform + an ARM entropy model; encoding fits both to the image."""

    modality = "image"

    def __init__(self, transform: OverfitSynthesis, entropy: ArmEntropyModel, *, name: str, quality: int,
                 lmbda: float) -> None:
        super().__init__()
        if transform.cfg.levels != entropy.levels:
            raise ModelError(f"{name}: the transform has {transform.cfg.levels} latent levels, the ARM "
                             f"{entropy.levels}")
        self.transform, self.entropy = transform, entropy
        self.name, self.quality, self.lmbda = name, int(quality), float(lmbda)
        self.weights_hash = bytes(32)

    @property
    def qualities(self) -> tuple[int, ...]:
        return tuple(range(1, len(OVERFIT_LMBDAS) + 1))

    @property
    def decoder_macs_per_pixel(self) -> float:
        """Synthesis per pixel + ARM per latent * latents per pixel (sum over levels of 4**-l)."""
        per_latent = sum(4.0**-l for l in range(self.transform.cfg.levels))
        return self.transform.synthesis_macs + self.entropy.macs_per_latent * per_latent

    # ------------------------------------------------------------------ stored tables
    def load_weights(self, state: dict[str, object]) -> None:
        scales = state.get("scales")
        # the integer tables are what codes; the float scales only name them (a machine's libm may
        # differ from the one that built them in the last bit, so they are compared to 1e-12)
        if not isinstance(scales, torch.Tensor) or not np.allclose(scales.numpy(), arm_scales(), rtol=1e-12, atol=0):
            raise ModelError(f"{self.name}: stored tables were built for another scale table")
        tables = CodingTables.from_state(state["tables"])
        if tables.num_tables != scales.numel():
            raise ModelError(f"{self.name}: stored tables do not fit the scale table")
        self.entropy.tables = tables
        config = json.dumps([self.transform.cfg.to_dict(), self.entropy.cfg.to_dict()], sort_keys=True)
        self.weights_hash = hashlib.sha256(bytes.fromhex(tables.sha256) + config.encode()).digest()

    # ------------------------------------------------------------------ integer parameters
    def _layers(self) -> list[IntegerConv]:
        return [*self.transform.synthesis.layers, *self.entropy.net.layers]

    def _param_shapes(self) -> list[tuple[int, ...]]:
        return [s for l in self._layers() for s in (tuple(l.weight.shape), tuple(l.bias.shape))]

    def _integer_params(self) -> list[torch.Tensor]:
        return [t for l in self._layers() for t in (l.integer_weight(), l.integer_bias())]

    @torch.no_grad()
    def _set_integer_params(self, tensors: list[torch.Tensor]) -> None:
        for i, layer in enumerate(self._layers()):
            w, b = tensors[2 * i], tensors[2 * i + 1]
            if w.abs().max() > layer.weight_max or b.abs().max() > layer.bias_max:
                raise BitstreamError("a network weight in the stream is out of its layer's range")
            layer.weight.copy_(w.to(torch.float64) / 2.0**layer.weight_frac)  # exact: |w| < 2**24
            layer.bias.copy_(b.to(torch.float64) / layer.bias_scale())

    # ------------------------------------------------------------------ fitting
    def _fresh(self, seed: int) -> None:
        tables = self.entropy.tables
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.transform = OverfitSynthesis(self.transform.cfg)
            self.entropy = ArmEntropyModel(self.entropy.cfg, self.entropy.levels)
        self.entropy.tables = tables

    def fit(self, x: torch.Tensor, steps: int, seconds: float | None = None, progress: bool = False,
            seed: int = 0, log=None) -> dict[str, float]:
        """Fit the grids and both networks to one image x (1, 3, H, W) in [0, 1]. Stops after
        ``steps`` or, when ``seconds`` is given, after the number of steps that fits in it (measured
        on the first steps; the noise / rounding schedule follows the steps actually run).
        Returns {"steps", "seconds", "psnr", "bpp"} (the last training step's estimates); ``log``,
        if given, is called with that dict (and "loss") every 50 steps."""
        h, w = x.shape[-2:]
        self._fresh(seed)
        self.transform.init_grids(h, w)
        for grid in list(self.transform.latents)[:FROZEN_LEVELS]:
            grid.requires_grad_(False)  # stays 0 (module comment at FROZEN_LEVELS)
        self.train()
        opt = torch.optim.Adam([{"params": [g for g in self.transform.latents if g.requires_grad], "scale": LATENT_LR_SCALE},
                                {"params": list(self.transform.synthesis.parameters()), "scale": 1.0},
                                {"params": list(self.entropy.parameters()), "scale": ARM_LR_SCALE}], lr=LR)
        gen = torch.Generator().manual_seed(seed)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=steps, desc=f"{self.name} q{self.quality} fit", unit="step", leave=False)
        budget = StepBudget(steps, seconds, bar)
        try:
            while budget.running:
                i, total = budget.i, budget.total
                noisy = i < NOISE_FRACTION * total
                for group in opt.param_groups:
                    group["lr"] = LR * group["scale"] * cosine_scale(i, total)
                grids = []
                for g in self.transform.latents:
                    if noisy:
                        g = g + torch.rand(g.shape, generator=gen) - 0.5
                    else:
                        g = ste_round(g)
                    grids.append(g.clamp(-LATENT_BOUND, LATENT_BOUND))
                x_hat = self.transform(grids, (h, w))
                mse = torch.mean((x_hat - x) ** 2)
                bpp = self.entropy(grids, exact_activations=not noisy) / (h * w)
                ramp = min(1.0, i / (RATE_RAMP * total)) if RATE_RAMP > 0 else 1.0
                loss = mse + ramp * self.lmbda * bpp
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                budget.tick()
                if log is not None and budget.i % 50 == 0:
                    log({"steps": budget.i, "psnr": -10 * math.log10(max(mse.item(), 1e-12)), "bpp": bpp.item(),
                         "loss": loss.item()})
                if budget.report():
                    bar.set_postfix(psnr=f"{-10 * math.log10(max(mse.item(), 1e-12)):.2f}", bpp=f"{bpp.item():.4f}")
        finally:
            if bar is not None:
                bar.close()
        self.eval()
        stats = {"psnr": -10 * math.log10(max(mse.item(), 1e-12)), "bpp": bpp.item()}
        return {"steps": float(budget.i), "seconds": budget.elapsed, **stats}

    # ------------------------------------------------------------------ coding
    def _check_image(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputError(f"expected a torch.Tensor image, got {type(x).__name__}")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"expected an image tensor (1, 3, H, W), got {tuple(x.shape)}")
        if x.shape[0] != 1:
            raise InputError(f"{self.name} fits one image per stream; got a batch of {x.shape[0]}")
        if not torch.is_floating_point(x) or not torch.isfinite(x).all():
            raise InputError("expected a finite float image in [0, 1]")
        if min(x.shape[-2:]) < 1 or max(x.shape[-2:]) > MAX_SIDE:
            raise InputError(f"image of {x.shape[-2]}x{x.shape[-1]}; {self.name} codes 1 .. {MAX_SIDE} per side")
        return x.float().clamp(0, 1)

    def compress(self, x: torch.Tensor, *, steps: int | None = None, seconds: float | None = None,
                 progress: bool = False, preset: str | None = None) -> bytes:
        """Fit to x (1, 3, H, W) in [0, 1] and write the stream. Budget: ``steps``, or a ``preset``
        (``PRESETS``; default medium), optionally capped by ``seconds``."""
        x = self._check_image(x)
        if preset is not None and preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        n = int(steps) if steps is not None else PRESETS[preset or DEFAULT_PRESET]
        if n < 1 or (seconds is not None and not seconds > 0):
            raise InputError("the fit needs steps >= 1 and seconds > 0")
        if self.entropy.tables is None:
            raise ModelError(f"{self.name}: load the stored tables first (lcodec.load)")
        self.fit(x, n, seconds, progress)
        grids = [torch.round(g.detach()).clamp(-LATENT_BOUND, LATENT_BOUND).to(torch.int64)
                 for g in self.transform.latents]
        sections = (encode_integer_params(self._integer_params(), self.entropy.tables),
                    self.entropy.encode(grids))
        h, w = x.shape[-2:]
        return write_container(Container(codec=self.name, quality=self.quality, weights_hash=self.weights_hash,
                                         coder_id=CODER_ID, coder_version=CODER_VERSION, modality="image",
                                         geometry=Geometry(shape=(1, 3, h, w)), sections=sections))

    def parse(self, data: bytes) -> Container:
        c = read_container(data)
        if c.codec != self.name or c.quality != self.quality:
            raise BitstreamError(f"stream is for {c.codec} q{c.quality}, not {self.name} q{self.quality}")
        if c.modality != "image" or c.coder_id != CODER_ID:
            raise BitstreamError(f"stream holds {c.modality} (coder {c.coder_id}), not an {self.name} image")
        if c.weights_hash != self.weights_hash:
            raise BitstreamError(f"stream was written with different {self.name} tables")
        shape = c.geometry.shape
        if len(shape) != 4 or shape[:2] != (1, 3) or not all(1 <= s <= MAX_SIDE for s in shape[2:]):
            raise BitstreamError(f"stream declares an image of shape {shape}; {self.name} codes (1, 3, H, W) "
                                 f"with 1 .. {MAX_SIDE} pixels per side")
        if len(c.sections) != 2:
            raise BitstreamError(f"expected 2 sections (network weights, latents), found {len(c.sections)}")
        return c

    @torch.no_grad()
    def decompress_pixels(self, data: bytes) -> torch.Tensor:
        """Stream -> the decoded 8-bit image (1, 3, H, W) as uint8, identical everywhere."""
        c = self.parse(data)
        h, w = c.geometry.shape[2:]
        self._fresh(0)
        self._set_integer_params(decode_integer_params(c.sections[0], self._param_shapes(), self.entropy.tables))
        grids = self.entropy.decode(c.sections[1], (h, w))
        return self.transform.decode_exact(grids, (h, w)).to(torch.uint8)

    def decompress(self, data: bytes) -> torch.Tensor:
        return self.decompress_pixels(data).float() / 255.0

    def forward(self, x: torch.Tensor):  # pragma: no cover - no shared training path
        raise ModelError(f"{self.name} is fitted per image by compress(); it has no training forward")


def _spec(name: str, quality: int) -> OverfitCodec:
    cfg = OverfitConfig()
    return OverfitCodec(OverfitSynthesis(cfg), ArmEntropyModel(ArmConfig(), cfg.levels), name=name,
                        quality=quality, lmbda=OVERFIT_LMBDAS[quality - 1])


@register_codec(CodecSpec(
    name="overfit-rgb", modality="image", qualities=tuple(range(1, len(OVERFIT_LMBDAS) + 1)), default_quality=4,
    transform="overfitted per image (Cool-chic/C3 style, no pretraining): 7 latent grids (1 to 1/64 "
              "resolution), bilinear upsampling, 800 MAC/pixel integer synthesis fitted at encode time",
    entropy_model="autoregressive (ARM): exact integer network over causal neighbours (same level, "
                  "4 phases; coarser level) choosing Laplace tables and integer means; weights in the stream",
    paper="Ladune et al., COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec (ICCV 2023); "
          "Kim et al., C3: High-performance and low-complexity neural compression from a single image or "
          "video (CVPR 2024)",
    description="fitted to each image at encode time (minutes); exact integer decode",
    weights={q: "overfit-rgb.pt" for q in range(1, len(OVERFIT_LMBDAS) + 1)}))
def overfit_rgb(quality: int) -> OverfitCodec:
    return _spec("overfit-rgb", quality)

