r"""Hybrid partition of an :class:`aura_snn.graph.Graph`: the ANN regions in PyTorch, the
spiking regions in Lava (or in the fixed-point twin), joined through Lava's input and
output processes.

:func:`partition_graph` sorts the regions into three parts: ``pre`` (dense, module and
Poisson regions with no spiking region upstream: they run first, in PyTorch), ``snn``
(the spiking regions) and ``post`` (non-spiking regions downstream of a spiking one:
they run last, in PyTorch). A non-spiking region both downstream and upstream of
spiking regions (a spiking -> ANN -> spiking path) would need Lava and PyTorch to
alternate every step and is refused, naming it. Input regions feed whichever part
reads them.

:func:`run_graph_partitioned` runs each part as a graph of its own, from rest, with
every region of an earlier part that feeds it replaced by an input region fed that
region's recorded output: the ``snn`` part through :func:`hardware.lava_graph.run_graph`
(``target="lava"``: binary inputs such as Poisson spikes through ``RingBuffer`` sources
and connection processes, real-valued ones such as ANN activations as host currents;
spikes leave through ``RingBuffer`` sinks) or the twin (``target="twin"``:
:func:`hardware.loihi_graph.quantize_graph` in ``fixed_pt``, the float part in
``floating_pt``). In ``floating_pt`` the result equals the all-PyTorch run of the
graph; in ``fixed_pt`` Lava's equals the twin's. Projections keep their delays and
same-step timing across the cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from aura_snn._checks import check_choice
from aura_snn.errors import ParameterError
from aura_snn.graph import Graph, InputRegion, SpikingRegion

from .partition import TARGETS


@dataclass(frozen=True)
class GraphPartition:
    """Region names per part, in the graph's order (module docstring)."""

    pre: tuple[str, ...]
    snn: tuple[str, ...]
    post: tuple[str, ...]
    inputs: tuple[str, ...]


def _reach(graph: Graph, start: Iterable[str], forward: bool) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        n = todo.pop()
        for p in graph.projections.values():
            nxt = p.post if forward and p.pre == n else p.pre if not forward and p.post == n \
                else None
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def partition_graph(graph: Graph) -> GraphPartition:
    """Split the regions of ``graph`` into ``pre``, ``snn`` and ``post`` parts."""
    if not isinstance(graph, Graph):
        raise ParameterError(f"graph must be an aura_snn.graph.Graph, got {type(graph).__name__}")
    names = list(graph.regions)
    snn = [n for n in names if isinstance(graph.regions[n], SpikingRegion)]
    if not snn:
        raise ParameterError("graph has no spiking region to run on Loihi")
    inputs = [n for n in names if isinstance(graph.regions[n], InputRegion)]
    down, up = _reach(graph, snn, True), _reach(graph, snn, False)
    ann = [n for n in names if n not in snn and n not in inputs]
    loop = [n for n in ann if n in down and n in up]
    if loop:
        raise ParameterError(f"regions {loop} lie on a spiking -> ANN -> spiking path: "
                             "PyTorch and Lava would have to alternate every step")
    return GraphPartition(tuple(n for n in ann if n not in down), tuple(snn),
                          tuple(n for n in ann if n in down), tuple(inputs))


def _subgraph(graph: Graph, part: Iterable[str], feeds: Mapping[str, torch.Tensor]) -> Graph:
    """The regions ``part`` and the projections into them; each region outside the
    part that feeds one becomes an input region (fed ``feeds[name]``)."""
    part = list(part)
    g = Graph(graph.dt, seed=graph.seed).to(dtype=graph.dtype)
    into = [p for p in graph.projections.values() if p.post in part]
    for n in dict.fromkeys([p.pre for p in into if p.pre not in part]):
        if n not in feeds:
            raise ParameterError(f"region {n!r} feeds the part {part} but has no output yet")
        g.add(InputRegion(n, graph.regions[n].size))
    for n in part:
        g.add(graph.regions[n])
    for p in into:
        g.add(p)
    return g


def run_graph_partitioned(graph: Graph, inputs: Mapping[str, torch.Tensor],
                          mode: str = "floating_pt", target: str = "lava", *,
                          record: Iterable[str] | None = None, steps: int | None = None,
                          **quantize_kwargs: Any) -> dict[str, torch.Tensor]:
    """Run ``graph`` from rest on ``inputs`` (``{region: [T, B, ...]}``, as
    :meth:`Graph.run` takes them; ``steps`` when nothing is fed, batch 1) with its
    spiking part on ``target`` (module docstring); returns ``{region: [T, B, size]}``
    (float64) for ``record`` (default: the regions no projection leaves)."""
    from .lava import MODES
    from .lava_graph import run_graph
    from .loihi_graph import quantize_graph

    check_choice("mode", mode, MODES)
    check_choice("target", target, TARGETS)
    parts = partition_graph(graph)
    if inputs:
        steps = int(next(iter(inputs.values())).shape[0])
    elif steps is None:
        raise ParameterError("steps is needed when inputs feed no region")
    sources = {p.pre for p in graph.projections.values()}
    record = [n for n in graph.regions if n not in sources] if record is None else list(record)
    for n in record:
        graph.region(n)
    outs: dict[str, torch.Tensor] = {k: v.detach().double() for k, v in inputs.items()
                                     if k in parts.inputs}
    later = set(parts.snn) | set(parts.post)
    needed = {p.pre for p in graph.projections.values() if p.post in later} | set(record)
    for part in (parts.pre, parts.snn, parts.post):
        if not part:
            continue
        sub = _subgraph(graph, part, outs)
        fed = {n: outs[n] for n, r in sub.regions.items() if isinstance(r, InputRegion)}
        fed.update({n: v for n, v in inputs.items() if n in part})
        want = [n for n in part if n in needed]
        if part is parts.snn and target == "lava":
            got = run_graph(sub, fed, mode, record=want, **quantize_kwargs)
        elif part is parts.snn and mode == "fixed_pt":
            twin = quantize_graph(sub, **quantize_kwargs).run(fed)
            got = {n: twin[n].double() for n in want}
        else:
            with torch.no_grad():
                res = sub.run(steps, {k: v.to(sub.dtype) for k, v in fed.items()},
                              record=want, backend="torch", reset=True)
            got = {n: v.detach().double() for n, v in res.outputs.items()}
        outs.update(got)
    return {n: outs[n] for n in record}


__all__ = ["GraphPartition", "partition_graph", "run_graph_partitioned"]
