"""Figures of plastic projections: weight histograms before and after a run, and the
weight trajectories of sampled synapses (what ``aura-snn simulate`` draws for a file
with ``plasticity``).

=================================== =================================================
:func:`before_after_figure`         per plastic projection a row of two histograms,
                                    the starting weights (left) and the final ones
                                    (right), in the same :func:`weight_bins`
:func:`trajectory_figure`           per plastic projection the weight of each sampled
                                    synapse against time, with the rule's bounds
=================================== =================================================

Weights are given in V and drawn in mV; times in s (ms up to 2 s). Bar heights are
``np.histogram(w, bins=weight_bins(...))`` of the weights in V, counted before any unit
conversion, so the figure shows exactly those counts. numpy and matplotlib only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ParameterError
from ._figure import house_style, new_figure, region_color, save_figure, time_unit

_DPI = 130
#: Bins of each weight histogram.
WEIGHT_BINS = 40
Bounds = tuple[float | None, float | None]


def weight_bins(before: np.ndarray, after: np.ndarray, bounds: Bounds = (None, None),
                bins: int = WEIGHT_BINS) -> np.ndarray:
    """``bins + 1`` equal edges (V) from ``min(w_min, weights)`` to ``max(w_max,
    weights)`` over both arrays (a bound that is ``None`` is left out); a single value
    gets a bin of ±5 % around it (±1 µV at 0)."""
    if not (isinstance(bins, int) and bins >= 1):
        raise ParameterError(f"bins must be an integer >= 1, got {bins!r}")
    vals = [float(x) for x in bounds if x is not None]
    for w in (before, after):
        w = np.asarray(w, dtype=np.float64)
        if w.size:
            vals += [float(w.min()), float(w.max())]
    if not vals:
        return np.linspace(-1e-6, 1e-6, bins + 1)
    lo, hi = min(vals), max(vals)
    if hi == lo:
        pad = 0.05 * abs(lo) if lo else 1e-6
        lo, hi = lo - pad, hi + pad
    return np.linspace(lo, hi, bins + 1)


def before_after_figure(weights: Mapping[str, tuple[np.ndarray, np.ndarray]],
                        bounds: Mapping[str, Bounds] | None = None,
                        bins: int = WEIGHT_BINS) -> Any:
    """Histograms of ``{projection: (before, after)}`` weights (V); ``bounds`` the rule's
    ``(w_min, w_max)`` per projection (dashed lines, and the span of the bins).
    Each axis holds one bar container whose heights are the counts."""
    bounds = dict(bounds or {})
    n = max(1, len(weights))
    with house_style():
        fig, axes = new_figure(n, 2, width=8.0, height=0.9 + 1.5 * n, squeeze=False)
        for k, (name, (before, after)) in enumerate(weights.items()):
            b = bounds.get(name, (None, None))
            edges = weight_bins(before, after, b, bins)
            for col, (w, label) in enumerate(((before, "before"), (after, "after"))):
                ax = axes[k, col]
                w = np.asarray(w, dtype=np.float64)
                counts, _ = np.histogram(w, bins=edges)
                ax.bar(edges[:-1] * 1e3, counts, width=np.diff(edges) * 1e3, align="edge",
                       color="0.6" if col == 0 else region_color(k), lw=0)
                for x in b:
                    if x is not None:
                        ax.axvline(x * 1e3, color="0.3", lw=0.7, ls="--")
                stat = (f"{w.mean() * 1e3:.3g} ± {w.std() * 1e3:.2g} mV" if w.size
                        else "no synapses")
                ax.set_title(f"{name} {label}: {w.size} synapses, {stat}")
                ax.set_xlabel("weight (mV)")
            axes[k, 0].set_ylabel("synapses")
        if not weights:
            for ax in axes[0]:
                ax.text(0.5, 0.5, "no plastic projections", transform=ax.transAxes,
                        ha="center", va="center", color="0.4")
    return fig


def trajectory_figure(trajectories: Mapping[str, tuple[np.ndarray, np.ndarray]],
                      bounds: Mapping[str, Bounds] | None = None) -> Any:
    """``{projection: (t, values)}``: ``t`` ``[rows]`` times (s), ``values`` ``[rows, k]``
    weights (V) of ``k`` sampled synapses; one line per synapse, the bounds dashed."""
    bounds = dict(bounds or {})
    n = max(1, len(trajectories))
    span = max([float(np.max(t)) for t, _ in trajectories.values() if len(t)] or [0.0])
    unit, scale = time_unit(span)
    with house_style():
        fig, axes = new_figure(n, 1, width=8.0, height=0.9 + 1.6 * n, squeeze=False,
                               sharex=True)
        axes = axes[:, 0]
        for k, (ax, (name, (t, values))) in enumerate(zip(axes, trajectories.items(),
                                                          strict=False)):
            values = np.asarray(values, dtype=np.float64).reshape(len(t), -1)
            if values.size:
                ax.plot(np.asarray(t) * scale, values * 1e3, color=region_color(k),
                        lw=0.7, alpha=0.6)
            for x in bounds.get(name, (None, None)):
                if x is not None:
                    ax.axhline(x * 1e3, color="0.3", lw=0.7, ls="--")
            ax.set_title(f"{name}: {values.shape[1]} sampled synapses")
            ax.set_ylabel("weight (mV)")
        axes[-1].set_xlabel(f"time ({unit})")
        if not trajectories:
            axes[0].text(0.5, 0.5, "no plastic projections", transform=axes[0].transAxes,
                         ha="center", va="center", color="0.4")
    return fig


def save_before_after(path: str | os.PathLike[str],
                      weights: Mapping[str, tuple[np.ndarray, np.ndarray]],
                      bounds: Mapping[str, Bounds] | None = None) -> None:
    """Write :func:`before_after_figure` to ``path`` (atomically)."""
    save_figure(before_after_figure(weights, bounds), path, dpi=_DPI)


def save_trajectories(path: str | os.PathLike[str],
                      trajectories: Mapping[str, tuple[np.ndarray, np.ndarray]],
                      bounds: Mapping[str, Bounds] | None = None) -> None:
    """Write :func:`trajectory_figure` to ``path`` (atomically)."""
    save_figure(trajectory_figure(trajectories, bounds), path, dpi=_DPI)


__all__ = ["WEIGHT_BINS", "before_after_figure", "save_before_after", "save_trajectories",
           "trajectory_figure", "weight_bins"]
