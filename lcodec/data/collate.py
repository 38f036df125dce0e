"""Batching latents of different sizes, and the augmentations that are valid on a latent grid.

``pad_collate``  a ``DataLoader`` collate: pads every item's latents (C, h, w) with zeros to the
                 largest h and w of the batch (bottom and right: the codecs pad images the same
                 way before analysis) and adds a (B, h, w) bool mask of the real positions.
``SizeBuckets``  a batch sampler that only batches items of one original size (no padding at
                 all), shuffled within and across buckets.
``latent_crop``  a crop on the latent grid: latents (C, h, w) rows top .. top + height. One latent
                 position covers ``stride`` x ``stride`` pixels (``codec.transform.factor``), so
                 this equals coding the pixel crop of rows stride * top .. only up to the
                 transform's border effects (its filters reach into neighbouring blocks).

Flips are **not** valid on these latents: the wavelet packets (sym4 for rd/light/mcq, Haar for
walloc-rgb) and the learned analysis are not mirror-symmetric, so the latents of a flipped image
are not the flipped latents. Flip the pixels before encoding (a second cached dataset) instead.
"""
from __future__ import annotations

import random
from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler, default_collate

from lcodec.errors import InputError

__all__ = ["pad_collate", "SizeBuckets", "latent_crop"]


def pad_collate(batch: Sequence[object]) -> tuple[object, ...]:
    """[(latents (C, h, w), label, ...)] or [latents] -> (latents (B, C, H, W), mask (B, H, W),
    *collated labels)."""
    if not batch:
        raise InputError("pad_collate got an empty batch")
    bare = isinstance(batch[0], torch.Tensor)
    zs = [item if bare else item[0] for item in batch]
    if any(z.dim() != 3 for z in zs) or len({z.shape[0] for z in zs}) != 1:
        raise InputError(f"pad_collate needs latents (C, h, w) of one channel count, got {[tuple(z.shape) for z in zs]}")
    h = max(z.shape[1] for z in zs)
    w = max(z.shape[2] for z in zs)
    out = zs[0].new_zeros(len(zs), zs[0].shape[0], h, w)
    mask = torch.zeros(len(zs), h, w, dtype=torch.bool)
    for i, z in enumerate(zs):
        out[i, :, : z.shape[1], : z.shape[2]] = z
        mask[i, : z.shape[1], : z.shape[2]] = True
    if bare:
        return out, mask
    rest = default_collate([tuple(item[1:]) for item in batch])
    return (out, mask, *rest)


class SizeBuckets(Sampler[list[int]]):
    """Batches of indices whose items share one original size (``LatentDataset.item_sizes``)."""

    def __init__(self, sizes: Sequence[tuple[int, int]], batch_size: int, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.buckets: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(sizes):
            self.buckets.setdefault(tuple(s), []).append(i)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.epoch, self.seed = 0, seed

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        out = []
        for idx in self.buckets.values():
            idx = list(idx)
            if self.shuffle:
                rng.shuffle(idx)
            for k in range(0, len(idx), self.batch_size):
                chunk = idx[k : k + self.batch_size]
                if len(chunk) == self.batch_size or not self.drop_last:
                    out.append(chunk)
        if self.shuffle:
            rng.shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        return len(self._batches())


def latent_crop(z: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """Latents (C, h, w) -> rows top .. top + height, columns left .. left + width (on the grid)."""
    if z.dim() != 3:
        raise InputError(f"latent_crop takes latents (C, h, w), got {tuple(z.shape)}")
    if not (0 <= top and 0 <= left and height >= 1 and width >= 1 and top + height <= z.shape[1]
            and left + width <= z.shape[2]):
        raise InputError(f"crop {height}x{width} at ({top}, {left}) is outside the {z.shape[1]}x{z.shape[2]} grid")
    return z[:, top : top + height, left : left + width]
