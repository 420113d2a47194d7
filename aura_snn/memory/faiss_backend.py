"""FAISS ``IndexIVFFlat`` behind the interface of :class:`~aura_snn.memory.ivf.IVFIndex`.

Selected with ``EpisodicMemory(..., backend="faiss")``; needs the ``peers`` extra
(``faiss-cpu``), imported only when this backend is used. The metric maps to FAISS as
``cosine`` -> inner product on unit vectors (spherical k-means), ``ip`` -> inner
product, ``l2`` -> squared L2 distance (returned negated, so scores stay "higher is
better"). FAISS works in float32 on the CPU: keys and queries are converted, results
come back on the store's device in the store's dtype. Drift and rebuild rules are the
same as for :class:`~aura_snn.memory.ivf.IVFIndex`. FAISS keeps its own copy of the
keys (the store keeps another); its k-means uses FAISS's own seeded sampling.

Store files hold the index twice: FAISS's own bytes (``faiss.index``) and plain tensors
(centroids, list sizes, ids in list order). Loading a store rebuilds the index from the
plain tensors and the store's keys (:meth:`FaissIVFIndex.restore`), because FAISS's bytes
are protected only by CRCs that anyone editing the file can recompute, and FAISS parses
them in C++; ``trusted=True`` (:meth:`~aura_snn.memory.store.EpisodicMemory.load`) reads
the bytes instead, for files you wrote yourself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._checks import check_choice, check_int, check_positive, require
from ..errors import InputValueError, ParameterError
from ._idtable import IdTable
from ._similarity import METRICS
from .ivf import check_new_ids, default_nlist, drift_reason


def faiss_module() -> Any:
    """Import ``faiss`` or raise :class:`~aura_snn.errors.MissingExtraError` naming ``peers``."""
    return require("faiss", "peers")


def _f32(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


class FaissIVFIndex:
    """``faiss.IndexIVFFlat`` with the methods the store calls on an IVF index.

    Parameters are those of :class:`~aura_snn.memory.ivf.IVFIndex` (``dtype`` is the
    dtype of returned scores; FAISS itself computes in float32).
    """

    def __init__(self, dim: int, *, metric: str = "cosine", nlist: int | None = None,
                 nprobe: int = 8, kmeans_iters: int = 10, seed: int = 0,
                 train_points_per_list: int = 64, rebuild_growth: float = 2.0,
                 rebuild_imbalance: float = 2.0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        self.faiss = faiss_module()
        self.dim = check_int("dim", dim, minimum=1)
        self.metric = check_choice("metric", metric, METRICS)
        self.nlist_param = None if nlist is None else check_int("nlist", nlist, minimum=1)
        self.nprobe = check_int("nprobe", nprobe, minimum=1)
        self.kmeans_iters = check_int("kmeans_iters", kmeans_iters, minimum=1)
        self.seed = int(seed)
        self.train_points_per_list = check_int("train_points_per_list", train_points_per_list, 1)
        check_positive("rebuild_growth", rebuild_growth)
        check_positive("rebuild_imbalance", rebuild_imbalance)
        self.rebuild_growth = float(rebuild_growth)
        self.rebuild_imbalance = float(rebuild_imbalance)
        if self.rebuild_growth <= 1 or self.rebuild_imbalance <= 1:
            raise ParameterError("rebuild_growth and rebuild_imbalance must be > 1, got "
                                 f"{rebuild_growth!r} and {rebuild_imbalance!r}")
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.index: Any = None
        self._table = IdTable()
        self.trained_size = 0
        self.trained_imbalance = 1.0

    @property
    def is_trained(self) -> bool:
        return self.index is not None and bool(self.index.is_trained)

    @property
    def nlist(self) -> int:
        return 0 if self.index is None else int(self.index.nlist)

    @property
    def ntotal(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    @property
    def centroids(self) -> torch.Tensor | None:
        if not self.is_trained:
            return None
        c = self.index.quantizer.reconstruct_n(0, self.nlist)
        return torch.from_numpy(c).to(self.device, self.dtype)

    def _new(self, nlist: int) -> Any:
        f = self.faiss
        if self.metric == "l2":
            quantizer, fm = f.IndexFlatL2(self.dim), f.METRIC_L2
        else:
            quantizer, fm = f.IndexFlatIP(self.dim), f.METRIC_INNER_PRODUCT
        index = f.IndexIVFFlat(quantizer, self.dim, nlist, fm)  # keeps quantizer referenced
        index.cp.niter = self.kmeans_iters
        index.cp.seed = self.seed
        index.cp.spherical = self.metric == "cosine"
        index.cp.max_points_per_centroid = self.train_points_per_list
        index.cp.min_points_per_centroid = 1
        return index

    def train(self, keys: torch.Tensor, centroids: torch.Tensor | None = None) -> None:
        """Fit FAISS's k-means on ``keys``, or adopt ``centroids [nlist, dim]`` if given."""
        if centroids is not None:
            c = _f32(centroids)
            self.index = self._new(c.shape[0])
            self.index.quantizer.add(c)
            self.index.is_trained = True
        else:
            n = keys.shape[0]
            nlist = self.nlist_param if self.nlist_param is not None else default_nlist(n)
            if n < nlist:
                raise ParameterError(f"training needs at least nlist={nlist} keys, got {n}")
            self.index = self._new(nlist)
            self.index.train(_f32(keys))
        self._table = IdTable()
        self.trained_size, self.trained_imbalance = 0, 1.0

    def add(self, ids: torch.Tensor, keys: torch.Tensor) -> None:
        """Add ``keys`` under ``ids`` (strictly increasing, new)."""
        ids_np = check_new_ids(ids, keys, self.dim, self._table)
        self._table.append(ids_np)
        self.index.add_with_ids(_f32(keys), ids_np)

    def remove(self, ids: torch.Tensor) -> None:
        """Remove ``ids``; raises :class:`InputValueError` (nothing removed) if any is absent."""
        ids_np = np.unique(ids.detach().cpu().numpy().astype(np.int64))
        rows = self._table.find(ids_np)
        if (rows < 0).any():
            raise InputValueError(f"ids not in the index: {ids_np[rows < 0][:10].tolist()}")
        self.index.remove_ids(self.faiss.IDSelectorBatch(ids_np))
        self._table.kill(rows)
        if self._table.n_dead > max(1024, self._table.n_alive):
            self._table.compact()

    def search(self, queries: torch.Tensor, k: int,
               nprobe: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` ``(scores, ids)`` as in :meth:`IVFIndex.search` (``k`` clamped to
        the keys held: FAISS would allocate ``k`` result slots per query)."""
        k = min(check_int("k", k, minimum=1), self.ntotal)
        if k == 0:
            return (torch.zeros(queries.shape[0], 0, dtype=self.dtype, device=self.device),
                    torch.zeros(queries.shape[0], 0, dtype=torch.long, device=self.device))
        self.index.nprobe = min(self.nprobe if nprobe is None else nprobe, self.nlist)
        dist, ids = self.index.search(_f32(queries), k)
        scores = torch.from_numpy(-dist if self.metric == "l2" else dist)
        ids_t = torch.from_numpy(ids)
        scores = scores.masked_fill(ids_t < 0, float("-inf"))
        return scores.to(self.device, self.dtype), ids_t.to(self.device)

    def list_sizes(self) -> np.ndarray:
        inv = self.index.invlists
        return np.array([inv.list_size(j) for j in range(self.nlist)], dtype=np.int64)

    def imbalance(self) -> float:
        n = self.ntotal
        if n == 0:
            return 1.0
        return float(self.nlist * np.square(self.list_sizes().astype(np.float64)).sum() / n ** 2)

    def rebuild(self, ids: torch.Tensor, keys: torch.Tensor) -> None:
        self.train(keys)
        self.add(ids, keys)
        self.mark_trained()

    def mark_trained(self) -> None:
        self.trained_size, self.trained_imbalance = self.ntotal, self.imbalance()

    def needs_rebuild(self) -> str | None:
        if not self.is_trained or self.trained_size == 0:
            return None
        return drift_reason(self.ntotal, self.trained_size, self.rebuild_growth,
                            self.imbalance(), self.trained_imbalance, self.rebuild_imbalance)

    def nbytes(self) -> int:
        """Keys (float32) and ids in the lists, plus the centroids."""
        return self.ntotal * (4 * self.dim + 8) + self.nlist * 4 * self.dim

    def to(self, device: torch.device | str) -> FaissIVFIndex:
        """FAISS stays on the CPU; results are returned on ``device``."""
        self.device = torch.device(device)
        return self

    def list_order(self) -> tuple[torch.Tensor, np.ndarray]:
        """Ids list by list, in FAISS's order within each list, and the list sizes (for
        persistence: :meth:`restore` rebuilds the very same lists from them)."""
        inv = self.index.invlists
        sizes = self.list_sizes()
        parts = [self.faiss.rev_swig_ptr(inv.get_ids(j), int(n)).copy()
                 for j, n in enumerate(sizes) if n]
        ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return torch.from_numpy(ids), sizes

    def restore(self, centroids: torch.Tensor, sizes: np.ndarray, ids: torch.Tensor,
                keys: torch.Tensor, trained_size: int, trained_imbalance: float) -> None:
        """Rebuild the index from plain data, as :meth:`list_order` described it: the
        quantizer from ``centroids [nlist, dim]``, list ``j`` from the next ``sizes[j]``
        of ``ids`` and their ``keys`` (no reassignment, no FAISS bytes parsed). The result
        is the index that was saved, byte for byte (:meth:`serialize`)."""
        self.train(keys, centroids=centroids)
        ids_np = np.ascontiguousarray(ids.detach().cpu().numpy(), dtype=np.int64)
        codes = _f32(keys)
        inv, start = self.index.invlists, 0
        for j, n in enumerate(np.asarray(sizes, dtype=np.int64).tolist()):
            if n:
                inv.add_entries(j, n, self.faiss.swig_ptr(ids_np[start:start + n]),
                                self.faiss.swig_ptr(codes[start:start + n].view(np.uint8)))
            start += n
        self.index.ntotal = start
        self._table = IdTable()
        self._table.append(np.sort(ids_np))
        self.trained_size, self.trained_imbalance = int(trained_size), float(trained_imbalance)

    def serialize(self) -> np.ndarray:
        """FAISS's own binary form of the index (uint8), for persistence."""
        return self.faiss.serialize_index(self.index)

    def deserialize(self, blob: np.ndarray, ids: np.ndarray, trained_size: int,
                    trained_imbalance: float) -> None:
        """Restore from :meth:`serialize` output; ``ids`` are the ids it holds.

        FAISS parses ``blob`` in C++ with no more checks than its own: only for bytes
        you trust (a store file's ``faiss.index`` is read this way only with
        ``trusted=True``; otherwise the index is rebuilt by :meth:`restore`)."""
        self.index = self.faiss.deserialize_index(np.ascontiguousarray(blob, dtype=np.uint8))
        if int(self.index.ntotal) != ids.size or int(self.index.d) != self.dim:
            raise ValueError(f"FAISS index holds {self.index.ntotal} keys of dimension "
                             f"{self.index.d}, expected {ids.size} of dimension {self.dim}")
        self._table = IdTable()
        self._table.append(np.sort(ids))
        self.trained_size, self.trained_imbalance = int(trained_size), float(trained_imbalance)

    def config(self) -> dict[str, Any]:
        return {"nlist": self.nlist_param, "nprobe": self.nprobe,
                "kmeans_iters": self.kmeans_iters, "seed": self.seed,
                "train_points_per_list": self.train_points_per_list,
                "rebuild_growth": self.rebuild_growth, "rebuild_imbalance": self.rebuild_imbalance,
                "trained_size": self.trained_size, "trained_imbalance": self.trained_imbalance}
