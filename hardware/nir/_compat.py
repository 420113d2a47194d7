"""Lazy import of the ``nir`` package (an optional peer: ``pip install aura-snn[peers]``)."""

from __future__ import annotations

import importlib
from types import ModuleType

from aura_snn.errors import MissingExtraError

INSTALL = "pip install aura-snn[peers]"


def import_nir() -> ModuleType:
    """Return the ``nir`` package; raise :class:`~aura_snn.errors.MissingExtraError`
    naming the install command when it (or its ``h5py`` dependency) is missing."""
    try:
        return importlib.import_module("nir")
    except ImportError as exc:
        raise MissingExtraError(
            f"NIR export/import needs the 'nir' package (and h5py): {INSTALL} "
            f"({exc})") from None


__all__ = ["INSTALL", "import_nir"]
