"""Memory for the large tensors the fused kernels write: huge pages and a buffer pool.

Spike trains, saved membranes and input gradients are ``[T, M]`` tensors made on every
forward/backward. Above glibc's mmap threshold (128 KiB, raised dynamically up to
32 MiB; freed heap above twice that is trimmed) each arrives as untouched pages and
the first touch of every 4 KiB page costs a fault: at (T, B, N) = (100, 16, 512) a
fused LIF forward+backward spent half its 6.8 ms there. Two remedies:

* :class:`BufferPool` recycles the kernels' ``[T, M]`` buffers: a buffer goes back to
  the pool when the last tensor using its memory is freed, and the next step of a
  training loop gets it back warm. The free buffers it keeps are bounded in bytes
  (least recently used shapes evicted first), so a loop whose shapes vary does not
  pile up buffers it will never ask for again;
* huge-page advice (``madvise(MADV_HUGEPAGE)``) for the first allocation of a large
  buffer: ~13 ms instead of ~50 ms of faults per 128 MiB here. It is applied only to
  buffers of :data:`MIN_BYTES` or more, only where ``madvise`` exists (Linux).
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import math
import os
import sys
import threading
import weakref

import numpy as np
import torch

from .._checks import check_int
from ..errors import ParameterError

MIN_BYTES = 16 << 20
_MADV_HUGEPAGE = 14
_PAGE = 4096
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


ENV_LIMIT = "AURA_SNN_POOL_MIB"
WINDOW = 1024


def _libc_function(name: str, argtypes: list, glibc_only: bool = False):  # noqa: ANN202
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if glibc_only:
            libc.gnu_get_libc_version  # noqa: B018 - absent from musl and others
        fn = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


_madvise = _libc_function("madvise", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int])
_malloc_trim = _libc_function("malloc_trim", [ctypes.c_size_t], glibc_only=True)


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
    r"""Recycles the fused kernels' ``[T, M]`` CPU buffers across calls, within a byte bound.

    :meth:`empty_like` returns an ordinary contiguous tensor whose memory is a pooled
    numpy block (``torch.from_numpy`` of a fresh view of it). The block returns to the
    pool when that view is garbage-collected, which happens exactly when the last
    tensor sharing its storage (the result, its views, a saved tensor in an autograd
    graph, a ``.grad`` that adopted it) is freed: never while anything can still read
    it, so neither recycling nor eviction can touch a live buffer.

    Free blocks are kept per ``(shape, dtype)`` in least-recently-used order (a shape
    is used when a block of it is handed out or returned). A returned block larger
    than the bound is dropped; otherwise it is kept and the least recently used
    shapes lose blocks until the free bytes :math:`H` satisfy :math:`H \le L`.

    The bound :math:`L` (bytes) is ``limit`` when given (``0`` disables pooling);
    with ``limit=None`` it adapts to the working set,
    :math:`L = 2 \max(P_\text{now}, P_\text{prev})`, where :math:`P` is the peak of
    bytes handed out and not yet returned in the current and the previous window of
    ``window`` requests. A loop of fixed shapes then finds every buffer of its next
    step in the pool (a step whose shapes interleave can need more free blocks than
    its peak, hence the factor 2), while a loop of varying shapes holds at most twice
    its largest recent step, and a large one-off step is forgotten after two windows.
    :meth:`clear` drops every free block and restarts the windows. CUDA tensors and
    dtypes numpy lacks (half, bfloat16) are not pooled (PyTorch's CUDA caching
    allocator already recycles). The one visible difference from
    ``torch.empty_like``: the storage cannot be resized in place.
    """

    def __init__(self, limit: int | None = None, window: int = WINDOW) -> None:
        self._fixed = None if limit is None else check_int("limit", limit, 0)
        self.window = check_int("window", window, 1)
        self._free: collections.OrderedDict[tuple, list[np.ndarray]] = \
            collections.OrderedDict()
        self._bytes = 0            # held in free blocks
        self._live = 0             # handed out, not yet returned
        self._peak = self._peak_prev = self._count = 0
        self.allocations = 0       # fresh blocks made (requests the pool could not serve)
        # A block's finalizer may run inside a critical section (a garbage collection
        # triggered there, or another thread): it queues the block, and whoever holds
        # the lock takes the queue in.
        self._returned: collections.deque[tuple[tuple, np.ndarray]] = collections.deque()
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        """The bound on free bytes now: the fixed limit, or twice the recent peak."""
        if self._fixed is not None:
            return self._fixed
        return 2 * max(self._peak, self._peak_prev)

    def set_limit(self, limit: int | None) -> int | None:
        """Fix the bound at ``limit`` bytes (``None``: adaptive); returns the previous."""
        limit = None if limit is None else check_int("nbytes", limit, 0)
        with self._lock:
            previous, self._fixed = self._fixed, limit
            self._take_returned()
            self._shrink()
        return previous

    def empty_like(self, like: torch.Tensor) -> torch.Tensor:
        """An uninitialised contiguous tensor shaped like ``like``."""
        np_dtype = _NUMPY_DTYPES.get(like.dtype)
        if like.device.type != "cpu" or np_dtype is None:
            return empty_like_huge(like)
        key = (tuple(like.shape), like.dtype)
        size = math.prod(key[0]) * like.element_size()
        with self._lock:
            self._take_returned()
            block = None
            free = self._free.get(key)
            if free:
                block = free.pop()
                self._bytes -= block.nbytes
                if free:
                    self._free.move_to_end(key)
                else:
                    del self._free[key]
            self._live += size
            self._peak = max(self._peak, self._live)
            self._count += 1
            if self._count == self.window:   # the next window starts from what is live
                self._count, self._peak_prev, self._peak = 0, self._peak, self._live
                self._shrink()
        if block is None:
            block = np.empty(key[0], np_dtype)
            _advise(block.ctypes.data, block.nbytes)
            with self._lock:
                self.allocations += 1
        view = block.view()  # the tensor holds this view; its death frees the block
        weakref.finalize(view, self._release, key, block).atexit = False
        return torch.from_numpy(view)

    def _release(self, key: tuple, block: np.ndarray) -> None:
        self._returned.append((key, block))
        if self._lock.acquire(blocking=False):
            try:
                self._take_returned()
            finally:
                self._lock.release()

    def _take_returned(self) -> None:
        """Keep the queued returned blocks (caller holds the lock)."""
        while self._returned:
            key, block = self._returned.popleft()
            self._live -= block.nbytes
            if block.nbytes > self.limit:
                continue
            self._free.setdefault(key, []).append(block)
            self._free.move_to_end(key)
            self._bytes += block.nbytes
            self._shrink()

    def _shrink(self) -> None:
        """Evict from the least recently used shapes until within the bound."""
        limit = self.limit
        while self._bytes > limit:
            key, free = next(iter(self._free.items()))
            self._bytes -= free.pop().nbytes
            if not free:
                del self._free[key]

    def clear(self) -> None:
        """Drop every free block (memory goes back to the allocator); restart the windows."""
        with self._lock:
            self._take_returned()
            self._free.clear()
            self._bytes = 0
            self._peak, self._peak_prev, self._count = self._live, 0, 0

    def contents(self) -> list[tuple[tuple, int]]:
        """``[((shape, dtype), number of free blocks), ...]``, least recently used first."""
        with self._lock:
            self._take_returned()
            return [(key, len(free)) for key, free in self._free.items()]

    @property
    def nbytes(self) -> int:
        """Bytes held in free blocks."""
        with self._lock:
            self._take_returned()
            return self._bytes


def _limit_from_env() -> int | None:
    text = os.environ.get(ENV_LIMIT, "").strip()
    if not text:
        return None
    try:
        mib = float(text)
    except ValueError:
        mib = math.nan
    if not (math.isfinite(mib) and mib >= 0):
        raise ParameterError(f"environment variable {ENV_LIMIT} must be a number of MiB "
                             f">= 0 (0 disables the kernels' buffer pool), got {text!r}")
    return int(mib * (1 << 20))


BUFFERS = BufferPool(limit=_limit_from_env())


def set_pool_limit(nbytes: int | None) -> int | None:
    """Bound the free CPU buffers the fused kernels keep, in bytes; returns the previous.

    ``None`` (the default, unless the environment variable ``AURA_SNN_POOL_MIB`` gives
    a number of MiB at import) adapts the bound to twice the peak of buffer bytes in
    use over the last 1024-2048 requests (:class:`BufferPool`); ``0`` disables pooling
    (every buffer fresh). Free buffers beyond a lowered bound are dropped at once.
    """
    return BUFFERS.set_limit(nbytes)


def empty_cache() -> None:
    """Return the fused kernels' free CPU buffers, and the heap's free pages, to the system.

    Drops every pooled free buffer, then, where the C library is glibc, calls
    ``malloc_trim(0)`` (through ctypes) so that freed heap memory leaves the process:
    buffers above glibc's mmap threshold (raised as large blocks are freed) live on
    the heap, and plain ``free`` keeps them in the process's RSS. Elsewhere (macOS,
    Windows, musl) the trim is a no-op.
    """
    BUFFERS.clear()
    if _malloc_trim is not None:
        _malloc_trim(0)
