"""Keep numba's on-disk cache honest about the files a compiled module inlines.

Numba's ``cache=True`` keys a cached function on the source file that *defines* it
(its timestamp and size). A kernel that inlines functions from other files (the
family step of :mod:`aura_snn.kernels.family`, the surrogates of
:mod:`aura_snn.functional.surrogate`) is not recompiled when only those change, so an
edit there would silently run the old code. :func:`invalidate_if_changed` is called
when such a module is imported, before anything is compiled: it hashes the module and
the files it inlines, and when the hash differs from the one stored beside numba's
cache files it removes that module's cache files, so numba compiles afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _digest(files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def invalidate_if_changed(module_file: str, deps: Iterable[str]) -> bool:
    """Drop ``module_file``'s numba cache if it or any of ``deps`` (paths of the files
    it inlines) changed since the cache was written. Returns whether it dropped it.
    Never raises: a read-only or missing cache folder just leaves numba to decide."""
    src = Path(module_file)
    files = [src, *(Path(d) for d in deps)]
    cache = src.parent / "__pycache__"
    stamp = cache / f"{src.stem}.aura-deps"
    try:
        digest = _digest(files)
        if stamp.exists() and stamp.read_text() == digest:
            return False
        dropped = False
        for f in cache.glob(f"{src.stem}.*.nb[ic]") if cache.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
                dropped = True
        cache.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{stamp.name}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest)
        os.replace(tmp, stamp)
        return dropped
    except OSError:
        return False


__all__ = ["invalidate_if_changed"]
