"""Block motion: estimation (encoder only) and exact compensation at half-pel precision.

The prediction part of ``walloc-video-mc`` (``lcodec.codecs.video``). Pictures are 8-bit
integer tensors (3, H, W); motion vectors are integers in half-pel units, one (dy, dx) per
``block`` x ``block`` block in raster order, the last row and column of blocks covering the
picture's remainder.

Compensation is integer arithmetic only, so the encoder and every decoder build the same
prediction on any machine and thread count:

- the half-pel grid of the reference has 2H - 1 rows and 2W - 1 columns; integer positions
  are the pixels, half positions the rounded means ``(a + b + 1) >> 1`` of the two neighbours
  and ``(a + b + c + d + 2) >> 2`` of the four (H.264's bilinear chroma rule, applied to RGB);
- a vector may point outside the picture: grid coordinates are clamped to the grid, which is the
  same as padding the reference by repeating its border;
- ``compensate`` reads each block at its vector; ``compensate_overlapped`` (what the codec
  uses) blends, per pixel, the reads of the four blocks whose centres surround it with integer
  bilinear weights, then rounds once.

Estimation (``estimate``) is the encoder's choice, outside the decoder's contract, but it is
integer too (luma SAD), so the same input gives the same stream everywhere. It searches
coarse-to-fine: a full search of +-``search`` pixels at quarter resolution, +-2 pixels around
it at full resolution, then the eight half-pel neighbours; each block's cost is its luma SAD
plus ``lam`` times the Exp-Golomb length of its vector's difference from a predictor (the
median of the coarse search's vectors of the left, upper and upper-right blocks).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["half_pel_grid", "compensate", "compensate_overlapped", "estimate", "median_predictor",
           "joint_predictor", "luma", "blocks_of"]


def blocks_of(h: int, w: int, block: int) -> tuple[int, int]:
    """Blocks per column and per row of an h x w picture."""
    return math.ceil(h / block), math.ceil(w / block)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) integer RGB -> (H, W) int64 luma, BT.601 weights in 8-bit fixed point."""
    x = x.long()
    return (77 * x[0] + 150 * x[1] + 29 * x[2] + 128) >> 8


def half_pel_grid(ref: torch.Tensor) -> torch.Tensor:
    """(C, H, W) integer picture -> (C, 2H - 1, 2W - 1) int64 half-pel grid (module docstring)."""
    r = ref.long()
    c, h, w = r.shape
    grid = torch.empty(c, 2 * h - 1, 2 * w - 1, dtype=torch.long)
    grid[:, 0::2, 0::2] = r
    grid[:, 0::2, 1::2] = (r[:, :, :-1] + r[:, :, 1:] + 1) >> 1
    grid[:, 1::2, 0::2] = (r[:, :-1] + r[:, 1:] + 1) >> 1
    grid[:, 1::2, 1::2] = (r[:, :-1, :-1] + r[:, :-1, 1:] + r[:, 1:, :-1] + r[:, 1:, 1:] + 2) >> 2
    return grid


def _pixel_field(mv: torch.Tensor, h: int, w: int, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-block vectors (nby, nbx, 2) -> per-pixel (H, W) grid rows and columns, clamped."""
    fy = mv[..., 0].repeat_interleave(block, 0).repeat_interleave(block, 1)[:h, :w]
    fx = mv[..., 1].repeat_interleave(block, 0).repeat_interleave(block, 1)[:h, :w]
    rows = (2 * torch.arange(h)[:, None] + fy).clamp_(0, 2 * h - 2)
    cols = (2 * torch.arange(w)[None, :] + fx).clamp_(0, 2 * w - 2)
    return rows, cols


def compensate(grid: torch.Tensor, mv: torch.Tensor, block: int) -> torch.Tensor:
    """The prediction (C, H, W) int64: each block read from the half-pel ``grid`` of the reference
    at its vector ``mv`` (nby, nbx, 2) in half-pel units."""
    h, w = (grid.shape[1] + 1) // 2, (grid.shape[2] + 1) // 2
    if tuple(mv.shape) != (*blocks_of(h, w, block), 2):
        raise ValueError(f"motion field {tuple(mv.shape)} does not tile {h}x{w} in blocks of {block}")
    rows, cols = _pixel_field(mv.long(), h, w, block)
    return grid[:, rows, cols]


def _overlap_axis(n: int, blocks: int, block: int) -> tuple[torch.Tensor, ...]:
    """Along one axis of n pixels: each pixel's two nearest block centres (clamped to the blocks)
    and their integer weights, summing to 2 * block (linear in the distance to the centres)."""
    t = 2 * torch.arange(n) + 1 - block  # twice the distance from block 0's centre
    i0 = torch.div(t, 2 * block, rounding_mode="floor")
    f = t - 2 * block * i0
    return i0.clamp(0, blocks - 1), (i0 + 1).clamp(0, blocks - 1), 2 * block - f, f


def compensate_overlapped(grid: torch.Tensor, mv: torch.Tensor, block: int) -> torch.Tensor:
    """Overlapped block motion compensation: each pixel is the bilinear blend of the predictions
    of the four blocks whose centres surround it, each read at its own vector from the half-pel
    ``grid``; weights are integers with the sum ``4 * block**2`` and the blend is rounded
    (``(sum + 2 * block**2) // (4 * block**2)``), so the result is exact. Smooth transitions
    between blocks cost a transform codec far fewer bits than block edges. Returns (C, H, W) int64."""
    h, w = (grid.shape[1] + 1) // 2, (grid.shape[2] + 1) // 2
    nby, nbx = blocks_of(h, w, block)
    if tuple(mv.shape) != (nby, nbx, 2):
        raise ValueError(f"motion field {tuple(mv.shape)} does not tile {h}x{w} in blocks of {block}")
    m = mv.long()
    ys, xs = _overlap_axis(h, nby, block), _overlap_axis(w, nbx, block)
    out = torch.zeros(grid.shape[0], h, w, dtype=torch.long)
    for iy, wy in ((ys[0], ys[2]), (ys[1], ys[3])):
        for ix, wx in ((xs[0], xs[2]), (xs[1], xs[3])):
            v = m[iy[:, None], ix[None, :]]  # (h, w, 2): the vector of this neighbour, per pixel
            rows = (2 * torch.arange(h)[:, None] + v[..., 0]).clamp_(0, 2 * h - 2)
            cols = (2 * torch.arange(w)[None, :] + v[..., 1]).clamp_(0, 2 * w - 2)
            out += (wy[:, None] * wx[None, :]) * grid[:, rows, cols]
    return (out + 2 * block * block) // (4 * block * block)


def _eg_bits(v: int) -> int:
    """Length in bits of the signed Exp-Golomb code of one integer (0 -> 1, +-1 -> 3, ...)."""
    u = 2 * v - 1 if v > 0 else -2 * v
    return 2 * (u + 1).bit_length() - 1


_EG_TABLE = torch.tensor([_eg_bits(v) for v in range(-512, 513)])


def _eg_len(v: torch.Tensor) -> torch.Tensor:
    """``_eg_bits`` of each integer of a tensor (|v| <= 512: vectors and their differences are
    bounded by the search range), by table lookup."""
    return _EG_TABLE[v.clamp(-512, 512) + 512]


def median_predictor(mv: torch.Tensor) -> torch.Tensor:
    """Each block's predictor from its left (a), upper (b) and upper-right (c) neighbours'
    vectors: the component-wise median of the three; outside the picture a neighbour is the
    zero vector, except in the first row, where the predictor is the left neighbour, and where
    the upper-right block is missing (last column), it is the upper-left one (H.264's rule)."""
    m = mv.long()
    nby, nbx = m.shape[:2]
    z = torch.zeros_like(m)
    a, b, c = z.clone(), z.clone(), z.clone()
    a[:, 1:] = m[:, :-1]
    b[1:] = m[:-1]
    c[1:, :-1] = m[:-1, 1:]
    if nbx > 1:
        c[1:, -1] = m[:-1, -2]
    med = torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
    med[0] = a[0]
    return med


def joint_predictor(mv: torch.Tensor, colocated: torch.Tensor) -> torch.Tensor:
    """Each block's predictor from space and time: the component-wise median of its left and upper
    neighbours' vectors and the previous frame's vector at the same block (``colocated``); a
    neighbour outside the picture is replaced by the co-located vector."""
    m, col = mv.long(), colocated.long()
    a, b = col.clone(), col.clone()
    a[:, 1:] = m[:, :-1]
    b[1:] = m[:-1]
    return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), col))


def _block_sad(target: torch.Tensor, pred: torch.Tensor, block: int) -> torch.Tensor:
    """Per-block sum of absolute differences of two (H, W) integer planes, as int64."""
    h, w = target.shape
    nby, nbx = blocks_of(h, w, block)
    d = F.pad((target - pred).abs(), (0, nbx * block - w, 0, nby * block - h))
    return d.reshape(nby, block, nbx, block).sum(dim=(1, 3))


def estimate(cur: torch.Tensor, ref: torch.Tensor, block: int, search: int, lam: int) -> torch.Tensor:
    """The encoder's motion field (nby, nbx, 2) int64, half-pel units, |component| <= 2 * search + 1,
    for predicting ``cur`` from ``ref`` (both (3, H, W) 8-bit integers; module docstring)."""
    h, w = cur.shape[-2:]
    yc, yr = luma(cur), luma(ref)
    nby, nbx = blocks_of(h, w, block)
    # coarse: quarter resolution (4x4 sums), blocks of block/4, full search of +-ceil(search/4)
    s = 4 if block % 4 == 0 and min(h, w) >= 4 * block else 1
    hc, wc = h // s, w // s
    cc = yc[: hc * s, : wc * s].reshape(hc, s, wc, s).sum(dim=(1, 3))
    rc = yr[: hc * s, : wc * s].reshape(hc, s, wc, s).sum(dim=(1, 3))
    rr = math.ceil(search / s)
    rpad = F.pad(rc[None, None].double(), (rr, rr, rr, rr), mode="replicate")[0, 0].long()
    bc = block // s
    best = torch.full((nby, nbx), torch.iinfo(torch.long).max, dtype=torch.long)
    mv = torch.zeros(nby, nbx, 2, dtype=torch.long)
    for dy in range(-rr, rr + 1):
        for dx in range(-rr, rr + 1):
            shifted = rpad[rr + dy : rr + dy + hc, rr + dx : rr + dx + wc]
            sad = _block_sad(cc, shifted, bc)
            cost = F.pad(sad, (0, nbx - sad.shape[1], 0, nby - sad.shape[0]), value=0)
            cost = cost + lam * (_eg_bits(2 * s * dy) + _eg_bits(2 * s * dx))
            better = cost < best
            best = torch.where(better, cost, best)
            mv[better] = torch.tensor([2 * s * dy, 2 * s * dx])
    limit = 2 * search + 1
    mv.clamp_(-2 * search, 2 * search)
    pred = median_predictor(mv)
    grid = half_pel_grid(yr[None])
    # refine at full resolution around the coarse vector (a full-resolution search needs none),
    # then the half-pel neighbours
    for radius, step in ((2, 2), (1, 1)) if s > 1 else ((1, 1),):
        base, best = mv.clone(), None
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                cand = (base + torch.tensor([step * dy, step * dx])).clamp_(-limit, limit)
                sad = _block_sad(yc, compensate(grid, cand, block)[0], block)
                cost = sad + lam * (_eg_len(cand - pred).sum(-1))
                if best is None:
                    best, mv = cost, cand
                else:
                    better = cost < best
                    best = torch.where(better, cost, best)
                    mv = torch.where(better[..., None], cand, mv)
    return mv
