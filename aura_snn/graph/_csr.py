"""The engine's merged synapse table, built by a counting sort.

Every projection contributes synapses ``(row, target, weight, delay)``: ``row`` the
presynaptic output (or a synapse model's virtual row), ``target`` the postsynaptic
receptor input. :func:`build` orders them by row, stably (projection by projection in
the graph's order, each in its own order: what a stable sort of their concatenation
gives), into the CSR arrays ``indptr``, ``tgt``, ``w``, ``dl``, in two passes and
without the concatenated copies, the ``int64`` argsort and the gathers a sort would
need (at 80 million synapses those temporaries were gigabytes of freshly touched
memory). Weights are cast to the layout's dtype as ``numpy.astype`` casts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@dataclass
class Part:
    """One projection's synapses: ``pre[q] + row_off`` is the row of synapse ``q``,
    ``post[q] + tgt_off`` its target, ``w[q]`` its weight, ``delay`` an int (all) or
    an array; ``positions``: whether :func:`build` returns where each synapse went."""

    pre: np.ndarray
    row_off: int
    post: np.ndarray
    tgt_off: int
    w: np.ndarray
    delay: int | np.ndarray
    positions: bool = False


@_jit
def _place(pre, row_off, post, tgt_off, w, d_arr, d_const, cursor, tgt, w_out, dl, pos
           ):  # pragma: no cover - compiled
    per_syn = d_arr.shape[0] > 0
    write_dl = dl.shape[0] > 0
    record = pos.shape[0] > 0
    for q in range(pre.shape[0]):
        r = pre[q] + row_off
        at = cursor[r]
        cursor[r] = at + 1
        tgt[at] = post[q] + tgt_off
        w_out[at] = w[q]
        if write_dl:
            dl[at] = d_arr[q] if per_syn else d_const
        if record:
            pos[q] = at


def build(parts: list[Part], n_rows: int, dtype: type, tgt_dtype: type
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool,
                     list[np.ndarray | None]]:
    """``(indptr, tgt, w, dl, has_dl, positions)``: the CSR of ``parts`` (module
    docstring); ``dl`` is empty when every delay is 0 (``has_dl`` false);
    ``positions[k]`` the CSR index of each synapse of part ``k`` where it asked."""
    counts = np.zeros(n_rows + 1, np.int64)
    has_dl = False
    for pt in parts:
        if pt.pre.size:
            c = np.bincount(pt.pre, minlength=1)
            counts[1 + pt.row_off:1 + pt.row_off + c.size] += c
        d = pt.delay
        if isinstance(d, np.ndarray):
            has_dl |= bool(d.size and d.max() > 0)
        else:
            has_dl |= d > 0
    indptr = np.cumsum(counts)
    total = int(indptr[-1])
    tgt = np.empty(total, tgt_dtype)
    w = np.empty(total, dtype)
    dl = np.empty(total if has_dl else 0, np.int32)
    cursor = indptr[:-1].copy()
    positions: list[np.ndarray | None] = []
    for pt in parts:
        arr = isinstance(pt.delay, np.ndarray)
        pos = np.empty(pt.pre.size if pt.positions else 0, np.int64)
        _place(np.ascontiguousarray(pt.pre, np.int64), int(pt.row_off),
               np.ascontiguousarray(pt.post, np.int64), int(pt.tgt_off),
               np.ascontiguousarray(pt.w), np.ascontiguousarray(pt.delay, np.int64) if arr
               else np.zeros(0, np.int64), 0 if arr else int(pt.delay), cursor, tgt, w, dl,
               pos)
        positions.append(pos if pt.positions else None)
    return indptr, tgt, w, dl, has_dl, positions


__all__ = ["Part", "build"]
