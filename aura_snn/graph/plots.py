"""PNG plots of a simulation (matplotlib, Agg backend): raster, population rate, ISI
histogram, weight histogram. Each figure is written atomically."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path
from .summary import isis, population_rate


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    _plt().close(fig)


def raster(spikes: Mapping[str, tuple[np.ndarray, np.ndarray, int]], dt: float, steps: int,
           path: Path, max_neurons: int = 500) -> None:
    """Spike raster, regions stacked; at most ``max_neurons`` neurons shown per region
    (evenly spaced)."""
    plt = _plt()
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
    _save(fig, path)


def population_rates(spikes: Mapping[str, tuple[np.ndarray, np.ndarray, int]], dt: float,
                     steps: int, path: Path, bin_s: float = 1e-3) -> None:
    """Population rate (Hz per neuron) per region in bins of ``bin_s`` seconds."""
    plt = _plt()
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
    _save(fig, path)


def isi_histogram(spikes: Mapping[str, tuple[np.ndarray, np.ndarray, int]], dt: float,
                  path: Path) -> None:
    """Histogram of inter-spike intervals (ms), pooled per region."""
    plt = _plt()
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
    _save(fig, path)


def weight_histogram(weights: Mapping[str, np.ndarray], path: Path) -> None:
    """Histogram of synaptic weights per projection, on bins shared by all of them (so
    constant weights show as one visible bar)."""
    plt = _plt()
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
    _save(fig, path)


__all__ = ["isi_histogram", "population_rates", "raster", "weight_histogram"]
