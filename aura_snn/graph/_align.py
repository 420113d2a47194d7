"""Cache-line aligned arrays for the compiled engine's hot loops.

The region loops of :mod:`._kernels` read and write each neuron's state and, for
per-neuron parameters, its coefficient rows with 64-byte vector loads and stores
(8 float64 or 16 float32 values). numpy aligns its buffers to 16 bytes only (large ones
come from ``mmap`` at 16 bytes past a page), so such a load straddles two cache lines.
Measured on a loaded 2-core AMD EPYC (AVX-512), CUBA with 3,200 neurons: the update
loop alone ran 1.5x (scalar coefficients) to 1.65x (four per-neuron rows) slower from
16-byte than from 64-byte aligned arrays; whole engine runs of ``bench_region``'s
family rows 10-20 % (time in the kernel, interleaved, min and median of 15). Rows
start on a cache line when the buffer does and every row offset is a multiple of
:data:`LANES` elements (:func:`pad`).
"""

from __future__ import annotations

import numpy as np

#: Alignment of the engine's arrays (bytes): one cache line, one AVX-512 register.
ALIGN = 64
#: Elements per cache line of the narrowest aligned array (float64): offsets that are
#: multiples of this keep a row aligned in any dtype of at most 8 bytes.
LANES = ALIGN // 8


def pad(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`LANES` (an aligned row offset)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return -(-n // LANES) * LANES


def zeros(shape: int | tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """``np.zeros(shape, dtype)`` whose first element lies on a :data:`ALIGN`-byte
    boundary (a view into a slightly larger buffer, C-contiguous and writeable)."""
    dt = np.dtype(dtype)
    shape_t = (shape,) if isinstance(shape, int) else tuple(shape)
    count = int(np.prod(shape_t, dtype=np.int64))
    if count == 0:                      # nothing to load: alignment is moot
        return np.zeros(shape_t, dt)
    buf = np.zeros(count * dt.itemsize + ALIGN, np.uint8)
    start = -buf.ctypes.data % ALIGN
    return buf[start:start + count * dt.itemsize].view(dt).reshape(shape_t)


__all__ = ["ALIGN", "LANES", "pad", "zeros"]
