r"""Operation counts of a :class:`~aura_snn.graph.Graph` run, taken through its one
observer hook (:mod:`aura_snn.graph.observer`); the graph's code is untouched and both
backends (torch stepper, compiled engine) feed the same counts.

Over the runs it watched (``S`` = the sum over chunks of steps x batch elements), the
counter gives, in the :class:`~aura_snn.metrics.ops.OpCounts` form that
:func:`hardware.energy.energy` prices for modules:

* per projection :math:`p` (``pre -> post``, ``nnz`` synapses; dense storage has
  ``n_pre * n_post``):

  - effective synaptic ops = synaptic events, :math:`\sum_t E_p[t]`, one per nonzero
    presynaptic output per synapse (:mod:`aura_snn.graph.observer`; counted in the step
    the output is emitted, also when it is delivered after the run). When every
    projection leaves a spiking region, the counter takes them from the spike events it
    receives anyway, :math:`\sum_k \text{outdeg}_p(i_k)` over the pre region's events
    ``(t_k, b_k, i_k)``, with the out-degrees of :func:`out_degrees` computed once per
    connectivity; otherwise it asks the backend for them (``count_events``: the
    backend then recomputes every degree from the effective weights right before the
    run, torch work that slowed the compiled loop after it by ~50 % on a loaded
    two-core machine, measured on CUBA at 4,000 neurons);
  - dense synaptic ops :math:`= \text{nnz}\cdot S` (every synapse every step);
  - the events are accumulates (ACs) when ``pre`` spikes (spiking, Poisson, spiking
    input or Poisson module regions: ``region.spiking``), else multiply-accumulates
    (MACs: dense, real-valued input, rate module regions);
  - connection sparsity: the zero fraction of the effective weights over all
    :math:`n_\text{pre} n_\text{post}` pairs (a sparse projection's missing pairs are
    zeros; duplicates are summed first);

* per spiking region (:class:`~aura_snn.graph.SpikingRegion`, ``n`` neurons):
  membrane updates :math:`= n\,S`, spikes :math:`= \sum S_{t,b,i}`, activation sparsity
  :math:`1 - \text{spikes}/(n\,S)`;
* per source region (Poisson, input, module): what it emitted (``emitted``: spikes of
  a spiking source) and its activation sparsity; no neuron update, so no target
  charges one (as the input of a module model);
* the modules inside dense and module regions (torch backend): their ``Linear``/
  ``Conv2d``/spiking-neuron layers through :class:`~aura_snn.metrics.ops.OpCounter`
  hooks, named ``"<region>.<layer>"`` (``"<region>.module"`` for the module itself);
* footprints (bytes): parameters and buffers of each region and projection (weights,
  indices, delays), and the run state (:mod:`aura_snn.graph.state` keys) that belongs
  to it.

``samples`` is the number of batch elements summed over the runs, so
:meth:`OpCounts.per_sample` is per batch element per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn
from torch.utils.weak import WeakTensorKeyDictionary

from ..errors import ParameterTypeError
from ..graph.observer import Chunk, Observer
from .ops import LayerCounts, OpCounter, OpCounts, footprint


@dataclass
class ProjectionCounts(LayerCounts):
    """Counts of one projection: ``dense``, ``effective`` (= events), ``acs``/``macs``,
    ``synapses`` (nnz), plus its ends, ``pairs`` (``n_pre * n_post``), connection
    sparsity and bytes."""

    pre: str = ""
    post: str = ""
    pairs: int = 0
    connection_sparsity: float = float("nan")
    parameter_bytes: int = 0
    state_bytes: int = 0


@dataclass
class RegionCounts(LayerCounts):
    """Counts of one region: ``slots`` (``n * S`` outputs); spiking regions fill
    ``membrane_updates``, ``outputs`` (both ``n * S``) and ``spikes``; sources fill
    ``emitted`` (nonzero outputs; known for spiking sources only)."""

    spiking: bool = True
    emitted: float = 0.0
    slots: float = 0.0
    parameter_bytes: int = 0
    state_bytes: int = 0

    @property
    def activation_sparsity(self) -> float:
        """Zero fraction of the region's outputs (NaN for real-valued regions)."""
        if not self.spiking or not self.slots:
            return float("nan")
        return 1.0 - (self.spikes + self.emitted) / self.slots


@dataclass
class GraphOpCounts(OpCounts):
    """:class:`OpCounts` of graph runs: ``layers`` are the projections, the regions and
    the layers inside module regions; ``steps`` the steps of each run watched;
    ``state_bytes`` also counts the graph-level entries (``t``, ``batch``)."""

    steps: list[int] = field(default_factory=list)
    parameter_bytes: int = 0
    state_bytes: int = 0

    @property
    def connection_sparsity(self) -> float:
        """Zero fraction of all projections' weights over all their pre/post pairs."""
        proj = [c for c in self.layers.values() if isinstance(c, ProjectionCounts)]
        pairs = sum(c.pairs for c in proj)
        zeros = sum(c.pairs * c.connection_sparsity for c in proj)
        return zeros / pairs if pairs else float("nan")


def connection_sparsity(projection: Any) -> float:
    """Zero fraction of ``projection``'s effective weights over all
    :math:`n_\\text{pre} n_\\text{post}` pairs (missing sparse pairs are zeros)."""
    w = projection.effective_weight().detach().cpu()
    pairs = projection.n_pre * projection.n_post
    if not projection.sparse:
        return float((w == 0).sum()) / pairs
    code = projection.pre_idx.cpu().numpy().astype(np.int64) * projection.n_post + \
        projection.post_idx.cpu().numpy()
    uniq, inv = np.unique(code, return_inverse=True)
    sums = np.bincount(inv.ravel(), weights=w.double().numpy(), minlength=uniq.size)
    return 1.0 - float(np.count_nonzero(sums)) / pairs


def out_degree(projection: Any) -> np.ndarray:
    """Synapses per presynaptic output of ``projection``, int64 ``[n_pre]``: the
    ``pre`` of :meth:`~aura_snn.graph.Projection.to_coo` counted (one entry per stored
    synapse of a sparse projection, per nonzero effective weight of a dense one), as
    :func:`aura_snn.graph.observer.out_degrees` gives them; a sparse projection's are
    read from its indices alone (no weights computed)."""
    if projection.sparse:
        pre = projection.pre_idx.detach().cpu().numpy()
    else:
        pre = projection.to_coo()[0]
    return np.bincount(pre, minlength=projection.n_pre).astype(np.int64)


#: out-degrees of sparse projections by their pre index tensor: ``((version, n_pre),
#: degree)``, dropped with the tensor (:meth:`GraphOpCounter._degree`).
_DEGREES: Any = WeakTensorKeyDictionary()


def _state_owner(key: str) -> str | None:
    """The region or projection a flat state key belongs to (``None``: the graph)."""
    parts = key.split(".")
    return parts[1] if len(parts) > 1 else None


class GraphOpCounter(Observer):
    """Counts what a graph computes (module docstring); never changes it.

    Attach with ``graph.add_observer(GraphOpCounter())`` or as a context manager,
    ``with GraphOpCounter(graph) as oc: graph.run(...)``; read :attr:`counts`. Counts
    add up over the runs it watches (like :class:`~aura_snn.metrics.ops.OpCounter`
    over forward passes).
    """

    spike_regions = None  # every spiking region's events: the spike counts

    def __init__(self, graph: Any = None, *, modules: bool = True) -> None:
        from ..graph.graph import Graph

        if graph is not None and not isinstance(graph, Graph):
            raise ParameterTypeError(f"graph: expected an aura_snn Graph, got "
                                     f"{type(graph).__name__}")
        self.graph = graph
        self.modules = bool(modules)
        self._events: dict[str, int] = {}
        self._spikes: dict[str, int] = {}
        self._slots: dict[str, int] = {}   # region: n * S; projection: nnz * S
        self._module_counts: dict[str, LayerCounts] = {}
        self._steps: list[int] = []
        self._samples = 0
        self._run_sb = 0
        self._run_batch = 0
        self._watching: Any = None
        self._hooks: list[tuple[str, OpCounter]] = []
        self._run_degrees: dict[str, tuple[str, np.ndarray]] | None = None

    @property
    def count_events(self) -> bool:
        """Whether the backend must count the events (:class:`Chunk.events`): only when a
        projection leaves a region that does not spike (its nonzero outputs are not
        among the spike events), or before the graph is known."""
        g = self._watching if self._watching is not None else self.graph
        if g is None:
            return True
        return any(not g.regions[p.pre].spiking for p in g.projections.values())

    @staticmethod
    def _degree(p: Any) -> np.ndarray:
        """:func:`out_degree` of ``p``, kept while its connectivity is unchanged (a
        sparse projection's index tensor and its version, shared by every counter, so
        a counter made per run does not recompute them; a dense one's weights can
        change between runs, so it is recomputed)."""
        if not p.sparse:
            return out_degree(p)
        key = (p.pre_idx._version, p.n_pre)
        got = _DEGREES.get(p.pre_idx)
        if got is None or got[0] != key:
            deg = out_degree(p)
            deg.setflags(write=False)
            got = _DEGREES[p.pre_idx] = (key, deg)
        return got[1]

    # -- context manager ----------------------------------------------------------
    def __enter__(self) -> GraphOpCounter:
        if self.graph is None:
            raise ParameterTypeError("graph: GraphOpCounter(graph) is needed to use it "
                                     "as a context manager")
        self.graph.add_observer(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.graph.remove_observer(self)

    # -- observer -----------------------------------------------------------------
    def start(self, graph: Any, steps: int) -> None:
        self._watching = graph
        self._run_sb = self._run_batch = 0
        self._run_degrees = None if self.count_events else {
            p.name: (p.pre, self._degree(p)) for p in graph.projections.values()}
        if self.modules:
            from ..graph.regions import DenseRegion, ModuleRegion

            for name, r in graph.regions.items():
                if isinstance(r, (DenseRegion, ModuleRegion)):
                    oc = OpCounter(r.module, batch_dim=0)
                    oc.__enter__()
                    self._hooks.append((name, oc))

    def observe(self, chunk: Chunk) -> None:
        self._run_sb += chunk.steps * chunk.batch
        self._run_batch = chunk.batch
        sp = self._spikes
        for name, ev in chunk.spikes.items():
            sp[name] = sp.get(name, 0) + int(ev[0].size)
        evs = self._events
        if self._run_degrees is None:
            for name, e in chunk.events.items():
                evs[name] = evs.get(name, 0) + int(e.sum())
            return
        for name, (pre, deg) in self._run_degrees.items():
            i = chunk.spikes[pre][2]
            evs[name] = evs.get(name, 0) + (int(deg[i].sum()) if i.size else 0)

    def finish(self, graph: Any) -> None:
        for region, oc in self._hooks:
            oc.__exit__()
            for lname, c in oc.counts.layers.items():
                key = f"{region}.{'module' if lname == 'model' else lname}"
                acc = self._module_counts.setdefault(key, LayerCounts(key, c.kind))
                for f in ("dense", "effective", "macs", "acs", "membrane_updates", "spikes",
                          "outputs"):
                    setattr(acc, f, getattr(acc, f) + getattr(c, f))
                acc.neurons, acc.synapses = c.neurons, c.synapses
        self._hooks.clear()
        if self._run_sb == 0:
            return
        sb = self._run_sb
        for name, r in graph.regions.items():
            self._slots[name] = self._slots.get(name, 0) + r.size * sb
        for name, p in graph.projections.items():
            self._slots[name] = self._slots.get(name, 0) + p.nnz * sb
        self._steps.append(sb // max(1, self._run_batch))
        self._samples += self._run_batch

    # -- results ------------------------------------------------------------------
    @property
    def counts(self) -> GraphOpCounts:
        """The counts so far (:class:`GraphOpCounts`), with footprints and connection
        sparsity read from the graph as it is now."""
        from ..graph.regions import SpikingRegion
        from ..graph.state import to_tensors

        g = self._watching if self._watching is not None else self.graph
        out = GraphOpCounts(samples=self._samples, steps=list(self._steps))
        if g is None:
            return out
        state_b: dict[str | None, int] = {}
        if g.state is not None:
            for k, v in to_tensors(g, g.state).items():
                owner = _state_owner(k)
                state_b[owner] = state_b.get(owner, 0) + v.numel() * v.element_size()
        for name, r in g.regions.items():
            slots = float(self._slots.get(name, 0))
            n_sp = float(self._spikes.get(name, 0))
            c = RegionCounts(name, r.kind, neurons=r.size, spiking=bool(r.spiking),
                             parameter_bytes=footprint(r), state_bytes=state_b.get(name, 0))
            c.slots = slots
            if isinstance(r, SpikingRegion):
                c.membrane_updates = c.outputs = slots
                c.spikes = n_sp
            else:
                c.emitted = n_sp
            out.layers[name] = c
        out.layers.update(self._module_counts)
        for name, p in g.projections.items():
            ev = float(self._events.get(name, 0))
            spiking = bool(g.regions[p.pre].spiking)
            c = ProjectionCounts(name, "projection", dense=float(self._slots.get(name, 0)),
                                 effective=ev, acs=ev if spiking else 0.0,
                                 macs=0.0 if spiking else ev, synapses=p.nnz, pre=p.pre,
                                 post=p.post, pairs=p.n_pre * p.n_post,
                                 connection_sparsity=connection_sparsity(p),
                                 parameter_bytes=footprint(p),
                                 state_bytes=state_b.get(name, 0))
            out.layers[name] = c
        out.parameter_bytes = footprint(g) if isinstance(g, nn.Module) else 0
        out.state_bytes = sum(state_b.values())
        return out
