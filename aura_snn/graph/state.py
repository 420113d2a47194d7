r"""The state of a graph: everything that evolves during a run, and its file format.

A :class:`GraphState` holds, besides the step counter and batch size, the model state
of every region, the inputs already on their way (the ring of pending inputs), the
traces of projections that keep them, the state of every plasticity rule and synapse
model, and the recent presynaptic outputs that plastic projections with delays need
to know what arrives at their synapses. All of it is reset, detached, saved and
resumed together, so a rule's eligibility trace or a synapse's resources survive a
resume exactly like a membrane potential.

Flat form (:func:`to_tensors`, what :meth:`~aura_snn.graph.Graph.save_state` writes):

=============================== ======================================================
key                             value
=============================== ======================================================
``t``, ``batch``                int64 scalars
``region.<r>.<field>``          a region's state field
``pending.<r>``                 ``[L, R, B, n]`` inputs arriving 0..L-1 steps ahead
``trace.<p>.pre|post``          traces ``[B, n_pre]``, ``[B, n_post]``
``history.<p>``                 ``[K, B, n_pre]`` pre outputs of the last K steps
``rule.<p>.<slot>.<field>``     a rule's state field
``synapse.<p>.<field>``         a synapse model's state field
=============================== ======================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .._checks import check_int
from ..errors import ParameterError, ShapeError
from .plasticity import Traces

if TYPE_CHECKING:
    from .graph import Graph

Slot = list  # one pending step: a list (per receptor) of tensors or None


def _detach(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*(_detach(v) for v in x))
    if isinstance(x, (list, tuple)):
        return type(x)(_detach(v) for v in x)
    if isinstance(x, dict):
        return {k: _detach(v) for k, v in x.items()}
    return x


@dataclass
class GraphState:
    """Everything that evolves during a run (module docstring).

    Attributes:
        t: steps run since the state was created.
        batch: batch size ``B``.
        regions: per region, its model state (a ``NamedTuple`` of tensors) or ``None``.
        pending: per receiving region, the inputs already on their way: ``pending[r][k]``
            is a list (one entry per receptor) of ``[B, input_size]`` tensors or ``None``
            (zero) arriving ``k`` steps after the last step run.
        traces: per projection with traces, its :class:`~aura_snn.graph.plasticity.Traces`.
        rules: per ``"<projection>.<slot>"``, the state of that plasticity rule.
        synapses: per projection with a synapse model, the model's state.
        history: per plastic delayed projection, ``history[p][k]`` ``[B, n_pre]`` is what
            its pre region emitted ``k + 1`` steps before the next step.
    """

    t: int
    batch: int
    regions: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, list[Slot]] = field(default_factory=dict)
    traces: dict[str, Traces] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    synapses: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def detach(self) -> GraphState:
        """A copy cut from the autograd graph (truncated BPTT between runs)."""
        return GraphState(self.t, self.batch, _detach(self.regions), _detach(self.pending),
                          _detach(self.traces), _detach(self.rules), _detach(self.synapses),
                          _detach(self.history))

    @property
    def device(self) -> torch.device | None:
        for st in self.regions.values():
            if st is not None:
                return st[0].device
        return None


def ring_length(graph: Graph, region: str) -> int:
    """Pending slots a region needs: ``1 + `` the longest delay into it."""
    return 1 + max((p.max_delay for p in graph.incoming(region)), default=0)


def needs_history(p: Any) -> bool:
    """Whether a projection needs the recent pre outputs (rules or traces, delayed)."""
    return bool(p.rules or p.trace_taus is not None) and not p.same_step


def _zeros(batch: int, n: int, graph: Graph) -> torch.Tensor:
    return torch.zeros(batch, n, device=graph.device, dtype=graph.dtype)


def initial_state(graph: Graph, batch: int = 1) -> GraphState:
    """The state before any step: each region's initial state, nothing pending."""
    batch = check_int("batch", batch, minimum=1)
    dev, dt_ = graph.device, graph.dtype
    st = GraphState(0, batch)
    for name, r in graph.regions.items():
        st.regions[name] = r.initial_state(batch, dev, dt_)
    return conform(graph, st)


def conform(graph: Graph, st: GraphState) -> GraphState:
    """Fit a state to the current graph: ring lengths, and the traces, rule states,
    synapse states and histories of projections changed since (new ones start at rest,
    removed ones are dropped)."""
    dev, dt_ = graph.device, graph.dtype
    for name, r in graph.regions.items():
        if not r.receptors:
            continue
        ring = st.pending.setdefault(name, [])
        while len(ring) < ring_length(graph, name):
            ring.append([None] * len(r.receptors))
    live_rules = set()
    for name, p in graph.projections.items():
        if p.trace_taus is not None and name not in st.traces:
            st.traces[name] = Traces(_zeros(st.batch, p.n_pre, graph),
                                     _zeros(st.batch, p.n_post, graph))
        for rule in p.rules:
            key = f"{name}.{rule.slot}"
            live_rules.add(key)
            if key not in st.rules:
                st.rules[key] = rule.initial_state(p, st.batch, dev, dt_)
        if p.synapse is not None and name not in st.synapses:
            st.synapses[name] = p.synapse.initial_state(p.n_pre, st.batch, dev, dt_)
        if needs_history(p):
            hist = st.history.setdefault(name, [])
            while len(hist) < p.max_delay + 1:
                hist.append(_zeros(st.batch, p.n_pre, graph))
            del hist[p.max_delay + 1:]
    for key in [k for k in st.rules if k not in live_rules]:
        del st.rules[key]
    for store, keep in ((st.traces, lambda p: p.trace_taus is not None),
                        (st.synapses, lambda p: p.synapse is not None),
                        (st.history, needs_history)):
        for key in [k for k in store if k not in graph.projections
                    or not keep(graph.projections[k])]:
            del store[key]
    return st


def to_tensors(graph: Graph, st: GraphState) -> dict[str, torch.Tensor]:
    """The state as a flat ``{key: tensor}`` dict (module docstring)."""
    out = {"t": torch.tensor(st.t, dtype=torch.int64),
           "batch": torch.tensor(st.batch, dtype=torch.int64)}

    def fields(prefix: str, s: Any) -> None:
        if s is not None:
            for f, v in zip(s._fields, s, strict=True):
                out[f"{prefix}.{f}"] = v.detach()

    for name, s in st.regions.items():
        fields(f"region.{name}", s)
    for name, ring in st.pending.items():
        r = graph.region(name)
        like = torch.zeros(st.batch, r.input_size, device=graph.device, dtype=graph.dtype)
        out[f"pending.{name}"] = torch.stack([
            torch.stack([like if x is None else x.detach() for x in slot]) for slot in ring])
    for name, tr in st.traces.items():
        out[f"trace.{name}.pre"] = tr.pre.detach()
        out[f"trace.{name}.post"] = tr.post.detach()
    for name, hist in st.history.items():
        out[f"history.{name}"] = torch.stack([h.detach() for h in hist])
    for key, s in st.rules.items():
        fields(f"rule.{key}", s)
    for name, s in st.synapses.items():
        fields(f"synapse.{name}", s)
    return out


def _take(tensors: Mapping[str, torch.Tensor], key: str, shape: tuple[int, ...],
          like: torch.Tensor | torch.dtype, graph: Graph) -> torch.Tensor:
    if key not in tensors:
        raise ParameterError(f"state does not match the graph: no {key!r}")
    x = tensors[key]
    if tuple(x.shape) != tuple(shape):
        raise ShapeError(f"state {key!r} has shape {tuple(x.shape)}, the graph needs "
                         f"{tuple(shape)}")
    dtype = like.dtype if isinstance(like, torch.Tensor) else like
    return x.to(device=graph.device, dtype=dtype)


def _fields_from(tensors: Mapping[str, torch.Tensor], prefix: str,
                 make: Callable[[int], Any], batch: int, graph: Graph) -> Any:
    """The state ``make(batch)`` would build, taken from ``tensors`` (checked field by
    field). Its shapes come from ``make(1)`` and ``make(2)`` (a dimension that differs is
    the batch dimension), so a ``batch`` read from a file allocates nothing by itself."""
    one = make(1)
    if one is None:
        return None
    if batch == 1:
        spec = [(tuple(v.shape), v.dtype) for v in one]
    else:
        two = make(2)
        spec = []
        for v1, v2 in zip(one, two, strict=True):
            if v1.dim() != v2.dim():  # pragma: no cover - not a batch dimension: build it
                return _fields_from(tensors, prefix, lambda _: make(batch), 1, graph)
            spec.append((tuple(batch if a != b else a for a, b in zip(v1.shape, v2.shape,
                                                                      strict=True)), v1.dtype))
    return type(one)(*(_take(tensors, f"{prefix}.{f}", shape, dtype, graph)
                       for f, (shape, dtype) in zip(one._fields, spec, strict=True)))


def _count(tensors: Mapping[str, torch.Tensor], key: str) -> int:
    if key not in tensors:
        raise ParameterError(f"state has no {key!r} entry")
    x = tensors[key]
    if not isinstance(x, torch.Tensor) or x.dim() != 0 or x.is_floating_point() \
            or x.is_complex() or x.dtype == torch.bool:
        raise ParameterError(f"state {key!r} must be an integer scalar tensor, got "
                             f"{type(x).__name__} {getattr(x, 'dtype', '')} of shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
    return int(x)


def from_tensors(graph: Graph, tensors: Mapping[str, torch.Tensor]) -> GraphState:
    """Inverse of :func:`to_tensors`; checks every key and shape against the graph and
    builds a new state (the graph is not changed). ``t`` and ``batch`` must be integer
    scalars; nothing is allocated from ``batch`` before the tensors given are found to
    have its shapes (a file's ``batch`` cannot make it allocate more than the file)."""
    t, batch = _count(tensors, "t"), _count(tensors, "batch")
    if batch < 1 or t < 0:
        raise ParameterError(f"state has t={t}, batch={batch}; need t >= 0, batch >= 1")
    dev, dt_ = graph.device, graph.dtype
    st = GraphState(t, batch)
    for name, r in graph.regions.items():
        st.regions[name] = _fields_from(tensors, f"region.{name}",
                                        lambda b, r=r: r.initial_state(b, dev, dt_), batch,
                                        graph)
        if r.receptors:
            key = f"pending.{name}"
            ring_t = tensors.get(key)
            tail = (len(r.receptors), batch, r.input_size)
            if ring_t is None or ring_t.dim() != 4 or tuple(ring_t.shape[1:]) != tail:
                raise ShapeError(f"state {key!r} must have shape [L, {tail[0]}, {batch}, "
                                 f"{r.input_size}], got "
                                 f"{None if ring_t is None else tuple(ring_t.shape)}")
            st.pending[name] = [[x.to(device=dev, dtype=dt_) for x in slot] for slot in ring_t]
    for name, p in graph.projections.items():
        if p.trace_taus is not None:
            st.traces[name] = Traces(
                _take(tensors, f"trace.{name}.pre", (batch, p.n_pre), dt_, graph),
                _take(tensors, f"trace.{name}.post", (batch, p.n_post), dt_, graph))
        if needs_history(p):
            h = _take(tensors, f"history.{name}", (p.max_delay + 1, batch, p.n_pre), dt_,
                      graph)
            st.history[name] = list(h.unbind(0))
        for rule in p.rules:
            key = f"{name}.{rule.slot}"
            st.rules[key] = _fields_from(
                tensors, f"rule.{key}", lambda b, rule=rule, p=p: rule.initial_state(
                    p, b, dev, dt_), batch, graph)
        if p.synapse is not None:
            st.synapses[name] = _fields_from(
                tensors, f"synapse.{name}", lambda b, p=p: p.synapse.initial_state(
                    p.n_pre, b, dev, dt_), batch, graph)
    return conform(graph, st)


__all__ = ["GraphState", "conform", "from_tensors", "initial_state", "needs_history",
           "ring_length", "to_tensors"]
