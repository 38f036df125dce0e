"""A VQ autoencoder for extreme rates, built on walloc-rgb-rd's wavelet analysis and synthesis.

Mao et al. ("Extreme Image Compression using Fine-tuned VQGANs") code an image as the indexes of a
VQGAN with downsampling 16. A VQGAN trained from pixels is far beyond 2 CPU cores, so this one
starts where a trained transform already is: walloc-rgb-rd maps an image to 192 channels at 1/8
resolution (a wavelet packet plus a small CNN; its latent space is close to an orthonormal
change of basis of the pixels, so a squared error there tracks the pixels' squared error) and has a
trained CNN synthesis back to pixels. The VQ autoencoder works between the two, at low resolution::

    x (B, 3, H, W)
      | rd analysis (frozen)                                   y (B, 192, H/8, W/8)
      | space-to-depth 2x2, 1x1 conv, residual 3x3 blocks      z (B, D, H/16, W/16)      = analyse
      | nearest codeword of a codebook (the entropy model's    z_hat = codebook[index]
      |   job: lcodec.entropy.vq_index)
      | 1x1 conv, residual 3x3 blocks, 1x1 conv, depth-to-space y_hat (B, 192, H/8, W/8)
      | rd synthesis (frozen)                                   x_hat (B, 3, H, W)      = synthesise

so one index stands for a 16x16 block of pixels. The codebooks (and so the rate ladder) belong to
the entropy model, as the McQuic codebooks of walloc-rgb-mcq do; the transform only maps pixels to
code vectors and code vectors back (``lcodec.train.vq`` fits both on cached rd latents).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lcodec.errors import ModelError
from lcodec.models.cpu import run_on_cpu
from lcodec.models.transforms import ImageTransform, packet_least_side
from lcodec.models.walloc import ConfigDict, ResidualBlock, WallocAnalysis, WallocConfig, WallocSynthesis

__all__ = ["VQConfig", "VQEncoder", "VQDecoder", "VQInpainter", "VQAutoencoder"]


@dataclass(frozen=True)
class VQConfig(ConfigDict):
    """Architecture of the VQ autoencoder between rd's analysis and synthesis (stored in the weights)."""

    base_channels: int = 192  # rd's latent channels
    code_dim: int = 32  # D: the dimension of one code vector (one index)
    hidden: int = 128
    encoder_blocks: int = 2
    decoder_blocks: int = 4
    inpaint_blocks: int = 2  # the lost-index restoration network

    def __post_init__(self) -> None:
        if min(self.base_channels, self.code_dim, self.hidden) < 1 or min(self.encoder_blocks, self.decoder_blocks) < 0:
            raise ModelError(f"invalid VQ autoencoder config {self}")


class VQEncoder(nn.Module):
    """y (B, C, h, w), h and w even -> z (B, D, h/2, w/2)."""

    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        self.head = nn.Conv2d(4 * cfg.base_channels, cfg.hidden, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.hidden) for _ in range(cfg.encoder_blocks)])
        self.tail = nn.Conv2d(cfg.hidden, cfg.code_dim, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.tail(self.blocks(self.head(F.pixel_unshuffle(y, 2))))


class VQDecoder(nn.Module):
    """z_hat (B, D, h, w) -> y_hat (B, C, 2h, 2w)."""

    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        self.head = nn.Conv2d(cfg.code_dim, cfg.hidden, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.hidden) for _ in range(cfg.decoder_blocks)])
        self.tail = nn.Conv2d(cfg.hidden, 4 * cfg.base_channels, 1)

    def forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.tail(self.blocks(self.head(z_hat))), 2)


class VQInpainter(nn.Module):
    """Lost-index restoration: code vectors with erased positions (B, D, h, w) and the erasure mask
    (B, 1, h, w), 1 = lost -> code vectors with the lost ones predicted from their neighbours (a
    masked model, trained by ``lcodec.train.vq_ladder`` on random erasures of 0-30%)."""

    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        self.head = nn.Conv2d(cfg.code_dim + 1, cfg.hidden, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.hidden) for _ in range(cfg.inpaint_blocks)])
        self.tail = nn.Conv2d(cfg.hidden, cfg.code_dim, 1)

    def forward(self, z_hat: torch.Tensor, lost: torch.Tensor) -> torch.Tensor:
        lost = lost.to(z_hat.dtype)
        known = z_hat * (1 - lost)
        guess = self.tail(self.blocks(self.head(torch.cat([known, lost], 1))))
        return known + lost * guess


class VQAutoencoder(ImageTransform, nn.Module):
    """RGB images <-> code vectors at 1/16 resolution (see the module docstring). ``rd`` is
    walloc-rgb-rd's transform config; its ``analysis`` and ``synthesis`` keep rd's tensor names, so a
    weights file can be laid over walloc-rgb-rd.pt and hold only the ``vq_*`` tensors."""

    factor = 16
    config_key = "vq_config"
    storage_dtype = torch.float16  # shipped weights in half precision, as rd's

    def __init__(self, cfg: VQConfig, rd: WallocConfig) -> None:
        nn.Module.__init__(self)
        if rd.dims != 2 or rd.latent_channels != cfg.base_channels or 2 ** rd.levels * 2 != self.factor:
            raise ModelError(f"the VQ autoencoder needs a 2-D base transform at 1/8 with {cfg.base_channels} channels")
        self.cfg, self.rd = cfg, rd
        self.analysis = WallocAnalysis(rd)
        self.synthesis = WallocSynthesis(rd)
        self.vq_encoder = VQEncoder(cfg)
        self.vq_decoder = VQDecoder(cfg)
        self.vq_inpaint = VQInpainter(cfg)

    @property
    def in_channels(self) -> int:
        return self.rd.in_channels

    @property
    def latent_channels(self) -> int:
        return self.cfg.code_dim

    def padded_side(self, n: int, multiple: int = 1) -> int:
        return super().padded_side(max(n, packet_least_side(self.analysis.wpt, self.rd.levels)), multiple)

    # ------------------------------------------------------------------- paths
    def analyse(self, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        return self.vq_encoder(self.analysis(self.pad(x, multiple)))

    @torch.no_grad()
    def analyse64(self, x: torch.Tensor, multiple: int = 1) -> torch.Tensor:
        """The code vectors in float64 on CPU: the nearest-codeword choice that follows depends only
        on float64 rounding, not on the machine's float32 kernels."""
        y = run_on_cpu(self.analysis, self.pad(x.detach().cpu().double(), multiple))
        return run_on_cpu(self.vq_encoder, y)

    def decode_base(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Code vectors -> rd latents y_hat at 1/8 (differentiable)."""
        dev = next(self.vq_decoder.parameters()).device
        return self.vq_decoder(z_hat.to(dev, torch.float32))

    def synthesise(self, z_hat: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.decode_base(z_hat))

    def exact_synthesis(self) -> tuple[nn.Module, nn.Module]:
        """(the code decoder, rd's synthesis): what ``synthesise`` runs, for ``lcodec.models.exact``."""
        return self.vq_decoder, self.synthesis

    @torch.no_grad()
    def restore(self, z_hat: torch.Tensor, lost: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, D, h, w) with the positions where ``lost`` (B, h, w) is true predicted
        by the restoration network (``VQInpainter``); the others are kept as they are."""
        dev = next(self.vq_inpaint.parameters()).device
        return self.vq_inpaint(z_hat.to(dev, torch.float32), lost[:, None].to(dev))

    def load_config(self, stored: dict) -> None:
        cfg = VQConfig.from_dict(dict(stored))
        if cfg != self.cfg:
            raise ModelError(f"weights were trained for {cfg}, not {self.cfg}")
