r"""An :class:`aura_snn.graph.Graph` as a Lava process network, run in ``Loihi2SimCfg``.

Each spiking region becomes a Lava ``LIF`` and each projection a ``Dense`` (``Sparse``
for a sparse projection, ``DelaySparse`` where synapses need delays), with the
integers of :func:`hardware.loihi_graph.quantize_graph` in ``fixed_pt`` (spikes equal
the twin's bit for bit) and :math:`g W`, the decays and the threshold above rest in
``floating_pt`` (spikes equal the float graph's, up to float rounding at ties).

Timing. A Lava connection process delivers at step :math:`t + 1 + d_\text{Lava}` what
its source emitted at :math:`t`; the graph delivers at :math:`t + 1 + d` (delayed
edges) or :math:`t` (same-step edges). Each region :math:`r` therefore runs
:math:`L_r` steps late in Lava, with the least :math:`L \ge 0` that gives every synapse
a delay :math:`d_\text{Lava} = d + \ell_p - 1 + L_\text{post} - L_\text{pre} \ge 0`
(:math:`\ell_p` = 1 delayed, 0 same-step): a longest-path problem over the
projections (Bellman-Ford). A cycle that the graph completes faster than one step per
connection has no solution and is refused, naming its projections; so is a
:math:`d_\text{Lava}` beyond 63. Binary input regions send through a ``RingBuffer``
source and their connection processes; real-valued ones have their projections'
currents computed on the host (the twin's integers in ``fixed_pt``) and injected into
the target ``LIF`` at the right step. Initial values (:mod:`hardware.loihi_graph`) are
the ``LIF``'s ``u``/``v`` at construction, or, for a region running :math:`L_r > 0`
steps late (at rest until then: nothing reaches it earlier), set when the run pauses
at step :math:`L_r`. :func:`run_graph` runs ``T + max L`` steps,
reads each recorded region's steps :math:`L_r \dots L_r + T - 1` from an ``Extractor``
sink, runs batch elements one after another, and stops every runtime it started, on
success and on error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aura_snn.errors import ParameterError

from ._graph_twin import GraphTwin, TwinProjection, TwinRegion, _current
from ._loihi_fixed import MAX_DELAY
from .lava_compat import import_lava
from .loihi_graph import quantize_graph


@dataclass
class LavaGraphNetwork:
    """Lava processes of a graph export: ``lifs`` by region, ``conns`` by projection
    (``None`` where the host computes it), ``lags`` (steps each region and input runs
    late), ``host`` the input regions computed on the host; ``twin`` the integers."""

    mode: str
    twin: GraphTwin
    lifs: dict[str, Any]
    conns: dict[str, Any]
    lags: dict[str, int]
    host: frozenset[str]


def _min_delay(p: TwinProjection) -> int:
    live = p.delays[p.weights != 0]
    return int(live.min()) if live.numel() else 0


def graph_lags(twin: GraphTwin, host: Iterable[str] = ()) -> dict[str, int]:
    """Least lags ``L >= 0`` with ``L_post >= L_pre + 1 - latency - min delay`` for every
    projection not computed on the host (module docstring)."""
    host = set(host)
    names = [*twin.inputs, *twin.regions]
    lags = dict.fromkeys(names, 0)
    edges = [(p, 1 - p.latency - _min_delay(p)) for p in twin.projections
             if p.pre not in host]
    for _ in range(len(names) + 1):
        moved = [p.name for p, w in edges if lags[p.pre] + w > lags[p.post]]
        for p, w in edges:
            lags[p.post] = max(lags[p.post], lags[p.pre] + w)
        if not moved:
            return lags
    raise ParameterError(f"projections {moved} close a cycle that the graph runs in fewer "
                         "steps than Lava can (every Lava connection takes at least one "
                         "step): add delay on the cycle")


def _process(p: TwinProjection, mode: str, lag_pre: int, lag_post: int) -> Any:
    import_lava()
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode
    from scipy.sparse import csr_matrix

    if mode == "floating_pt":
        w: Any = p.weights_f.numpy().astype(np.float64)
        kw: dict[str, Any] = {}
    else:
        w = p.weights.numpy().astype(np.int32)
        kw = dict(weight_exp=p.weight_exp, num_weight_bits=p.num_weight_bits,
                  sign_mode=SignMode[p.sign_mode.upper()])
    d = (p.delays.numpy() + p.latency - 1 + lag_post - lag_pre) * (w != 0)
    if d.size and d.max() > MAX_DELAY:
        raise ParameterError(f"projection {p.name!r}: a Lava delay of {int(d.max())} steps "
                             f"(graph delay plus lag alignment) exceeds Loihi 2's {MAX_DELAY}")
    if d.size and d.max() > 0:
        return DelaySparse(weights=csr_matrix(w), delays=csr_matrix(d.astype(int)),
                           max_delay=int(d.max()), **kw)
    if p.sparse:
        return Sparse(weights=csr_matrix(w), **kw)
    return Dense(weights=w, **kw)


def initial_uv(r: TwinRegion, mode: str) -> dict[str, np.ndarray]:
    """Lava LIF's initial ``u``/``v`` of region ``r`` (integers in ``fixed_pt``, the
    float values in ``floating_pt``); empty at rest."""
    pairs = (("u", r.u0, r.u0_f), ("v", r.v0, r.v0_f))
    if mode == "floating_pt":
        return {k: f.numpy().astype(np.float64) for k, _, f in pairs if f is not None}
    return {k: i.numpy().astype(np.int32) for k, i, _ in pairs if i is not None}


def export_graph(graph: Any, mode: str, *, host: Iterable[str] = (),
                 **quantize_kwargs: Any) -> LavaGraphNetwork:
    """Build the ``LIF`` and connection processes of ``graph``, connected region to
    region; projections out of the input regions in ``host`` are left to the host.
    Input, host-current and output processes are added by :func:`run_graph`."""
    import_lava()
    from lava.proc.lif.process import LIF

    twin = quantize_graph(graph, **quantize_kwargs)
    host = frozenset(host)
    lags = graph_lags(twin, host)
    lifs = {}
    for n, r in twin.regions.items():
        uv = initial_uv(r, mode) if lags[n] == 0 else {}  # later: set by run_graph
        if mode == "floating_pt":
            lifs[n] = LIF(shape=(r.size,), du=r.du_f, dv=r.dv_f, vth=r.vth_f, bias_mant=0.0,
                          **uv)
        else:
            lifs[n] = LIF(shape=(r.size,), du=r.du, dv=r.dv, vth=r.vth, bias_mant=0,
                          bias_exp=0, **uv)
    conns: dict[str, Any] = {}
    for p in twin.projections:
        if p.pre in host:
            conns[p.name] = None
            continue
        c = _process(p, mode, lags[p.pre], lags[p.post])
        c.a_out.connect(lifs[p.post].a_in)
        if p.pre in lifs:
            lifs[p.pre].s_out.connect(c.s_in)
        conns[p.name] = c
    return LavaGraphNetwork(mode, twin, lifs, conns, lags, host)


def _components(twin: GraphTwin) -> dict[str, str]:
    """Region -> a representative of its connected component (projections undirected)."""
    root = {n: n for n in [*twin.inputs, *twin.regions]}

    def find(n: str) -> str:
        while root[n] != n:
            n = root[n]
        return n
    for p in twin.projections:
        root[find(p.pre)] = find(p.post)
    return {n: find(n) for n in root}


def _run_one(graph: Any, xs: dict[str, torch.Tensor], mode: str, binary: dict[str, bool],
             record: list[str], kw: dict[str, Any]) -> dict[str, np.ndarray]:
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer as Source

    from . import lava as _lava

    net = export_graph(graph, mode, host=[n for n, b in binary.items() if not b], **kw)
    twin, fixed = net.twin, mode == "fixed_pt"
    steps = next(iter(xs.values())).shape[0]
    total = steps + max(net.lags[n] for n in record)
    as_data = (lambda a: a.astype(np.int32)) if fixed else (lambda a: a)
    for name, x in xs.items():
        outgoing = [p for p in twin.projections if p.pre == name]
        if binary[name] and outgoing:
            data = np.zeros((x.shape[1], total))
            data[:, net.lags[name]:net.lags[name] + steps] = x.numpy().T
            src = Source(data=as_data(data))
            for p in outgoing:
                src.s_out.connect(net.conns[p.name].s_in)
    for n, r in twin.regions.items():
        host = [p for p in twin.projections if p.post == n and p.pre in net.host]
        if not host:
            continue
        cur = np.zeros((steps, r.size))
        for p in host:
            s = xs[p.pre].unsqueeze(1)
            cur += (_current(s, p.groups(), p.weight_exp)[:, 0].numpy() if fixed else
                    sum((np.pad(s[:steps - lag, 0].numpy() @ w.numpy().T, ((lag, 0), (0, 0)))
                         for lag, w in p.groups(p.weights_f) if lag < steps),
                        np.zeros((steps, r.size))))
        data = np.zeros((r.size, total))
        data[:, net.lags[n]:net.lags[n] + steps] = cur.T
        Source(data=as_data(data)).s_out.connect(net.lifs[n].a_in)
    sinks = {}
    for n in record:
        sinks[n] = _lava._sink(twin.regions[n].size, total)
        net.lifs[n].s_out.connect(sinks[n].in_port)
    comp = _components(twin)
    out = {}
    cfg = _lava._run_cfg(mode)
    for c in dict.fromkeys(comp[n] for n in record):
        group = [n for n in record if comp[n] == c]
        first = sinks[group[0]]
        late = {n: net.lags[n] for n, r in twin.regions.items() if comp[n] == c
                and net.lags[n] > 0 and initial_uv(r, mode)}
        try:
            done = 0  # a region running L steps late gets its initial state at step L
            for stop in sorted({*late.values(), total}):
                if stop > done:
                    first.run(condition=RunSteps(num_steps=min(stop, total) - done),
                              run_cfg=cfg)
                    done = min(stop, total)
                for n in [n for n, lag in late.items() if lag == stop and stop < total]:
                    for k, val in initial_uv(twin.regions[n], mode).items():
                        getattr(net.lifs[n], k).set(val)
            for n in group:
                out[n] = _lava._read_output(sinks[n])[:, net.lags[n]:net.lags[n] + steps].T
        finally:
            first.stop()  # a no-op when no runtime was created
    return out


def run_graph(graph: Any, x: Any, mode: str, *, record: Iterable[str] | None = None,
              **quantize_kwargs: Any) -> dict[str, torch.Tensor]:
    """Run ``graph`` in Lava on ``x`` (``{input region: [T, B, size]}``, or one tensor
    for a graph with one input region); returns ``{region: spikes float64 [T, B, n]}``
    for the ``record`` regions (default: the spiking regions no projection leaves, or
    all of them), aligned with the graph's own steps."""
    twin = quantize_graph(graph, **quantize_kwargs)
    xs = {k: v.detach().cpu() for k, v in twin.check_inputs(x).items()}
    if record is None:
        sources = {p.pre for p in twin.projections}
        record = [n for n in twin.regions if n not in sources] or list(twin.regions)
    record = list(record)
    for n in record:
        if n not in twin.regions:
            raise ParameterError(f"record: {n!r} is not a spiking region of the graph "
                                 f"(spiking regions: {list(twin.regions)})")
    binary = {k: bool(((v == 0) | (v == 1)).all()) for k, v in xs.items()}
    batch = next(iter(xs.values())).shape[1]
    outs = [_run_one(graph, {k: v[:, b] for k, v in xs.items()}, mode, binary, record,
                     quantize_kwargs) for b in range(batch)]
    return {n: torch.from_numpy(np.stack([o[n] for o in outs], axis=1).astype(np.float64))
            for n in record}


__all__ = ["LavaGraphNetwork", "export_graph", "graph_lags", "initial_uv", "run_graph"]
