"""Figures of a region simulation from spike event lists (what ``aura-snn simulate`` draws).

Long runs are recorded as events, not rasters: each spiking region is given as
``{name: (t, i, n)}`` with ``t`` the step index of each spike, ``i`` its neuron index
(``0 <= i < n``) and ``n`` the region's size; ``dt`` is the step in seconds.

Every figure is readable at any duration, from a few ms to hours:

=============================== =====================================================
:func:`event_raster_figure`     the whole run's rate (all neurons) above a raster of
                                a window (default: the last second), regions in
                                blocks, evenly spaced neurons
:func:`population_rate_figure`  population rate, one panel per region, bins that
                                grow with the run (:func:`rate_bin_steps`)
:func:`isi_figure`              inter-spike intervals (ms), probability density per
                                region, bins over the 99th percentile
:func:`weight_figure`           synaptic weights (mV), one panel per projection
=============================== =====================================================

each with a ``save_*`` twin that writes it (:func:`save_event_raster`,
:func:`save_population_rates`, :func:`save_isi_histogram`,
:func:`save_weight_histogram`). Times are in ms on axes spanning up to 2 s and in s
beyond (:func:`~aura_snn.plot._figure.time_unit`), potentials in mV. Figures use the
house style of :mod:`aura_snn.plot._figure` (the ``k``-th region has the same colour
in every figure) and are written atomically by :func:`aura_snn.plot.save_figure`.

The statistics come from :mod:`aura_snn.metrics.events`. numpy and matplotlib only
(no torch).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..metrics.events import isis, population_rate
from ._figure import (
    house_style,
    new_figure,
    nice_ceil,
    pyplot,
    region_color,
    save_figure,
    time_unit,
)

#: Spike events of each region: ``{name: (t steps [k] int, i neurons [k] int, n)}``.
RegionEvents = Mapping[str, tuple[np.ndarray, np.ndarray, int]]

_DPI = 130
#: Bins of a whole-run rate trace: about one per 1.5 pixels of an 8-inch figure.
RATE_BINS = 500
#: Default raster window (s): the last second of the run (the whole of a shorter one).
RASTER_WINDOW_S = 1.0


def rate_bin_steps(steps: int, dt: float, bins: int = RATE_BINS) -> int:
    r"""Steps per bin of a rate trace over a run of ``steps`` steps of ``dt`` seconds.

    The bin is the smallest of ``1, 2, 5 × 10^k`` s that is at least
    :math:`T \Delta t / \text{bins}` (so a trace has at most ``bins`` bins and a
    round width), and at least one step: 2 ms for 1 s, 0.2 s for 100 s, 10 s for an
    hour. Returns ``max(1, round(bin / dt))``.
    """
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ParameterError(f"steps must be an integer >= 1, got {steps!r}")
    if not (dt > 0 and np.isfinite(dt)):
        raise ParameterError(f"dt must be a finite number > 0 (s), got {dt!r}")
    width = max(dt, nice_ceil(steps * dt / bins))
    return max(1, int(round(width / dt)))


def raster_window(steps: int, dt: float, window: tuple[float, float] | None = None
                  ) -> tuple[float, float]:
    """The ``(start, end)`` (s) a raster shows: ``window`` clipped to the run, or the
    last :data:`RASTER_WINDOW_S` seconds (the whole run when it is shorter)."""
    run = steps * dt
    if window is None:
        return max(0.0, run - RASTER_WINDOW_S), run
    start, end = (float(x) for x in window)
    start, end = max(0.0, start), min(run, end)
    if not end > start:
        raise ParameterError(f"window {window!r} (s) does not overlap the run [0, {run:g}] s")
    return start, end


def _duration_label(seconds: float) -> str:
    return f"{seconds:.4g} s" if seconds >= 0.1 else f"{seconds * 1e3:.4g} ms"


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            color="0.4")


def _pick(n: int, max_neurons: int) -> np.ndarray:
    """Up to ``max_neurons`` evenly spaced neuron indices of ``0 .. n - 1``."""
    return np.unique(np.linspace(0, n - 1, min(n, max_neurons)).round().astype(np.int64))


def event_raster_figure(spikes: RegionEvents, dt: float, steps: int, max_neurons: int = 200,
                        window: tuple[float, float] | None = None) -> Any:
    """The run's rate above a spike raster of a window; returns the figure.

    Top: the rate of all neurons pooled over the whole run (``[0, steps · dt]``) in
    bins of :func:`rate_bin_steps`, with the window shaded. Bottom: the spikes in
    ``window`` (s, default :func:`raster_window`'s last second) of at most
    ``max_neurons`` evenly spaced neurons per region, one block per region (the first
    on top), labelled with how many of its ``n`` neurons are shown.
    """
    start, end = raster_window(steps, dt, window)
    run = steps * dt
    with house_style():
        fig, (top, ax) = new_figure(2, 1, width=8.0, height=5.6,
                                    gridspec_kw={"height_ratios": [1, 3]})
        unit, scale = time_unit(run)
        bin_steps = rate_bin_steps(steps, dt)
        n_all = sum(n for _, _, n in spikes.values())
        if spikes:
            t_all = np.concatenate([np.asarray(t, np.int64) for t, _, _ in spikes.values()])
            x, r = population_rate(t_all, n_all, steps, dt, bin_steps)
            top.plot((x + bin_steps * dt / 2) * scale, r, color="0.15", lw=0.8)
        if end - start < run * (1 - 1e-9):
            top.axvspan(start * scale, end * scale, color=region_color(4), alpha=0.25, lw=0,
                        label="raster window")
        top.set_xlim(0, run * scale)
        top.set_ylim(0, max(1.05 * float(r.max()) if spikes and r.size else 0.0, 1.0))
        top.set_xlabel(f"time ({unit})")
        top.set_ylabel("rate (Hz)")
        top.set_title(f"all {n_all} neurons, whole run, {_duration_label(bin_steps * dt)} bins")

        w_unit, w_scale = time_unit(end - start)
        # a window in ms that starts late counts from its start: "time after 99 s (ms)"
        origin = start if (w_unit == "ms" and start > 0) else 0.0
        lo, hi = int(np.ceil(start / dt - 1e-9)), int(np.floor(end / dt + 1e-9))
        picks = [_pick(n, max_neurons) for _, _, n in spikes.values()]
        rows = max(1, sum(p.size for p in picks))
        size = float(np.clip((0.9 * 260.0 / rows) ** 2, 1.0, 36.0))  # marker length^2, pt^2
        base, ticks, labels, drawn = rows, [], [], 0
        for k, ((name, (t, i, n)), pick) in enumerate(zip(spikes.items(), picks, strict=True)):
            t, i = np.asarray(t), np.asarray(i)
            row_of = np.full(n, -1, np.int64)
            row_of[pick] = np.arange(pick.size)
            sel = (t >= lo) & (t <= hi)
            row = row_of[i[sel]]
            keep = row >= 0
            base -= pick.size
            ax.scatter((t[sel][keep] * dt - origin) * w_scale,
                       base + pick.size - 1 - row[keep], s=size, marker="|", linewidths=0.6,
                       color=region_color(k))
            drawn += int(keep.sum())
            ticks.append(base + (pick.size - 1) / 2)
            labels.append(f"{name}\n{pick.size} of {n}")
            if base > 0:
                ax.axhline(base - 0.5, color="0.6", lw=0.6)
        if not drawn:
            _note(ax, "no spikes in this window")
        ax.set_xlim((start - origin) * w_scale, (end - origin) * w_scale)
        ax.set_ylim(-0.5, rows - 0.5)
        ax.set_yticks(ticks, labels)
        ax.grid(False)
        ax.set_xlabel(f"time after {origin:.4g} s ({w_unit})" if origin else
                      f"time ({w_unit})")
        ax.set_title(f"spike raster, {start:.4g} to {end:.4g} s"
                     + ("" if window is not None or end - start >= run * (1 - 1e-9)
                        else " (the last second)"))
    return fig


def population_rate_figure(spikes: RegionEvents, dt: float, steps: int,
                           bin_s: float | None = None) -> Any:
    r"""Population rate of each region in its own panel; returns the figure.

    :math:`\bar r(b) = c_b / (n · B · \Delta t)` Hz per neuron, with ``c_b`` the
    spikes of the region in bin ``b`` of ``B`` steps: ``round(bin_s / dt)`` (at least
    one) or, with ``bin_s=None``, :func:`rate_bin_steps` (bins that grow with the
    run). Plotted at bin centres; the dashed line is the region's mean rate.
    """
    bin_steps = max(1, int(round(bin_s / dt))) if bin_s is not None else \
        rate_bin_steps(steps, dt)
    run = steps * dt
    unit, scale = time_unit(run)
    n_panels = max(1, len(spikes))
    with house_style():
        fig, axes = new_figure(n_panels, 1, width=8.0, height=0.7 + 1.35 * n_panels,
                               sharex=True, squeeze=False)
        axes = axes[:, 0]
        for k, (ax, (name, (t, _i, n))) in enumerate(zip(axes, spikes.items(), strict=False)):
            x, r = population_rate(t, n, steps, dt, bin_steps)
            mean = len(t) / (n * run)
            ax.plot((x + bin_steps * dt / 2) * scale, r, color=region_color(k), lw=0.9)
            ax.axhline(mean, color="0.35", lw=0.7, ls="--")
            ax.set_ylim(bottom=0, top=max(1.05 * float(r.max()) if r.size else 0.0, 1.0))
            ax.set_ylabel("rate (Hz)")
            ax.set_title(f"{name} ({n} neurons): mean {mean:.3g} Hz (dashed)")
        if not spikes:
            _note(axes[0], "no spiking regions")
        axes[-1].set_xlim(0, run * scale)
        axes[-1].set_xlabel(f"time ({unit})")
        fig.suptitle(f"population rate, {_duration_label(bin_steps * dt)} bins", x=0.01,
                     ha="left", fontsize=10)
    return fig


def isi_figure(spikes: RegionEvents, dt: float) -> Any:
    """Probability density of the inter-spike intervals (ms) of each region, pooled
    over its neurons; returns the figure.

    All regions share bins over ``[0, q]`` with ``q`` the 95th percentile of every
    interval (the long tail of a low-rate region would squash the peak), about 80 of
    them, 1, 2 or 5 × 10^k ms and at least one step wide; the title counts the
    intervals beyond ``q``; the legend (outside the axes) gives each region's count
    and median.
    """
    vals = {name: isis(t, i, dt) * 1e3 for name, (t, i, _n) in spikes.items()}
    pooled = np.concatenate([v for v in vals.values() if v.size]) if any(
        v.size for v in vals.values()) else np.zeros(0)
    with house_style():
        fig, ax = new_figure(width=7.0, height=3.2)
        if pooled.size:
            q95 = max(float(np.percentile(pooled, 95)), dt * 1e3)
            width = max(dt * 1e3, nice_ceil(q95 / 80))
            q = width * np.ceil(q95 / width - 1e-9)
            bins = np.arange(0.0, q + width / 2, width)
            for k, (name, v) in enumerate(vals.items()):
                if v.size:
                    ax.hist(v, bins=bins, histtype="step", density=True, lw=1.2,
                            color=region_color(k),
                            label=f"{name}: {v.size} intervals,\nmedian {np.median(v):.3g} ms")
            ax.set_xlim(0, q)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
            clipped = int(np.sum(pooled > q))
            ax.set_title(f"inter-spike intervals, {width:.3g} ms bins"
                         + (f"; {clipped} above {q:.4g} ms not shown" if clipped else ""))
        else:
            _note(ax, "no inter-spike intervals (no neuron spiked twice)")
            ax.set_title("inter-spike intervals")
        ax.set_xlabel("inter-spike interval (ms)")
        ax.set_ylabel("probability density (1/ms)")
    return fig


def weight_figure(weights: Mapping[str, np.ndarray]) -> Any:
    """Histogram of the synaptic weights (mV) of each projection in its own panel
    (``{name: w [nnz]}`` in V, receptor input units); returns the figure.

    The panels share 60 bins over the common range (padded by 5 %), so a projection
    with constant weights shows as one bar at its value; each panel is labelled on the
    right (name, synapses, value or mean ± sd), never over the data.
    """
    mv = {name: np.asarray(w, dtype=np.float64) * 1e3 for name, w in weights.items()}
    full = [w for w in mv.values() if w.size]
    n_panels = max(1, len(mv))
    with house_style():
        fig, axes = new_figure(n_panels, 1, width=7.0, height=0.7 + 0.95 * n_panels,
                               sharex=True, squeeze=False)
        axes = axes[:, 0]
        bins = None
        if full:
            lo = min(float(w.min()) for w in full)
            hi = max(float(w.max()) for w in full)
            pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(lo), 1e-9)
            bins = np.linspace(lo - pad, hi + pad, 61)
        for k, (ax, (name, w)) in enumerate(zip(axes, mv.items(), strict=False)):
            if w.size:
                ax.hist(w, bins=bins, color=region_color(k), lw=0)
                lo_w, hi_w = float(w.min()), float(w.max())
                value = (f"all {lo_w:.3g} mV" if lo_w == hi_w else
                         f"{w.mean():.3g} ± {w.std():.2g} mV")
                ax.text(1.01, 0.5, f"{name}: {w.size} synapses\n{value}",
                        transform=ax.transAxes, ha="left", va="center")
                if bins is not None and bins[0] < 0 < bins[-1]:
                    ax.axvline(0, color="0.6", lw=0.6)
            else:
                ax.text(1.01, 0.5, f"{name}: no synapses", transform=ax.transAxes,
                        ha="left", va="center")
            ax.set_ylabel("synapses")
        if not mv:
            _note(axes[0], "no projections")
        axes[-1].set_xlabel("weight (mV)")
        axes[0].set_title("synaptic weights")
    return fig


def save_event_raster(path: str | os.PathLike[str], spikes: RegionEvents, dt: float,
                      steps: int, max_neurons: int = 200,
                      window: tuple[float, float] | None = None) -> None:
    """Write :func:`event_raster_figure` to ``path`` (PNG unless the extension says)."""
    save_figure(event_raster_figure(spikes, dt, steps, max_neurons, window), path, dpi=_DPI)


def save_population_rates(path: str | os.PathLike[str], spikes: RegionEvents, dt: float,
                          steps: int, bin_s: float | None = None) -> None:
    """Write :func:`population_rate_figure` to ``path``."""
    save_figure(population_rate_figure(spikes, dt, steps, bin_s), path, dpi=_DPI)


def save_isi_histogram(path: str | os.PathLike[str], spikes: RegionEvents,
                       dt: float) -> None:
    """Write :func:`isi_figure` to ``path``."""
    save_figure(isi_figure(spikes, dt), path, dpi=_DPI)


def save_weight_histogram(path: str | os.PathLike[str],
                          weights: Mapping[str, np.ndarray]) -> None:
    """Write :func:`weight_figure` to ``path``."""
    save_figure(weight_figure(weights), path, dpi=_DPI)


__all__ = ["RASTER_WINDOW_S", "RATE_BINS", "RegionEvents", "event_raster_figure", "pyplot",
           "isi_figure", "population_rate_figure", "raster_window", "rate_bin_steps",
           "region_color", "save_event_raster", "save_isi_histogram",
           "save_population_rates", "save_weight_histogram", "weight_figure"]
