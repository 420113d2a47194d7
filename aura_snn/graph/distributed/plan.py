r"""What each worker holds: its sub-graph, what it sends and receives, its part of the state.

Worker :math:`w` holds the regions assigned to it and every projection *into* them,
the same objects as the whole graph (same weights, delays, seeds), in the whole
graph's order. A region of another worker that feeds one of its regions appears in
the sub-graph as a *ghost*: an input region of the same name and size, fed zeros, so
that the ring of pending inputs of each receiving region has exactly the length it
has in the whole graph (:func:`aura_snn.graph.state.ring_length`) and both local
backends run the sub-graph unchanged. What a ghost's real region emitted reaches the
ring by injection between windows (:mod:`.exchange`).

Per-region seeds are set on the regions when they are added to the whole graph (from
the graph seed and the region's *name*, :func:`aura_snn.graph.regions.default_seed`)
and travel with them, and the initial state is drawn once, on the whole graph, then
split; so Poisson spikes and random initial values do not depend on the partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..regions import InputRegion
from ..state import GraphState
from .partition import Partition

if TYPE_CHECKING:
    from ..graph import Graph


@dataclass
class WorkerPlan:
    """The part of a run one worker does.

    Attributes:
        index: worker index.
        regions: its regions, in the graph's order.
        ghosts: regions of other workers feeding its regions, in the graph's order.
        cross_in: projections from a ghost into its regions, in the graph's order.
        sends: destination worker -> its regions that worker needs (graph order).
        sources: workers it receives from (ascending).
        cross_out: projections from its regions to other workers (graph order).
    """

    index: int
    regions: list[str]
    ghosts: list[str] = field(default_factory=list)
    cross_in: list[str] = field(default_factory=list)
    sends: dict[int, list[str]] = field(default_factory=dict)
    sources: list[int] = field(default_factory=list)
    cross_out: list[str] = field(default_factory=list)

    @property
    def destinations(self) -> list[int]:
        return sorted(self.sends)

    @property
    def sent_regions(self) -> list[str]:
        """Its regions some other worker needs (graph order)."""
        out = {n for names in self.sends.values() for n in names}
        return [n for n in self.regions if n in out]


def plan_workers(graph: Graph, part: Partition) -> list[WorkerPlan]:
    """One :class:`WorkerPlan` per worker of ``part``."""
    plans = [WorkerPlan(w, part.regions_of(w)) for w in range(part.workers)]
    order = list(graph.regions)
    for p in graph.projections.values():
        a, b = part.assignment[p.pre], part.assignment[p.post]
        if a == b:
            continue
        dst, src = plans[b], plans[a]
        if p.pre not in dst.ghosts:
            dst.ghosts.append(p.pre)
        dst.cross_in.append(p.name)
        src.cross_out.append(p.name)
        names = src.sends.setdefault(b, [])
        if p.pre not in names:
            names.append(p.pre)
        if a not in dst.sources:
            dst.sources.append(a)
    for wp in plans:
        wp.ghosts.sort(key=order.index)
        wp.sources.sort()
        for names in wp.sends.values():
            names.sort(key=order.index)
    return plans


def subgraph(graph: Graph, wp: WorkerPlan) -> Graph:
    """The sub-graph of worker ``wp`` (module docstring): its regions and ghosts in the
    graph's order, then the projections into its regions in the graph's order. The
    region and projection objects are the graph's own (a worker gets copies)."""
    from ..graph import Graph

    g = Graph(graph.dt, seed=graph.seed).to(dtype=graph.dtype)
    mine, ghosts = set(wp.regions), set(wp.ghosts)
    for name, r in graph.regions.items():
        if name in mine:
            g.add_region(r)
        elif name in ghosts:
            g.add_region(InputRegion(name, r.size, spiking=r.spiking))
    for p in graph.projections.values():
        if p.post in mine:
            g.add_projection(p)
    return g


def split_state(graph: Graph, st: GraphState, wp: WorkerPlan) -> GraphState:
    """Worker ``wp``'s part of the whole graph's state: its regions' states and pending
    inputs, and the traces, rule, synapse and history state of the projections into
    them (ghosts have no state)."""
    mine = set(wp.regions)
    into = {p.name for p in graph.projections.values() if p.post in mine}
    regions = {n: (st.regions.get(n) if n in mine else None)
               for n in graph.regions if n in mine or n in wp.ghosts}
    return GraphState(
        st.t, st.batch, regions,
        {n: v for n, v in st.pending.items() if n in mine},
        {k: v for k, v in st.traces.items() if k in into},
        {k: v for k, v in st.rules.items() if k.split(".", 1)[0] in into},
        {k: v for k, v in st.synapses.items() if k in into},
        {k: v for k, v in st.history.items() if k in into})


def merge_states(graph: Graph, parts: list[GraphState], plans: list[WorkerPlan]
                 ) -> GraphState:
    """The whole graph's state from the workers' parts (inverse of :func:`split_state`),
    in the graph's order."""
    owner = {n: wp.index for wp in plans for n in wp.regions}
    post_owner = {p.name: owner[p.post] for p in graph.projections.values()}
    first = parts[0]
    st = GraphState(first.t, first.batch)
    for n in graph.regions:
        s = parts[owner[n]]
        st.regions[n] = s.regions.get(n)
        if n in s.pending:
            st.pending[n] = s.pending[n]
    for name in graph.projections:
        s = parts[post_owner[name]]
        for store, src in ((st.traces, s.traces), (st.synapses, s.synapses),
                           (st.history, s.history)):
            if name in src:
                store[name] = src[name]
        for key, v in s.rules.items():
            if key.split(".", 1)[0] == name:
                st.rules[key] = v
    return st


__all__ = ["WorkerPlan", "merge_states", "plan_workers", "split_state", "subgraph"]
