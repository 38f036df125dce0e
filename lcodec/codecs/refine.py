"""Encoder-side latent refinement for a variable-rate assembly with a Gaussian hyperprior
(``ComposedCodec.compress(refine=N)``): any transform, the decoder untouched.

The amortised encoder is one network for all inputs; per input a better y exists (Campos et
al. 2019; Yang et al. 2020 call the difference the amortisation gap). For one input and rate
point this optimises ``lambda * 255^2 * SSE(x, decoded) / 3 + y bits`` through the real decoder
(synthesis, post-filter, clamp), z held as the unrefined y gave it (so the side information,
the means and the context's inputs are the stream's; the decoder reads only the stream):

1. Gradient steps (``_gradient``): the distortion through straight-through rounding of
   ``y - mean``; the rate as ``-log2`` of the Gaussian bin mass at the *unrounded* residual
   (smooth, pulls small residuals to 0) under the tables the current symbols select, refreshed
   every ``REFRESH`` steps (exact indexes, fixed in between).
2. Symbol passes (``_symbol_passes``), rate-distortion optimised quantization as video coders
   do it: each symbol may move by one; a move is taken when the exact change of its bits plus
   the second-order estimate of the distortion change is negative.

Runs in float32 on the decoder's device; the chosen symbols may differ between machines or
thread counts (the bytes of a refined encode are this machine's), but every stream decodes
bit-exactly everywhere, as any stream does. Gaussian tables only (not mixtures).
"""
from __future__ import annotations

import math

import torch

from lcodec.errors import ModelError

__all__ = ["refine_latents", "unsupported", "RefineProblem", "LR", "REFRESH", "PASSES", "CURVATURE", "MAX_BITS"]

LR = 0.008  # Adam step in symbol units, cosine-decayed to 0 over the steps
REFRESH = 5  # the context's table indexes are recomputed every this many steps
PASSES = 6  # at most this many greedy symbol passes after the gradient steps
CURVATURE = 1.5  # the passes' quadratic term, x the measured per-channel curvature
MAX_BITS = 8.0  # a pass never moves a symbol to a value costing more bits than this


def unsupported(codec) -> str | None:
    """Why ``codec`` cannot refine its latents, or None if it can."""
    entropy = codec.entropy
    if codec.ladder is None or not hasattr(entropy, "gaussian"):
        return ("encoder refinement needs a variable-rate codec with a Gaussian hyperprior "
                "(walloc-rgb-light, walloc-rgb-rd)")
    if entropy.hyper.context_mixture:
        return "encoder refinement supports Gaussian tables only (use walloc-rgb-rd or walloc-rgb-light)"
    return None


def refine_latents(codec, x: torch.Tensor, y64: torch.Tensor, z: torch.Tensor | None, steps: int,
                   progress: bool = False) -> torch.Tensor:
    """``steps`` Adam steps on y, then up to ``PASSES`` greedy passes over the integer symbols (module
    docstring). y64 is float64 and gained, as ``codec.analyse64`` gives it; returns the refined y
    (float64, CPU), ``means + symbols`` after the passes."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ModelError(f"{codec.name}: refinement steps must be an integer >= 0, got {steps!r}")
    why = unsupported(codec)
    if why:
        raise ModelError(f"{codec.name}: {why}")
    if steps == 0:
        return y64
    from tqdm import tqdm

    problem = RefineProblem(codec, codec.transform.check_input(x), z)
    with torch.enable_grad(), tqdm(total=steps + PASSES, disable=not progress, unit="step",
                                   desc=f"refine q{codec.quality}", leave=False) as bar:
        residual = _gradient(problem, y64, steps, bar)
        symbols = _symbol_passes(problem, torch.round(residual), bar)
    return problem.means64 + symbols.cpu().double()


def _gradient(problem: "RefineProblem", y64: torch.Tensor, steps: int, bar) -> torch.Tensor:
    """Adam on y (symbol units) -> the refined residual ``y - mean`` (float32, detached)."""
    y = y64.to(problem.device, torch.float32).clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=LR)
    scales = None
    for step in range(steps):
        opt.param_groups[0]["lr"] = LR * 0.5 * (1 + math.cos(math.pi * step / steps))
        residual = y - problem.mean
        if step % REFRESH == 0:
            scales = problem.scales(residual)
        bits = problem.bits(residual, scales).sum()
        y_hat = residual + (torch.round(residual) - residual).detach() + problem.mean
        loss = (problem.distortion(y_hat) + bits) / problem.pixels
        (y.grad,) = torch.autograd.grad(loss, y)
        opt.step()
        bar.update()
        bar.set_postfix_str(f"loss {loss.item():.4f}", refresh=False)
    return (y - problem.mean).detach()


def _symbol_passes(problem: "RefineProblem", symbols: torch.Tensor, bar) -> torch.Tensor:
    """Greedy rate-distortion passes over integer symbols (float32 holding integers).

    Per pass: G = d(distortion)/d(y_hat) by one backward pass; for each symbol and d = -1, +1 the
    predicted change is ``G d + curvature_c d^2 / 2 + bits(s + d) - bits(s)`` with the exact bin
    masses of the current tables and curvature_c the channel's mean diagonal of the distortion's
    Gauss-Newton matrix (``RefineProblem.curvature``, times ``CURVATURE`` > 1 for the moves'
    interactions, which the diagonal does not see). Every symbol with a negative prediction moves;
    the real loss of the result (a decode and the tables it selects) is checked, and the best
    quarter or half of the moves is tried if all of them do worse. Stops when a pass does not
    lower the real loss. Moves into values that cost more than ``MAX_BITS`` (where the decoder
    saw no training data: single moves there in near-dead channels decode to artefacts) are never
    proposed.
    """
    curvature = CURVATURE * problem.curvature(symbols)
    scales = problem.scales(symbols)
    current = problem.loss(symbols, scales)
    for _ in range(PASSES):
        y_hat = (symbols + problem.mean).requires_grad_(True)
        (grad,) = torch.autograd.grad(problem.distortion(y_hat), y_hat)
        bits = problem.bits(symbols, scales)
        gain, move = torch.zeros_like(symbols), torch.zeros_like(symbols)
        for d in (-1.0, 1.0):
            new_bits = problem.bits(symbols + d, scales)
            change = grad * d + 0.5 * curvature + new_bits - bits
            better = (change < gain) & (new_bits <= MAX_BITS)
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


class RefineProblem:
    """One input's refinement objective for a variable-rate assembly at its quality, in float32 on the
    decoder's device: the distortion ``lambda * 255^2 * SSE / 3`` of the real decoder's output for a
    gained y_hat, and the Gaussian bits of residuals under the tables their symbols select."""

    def __init__(self, codec, x: torch.Tensor, z: torch.Tensor) -> None:
        self.codec, self.entropy = codec, codec.entropy
        self.device = next(codec.transform.synthesis.parameters()).device
        self.h, self.w = x.shape[-2:]
        self.pixels = self.h * self.w
        self.means64 = self.entropy.means(z)
        self.mean = self.means64.to(self.device, torch.float32)
        self.hidden = self.entropy.hidden(z) if self.entropy.context is not None else None
        self.fixed = self.entropy.table_indexes(z) if self.entropy.context is None else None
        self.table = self.entropy.gaussian.scale_table.detach().cpu().float()
        self.inv_gain = (1.0 / codec.gain64(self.mean.dim())).to(self.device, torch.float32)
        self.target = x.detach().to(self.device, torch.float32)
        self.weight = codec.ladder.lmbdas[codec.quality - 1] * 255.0**2 / 3  # SSE over 3 channels

    def decode(self, y_hat: torch.Tensor) -> torch.Tensor:
        x_hat = self.codec.transform.synthesis(y_hat * self.inv_gain)
        if self.codec.postfilter is not None:
            x_hat = self.codec.postfilter(x_hat, self.codec.quality - 1)
        return x_hat

    def distortion(self, y_hat: torch.Tensor) -> torch.Tensor:
        x_hat = self.decode(y_hat)[..., : self.h, : self.w].clamp(0, 1)
        return self.weight * ((x_hat - self.target) ** 2).sum()

    def indexes(self, residual: torch.Tensor) -> torch.Tensor:
        """Table indexes (int64, CPU) the current symbols select: the context's exact heads on
        round(residual), or the hyperprior's fixed indexes without a context."""
        if self.fixed is not None:
            return self.fixed
        context = self.entropy.context
        symbols = torch.round(residual.detach()).cpu().to(torch.int64)
        return torch.cat(context.slice_indexes(self.hidden, list(symbols.split(context.width, 1))), 1)

    def scales(self, residual: torch.Tensor) -> torch.Tensor:
        """The scales of the tables that round(residual) selects (exact indexes)."""
        return self.table[self.indexes(residual)].to(self.device)

    def bits(self, residual: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        return -torch.log2(self.entropy.gaussian.likelihood(residual, scales))

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
