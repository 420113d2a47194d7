"""Numba kernel of Lava's bit-accurate LIF step (the CPU path of
:func:`hardware.loihi.lif_fixed`; the equations are in :mod:`hardware.loihi`)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _dec(x: np.int64, keep: np.int64) -> np.int64:
    return (x * keep) >> 12 if x >= 0 else -((-x * keep) >> 12)


@numba.njit(cache=True, nogil=True)
def lif_fixed_cpu(a: np.ndarray, keep_u: int, keep_v: int, th: int, shift: int,
                  lim: int) -> np.ndarray:
    """Spikes ``bool [T, M]`` of int64 input ``a`` ``[T, M]``: per step
    ``u = wrap(dec(u) + a << shift)``, ``v = clip(dec(v) + u)``, ``s = v > th``,
    ``v = 0`` where ``s`` (Lava ``AbstractPyLifModelFixed.subthr_dynamics``)."""
    steps, m = a.shape
    u = np.zeros(m, np.int64)
    v = np.zeros(m, np.int64)
    out = np.zeros((steps, m), np.bool_)
    for t in range(steps):
        for j in range(m):
            c = _dec(u[j], keep_u) + (a[t, j] << shift)
            w = c - 2 * lim if c > lim else c
            u[j] = c + 2 * lim if w <= -lim else w
            x = _dec(v[j], keep_v) + u[j]
            x = min(max(x, -lim + 1), lim - 1)
            if x > th:
                out[t, j] = True
                x = 0
            v[j] = x
    return out
