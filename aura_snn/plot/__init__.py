"""Figures (matplotlib, Agg backend): rasters, rates, histograms. Written atomically."""

from .raster import plot_raster, save_figure, save_rasters

__all__ = ["plot_raster", "save_figure", "save_rasters"]
