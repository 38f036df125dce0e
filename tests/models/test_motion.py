"""Block motion (lcodec.models.motion): the half-pel grid, block and overlapped compensation and
the median predictor against their definitions, written out independently with loops; the
estimator against known motion."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lcodec.models.motion import (blocks_of, compensate, compensate_overlapped, estimate, half_pel_grid, luma,
                                  median_predictor)


def _picture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed))


def _texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random RGB texture, 8-bit: a block search can lock on to it."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, h // 4 + 2, w // 4 + 2, generator=g), scale_factor=4, mode="bicubic")
    return (x[0, :, :h, :w].clamp(0, 1) * 255).round().long()


def _sample(ref: np.ndarray, y2: int, x2: int) -> np.ndarray:
    """The reference at half-pel position (y2 / 2, x2 / 2), clamped to the picture: H.264's
    rounded bilinear rule, written per position."""
    h, w = ref.shape[1:]
    y2, x2 = min(max(y2, 0), 2 * h - 2), min(max(x2, 0), 2 * w - 2)
    y0, x0 = y2 // 2, x2 // 2
    if y2 % 2 == 0 and x2 % 2 == 0:
        return ref[:, y0, x0]
    if y2 % 2 == 0:
        return (ref[:, y0, x0] + ref[:, y0, x0 + 1] + 1) // 2
    if x2 % 2 == 0:
        return (ref[:, y0, x0] + ref[:, y0 + 1, x0] + 1) // 2
    return (ref[:, y0, x0] + ref[:, y0, x0 + 1] + ref[:, y0 + 1, x0] + ref[:, y0 + 1, x0 + 1] + 2) // 4


def test_half_pel_grid_is_the_rounded_bilinear_rule():
    ref = _picture(5, 7)
    grid = half_pel_grid(ref).numpy()
    r = ref.numpy()
    assert grid.shape == (3, 9, 13)
    for y2 in range(9):
        for x2 in range(13):
            assert (grid[:, y2, x2] == _sample(r, y2, x2)).all(), (y2, x2)


def test_block_compensation_reads_each_block_at_its_vector_with_the_border_repeated():
    ref, block = _picture(13, 18, 1), 4
    nby, nbx = blocks_of(13, 18, block)
    mv = torch.randint(-9, 10, (nby, nbx, 2), generator=torch.Generator().manual_seed(2))
    got = compensate(half_pel_grid(ref), mv, block).numpy()
    r = ref.numpy()
    for y in range(13):
        for x in range(18):
            dy, dx = mv[y // block, x // block].tolist()
            assert (got[:, y, x] == _sample(r, 2 * y + dy, 2 * x + dx)).all(), (y, x)


def test_a_whole_pixel_vector_is_a_shift_with_replicated_borders():
    ref = _picture(16, 24, 3)
    mv = torch.tensor([6, -4]).expand(2, 3, 2)  # 3 pixels down, 2 left, blocks of 8
    want = F.pad(ref[None].double(), (4, 4, 4, 4), mode="replicate")[0].long()[:, 4 + 3 : 4 + 3 + 16, 4 - 2 : 4 - 2 + 24]
    assert torch.equal(compensate(half_pel_grid(ref), mv, 8), want)


def test_overlapped_compensation_is_the_rounded_bilinear_blend_of_the_four_nearest_blocks():
    """Each pixel blends the predictions of the blocks whose centres surround it (block indices
    clamped at the picture's edge), weighted by (2B - f)(2B - g), f(2B - g), ... over 4 B**2."""
    ref, block = _picture(14, 21, 4), 4
    nby, nbx = blocks_of(14, 21, block)
    mv = torch.randint(-7, 8, (nby, nbx, 2), generator=torch.Generator().manual_seed(5))
    got = compensate_overlapped(half_pel_grid(ref), mv, block).numpy()
    r = ref.numpy()
    for y in range(14):
        for x in range(21):
            cy, cx = (y + 0.5) / block - 0.5, (x + 0.5) / block - 0.5  # position in block-centre units
            i0, j0 = math.floor(cy), math.floor(cx)
            fy, fx = cy - i0, cx - j0
            acc = np.zeros(3)
            for i, wy in ((i0, 1 - fy), (i0 + 1, fy)):
                for j, wx in ((j0, 1 - fx), (j0 + 1, fx)):
                    dy, dx = mv[min(max(i, 0), nby - 1), min(max(j, 0), nbx - 1)].tolist()
                    acc += wy * wx * _sample(r, 2 * y + dy, 2 * x + dx)
            assert (got[:, y, x] == np.floor(acc + 0.5)).all(), (y, x, got[:, y, x], acc)


def test_overlapped_compensation_of_a_uniform_field_is_block_compensation():
    ref = _picture(20, 30, 6)
    mv = torch.tensor([3, -5]).expand(*blocks_of(20, 30, 8), 2)
    grid = half_pel_grid(ref)
    assert torch.equal(compensate_overlapped(grid, mv, 8), compensate(grid, mv, 8))


def test_median_predictor_follows_its_definition():
    mv = torch.randint(-20, 21, (5, 6, 2), generator=torch.Generator().manual_seed(7))
    got = median_predictor(mv)
    m = mv.tolist()
    for i in range(5):
        for j in range(6):
            a = m[i][j - 1] if j else [0, 0]
            if i == 0:
                want = a
            else:
                b = m[i - 1][j]
                c = m[i - 1][j + 1] if j + 1 < 6 else m[i - 1][j - 1]
                want = [sorted((a[k], b[k], c[k]))[1] for k in range(2)]
            assert got[i, j].tolist() == want, (i, j)


def test_luma_is_bt601_in_8_bit_fixed_point():
    x = _picture(4, 5, 8)
    want = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).double()
    assert float((luma(x) - want).abs().max()) <= 1.0
    assert luma(torch.full((3, 2, 2), 255)).eq(255).all()


@pytest.mark.parametrize("shift", [(3, -5), (-7, 2)])
def test_estimate_finds_a_global_shift(shift):
    """cur = ref moved by whole pixels: away from the borders every block's vector is the shift."""
    ref = _texture(144, 192, 9)
    dy, dx = shift
    cur = torch.roll(ref, shifts=(dy, dx), dims=(1, 2))  # cur[y] = ref[y - dy]: vector -shift
    mv = estimate(cur, ref, block=32, search=16, lam=4)
    inner = mv[1:-1, 1:-1].reshape(-1, 2)
    assert (inner == torch.tensor([-2 * dy, -2 * dx])).all(), mv[..., 0]


def test_estimate_finds_a_half_pixel_shift():
    """cur = the reference's half-pel grid read half a pixel down and right: vectors (1, 1)."""
    ref = _texture(128, 160, 10)
    cur = half_pel_grid(ref)[:, 1::2, 1::2]  # (H - 1, W - 1)
    ref = ref[:, :-1, :-1]
    mv = estimate(cur, ref, block=32, search=8, lam=4)
    assert (mv[:-1, :-1].reshape(-1, 2) == torch.tensor([1, 1])).all(), mv


def test_estimate_stays_in_range_and_is_repeatable():
    ref, cur = _picture(40, 50, 11), _picture(40, 50, 12)
    a = estimate(cur, ref, block=16, search=5, lam=8)
    assert a.shape == (3, 4, 2) and int(a.abs().max()) <= 11
    assert torch.equal(a, estimate(cur, ref, block=16, search=5, lam=8))


def test_compensation_refuses_a_field_of_the_wrong_shape():
    grid = half_pel_grid(_picture(10, 10))
    with pytest.raises(ValueError, match="does not tile"):
        compensate_overlapped(grid, torch.zeros(1, 1, 2, dtype=torch.long), 4)
