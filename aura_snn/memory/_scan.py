"""Compiled CPU scan of probed inverted lists (numba), used by :class:`~.ivf.IVFIndex`.

Why a compiled loop: the torch form of the scan issues a few small ops (gather,
matmul, top-k, scatter) per probed list. Each small matmul is a BLAS call with its own
thread fork/join; with ~1000 lists per search that overhead dominates, and on a machine
whose cores are shared it grows by orders of magnitude (a 5 x 256 x 400 matmul measured
5 ms with two contended threads against 0.15 ms with one). This kernel runs the whole
scan in one parallel region: lists are split across threads; within a list each key row
is loaded once and scored against every query that probes the list (the queries stay in
L1), and each (query, list) pair keeps its own running top-k by insertion.

numba's OpenMP pool is a different runtime from torch's; see the "Memory and threads"
notes of :mod:`aura_snn.memory.store` on ``OMP_WAIT_POLICY``.

Score of key row ``r`` for query ``i``: ``s = q_i · x_r`` (cosine, ip) or
``s = 2 q_i · x_r - ||x_r||²`` (l2; the caller subtracts ``||q_i||²`` afterwards).
Accumulation is in the key dtype (float32 or float64).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_KERNEL: Callable[..., None] | None = None


def _build() -> Callable[..., None]:
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def scan(q: Any, keys: Any, sq: Any, use_sq: bool, group_list: Any, group_ptr: Any,
             pair_query: Any, starts: Any, sizes: Any, out_s: Any, out_r: Any) -> None:
        k = out_s.shape[1]
        d = q.shape[1]
        for g in numba.prange(group_list.shape[0]):
            lst = group_list[g]
            a = starts[lst]
            n = sizes[lst]
            p0 = group_ptr[g]
            p1 = group_ptr[g + 1]
            for r in range(a, a + n):
                for p in range(p0, p1):
                    qi = pair_query[p]
                    acc = q.dtype.type(0)
                    for t in range(d):
                        acc += q[qi, t] * keys[r, t]
                    if use_sq:
                        acc = 2 * acc - sq[r]
                    if acc > out_s[p, k - 1]:
                        j = k - 1
                        while j > 0 and out_s[p, j - 1] < acc:
                            out_s[p, j] = out_s[p, j - 1]
                            out_r[p, j] = out_r[p, j - 1]
                            j -= 1
                        out_s[p, j] = acc
                        out_r[p, j] = r

    return scan


def available() -> bool:
    """Whether numba can be imported (the compiled scan needs it)."""
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a core dependency
        return False
    return True


def scan_lists(q: np.ndarray, keys: np.ndarray, sq: np.ndarray, use_sq: bool,
               group_list: np.ndarray, group_ptr: np.ndarray, pair_query: np.ndarray,
               starts: np.ndarray, sizes: np.ndarray, k: int,
               threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ``(scores, rows)`` of each (query, list) pair, ``[n_pairs, k]`` each.

    Pairs are grouped by list: pairs ``group_ptr[g] : group_ptr[g + 1]`` probe list
    ``group_list[g]`` and ``pair_query[p]`` is the query row of pair ``p``. Empty slots
    hold score ``-inf`` and row ``-1``. ``threads`` caps numba's thread count for the call.
    """
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _build()
    import numba

    n_pairs = pair_query.shape[0]
    out_s = np.full((n_pairs, k), -np.inf, dtype=q.dtype)
    out_r = np.full((n_pairs, k), -1, dtype=np.int64)
    previous = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        _KERNEL(q, keys, sq, use_sq, group_list, group_ptr, pair_query, starts, sizes,
                out_s, out_r)
    finally:
        numba.set_num_threads(previous)
    return out_s, out_r
