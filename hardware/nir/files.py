"""NIR files: :func:`write` (atomic, through ``nir.write``) and :func:`read`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aura_snn._io import atomic_path
from aura_snn.errors import ParameterTypeError

from ._compat import import_nir
from .reading import read_file


def write(path: str | os.PathLike[str], graph: Any) -> Path:
    """Write ``graph`` (a ``nir.NIRGraph``) to the HDF5 file ``path`` with ``nir.write``,
    through a temporary file renamed into place (no partial file on failure)."""
    nir = import_nir()
    if not isinstance(graph, nir.NIRNode):
        raise ParameterTypeError(f"graph must be a nir.NIRGraph, got {type(graph).__name__}")
    with atomic_path(path, suffix=".nir") as tmp:
        nir.write(tmp, graph)
    return Path(path)


def read(path: str | os.PathLike[str]) -> Any:
    """Read a NIR file into a ``nir.NIRGraph``; a bad file or node raises an error that
    names it (:mod:`hardware.nir.reading`)."""
    return read_file(path)


__all__ = ["read", "write"]
