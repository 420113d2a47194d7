"""Figures (matplotlib, Agg backend), each written atomically.

=========================== ======================================================
module                      figures
=========================== ======================================================
:mod:`._figure`             :func:`pyplot` (Agg), :func:`house_style`,
                            :func:`new_figure`, :func:`region_color`,
                            :func:`save_figure` (atomic): the one setup, style and
                            saving path every figure module uses
:mod:`.raster`              :func:`plot_raster`, :func:`save_rasters`: dense
                            ``[T, N]`` spike tensors, one panel per layer
:mod:`.simulation`          :func:`save_event_raster`, :func:`save_population_rates`,
                            :func:`save_isi_histogram`, :func:`save_weight_histogram`
                            (and the ``*_figure`` functions they save): event lists
                            ``(t, i)`` of a region simulation, readable at any
                            duration (:func:`rate_bin_steps`, :func:`raster_window`)
=========================== ======================================================

Names are imported lazily (PEP 562): :mod:`.simulation` needs numpy and matplotlib
only, :mod:`.raster` also torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "pyplot": "_figure", "save_figure": "_figure", "house_style": "_figure",
    "new_figure": "_figure", "region_color": "_figure", "PALETTE": "_figure",
    "STYLE": "_figure",
    "plot_raster": "raster", "save_rasters": "raster",
    "RegionEvents": "simulation", "save_event_raster": "simulation",
    "save_isi_histogram": "simulation", "save_population_rates": "simulation",
    "save_weight_histogram": "simulation", "event_raster_figure": "simulation",
    "population_rate_figure": "simulation", "isi_figure": "simulation",
    "weight_figure": "simulation", "rate_bin_steps": "simulation",
    "raster_window": "simulation",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
