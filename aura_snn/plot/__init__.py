"""Figures (matplotlib, Agg backend), each written atomically.

=========================== ======================================================
module                      figures
=========================== ======================================================
:mod:`._figure`             :func:`pyplot` (Agg), :func:`save_figure` (atomic): the
                            one setup and saving path every figure module uses
:mod:`.raster`              :func:`plot_raster`, :func:`save_rasters`: dense
                            ``[T, N]`` spike tensors, one panel per layer
:mod:`.simulation`          :func:`save_event_raster`, :func:`save_population_rates`,
                            :func:`save_isi_histogram`, :func:`save_weight_histogram`:
                            event lists ``(t, i)`` of a region simulation
=========================== ======================================================

Names are imported lazily (PEP 562): :mod:`.simulation` needs numpy and matplotlib
only, :mod:`.raster` also torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "pyplot": "_figure", "save_figure": "_figure",
    "plot_raster": "raster", "save_rasters": "raster",
    "RegionEvents": "simulation", "save_event_raster": "simulation",
    "save_isi_histogram": "simulation", "save_population_rates": "simulation",
    "save_weight_histogram": "simulation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
