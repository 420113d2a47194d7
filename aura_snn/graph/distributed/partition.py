r"""Which worker runs which region: checked assignments and an automatic partition.

A partition maps every region to a worker ``0 .. N-1``. A projection whose ``pre`` and
``post`` regions sit on different workers is *cut*: its presynaptic outputs travel
between processes. Cutting is allowed only where the receiving worker can compute the
projection's effect from outputs that arrive one window late:

* a same-step edge (``same_step=True``) delivers in the step of emission, so it can
  never cross; nor can a projection with plasticity rules, traces or a synapse model
  (they read the presynaptic activity at the synapse in every step). Such projections
  bind their two regions to one worker;
* every other projection delivers what ``pre`` emits in step :math:`t` in step
  :math:`t + 1 + d_{ij}` (:mod:`aura_snn.graph.projection`), so with

  .. math:: D = \min_{p\ \text{cut}} \big(1 + \min_{ij} d^{(p)}_{ij}\big)\quad\text{(steps)}

  every worker may run :math:`D` steps before it needs anything from another one
  (conservative synchronisation, the minimum delay of NEST's MPI scheduler).

The automatic partition (``partition=N``) is :func:`.autopart.auto_partition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import ParameterError, ParameterTypeError

if TYPE_CHECKING:
    from ..graph import Graph


@dataclass(frozen=True)
class Partition:
    """A checked assignment of regions to workers (module docstring).

    Attributes:
        assignment: region -> worker index, in the graph's region order.
        workers: number of workers ``N``.
        window: :math:`D`, steps each worker runs between exchanges (``None``: nothing
            is cut, the workers never exchange).
        cut: names of the projections between workers, in the graph's order.
        cut_synapses: synapses of the cut projections.
        loads: per worker, neurons + incoming synapses of its regions.
    """

    assignment: dict[str, int]
    workers: int
    window: int | None
    cut: tuple[str, ...]
    cut_synapses: int
    loads: tuple[int, ...]

    def regions_of(self, worker: int) -> list[str]:
        """The regions of ``worker``, in the graph's order."""
        return [n for n, w in self.assignment.items() if w == worker]


def binds(p: Any) -> str | None:
    """Why projection ``p`` cannot cross workers (``None`` if it can)."""
    if p.same_step:
        return "it is a same-step edge (delivered in the step of emission)"
    if p.rules:
        return "it has plasticity rules (they read the presynaptic activity every step)"
    if p.trace_taus is not None:
        return "it keeps traces (they read the presynaptic activity every step)"
    if p.synapse is not None:
        return "it has a synapse model (its state advances with every presynaptic step)"
    return None


def region_costs(graph: Graph) -> dict[str, int]:
    """Per region: neurons (outputs) plus synapses of the projections into it."""
    cost = {n: r.size for n, r in graph.regions.items()}
    for p in graph.projections.values():
        cost[p.post] += p.nnz
    return cost


def units(graph: Graph) -> list[list[str]]:
    """Groups of regions that must share a worker (bound edges joined, union-find), in
    the order of their first region."""
    parent = {n: n for n in graph.regions}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for p in graph.projections.values():
        if binds(p) is not None and p.pre != p.post:
            a, b = root(p.pre), root(p.post)
            if a != b:
                parent[b] = a
    groups: dict[str, list[str]] = {}
    for n in graph.regions:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def _cut(graph: Graph, assignment: Mapping[str, int]) -> tuple[list[str], int]:
    cut = [p.name for p in graph.projections.values()
           if assignment[p.pre] != assignment[p.post]]
    return cut, sum(graph.projections[c].nnz for c in cut)


def _window(graph: Graph, cut: list[str]) -> int | None:
    if not cut:
        return None
    return min(1 + int(graph.projections[c].delay.min()) for c in cut)

def make_partition(graph: Graph, partition: Mapping[str, int] | int) -> Partition:
    """Check ``partition`` (a dict region -> worker, or a number of workers for
    :func:`auto_partition`) against ``graph``; raises
    :class:`~aura_snn.errors.ParameterError` naming what is wrong."""
    names = list(graph.regions)
    if isinstance(partition, bool):
        raise ParameterTypeError(f"partition must be a dict region -> worker or a number of "
                                 f"workers, got {partition!r}")
    if isinstance(partition, int):
        if partition < 1:
            raise ParameterError(f"partition must be >= 1 workers, got {partition}")
        if partition > len(names):
            raise ParameterError(f"partition={partition}: more workers than regions (the "
                                 f"graph has {len(names)}: {names})")
        from .autopart import auto_partition

        assignment = auto_partition(graph, partition)
    elif isinstance(partition, Mapping):
        unknown = [k for k in partition if k not in graph.regions]
        if unknown:
            raise ParameterError(f"partition names unknown region(s) {unknown}; the graph "
                                 f"has regions {names}")
        missing = [n for n in names if n not in partition]
        if missing:
            raise ParameterError(f"partition leaves out region(s) {missing}: assign every "
                                 f"region to a worker")
        for k, w in partition.items():
            if isinstance(w, bool) or not isinstance(w, int) or w < 0:
                raise ParameterError(f"partition[{k!r}] must be a worker index >= 0, got "
                                     f"{w!r}")
        used = sorted(set(partition.values()))
        if used != list(range(len(used))):
            raise ParameterError(f"partition uses worker indices {used}; use 0..N-1, each "
                                 f"with at least one region (N = {len(used)} here)")
        assignment = {n: int(partition[n]) for n in names}
    else:
        raise ParameterTypeError(f"partition must be a dict region -> worker or a number of "
                                 f"workers, got {type(partition).__name__}")
    for p in graph.projections.values():
        a, b = assignment[p.pre], assignment[p.post]
        why = binds(p)
        if a != b and why is not None:
            raise ParameterError(f"projection {p.name!r} ({p.pre!r} -> {p.post!r}) crosses "
                                 f"workers {a} and {b}, but {why}: put regions {p.pre!r} and "
                                 f"{p.post!r} on one worker")
    workers = max(assignment.values()) + 1
    cut, cut_syn = _cut(graph, assignment)
    cost = region_costs(graph)
    loads = [0] * workers
    for n, w in assignment.items():
        loads[w] += cost[n]
    return Partition(assignment, workers, _window(graph, cut), tuple(cut), cut_syn,
                     tuple(loads))


__all__ = ["Partition", "binds", "make_partition", "region_costs", "units"]
