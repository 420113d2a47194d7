r"""One pass over a layer's input for :mod:`aura_snn.metrics.ops`: compiled counts of
its non-zero entries, of its entries equal to :math:`1` and to :math:`-1`, and (for a
``[rows, cols]`` view) of the non-zero entries of each column.

For ``x`` with entries :math:`x_k` (float32 or float64, C-contiguous):

.. math:: n_{nz} = \sum_k [x_k \ne 0], \quad n_{+} = \sum_k [x_k = 1], \quad
          n_{-} = \sum_k [x_k = -1], \quad c_j = \sum_r [x_{rj} \ne 0]

(NaN is non-zero and neither :math:`1` nor :math:`-1`; :math:`-0` is zero). The input is
spikes in NeuroBench's sense (every entry in :math:`\{-1, 0, 1\}`) exactly when
:math:`n_+ + n_- = n_{nz}`. Counts are int64, so they stay exact at any size. numpy's
boolean kernels need one pass (and one temporary array) per comparison; this loop reads
the input once. :func:`linear_counts` does a Linear layer's whole count (weight degrees,
input counts, effective products) in one compiled call: a counter hook runs between
kernels that have just streamed megabytes through the caches, where every further
interpreted step costs several times what it costs warm.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")

#: Inputs of at least this many entries are counted by all of numba's threads: on 2
#: cores a 1.5 M-entry float32 input took 0.22 ms on one thread and 0.12 ms on two.
PARALLEL_MIN = 1 << 18


@_jit
def flat_counts(a):  # pragma: no cover (compiled)
    """``(n_nz, n_plus, n_minus)`` of the 1-D array ``a`` (int64 accumulators: the loop
    LLVM vectorises; int32 blocks measured 5x slower)."""
    nz = one = mone = 0
    for k in range(a.size):
        x = a[k]
        nz += x != 0
        one += x == 1
        mone += x == -1
    return nz, one, mone


@numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def flat_counts_parallel(a):  # pragma: no cover (compiled)
    """:func:`flat_counts` with the loop split over numba's threads (a sum reduction
    of each accumulator: the same integers in any order)."""
    nz = one = mone = 0
    for k in numba.prange(a.size):
        x = a[k]
        nz += x != 0
        one += x == 1
        mone += x == -1
    return nz, one, mone


@_jit
def column_counts(a):  # pragma: no cover (compiled)
    """``(n_nz, n_plus, n_minus, c)`` of the 2-D array ``a`` ``[rows, cols]``; ``c``
    int64 ``[cols]``."""
    rows, cols = a.shape
    col = np.zeros(cols, np.int64)
    one = mone = 0
    for r in range(rows):
        for j in range(cols):
            x = a[r, j]
            col[j] += x != 0
            one += x == 1
            mone += x == -1
    return col.sum(), one, mone, col


@_jit
def linear_counts(x, w, skip_input):  # pragma: no cover (compiled)
    r"""``(eff, n_nz, n_plus, n_minus, full)`` of a Linear layer's input ``x`` ``[rows,
    n_in]`` and weight ``w`` ``[n_out, n_in]`` in one call: :math:`d_i`, the non-zero
    weights of column ``i``, then the effective products :math:`\sum_i c_i d_i`, which
    is :math:`n_{nz} \, n_{out}` when ``full`` (no zero weight). With ``skip_input`` and
    a full ``w`` the input is not read (its counts are known to the caller) and the
    input counts and ``eff`` returned are 0."""
    n_out, n_in = w.shape
    deg = np.zeros(n_in, np.int64)
    for o in range(n_out):
        for i in range(n_in):
            deg[i] += w[o, i] != 0
    full = True
    for i in range(n_in):
        if deg[i] != n_out:
            full = False
    if full and skip_input:
        return 0, 0, 0, 0, True
    if full:
        nz, one, mone = flat_counts(x.reshape(-1))
        return nz * n_out, nz, one, mone, True
    nz, one, mone, col = column_counts(x)
    eff = 0
    for i in range(n_in):
        eff += col[i] * deg[i]
    return eff, nz, one, mone, False


def counts(a: np.ndarray, cols: int, per_column: bool
           ) -> tuple[int, int, int, np.ndarray | None]:
    """``(n_nz, n_plus, n_minus, c)`` (module docstring) of ``a`` seen as ``[rows,
    cols]``; ``c`` only if ``per_column``, else None. ``a``: a float16, float32 or
    float64 array (float16 is widened to float32, exactly)."""
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"a: expected a float16, float32 or float64 array, got {a.dtype}")
    a = np.ascontiguousarray(a)
    if per_column:
        nz, one, mone, col = column_counts(a.reshape(-1, cols))
        return int(nz), int(one), int(mone), col
    flat = a.reshape(-1)
    kernel = flat_counts_parallel if flat.size >= PARALLEL_MIN else flat_counts
    nz, one, mone = kernel(flat)
    return int(nz), int(one), int(mone), None
