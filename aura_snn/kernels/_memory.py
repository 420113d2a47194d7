"""Memory for the large tensors the fused kernels write: huge pages and a buffer pool.

Spike trains, saved membranes and input gradients are ``[T, M]`` tensors made on every
forward/backward. Above glibc's mmap threshold (128 KiB, raised dynamically up to
32 MiB; freed heap above twice that is trimmed) each arrives as untouched pages and
the first touch of every 4 KiB page costs a fault: at (T, B, N) = (100, 16, 512) a
fused LIF forward+backward spent half its 6.8 ms there. Two remedies:

* :class:`BufferPool` recycles the kernels' ``[T, M]`` buffers: a buffer goes back to
  the pool when the last tensor using its memory is freed, and the next step of a
  training loop gets it back warm;
* huge-page advice (``madvise(MADV_HUGEPAGE)``) for the first allocation of a large
  buffer: ~13 ms instead of ~50 ms of faults per 128 MiB here. It is applied only to
  buffers of :data:`MIN_BYTES` or more, only where ``madvise`` exists (Linux).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import weakref

import numpy as np
import torch

MIN_BYTES = 16 << 20
_MADV_HUGEPAGE = 14
_PAGE = 4096
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _load_madvise():  # noqa: ANN202
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_madvise = _load_madvise()


def _advise(address: int, nbytes: int) -> None:
    if _madvise is None or nbytes < MIN_BYTES:
        return
    start = (address + _PAGE - 1) & ~(_PAGE - 1)
    end = (address + nbytes) & ~(_PAGE - 1)
    if end > start:
        _madvise(start, end - start, _MADV_HUGEPAGE)  # advice only: failure is harmless


def advise_huge_pages(t: torch.Tensor) -> torch.Tensor:
    """Ask for transparent huge pages under a large CPU tensor's memory; returns ``t``."""
    if t.device.type == "cpu":
        _advise(t.data_ptr(), t.untyped_storage().nbytes())
    return t


def empty_like_huge(x: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(x)`` with huge-page advice when large."""
    return advise_huge_pages(torch.empty_like(x))


class BufferPool:
    """Recycles the fused kernels' ``[T, M]`` CPU buffers across calls.

    :meth:`empty_like` returns an ordinary contiguous tensor whose memory is a pooled
    numpy block (``torch.from_numpy`` of a fresh view of it). The block returns to the
    pool when that view is garbage-collected, which happens exactly when the last
    tensor sharing its storage (the result, its views, a saved tensor in an autograd
    graph, a ``.grad`` that adopted it) is freed: never while anything can still read
    it. At most ``keep`` free blocks per shape and ``max_bytes`` in total are kept;
    :meth:`clear` (``aura_snn.kernels.empty_cache()``) hands them back to the
    allocator. CUDA tensors and dtypes numpy lacks (half, bfloat16) are not pooled
    (PyTorch's CUDA caching allocator already recycles). The one visible difference
    from ``torch.empty_like``: the storage cannot be resized in place.
    """

    def __init__(self, keep: int = 4, max_bytes: int = 1 << 30) -> None:
        self.keep = keep
        self.max_bytes = max_bytes
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._bytes = 0
        # re-entrant: a garbage collection inside the critical section may run a
        # finalizer that releases a block from the same thread
        self._lock = threading.RLock()

    def empty_like(self, like: torch.Tensor) -> torch.Tensor:
        """An uninitialised contiguous tensor shaped like ``like``."""
        np_dtype = _NUMPY_DTYPES.get(like.dtype)
        if like.device.type != "cpu" or np_dtype is None:
            return empty_like_huge(like)
        key = (tuple(like.shape), like.dtype)
        with self._lock:
            free = self._free.get(key)
            block = free.pop() if free else None
            if block is not None:
                self._bytes -= block.nbytes
        if block is None:
            block = np.empty(key[0], np_dtype)
            _advise(block.ctypes.data, block.nbytes)
        view = block.view()  # the tensor holds this view; its death frees the block
        weakref.finalize(view, self._release, key, block)
        return torch.from_numpy(view)

    def _release(self, key: tuple, block: np.ndarray) -> None:
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self.keep and self._bytes + block.nbytes <= self.max_bytes:
                free.append(block)
                self._bytes += block.nbytes

    def clear(self) -> None:
        """Drop every free block (memory goes back to the allocator)."""
        with self._lock:
            self._free.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held in free blocks."""
        return self._bytes


BUFFERS = BufferPool()


def empty_cache() -> None:
    """Return the fused kernels' cached free CPU buffers to the allocator."""
    BUFFERS.clear()
