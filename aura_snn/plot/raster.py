"""Spike rasters of dense ``[T, N]`` spike tensors (one panel per layer).

Rasters of event lists ``(t, i)`` from long simulations are in :mod:`.simulation`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ._figure import pyplot, save_figure


def plot_raster(ax: Any, spikes: torch.Tensor, dt: float, title: str = "",
                max_neurons: int = 256, color: str = "k") -> None:
    """Draw a ``[T, N]`` spike raster on ``ax`` (time in ms on x, neuron index on y)."""
    s = spikes.detach().reshape(spikes.shape[0], -1)[:, :max_neurons].cpu()
    t_idx, n_idx = torch.nonzero(s, as_tuple=True)
    ax.scatter(t_idx.numpy() * dt * 1e3, n_idx.numpy(), s=2, c=color, marker="|", linewidths=0.8)
    ax.set_xlim(0, s.shape[0] * dt * 1e3)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")
    if s.shape[1] <= 16:
        ax.set_yticks(range(s.shape[1]))
        ax.tick_params(axis="y", labelsize=7)
    if title:
        ax.set_title(title, fontsize=10, loc="left", pad=14)


def save_rasters(path: str | os.PathLike[str], rasters: dict[str, torch.Tensor], dt: float,
                 title: str = "", segments: list[str] | None = None) -> None:
    """One raster panel per layer (``{name: [T, N]}``), stacked vertically, saved as PNG.

    ``segments`` labels equal consecutive stretches of time (e.g. one per presented
    sample); they are separated by dotted lines and labelled on the top panel.
    """
    plt = pyplot()
    n = len(rasters)
    heights = [3.0 if s.shape[-1] > 32 else 1.4 for s in rasters.values()]
    fig, axes = plt.subplots(n, 1, figsize=(9, sum(heights) + 0.9), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for i, (ax, (name, s)) in enumerate(zip(axes[:, 0], rasters.items(), strict=True)):
        rate = float(s.float().mean()) / dt
        plot_raster(ax, s, dt, f"{name}: {s.shape[-1]} neurons, {rate:.1f} Hz mean")
        if segments:
            seg = s.shape[0] * dt * 1e3 / len(segments)
            for k, label in enumerate(segments):
                if k:
                    ax.axvline(k * seg, color="0.6", lw=0.6, ls=":")
                if i == 0:
                    ax.text((k + 0.5) * seg, 1.01, label, transform=ax.get_xaxis_transform(),
                            ha="center", va="bottom", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


__all__ = ["plot_raster", "save_rasters"]
