"""Test helpers: look inside a composed codec's entropy model (hyperprior symbols, codebook indexes)
the way its coding path does, without running the range coder."""
from __future__ import annotations

import torch


def analyse(codec, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x -> (gained float64 y, integer z) for a hyperprior codec."""
    y64 = codec.analyse64(codec.transform.check_input(x))
    return y64, codec.entropy.hyper_analysis(y64)


def latent_symbols(codec, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x -> (y symbols, z symbols), int64, as the encoder codes them."""
    y64, z = analyse(codec, x)
    symbols, _ = codec.entropy.symbols_and_indexes(y64, z)
    return torch.cat(symbols, 1), z


def _sections(codec, data: bytes):
    c = codec.parse(data)
    g = c.geometry
    return c, (c.sections, codec.transform.latent_shape(g, codec.multiple), codec.rate, codec.transform.carried(g),
               codec.transform.describe(g))


def decompress_symbols(codec, data: bytes) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Container -> (y symbols, z symbols, original shape), integers as the encoder had them."""
    c, args = _sections(codec, data)
    y_sym, z, _ = codec.entropy.decode_symbols(*args)
    return y_sym, z, c.geometry.shape


def latent_indexes(codec, x: torch.Tensor) -> torch.Tensor:
    """x -> the codeword indexes a codebook codec's stream holds, (B, quality, groups, h, w)."""
    return codec.entropy.codebook.indexes(codec.analyse64(codec.transform.check_input(x)), codec.rate + 1)


def decompress_indexes(codec, data: bytes) -> tuple[torch.Tensor, tuple[int, ...]]:
    c, args = _sections(codec, data)
    return codec.entropy.decode_indexes(*args), c.geometry.shape
