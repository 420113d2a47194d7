"""The episodic memory store: one-shot writes, similarity search, forgetting, persistence.

Entries
-------
Each memory is a key ``x ∈ R^dim`` (searched), an optional value ``v ∈ R^value_dim``
(returned with search results), an optional JSON metadata dict, an importance
``w ≥ 0`` and the clock time ``a`` of its last access (write or retrieval). Ids are
int64, issued in increasing order and never reused.

Similarity
----------
``metric="cosine"`` (default; keys and queries are L2-normalised on entry and stored
normalised), ``"ip"`` (inner product) or ``"l2"`` (score ``-||q - x||²``); see
:mod:`aura_snn.memory._similarity`. Scores are always "higher is better".

Search backends
---------------
``backend="ivf"`` (default): exact scan until the store holds
``max(train_min, 39 · nlist)`` memories, then the centroid index of
:mod:`aura_snn.memory.ivf` (retrained automatically when its lists drift, or on
:meth:`EpisodicMemory.rebuild`). ``backend="faiss"``: the same with FAISS
``IndexIVFFlat`` (extra ``peers``). ``backend="flat"``: always exact.

Memory and threads
------------------
The store keeps every key once in id order (for exact search, :meth:`get`, rebuilds and
saving) and the index keeps a second, list-ordered copy; both grow geometrically, so
expect about 2.5-3 x the raw key bytes (1,000,000 x 256 float32 keys: about 2.5 GiB).
Small writes and searches are a handful of small tensor ops; on a machine whose cores
are shared with other jobs each multi-threaded op can wait milliseconds for a core, so
``torch.set_num_threads(1)`` made batches of 100 writes ~50x faster there (measured on
2 shared cores). A process that also runs numba's parallel scan (and FAISS) holds
several OpenMP runtimes whose idle threads spin after each parallel region and delay
the others; ``OMP_WAIT_POLICY=PASSIVE`` in the environment (set before torch is
imported) removed a ~70 ms stall per search in that setting. Threads and wait policy
are the caller's choice; this package never changes them.

Clock, retention and forgetting
-------------------------------
The store keeps a clock ``t`` in steps (dimensionless; the caller gives them meaning).
A write stamps its memories with ``a = t`` and then advances ``t`` by
``clock_per_write``; :meth:`~EpisodicMemory.decay` advances it by any amount; a
retrieval re-stamps ``a = t`` (``touch=True``). The retention of memory ``i`` is

    r_i(t) = w_i · exp(-(t - a_i) / tau)            (tau in steps)

compared in log form, ``log w_i - (t - a_i)/tau``, so it never underflows. When
``capacity`` is set and a write leaves more than ``capacity`` memories, the lowest
``r_i`` are forgotten (ties: older ``a_i`` first, then smaller id) — memories from
the write itself included, since they compete on the same score.
:meth:`~EpisodicMemory.decay` also forgets memories whose retention fell below
``min_retention``.

Tensors and files
-----------------
:meth:`~EpisodicMemory.to_tensors` gives the whole store (entries, clock, settings,
trained index) as named CPU tensors plus a JSON ``config`` string, and
:meth:`~EpisodicMemory.from_tensors` rebuilds an identical store from them (searches
return the same ids and scores). :meth:`~EpisodicMemory.save` and
:meth:`~EpisodicMemory.load` put exactly those in one safetensors file
(:mod:`aura_snn.memory.persist`: checksums, format version, atomic write).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .._checks import check_choice, check_int, check_nonnegative, check_positive, check_tensor
from ..errors import InputValueError, ParameterError, ParameterTypeError, ShapeError
from ._idtable import IdTable, grow_capacity
from ._similarity import METRICS, exact_search, prepare_keys
from .ivf import IVFIndex, default_nlist

BACKENDS = ("ivf", "faiss", "flat")


class SearchResult(NamedTuple):
    """Batched search result; rows follow the queries, columns the rank (best first)."""

    ids: torch.Tensor  #: ``[q, k]`` int64; ``-1`` where fewer than ``k`` memories matched
    scores: torch.Tensor  #: ``[q, k]`` similarity (see the metric); ``-inf`` where missing
    values: torch.Tensor | None  #: ``[q, k, value_dim]`` (zeros where missing) or None


class MemoryEntries(NamedTuple):
    """Stored entries returned by :meth:`EpisodicMemory.get`, in the order asked."""

    ids: torch.Tensor  #: ``[n]`` int64
    keys: torch.Tensor  #: ``[n, dim]`` as stored (unit rows for cosine)
    values: torch.Tensor | None  #: ``[n, value_dim]`` or None
    metadata: list[dict[str, Any] | None]  #: JSON round trip of what was written
    importance: torch.Tensor  #: ``[n]`` float64
    last_access: torch.Tensor  #: ``[n]`` float64, clock steps


class EpisodicMemory:
    """Episodic key-value memory with centroid-index search and retention-based forgetting.

    Parameters
    ----------
    dim: key dimension.
    value_dim: value dimension; 0 stores no values (then ``values`` must be None).
    metric: ``"cosine"``, ``"ip"`` or ``"l2"``.
    backend: ``"ivf"``, ``"faiss"`` or ``"flat"`` (see the module docstring).
    capacity: most memories kept (``None``: unbounded).
    tau: retention time constant, steps (> 0).
    min_retention: :meth:`decay` forgets memories with ``r_i`` below it (>= 0; 0: never).
    clock_per_write: steps the clock advances after each write (>= 0).
    nlist: IVF lists (``None``: ``round(sqrt(N))`` at each training).
    nprobe: lists scanned per query by default (>= 1).
    train_min: size at which the index is first trained (see module docstring).
    rebuild_growth, rebuild_imbalance: drift thresholds, see :mod:`aura_snn.memory.ivf`.
    auto_rebuild: retrain the index when its lists drift (a write that triggers it takes
        as long as :meth:`rebuild`); ``False`` trains once and then only on :meth:`rebuild`.
    kmeans_iters, seed: k-means rounds and seed.
    kernel: IVF list scan on CPU, ``"auto"``, ``"numba"`` or ``"torch"``.
    dtype: key dtype (float32 or float64); value_dtype: value dtype (default ``dtype``).
    device: where keys, values and the index live; inputs are moved there.
    """

    def __init__(self, dim: int, *, value_dim: int = 0, metric: str = "cosine",
                 backend: str = "ivf", capacity: int | None = None, tau: float = 1000.0,
                 min_retention: float = 0.0, clock_per_write: float = 1.0,
                 nlist: int | None = None, nprobe: int = 8, train_min: int = 4096,
                 rebuild_growth: float = 2.0, rebuild_imbalance: float = 2.0,
                 auto_rebuild: bool = True,
                 kmeans_iters: int = 10, seed: int = 0, kernel: str = "auto",
                 dtype: torch.dtype = torch.float32, value_dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        self.dim = check_int("dim", dim, minimum=1)
        self.value_dim = check_int("value_dim", value_dim, minimum=0)
        self.metric = check_choice("metric", metric, METRICS)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.capacity = None if capacity is None else check_int("capacity", capacity, minimum=1)
        check_positive("tau", tau, "steps")
        check_nonnegative("min_retention", min_retention)
        check_nonnegative("clock_per_write", clock_per_write)
        self.tau, self.min_retention = float(tau), float(min_retention)
        self.clock_per_write = float(clock_per_write)
        self.nlist = None if nlist is None else check_int("nlist", nlist, minimum=1)
        self.nprobe = check_int("nprobe", nprobe, minimum=1)
        self.train_min = check_int("train_min", train_min, minimum=1)
        self.seed = check_int("seed", seed)
        self.kmeans_iters = check_int("kmeans_iters", kmeans_iters, minimum=0)
        self.kernel = check_choice("kernel", kernel, ("auto", "numba", "torch"))
        if dtype not in (torch.float32, torch.float64):
            raise ParameterError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype
        self.value_dtype = dtype if value_dtype is None else value_dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._index_args = {"rebuild_growth": rebuild_growth,
                            "rebuild_imbalance": rebuild_imbalance}
        IVFIndex(dim, **self._index_args)  # validates the thresholds now, not at first training
        if not isinstance(auto_rebuild, bool):
            raise ParameterTypeError(f"auto_rebuild must be True or False, got {auto_rebuild!r}")
        self.auto_rebuild = auto_rebuild
        if backend == "faiss":
            from .faiss_backend import faiss_module
            faiss_module()  # fail at construction, naming the extra, if faiss is missing
        self.step = 0.0
        self.last_evicted = torch.empty(0, dtype=torch.long)
        self._next_id = 0
        self._table = IdTable()
        self._keys = torch.empty(0, self.dim, dtype=dtype, device=self.device)
        self._values = (torch.empty(0, self.value_dim, dtype=self.value_dtype, device=self.device)
                        if self.value_dim else None)
        self._importance = np.empty(0, dtype=np.float64)
        self._last = np.empty(0, dtype=np.float64)
        self._meta: list[dict[str, Any] | None] = []
        self.index: Any = None  # IVFIndex / FaissIVFIndex once trained

    # ------------------------------------------------------------- basics
    def __len__(self) -> int:
        return self._table.n_alive

    def __contains__(self, memory_id: object) -> bool:
        if isinstance(memory_id, bool) or not isinstance(memory_id, (int, np.integer)):
            return False
        return bool(self._table.find(np.array([memory_id]))[0] >= 0)

    def __repr__(self) -> str:
        return (f"EpisodicMemory(dim={self.dim}, value_dim={self.value_dim}, "
                f"metric={self.metric!r}, backend={self.backend!r}, size={len(self)}, "
                f"indexed={self.index is not None}, device={self.device})")

    @property
    def ids(self) -> torch.Tensor:
        """Live ids, increasing, int64 on the CPU."""
        return torch.from_numpy(self._table.ids[self._table.alive].copy())

    def train_size(self) -> int:
        """Size at which the index is (re)trained: ``max(train_min, 39 · nlist)``."""
        return max(self.train_min, 39 * (self.nlist or 1))

    # --------------------------------------------------------------- write
    def write(self, keys: torch.Tensor, values: torch.Tensor | None = None,
              metadata: Sequence[dict[str, Any] | None] | None = None, *,
              importance: float | torch.Tensor = 1.0) -> torch.Tensor:
        """Store a batch of memories in one shot; return their new ids ``[n]`` (int64, CPU).

        ``keys [n, dim]`` (or ``[dim]``), ``values [n, value_dim]`` (required iff
        ``value_dim > 0``), ``metadata`` a list of ``n`` JSON-serialisable dicts (or
        None entries), ``importance`` a scalar or ``[n]`` tensor, ``>= 0``. Everything
        is validated before anything is stored. If ``capacity`` is exceeded the
        lowest-retention memories are forgotten (their ids in ``last_evicted``), which
        may include memories of this batch.
        """
        x = self._check_keys("keys", keys)
        n = x.shape[0]
        vals = self._check_values(values, n)
        meta = _check_metadata(metadata, n)
        imp = _check_importance(importance, n)
        new_ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        if self.index is not None and n:
            self.index.add(torch.from_numpy(new_ids), x)
        self._next_id += n
        rows = self._table.append(new_ids)
        self._ensure_rows(self._table.n_rows)
        r = torch.from_numpy(rows).to(self.device)
        self._keys[r] = x
        if self._values is not None:
            self._values[r] = vals
        self._importance[rows] = imp
        self._last[rows] = self.step
        self._meta.extend(meta)
        self.last_evicted = torch.empty(0, dtype=torch.long)
        if self.capacity is not None and len(self) > self.capacity:
            self.last_evicted = self.forget(len(self) - self.capacity)
        self.step += self.clock_per_write
        self._maintain_index()
        return torch.from_numpy(new_ids)

    def _ensure_rows(self, n_rows: int) -> None:
        if n_rows <= self._keys.shape[0]:
            return
        cap = grow_capacity(self._keys.shape[0], n_rows)
        self._keys = _grown(self._keys, cap)
        if self._values is not None:
            self._values = _grown(self._values, cap)
        self._importance = np.resize(self._importance, cap)
        self._last = np.resize(self._last, cap)

    # -------------------------------------------------------------- search
    def search(self, queries: torch.Tensor, k: int = 5, *, nprobe: int | None = None,
               exact: bool = False, touch: bool = True) -> SearchResult:
        """The ``k`` most similar memories of each query (best first).

        ``queries [q, dim]`` (or ``[dim]``, giving ``q = 1``). ``nprobe`` overrides the
        lists scanned; ``exact=True`` scans every memory. ``touch=True`` re-stamps the
        retrieved memories' last access with the current clock (recency). Results live
        on the store's device.

        ``k`` is clamped to the number of stored memories (``k=10**9`` returns them all,
        without allocating 10**9 slots); an empty store gives results of shape
        ``[q, 0]``. Fewer hits than ``k`` (lists not probed) are padded with id ``-1``
        and score ``-inf``.
        """
        q = self._check_keys("queries", queries)
        k = min(check_int("k", k, minimum=1), len(self))
        if nprobe is not None:
            nprobe = check_int("nprobe", nprobe, minimum=1)
        if k == 0:
            return self._no_results(q.shape[0])
        if self.index is not None and not exact:
            scores, ids = self.index.search(q, k, nprobe if nprobe is not None else self.nprobe)
            scores, ids = scores.to(self.device), ids.to(self.device)
            rows = self._table.find(ids.cpu().numpy())
        else:
            n = self._table.n_rows
            valid = torch.from_numpy(self._table.alive.copy()).to(self.device)
            scores, rows_t = exact_search(q, self._keys[:n], k, self.metric, valid)
            rows = rows_t.cpu().numpy()
            ids_np = np.full(rows.shape, -1, dtype=np.int64)
            ids_np[rows >= 0] = self._table.ids[rows[rows >= 0]]
            ids = torch.from_numpy(ids_np).to(self.device)
        values = None
        if self._values is not None:
            values = torch.zeros(*rows.shape, self.value_dim, dtype=self.value_dtype,
                                 device=self.device)
            hit = torch.from_numpy(rows >= 0).to(self.device)
            values[hit] = self._values[torch.from_numpy(rows[rows >= 0]).to(self.device)]
        if touch:
            hit = rows[rows >= 0]
            self._last[hit] = self.step
        return SearchResult(ids, scores, values)

    def _no_results(self, n: int) -> SearchResult:
        """Results of ``n`` queries with no memory to return: shape ``[n, 0]``."""
        values = None if self._values is None else torch.zeros(
            n, 0, self.value_dim, dtype=self.value_dtype, device=self.device)
        return SearchResult(torch.zeros(n, 0, dtype=torch.long, device=self.device),
                            torch.zeros(n, 0, dtype=self.dtype, device=self.device), values)

    def neighbours(self, ids: int | torch.Tensor, k: int = 5, *, nprobe: int | None = None,
                   exact: bool = False) -> SearchResult:
        """The ``k`` memories nearest to each stored memory in ``ids`` (itself excluded).

        Uses the index like :meth:`search` (``touch=False``); rows follow ``ids``. ``k``
        is clamped to the other memories stored (``len(self) - 1``).
        """
        ids_t = _as_ids(ids, "ids")
        k = min(check_int("k", k, minimum=1), len(self) - 1)
        rows = self._rows_of(ids_t, "ids")
        keys = self._keys[torch.from_numpy(rows).to(self.device)]
        if k <= 0:
            return self._no_results(ids_t.numel())
        res = self.search(keys, k + 1, nprobe=nprobe, exact=exact, touch=False)
        is_self = res.ids == ids_t.to(self.device)[:, None]
        drop = is_self.clone()
        drop[:, -1] |= ~is_self.any(dim=1)  # self not found: drop the worst instead
        keep = ~drop
        m = ids_t.numel()
        vals = None if res.values is None else res.values[keep].view(m, k, self.value_dim)
        return SearchResult(res.ids[keep].view(m, k), res.scores[keep].view(m, k), vals)

    def cognitive_map(self, k: int = 8, *, nprobe: int | None = None,
                      batch_size: int = 4096) -> Any:
        """Sparse k-nearest-neighbour graph of all memories (see :mod:`.cogmap`)."""
        from .cogmap import build_cognitive_map

        return build_cognitive_map(self, k, nprobe=nprobe, batch_size=batch_size)

    # ------------------------------------------------------------ accessors
    def get(self, ids: int | torch.Tensor) -> MemoryEntries:
        """The stored entries of ``ids`` (raises :class:`InputValueError` for unknown ids)."""
        ids_t = _as_ids(ids, "ids")
        rows = self._rows_of(ids_t, "ids")
        r = torch.from_numpy(rows).to(self.device)
        return MemoryEntries(
            ids_t.clone(), self._keys[r].clone(),
            None if self._values is None else self._values[r].clone(),
            [None if self._meta[i] is None else json.loads(json.dumps(self._meta[i]))
             for i in rows.tolist()],
            torch.from_numpy(self._importance[rows].copy()),
            torch.from_numpy(self._last[rows].copy()))

    def set_importance(self, ids: int | torch.Tensor, importance: float | torch.Tensor) -> None:
        """Set the importance ``w_i`` (>= 0) of ``ids``."""
        ids_t = _as_ids(ids, "ids")
        rows = self._rows_of(ids_t, "ids")
        self._importance[rows] = _check_importance(importance, rows.size)

    def retention(self, ids: int | torch.Tensor | None = None) -> torch.Tensor:
        """``r_i = w_i · exp(-(t - a_i) / tau)`` (float64) of ``ids`` (default: all live ids)."""
        rows = (np.flatnonzero(self._table.alive) if ids is None
                else self._rows_of(_as_ids(ids, "ids"), "ids"))
        return torch.from_numpy(np.exp(self._log_retention(rows)))

    def _log_retention(self, rows: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self._importance[rows]) - (self.step - self._last[rows]) / self.tau

    # --------------------------------------------------- delete and forget
    def delete(self, ids: int | torch.Tensor) -> None:
        """Delete memories by id (a set: repeats ignored); an unknown id raises, deleting none."""
        ids_t = _as_ids(ids, "ids").unique()
        rows = self._rows_of(ids_t, "ids")
        self._delete_rows(rows)
        self._maintain_index()

    def forget(self, n: int | None = None) -> torch.Tensor:
        """Forget the ``n`` lowest-retention memories (default: down to ``capacity``).

        Order: ascending ``log r_i``, then older last access, then smaller id. Returns
        the forgotten ids (int64, CPU), in that order.
        """
        if n is None:
            n = 0 if self.capacity is None else max(0, len(self) - self.capacity)
        n = check_int("n", n, minimum=0)
        if n > len(self):
            raise ParameterError(f"n must be <= the number of memories ({len(self)}), got {n}")
        if n == 0:
            return torch.empty(0, dtype=torch.long)
        rows = np.flatnonzero(self._table.alive)
        order = np.lexsort((self._table.ids[rows], self._last[rows], self._log_retention(rows)))
        victims = rows[order[:n]]
        out = torch.from_numpy(self._table.ids[victims].copy())
        self._delete_rows(victims)
        self._maintain_index()
        return out

    def decay(self, steps: float = 1.0) -> torch.Tensor:
        """Advance the clock by ``steps`` and forget memories with ``r_i < min_retention``.

        Every retention falls by ``exp(-steps / tau)``. Returns the forgotten ids.
        """
        check_nonnegative("steps", steps)
        self.step += float(steps)
        if self.min_retention <= 0 or len(self) == 0:
            return torch.empty(0, dtype=torch.long)
        rows = np.flatnonzero(self._table.alive)
        victims = rows[self._log_retention(rows) < math.log(self.min_retention)]
        out = torch.from_numpy(self._table.ids[victims].copy())
        if victims.size:
            self._delete_rows(victims)
            self._maintain_index()
        return out

    def _delete_rows(self, rows: np.ndarray) -> None:
        if rows.size == 0:
            return
        if self.index is not None:
            self.index.remove(torch.from_numpy(self._table.ids[rows].copy()))
        self._table.kill(rows)
        for i in rows.tolist():
            self._meta[i] = None
        if self._table.n_dead > max(1024, self._table.n_alive):
            self._compact()

    def _compact(self) -> None:
        keep = self._table.compact()
        k = torch.from_numpy(keep).to(self.device)
        self._keys = self._keys[k]
        if self._values is not None:
            self._values = self._values[k]
        self._importance = self._importance[keep]
        self._last = self._last[keep]
        self._meta = [self._meta[i] for i in keep.tolist()]

    # --------------------------------------------------------------- index
    def rebuild(self) -> None:
        """Train the index on the live memories now (at least ``nlist`` of them needed).

        Does nothing for ``backend="flat"``.
        """
        if self.backend == "flat":
            return
        nlist = self.nlist if self.nlist is not None else default_nlist(len(self))
        if len(self) < nlist:
            raise ParameterError(
                f"rebuild needs at least nlist={nlist} memories, the store holds {len(self)}")
        rows = np.flatnonzero(self._table.alive)
        ids = torch.from_numpy(self._table.ids[rows].copy())
        keys = self._keys[torch.from_numpy(rows).to(self.device)]
        # drop the old index first, so the peak holds one arena, not two; if training
        # fails the store is left unindexed, which is slower but still exact
        self.index = None
        index = self._new_index()
        index.rebuild(ids, keys)
        self.index = index

    def _new_index(self) -> Any:
        common = {"metric": self.metric, "nlist": self.nlist, "nprobe": self.nprobe,
                  "seed": self.seed, "kmeans_iters": self.kmeans_iters, **self._index_args}
        if self.backend == "faiss":
            from .faiss_backend import FaissIVFIndex

            return FaissIVFIndex(self.dim, dtype=self.dtype, device=self.device, **common)
        return IVFIndex(self.dim, kernel=self.kernel, dtype=self.dtype, device=self.device,
                        **common)

    def _maintain_index(self) -> None:
        if self.backend == "flat":
            return
        if self.index is None:
            if len(self) >= self.train_size():
                self.rebuild()
        elif self.auto_rebuild and self.index.needs_rebuild() is not None:
            if len(self) >= self.train_size():
                self.rebuild()
            else:
                self.index = None  # small again: exact search is cheap

    def index_stats(self) -> dict[str, Any]:
        """Backend, whether indexed, nlist, imbalance, and size at the last training."""
        out: dict[str, Any] = {"backend": self.backend, "indexed": self.index is not None,
                               "size": len(self)}
        if self.index is not None:
            out.update(nlist=self.index.nlist, imbalance=self.index.imbalance(),
                       trained_size=self.index.trained_size)
        return out

    def nbytes(self) -> dict[str, int]:
        """Bytes held by keys, values and the index (allocated capacity included)."""
        keys = self._keys.numel() * self._keys.element_size()
        vals = 0 if self._values is None else self._values.numel() * self._values.element_size()
        return {"keys": keys, "values": vals,
                "index": 0 if self.index is None else int(self.index.nbytes())}

    def to(self, device: torch.device | str) -> EpisodicMemory:
        """Move keys, values and index to ``device`` (in place); returns ``self``."""
        self.device = torch.device(device)
        self._keys = self._keys.to(self.device)
        if self._values is not None:
            self._values = self._values.to(self.device)
        if self.index is not None:
            self.index.to(self.device)
        return self

    # ---------------------------------------------------- tensor interface
    def to_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The whole store as named CPU tensors and string metadata (what :meth:`save` writes).

        Returns ``(tensors, metadata)``; the tensors are contiguous copies on the CPU
        (changing them does not change the store), ``n`` the live memories in id order:

        =====================  ===========  ==============================================
        tensor                 dtype        content
        =====================  ===========  ==============================================
        ``ids``                int64 [n]    live ids, increasing
        ``keys``               dtype [n,d]  keys as stored (unit rows for cosine)
        ``values``             [n, dv]      values (only when ``value_dim > 0``)
        ``importance``         float64 [n]  importance ``w_i``
        ``last_access``        float64 [n]  clock step of last access ``a_i``
        ``metadata``           uint8        UTF-8 JSON list of n dicts / nulls
        ``ivf.centroids``      [nlist, d]   IVF centroids (backend ivf, once trained)
        ``ivf.list_sizes``     int64        keys per list
        ``ivf.list_ids``       int64 [n]    ids in list order (lists rebuilt row for row)
        ``faiss.index``        uint8        ``faiss.serialize_index`` bytes (backend faiss)
        ``faiss.centroids``    f32 [nl, d]  FAISS's centroids (backend faiss, trained)
        ``faiss.list_sizes``   int64        keys per FAISS list
        ``faiss.list_ids``     int64 [n]    ids in FAISS's list order
        =====================  ===========  ==============================================

        ``metadata["config"]`` is JSON: ``constructor`` (every constructor argument but
        ``device``) and ``state`` (the clock ``step`` in steps, ``next_id``, and the
        index's settings and drift reference, or null when not indexed). The inverse
        is :meth:`from_tensors`; :mod:`.persist` adds only the file format around them.
        """
        rows = np.flatnonzero(self._table.alive)
        r = torch.from_numpy(rows).to(self.device)
        tensors: dict[str, torch.Tensor] = {
            "ids": torch.from_numpy(self._table.ids[rows].copy()),
            "keys": self._keys[r].cpu().contiguous(),
            "importance": torch.from_numpy(self._importance[rows].copy()),
            "last_access": torch.from_numpy(self._last[rows].copy()),
            "metadata": torch.frombuffer(
                bytearray(json.dumps([self._meta[i] for i in rows.tolist()]).encode("utf-8")),
                dtype=torch.uint8),
        }
        if self._values is not None:
            tensors["values"] = self._values[r].cpu().contiguous()
        if isinstance(self.index, IVFIndex):
            list_ids, sizes = self.index.list_order()
            tensors["ivf.centroids"] = self.index.centroids.cpu().clone().contiguous()
            tensors["ivf.list_sizes"] = torch.from_numpy(np.array(sizes, dtype=np.int64))
            tensors["ivf.list_ids"] = list_ids.cpu().clone().contiguous()
        elif self.index is not None:
            tensors["faiss.index"] = torch.from_numpy(
                np.array(self.index.serialize(), dtype=np.uint8))
            list_ids, sizes = self.index.list_order()
            tensors["faiss.centroids"] = torch.from_numpy(np.ascontiguousarray(
                self.index.index.quantizer.reconstruct_n(0, self.index.nlist)))
            tensors["faiss.list_sizes"] = torch.from_numpy(np.array(sizes, dtype=np.int64))
            tensors["faiss.list_ids"] = list_ids.contiguous()
        constructor: dict[str, Any] = {
            "dim": self.dim, "value_dim": self.value_dim, "metric": self.metric,
            "backend": self.backend, "capacity": self.capacity, "tau": self.tau,
            "min_retention": self.min_retention, "clock_per_write": self.clock_per_write,
            "nlist": self.nlist, "nprobe": self.nprobe, "train_min": self.train_min,
            "kmeans_iters": self.kmeans_iters, "seed": self.seed, "kernel": self.kernel,
            "auto_rebuild": self.auto_rebuild,
            "dtype": _dtype_name(self.dtype), "value_dtype": _dtype_name(self.value_dtype),
            **self._index_args,
        }
        state = {"step": self.step, "next_id": self._next_id,
                 "index": None if self.index is None else self.index.config()}
        return tensors, {"config": json.dumps({"constructor": constructor, "state": state})}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str], *,
                     device: torch.device | str | None = None,
                     trusted: bool = False) -> EpisodicMemory:
        """A new store from the output of :meth:`to_tensors`, on ``device`` (default CPU).

        Every tensor is checked (presence, dtype, shape; ids strictly increasing below
        ``next_id``; finite keys, importance and last access; metadata a list of ``n``
        dicts or nulls; IVF lists a permutation of the ids) before the store is built;
        a mismatch raises :class:`~aura_snn.errors.InputValueError` (or
        :class:`~aura_snn.errors.ShapeError`) naming the tensor. The tensors are copied:
        the new store shares no memory with them. The index is restored list for list,
        so searches return exactly what the original store returned.

        A FAISS index is rebuilt from ``faiss.centroids``, ``faiss.list_sizes``,
        ``faiss.list_ids`` and the keys, checked like the IVF ones; only with
        ``trusted=True`` are the ``faiss.index`` bytes handed to FAISS's own parser
        (C++, no checks of ours: for tensors you wrote yourself).
        """
        try:
            cfg = json.loads(metadata["config"])
            ctor = dict(cfg["constructor"])
            state = cfg["state"]
            next_id, step, idx_cfg = int(state["next_id"]), float(state["step"]), state["index"]
        except KeyError as exc:
            raise InputValueError(f"metadata['config'] has no {exc} entry") from None
        except (TypeError, ValueError) as exc:
            raise InputValueError(f"metadata['config'] is not the JSON that to_tensors "
                                  f"writes ({exc})") from None
        ctor["dtype"] = _dtype_from(ctor.get("dtype"))
        ctor["value_dtype"] = _dtype_from(ctor.get("value_dtype"))
        try:
            mem = cls(**ctor, device=device)
        except TypeError as exc:
            raise InputValueError(f"metadata['config'] constructor arguments: {exc}") from None

        bad = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise InputValueError(f"tensors must map names to torch.Tensor; {bad[0]!r} is "
                                  f"{type(tensors[bad[0]]).__name__}")
        t = {k: v.detach().cpu() for k, v in tensors.items()}

        def expect(name: str, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
            if name not in t:
                raise InputValueError(f"tensor {name!r} is missing")
            x = t[name]
            if x.dtype != dtype or tuple(x.shape) != shape:
                raise ShapeError(f"tensor {name!r} has dtype {x.dtype} and shape "
                                 f"{tuple(x.shape)}, expected {dtype} and {shape}")
            return x

        n = t["ids"].shape[0] if "ids" in t and t["ids"].dim() == 1 else 0
        ids_np = expect("ids", torch.long, (n,)).numpy().copy()
        if n and ((np.diff(ids_np) <= 0).any() or ids_np[0] < 0 or ids_np[-1] >= next_id):
            raise InputValueError("tensor 'ids' is not strictly increasing within "
                                  f"[0, next_id={next_id})")
        keys = expect("keys", mem.dtype, (n, mem.dim))
        imp = expect("importance", torch.float64, (n,)).numpy()
        last = expect("last_access", torch.float64, (n,)).numpy()
        if not (np.isfinite(imp).all() and (imp >= 0).all() and np.isfinite(last).all()):
            raise InputValueError("tensors 'importance' (finite, >= 0) or 'last_access' "
                                  "(finite) hold invalid values")
        if not bool(torch.isfinite(keys).all()):
            raise InputValueError("tensor 'keys' holds NaN or infinite values")
        values = (expect("values", mem.value_dtype, (n, mem.value_dim)) if mem.value_dim
                  else None)
        meta_t = t.get("metadata")
        if meta_t is None:
            raise InputValueError("tensor 'metadata' is missing")
        if meta_t.dtype != torch.uint8 or meta_t.dim() != 1:
            raise ShapeError(f"tensor 'metadata' has dtype {meta_t.dtype} and shape "
                             f"{tuple(meta_t.shape)}, expected torch.uint8 and [bytes]")
        try:
            meta = json.loads(bytes(meta_t.numpy()))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputValueError(f"tensor 'metadata' is not UTF-8 JSON ({exc})") from None
        if not isinstance(meta, list) or len(meta) != n or any(
                m is not None and not isinstance(m, dict) for m in meta):
            raise InputValueError(f"tensor 'metadata' is not a list of {n} dicts or nulls")

        mem._table.append(ids_np)
        mem._ensure_rows(n)
        mem._keys[:n] = keys.to(mem.device)
        if values is not None:
            mem._values[:n] = values.to(mem.device)
        mem._importance[:n] = imp
        mem._last[:n] = last
        mem._meta = list(meta)
        mem.step = step
        mem._next_id = next_id
        if idx_cfg is not None:
            if not isinstance(idx_cfg, dict) or not {"trained_size", "trained_imbalance"} <= set(
                    idx_cfg):
                raise InputValueError("metadata['config'] state.index needs trained_size and "
                                      f"trained_imbalance, got {idx_cfg!r}")
            mem.index = mem._restore_index(t, ids_np, keys, idx_cfg, trusted)
        return mem

    def _restore_index(self, t: Mapping[str, torch.Tensor], ids_np: np.ndarray,
                       keys: torch.Tensor, cfg: dict[str, Any], trusted: bool = False) -> Any:
        if not isinstance(trusted, bool):
            raise ParameterTypeError(f"trusted must be True or False, got {trusted!r}")
        index = self._new_index()
        if self.backend == "faiss" and trusted:
            if "faiss.index" not in t:
                raise InputValueError("tensor 'faiss.index' is missing")
            index.deserialize(t["faiss.index"].numpy(), ids_np, cfg["trained_size"],
                              cfg["trained_imbalance"])
            return index
        prefix = "faiss" if self.backend == "faiss" else "ivf"
        cdtype = torch.float32 if self.backend == "faiss" else self.dtype
        names = [f"{prefix}.centroids", f"{prefix}.list_sizes", f"{prefix}.list_ids"]
        for name in names:
            if name not in t:
                raise InputValueError(f"tensor {name!r} is missing")
        cent, sizes, list_ids = (t[name] for name in names)
        if cent.dim() != 2 or cent.shape[0] < 1 or cent.shape[1] != self.dim \
                or cent.dtype != cdtype:
            raise ShapeError(f"tensor {names[0]!r} has shape {tuple(cent.shape)} and dtype "
                             f"{cent.dtype}, expected [nlist >= 1, {self.dim}] and {cdtype}")
        if not bool(torch.isfinite(cent).all()):
            raise InputValueError(f"tensor {names[0]!r} holds NaN or infinite values")
        if (sizes.dtype != torch.long or sizes.shape != (cent.shape[0],)
                or bool((sizes < 0).any()) or int(sizes.sum()) != ids_np.size):
            raise InputValueError(f"tensor {names[1]!r} does not match the centroids and ids")
        if list_ids.dtype != torch.long or list_ids.dim() != 1 \
                or not np.array_equal(np.sort(list_ids.numpy()), ids_np):
            raise InputValueError(f"tensor {names[2]!r} is not a permutation of 'ids'")
        rows = np.searchsorted(ids_np, list_ids.numpy())
        index.restore(cent.clone(), sizes.numpy().copy(), list_ids.clone(),
                      keys[torch.from_numpy(rows)], cfg["trained_size"],
                      cfg["trained_imbalance"])
        return index

    # --------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write the whole store to ``path`` atomically (see :mod:`.persist`)."""
        from .persist import save_memory

        save_memory(self, path)

    def load(self, path: str | Path, *, trusted: bool = False) -> None:
        """Replace this store's contents and settings with the file at ``path``, all or nothing.

        A corrupt, truncated or foreign file raises :class:`~aura_snn.errors.CorruptFileError`
        and leaves this store unchanged. Tensors go to this store's device. A FAISS index
        is rebuilt from the file's plain tensors and keys; ``trusted=True`` lets FAISS
        parse its own bytes from the file instead (only for files you wrote: their
        checksums guard against damage, not against someone editing the file).
        """
        from .persist import load_memory

        loaded = load_memory(path, device=self.device, trusted=trusted)
        self.__dict__.update(loaded.__dict__)

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str | None = None, *,
                  trusted: bool = False) -> EpisodicMemory:
        """A new store read from ``path`` (see :meth:`load`)."""
        from .persist import load_memory

        return load_memory(path, device=device, trusted=trusted)

    # ----------------------------------------------------------- checking
    def _check_keys(self, name: str, x: Any) -> torch.Tensor:
        check_tensor(name, x, ndim=(1, 2), finite=False)
        if not x.is_floating_point():
            raise ParameterTypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.shape[1] != self.dim:
            raise ShapeError(
                f"{name} must have shape [n, {self.dim}] (dim={self.dim}), "
                f"got {tuple(x.shape)}")
        check_tensor(name, x)
        x = x.to(self.device, self.dtype)
        return prepare_keys(x, self.metric, name).contiguous()

    def _check_values(self, values: Any, n: int) -> torch.Tensor | None:
        if self.value_dim == 0:
            if values is not None:
                raise ParameterError(
                    "values must be None: this store was built with value_dim=0 "
                    "(pass value_dim to store values)")
            return None
        if values is None:
            raise ParameterError(f"values is required: this store has value_dim={self.value_dim}")
        check_tensor("values", values, ndim=2)
        if tuple(values.shape) != (n, self.value_dim):
            raise ShapeError(f"values must have shape [{n}, {self.value_dim}] "
                             f"(n keys, value_dim), got {tuple(values.shape)}")
        return values.to(self.device, self.value_dtype)

    def _rows_of(self, ids: torch.Tensor, name: str) -> np.ndarray:
        ids_np = ids.cpu().numpy().astype(np.int64)
        rows = self._table.find(ids_np)
        if (rows < 0).any():
            missing = ids_np[rows < 0]
            raise InputValueError(
                f"{name} contains {missing.size} unknown or deleted id(s): "
                f"{missing[:10].tolist()}{' ...' if missing.size > 10 else ''}; "
                f"allowed: ids of stored memories")
        return rows


def _as_ids(ids: Any, name: str) -> torch.Tensor:
    """``ids`` (an int, a sequence of ints or an integer tensor) as a flat int64 CPU tensor."""
    if isinstance(ids, (bool, float)):
        raise ParameterTypeError(f"{name} must be integer ids, got {ids!r}")
    t = torch.as_tensor(ids)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ParameterTypeError(f"{name} must be integer ids, got dtype {t.dtype}")
    return t.to("cpu", torch.long).reshape(-1)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _dtype_from(name: Any) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise InputValueError(f"unknown dtype {name!r} in metadata['config']")
    return dtype


def _grown(t: torch.Tensor, rows: int) -> torch.Tensor:
    out = torch.empty(rows, *t.shape[1:], dtype=t.dtype, device=t.device)
    out[:t.shape[0]] = t
    return out


def _check_metadata(metadata: Any, n: int) -> list[dict[str, Any] | None]:
    if metadata is None:
        return [None] * n
    if isinstance(metadata, (str, bytes, dict)) or not isinstance(metadata, Sequence):
        raise ParameterTypeError(
            f"metadata must be a list of {n} dicts (or None), got {type(metadata).__name__}")
    if len(metadata) != n:
        raise ParameterError(f"metadata must have one entry per key ({n}), got {len(metadata)}")
    out: list[dict[str, Any] | None] = []
    for i, m in enumerate(metadata):
        if m is None:
            out.append(None)
            continue
        if not isinstance(m, dict):
            raise ParameterTypeError(
                f"metadata[{i}] must be a dict or None, got {type(m).__name__}")
        try:
            out.append(json.loads(json.dumps(m, allow_nan=False)))
        except (TypeError, ValueError) as exc:
            raise ParameterTypeError(f"metadata[{i}] is not JSON-serialisable: {exc}") from exc
    return out


def _check_importance(importance: Any, n: int) -> np.ndarray:
    """Importance as float64 ``[n]``: a finite scalar or ``[n]`` tensor, every entry >= 0."""
    if isinstance(importance, torch.Tensor) and importance.dim() > 0:
        if importance.dim() != 1 or importance.shape[0] != n:
            raise ShapeError(f"importance must be a scalar or have shape [{n}], "
                             f"got {tuple(importance.shape)}")
        w = importance.detach().cpu().double().numpy()
    elif isinstance(importance, (int, float, torch.Tensor)) and not isinstance(importance, bool):
        w = np.full(n, float(importance))
    else:
        raise ParameterTypeError(
            f"importance must be a number or tensor, got {type(importance).__name__}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ParameterError(
            f"importance must be finite and >= 0, got {w[bad][0]!r} at position "
            f"{int(np.flatnonzero(bad)[0])}")
    return w
