"""Energy and sparsity figures of ``hardware.energy`` reports (plain dicts: this module
imports nothing of ``hardware``).

* :func:`energy_figure` / :func:`plot_energy`: one target; energy per inference of each
  layer (pJ) in three conventions, and the activation sparsity of each spiking layer;
* :func:`energy_targets_figure` / :func:`plot_energy_targets`: several targets priced from
  the same counts; energy per inference of each target, its split over the layers, and
  the sparsity per layer (the same on every target).

Conventions (:mod:`hardware.energy`): ``compute`` :math:`= E_{MAC} N_{MAC} + E_{AC}
N_{AC}` + neuron and spike terms; ``with memory access`` adds a weight read per
effective synaptic op and a state read and write per membrane update; ``dense ANN``
is every product of the same layers as a MAC (the non-spiking equivalent). An energy
axis is logarithmic when its positive values span more than :data:`LOG_SPAN`; a zero
energy is then drawn as no bar. Each figure names its targets and the sources of their
figures.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping
from typing import Any

from ._figure import house_style, new_figure, region_color, save_figure

#: Ratio of the largest to the smallest positive energy above which the axis is log.
LOG_SPAN = 100.0
CONVENTIONS = (("compute_pJ", "compute"), ("memory_pJ", "with memory access"),
               ("dense_ann_pJ", "dense ANN equivalent"))


def _check(report: Mapping[str, Any], what: str = "report") -> None:
    if not isinstance(report, Mapping) or not report.get("layers"):
        raise ValueError(f"{what}: has no layers")
    if not report.get("samples"):
        raise ValueError(f"{what}: 'samples' must be >= 1, got {report.get('samples')!r}")


def _sparse(v: Any) -> bool:
    return v is not None and not math.isnan(v)


def _scale(ax: Any, values: list[float]) -> None:
    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > LOG_SPAN:
        ax.set_yscale("log")


def energy_unit(values: list[float]) -> tuple[str, float]:
    """``(unit, pJ per unit)`` that keeps the largest of ``values`` (pJ) below 10^4."""
    top = max([abs(v) for v in values] + [0.0])
    for unit, size in (("pJ", 1.0), ("nJ", 1e3), ("µJ", 1e6)):
        if top < 1e4 * size:
            return unit, size
    return "mJ", 1e9


def _bars(ax: Any, groups: list[str], series: list[tuple[str, list[float]]],
          ylabel: str, color0: int = 0) -> None:
    """Grouped bars of energies in pJ (drawn in :func:`energy_unit`): one group per name
    in ``groups``, one bar per series, colours from ``color0`` on."""
    unit, size = energy_unit([v for _, vals in series for v in vals])
    w = 0.8 / len(series)
    for k, (label, vals) in enumerate(series):
        ax.bar([i + w * (k - (len(series) - 1) / 2) for i in range(len(groups))],
               [v / size for v in vals], w, color=region_color(color0 + k), label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(f"{ylabel} ({unit})")
    _scale(ax, [v for _, vals in series for v in vals])


def _sparsity(ax: Any, layers: Mapping[str, Any]) -> None:
    sp = [(m, c["activation_sparsity"]) for m, c in layers.items()
          if _sparse(c.get("activation_sparsity"))]
    ax.bar([m for m, _ in sp], [v for _, v in sp], color=region_color(2), width=0.6)
    for i, (_, v) in enumerate(sp):
        ax.annotate(f"{v:.3f}", (i, v), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("activation sparsity (fraction of zero outputs)")
    ax.set_title("activation sparsity per spiking layer")


def _footnote(fig: Any, lines: list[str]) -> None:
    text = "\n".join(textwrap.fill(ln, 150) for ln in lines)
    fig.text(0.0, -0.02, text, ha="left", va="top", fontsize=7.5, color="0.3")


def energy_figure(report: Mapping[str, Any]) -> Any:
    """Figure of one report: energy per inference of each layer (pJ; compute, with
    memory access, dense ANN equivalent) and activation sparsity of each spiking layer."""
    _check(report)
    layers, n = report["layers"], report["samples"]
    names = list(layers)
    t = report["target"]
    with house_style():
        fig, (ax_e, ax_s) = new_figure(1, 2, width=10.0, height=3.4)
        _bars(ax_e, names, [(label, [layers[m][key] / n for m in names])
                            for key, label in CONVENTIONS], "energy per inference")
        ax_e.set_xlabel("layer")
        ax_e.set_title(f"energy per inference by layer, target {t['name']}")
        ax_e.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        _sparsity(ax_s, layers)
        _footnote(fig, [f"{t['name']}: {t.get('source') or 'no source given'}; "
                        f"mean of {n} samples of {report.get('steps', '?')} steps"])
    return fig


def plot_energy(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Save :func:`energy_figure` of ``report`` atomically to ``path``."""
    save_figure(energy_figure(report), path)


def energy_targets_figure(reports: Mapping[str, Mapping[str, Any]],
                          unavailable: Mapping[str, str] | None = None,
                          notes: Mapping[str, str] | None = None) -> Any:
    """Figure of reports of the same counts on several targets: per-inference energy of
    each target in the three conventions, compute energy per layer and target, and
    activation sparsity per spiking layer. ``unavailable`` maps a target that has no
    figures to the reason, drawn as "not published" beside the others; ``notes`` (per
    target) join the sources under the figure."""
    if not reports:
        raise ValueError("reports: no target was priced")
    for name, rep in reports.items():
        _check(rep, f"reports[{name!r}]")
    unavailable = dict(unavailable or {})
    names = list(reports)
    first = next(iter(reports.values()))
    layers = list(first["layers"])
    with house_style():
        fig, (ax_t, ax_l, ax_s) = new_figure(1, 3, width=13.0, height=3.6)
        groups = names + list(unavailable)
        _bars(ax_t, groups, [(label, [reports[t]["per_inference"][key] if t in reports
                                      else 0.0 for t in groups])
                             for key, label in CONVENTIONS], "energy per inference")
        low = ax_t.get_ylim()[0] if ax_t.get_yscale() == "log" else 0.0
        for i, t in enumerate(groups):
            if t in unavailable:
                ax_t.annotate("not\npublished", (i, low), ha="center", va="bottom",
                              fontsize=8, color="0.35", xytext=(0, 4),
                              textcoords="offset points")
        ax_t.set_xlabel("target")
        ax_t.set_title("energy per inference by target")
        ax_t.legend(loc="lower center", bbox_to_anchor=(0.5, 1.07), ncols=3, fontsize=7.5)
        _bars(ax_l, layers, [(t, [reports[t]["layers"][m]["compute_pJ"]
                                  / reports[t]["samples"] for m in layers]) for t in names],
              "compute energy per inference", color0=len(CONVENTIONS))
        ax_l.set_xlabel("layer")
        ax_l.set_title("compute energy by layer and target (no bar: 0)")
        ax_l.legend(loc="upper right", fontsize=7.5)
        _sparsity(ax_s, first["layers"])
        fig.suptitle(f"energy of one inference on {', '.join(names)}"
                     f"{' (' + ', '.join(unavailable) + ': not published)' if unavailable else ''}"
                     f", mean of {first['samples']} samples of {first.get('steps', '?')} steps",
                     x=0.0, ha="left", fontsize=10)
        notes = dict(notes or {})
        _footnote(fig, [f"{t}: {reports[t]['target'].get('source') or 'no source given'}"
                        + (f"; {notes[t]}" if t in notes else "") for t in names]
                  + [f"{t}: {why}" for t, why in unavailable.items()])
    return fig


def plot_energy_targets(reports: Mapping[str, Mapping[str, Any]],
                        path: str | os.PathLike[str],
                        unavailable: Mapping[str, str] | None = None,
                        notes: Mapping[str, str] | None = None) -> None:
    """Save :func:`energy_targets_figure` atomically to ``path``."""
    save_figure(energy_targets_figure(reports, unavailable, notes), path)
