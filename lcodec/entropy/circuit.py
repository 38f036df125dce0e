"""Probabilistic circuits for lossless coding: a hidden Chow-Liu tree (HCLT) on CPU in PyTorch.

Liu, Mandt & Van den Broeck, "Lossless Compression with Probabilistic Circuits" (ICLR 2022).
An HCLT over D discrete variables x_1..x_D (pixels, or any symbols with ``values`` outcomes):

- **Structure** (``chow_liu_tree``): the maximum spanning tree of the pairwise mutual information
  of the variables (binned), rooted at its centre. Each variable v gets a hidden variable z_v
  with ``hidden`` states; the hidden variables follow the tree: p(z_root) ``prior``,
  p(z_c | z_parent) ``trans[c]``, and each x_v is emitted by its own z_v, p(x_v | z_v) ``emit[v]``.
  Compiled to a circuit, every tree node is a product unit over its emission and its children's
  sum units (one k x k sum layer per edge): smooth and decomposable, so any marginal is one
  upward pass with the unobserved emissions set to 1.
- **Learning** (``HCLT.em``): full-batch EM in float (upward and downward passes batched over the
  nodes of one tree depth, dense tensor operations), with pseudo-counts: transitions and the
  prior towards uniform, emissions towards the training set's histogram of values.
- **Coding order**: the tree's pre-order (``HCLT.order``). When variable i is coded, every observed
  variable outside i's subtree is known and nothing inside it, so p(z_i | x_<i) is one downward
  message from i's parent and p(x_i | x_<i) = sum_z p(z_i = z | x_<i) emit[i][z, x_i]: every
  conditional the coder needs comes from one upward and one downward pass (``conditionals``), and the
  decoder (``decode``) walks the same order computing each message once (O(D k^2) per item).

**Exactness on every machine** (DESIGN.md, "Determinism"): after ``export`` the parameters are
integer tables (``IntegerHCLT``: every row a pmf of counts summing to 2**16, each count >= 1) and
every coding computation is integer arithmetic carried in float64:

- messages are vectors of positive integers below 2**26, renormalised after every product by an
  exact power-of-two shift chosen from their own maximum (``renorm``): a message's scale carries
  no information a conditional needs, since every conditional is normalised at the end;
- every product of two messages is below 2**52, and every sum-layer output (a message times a
  table whose rows or columns sum to at most k * 2**16) is below 2**53 at every partial sum.
  Integers below 2**53 add and multiply exactly in IEEE float64 *in any order*, so BLAS blocking,
  thread counts, FMA and devices cannot change a result: the matrix products are exact;
- a conditional (integers below 2**48) becomes coding counts summing to 2**20 in int64
  (``quantize``), each count >= 1, remainder on the first largest entry.

The encoder's layered passes and the decoder's sequential walk fold the same factors in the
same order (emission first, then children in increasing node order), so they compute identical
integers; the tests check this, and streams across processes and thread counts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lcodec.bitstream.tables import CodingTables, quantize_pmf
from lcodec.errors import InputError, ModelError
from lcodec.models.walloc import ConfigDict

__all__ = ["HCLTConfig", "HCLT", "IntegerHCLT", "TreeStructure", "chow_liu_tree", "mutual_information",
           "renorm", "quantize", "MESSAGE_BITS", "CODING_BITS", "TABLE_BITS"]

MESSAGE_BITS = 26  # messages are positive integers below 2**26
TABLE_BITS = 16  # every table row sums to 2**16
CODING_BITS = 20  # conditionals are handed to the range coder as counts / 2**20


@dataclass(frozen=True)
class HCLTConfig(ConfigDict):
    """An HCLT's size: ``variables`` symbols of ``values`` outcomes each, ``hidden`` states per node."""

    variables: int = 784
    values: int = 256
    hidden: int = 16
    mi_bins: int = 4  # the values are binned this coarsely to estimate mutual information

    def __post_init__(self) -> None:
        if self.variables < 2 or not 2 <= self.values <= 256 or not 2 <= self.hidden <= 256 or self.mi_bins < 2:
            raise ModelError(f"invalid HCLT config {self}")


# ----------------------------------------------------------------------------- structure
def mutual_information(x: np.ndarray, values: int, bins: int) -> np.ndarray:
    """(D, D) pairwise mutual information (nats) of the columns of integer data ``x`` (N, D), each
    value binned into ``bins`` equal-width classes of 0..values-1."""
    x = np.asarray(x)
    n, d = x.shape
    b = np.minimum(x.astype(np.int64) * bins // values, bins - 1)
    onehot = np.zeros((n, d * bins), dtype=np.float64)
    onehot[np.arange(n)[:, None], np.arange(d)[None, :] * bins + b] = 1.0
    joint = (onehot.T @ onehot + 1e-3) / (n + 1e-3 * bins * bins)  # (D*B, D*B), lightly smoothed
    joint = joint.reshape(d, bins, d, bins).transpose(0, 2, 1, 3)  # (D, D, B, B)
    p = joint.sum(axis=3)  # p_i(a) seen from every j: (D, D, B)
    q = joint.sum(axis=2)  # p_j(b): (D, D, B)
    mi = (joint * (np.log(joint) - np.log(p[..., :, None]) - np.log(q[..., None, :]))).sum(axis=(2, 3))
    np.fill_diagonal(mi, 0.0)
    return np.maximum(mi, 0.0)


def chow_liu_tree(x: np.ndarray, values: int, bins: int = 4) -> np.ndarray:
    """Parent of each variable (-1 at the root) in the maximum-mutual-information spanning tree of
    the columns of ``x`` (N, D), rooted at the tree's centre (least depth)."""
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    mi = mutual_information(x, values, bins)
    d = mi.shape[0]
    # maximum spanning tree = minimum spanning tree of (max + eps - mi); every pair stays an edge
    weights = (mi.max() + 1e-6) - mi
    np.fill_diagonal(weights, 0.0)
    tree = minimum_spanning_tree(weights)
    tree = tree + tree.T
    # centre: the middle node of a longest path (two breadth-first sweeps)
    far = breadth_first_order(tree, 0, directed=False, return_predecessors=False)[-1]
    order, pred = breadth_first_order(tree, far, directed=False, return_predecessors=True)
    path = [int(order[-1])]
    while pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    root = path[len(path) // 2]
    _, pred = breadth_first_order(tree, root, directed=False, return_predecessors=True)
    parent = np.where(pred < 0, -1, pred).astype(np.int64)
    parent[root] = -1
    if (parent < 0).sum() != 1 or len(parent) != d:
        raise ModelError("the mutual-information graph is not connected")
    return parent


class TreeStructure:
    """A rooted tree given by ``parent`` (-1 at the root): depths, the nodes of each depth, each
    node's children in increasing order, and the pre-order (the coding order)."""

    def __init__(self, parent: np.ndarray) -> None:
        parent = np.asarray(parent, dtype=np.int64).reshape(-1)
        d = parent.size
        roots = np.flatnonzero(parent < 0)
        if roots.size != 1 or parent.max() >= d:
            raise ModelError("an HCLT needs a tree: exactly one root and parents in range")
        self.parent = parent
        self.root = int(roots[0])
        self.children: list[list[int]] = [[] for _ in range(d)]
        for v in range(d):
            if parent[v] >= 0:
                self.children[parent[v]].append(v)
        depth = np.full(d, -1, dtype=np.int64)
        depth[self.root] = 0
        order, stack = [], [self.root]
        while stack:  # pre-order, children in increasing order
            v = stack.pop()
            order.append(v)
            for c in reversed(self.children[v]):
                depth[c] = depth[v] + 1
                stack.append(c)
        if len(order) != d:
            raise ModelError("an HCLT needs a tree: some variables are not reachable from the root")
        self.depth = depth
        self.order = np.asarray(order, dtype=np.int64)
        self.levels = [np.flatnonzero(depth == t) for t in range(int(depth.max()) + 1)]
        rank = np.zeros(d, dtype=np.int64)
        for v in range(d):
            for r, c in enumerate(self.children[v]):
                rank[c] = r
        self.rank = rank  # position of each node among its parent's children
        # last node of each subtree in pre-order: when it is coded, the subtree is complete
        pos = np.empty(d, dtype=np.int64)
        pos[self.order] = np.arange(d)
        size = np.ones(d, dtype=np.int64)
        for v in self.order[::-1]:
            if parent[v] >= 0:
                size[parent[v]] += size[v]
        self.position, self.size = pos, size

    def by_rank(self, nodes: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
        """(nodes with at least r + 1 children, their (r+1)-th child)."""
        has = np.array([len(self.children[v]) > r for v in nodes], dtype=bool)
        sel = nodes[has]
        return sel, np.array([self.children[v][r] for v in sel], dtype=np.int64)

    @property
    def max_children(self) -> int:
        return max(len(c) for c in self.children)


# --------------------------------------------------------------------------- float model
class HCLT(torch.nn.Module):
    """A float HCLT for learning (see the module docstring); ``export`` freezes it to ``IntegerHCLT``."""

    def __init__(self, cfg: HCLTConfig, parent: np.ndarray, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        if len(parent) != cfg.variables:
            raise ModelError(f"tree over {len(parent)} variables, config says {cfg.variables}")
        self.tree = TreeStructure(parent)
        k, d, v = cfg.hidden, cfg.variables, cfg.values
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("prior", torch.full((k,), 1.0 / k, dtype=torch.float64))
        t = torch.rand(d, k, k, generator=g, dtype=torch.float64) + 0.5
        self.register_buffer("trans", t / t.sum(-1, keepdim=True))  # trans[c][z_parent, z_c]
        e = torch.rand(d, k, v, generator=g, dtype=torch.float64) + 0.5
        self.register_buffer("emit", e / e.sum(-1, keepdim=True))  # emit[v][z, x]

    @torch.no_grad()
    def init_from_clusters(self, x: torch.Tensor, clusters: int | None = None, iters: int = 20,
                           seed: int = 0) -> None:
        """Start EM from a mixture: k-means of the items ``x`` (N, D) into ``hidden`` clusters, every
        node's hidden state set to its item's cluster, and the tables counted from that (hard)
        assignment (EM from random tables barely moves: the states are exchangeable)."""
        k = self.cfg.hidden if clusters is None else clusters
        data = x.float() / (self.cfg.values - 1)
        g = torch.Generator().manual_seed(seed)
        centres = data[torch.randperm(len(data), generator=g)[:k]].clone()
        for _ in range(iters):
            assign = torch.cdist(data, centres).argmin(1)
            for j in range(k):
                if (assign == j).any():
                    centres[j] = data[assign == j].mean(0)
        self.set_from_states(x, assign[:, None].expand(-1, self.cfg.variables))

    @torch.no_grad()
    def set_from_states(self, x: torch.Tensor, z: torch.Tensor, pseudo: float = 0.5) -> None:
        """Tables counted from data ``x`` and hard hidden states ``z`` (both (N, D)), plus ``pseudo``."""
        d, k, v = self.cfg.variables, self.cfg.hidden, self.cfg.values
        z, x = z.long(), x.long()
        par = torch.from_numpy(self.tree.parent)
        child = torch.nonzero(par >= 0).flatten()
        tc = torch.zeros(d * k * k, dtype=torch.float64)
        tc.index_add_(0, (child[None, :] * k * k + z[:, par[child]] * k + z[:, child]).reshape(-1),
                      torch.ones(z.shape[0] * child.numel(), dtype=torch.float64))
        tc = tc.view(d, k, k) + pseudo
        self.trans.copy_(tc / tc.sum(-1, keepdim=True))
        ec = torch.zeros(d * k * v, dtype=torch.float64)
        ec.index_add_(0, (torch.arange(d)[None, :] * k * v + z * v + x).reshape(-1),
                      torch.ones(x.numel(), dtype=torch.float64))
        self.emit.copy_(self._emission_update(ec.view(d, k, v), x, 1.0, 0.0))
        pr = torch.bincount(z[:, self.tree.root], minlength=k).double() + pseudo
        self.prior.copy_(pr / pr.sum())

    def _emission_update(self, counts: torch.Tensor, x: torch.Tensor, alpha: float, smooth: float) -> torch.Tensor:
        """M-step of the emissions from expected counts (D, k, V): the counts of the *sharp* values
        (global frequency above 4x the median value's) are kept; the other values' counts are
        smoothed over the value axis by a Gaussian of width ``smooth`` (values next to each other
        are about as likely: intensities), then ``alpha`` pseudo-counts per row spread as the
        training histogram."""
        v = self.cfg.values
        hist = torch.bincount(x.reshape(-1).long(), minlength=v).double()
        base = (hist + 1.0) / (hist + 1.0).sum()
        if smooth > 0:
            sharp = hist > 4 * hist.median()
            soft = (~sharp).double()
            r = int(math.ceil(3 * smooth))
            kern = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / smooth) ** 2)
            conv = lambda t: torch.nn.functional.conv1d(t.reshape(-1, 1, v), kern.view(1, 1, -1),  # noqa: E731
                                                        padding=r).reshape(t.shape)
            spread = conv(counts * soft) / conv(soft.expand_as(counts)).clamp_min(1e-12) * soft
            # keep each row's soft mass: the smoothing moves counts between soft values only
            mass, new = (counts * soft).sum(-1, keepdim=True), spread.sum(-1, keepdim=True)
            counts = counts * sharp.double() + spread * (mass / new.clamp_min(1e-12))
        e = counts + alpha * base
        return e / e.sum(-1, keepdim=True)

    # ------------------------------------------------------------------ passes
    def _upward(self, x: torch.Tensor):
        """log lambda (B, D, k): each node's subtree evidence; log m (B, D, k): each node's message to
        its parent (indexed by the parent's state); log-likelihood (B,)."""
        tree = self.tree
        log_emit = torch.log(self.emit).to(torch.float32)  # (D, k, V)
        b = x.shape[0]
        d = self.cfg.variables
        loglam = log_emit.permute(0, 2, 1)[torch.arange(d)[None, :], x.long()]  # (B, D, k)
        logm = torch.zeros_like(loglam)
        trans = self.trans.to(torch.float32)
        parent = torch.from_numpy(tree.parent)
        for nodes_np in reversed(tree.levels[1:]):
            nodes = torch.from_numpy(nodes_np)
            lam = loglam[:, nodes]
            mx = lam.amax(-1, keepdim=True)
            m = torch.log(torch.einsum("bnc,npc->bnp", torch.exp(lam - mx), trans[nodes])) + mx
            logm[:, nodes] = m
            loglam.index_add_(1, parent[nodes], m)
        ll = torch.logsumexp(loglam[:, tree.root] + torch.log(self.prior).to(torch.float32), -1)
        return loglam, logm, ll

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
        """log p(x) in nats, (N,), for integer data (N, D)."""
        return torch.cat([self._upward(x[i:i + chunk])[2] for i in range(0, len(x), chunk)])

    @torch.no_grad()
    def _expected_counts(self, x: torch.Tensor, acc: dict[str, torch.Tensor]) -> float:
        """Accumulate EM's expected counts for a chunk of data into ``acc``; returns sum log p(x)."""
        tree = self.tree
        d, k, v = self.cfg.variables, self.cfg.hidden, self.cfg.values
        loglam, logm, ll = self._upward(x)
        trans = self.trans.to(torch.float32)
        parent = torch.from_numpy(tree.parent)
        logout = torch.empty_like(loglam)
        logout[:, tree.root] = torch.log(self.prior).to(torch.float32)
        for nodes_np in tree.levels[1:]:
            nodes = torch.from_numpy(nodes_np)
            p = parent[nodes]
            a = logout[:, p] + loglam[:, p] - logm[:, nodes]  # (B, n, k_parent)
            amx = a.amax(-1, keepdim=True)
            ea = torch.exp(a - amx)
            t = trans[nodes]
            logout[:, nodes] = torch.log(torch.einsum("bnp,npc->bnc", ea, t)) + amx
            lam = loglam[:, nodes]
            el = torch.exp(lam - lam.amax(-1, keepdim=True))
            z = torch.einsum("bnp,npc,bnc->bn", ea, t, el)
            acc["trans"][nodes] += (torch.einsum("bnp,bnc->npc", ea / z[..., None], el) * t).double()
        post = torch.exp(logout + loglam - ll[:, None, None])  # (B, D, k)
        flat = (torch.arange(d)[None, :] * v + x.long()).reshape(-1)
        acc["emit"].view(d * v, k).index_add_(0, flat, post.reshape(-1, k).double())
        acc["prior"] += post[:, tree.root].sum(0).double()
        return float(ll.double().sum())

    @torch.no_grad()
    def em(self, x: torch.Tensor, steps: int, alpha_trans: float = 0.1, alpha_emit: float = 1.0,
           smooth: float = 0.0, chunk: int = 1000, valid: torch.Tensor | None = None, log=None, progress: bool = False) -> list[dict]:
        """``steps`` full-batch EM steps on integer data ``x`` (N, D). Pseudo-counts: ``alpha_trans``
        per transition entry (towards uniform), ``alpha_emit`` per emission row spread as the
        training histogram of values, ``smooth`` the width of the emissions' smoothing over values
        (``_emission_update``). Returns one record per step (bits per variable on ``x`` and on
        ``valid`` if given); ``log(record)`` is called after each step."""
        from tqdm import tqdm

        d, k, v = self.cfg.variables, self.cfg.hidden, self.cfg.values
        history = []
        for step in tqdm(range(steps), desc="EM", disable=not progress):
            acc = {"trans": torch.zeros(d, k, k, dtype=torch.float64),
                   "emit": torch.zeros(d, v, k, dtype=torch.float64),
                   "prior": torch.zeros(k, dtype=torch.float64)}
            total = sum(self._expected_counts(x[i:i + chunk], acc) for i in range(0, len(x), chunk))
            t = acc["trans"] + alpha_trans
            self.trans.copy_(t / t.sum(-1, keepdim=True))
            self.emit.copy_(self._emission_update(acc["emit"].permute(0, 2, 1), x, alpha_emit, smooth))
            pr = acc["prior"] + alpha_trans
            self.prior.copy_(pr / pr.sum())
            rec = {"step": step + 1, "train_bpd": -total / (len(x) * d * math.log(2))}
            if valid is not None:
                rec["valid_bpd"] = float(-self.log_likelihood(valid).double().mean() / (d * math.log(2)))
            history.append(rec)
            if log is not None:
                log(rec)
        return history

    def export(self) -> "IntegerHCLT":
        """The integer circuit: every distribution quantised to counts summing to 2**16 (>= 1 each)."""
        k, d, v = self.cfg.hidden, self.cfg.variables, self.cfg.values

        def tables(rows: torch.Tensor) -> np.ndarray:
            return np.stack([quantize_pmf(r, TABLE_BITS) for r in rows.reshape(-1, rows.shape[-1]).numpy()])

        return IntegerHCLT(self.cfg, self.tree.parent, tables(self.prior[None]).reshape(k),
                           tables(self.trans).reshape(d, k, k), tables(self.emit).reshape(d, k, v))


# ------------------------------------------------------------------------- exact model
def renorm(m: torch.Tensor) -> torch.Tensor:
    """Positive integer vectors (float64, last dim, values below 2**53) scaled by a power of two so
    that their maximum lies in [2**25, 2**26), rounded down, at least 1: exact on any machine."""
    _, e = torch.frexp(m.amax(-1, keepdim=True))  # max in [2**(e-1), 2**e)
    scale = torch.ldexp(torch.ones_like(m[..., :1]), MESSAGE_BITS - e)
    return torch.floor(m * scale).clamp_(min=1.0)


def quantize(q: torch.Tensor, bits: int = CODING_BITS) -> torch.Tensor:
    """Integer conditionals (float64, last dim, below 2**53) -> int64 counts summing to 2**bits, each
    >= 1: 1 + floor(q' (2**bits - n) / sum q') after an exact shift of q' below 2**40, the remainder
    on the first largest entry."""
    n = q.shape[-1]
    total = q.sum(-1, keepdim=True)
    _, e = torch.frexp(total)
    qi = torch.floor(q * torch.ldexp(torch.ones_like(total), torch.clamp(40 - e, max=0))).to(torch.int64)
    s = qi.sum(-1, keepdim=True).clamp_(min=1)
    counts = 1 + (qi * ((1 << bits) - n)) // s
    rest = (1 << bits) - counts.sum(-1, keepdim=True)
    counts.scatter_add_(-1, qi.argmax(-1, keepdim=True), rest)
    return counts


class IntegerHCLT:
    """An HCLT with integer tables (``prior`` (k,), ``trans`` (D, k, k), ``emit`` (D, k, V), every row
    summing to 2**16 with counts >= 1), evaluated exactly (see the module docstring)."""

    def __init__(self, cfg: HCLTConfig, parent: np.ndarray, prior: np.ndarray, trans: np.ndarray,
                 emit: np.ndarray) -> None:
        k, d, v = cfg.hidden, cfg.variables, cfg.values
        for name, arr, shape in (("prior", prior, (k,)), ("trans", trans, (d, k, k)), ("emit", emit, (d, k, v))):
            arr = np.asarray(arr)
            if arr.shape != shape:
                raise ModelError(f"HCLT {name} table has shape {arr.shape}, expected {shape}")
            if (arr < 1).any() or (arr.sum(-1) != 1 << TABLE_BITS).any():
                raise ModelError(f"HCLT {name} rows must be counts >= 1 summing to 2**{TABLE_BITS}")
        self.cfg = cfg
        self.tree = TreeStructure(parent)
        self.prior = torch.from_numpy(np.asarray(prior, dtype=np.float64))
        self.trans = torch.from_numpy(np.asarray(trans, dtype=np.float64))
        self.trans_t = self.trans.transpose(1, 2).contiguous()  # (D, k_c, k_p)
        self.emit = torch.from_numpy(np.asarray(emit, dtype=np.float64))
        self.emit_t = self.emit.permute(0, 2, 1).contiguous()  # (D, V, k): the emission of value x

    def to(self, device: torch.device | str) -> "IntegerHCLT":
        """The same circuit with its tables on ``device`` (exact there too: see the module docstring)."""
        out = IntegerHCLT.__new__(IntegerHCLT)
        out.cfg, out.tree = self.cfg, self.tree
        for name in ("prior", "trans", "trans_t", "emit", "emit_t"):
            setattr(out, name, getattr(self, name).to(device))
        return out

    # -------------------------------------------------------------- storage
    def tables(self) -> list[CodingTables]:
        """The circuit's parameters as three stacks of integer pmfs (prior, transitions, emissions)."""
        k, v = self.cfg.hidden, self.cfg.values
        out = []
        for arr, n in ((self.prior.reshape(1, k), k), (self.trans.reshape(-1, k), k), (self.emit.reshape(-1, v), v)):
            rows = arr.numpy().astype(np.int64)
            out.append(CodingTables(TABLE_BITS, rows, np.zeros(len(rows), np.int64), np.full(len(rows), n)))
        return out

    @classmethod
    def from_tables(cls, cfg: HCLTConfig, parent: np.ndarray, tables: list[CodingTables]) -> "IntegerHCLT":
        k, d, v = cfg.hidden, cfg.variables, cfg.values
        if len(tables) != 3 or [t.counts.shape for t in tables] != [(1, k), (d * k, k), (d * k, v)]:
            raise ModelError("stored HCLT tables do not fit the configuration")
        return cls(cfg, parent, tables[0].counts.reshape(k), tables[1].counts.reshape(d, k, k),
                   tables[2].counts.reshape(d, k, v))

    # -------------------------------------------------------------- encoder
    def _emission(self, nodes: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B, n, k) emission counts of values x (B, n) at ``nodes``."""
        return self.emit_t[nodes[None, :], x]

    @torch.no_grad()
    def beliefs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, k) integer messages pi_i ~ p(z_i | x before i in coding order), for integer data x
        (B, D): one upward and one downward pass over the tree's depths."""
        tree = self.tree
        b, d = x.shape
        x = x.long()
        k = self.cfg.hidden
        em = self._emission(torch.arange(d, device=x.device), x)  # (B, D, k)
        lam = em.clone()  # fold(emission, children's messages...) per node
        msg = torch.empty_like(em)  # each node's message to its parent, over the parent's states
        for t in range(len(tree.levels) - 1, -1, -1):
            nodes = tree.levels[t]
            for r in range(tree.max_children):
                sel, ch = tree.by_rank(nodes, r)
                if sel.size == 0:
                    break
                sel, ch = torch.from_numpy(sel), torch.from_numpy(ch)
                lam[:, sel] = renorm(lam[:, sel] * msg[:, ch])
            if t > 0:
                n = torch.from_numpy(nodes)
                msg[:, n] = renorm(torch.einsum("bnc,npc->bnp", lam[:, n], self.trans[n]))
        pi = torch.empty_like(em)
        pi[:, tree.root] = renorm(self.prior.expand(b, k))
        for t in range(len(tree.levels) - 1):
            nodes = tree.levels[t]
            n = torch.from_numpy(nodes)
            acc = renorm(pi[:, n] * em[:, n])  # fold(pi, emission, earlier children...)
            for r in range(tree.max_children):
                has = np.array([len(tree.children[v]) > r for v in nodes], dtype=bool)
                if not has.any():
                    break
                sel = nodes[has]
                ch = np.array([tree.children[v][r] for v in sel], dtype=np.int64)
                has = torch.from_numpy(has)
                a = acc[:, has]
                c = torch.from_numpy(ch)
                pi[:, c] = renorm(torch.einsum("bnp,npc->bnc", a, self.trans[c]))
                acc[:, has] = renorm(a * msg[:, c])
        return pi

    def conditionals(self, pi: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """Integer conditionals q (B, n, V) = pi[:, nodes] @ emit[nodes], from ``beliefs``' pi."""
        return torch.einsum("bnk,nkv->bnv", pi[:, nodes], self.emit[nodes])

    # -------------------------------------------------------------- decoder
    @torch.no_grad()
    def walk(self, b: int, code_node):
        """The decoder's walk over the coding order for ``b`` items: ``code_node(i, q)`` gets node i's
        integer conditionals (b, V) and returns its values (b,) (decoded, or the known ones when
        checking). Returns the values (b, D)."""
        tree = self.tree
        d, k = self.cfg.variables, self.cfg.hidden
        x = torch.zeros(b, d, dtype=torch.int64)
        acc: dict[int, torch.Tensor] = {}  # node -> fold(pi, emission, completed children)
        lam: dict[int, torch.Tensor] = {}  # node -> fold(emission, completed children)
        remaining = [len(c) for c in tree.children]
        for i in tree.order.tolist():
            p = int(tree.parent[i])
            if p < 0:
                pi = renorm(self.prior.expand(b, k))
            else:
                pi = renorm(acc[p] @ self.trans[i])
            xi = code_node(i, pi @ self.emit[i])
            x[:, i] = xi
            em = self.emit_t[i][xi]  # (b, k)
            acc[i] = renorm(pi * em)
            lam[i] = em
            v = i
            while remaining[v] == 0 and tree.parent[v] >= 0:  # v's subtree is complete
                up = int(tree.parent[v])
                m = renorm(lam.pop(v) @ self.trans_t[v])
                acc.pop(v)
                acc[up] = renorm(acc[up] * m)
                lam[up] = renorm(lam[up] * m)
                remaining[up] -= 1
                v = up
        return x

    def check_values(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.cfg.variables:
            raise InputError(f"expected (items, {self.cfg.variables}) values, got {tuple(x.shape)}")
        if x.numel() and (x.min() < 0 or x.max() >= self.cfg.values):
            raise InputError(f"values must be integers in 0..{self.cfg.values - 1}")
        return x.long()
