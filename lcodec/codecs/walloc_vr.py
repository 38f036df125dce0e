"""Variable-rate WaLLoC image codecs: one set of weights, a ladder of rates chosen by quality.

The transform and the mean-scale hyperprior are ``walloc-rgb-hp``'s
(``lcodec.codecs.walloc_hp``); what is new is a learned per-channel *gain* for each rate
point (the gain units of Cui et al., "Asymmetric Gained Deep Image Compression With
Continuous Rate Adaptation", CVPR 2021)::

    y = g_a(packet(x))                        (B, C, H/2^J, W/2^J)  unit-free latents
    y_q = y * gain[q]                         coded exactly as walloc-rgb-hp codes y
    x_hat = g_s(y_hat_q / gain[q])

A larger gain means a finer quantization step in the latent space, so one model spans the
whole ladder; training samples a rate point per image and weighs its distortion by that
point's lambda. Why one model and not one per rate: the ladder has six points, and six
separately trained models would cost six CPU training runs and ~40 MB of weights; here the
transform, the hyperprior and the tables are shared and each point adds only C gains.

Two variants (``WallocConfig.encoder_blocks``):

* ``walloc-rgb-light``: the WaLLoC encoder, a linear 1x1 projection of the packet (cheap
  encoding on weak devices).
* ``walloc-rgb-rd``: the same projection plus a residual CNN branch at latent resolution
  (a stronger encoder for the best rate-distortion; decoding costs the same).

Training starts from the plain transform coder: the projection (encoder and the decoder's
linear skip) is the KLT of the packet coefficients of the training crops (``init_from_data``),
and each gain starts at 1 / step for its lambda (high-rate theory, see ``initial_step``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from lcodec.bitstream.tables import CodingTables
from lcodec.codecs.base import RDOutput
from lcodec.codecs.walloc_hp import HyperpriorConfig, WallocHyperpriorCodec
from lcodec.entropy.factorized import FactorizedPrior
from lcodec.errors import ModelError
from lcodec.models.postfilter import PostFilter
from lcodec.models.walloc import ConfigDict, WallocConfig, packet_klt
from lcodec.registry import CodecSpec, register_codec

__all__ = ["LadderConfig", "WallocVariableRateCodec", "VariableRateOutput", "initial_step"]


@dataclass(frozen=True)
class LadderConfig(ConfigDict):
    """The rate points of one variable-rate model: quality q uses ``lmbdas[q - 1]``."""

    lmbdas: tuple[float, ...] = (0.0008, 0.002, 0.005, 0.012, 0.03, 0.075)
    # Training only: each image's loss is multiplied by (geometric-mean lambda / its lambda) ** balance.
    # The loss of the highest rate is ~10x the lowest's, so with 0 the top rates steer the shared
    # weights; 0.5 evens the loss scales out (measured: -3.3% BD-rate at equal steps, see the model card).
    balance: float = 0.0
    # One factorized prior on z per rate point instead of one shared by all (z's spread grows with the
    # rate's gain, so a shared density fits none of them well; measured on images/val: -3% to -19% of
    # z's bits, see lcodec.train.zprior, which fits them on a trained ladder).
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
        """Per-image loss weights (geometric-mean lambda / lambda) ** balance, same shape as ``lmbda``."""
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
    """RDOutput plus the lambda each sample was trained at, (B,)."""

    lmbda: torch.Tensor | None = None


class WallocVariableRateCodec(WallocHyperpriorCodec):
    """WaLLoC + mean-scale hyperprior + per-rate gains (see the module docstring).

    Tensors: x (B, 3, H, W) in [0, 1]; latents (``encode_latents``) are the gained y_hat,
    (B, C, S(H)/8, S(W)/8) float32 with S(n) = n padded to a multiple of 16 (at least 32), so
    their scale depends on the quality.
    """

    def __init__(self, cfg: WallocConfig, hyper: HyperpriorConfig, ladder: LadderConfig,
                 name: str, quality: int) -> None:
        super().__init__(cfg, hyper, name=name, quality=quality)
        if quality not in ladder.qualities:
            raise ModelError(f"{name}: quality {quality} not in {ladder.qualities}")
        self.ladder = ladder
        steps = torch.tensor([initial_step(v) for v in ladder.lmbdas])
        self.log_gain = nn.Parameter(-torch.log(steps)[:, None].repeat(1, cfg.latent_channels))
        self.rate_priors: nn.ModuleList | None = None
        self.rate_tables: list[CodingTables] | None = None  # z tables per rate point (rate_z_priors)
        self._batch_rates: torch.Tensor | None = None  # training: each item's rate index
        if ladder.rate_z_priors:
            self.rate_priors = nn.ModuleList([FactorizedPrior(hyper.hyper_channels) for _ in ladder.lmbdas])
            for prior in self.rate_priors:
                prior.load_state_dict(self.prior.state_dict())
        self.postfilter = PostFilter(len(ladder.lmbdas), ladder.postfilter) if ladder.postfilter else None

    # ------------------------------------------------------- z prior per rate
    def _z_prior(self) -> FactorizedPrior:
        return self.rate_priors[self.quality - 1] if self.rate_priors is not None else self.prior

    def _z_bits(self, z: torch.Tensor) -> torch.Tensor:
        """Training: each item's z bits under its own rate point's prior."""
        if self.rate_priors is None or self._batch_rates is None:
            return super()._z_bits(z)
        bits = z.new_zeros(z.shape[0])
        for r in self._batch_rates.unique().tolist():
            items = (self._batch_rates == r).nonzero().flatten()
            bits = bits.index_add(0, items, self.rate_priors[r](z[items])[1])
        return bits

    def _coding_tables(self) -> CodingTables:
        if self.rate_priors is None:
            return super()._coding_tables()
        return self._all_rate_tables()[self.quality - 1]

    def _digest_parts(self) -> list[bytes]:
        """The hyperprior's, plus every rate point's z tables (the hash names the weights file,
        the same at every quality)."""
        rates = self._all_rate_tables() if self.rate_priors is not None else []
        return super()._digest_parts() + [bytes.fromhex(t.sha256) for t in rates]

    # ------------------------------------------------------------- the gains
    def _gain(self, index: torch.Tensor) -> torch.Tensor:
        """(B,) rate indexes -> (B, C, 1, 1) gains."""
        return torch.exp(self.log_gain[index])[:, :, None, None]

    def _gain64(self) -> torch.Tensor:
        """This quality's gains in float64 on CPU, (1, C, 1, 1): the same numbers on every machine."""
        return torch.exp(self.log_gain.detach().cpu().double()[self.quality - 1])[None, :, None, None]

    def forward(self, x: torch.Tensor) -> VariableRateOutput:
        """Training samples a rate point per image; in eval mode every image uses ``quality``."""
        b = x.shape[0]
        if self.training:
            index = torch.randint(len(self.ladder.lmbdas), (b,)).to(x.device)
        else:
            index = torch.full((b,), self.quality - 1, device=x.device)
        self._batch_rates = index if self.training else None
        try:
            x_hat, bits = self._rd_path(x, gain=self._gain(index))
        finally:
            self._batch_rates = None
        lmbda = torch.tensor(self.ladder.lmbdas, device=x.device)[index]
        return VariableRateOutput(x_hat=x_hat, bits=bits, lmbda=lmbda)

    def rd_loss(self, out: VariableRateOutput, x: torch.Tensor, lmbda: float) -> tuple[torch.Tensor, dict[str, float]]:
        """mean over images of w_i (lambda_i * 255^2 * MSE_i + bpp_i), with lambda_i the image's rate
        point times the recipe's ``lmbda`` (1.0 trains the ladder as stored) and w_i the ladder's
        ``loss_weights`` (all 1 when its balance is 0)."""
        pixels = x.shape[-2] * x.shape[-1]
        mse = ((out.x_hat - x) ** 2).flatten(1).mean(1)
        bpp = out.total_bits / pixels
        weight = self.ladder.loss_weights(out.lmbda)
        loss = (weight * (lmbda * out.lmbda * 255.0**2 * mse + bpp)).mean()
        psnr = (10 * torch.log10(1.0 / mse.detach().clamp_min(1e-10))).mean()
        return loss, {"bpp": bpp.mean().item(), "psnr": psnr.item(),
                      "side_bpp": (out.bits["z"].mean() / pixels).item()}

    # ------------------------------------------------------- coding (gained)
    def _light_encode(self, x64: torch.Tensor) -> torch.Tensor:
        return super()._light_encode(x64) * self._gain64()

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Gained y_hat -> x_hat (B, 3, H, W) clamped to [0, 1], cropped to ``size`` if given."""
        x_hat = self.synthesise(latents)
        if self.postfilter is not None:
            x_hat = self.postfilter(x_hat, self.quality - 1)
        x_hat = x_hat.clamp_(0, 1)
        return x_hat if size is None else x_hat[..., : size[0], : size[1]]

    @torch.no_grad()
    def synthesise(self, latents: torch.Tensor) -> torch.Tensor:
        """Gained y_hat -> the synthesis output (B, 3, H, W) of the padded size, before the
        post-filter and the clamp (what ``lcodec.train.postfilter`` fits the filter on)."""
        dev = next(self.synthesis.parameters()).device
        return self.synthesis((latents.cpu().double() / self._gain64()).to(dev, torch.float32))

    # ------------------------------------------------ encoder-side refinement
    refine_lr = 0.008  # Adam step in symbol units, cosine-decayed to 0 over the steps
    refine_refresh = 5  # the context's table indexes are recomputed every this many steps
    refine_passes = 6  # at most this many greedy symbol passes after the gradient steps
    refine_curvature = 1.5  # the passes' quadratic term, x the measured per-channel curvature
    refine_max_bits = 8.0  # a pass never moves a symbol to a value costing more bits than this

    def refine_latents(self, x: torch.Tensor, y64: torch.Tensor, z: torch.Tensor, steps: int,
                       progress: bool = False) -> torch.Tensor:
        """Encoder-side latent refinement for this one image and rate point: ``steps`` Adam steps on
        y, then up to ``refine_passes`` greedy passes over the integer symbols, both on
        ``lambda * 255^2 * SSE(x, decoded) / 3 + y bits`` through the real decoder (synthesis,
        post-filter, clamp). y64 is float64 and gained, as ``_analyse`` gives it; returns the
        refined y (float64, CPU), ``means + symbols`` after the passes.

        The amortised encoder ``g_a`` is one network for all images; per image a better y exists
        (Campos et al. 2019; Yang et al. 2020 call the difference the amortisation gap). z stays as
        the unrefined y gave it, so the side information, the means and the context's inputs are
        the stream's: the decoder is untouched, and what it reads is still only the stream.

        1. Gradient steps (``_refine_gradient``): the distortion through straight-through rounding
           of ``y - mean``; the rate as ``-log2`` of the Gaussian bin mass at the *unrounded*
           residual (smooth, pulls small residuals to 0) under the tables the current symbols
           select, refreshed every ``refine_refresh`` steps (exact indexes, fixed in between).
        2. Symbol passes (``_refine_symbols``), rate-distortion optimised quantization as video
           coders do it: each symbol may move by one; a move is taken when the exact change of
           its bits plus the second-order estimate of the distortion change is negative.

        Runs in float32 on the decoder's device; the chosen symbols may differ between machines
        or thread counts (the bytes of a refined encode are this machine's), but every stream
        decodes bit-exactly everywhere, as any stream does. Gaussian tables only (not rd-gmm).
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ModelError(f"{self.name}: refinement steps must be an integer >= 0, got {steps!r}")
        if self.hyper.context_mixture:
            raise ModelError(f"{self.name}: encoder refinement supports Gaussian tables only "
                             "(use walloc-rgb-rd or walloc-rgb-light)")
        if steps == 0:
            return y64
        from tqdm import tqdm

        problem = _RefineProblem(self, self._check_input(x), z)
        with torch.enable_grad(), tqdm(total=steps + self.refine_passes, disable=not progress, unit="step",
                                       desc=f"refine q{self.quality}", leave=False) as bar:
            residual = self._refine_gradient(problem, y64, steps, bar)
            symbols = self._refine_symbols(problem, torch.round(residual), bar)
        return problem.means64 + symbols.cpu().double()

    def _refine_gradient(self, problem: "_RefineProblem", y64: torch.Tensor, steps: int, bar) -> torch.Tensor:
        """Adam on y (symbol units) -> the refined residual ``y - mean`` (float32, detached)."""
        y = y64.to(problem.device, torch.float32).clone().requires_grad_(True)
        opt = torch.optim.Adam([y], lr=self.refine_lr)
        scales = None
        for step in range(steps):
            opt.param_groups[0]["lr"] = self.refine_lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            residual = y - problem.mean
            if step % self.refine_refresh == 0:
                scales = problem.scales(residual)
            bits = problem.bits(residual, scales).sum()
            y_hat = residual + (torch.round(residual) - residual).detach() + problem.mean
            loss = (problem.distortion(y_hat) + bits) / problem.pixels
            (y.grad,) = torch.autograd.grad(loss, y)
            opt.step()
            bar.update()
            bar.set_postfix_str(f"loss {loss.item():.4f}", refresh=False)
        return (y - problem.mean).detach()

    def _refine_symbols(self, problem: "_RefineProblem", symbols: torch.Tensor, bar) -> torch.Tensor:
        """Greedy rate-distortion passes over integer symbols (float32 holding integers).

        Per pass: G = d(distortion)/d(y_hat) by one backward pass; for each symbol and d = -1, +1
        the predicted change is ``G d + curvature_c d^2 / 2 + bits(s + d) - bits(s)`` with the
        exact bin masses of the current tables and curvature_c the channel's mean diagonal of
        the distortion's Gauss-Newton matrix (``_RefineProblem.curvature``, times
        ``refine_curvature`` > 1 for the moves' interactions, which the diagonal does not see).
        Every symbol with a negative prediction moves; the real loss of the result (a decode and
        the tables it selects) is checked, and the best quarter or half of the moves is tried if
        all of them do worse. Stops when a pass does not lower the real loss. Moves into values
        that cost more than ``refine_max_bits`` (where the decoder saw no training data: single
        moves there in near-dead channels decode to artefacts) are never proposed.
        """
        curvature = self.refine_curvature * problem.curvature(symbols)
        scales = problem.scales(symbols)
        current = problem.loss(symbols, scales)
        for _ in range(self.refine_passes):
            y_hat = (symbols + problem.mean).requires_grad_(True)
            (grad,) = torch.autograd.grad(problem.distortion(y_hat), y_hat)
            bits = problem.bits(symbols, scales)
            gain, move = torch.zeros_like(symbols), torch.zeros_like(symbols)
            for d in (-1.0, 1.0):
                new_bits = problem.bits(symbols + d, scales)
                change = grad * d + 0.5 * curvature + new_bits - bits
                better = (change < gain) & (new_bits <= self.refine_max_bits)
                gain = torch.where(better, change, gain)
                move = torch.where(better, d, move)
            candidates = gain < 0
            bar.update()
            if not candidates.any():
                break
            ranked = gain[candidates].sort().values
            best = None
            for share in (1.0, 0.5, 0.25):
                cut = ranked[max(1, int(share * ranked.numel())) - 1]
                trial = torch.where(candidates & (gain <= cut), symbols + move, symbols)
                trial_scales = problem.scales(trial)
                value = problem.loss(trial, trial_scales)
                if best is None or value < best[0]:
                    best = (value, trial, trial_scales)
                if value < current:
                    break
            if best[0] >= current:
                break
            current, symbols, scales = best
        return symbols.detach()

    def _refine_indexes(self, residual: torch.Tensor, hidden: torch.Tensor | None,
                        fixed: torch.Tensor | None) -> torch.Tensor:
        """Table indexes (int64, CPU) the current symbols select: the context's exact heads on
        round(residual), or the hyperprior's fixed indexes without a context."""
        if fixed is not None:
            return fixed
        symbols = torch.round(residual.detach()).cpu().to(torch.int64)
        return torch.cat(self.context.slice_indexes(hidden, list(symbols.split(self.context.width, 1))), 1)

    # ------------------------------------------------------------ the weights
    @torch.no_grad()
    def init_from_data(self, crops: list[torch.Tensor]) -> None:
        """Start as the plain transform coder: the encoder projection and the decoder's linear
        skip become the KLT (strongest ``latent_channels`` components) of the packet
        coefficients of ``crops`` (each (3, h, w), sides divisible by 2^J)."""
        basis = packet_klt(self.analysis.wpt, crops, self.analysis.offset)[: self.cfg.latent_channels]  # (C, K)
        self.analysis.g_a.weight.copy_(basis[:, :, None, None].float())
        self.analysis.g_a.bias.zero_()
        self.synthesis.skip.weight.copy_(basis.T[:, :, None, None].float())
        self.synthesis.skip.bias.zero_()

    def export(self) -> None:
        self._round_to_storage()  # (again in the base's export: rounding is idempotent)
        if self.rate_priors is not None:  # before the base computes the digest over them
            self.rate_tables = [prior.export_tables() for prior in self.rate_priors]
        super().export()

    def weights_state(self) -> dict[str, object]:
        state = {**super().weights_state(), "quality": 0, "qualities": list(self.ladder.qualities),
                 "ladder_config": self.ladder.to_dict()}
        if self.rate_priors is not None:
            state["rate_tables"] = [t.to_state() for t in self._all_rate_tables()]
        return state

    def _all_rate_tables(self) -> list[CodingTables]:
        if self.rate_tables is None:
            raise ModelError(f"{self.name}: no per-rate z tables; load shipped weights or call export()")
        return self.rate_tables

    def load_weights(self, state: dict[str, object]) -> None:
        if LadderConfig.from_dict(dict(state.get("ladder_config", {}))) != self.ladder:
            raise ModelError(f"{self.name}: weights were trained for another rate ladder")
        if self.rate_priors is not None:  # set before the base computes the digest over them
            stored = state.get("rate_tables")
            if not isinstance(stored, list) or len(stored) != len(self.ladder.lmbdas):
                raise ModelError(f"{self.name}: weights lack one z table set per rate point")
            tables = [CodingTables.from_state(t) for t in stored]
            if any(t.num_tables != self.hyper.hyper_channels for t in tables):
                raise ModelError(f"{self.name}: stored per-rate z tables do not fit the configuration")
            self.rate_tables = tables
        super().load_weights(state)


class _RefineProblem:
    """One image's refinement objective for a variable-rate codec at its quality, in float32 on the
    decoder's device: the distortion ``lambda * 255^2 * SSE / 3`` of the real decoder's output for a
    gained y_hat, and the Gaussian bits of residuals under the tables their symbols select."""

    def __init__(self, codec: "WallocVariableRateCodec", x: torch.Tensor, z: torch.Tensor) -> None:
        self.codec = codec
        self.device = next(codec.synthesis.parameters()).device
        self.h, self.w = x.shape[-2:]
        self.pixels = self.h * self.w
        self.means64 = codec._means(z)
        self.mean = self.means64.to(self.device, torch.float32)
        self.hidden = codec._hidden(z) if codec.context is not None else None
        self.fixed = codec.table_indexes(z) if codec.context is None else None
        self.table = codec.gaussian.scale_table.detach().cpu().float()
        self.inv_gain = (1.0 / codec._gain64()).to(self.device, torch.float32)
        self.target = x.detach().to(self.device, torch.float32)
        self.weight = codec.ladder.lmbdas[codec.quality - 1] * 255.0**2 / 3  # SSE over 3 channels

    def decode(self, y_hat: torch.Tensor) -> torch.Tensor:
        x_hat = self.codec.synthesis(y_hat * self.inv_gain)
        if self.codec.postfilter is not None:
            x_hat = self.codec.postfilter(x_hat, self.codec.quality - 1)
        return x_hat

    def distortion(self, y_hat: torch.Tensor) -> torch.Tensor:
        x_hat = self.decode(y_hat)[..., : self.h, : self.w].clamp(0, 1)
        return self.weight * ((x_hat - self.target) ** 2).sum()

    def scales(self, residual: torch.Tensor) -> torch.Tensor:
        """The scales of the tables that round(residual) selects (exact indexes)."""
        return self.table[self.codec._refine_indexes(residual, self.hidden, self.fixed)].to(self.device)

    def bits(self, residual: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        return -torch.log2(self.codec.gaussian.likelihood(residual, scales))

    @torch.no_grad()
    def loss(self, symbols: torch.Tensor, scales: torch.Tensor) -> float:
        return float(self.distortion(symbols + self.mean) + self.bits(symbols, scales).sum())

    def curvature(self, symbols: torch.Tensor) -> torch.Tensor:
        """Per channel (1, C, 1, 1): 2 x the mean diagonal of weight * J^T J at these symbols, J the
        decoder's Jacobian (before the clamp), by Hutchinson's estimator: for a fixed random sign
        vector v, ``v * J^T J v`` averaged over a channel's positions (cross terms cancel in the
        mean). J v by a finite difference, J^T (J v) by one backward pass."""
        v = torch.randint(0, 2, symbols.shape, generator=torch.Generator().manual_seed(0)).to(symbols) * 2 - 1
        y_hat = (symbols + self.mean).requires_grad_(True)
        x_hat = self.decode(y_hat)[..., : self.h, : self.w]
        with torch.no_grad():
            jv = (self.decode(y_hat + 1e-2 * v)[..., : self.h, : self.w] - x_hat) / 1e-2
        (jtjv,) = torch.autograd.grad(x_hat, y_hat, jv)
        return 2 * self.weight * (v * jtjv).mean(dim=(0, 2, 3), keepdim=True).clamp_min(0).detach()


_PACKET = dict(levels=3, wavelet="sym4", latent_channels=192)
WALLOC_RGB_LIGHT = WallocConfig(**_PACKET)
WALLOC_RGB_RD = WallocConfig(**_PACKET, encoder_blocks=2, encoder_channels=128)
VR_HYPER = HyperpriorConfig(hyper_channels=48, analysis_hidden=128, index_hidden=96, num_scales=72,
                            min_scale=0.11, max_scale=256.0)
# rd codes y in 4 channel slices whose tables also read the earlier slices' symbols
# (lcodec.entropy.channel_context; fitted on CPU onto the GPU-trained ladder: lcodec.train.context)
VR_HYPER_RD = dataclasses.replace(VR_HYPER, context_slices=4, context_hidden=0)
# rd-gmm: rd's transform and side path, its tables two-component Gaussian scale mixtures
# (lcodec.entropy.scale_mixture; fitted on CPU onto rd's frozen transform: lcodec.train.context --base)
VR_HYPER_RD_GMM = dataclasses.replace(VR_HYPER_RD, context_mixture=True)
VR_LADDER = LadderConfig(balance=0.5)
VR_LADDER_Z = dataclasses.replace(VR_LADDER, rate_z_priors=True)  # z priors fitted per rate: lcodec.train.zprior
# rd, rd-gmm (which shares its decoder) and light also post-filter the decoded image: lcodec.train.postfilter
VR_LADDER_Z_PF = dataclasses.replace(VR_LADDER_Z, postfilter=32)
_ENTROPY = ("mean-scale Gaussian hyperprior (Balle et al. 2018; Minnen et al. 2018) with per-rate gain "
            "units (Cui et al. 2021); table indexes from an exact integer network; 16-bit integer tables")
_PAPERS = ("Jacobellis & Yadwadkar, Learned Compression for Compressed Learning, 2024; "
           "Cui et al., Asymmetric Gained Deep Image Compression With Continuous Rate Adaptation, 2021")


def _spec(name: str, transform: str, description: str, shipped: bool, entropy: str = _ENTROPY) -> CodecSpec:
    weights = {q: f"{name}.pt" for q in VR_LADDER.qualities} if shipped else {}
    return CodecSpec(name=name, modality="image", qualities=VR_LADDER.qualities, default_quality=4,
                     transform=transform, entropy_model=entropy, paper=_PAPERS, description=description,
                     weights=weights)


@register_codec(_spec("walloc-rgb-light",
                      "sym4 wavelet packet J=3 + linear 1x1 encoder (192->192) + residual CNN decoder at 1/8",
                      "variable-rate WaLLoC, light (linear) encoder: six rates from one weights file, the same "
                      "decoder design as walloc-rgb-rd (fine-tuned from it)", shipped=True))
def walloc_rgb_light(quality: int) -> WallocVariableRateCodec:
    return WallocVariableRateCodec(WALLOC_RGB_LIGHT, VR_HYPER, VR_LADDER_Z_PF, name="walloc-rgb-light", quality=quality)


@register_codec(_spec("walloc-rgb-rd",
                      "sym4 wavelet packet J=3 + linear encoder with a residual CNN branch + residual CNN "
                      "decoder at 1/8",
                      "variable-rate WaLLoC, stronger encoder for the best rate-distortion: six rates, one file",
                      shipped=True,
                      entropy=_ENTROPY + "; y coded in 4 channel slices whose tables also read the earlier slices' "
                      "symbols (channel context, Minnen & Singh 2020)"))
def walloc_rgb_rd(quality: int) -> WallocVariableRateCodec:
    return WallocVariableRateCodec(WALLOC_RGB_RD, VR_HYPER_RD, VR_LADDER_Z_PF, name="walloc-rgb-rd", quality=quality)


@register_codec(_spec("walloc-rgb-rd-gmm",
                      "walloc-rgb-rd's (the same tensors: its weights file holds only the entropy model's "
                      "heads and tables, over walloc-rgb-rd.pt)",
                      "walloc-rgb-rd with Gaussian-mixture tables: six rates; same reconstruction as rd, "
                      "different rate",
                      shipped=True,
                      entropy=_ENTROPY + "; y in 4 channel slices, each latent's table a two-component Gaussian "
                      "scale mixture (weights, scales from exact integer heads; Cheng et al. 2020) from a "
                      "stored set of integer-mixed tables"))
def walloc_rgb_rd_gmm(quality: int) -> WallocVariableRateCodec:
    return WallocVariableRateCodec(WALLOC_RGB_RD, VR_HYPER_RD_GMM, VR_LADDER_Z_PF, name="walloc-rgb-rd-gmm",
                                   quality=quality)
