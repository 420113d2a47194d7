r"""Energy and sparsity of a :class:`~aura_snn.graph.Graph` run, per target.

:func:`measure_graph` runs the graph under a
:class:`~aura_snn.metrics.graph_ops.GraphOpCounter` and prices the counts with
:func:`hardware.energy.energy`, the same code that prices modules, so a report has
the same schema as :func:`hardware.energy.measure` (``format_report`` and
:func:`aura_snn.plot.energy.plot_energy` read both). In a graph report:

* ``layers`` are the regions, the layers inside module regions and the projections
  (one entry each, totals over the batch, in pJ);
* ``samples`` is the batch size and ``per_inference`` is per batch element for the
  whole run of ``steps`` steps; ``per_step`` divides it by ``steps``;
* per projection :math:`E_\text{compute} = E_\text{AC} N_\text{AC} + E_\text{MAC}
  N_\text{MAC}` (pJ), ``N`` the synaptic events (spiking pre region: ACs; real-valued:
  MACs); per spiking region :math:`E_\text{active}\,N_\text{spikes} +
  E_\text{inactive}(N_\text{updates} - N_\text{spikes}) + E_\text{spike} N_\text{spikes}`;
  the ``memory`` and ``dense_ann`` conventions as in :mod:`hardware.energy`;
* extra keys: ``kind`` (``"graph"``), ``backend``, ``activation_sparsity`` (zero
  fraction of all spiking-region outputs), ``connection_sparsity`` (zero fraction of
  all projection weights over their pre/post pairs) and ``footprint_bytes``
  (``parameters``, ``state``).

Loihi has no MAC: a graph with projections from real-valued regions is refused before
it runs, naming them, unless ``strict=False``.

:func:`simulate_report` is what ``aura-snn simulate FILE --energy TARGET`` calls
(entry point ``energy`` of the group ``aura_snn.reports``; the core never imports
``hardware``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from aura_snn._io import atomic_write_json
from aura_snn.metrics.graph_ops import GraphOpCounter, GraphOpCounts

from .energy import _REFUSED, TARGETS, Target, energy, get_target


def mac_projections(graph: Any) -> list[str]:
    """Names of the projections whose pre region is real-valued (their ops are MACs)."""
    return [p.name for p in graph.projections.values() if not graph.regions[p.pre].spiking]


def mac_problem(graph: Any, target: Target) -> str | None:
    """Why ``target`` cannot price ``graph`` (it has no MAC and the graph has
    real-valued projections), or ``None``."""
    macs = mac_projections(graph)
    if target.supports_mac or not macs:
        return None
    pre = sorted({graph.projections[n].pre for n in macs})
    return (f"{target.name!r} has no MAC but projections {macs} carry real-valued outputs "
            f"of regions {pre}")


def check_target(graph: Any, target: str | Target, strict: bool = True) -> Target:
    """The :class:`Target`; refuses a MAC-less target for a graph with real-valued
    projections (``strict``), naming them."""
    t = get_target(target)
    problem = mac_problem(graph, t) if strict else None
    if problem:
        raise ValueError(f"target: {problem}; pass strict=False")
    return t


def graph_report(counts: GraphOpCounts, target: str | Target, *, steps: int,
                 strict: bool = True, backend: str | None = None) -> dict[str, Any]:
    """Price ``counts`` (:func:`hardware.energy.energy`) and add the graph's extra keys
    (module docstring)."""
    rep = energy(counts, target, steps=steps, strict=strict)
    rep.update(kind="graph", backend=backend,
               activation_sparsity=counts.activation_sparsity,
               connection_sparsity=counts.connection_sparsity,
               footprint_bytes={"parameters": counts.parameter_bytes,
                                "state": counts.state_bytes})
    return rep


def strict_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by ``None`` (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def measure_graph(graph: Any, steps: int, target: str | Target = "cmos45", *,
                  inputs: Mapping[str, torch.Tensor] | None = None,
                  backend: str | None = None, json_path: str | Path | None = None,
                  strict: bool = True, batch_size: int | None = None,
                  reset: bool = True) -> dict[str, Any]:
    """Run ``graph`` for ``steps`` steps (of ``graph.dt`` s) without gradients, count its
    operations and price them for ``target`` (report: module docstring; energies in pJ).

    Args:
        graph: an :class:`aura_snn.graph.Graph`.
        steps: steps to run (>= 1).
        target: a name of :data:`hardware.energy.TARGETS` or a :class:`Target`.
        inputs: fed tensors of :meth:`Graph.run`.
        backend: ``"auto"`` (default), ``"torch"`` or ``"engine"``.
        json_path: also write the report there (atomically, strict JSON: NaN -> null).
        strict: refuse real-valued projections on a target without MAC.
        batch_size: batch when no input says it.
        reset: start from the initial state (default) instead of the kept one.
    """
    from aura_snn.graph import Graph

    if not isinstance(graph, Graph):
        raise TypeError(f"graph: expected an aura_snn Graph, got {type(graph).__name__}")
    t = check_target(graph, target, strict)
    with torch.no_grad(), GraphOpCounter(graph) as oc:
        res = graph.run(steps, inputs, backend=backend or "auto", batch_size=batch_size,
                        reset=reset)
    rep = graph_report(oc.counts, t, steps=steps, strict=strict, backend=res.backend)
    if json_path is not None:
        atomic_write_json(json_path, strict_json(rep))
    return rep


class SimulateEnergy:
    """The ``--energy TARGET`` report of ``aura-snn simulate``: :meth:`attach` a counter
    before the run, :meth:`report` after it (strict-JSON dict, counter detached)."""

    def __init__(self, target: str) -> None:
        if target not in TARGETS:
            why = f" ({_REFUSED[target]})" if target in _REFUSED else ""
            raise ValueError(f"unknown target {target!r}{why}; known targets: "
                             f"{', '.join(sorted(TARGETS))}")
        self.target = get_target(target)
        self._counter: GraphOpCounter | None = None

    def attach(self, graph: Any) -> None:
        """Refuse a MAC-less target for real-valued projections; add the counter."""
        problem = mac_problem(graph, self.target)
        if problem:
            macs = sorted(n for n, t in TARGETS.items() if t.supports_mac)
            raise ValueError(f"{problem}; choose a target with MACs ({', '.join(macs)})")
        self._counter = GraphOpCounter(graph)
        graph.add_observer(self._counter)

    def report(self, steps: int, backend: str | None = None) -> dict[str, Any]:
        """The priced counts of the run (per inference = per batch element)."""
        oc = self._counter
        if oc is None:
            raise ValueError("attach: no graph was attached")
        oc.graph.remove_observer(oc)
        return strict_json(graph_report(oc.counts, self.target, steps=steps,
                                        backend=backend))


def simulate_report(target: str) -> SimulateEnergy:
    """Entry point ``aura_snn.reports:energy``: a :class:`SimulateEnergy` for ``target``;
    an unknown name raises ``ValueError`` naming the known targets."""
    return SimulateEnergy(target)


__all__ = ["SimulateEnergy", "check_target", "graph_report", "mac_problem",
           "mac_projections", "measure_graph", "simulate_report", "strict_json"]
