r"""The one observer hook of a graph: what happened, handed to whoever watches.

Recorders (:mod:`aura_snn.graph.recorder`), operation counters and energy meters all
attach here (:meth:`aura_snn.graph.Graph.add_observer`), never by editing the model.
Both backends call the same three methods: the torch stepper once per step, the
compiled engine once per chunk of steps.

An observer declares what it needs, so a backend computes nothing more:

========================= ============================================================
``spike_regions``         regions whose spike events it wants (``None``: every region)
``probes``                :class:`Probe` s: state fields, outputs, weights or traces,
                          sampled every ``every`` steps at chosen neurons
``count_events``          whether it wants :attr:`Chunk.events`, the synaptic events
                          transmitted per projection and step
========================= ============================================================

and receives a :class:`Chunk`: spike events ``(t, b, i)`` (step, batch element, neuron;
``int64``, sorted by ``t``), probe rows, and, if asked, the event counts. A synaptic
event is one presynaptic nonzero output reaching one synapse,
:math:`E_p[t] = \sum_b \sum_i [y_{\text{pre},bi}[t] \ne 0]\,\text{outdeg}_p(i)`,
counted in the step the output is emitted (it is delivered :math:`1 + d` steps later,
or in the same step for a same-step edge). Observers never change what the graph
computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Probe:
    """A sampled variable: ``target`` (region or projection), ``variable`` (``"output"``,
    a state field such as ``"v"``, ``"i"``, ``"i:exc"``, ``"b"``, or ``"weights"``,
    ``"pre_trace"``, ``"post_trace"``), ``neurons`` (indices of the last axis, ``None``:
    all) and ``every`` (rows at ``t % every == 0``). Compared by identity."""

    target: str
    variable: str
    neurons: np.ndarray | None = None
    every: int = 1

    def select(self, values: np.ndarray) -> np.ndarray:
        """The chosen columns (last axis) of ``values``."""
        return values if self.neurons is None else values[..., self.neurons]


@dataclass
class Chunk:
    """What happened in steps ``t0 .. t0 + steps - 1`` (absolute step indices).

    Attributes:
        t0, steps, batch: where the chunk starts, its length, the batch size.
        dt: the step (s).
        spikes: ``{region: (t, b, i)}`` spike events of the requested regions.
        values: ``{probe: (t_rows [rows], values [rows, ...])}``; a region field is
            ``[rows, B, k]`` (``[rows, R, B, k]`` for all receptor currents), weights
            ``[rows, k]``.
        events: ``{projection: [steps]}`` synaptic events transmitted per step (summed
            over the batch), when an observer asked for them.
    """

    t0: int
    steps: int
    batch: int
    dt: float
    spikes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    values: dict[Probe, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    events: dict[str, np.ndarray] = field(default_factory=dict)


class Observer:
    """Base observer: wants nothing, does nothing. Subclass and override."""

    spike_regions: frozenset[str] | None = frozenset()
    count_events: bool = False

    @property
    def probes(self) -> tuple[Probe, ...]:
        return ()

    def start(self, graph: Any, steps: int) -> None:
        """Called before a run of ``steps`` steps."""

    def observe(self, chunk: Chunk) -> None:
        """Called after every step (torch) or chunk of steps (engine)."""

    def finish(self, graph: Any) -> None:
        """Called after the run (also after a failed one)."""


def spike_regions_wanted(observers: Iterable[Observer], spiking: Iterable[str]) -> set[str]:
    """The union of the regions whose spikes some observer wants."""
    spiking = list(spiking)
    out: set[str] = set()
    for o in observers:
        out |= set(spiking) if o.spike_regions is None else set(o.spike_regions)
    return out & set(spiking)


def out_degrees(graph: Any) -> dict[str, np.ndarray]:
    """Synapses per presynaptic output, per projection (``[n_pre]`` int64)."""
    deg = {}
    for p in graph.projections.values():
        pre, _, _, _ = p.to_coo()
        deg[p.name] = np.bincount(pre, minlength=p.n_pre).astype(np.int64)
    return deg


def count_events(graph: Any, spikes: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                 degrees: Mapping[str, np.ndarray], t0: int, steps: int,
                 dense_nonzero: Mapping[str, np.ndarray] | None = None
                 ) -> dict[str, np.ndarray]:
    """:math:`E_p[t]` (module docstring) from spike events of the presynaptic regions;
    ``dense_nonzero[region]`` ``[steps, n]`` counts (over the batch) nonzero outputs of
    regions that do not spike."""
    out = {}
    for p in graph.projections.values():
        deg = degrees[p.name]
        if p.pre in spikes:
            t, _, i = spikes[p.pre]
            out[p.name] = np.bincount(t - t0, weights=deg[i], minlength=steps)[:steps] \
                .astype(np.int64)
        elif dense_nonzero is not None and p.pre in dense_nonzero:
            out[p.name] = (dense_nonzero[p.pre] @ deg).astype(np.int64)
    return out


__all__ = ["Chunk", "Observer", "Probe", "count_events", "out_degrees",
           "spike_regions_wanted"]
