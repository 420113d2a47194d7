"""Memory for the large tensors the fused kernels write: huge pages and a buffer pool.

Spike trains, saved membranes and input gradients are fresh ``[T, M]`` allocations on
every forward/backward. Above glibc's mmap threshold they arrive as untouched pages,
and the first touch of each 4 KiB page costs a fault: ~50 ms per 128 MiB here, more
than the kernel itself. Advising the kernel to back the range with transparent huge
pages (``madvise(MADV_HUGEPAGE)``) makes that ~13 ms. It is applied only to tensors of
:data:`MIN_BYTES` or more (smaller ones are recycled by the allocator and never
fault), only where the system allows ``madvise`` (Linux), and is a no-op elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import weakref

import torch

MIN_BYTES = 16 << 20
_MADV_HUGEPAGE = 14
_PAGE = 4096


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


def advise_huge_pages(t: torch.Tensor) -> torch.Tensor:
    """Ask for transparent huge pages under a large CPU tensor's memory; returns ``t``."""
    if _madvise is None or t.device.type != "cpu":
        return t
    nbytes = t.untyped_storage().nbytes()
    if nbytes < MIN_BYTES:
        return t
    start = (t.data_ptr() + _PAGE - 1) & ~(_PAGE - 1)
    end = (t.data_ptr() + nbytes) & ~(_PAGE - 1)
    if end > start:
        _madvise(start, end - start, _MADV_HUGEPAGE)  # advice only: failure is harmless
    return t


def empty_like_huge(x: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(x)`` with huge-page advice when large."""
    return advise_huge_pages(torch.empty_like(x))


class BufferPool:
    """Recycles the fused kernels' internal ``[T, M]`` buffers (the membrane saved for
    backward), which nothing outside the kernel ever sees.

    A buffer handed out by :meth:`acquire` belongs to one autograd node; it returns to
    the pool when that node is destroyed (the graph and its outputs are gone), never
    earlier, so ``retain_graph`` and several live graphs are safe. Reusing warm memory
    avoids the first-touch page faults of a fresh allocation (at T=500, M=65536 about a
    fifth of a forward+backward). At most ``keep`` free buffers per shape and
    ``max_bytes`` in total are kept; CUDA tensors are not pooled (PyTorch's caching
    allocator already recycles them).
    """

    def __init__(self, keep: int = 2, max_bytes: int = 1 << 30) -> None:
        self.keep = keep
        self.max_bytes = max_bytes
        self._free: dict[tuple, list[torch.Tensor]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(like: torch.Tensor) -> tuple:
        return (tuple(like.shape), like.dtype, like.device)

    def acquire(self, like: torch.Tensor, owner: object) -> torch.Tensor:
        """An uninitialised tensor shaped like ``like``, returned to the pool when
        ``owner`` (the autograd node) is garbage-collected."""
        if like.device.type != "cpu":
            return torch.empty_like(like)
        key = self._key(like)
        with self._lock:
            free = self._free.get(key)
            buf = free.pop() if free else None
            if buf is not None:
                self._bytes -= buf.untyped_storage().nbytes()
        if buf is None:
            buf = empty_like_huge(like)
        weakref.finalize(owner, self._release, key, buf)
        return buf

    def _release(self, key: tuple, buf: torch.Tensor) -> None:
        nbytes = buf.untyped_storage().nbytes()
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self.keep and self._bytes + nbytes <= self.max_bytes:
                free.append(buf)
                self._bytes += nbytes

    def clear(self) -> None:
        """Drop every free buffer (memory goes back to the allocator)."""
        with self._lock:
            self._free.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held in free buffers."""
        return self._bytes


SAVED_BUFFERS = BufferPool()
