"""Energy breakdown and sparsity-per-layer bar charts of a ``hardware.energy`` report."""

from __future__ import annotations

import math
import os
from typing import Any

from ._figure import house_style, new_figure, region_color, save_figure


def plot_energy(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Two panels saved atomically to ``path``: energy per layer per inference (pJ) in
    the compute-only and the memory convention, and activation sparsity of each spiking
    layer (fraction of zero outputs)."""
    layers = report.get("layers")
    if not layers:
        raise ValueError("report: has no layers")
    names = list(layers)
    n = report["samples"]
    with house_style():
        fig, (ax_e, ax_s) = new_figure(1, 2, width=10.0, height=3.2)
        xs = range(len(names))
        for k, key in enumerate(("compute_pJ", "memory_pJ")):
            ax_e.bar([i + 0.4 * k for i in xs], [layers[m][key] / n for m in names], 0.4,
                     color=region_color(k), label=key.replace("_pJ", ""))
        ax_e.set_xticks([i + 0.2 for i in xs], names)
        ax_e.set_ylabel("energy per inference (pJ)")
        ax_e.set_title(f"energy, target {report['target']['name']}")
        ax_e.legend()
        sp = [(m, layers[m]["activation_sparsity"]) for m in names
              if not math.isnan(layers[m]["activation_sparsity"])]
        ax_s.bar([m for m, _ in sp], [v for _, v in sp], color=region_color(2))
        ax_s.set_ylim(0, 1)
        ax_s.set_ylabel("activation sparsity")
        ax_s.set_title("zero fraction of spike outputs")
        save_figure(fig, path)
