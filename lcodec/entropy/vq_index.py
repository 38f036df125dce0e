"""Codebook indexes as the symbols of an entropy model: a k-means ladder of codebooks and a
causal-context prior over the indexes, with exact integer tables.

The VQ autoencoder (``lcodec.models.vq``) maps an image to code vectors z at 1/16 resolution. This
entropy model quantizes each z to the nearest codeword of one codebook of the ladder (K, K/2, ...,
down to ``min_codewords``: the smaller codebooks are weighted k-means of the largest, so one
transform serves every rate: Mao et al., "Extreme Image Compression using Fine-tuned VQGANs") and
codes the index grid with one of three priors, whichever gives the shorter payload (a one-byte
mode opens the section):

- 0 uniform: log2 K bits per index (the baseline every other mode must beat);
- 1 histogram: one stored table of index frequencies;
- 2 context: a table per context, the context being the coarse classes of the left and upper
  neighbours (each index's class in the ladder's ``context_classes``-codeword codebook; a missing
  neighbour is its own class), so (C + 1)^2 tables. Decoding runs over anti-diagonals: every index
  on one depends only on the one before, so each anti-diagonal is one vectorised decode call.

Every table is integer counts summing to 2**20 (each >= 1), stored in the weights; what the range
coder sees is integers from the stream and these tables only, so decoding the indexes is exact on
every machine. The nearest-codeword search runs in float64 on CPU (ties closer than float64
rounding aside, the same on every machine).
"""
from __future__ import annotations

import lzma
from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch import nn

from lcodec.bitstream.tables import CodingTables
from lcodec.errors import BitstreamError, ModelError
from lcodec.models.walloc import ConfigDict

__all__ = ["VQIndexConfig", "VQIndexModel", "MODES", "ladder_sizes", "context_ids", "CODING_BITS"]

CODING_BITS = 20
MODES = ("uniform", "histogram", "context")
_FAMILY = constriction.stream.model.Categorical(perfect=False)


@dataclass(frozen=True)
class VQIndexConfig(ConfigDict):
    code_dim: int = 32
    codewords: int = 4096  # the largest codebook; the ladder halves it down to min_codewords
    min_codewords: int = 64
    context_classes: int = 8

    def __post_init__(self) -> None:
        k, m, c = self.codewords, self.min_codewords, self.context_classes
        if k & (k - 1) or m & (m - 1) or not 2 <= m <= k or not 2 <= c <= m or k > 1 << 16:
            raise ModelError(f"codebook sizes must be powers of two with 2 <= classes <= min <= codewords "
                             f"<= 65536, got {self}")


def ladder_sizes(cfg: VQIndexConfig) -> list[int]:
    """Codebook sizes from the smallest (quality 1) to the largest."""
    out, k = [], cfg.min_codewords
    while k <= cfg.codewords:
        out.append(k)
        k *= 2
    return out


def context_ids(idx: torch.Tensor, classes: torch.Tensor, c: int) -> torch.Tensor:
    """Index grids (B, h, w) -> context ids (B, h, w): (C + 1) * class(left) + class(up), class C where
    the neighbour is outside the grid."""
    cls = classes[idx]
    left = torch.full_like(cls, c)
    up = torch.full_like(cls, c)
    left[..., 1:] = cls[..., :-1]
    up[..., 1:, :] = cls[..., :-1, :]
    return (c + 1) * left + up


def _probabilities(counts: np.ndarray) -> np.ndarray:
    return np.ldexp(counts.astype(np.float64), -CODING_BITS)


def _pack(counts: np.ndarray) -> bytes:
    return lzma.compress(np.ascontiguousarray(counts, dtype="<i4").tobytes(), preset=9)


def _unpack(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.frombuffer(lzma.decompress(blob), dtype="<i4").astype(np.int64)
    if arr.size != int(np.prod(shape)):
        raise ModelError(f"stored table of {arr.size} entries, expected {shape}")
    return arr.reshape(shape)


class VQIndexModel(nn.Module):
    """Nearest-codeword quantization at one ladder level and index coding (module docstring).

    ``level`` picks the codebook (0 = the smallest). Buffers ``codebook_{K}`` (K, D) hold every
    level's codewords; ``classes_{K}`` (K,) each codeword's context class; the integer tables live
    in ``tables`` (set by ``set_tables``, stored by ``state_entries``)."""

    downsample = 1
    side_sections = 0
    per_item_rates = False
    embedded = False

    def __init__(self, cfg: VQIndexConfig, level: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.sizes = ladder_sizes(cfg)
        if not 0 <= level < len(self.sizes):
            raise ModelError(f"ladder level {level} outside 0..{len(self.sizes) - 1}")
        self.level = level
        self.size = self.sizes[level]
        for k in self.sizes:
            self.register_buffer(f"codebook_{k}", torch.zeros(k, cfg.code_dim))
            self.register_buffer(f"classes_{k}", torch.zeros(k, dtype=torch.int64))
        # per level: {"histogram": (1, K) counts, "context": ((C+1)^2, K) counts}
        self.tables: dict[int, dict[str, np.ndarray]] = {}

    # --------------------------------------------------------------- codebooks
    def codebook(self, k: int | None = None) -> torch.Tensor:
        return getattr(self, f"codebook_{self.size if k is None else k}")

    def classes(self, k: int | None = None) -> torch.Tensor:
        return getattr(self, f"classes_{self.size if k is None else k}")

    @torch.no_grad()
    def indexes(self, z64: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, D, h, w) -> nearest codeword indexes (B, h, w), in float64 on CPU."""
        b, d, h, w = z64.shape
        if d != self.cfg.code_dim:
            raise ModelError(f"expected {self.cfg.code_dim}-dimensional code vectors, got {d}")
        flat = z64.detach().cpu().double().permute(0, 2, 3, 1).reshape(-1, d)
        book = self.codebook().double()
        score = 0.5 * (book * book).sum(1) - flat @ book.T
        return torch.argmin(score, dim=1).reshape(b, h, w)

    def vectors(self, idx: torch.Tensor) -> torch.Tensor:
        """Index grids (B, h, w) -> code vectors (B, D, h, w), float32."""
        return self.codebook().float()[idx].permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor, rates: torch.Tensor | None = None):
        """Straight-through quantization to this level's codebook; bits of the uniform code."""
        idx = self.indexes(z)
        q = self.vectors(idx).to(z.device)
        return z + (q - z).detach(), {"y": torch.full((z.shape[0],), float(idx[0].numel() * np.log2(self.size)),
                                                       device=z.device)}

    def num_sections(self, rate: int) -> int:
        return 1

    # ------------------------------------------------------------------ tables
    def set_tables(self, k: int, histogram: np.ndarray, context: np.ndarray) -> None:
        c = self.cfg.context_classes
        for name, arr, rows in (("histogram", histogram, 1), ("context", context, (c + 1) ** 2)):
            arr = np.asarray(arr, dtype=np.int64)
            if arr.shape != (rows, k) or (arr < 1).any() or (arr.sum(1) != 1 << CODING_BITS).any():
                raise ModelError(f"{name} table for K={k} must be ({rows}, {k}) counts >= 1 summing to 2**{CODING_BITS}")
        self.tables[k] = {"histogram": np.asarray(histogram, np.int64), "context": np.asarray(context, np.int64)}

    def _require(self) -> dict[str, np.ndarray]:
        if self.size not in self.tables:
            raise ModelError(f"no index tables for the {self.size}-codeword codebook; load the shipped weights")
        return self.tables[self.size]

    def export(self) -> None:
        self._require()

    def table_sets(self) -> list[CodingTables]:
        """Every level's tables as coding-table sets (what the weights hash covers)."""
        out = []
        for k in self.sizes:
            t = self.tables.get(k)
            if t is not None:
                rows = np.concatenate([t["histogram"], t["context"]])
                out.append(CodingTables(CODING_BITS, rows, np.zeros(len(rows)), np.full(len(rows), k)))
        if not out:
            raise ModelError("no index tables; load the shipped weights")
        return out

    def state_entries(self) -> dict[str, object]:
        return {"vq_index_config": self.cfg.to_dict(),
                "vq_tables": {str(k): {n: _pack(a) for n, a in t.items()} for k, t in self.tables.items()}}

    def load_entries(self, state: dict[str, object]) -> None:
        cfg = VQIndexConfig.from_dict(dict(state["vq_index_config"]))
        if cfg != self.cfg:
            raise ModelError(f"weights were fitted for {cfg}, not {self.cfg}")
        c = self.cfg.context_classes
        for key, t in dict(state["vq_tables"]).items():
            k = int(key)
            self.set_tables(k, _unpack(t["histogram"], (1, k)), _unpack(t["context"], ((c + 1) ** 2, k)))

    # ------------------------------------------------------------------ coding
    def _grid(self, idx: torch.Tensor):
        """Anti-diagonals of an (h, w) grid: list of (rows, cols) arrays, rows increasing."""
        h, w = idx.shape[-2:]
        out = []
        for d in range(h + w - 1):
            rows = np.arange(max(0, d - w + 1), min(h, d + 1))
            out.append((rows, d - rows))
        return out

    def _models(self, mode: int):
        """A fixed constriction model for modes 0 and 1."""
        if mode == 0:
            return constriction.stream.model.Uniform(self.size)
        return constriction.stream.model.Categorical(_probabilities(self._require()["histogram"][0]), perfect=False)

    def _payload(self, idx: torch.Tensor, mode: int) -> bytes:
        enc = constriction.stream.queue.RangeEncoder()
        if mode < 2:
            enc.encode(idx.reshape(-1).numpy().astype(np.int32), self._models(mode))
        else:  # anti-diagonal by anti-diagonal, the decoder's order (memory: one diagonal's tables)
            ctx = context_ids(idx, self.classes(), self.cfg.context_classes).numpy()
            table = _probabilities(self._require()["context"])
            grid = idx.numpy()
            for b in range(idx.shape[0]):
                for r, c in self._grid(idx):
                    enc.encode(grid[b][r, c].astype(np.int32), _FAMILY, table[ctx[b][r, c]])
        return enc.get_compressed().astype("<u4").tobytes()

    def encode(self, z64: torch.Tensor, rate: int, carried: int, write: bool = True):
        """Code vectors -> ([section], z_hat): the mode byte, then the shortest of the three payloads."""
        idx = self.indexes(z64)
        z_hat = self.vectors(idx).double()
        if not write:
            return [], z_hat
        payloads = [self._payload(idx, m) for m in range(len(MODES))]
        mode = int(np.argmin([len(p) for p in payloads]))
        return [bytes([mode]) + payloads[mode]], z_hat

    def encode_indexes(self, idx: torch.Tensor, mode: int) -> bytes:
        """Index grids (B, h, w) -> the payload of one mode (benchmarks compare the three)."""
        return self._payload(idx.cpu().long(), mode)

    def decode_indexes(self, section: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
        """A section -> index grids (B, h, w); raises BitstreamError on damaged data."""
        if len(section) < 1 or section[0] >= len(MODES) or (len(section) - 1) % 4:
            raise BitstreamError("damaged VQ index section (bad mode byte or length)")
        mode = section[0]
        b, h, w = shape
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(section[1:], dtype="<u4").astype(np.uint32))
        try:
            if mode < 2:
                flat = dec.decode(self._models(mode), b * h * w)
                return torch.from_numpy(flat.astype(np.int64)).reshape(b, h, w)
            table = _probabilities(self._require()["context"])
            classes = self.classes().numpy()
            c = self.cfg.context_classes
            out = np.zeros((b, h, w), dtype=np.int64)
            diagonals = self._grid(torch.zeros(h, w))
            for i in range(b):
                cls = np.full((h + 1, w + 1), c, dtype=np.int64)  # padded: row/col 0 are "outside"
                for r, col in diagonals:
                    ctx = (c + 1) * cls[r + 1, col] + cls[r, col + 1]
                    got = dec.decode(_FAMILY, table[ctx]).astype(np.int64)
                    out[i, r, col] = got
                    cls[r + 1, col + 1] = classes[got]
            return torch.from_numpy(out)
        except (BitstreamError, ModelError):  # missing tables are the model's problem, not the stream's
            raise
        except Exception as exc:  # constriction reports invalid data as AssertionError/ValueError
            raise BitstreamError(f"damaged VQ index section: {exc}") from None

    def decode(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
               what: str = "image") -> torch.Tensor:
        b, _, h, w = shape
        idx = self.decode_indexes(sections[0], (b, h, w))
        return self.vectors(idx).double()

    def estimate_bits(self, z64: torch.Tensor, rate: int, carried: int) -> dict[str, float]:
        sections, _ = self.encode(z64, rate, carried)
        return {"y": 8.0 * len(sections[0])}
