r"""The torch stepper: one Python loop over steps, on any device and dtype, with autograd.

One step :math:`t` (:mod:`aura_snn.graph.graph` gives the whole picture):

1. regions update in :meth:`~aura_snn.graph.Graph.step_order` (topological over the
   same-step edges). A region's input is what delayed edges delivered for step
   :math:`t` (the ring of pending inputs), plus, for each same-step edge into it, the
   output its pre region produced earlier in this step; a fed tensor for fed regions;
   then its modulation (a gain on the input, a shift of the threshold), if given;
2. every delayed projection adds :math:`y_\text{pre}[t] W` into its post region's
   input of step :math:`t + 1 + d` (synapse models scale :math:`y_\text{pre}` first);
3. under ``torch.no_grad()``: traces, then plasticity rules (:mod:`.plasticity`),
   reading the presynaptic activity at the synapse; rule changes go to the plastic
   part of the weights;
4. observers (:mod:`.observer`) get the step as a one-step chunk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ShapeError
from ..functional.traces import trace_step
from .observer import Chunk, Observer, count_events, out_degrees, spike_regions_wanted
from .plasticity import SynapseActivity, Traces, reduce_batch
from .regions import SpikingRegion
from .state import GraphState

if TYPE_CHECKING:
    from .graph import Graph


def _per_step(name: str, x: torch.Tensor, steps: int, batch: int) -> list[torch.Tensor]:
    """Split a ``[T, ...]`` signal into its steps (each broadcastable later)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] < steps:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(f"{name} must be a tensor [T>={steps}, ...], got {got}")
    return list(x.unbind(0))


def run_torch(graph: Graph, st: GraphState, steps: int, inputs: Mapping[str, torch.Tensor],
              record: list[str], progress: Any, observers: list[Observer],
              modulators: Mapping[str, torch.Tensor],
              modulation: Mapping[str, Mapping[str, torch.Tensor]]
              ) -> tuple[dict[str, torch.Tensor], GraphState]:
    """Run ``steps`` steps from ``st`` (module docstring); returns recorded outputs
    ``{region: [T, B, size]}`` and the new state."""
    dev, dt_ = graph.device, graph.dtype
    batch, t_start = st.batch, st.t
    order = graph.step_order()
    fns = {}
    for name in order:
        r = graph.regions[name]
        shift = modulation.get(name, {}).get("threshold")
        if shift is not None and isinstance(r, SpikingRegion):
            fns[name] = _threshold_shifted(r, graph, batch, steps, inputs.get(name), t_start,
                                           _per_step(f"modulation[{name!r}]['threshold']",
                                                     shift, steps, batch))
        else:
            fns[name] = r.prepare(graph.dt, batch, steps, inputs.get(name), dev, dt_, t_start)
    gains = {name: _per_step(f"modulation[{name!r}]['gain']", m["gain"], steps, batch)
             for name, m in modulation.items() if m.get("gain") is not None}
    mods = {k: _per_step(f"modulators[{k!r}]", v, steps, batch) for k, v in modulators.items()}
    projs = list(graph.projections.values())
    delayed = [p for p in projs if not p.same_step]
    same_in = {name: [p for p in projs if p.same_step and p.post == name] for name in order}
    receptor_of = {p.name: graph.region(p.post).receptors.index(p.receptor) for p in projs}
    trace_decay = {p.name: p.trace_decays(graph.dt) for p in projs if p.trace_taus}
    plastic = [p for p in projs if p.rules or p.trace_taus]
    multi = {name: isinstance(r, SpikingRegion) and r.multi_receptor
             for name, r in graph.regions.items()}
    regions = dict(st.regions)
    pending = {k: [list(slot) for slot in v] for k, v in st.pending.items()}
    traces, rules = dict(st.traces), dict(st.rules)
    synapses, history = dict(st.synapses), {k: list(v) for k, v in st.history.items()}
    recorded: dict[str, list[torch.Tensor]] = {n: [] for n in record}
    want_spikes = spike_regions_wanted(observers, [n for n, r in graph.regions.items()
                                                   if r.spiking])
    probes = [pr for o in observers for pr in o.probes]
    degrees = out_degrees(graph) if any(o.count_events for o in observers) else None
    for k in range(steps):
        t = t_start + k
        outs: dict[str, torch.Tensor] = {}
        sent: dict[str, torch.Tensor] = {}
        for name in order:
            slot = None
            if name in pending:
                ring = pending[name]
                slot = ring.pop(0)
                ring.append([None] * len(slot))
                for p in same_in[name]:
                    (_, contrib), = p.propagate(_sent(p, outs, sent, synapses, graph.dt))
                    r_i = receptor_of[p.name]
                    slot[r_i] = contrib if slot[r_i] is None else slot[r_i] + contrib
            x = None
            if slot is not None and any(v is not None for v in slot):
                like = next(v for v in slot if v is not None)
                rows = [torch.zeros_like(like) if v is None else v for v in slot]
                x = torch.stack(rows) if multi[name] else rows[0]
            if name in gains and x is not None:
                x = x * gains[name][k].to(x.dtype)
            outs[name], regions[name] = fns[name](x, regions[name], k)
        for p in delayed:
            ring, r_i = pending[p.post], receptor_of[p.name]
            for d, contrib in p.propagate(_sent(p, outs, sent, synapses, graph.dt)):
                cur = ring[d][r_i]
                ring[d][r_i] = contrib if cur is None else cur + contrib
        if plastic:
            with torch.no_grad():
                mod_t = {name: v[k] for name, v in mods.items()}
                for p in plastic:
                    _plasticity_step(graph, p, outs, traces, rules, history, trace_decay,
                                     mod_t, t)
        if observers:
            chunk = _chunk(graph, t, batch, outs, regions, traces, want_spikes, probes,
                           degrees)
            for o in observers:
                o.observe(chunk)
        for n in record:
            recorded[n].append(outs[n])
        if progress is not None and ((k + 1) % 200 == 0 or k + 1 == steps):
            progress.advance((k + 1) - progress.done)
    st = GraphState(t_start + steps, batch, regions, pending, traces, rules, synapses, history)
    return {n: torch.stack(v) for n, v in recorded.items()}, st


def _sent(p: Any, outs: Mapping[str, torch.Tensor], sent: dict[str, torch.Tensor],
          synapses: dict[str, Any], dt: float) -> torch.Tensor:
    """What projection ``p`` transmits this step: the pre output, scaled by its synapse
    model's efficacy (whose state advances once per step)."""
    if p.name not in sent:
        y = outs[p.pre]
        if p.synapse is not None:
            e, synapses[p.name] = p.synapse.step(y, synapses[p.name], dt)
            y = y * e
        sent[p.name] = y
    return sent[p.name]


def _threshold_shifted(r: SpikingRegion, graph: Graph, batch: int, steps: int,
                       fed: torch.Tensor | None, t_start: int,
                       shift: list[torch.Tensor]) -> Any:
    """A region step whose threshold is :math:`\\vartheta + \\Delta\\vartheta[t]` (V)."""
    p = r.params()
    step_fn = r.functional.step
    dev, dt_ = graph.device, graph.dtype

    def step(x: torch.Tensor | None, state: Any, k: int) -> tuple[torch.Tensor, Any]:
        if x is None:
            x = r._dummy_input(batch, dev, dt_)
        p_k = dataclasses.replace(p, threshold=p.threshold + shift[k].to(dev, dt_))
        return step_fn(x, state, p_k, graph.dt)
    return step


def _plasticity_step(graph: Graph, p: Any, outs: Mapping[str, torch.Tensor],
                     traces: dict[str, Traces], rules: dict[str, Any],
                     history: dict[str, list[torch.Tensor]],
                     trace_decay: Mapping[str, tuple[float, float]],
                     modulators: Mapping[str, torch.Tensor], t: int) -> None:
    y_pre, y_post = outs[p.pre].detach(), outs[p.post].detach()
    hist = history.get(p.name)
    pre, pre_syn = p.at_synapses(hist if hist is not None else [], y_pre)
    tr = None
    if p.name in traces:
        a_pre, a_post = trace_decay[p.name]
        old = traces[p.name]
        tr = Traces(trace_step(old.pre, pre, a_pre), trace_step(old.post, y_post, a_post))
        traces[p.name] = tr
        p._last_traces = tr
    activity = SynapseActivity(pre, y_post, pre_syn, tr, t)
    for rule in list(p.rules):
        key = f"{p.name}.{rule.slot}"
        dw, rules[key] = rule.update(activity, p.effective_weight().detach(), rules.get(key),
                                     graph.dt, modulators)
        if dw is not None:
            p.apply_update(reduce_batch(dw, rule.batch_reduction, p.weight.shape))
    if hist is not None:
        hist.insert(0, y_pre)
        hist.pop()


def _chunk(graph: Graph, t: int, batch: int, outs: Mapping[str, torch.Tensor],
           regions: Mapping[str, Any], traces: Mapping[str, Traces], want_spikes: set[str],
           probes: list[Any], degrees: Mapping[str, np.ndarray] | None) -> Chunk:
    chunk = Chunk(t, 1, batch, graph.dt)
    for name in want_spikes:
        b, i = outs[name].detach().nonzero(as_tuple=True)
        chunk.spikes[name] = (np.full(b.numel(), t, np.int64), b.cpu().numpy().astype(np.int64),
                              i.cpu().numpy().astype(np.int64))
    for pr in probes:
        rows = np.array([t] if t % pr.every == 0 else [], dtype=np.int64)
        if rows.size:
            v = probe_value(graph, pr, outs, regions, traces)
            chunk.values[pr] = (rows, pr.select(v.detach().cpu().numpy())[None])
        else:
            chunk.values[pr] = (rows, np.zeros((0,), np.float64))
    if degrees is not None:
        spikes = dict(chunk.spikes)
        dense = {}
        for p in graph.projections.values():
            if p.pre not in spikes:
                nz = (outs[p.pre].detach() != 0).sum(0).cpu().numpy()[None]
                dense[p.pre] = nz
        chunk.events = count_events(graph, spikes, degrees, t, 1, dense)
    return chunk


def probe_value(graph: Graph, probe: Any, outs: Mapping[str, torch.Tensor],
                regions: Mapping[str, Any], traces: Mapping[str, Traces]) -> torch.Tensor:
    """The current value of a probe (all neurons; the probe selects)."""
    if probe.target in graph.projections:
        if probe.variable == "weights":
            return graph.projections[probe.target].effective_weight()
        tr = traces[probe.target]
        return tr.pre if probe.variable == "pre_trace" else tr.post
    if probe.variable == "output":
        return outs[probe.target]
    base, _, rec = probe.variable.partition(":")
    v = getattr(regions[probe.target], base)
    if rec:
        v = v[graph.regions[probe.target].receptors.index(rec)]
    return v


__all__ = ["probe_value", "run_torch"]
