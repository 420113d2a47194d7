"""Sorted id -> row lookup with tombstones (internal).

The store and the IVF index both keep rows in increasing id order (ids are issued
monotonically and never reused), so an id is found by binary search,
``row = searchsorted(ids, id)``, in ``O(log n)`` and vectorised over a batch. Deleting
marks a tombstone; :meth:`IdTable.compact` drops them in one ``O(n)`` pass, which the
owners run once tombstones reach half the rows, so deletes cost ``O(1)`` amortised.
"""

from __future__ import annotations

import numpy as np


def grow_capacity(current: int, needed: int) -> int:
    """Capacity after growing geometrically (x1.5, at least 16) to hold ``needed`` rows."""
    cap = max(current, 16)
    while cap < needed:
        cap = cap + cap // 2
    return cap


class IdTable:
    """Strictly increasing int64 ids, each with a row number (its position) and a live flag."""

    def __init__(self) -> None:
        self._ids = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)
        self.n_rows = 0
        self.n_alive = 0

    @property
    def ids(self) -> np.ndarray:
        """Ids of all rows, live and dead (a view; do not modify)."""
        return self._ids[:self.n_rows]

    @property
    def alive(self) -> np.ndarray:
        """Live flag of every row (a view; do not modify)."""
        return self._alive[:self.n_rows]

    @property
    def n_dead(self) -> int:
        return self.n_rows - self.n_alive

    def append(self, ids: np.ndarray) -> np.ndarray:
        """Append ``ids`` (strictly increasing, above every id present); return their rows."""
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.size
        last = self._ids[self.n_rows - 1] if self.n_rows else None
        if n and ((np.diff(ids) <= 0).any() or (last is not None and ids[0] <= last)):
            raise ValueError("IdTable.append needs strictly increasing ids above those present")
        need = self.n_rows + n
        if need > self._ids.size:
            cap = grow_capacity(self._ids.size, need)
            self._ids = np.resize(self._ids, cap)
            self._alive = np.resize(self._alive, cap)
        rows = np.arange(self.n_rows, need, dtype=np.int64)
        self._ids[self.n_rows:need] = ids
        self._alive[self.n_rows:need] = True
        self.n_rows = need
        self.n_alive += n
        return rows

    def find(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ``ids``; ``-1`` where an id is absent or deleted."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.n_rows == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.ids, ids), self.n_rows - 1)
        ok = (self.ids[rows] == ids) & self.alive[rows]
        return np.where(ok, rows, -1)

    def kill(self, rows: np.ndarray) -> None:
        """Mark live ``rows`` as deleted (each row at most once)."""
        rows = np.asarray(rows, dtype=np.int64)
        self._alive[rows] = False
        self.n_alive -= rows.size

    def compact(self) -> np.ndarray:
        """Drop tombstones; return the old row numbers kept, in order (new row = position)."""
        keep = np.flatnonzero(self.alive)
        self._ids = self._ids[keep].copy()
        self._alive = np.ones(keep.size, dtype=bool)
        self.n_rows = self.n_alive = keep.size
        return keep
