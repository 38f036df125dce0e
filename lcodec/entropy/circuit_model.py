"""A probabilistic circuit as an entropy model (DESIGN.md, "Composition"): lossless coding of
discrete symbols with an HCLT (``lcodec.entropy.circuit``).

The symbols are the transform's integer latents (for the lossless image codec, the 8-bit
pixels), each item flattened to the circuit's D variables in row-major order. One section: the
items in groups of ``GROUP``, each group's symbols in the circuit's coding order (variable by
variable, the group's items within each), every symbol range-coded with its own conditional
p(x_i | x_<i) as integer counts summing to 2**20 (``lcodec.entropy.circuit.quantize``). The
encoder computes all conditionals of a group in one upward and one downward pass; the decoder
walks the coding order and computes each from the symbols decoded so far, the same integers.

Stored with the weights: the tree (a ``parent`` buffer, hashed with the tensors) and the three
integer tables (``table_sets``). Trained by EM, not by gradients (``lcodec.train.circuit``).
"""
from __future__ import annotations

import lzma

import constriction
import numpy as np
import torch
from torch import nn

from lcodec.bitstream.tables import CodingTables
from lcodec.entropy.circuit import CODING_BITS, HCLT, HCLTConfig, IntegerHCLT, quantize
from lcodec.errors import BitstreamError, InputError, ModelError

__all__ = ["CircuitEntropyModel", "GROUP"]

GROUP = 256  # items coded together: bounds the encoder's memory, fixed by the stream format
_NODE_CHUNK = 64  # variables whose conditionals the encoder holds at once
_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _probabilities(counts: torch.Tensor) -> np.ndarray:
    """int64 counts summing to 2**20 -> the exact float64 probabilities constriction is given."""
    return np.ldexp(counts.numpy().astype(np.float64), -CODING_BITS)


class CircuitEntropyModel(nn.Module):
    """Lossless coding of integer symbols in 0..values-1 with an HCLT (see the module docstring)."""

    downsample = 1
    side_sections = 0
    per_item_rates = False

    def __init__(self, cfg: HCLTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("parent", torch.full((cfg.variables,), -1, dtype=torch.int64))
        self.circuit: IntegerHCLT | None = None
        self.float_model: HCLT | None = None

    # ------------------------------------------------------------------ roles
    def forward(self, y: torch.Tensor, rates: torch.Tensor | None = None):
        raise ModelError("a probabilistic circuit is fitted by EM, not by gradients: python -m lcodec.train.circuit")

    def num_sections(self, rate: int) -> int:
        return 1

    def _require(self) -> IntegerHCLT:
        if self.circuit is None:
            raise ModelError("no integer circuit; load shipped weights or call export() after fitting")
        return self.circuit

    def _values(self, y64: torch.Tensor, carried: int) -> torch.Tensor:
        """(B, C, ...) integer-valued latents -> (B, D) int64, checked against the circuit."""
        x = y64[:, :carried].reshape(y64.shape[0], -1)
        if x.shape[1] != self.cfg.variables:
            raise InputError(f"the circuit codes {self.cfg.variables} symbols per item, got {x.shape[1]}")
        if not torch.equal(x, torch.round(x)):
            raise InputError("a lossless entropy model codes integers; the latents are not integer-valued")
        return self._require().check_values(x.long())

    @torch.no_grad()
    def encode(self, y64: torch.Tensor, rate: int, carried: int, write: bool = True):
        x = self._values(y64, carried)
        symbols = x.to(torch.int32).reshape(y64[:, :carried].shape)
        if not write:
            return (), symbols
        circuit = self._require()
        order = torch.from_numpy(circuit.tree.order)
        enc = constriction.stream.queue.RangeEncoder()
        for start in range(0, len(x), GROUP):
            xg = x[start:start + GROUP]
            pi = circuit.beliefs(xg)
            for c in range(0, len(order), _NODE_CHUNK):
                nodes = order[c:c + _NODE_CHUNK]
                counts = quantize(circuit.conditionals(pi, nodes)).transpose(0, 1)  # (n, b, V)
                enc.encode(xg[:, nodes].T.reshape(-1).to(torch.int32).numpy(), _FAMILY,
                           _probabilities(counts.reshape(-1, counts.shape[-1])))
        return (enc.get_compressed().astype("<u4").tobytes(),), symbols

    def decode(self, sections: tuple[bytes, ...], shape: tuple[int, ...], rate: int, carried: int,
               what: str) -> torch.Tensor:
        circuit = self._require()
        sent = (shape[0], carried, *shape[2:])
        if int(np.prod(sent[1:])) != self.cfg.variables:
            raise BitstreamError(f"the stream declares {what}, not {self.cfg.variables} symbols per item")
        data = sections[0]
        if len(data) % 4:
            raise BitstreamError("range-coded section length is not a multiple of 4 bytes")
        if not data:
            raise BitstreamError(f"empty payload for {shape[0]} x {what}")
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))

        def code_node(i: int, q: torch.Tensor) -> torch.Tensor:
            try:
                return torch.from_numpy(dec.decode(_FAMILY, _probabilities(quantize(q))).astype(np.int64))
            except Exception as exc:  # constriction reports invalid data as ValueError/RuntimeError
                raise BitstreamError(f"range-coded data is corrupted: {exc}") from None

        parts = [circuit.walk(min(GROUP, shape[0] - s), code_node) for s in range(0, shape[0], GROUP)]
        return torch.cat(parts).to(torch.int32).reshape(sent)

    @torch.no_grad()
    def estimate_bits(self, y64: torch.Tensor, rate: int, carried: int) -> dict[str, float]:
        """The ideal code length of the symbols under the integer conditionals (the range coder
        adds at most a few bytes per stream)."""
        return {"y": float(self.information(self._values(y64, carried)).sum())}

    @torch.no_grad()
    def information(self, x: torch.Tensor) -> torch.Tensor:
        """Bits per item (N,) of integer data x (N, D) under the integer conditionals."""
        circuit = self._require()
        out = []
        every = torch.arange(self.cfg.variables)
        for start in range(0, len(x), GROUP):
            xg = x[start:start + GROUP].long()
            counts = quantize(circuit.conditionals(circuit.beliefs(xg), every))
            out.append((CODING_BITS - torch.log2(counts.gather(-1, xg[..., None]).squeeze(-1).double())).sum(-1))
        return torch.cat(out)

    # ----------------------------------------------------------------- weights
    def set_circuit(self, model: HCLT) -> None:
        """Adopt a fitted float circuit (``export`` freezes it)."""
        if model.cfg != self.cfg:
            raise ModelError(f"circuit was fitted as {model.cfg}, this model is {self.cfg}")
        object.__setattr__(self, "float_model", model)  # a fitting aid, not part of the weights
        self.parent.copy_(torch.from_numpy(model.tree.parent))

    def export(self) -> None:
        if self.float_model is not None:
            self.circuit = self.float_model.export()
        self._require()

    def table_sets(self) -> list[CodingTables]:
        return self._require().tables()

    def state_entries(self) -> dict[str, object]:
        """The tables packed for shipping: each row's counts as differences of neighbours (the
        smoothed emissions change slowly over values), int32, LZMA-compressed."""
        blob = b"".join(np.diff(t.counts[:, : int(t.lengths.max())], axis=-1, prepend=0).astype("<i4").tobytes()
                        for t in self.table_sets())
        return {"circuit_config": self.cfg.to_dict(),
                "circuit_tables": torch.frombuffer(bytearray(lzma.compress(blob, preset=9)), dtype=torch.uint8)}

    def load_entries(self, state: dict[str, object]) -> None:
        if "circuit_tables" not in state or "circuit_config" not in state:
            raise ModelError("the weights hold no circuit tables")
        cfg = HCLTConfig.from_dict(dict(state["circuit_config"]))
        if cfg != self.cfg:
            raise ModelError(f"weights hold a circuit {cfg}, not {self.cfg}")
        k, d, v = cfg.hidden, cfg.variables, cfg.values
        try:
            raw = lzma.decompress(state["circuit_tables"].numpy().tobytes())
        except lzma.LZMAError as exc:
            raise ModelError(f"stored circuit tables are damaged: {exc}") from None
        sizes = [k, d * k * k, d * k * v]
        if len(raw) != 4 * sum(sizes):
            raise ModelError("stored circuit tables do not fit the configuration")
        arr = np.frombuffer(raw, dtype="<i4").astype(np.int64)
        prior, trans, emit = (np.cumsum(a.reshape(-1, n), axis=-1)
                              for a, n in zip(np.split(arr, np.cumsum(sizes)[:-1]), (k, k, v)))
        parent = state["state_dict"]["parent"].numpy() if "parent" in state.get("state_dict", {}) else None
        if parent is None:
            raise ModelError("the weights hold no circuit structure (parent)")
        self.parent.copy_(torch.as_tensor(parent, dtype=torch.int64))
        self.circuit = IntegerHCLT(cfg, parent, prior.reshape(k), trans.reshape(d, k, k), emit.reshape(d, k, v))
