"""The compiled one-pass counts of :mod:`aura_snn.metrics._count_kernels` against numpy
comparisons written here (exact integers): non-zeros (NaN counts, -0.0 does not), 1s,
-1s and per-column non-zeros, on float16/32/64, non-contiguous views, and values next
to +-1 that a sloppy comparison would round onto them."""

from __future__ import annotations

import numpy as np
import pytest

from aura_snn.metrics._count_kernels import counts


def _reference(a: np.ndarray, cols: int) -> tuple[int, int, int, np.ndarray]:
    m = a.astype(np.float64).reshape(-1, cols)
    nz = ~((m == 0) & ~np.isnan(m))  # NaN != 0 in IEEE terms; spelled out here
    return (int(nz.sum()), int((m == 1.0).sum()), int((m == -1.0).sum()),
            nz.sum(0).astype(np.int64))


def _values(shape: tuple[int, ...], dtype: type, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pool = np.array([0.0, -0.0, 1.0, -1.0, 0.5, np.nan, np.inf, -np.inf, 2.0],
                    dtype=np.float64)
    a = rng.choice(pool, size=shape, p=[.4, .1, .2, .1, .05, .05, .04, .03, .03])
    a = a.astype(dtype)
    eps = np.finfo(dtype).eps
    a.flat[:4] = [1 + eps, 1 - eps / 2, -1 - eps, -(1 - eps / 2)]  # next to +-1, not it
    return a


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7, 5), (13, 3, 17), (3, 1000)])
def test_counts_equal_numpy(dtype: type, shape: tuple[int, ...]) -> None:
    a = _values(shape, dtype, seed=sum(shape))
    cols = shape[-1]
    nz, plus, minus, col = _reference(a, cols)
    assert counts(a, cols, per_column=False) == (nz, plus, minus, None)
    got = counts(a, cols, per_column=True)
    assert got[:3] == (nz, plus, minus)
    assert got[3].dtype == np.int64 and np.array_equal(got[3], col)


def test_non_contiguous_and_spike_only_inputs() -> None:
    a = _values((20, 30), np.float32, seed=3)[:, ::3]  # a strided view
    assert not a.flags.c_contiguous
    nz, plus, minus, col = _reference(a, 10)
    got = counts(a, 10, per_column=True)
    assert got[:3] == (nz, plus, minus) and np.array_equal(got[3], col)
    s = (np.random.default_rng(4).random((50, 40)) < 0.2).astype(np.float64)
    n = int((s != 0).sum())
    assert counts(s, 40, per_column=False) == (n, n, 0, None)  # spikes: n_+ = n_nz


def test_bad_dtype_named() -> None:
    with pytest.raises(TypeError, match="a: expected a float16, float32 or float64"):
        counts(np.zeros(4, np.int32), 4, per_column=False)
