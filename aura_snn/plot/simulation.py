"""Figures of a region simulation from spike event lists (what ``aura-snn simulate`` draws).

Long runs are recorded as events, not rasters: each spiking region is given as
``{name: (t, i, n)}`` with ``t`` the step index of each spike, ``i`` its neuron index
(``0 <= i < n``) and ``n`` the region's size. Times on the axes are in seconds
(``t · dt``), intervals in ms.

=============================== =====================================================
:func:`save_event_raster`       spike raster, regions stacked, evenly spaced neurons
:func:`save_population_rates`   population rate per region (Hz per neuron), binned
:func:`save_isi_histogram`      inter-spike intervals (ms) pooled per region
:func:`save_weight_histogram`   synaptic weights per projection, shared bins
=============================== =====================================================

The statistics come from :mod:`aura_snn.metrics.events`; figures are drawn with the
Agg backend and written atomically by :func:`aura_snn.plot.save_figure`. numpy and
matplotlib only (no torch).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ..metrics.events import isis, population_rate
from ._figure import pyplot, save_figure

#: Spike events of each region: ``{name: (t steps [k] int, i neurons [k] int, n)}``.
RegionEvents = Mapping[str, tuple[np.ndarray, np.ndarray, int]]

_DPI = 110


def save_event_raster(path: str | os.PathLike[str], spikes: RegionEvents, dt: float,
                      steps: int, max_neurons: int = 500) -> None:
    """Spike raster of every region, stacked bottom to top, saved to ``path``.

    ``dt`` is the step (s) and ``steps`` the run length (the x axis spans
    ``[0, steps · dt]`` s). At most ``max_neurons`` neurons are drawn per region,
    evenly spaced over ``0 .. n - 1`` (the legend says how many of ``n``).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    base = 0
    for k, (name, (t, i, n)) in enumerate(spikes.items()):
        shown = min(n, max_neurons)
        pick = np.unique(np.linspace(0, n - 1, shown).round().astype(np.int64))
        keep_map = np.full(n, -1)
        keep_map[pick] = np.arange(pick.size)
        row = keep_map[i]
        sel = row >= 0
        ax.scatter(t[sel] * dt, row[sel] + base, s=0.6, marker="|", lw=0.5,
                   color=f"C{k % 10}", label=f"{name} ({shown} of {n})")
        base += pick.size
    ax.set_xlim(0, steps * dt)
    ax.set_ylim(-0.5, max(base, 1) - 0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("neuron")
    ax.set_title("spike raster")
    if spikes:
        ax.legend(loc="upper right", markerscale=8, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=_DPI)


def save_population_rates(path: str | os.PathLike[str], spikes: RegionEvents, dt: float,
                          steps: int, bin_s: float = 1e-3) -> None:
    """Population rate of each region, saved to ``path``.

    :math:`\\bar r(b) = c_b / (n · B · \\Delta t)` Hz per neuron, with ``c_b`` the
    spikes of the region in bin ``b`` of ``B = round(bin_s / dt)`` steps (at least
    one); ``dt`` and ``bin_s`` in seconds, ``steps`` the run length (see
    :func:`aura_snn.metrics.events.population_rate`).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    bin_steps = max(1, int(round(bin_s / dt)))
    for name, (t, _i, n) in spikes.items():
        x, r = population_rate(t, n, steps, dt, bin_steps)
        ax.plot(x, r, lw=0.8, label=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"rate (Hz, {bin_steps * dt * 1e3:g} ms bins)")
    ax.set_title("population rate")
    if spikes:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=_DPI)


def save_isi_histogram(path: str | os.PathLike[str], spikes: RegionEvents,
                       dt: float) -> None:
    """Histogram (80 bins) of the inter-spike intervals (ms) of each region, pooled
    over its neurons, saved to ``path``; ``dt`` is the step (s)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, (t, i, _n) in spikes.items():
        x = isis(t, i, dt) * 1e3
        if x.size:
            ax.hist(x, bins=80, histtype="step", label=f"{name} ({x.size} ISIs)")
    ax.set_xlabel("inter-spike interval (ms)")
    ax.set_ylabel("count")
    ax.set_title("ISI distribution")
    if spikes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=_DPI)


def save_weight_histogram(path: str | os.PathLike[str],
                          weights: Mapping[str, np.ndarray]) -> None:
    """Histogram of the synaptic weights of each projection (``{name: w [nnz]}``, in
    receptor input units, V), saved to ``path``.

    All projections share 60 bins over their common range (padded by 5 %), so a
    projection with constant weights shows as one visible bar.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    vals = [w for w in weights.values() if w.size]
    if vals:
        lo = min(float(w.min()) for w in vals)
        hi = max(float(w.max()) for w in vals)
        pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(lo), 1e-12)
        bins = np.linspace(lo - pad, hi + pad, 61)
        for name, w in weights.items():
            if w.size:
                ax.hist(w, bins=bins, histtype="stepfilled", alpha=0.5,
                        label=f"{name} ({w.size})")
        ax.legend(fontsize=8)
    ax.set_xlabel("weight (receptor input units, V)")
    ax.set_ylabel("synapses")
    ax.set_title("weights")
    fig.tight_layout()
    save_figure(fig, path, dpi=_DPI)


__all__ = ["RegionEvents", "save_event_raster", "save_isi_histogram",
           "save_population_rates", "save_weight_histogram"]
