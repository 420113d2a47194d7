"""Huge pages for the large tensors the fused kernels write.

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
