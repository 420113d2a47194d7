"""Inverted-file (IVF) index: k-means centroids, contiguous inverted lists, ``nprobe`` search.

Layout
------
Training fits ``nlist`` centroids ``c_j`` (:func:`~aura_snn.memory.kmeans.kmeans`,
spherical for cosine). Every key ``x`` goes to the list of its best centroid,
``l(x) = argmax_j s_c(x, c_j)`` (``s_c``: :func:`~aura_snn.memory._similarity.coarse_scores`).
All keys live in one arena tensor ``[rows, d]``; list ``j`` owns the contiguous rows
``start[j] : start[j] + cap[j]``, of which the first ``size[j]`` hold keys. A parallel
arena holds the id of each row. Scanning a list is one slice, never a Python list of
tensors.

Adds between rebuilds append into the list's spare rows (``cap - size``). A list that
overflows moves to the free tail of the arena with capacity ``1.5 x`` its new size
(its old rows become a hole); when the tail runs out, the arena is repacked in list
order with 12.5 % slack per list and a free tail of 12.5 % of the rows (so a freshly
packed arena holds about 1.27 x the keys' bytes). Each copy is paid for by geometric
growth, so an add costs ``O(d)`` amortised plus the centroid scan. A delete compacts
the rows of its list.

Search
------
For queries ``Q [q, d]``: score the centroids (one matmul), keep the ``nprobe`` best
lists of each query, group the (query, list) pairs by list, and for each probed list
``j`` score every query probing it against the list's keys, ``S = Q_j X_jᵀ``, keeping
each query's top-``k`` of the list. On the CPU this is the compiled scan of
:mod:`._scan` (each key row read once per list for all its queries); on other devices,
one matmul and top-k per list. A final top-``k`` over the ``nprobe · k`` candidates of
each query gives the result. Exact search equals IVF search with ``nprobe = nlist``.

Rebuilds
--------
:meth:`IVFIndex.needs_rebuild` reports drift since training:

* size: ``N / N_train`` outside ``[1 / g, g]`` with ``g = rebuild_growth`` (default 2);
  with ``nlist=None`` the list count follows ``round(sqrt(N))``, so it must be re-chosen;
* balance: the imbalance factor ``I = nlist · Σ_j size_j² / N²`` (1 for equal lists; the
  expected keys scanned per probe, relative to equal lists, for queries distributed like
  the keys) exceeds ``rebuild_imbalance · I_train`` (default 2).

:meth:`IVFIndex.rebuild` retrains on the current keys and re-adds them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._checks import check_choice, check_int, check_positive
from ..errors import InputValueError, ParameterError, ShapeError
from . import _scan
from ._idtable import IdTable, grow_capacity
from ._similarity import METRICS, coarse_scores
from .kmeans import kmeans


def segment_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + n)`` for each ``(s, n)`` pair, vectorised (int64)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    first = np.cumsum(lengths) - lengths
    return np.repeat(np.asarray(starts, dtype=np.int64) - first, lengths) + np.arange(total)


def drift_reason(n: int, trained_size: int, growth: float, imbalance: float,
                 trained_imbalance: float, max_imbalance_ratio: float) -> str | None:
    """The rebuild rule of the module docstring: a reason string, or ``None`` if no drift."""
    if n > growth * trained_size or n * growth < trained_size:
        return f"size changed from {trained_size} to {n} keys (rebuild_growth={growth})"
    if imbalance > max_imbalance_ratio * trained_imbalance:
        return (f"list imbalance rose from {trained_imbalance:.3g} to {imbalance:.3g} "
                f"(rebuild_imbalance={max_imbalance_ratio})")
    return None


def check_new_ids(ids: torch.Tensor, keys: torch.Tensor, dim: int, table: IdTable) -> np.ndarray:
    """Check ``keys [n, dim]`` and ``ids [n]`` (strictly increasing, above every id held)."""
    if keys.dim() != 2 or keys.shape[1] != dim:
        raise ShapeError(f"keys must have shape [n, {dim}], got {tuple(keys.shape)}")
    if ids.dim() != 1 or ids.shape[0] != keys.shape[0]:
        raise ShapeError(f"ids must have shape [{keys.shape[0]}] (one per key), "
                         f"got {tuple(ids.shape)}")
    ids_np = ids.detach().cpu().numpy().astype(np.int64)
    last = int(table.ids[-1]) if table.n_rows else None
    if ids_np.size and ((np.diff(ids_np) <= 0).any() or (last is not None and ids_np[0] <= last)):
        more = " ..." if ids_np.size > 5 else ""
        raise InputValueError(
            f"ids must be strictly increasing and above every id added before "
            f"(largest so far: {last}), got {ids_np[:5].tolist()}{more}")
    return ids_np


def default_nlist(n: int) -> int:
    """Default list count for ``n`` keys: ``round(sqrt(n))``, at least 1."""
    return max(1, int(round(math.sqrt(max(n, 1)))))


class IVFIndex:
    """Inverted-file index over ``dim``-dimensional keys (see the module docstring).

    Keys must already be in stored form (unit rows for ``metric="cosine"``, see
    :func:`~aura_snn.memory._similarity.prepare_keys`); the store does that.

    Parameters
    ----------
    dim: key dimension.
    metric: ``"cosine"``, ``"ip"`` or ``"l2"`` (scores as in :mod:`._similarity`).
    nlist: number of lists; ``None`` picks ``round(sqrt(N))`` at each training.
    nprobe: lists scanned per query by default (recall rises, speed falls with it).
    kmeans_iters, kmeans_init, seed: k-means settings (seed makes training reproducible).
    train_points_per_list: k-means sample size per centroid (sample = this x nlist).
    rebuild_growth, rebuild_imbalance: drift thresholds of :meth:`needs_rebuild`.
    kernel: list scan on CPU: ``"numba"`` (compiled, :mod:`._scan`), ``"torch"`` (one
        matmul per probed list; always used on other devices) or ``"auto"`` (numba
        when importable). Both give the same results up to the order of tied scores.
    dtype, device: of the stored keys.
    """

    def __init__(self, dim: int, *, metric: str = "cosine", nlist: int | None = None,
                 nprobe: int = 8, kmeans_iters: int = 10, kmeans_init: str = "kmeans++",
                 seed: int = 0, train_points_per_list: int = 64,
                 rebuild_growth: float = 2.0, rebuild_imbalance: float = 2.0,
                 kernel: str = "auto", dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        self.dim = check_int("dim", dim, minimum=1)
        self.metric = check_choice("metric", metric, METRICS)
        self.nlist_param = None if nlist is None else check_int("nlist", nlist, minimum=1)
        self.nprobe = check_int("nprobe", nprobe, minimum=1)
        self.kmeans_iters = check_int("kmeans_iters", kmeans_iters, minimum=0)
        self.kmeans_init = check_choice("kmeans_init", kmeans_init, ("kmeans++", "random"))
        self.seed = int(seed)
        self.train_points_per_list = check_int("train_points_per_list", train_points_per_list, 1)
        check_positive("rebuild_growth", rebuild_growth)
        check_positive("rebuild_imbalance", rebuild_imbalance)
        if rebuild_growth <= 1 or rebuild_imbalance <= 1:
            raise ParameterError(
                f"rebuild_growth and rebuild_imbalance must be > 1, got "
                f"{rebuild_growth!r} and {rebuild_imbalance!r}")
        self.rebuild_growth = float(rebuild_growth)
        self.rebuild_imbalance = float(rebuild_imbalance)
        self.kernel = check_choice("kernel", kernel, ("auto", "numba", "torch"))
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.centroids: torch.Tensor | None = None
        self.trained_size = 0
        self.trained_imbalance = 1.0
        self._reset_lists(0)

    # ------------------------------------------------------------------ state
    def _reset_lists(self, nlist: int, rows: int = 0) -> None:
        self._keys = torch.empty(rows, self.dim, dtype=self.dtype, device=self.device)
        self._ids = torch.empty(rows, dtype=torch.long, device=self.device)
        # ||x||² of each row, kept for metric="l2" only
        self._sq = torch.empty(rows if self.metric == "l2" else 0, dtype=self.dtype,
                               device=self.device)
        self._start = np.zeros(nlist, dtype=np.int64)
        self._size = np.zeros(nlist, dtype=np.int64)
        self._cap = np.zeros(nlist, dtype=np.int64)
        self._top = 0  # first row of the free tail
        self._table = IdTable()  # id -> entry row; _list[row] = list of that id
        self._list = np.empty(0, dtype=np.int64)

    @property
    def is_trained(self) -> bool:
        return self.centroids is not None

    @property
    def nlist(self) -> int:
        return 0 if self.centroids is None else int(self.centroids.shape[0])

    @property
    def ntotal(self) -> int:
        """Number of keys held."""
        return int(self._size.sum())

    def list_sizes(self) -> np.ndarray:
        """Keys per list, ``[nlist]`` int64 (a copy)."""
        return self._size.copy()

    def imbalance(self) -> float:
        """``I = nlist · Σ size_j² / N²`` (1 = equal lists; 1 when empty)."""
        n = self.ntotal
        if n == 0:
            return 1.0
        return float(self.nlist * np.square(self._size.astype(np.float64)).sum() / float(n) ** 2)

    def nbytes(self) -> int:
        """Bytes held: arena keys, ids and norms (including spare rows), centroids, tables."""
        t = [self._keys, self._ids, self._sq]
        if self.centroids is not None:
            t.append(self.centroids)
        host = sum(a.nbytes for a in (self._start, self._size, self._cap, self._list,
                                      self._table._ids, self._table._alive))
        return sum(x.numel() * x.element_size() for x in t) + host

    def to(self, device: torch.device | str) -> IVFIndex:
        """Move every tensor to ``device`` (in place); returns ``self``."""
        self.device = torch.device(device)
        for name in ("_keys", "_ids", "_sq"):
            setattr(self, name, getattr(self, name).to(self.device))
        if self.centroids is not None:
            self.centroids = self.centroids.to(self.device)
            self._c_sq = self._c_sq.to(self.device)
        return self

    # --------------------------------------------------------------- training
    def train(self, keys: torch.Tensor) -> None:
        """Fit the centroids on ``keys [n, dim]`` and empty every list."""
        n = keys.shape[0]
        nlist = self.nlist_param if self.nlist_param is not None else default_nlist(n)
        if n < nlist:
            raise ParameterError(f"training needs at least nlist={nlist} keys, got {n}")
        res = kmeans(keys.to(self.device, self.dtype), nlist, iters=self.kmeans_iters,
                     init=self.kmeans_init, seed=self.seed, spherical=self.metric == "cosine",
                     sample_size=self.train_points_per_list * nlist)
        self.set_centroids(res.centroids)

    def set_centroids(self, centroids: torch.Tensor) -> None:
        """Use ``centroids [nlist, dim]`` as trained centroids and empty every list."""
        self.centroids = centroids.to(self.device, self.dtype).contiguous()
        self._c_sq = (self.centroids * self.centroids).sum(dim=1)
        self._reset_lists(self.centroids.shape[0])
        self.trained_size = 0
        self.trained_imbalance = 1.0

    def assign(self, keys: torch.Tensor, chunk_rows: int = 32768) -> torch.Tensor:
        """List of each key, ``l(x) = argmax_j s_c(x, c_j)``, int64 ``[n]`` on the index device."""
        self._need_trained()
        out = torch.empty(keys.shape[0], dtype=torch.long, device=self.device)
        for s in range(0, keys.shape[0], chunk_rows):
            cs = coarse_scores(keys[s:s + chunk_rows], self.centroids, self.metric, self._c_sq)
            out[s:s + chunk_rows] = cs.argmax(dim=1)
        return out

    def rebuild(self, ids: torch.Tensor | None = None, keys: torch.Tensor | None = None) -> None:
        """Retrain on the keys held (or on ``ids``/``keys`` given) and re-add them.

        The new size and imbalance become the reference of :meth:`needs_rebuild`.
        """
        if ids is None or keys is None:
            ids, keys = self.items()
        self.train(keys)
        self.add(ids, keys)
        self.mark_trained()

    def mark_trained(self) -> None:
        """Take the current size and imbalance as the drift reference."""
        self.trained_size = self.ntotal
        self.trained_imbalance = self.imbalance()

    def needs_rebuild(self) -> str | None:
        """Why the lists drifted beyond the thresholds since training, or ``None``."""
        if not self.is_trained or self.trained_size == 0:
            return None
        return drift_reason(self.ntotal, self.trained_size, self.rebuild_growth,
                            self.imbalance(), self.trained_imbalance, self.rebuild_imbalance)

    # ------------------------------------------------------------ add, remove
    def add(self, ids: torch.Tensor, keys: torch.Tensor) -> None:
        """Add ``keys [n, dim]`` under ``ids [n]`` (int64, strictly increasing, new)."""
        self._need_trained()
        ids_np = check_new_ids(ids, keys, self.dim, self._table)
        n = keys.shape[0]
        if n == 0:
            return
        keys = keys.to(self.device, self.dtype)
        self._table.append(ids_np)
        labels = self.assign(keys).cpu().numpy()
        counts = np.bincount(labels, minlength=self.nlist).astype(np.int64)
        self._reserve(counts)
        order = np.argsort(labels, kind="stable")
        lab = labels[order]
        rank = np.arange(n) - (np.cumsum(counts) - counts)[lab]
        dest = torch.from_numpy(self._start[lab] + self._size[lab] + rank).to(self.device)
        src = torch.from_numpy(order).to(self.device)
        self._list = _fit(self._list, self._table.n_rows)
        self._list[self._table.n_rows - n:self._table.n_rows] = labels
        self._keys[dest] = keys[src]
        self._ids[dest] = ids.to(self.device, torch.long)[src]
        if self.metric == "l2":
            self._sq[dest] = (keys[src] * keys[src]).sum(dim=1)
        self._size += counts

    def remove(self, ids: torch.Tensor) -> None:
        """Remove the keys of ``ids``; raises :class:`InputValueError` if any is absent."""
        ids_np = np.unique(ids.detach().cpu().numpy().astype(np.int64))
        rows = self._table.find(ids_np)
        if (rows < 0).any():
            missing = ids_np[rows < 0][:10].tolist()
            raise InputValueError(f"ids not in the index: {missing}")
        lists = np.unique(self._list[rows])
        seg = torch.from_numpy(segment_rows(self._start[lists], self._size[lists])).to(self.device)
        seg_list = np.repeat(lists, self._size[lists])
        keep = ~torch.isin(self._ids[seg], torch.from_numpy(ids_np).to(self.device))
        keep_np = keep.cpu().numpy()
        # new position of each kept row: start of its list + rank among kept rows of that list
        kept_cum = np.cumsum(keep_np) - keep_np  # kept rows before each row
        first = np.cumsum(self._size[lists]) - self._size[lists]  # first row of each list
        rank = kept_cum - np.repeat(kept_cum[first], self._size[lists])
        dest = self._start[seg_list] + rank
        src_k = seg[keep]
        dest_k = torch.from_numpy(dest[keep_np]).to(self.device)
        self._keys[dest_k] = self._keys[src_k]
        self._ids[dest_k] = self._ids[src_k]
        if self.metric == "l2":
            self._sq[dest_k] = self._sq[src_k]
        self._size[lists] -= np.bincount(seg_list[~keep_np], minlength=self.nlist)[lists]
        self._table.kill(rows)
        if self._table.n_dead > max(1024, self._table.n_alive):
            keep_rows = self._table.compact()
            self._list = self._list[keep_rows].copy()

    def items(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All ``(ids [N], keys [N, dim])`` held, in increasing id order."""
        lists = np.arange(self.nlist)
        rows = torch.from_numpy(segment_rows(self._start[lists], self._size[lists])).to(self.device)
        ids = self._ids[rows]
        order = torch.argsort(ids)
        return ids[order], self._keys[rows[order]]

    def list_order(self) -> tuple[torch.Tensor, np.ndarray]:
        """Ids in arena order, list by list, and the list sizes (for persistence)."""
        lists = np.arange(self.nlist)
        rows = torch.from_numpy(segment_rows(self._start[lists], self._size[lists])).to(self.device)
        return self._ids[rows], self._size.copy()

    def restore(self, centroids: torch.Tensor, sizes: np.ndarray, ids: torch.Tensor,
                keys: torch.Tensor, trained_size: int, trained_imbalance: float) -> None:
        """Rebuild the lists exactly as :meth:`list_order` described them (no reassignment)."""
        self.set_centroids(centroids)
        sizes = np.asarray(sizes, dtype=np.int64)
        labels = np.repeat(np.arange(self.nlist), sizes)
        self._reserve(sizes)
        dest = torch.from_numpy(segment_rows(self._start, sizes)).to(self.device)
        keys = keys.to(self.device, self.dtype)
        self._keys[dest] = keys
        self._ids[dest] = ids.to(self.device, torch.long)
        if self.metric == "l2":
            self._sq[dest] = (keys * keys).sum(dim=1)
        self._size = sizes.copy()
        ids_np = ids.cpu().numpy().astype(np.int64)
        order = np.argsort(ids_np, kind="stable")
        self._table.append(ids_np[order])
        self._list = labels[order].copy()
        self.trained_size = int(trained_size)
        self.trained_imbalance = float(trained_imbalance)

    # ----------------------------------------------------------------- arena
    def _reserve(self, extra: np.ndarray) -> None:
        """Make room for ``extra[j]`` more keys in each list ``j``."""
        need = self._size + extra
        over = np.flatnonzero(need > self._cap)
        if over.size == 0:
            return
        new_cap = need[over] + need[over] // 2 + 4
        if self._top + int(new_cap.sum()) > self._keys.shape[0]:
            self._repack(need)
            return
        # move each overflowing list to the free tail; its old rows become a hole
        new_start = self._top + np.cumsum(new_cap) - new_cap
        src = torch.from_numpy(segment_rows(self._start[over], self._size[over])).to(self.device)
        dst = torch.from_numpy(segment_rows(new_start, self._size[over])).to(self.device)
        self._move(src, dst)
        self._start[over] = new_start
        self._cap[over] = new_cap
        self._top += int(new_cap.sum())

    def _repack(self, need: np.ndarray) -> None:
        """Copy every list into a fresh arena in list order, with slack and a free tail."""
        cap = need + need // 8 + 4
        start = np.cumsum(cap) - cap
        used = int(cap.sum())
        rows = used + used // 8
        src = torch.from_numpy(segment_rows(self._start, self._size)).to(self.device)
        dst = torch.from_numpy(segment_rows(start, self._size)).to(self.device)
        old = (self._keys, self._ids, self._sq)
        self._keys = torch.empty(rows, self.dim, dtype=self.dtype, device=self.device)
        self._ids = torch.empty(rows, dtype=torch.long, device=self.device)
        self._sq = torch.empty(rows if self.metric == "l2" else 0, dtype=self.dtype,
                               device=self.device)
        self._keys[dst] = old[0][src]
        self._ids[dst] = old[1][src]
        if self.metric == "l2":
            self._sq[dst] = old[2][src]
        self._start, self._cap, self._top = start, cap, used

    def _move(self, src: torch.Tensor, dst: torch.Tensor) -> None:
        self._keys[dst] = self._keys[src]
        self._ids[dst] = self._ids[src]
        if self.metric == "l2":
            self._sq[dst] = self._sq[src]

    # ---------------------------------------------------------------- search
    def search(self, queries: torch.Tensor, k: int,
               nprobe: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` ``(scores [q, k], ids [q, k])`` over the ``nprobe`` best lists per query.

        Queries must be in stored form (unit rows for cosine). Missing results (fewer
        than ``k`` keys in the probed lists) have score ``-inf`` and id ``-1``. ``k``
        (>= 1) is clamped to the keys held (``k=10**9`` allocates ``ntotal`` slots, not
        ``k``; an empty index gives ``[q, 0]``).
        """
        k = min(check_int("k", k, minimum=1), self.ntotal)
        self._need_trained()
        if k == 0:
            return (torch.zeros(queries.shape[0], 0, dtype=self.dtype, device=self.device),
                    torch.zeros(queries.shape[0], 0, dtype=torch.long, device=self.device))
        nprobe = self.nprobe if nprobe is None else nprobe
        nprobe = min(nprobe, self.nlist)
        q = queries.to(self.device, self.dtype).contiguous()
        coarse = coarse_scores(q, self.centroids, self.metric, self._c_sq)
        if self._compiled_scan():
            return self._search_cpu(q, coarse, k, nprobe)
        nq = q.shape[0]
        probe = coarse.topk(nprobe, dim=1).indices
        flat = probe.reshape(-1)
        order = torch.argsort(flat, stable=True)  # (query, list) pairs grouped by list
        counts = torch.bincount(flat, minlength=self.nlist)
        cand_s, cand_r = self._scan_torch(q, order, order // nprobe, counts.tolist(), k)
        if self.metric == "l2":
            q_sq = (q * q).sum(dim=1)
            cand_s = cand_s - q_sq.repeat_interleave(nprobe).unsqueeze(1)
        cand_s = cand_s.view(nq, nprobe * k)
        best, j = cand_s.topk(k, dim=1)
        rows = cand_r.view(nq, nprobe * k).gather(1, j)
        ids = self._ids[rows.clamp_min(0)].masked_fill(rows < 0, -1)
        ids = ids.masked_fill(torch.isneginf(best), -1)
        return best, ids

    def _compiled_scan(self) -> bool:
        if self.kernel == "torch" or self.device.type != "cpu":
            return False
        if self.kernel == "numba":
            return True
        return _scan.available()

    def _search_cpu(self, q: torch.Tensor, coarse: torch.Tensor, k: int,
                    nprobe: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`search` on the CPU: numba scan, bookkeeping in numpy.

        Everything after the coarse matmul runs in numpy (single-threaded) or in the one
        parallel region of the scan: small multi-threaded torch ops each wake the
        intra-op thread pool, which on shared cores can cost milliseconds per op.
        """
        nq = q.shape[0]
        probe = _topk_rows(coarse.numpy(), nprobe)[1]
        flat = probe.reshape(-1)
        order = np.argsort(flat, kind="stable")  # (query, list) pairs grouped by list
        counts = np.bincount(flat, minlength=self.nlist)
        group_list = np.flatnonzero(counts)
        group_ptr = np.concatenate([[0], np.cumsum(counts[group_list])]).astype(np.int64)
        qn = q.numpy()
        sq = self._sq.numpy() if self.metric == "l2" else np.empty(0, dtype=qn.dtype)
        out_s, out_r = _scan.scan_lists(
            qn, self._keys.numpy(), sq, self.metric == "l2", group_list, group_ptr,
            order // nprobe, self._start, self._size, k, threads=torch.get_num_threads())
        cand_s = np.empty_like(out_s)
        cand_r = np.empty_like(out_r)
        cand_s[order], cand_r[order] = out_s, out_r  # back to (query, probe) order
        cand_s = cand_s.reshape(nq, nprobe * k)
        if self.metric == "l2":
            cand_s -= np.einsum("ij,ij->i", qn, qn)[:, None]
        best, j = _topk_rows(cand_s, k)
        rows = np.take_along_axis(cand_r.reshape(nq, nprobe * k), j, axis=1)
        ids = np.where((rows >= 0) & np.isfinite(best),
                       self._ids.numpy()[np.maximum(rows, 0)], -1)
        return torch.from_numpy(best), torch.from_numpy(ids)

    def _scan_torch(self, q: torch.Tensor, order: torch.Tensor, q_of: torch.Tensor,
                    counts: list[int], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k of every (query, list) pair with one matmul per probed list (any device).

        Results are returned in (query, probe) order.
        """
        n_pairs = order.numel()
        cand_s = torch.full((n_pairs, k), float("-inf"), dtype=self.dtype, device=self.device)
        cand_r = torch.full((n_pairs, k), -1, dtype=torch.long, device=self.device)
        starts, sizes = self._start.tolist(), self._size.tolist()
        pos = 0
        for j, c in enumerate(counts):
            if c == 0:
                continue
            pairs, qs = order[pos:pos + c], q_of[pos:pos + c]
            pos += c
            n = sizes[j]
            if n == 0:
                continue
            a = starts[j]
            s = q[qs] @ self._keys[a:a + n].T
            if self.metric == "l2":
                s = 2.0 * s - self._sq[a:a + n]
            kk = min(k, n)
            v, i = s.topk(kk, dim=1)
            cand_s[pairs, :kk] = v
            cand_r[pairs, :kk] = i + a
        return cand_s, cand_r

    def _need_trained(self) -> None:
        if self.centroids is None:
            raise ParameterError("the IVF index is not trained yet: call train(keys) first")

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings and drift reference (for persistence)."""
        return {"nlist": self.nlist_param, "nprobe": self.nprobe,
                "kmeans_iters": self.kmeans_iters, "kmeans_init": self.kmeans_init,
                "seed": self.seed, "train_points_per_list": self.train_points_per_list,
                "rebuild_growth": self.rebuild_growth, "rebuild_imbalance": self.rebuild_imbalance,
                "trained_size": self.trained_size, "trained_imbalance": self.trained_imbalance}


def _topk_rows(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest entries of each row of ``a [m, n]`` (``k <= n``), best first."""
    n = a.shape[1]
    if k < n:
        part = np.argpartition(-a, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), a.shape).copy()
    vals = np.take_along_axis(a, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(part, order, axis=1)


def _fit(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` resized (geometrically) to hold at least ``n`` entries."""
    return a if a.size >= n else np.resize(a, grow_capacity(a.size, n))
