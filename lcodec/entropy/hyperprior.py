"""Mean-scale Gaussian hyperprior with an exact integer side path, for 2-D (images) or 1-D
(audio) latents: the entropy-model role (``lcodec.entropy.model``).

Hyperprior of Ballé, Minnen, Singh, Hwang & Johnston (2018) with the means of Minnen, Ballé &
Toderici (2018); table indexes from an integer network (Ballé, Johnston & Minnen 2019,
``lcodec.entropy.integer_net``)::

    y (B, C, h, w)                              float64 on CPU when coding
      |  h_a: conv3 C->A, GELU, conv5/2 -> N   z (B, N, h/2, w/2), rounded -> section 1
      |                                        (factorized prior; one per rate point if asked)
      |  index_net (exact integers): z -> table indexes (B, C, h, w)
      |  h_m (float64):              z -> means         (B, C, h, w)
      |  symbols = round(y - means), Gaussian table[index] -> section 2 (or one per channel slice)
    y_hat = symbols + h_m in fixed point (``reconstruction_means``: the same on every machine)

Only integers decoded from the stream and integer weights choose the tables, so the symbols
decode identically on every machine; the means only shift symbols. For 2-D latents the
encoder's roundings (z, and the symbols) are evaluated in float32 with a float64 referee near
rounding boundaries (``lcodec.entropy.refereed``): the float64 path's integers, faster; 1-D
latents are small and run in float64 throughout.

With ``HyperpriorConfig.context_slices`` = S >= 2, y is coded in S channel slices, one section
each, and the tables of slice s also read the symbols of the earlier slices
(``lcodec.entropy.channel_context``; 2-D only); ``context_mixture`` makes those tables
two-component Gaussian scale mixtures (``lcodec.entropy.scale_mixture``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lcodec.bitstream.coder import decode_symbols, encode_symbols
from lcodec.bitstream.tables import CodingTables
from lcodec.entropy.channel_context import ChannelContext
from lcodec.entropy.factorized import FactorizedPrior
from lcodec.entropy.gaussian import SCALE_BOUND, GaussianConditional, scale_table
from lcodec.entropy.integer_net import index_synthesis
from lcodec.entropy.model import channel_indexes, check_floor, require, ste_round
from lcodec.entropy.refereed import SYMBOL_MARGIN, analyse_refereed, conv_at_elements, conv_transpose64, round_refereed
from lcodec.entropy.scale_mixture import ScaleMixtureContext
from lcodec.errors import ModelError
from lcodec.models.cpu import run_on_cpu
from lcodec.models.walloc import ConfigDict

__all__ = ["HyperpriorConfig", "MeanScaleHyperprior"]


@dataclass(frozen=True)
class HyperpriorConfig(ConfigDict):
    """Widths of the side path (stored in every checkpoint; never inferred from weights)."""

    hyper_channels: int = 32  # z
    analysis_hidden: int = 96  # h_a
    index_hidden: int = 64  # the integer index network
    num_scales: int = 64  # Gaussian tables, log-spaced scales min_scale .. max_scale
    min_scale: float = 0.11
    max_scale: float = 64.0  # larger values are escape-coded
    # >= 2: y is coded in this many channel slices, each conditioned on the earlier ones
    # (lcodec.entropy.channel_context); 0: the plain hyperprior
    context_slices: int = 0
    context_hidden: int = 128  # width of each slice's mean correction (0: the context only picks tables)
    # True: the context's tables are two-component Gaussian scale mixtures (stored integer tables,
    # lcodec.entropy.scale_mixture; needs context_slices >= 2 and context_hidden = 0)
    context_mixture: bool = False
    # > 1: the means' last convolution is grouped (fewer weights, for many latent channels; 1-D only)
    mean_groups: int = 1
    # y's conditional density: "gaussian" or "laplace" (lcodec.entropy.gaussian; not with context_mixture)
    family: str = "gaussian"
    tail_mass: float = 1e-9  # mass outside each table's symbol range (escape-coded)


class MeanScaleHyperprior(nn.Module):
    """The hyperprior entropy model (module docstring) over ``channels`` latent channels.

    ``prior`` models z (its tables are ``tables``); ``gaussian`` holds y's scale table (its
    integer tables are ``y_tables``). ``rates`` > 0: one factorized prior on z per rate point of
    a variable-rate codec (``rate_priors``, tables ``rate_tables``); z's spread grows with the
    rate's gain, so a shared density fits none of them well.
    """

    downsample = 2  # h_a halves the latent grid
    per_item_rates = True
    index_band_positions = 2**15  # y positions per exact-index band (bounds the decoder's memory)

    def __init__(self, channels: int, hyper: HyperpriorConfig = HyperpriorConfig(), dims: int = 2,
                 rates: int = 0) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ModelError(f"the hyperprior codes 1-D or 2-D latents, not dims={dims}")
        if dims == 1 and hyper.context_slices:
            raise ModelError("the channel context is for 2-D latents")
        self.hyper, self.dims, self.channels = hyper, dims, channels
        c, n = channels, hyper.hyper_channels
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        up = nn.ConvTranspose1d if dims == 1 else nn.ConvTranspose2d
        self.prior = FactorizedPrior(n)
        self.h_a = nn.Sequential(conv(c, hyper.analysis_hidden, 3, padding=1), nn.GELU(),
                                 conv(hyper.analysis_hidden, n, 5, stride=2, padding=2))
        self.index_net = index_synthesis(n, hyper.index_hidden, c, hyper.num_scales, upsample=1, dims=dims)
        if hyper.mean_groups != 1 and (dims != 1 or c % hyper.mean_groups):
            raise ModelError(f"mean_groups={hyper.mean_groups} needs 1-D latents and divides {c} channels")
        self.h_m = nn.Sequential(up(n, c, 4, stride=2, padding=1), nn.GELU(),
                                 conv(c, c, 3, padding=1, groups=hyper.mean_groups))
        nn.init.zeros_(self.h_m[2].weight)  # means start at 0: a trained transform's symbols
        nn.init.zeros_(self.h_m[2].bias)
        if hyper.family != "gaussian" and hyper.context_mixture:
            raise ModelError("context_mixture tables are Gaussian scale mixtures; use family='gaussian'")
        self.gaussian = GaussianConditional(scale_table(hyper.num_scales, hyper.min_scale, hyper.max_scale),
                                            family=hyper.family, tail_mass=hyper.tail_mass,
                                            scale_bound=min(SCALE_BOUND, hyper.min_scale))
        self.tables: CodingTables | None = None
        self.y_tables: CodingTables | None = None
        self.context: ChannelContext | None = None
        if hyper.context_mixture and (hyper.context_slices < 2 or hyper.context_hidden):
            raise ModelError("context_mixture needs context_slices >= 2 and context_hidden = 0")
        if hyper.context_mixture:
            self.context = ScaleMixtureContext(c, hyper.context_slices, hyper.index_hidden,
                                               self.gaussian.scale_table.numpy())
        elif hyper.context_slices:
            self.context = ChannelContext(c, hyper.context_slices, hyper.index_hidden, hyper.num_scales,
                                          hyper.context_hidden)
        if self.context is not None:  # the index net's head then only initialises the slices' heads
            self.context.init_from_head(self.index_net.layers[-1])
        self.rate_priors: nn.ModuleList | None = None
        self.rate_tables: list[CodingTables] | None = None
        if rates:
            self.rate_priors = nn.ModuleList([FactorizedPrior(n) for _ in range(rates)])
            for prior in self.rate_priors:
                prior.load_state_dict(self.prior.state_dict())

    @property
    def side_sections(self) -> int:
        return 1

    @property
    def y_sections(self) -> int:
        """Range-coded sections of y: one per channel slice with the context, else one."""
        return self.context.slices if self.context is not None else 1

    def num_sections(self, rate: int) -> int:
        return 1 + self.y_sections

    # ------------------------------------------------------------ training path
    def forward(self, y: torch.Tensor, rates: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """(y_dec, {"y": bits, "z": bits}); ``rates`` (B,) picks each item's z prior (rate_priors)."""
        z = self.h_a(y)
        z_bits = self._z_bits(z, rates)
        z_hat = ste_round(z)  # the decoder's side networks see integers, as when coding
        means = self.h_m(z_hat)
        if self.context is not None:
            y_dec, y_bits = self.context(y, means, self.index_net.layers[0](z_hat),
                                         lambda v, sc, m: self.gaussian(v, sc, m)[1], self.gaussian.scales_from_indexes)
        else:
            scales = self.gaussian.scales_from_indexes(self.index_net(z_hat))
            _, y_bits = self.gaussian(y, scales, means)
            y_dec = ste_round(y - means) + means  # straight-through
        return y_dec, {"y": y_bits, "z": z_bits}

    def _z_bits(self, z: torch.Tensor, rates: torch.Tensor | None) -> torch.Tensor:
        """Bits of z per batch item: under each item's own rate point's prior if there are several."""
        if self.rate_priors is None or rates is None:
            return self.prior(z)[1]
        bits = z.new_zeros(z.shape[0])
        for r in rates.unique().tolist():
            items = (rates == r).nonzero().flatten()
            bits = bits.index_add(0, items, self.rate_priors[r](z[items])[1])
        return bits

    def z_prior(self, rate: int) -> FactorizedPrior:
        return self.rate_priors[rate] if self.rate_priors is not None else self.prior

    def z_tables(self, rate: int) -> CodingTables:
        if self.rate_priors is None:
            return require(self.tables, "z")
        if self.rate_tables is None:
            raise ModelError("no per-rate z tables; load shipped weights or call export()")
        return self.rate_tables[rate]

    # ------------------------------------------------------------ exact pieces
    @torch.no_grad()
    def hyper_analysis(self, y64: torch.Tensor) -> torch.Tensor:
        """float64 y -> integer z (int64, CPU): round(h_a(y)) as float64 evaluates it (2-D: computed
        in float32 with a float64 referee near rounding boundaries, ``refereed``)."""
        if self.dims == 1:
            return torch.round(run_on_cpu(self.h_a, y64)).to(torch.int64)
        return analyse_refereed(self.h_a, y64)

    @torch.no_grad()
    def symbols(self, y64: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """round(y - means(z)) int64 on CPU, as float64 evaluates it (2-D: h_m's first layers in
        float64, its last convolution in float32 with a float64 referee)."""
        if self.dims == 1:
            return torch.round(y64 - self.means(z)).to(torch.int64)
        up, act, conv = self.h_m
        hidden = act(conv_transpose64(z.cpu().double(), up))
        approx = y64.float() - run_on_cpu(conv, hidden.float())  # float32: y's rounding is far below the margin
        return round_refereed(approx, SYMBOL_MARGIN,
                              lambda index: y64[tuple(index.T)] - conv_at_elements(hidden, conv, index))

    @torch.no_grad()
    def means(self, z: torch.Tensor) -> torch.Tensor:
        """Integer z -> means of y, float64 on CPU: what the encoder subtracts before rounding y to
        its symbols (so the streams stay as they were). The decoded latents add
        ``reconstruction_means`` instead."""
        return run_on_cpu(self.h_m, z.cpu().double())

    @torch.no_grad()
    def reconstruction_means(self, z: torch.Tensor) -> torch.Tensor:
        """Integer z -> the means the decoded latents ``symbols + means`` use, encoder and decoder
        alike: h_m in fixed point (``lcodec.models.exact.ExactMeans``), so the latents, and the
        exact decoder's pixels, are the same on every machine; within 0.01 of ``means`` (the
        latents' step is 1). Rebuilt whenever h_m's weights differ from those it was built from
        (loading, training; compared by value, about a millisecond)."""
        from lcodec.models.exact import ExactMeans

        weights = torch.cat([p.detach().reshape(-1).cpu() for p in self.h_m.parameters()])
        cached = getattr(self, "_exact_means", None)
        if cached is None or not torch.equal(cached[0], weights):
            cached = (weights.clone(), ExactMeans(self.h_m))
            self._exact_means = cached
        return cached[1](z)

    @torch.no_grad()
    def table_indexes(self, z: torch.Tensor) -> torch.Tensor:
        """Integer z (B, N, *grid) -> table indexes (B, C, *2 grid) int64 on CPU, bit-exact.

        Runs ``index_net.forward_exact`` on the network's device, one band of rows (2-D) or of
        positions (1-D) at a time, with a halo of 2 positions of z (the receptive field reaches
        1), so memory stays bounded.
        """
        dev = next(self.index_net.parameters()).device
        b, _, *grid = z.shape
        out = torch.empty((b, self.channels, *[2 * g for g in grid]), dtype=torch.int64)
        n, width = grid[0], (4 * grid[1] if self.dims == 2 else 2)  # bands along the first grid axis
        step = max(1, self.index_band_positions // width)
        halo = 2
        for i in range(b):
            for r0 in range(0, n, step):
                r1 = min(n, r0 + step)
                s0, s1 = max(0, r0 - halo), min(n, r1 + halo)
                band = self.index_net.forward_exact(z[i : i + 1, :, s0:s1].to(dev))
                out[i : i + 1, :, 2 * r0 : 2 * r1] = band[:, :, 2 * (r0 - s0) : 2 * (r1 - s0)].cpu()
        return out

    @torch.no_grad()
    def hidden(self, z: torch.Tensor) -> torch.Tensor:
        """Integer z -> the index network's hidden integer features (float64, CPU), exactly."""
        dev = next(self.index_net.parameters()).device
        return self.index_net.layers[0].forward_exact(z.double().to(dev)).cpu()

    def context_encode(self, y64: torch.Tensor, z: torch.Tensor, y_hat: bool = True):
        """(symbols per slice, table indexes per slice, y_hat float64 or None) with the channel
        context. A context that only picks tables (no mean corrections) leaves every symbol
        round(y - mean), so the symbols come from the refereed float32 path (``symbols``) and
        float64 means are computed only when ``y_hat`` is asked for."""
        if self.context.means:  # the symbols need the float64 means; y_hat takes the fixed-point ones
            symbols, indexes, out = self.context.encode(y64, self.means(z), self.hidden(z),
                                                        reconstruction=self.reconstruction_means(z) if y_hat else None)
            return symbols, indexes, out if y_hat else None
        symbols = list(self.symbols(y64, z).split(self.context.width, dim=1))
        indexes = self.context.slice_indexes(self.hidden(z), symbols)
        return symbols, indexes, (torch.cat(symbols, 1).double() + self.reconstruction_means(z)) if y_hat else None

    def symbols_and_indexes(self, y64: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """y's symbols and table indexes, one entry per section (slice)."""
        if self.context is not None:
            symbols, indexes, _ = self.context_encode(y64, z, y_hat=False)
            return symbols, indexes
        return [self.symbols(y64, z)], [self.table_indexes(z)]

    # ------------------------------------------------------------------ coding
    def _check_carried(self, carried: int) -> None:
        if carried != self.channels and self.context is not None:
            raise ModelError("the channel context codes every latent channel")

    @torch.no_grad()
    def encode(self, y64: torch.Tensor, rate: int, carried: int, write: bool = True,
               z: torch.Tensor | None = None, latents: bool = False):
        """-> ((z section, y sections...), None), or with ``write`` False ((), y_hat float64 of the
        carried channels), or with ``latents`` both (the float64 means are only computed when
        y_hat is asked for). ``z``: the side information if the caller already has it (encoder
        refinement keeps the unrefined y's)."""
        self._check_carried(carried)
        z = self.hyper_analysis(y64) if z is None else z
        if not write:
            if self.context is not None:
                return (), self.context_encode(y64, z, y_hat=True)[2][:, :carried]
            return (), self.symbols(y64, z)[:, :carried].double() + self.reconstruction_means(z)[:, :carried]
        if self.context is not None:
            symbols, indexes, y_hat = self.context_encode(y64, z, y_hat=latents)
        else:
            symbols, indexes = self.symbols_and_indexes(y64, z)
            y_hat = symbols[0].double() + self.reconstruction_means(z) if latents else None
        payloads = tuple(self.payloads(z, [s[:, :carried] for s in symbols], [i[:, :carried] for i in indexes], rate))
        return payloads, (y_hat[:, :carried] if latents else None)

    def payloads(self, z: torch.Tensor, symbols: list[torch.Tensor], indexes: list[torch.Tensor],
                 rate: int) -> list[bytes]:
        """z's section (this rate's z tables), then one y section per (symbols, table indexes) pair."""
        y_tables = require(self.y_tables, "Gaussian")
        z_payload = encode_symbols(z.numpy().reshape(-1), channel_indexes(tuple(z.shape)), self.z_tables(rate))
        return [z_payload, *(encode_symbols(s.numpy().reshape(-1), i.numpy().reshape(-1), y_tables)
                             for s, i in zip(symbols, indexes))]

    def hyper_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0], self.hyper.hyper_channels, *[g // 2 for g in shape[2:]])

    def check_z_floor(self, payload: bytes, shape: tuple[int, ...], rate: int, what: str) -> None:
        """z's section checked against the fewest bits z of y's ``shape`` could take."""
        zshape = self.hyper_shape(shape)
        positions = math.prod(zshape) // zshape[1]
        check_floor(payload, positions * float(np.sum(self.z_tables(rate).min_bits())), f"{what} (side information)")

    def decode_z(self, payload: bytes, shape: tuple[int, ...], rate: int) -> torch.Tensor:
        """Integer z (int64) of y's ``shape`` from its section, with this rate's z tables."""
        zshape = self.hyper_shape(shape)
        return torch.from_numpy(decode_symbols(payload, channel_indexes(zshape), self.z_tables(rate)).reshape(zshape))

    def check_sections(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
                       what: str) -> None:
        """Both kinds of section checked against the fewest bits their declared symbols could take
        (y against its cheapest table here, against the actual tables once the indexes are known)."""
        self.check_z_floor(sections[0], shape, rate, what)
        cheapest = float(require(self.y_tables, "Gaussian").min_bits().min())
        per_section = math.prod(shape) // shape[1] * carried // self.y_sections
        for payload in sections[1:]:
            check_floor(payload, per_section * cheapest, what)

    def decode_symbols(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
                       what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sections -> (y symbols, z symbols, y_hat float64), carried channels only."""
        self._check_carried(carried)
        self.check_sections(sections, shape, rate, carried, what)
        z, read = self.readers(sections, shape, rate, what)
        means = self.reconstruction_means(z)
        if self.context is not None:
            symbols, y_hat = self.context.decode(means, self.hidden(z), read)
            return torch.cat(symbols, 1), z, y_hat
        y_sym = read(0, self.table_indexes(z)[:, :carried].contiguous())
        return y_sym, z, y_sym.double() + means[:, :carried]

    def readers(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, what: str):
        """Checked sections -> (z decoded from section 0, ``read(s, indexes)``: the symbols of y
        section s coded with those table indexes, after checking the section against the fewest bits
        they could take)."""
        y_tables = require(self.y_tables, "Gaussian")
        z = self.decode_z(sections[0], shape, rate)
        floor_bits = y_tables.min_bits()  # once per stream, not per section

        def read(section: int, indexes: torch.Tensor) -> torch.Tensor:
            flat = indexes.numpy().reshape(-1)
            check_floor(sections[1 + section], float(np.bincount(flat, minlength=y_tables.num_tables) @ floor_bits), what)
            return torch.from_numpy(decode_symbols(sections[1 + section], flat, y_tables).reshape(indexes.shape))

        return z, read

    def decode(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
               what: str) -> torch.Tensor:
        return self.decode_symbols(sections, shape, rate, carried, what)[2]

    @torch.no_grad()
    def estimate_bits(self, y64: torch.Tensor, rate: int, carried: int) -> dict[str, float]:
        """The model's own (float) estimate of each kind of section's payload, in bits."""
        z = self.hyper_analysis(y64)
        symbols, indexes = self.symbols_and_indexes(y64, z)
        y_sym, index = torch.cat(symbols, 1)[:, :carried], torch.cat(indexes, 1)[:, :carried]
        if self.hyper.context_mixture:  # the stored mixture tables' own cost
            y_bits = require(self.y_tables, "mixture").information_content(y_sym.numpy(), index.numpy())
        else:
            scales = self.gaussian.scale_table.cpu()[index]  # float64
            y_bits = -torch.log2(self.gaussian.likelihood(y_sym.double(), scales)).sum()
        prior = self.z_prior(rate)
        z_float = z.to(next(prior.parameters()).device, torch.float32)
        return {"y": float(y_bits), "z": float(-torch.log2(prior.likelihood(z_float)).sum())}

    # ----------------------------------------------------------------- export
    def export(self) -> None:
        if self.rate_priors is not None:
            self.rate_tables = [prior.export_tables() for prior in self.rate_priors]
        self.tables = self.prior.export_tables()
        self.y_tables = self.context.tables() if self.hyper.context_mixture else self.gaussian.tables()

    def table_sets(self) -> list[CodingTables]:
        rates = self.rate_tables if self.rate_priors is not None else []
        if self.rate_priors is not None and rates is None:
            raise ModelError("no per-rate z tables; load shipped weights or call export()")
        return [require(self.tables, "z"), require(self.y_tables, "Gaussian"), *rates]

    def state_entries(self) -> dict[str, object]:
        state = {"hyper_config": self.hyper.to_dict(), "tables": require(self.tables, "z").to_state(),
                 "y_tables": require(self.y_tables, "Gaussian").to_state()}
        if self.rate_priors is not None:
            state["rate_tables"] = [t.to_state() for t in self.table_sets()[2:]]
        return state

    def load_entries(self, state: dict[str, object]) -> None:
        if "hyper_config" not in state or "y_tables" not in state:
            raise ModelError("weights lack the hyperprior config or Gaussian tables (are they weights of a "
                             "codec with another entropy model? those only initialise training: init_weights)")
        hyper = HyperpriorConfig.from_dict(dict(state["hyper_config"]))
        if hyper != self.hyper:
            raise ModelError(f"weights were trained for {hyper}, not {self.hyper}")
        tables = CodingTables.from_state(state["tables"])
        y_tables = CodingTables.from_state(state["y_tables"])
        y_count = self.context.num_tables if self.hyper.context_mixture else self.hyper.num_scales
        if tables.num_tables != self.hyper.hyper_channels or y_tables.num_tables != y_count:
            raise ModelError("stored hyperprior tables do not fit the configuration")
        if self.rate_priors is not None:
            stored = state.get("rate_tables")
            if not isinstance(stored, list) or len(stored) != len(self.rate_priors):
                raise ModelError("weights lack one z table set per rate point")
            rate_tables = [CodingTables.from_state(t) for t in stored]
            if any(t.num_tables != self.hyper.hyper_channels for t in rate_tables):
                raise ModelError("stored per-rate z tables do not fit the configuration")
            self.rate_tables = rate_tables
        self.tables, self.y_tables = tables, y_tables
