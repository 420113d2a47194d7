"""Cognitive map: a sparse k-nearest-neighbour graph among stored memories.

Node ``i`` is the memory with id ``ids[i]``; it has a directed edge to each of its ``k``
nearest other memories ``j`` with weight ``s(x_i, x_j)``, the store's similarity score.
The neighbours come from the store's index (:meth:`EpisodicMemory.neighbours`), one
batch of memories at a time: ``N`` index queries, never the ``N²`` pairs. With the IVF
index the graph is approximate (exact for ``nprobe = nlist`` or ``backend="flat"``).

The map is a snapshot: later writes and deletes do not change it. Use it for replay
(walk edges from a memory), for "what is near this memory" queries, and as a sparse
adjacency for graph algorithms.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._checks import check_choice, check_int
from ..errors import InputValueError

if TYPE_CHECKING:
    from .store import EpisodicMemory


@dataclass(frozen=True)
class CognitiveMap:
    """kNN graph: ``neighbour_ids[i, :]`` are the nearest memories of ``ids[i]``, best first."""

    ids: torch.Tensor  #: ``[N]`` int64 node ids, increasing
    neighbour_ids: torch.Tensor  #: ``[N, k]`` int64; ``-1`` where fewer than k were found
    scores: torch.Tensor  #: ``[N, k]`` similarity of each edge; ``-inf`` where missing

    @property
    def k(self) -> int:
        return int(self.neighbour_ids.shape[1])

    def _node(self, memory_id: int) -> int:
        i = int(torch.searchsorted(self.ids, torch.tensor([memory_id])))
        if i >= self.ids.numel() or int(self.ids[i]) != memory_id:
            raise InputValueError(f"id {memory_id} is not a node of this map "
                                  f"(allowed: the {self.ids.numel()} ids it was built from)")
        return i

    def neighbours(self, memory_id: int, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids [k], scores [k])`` of the nearest memories of ``memory_id``, best first."""
        k = self.k if k is None else check_int("k", k, minimum=1)
        if k > self.k:
            raise InputValueError(f"k must be <= {self.k} (the map's k), got {k}")
        i = self._node(int(memory_id))
        return self.neighbour_ids[i, :k].clone(), self.scores[i, :k].clone()

    def edges(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Edge list ``(source ids, target ids, scores)``, missing neighbours left out."""
        ok = self.neighbour_ids >= 0
        src = self.ids[:, None].expand_as(self.neighbour_ids)
        return src[ok], self.neighbour_ids[ok], self.scores[ok]

    def adjacency(self, layout: str = "coo", symmetric: bool = False) -> torch.Tensor:
        """Sparse ``[N, N]`` adjacency over node positions (row ``i`` is ``ids[i]``).

        Entry ``(i, j)`` is the score of edge ``i -> j``. ``symmetric=True`` adds the
        reverse edges, keeping the larger score where both exist. ``layout`` is ``"coo"``
        or ``"csr"``.
        """
        check_choice("layout", layout, ("coo", "csr"))
        src, dst, w = self.edges()
        rows = torch.searchsorted(self.ids, src)
        cols = torch.searchsorted(self.ids, dst)
        n = self.ids.numel()
        if symmetric:
            rows, cols = torch.cat([rows, cols]), torch.cat([cols, rows])
            w = torch.cat([w, w])
        # merge duplicate (row, col) pairs by max (coalesce would sum them)
        key = rows * n + cols
        order = torch.argsort(key, stable=True)
        key, w = key[order], w[order]
        uniq, inverse = torch.unique_consecutive(key, return_inverse=True)
        best = torch.full((uniq.numel(),), float("-inf"), dtype=w.dtype)
        best = best.scatter_reduce(0, inverse, w, reduce="amax")
        idx = torch.stack([uniq // n, uniq % n])
        adj = torch.sparse_coo_tensor(idx, best, (n, n), is_coalesced=True,
                                      check_invariants=False)  # sorted, unique by construction
        if layout == "coo":
            return adj
        with warnings.catch_warnings():  # torch flags CSR as beta on every conversion
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return adj.to_sparse_csr()


def build_cognitive_map(memory: EpisodicMemory, k: int = 8, *, nprobe: int | None = None,
                        batch_size: int = 4096, exact: bool = False) -> CognitiveMap:
    """Query the store's index for the ``k`` nearest neighbours of every memory.

    Cost: ``N`` index searches in batches of ``batch_size`` (no ``N²`` pass unless the
    store is unindexed or ``exact=True``). Tensors are returned on the CPU.
    """
    k = check_int("k", k, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    ids = memory.ids
    nbr = np.full((ids.numel(), k), -1, dtype=np.int64)
    sc = torch.full((ids.numel(), k), float("-inf"), dtype=memory.dtype)
    for s in range(0, ids.numel(), batch_size):
        res = memory.neighbours(ids[s:s + batch_size], k, nprobe=nprobe, exact=exact)
        nbr[s:s + batch_size] = res.ids.cpu().numpy()
        sc[s:s + batch_size] = res.scores.cpu()
    return CognitiveMap(ids, torch.from_numpy(nbr), sc)
