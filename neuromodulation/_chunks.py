r"""Running a graph in chunks, with the changes that cannot happen inside a step between them.

Two mechanisms act on a graph from outside its step: structural plasticity changes the
synapses (:mod:`neuromodulation.structural`, through
:meth:`aura_snn.graph.Graph.rewire`), and intrinsic threshold adaptation
(:class:`neuromodulation.homeostasis.IntrinsicThreshold`) moves a region's threshold
through the modulation input, which :meth:`~aura_snn.graph.Graph.run` takes per run.
:func:`run_chunked` runs ``steps`` steps as consecutive runs of at most :math:`K` steps
(chunk ends at absolute multiples of :math:`K`); before each chunk every region with an
:class:`~neuromodulation.homeostasis.IntrinsicThreshold` rule gets the shift its rule
state holds, constant over the chunk (added to any ``modulation`` threshold given); after
each chunk every :class:`~neuromodulation.structural.StructuralPlasticity` whose period
ends there rewires its projection. Nothing is recorded, so memory stays flat however long
the run. Time-indexed inputs (``[T, ...]``: fed regions' ``[T, B, n]``, modulators,
modulation) are sliced per chunk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import torch

from aura_snn._checks import check_int
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.graph.regions import ModuleRegion

from .homeostasis import IntrinsicThreshold
from .structural import StructuralPlasticity


class ChunkedRun(NamedTuple):
    """What :func:`run_chunked` returns: the number of graph runs (``chunks``), the
    rewirings done (``rewirings``) and synapses replaced (``replaced``), and
    ``wall_time`` (s). The final state is kept by the graph."""

    chunks: int
    rewirings: int
    replaced: int
    wall_time: float


def threshold_rules(graph: Any) -> dict[str, tuple[str, Any]]:
    """``{region: (projection, rule)}`` for the :class:`IntrinsicThreshold` rules of a graph
    (one per region)."""
    found: dict[str, tuple[str, Any]] = {}
    for p in graph.projections.values():
        for rule in p.rules:
            if isinstance(rule, IntrinsicThreshold):
                if p.post in found:
                    raise ParameterError(f"region {p.post!r} has two IntrinsicThreshold rules "
                                         f"(projections {found[p.post][0]!r} and {p.name!r}); "
                                         f"attach one per region")
                found[p.post] = (p.name, rule)
    return found


def _slice(name: str, x: Any, a: int, b: int, steps: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ParameterTypeError(f"{name} must be a tensor, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] < steps:
        raise ShapeError(f"{name} must be a tensor [T>={steps}, ...], got {tuple(x.shape)}")
    return x[a:b]


def run_chunked(graph: Any, steps: int, *, every: int | None = None,
                structural: Iterable[StructuralPlasticity] = (),
                inputs: Mapping[str, torch.Tensor] | None = None,
                modulators: Mapping[str, torch.Tensor] | None = None,
                modulation: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
                batch_size: int | None = None, reset: bool = False,
                backend: str = "auto") -> ChunkedRun:
    """Run ``graph`` for ``steps`` steps in chunks of ``every`` steps (module docstring).

    Args:
        graph: an :class:`aura_snn.graph.Graph`.
        steps: steps to run (>= 1).
        every: chunk length :math:`K` (steps); default: the greatest common divisor of the
            structural periods, else 1000. Each structural period must be a multiple.
        structural: :class:`~neuromodulation.structural.StructuralPlasticity` drivers.
        inputs, modulators, modulation: as :meth:`aura_snn.graph.Graph.run`, over the
            whole run (``[T >= steps, ...]``, ``[B, d]`` module inputs as they are).
        batch_size, reset: as :meth:`~aura_snn.graph.Graph.run` (for the first chunk).
        backend: as :meth:`~aura_snn.graph.Graph.run`.
    """
    steps = check_int("steps", steps, minimum=1)
    structural = list(structural)
    for s in structural:
        if not isinstance(s, StructuralPlasticity):
            raise ParameterTypeError(f"structural must hold StructuralPlasticity drivers, got "
                                     f"{type(s).__name__}")
        s.check(graph)
    if every is None:
        every = math.gcd(*(s.params.every for s in structural)) if structural else 1000
    every = check_int("every", every, minimum=1)
    for s in structural:
        if s.params.every % every:
            raise ParameterError(f"every={every}: the structural period {s.params.every} of "
                                 f"projection {s.projection!r} is not a multiple of it")
    thresholds = threshold_rules(graph)
    inputs, modulators = dict(inputs or {}), dict(modulators or {})
    modulation = {r: dict(m) for r, m in (modulation or {}).items()}
    t0 = time.perf_counter()
    done = chunks = rewirings = replaced = 0
    while done < steps:
        t_abs = 0 if (reset and chunks == 0) or graph.state is None else int(graph.state.t)
        k = min(every - t_abs % every, steps - done)
        a, b = done, done + k
        ins = {n: (x if isinstance(graph.region(n), ModuleRegion) and isinstance(x, torch.Tensor)
                   and x.dim() == 2 else _slice(f"inputs[{n!r}]", x, a, b, steps))
               for n, x in inputs.items()}
        mods = {n: _slice(f"modulators[{n!r}]", x, a, b, steps) for n, x in modulators.items()}
        mdl = {r: {f: _slice(f"modulation[{r!r}][{f!r}]", x, a, b, steps)
                   for f, x in m.items()} for r, m in modulation.items()}
        for region, (proj, rule) in thresholds.items():
            shift = _shift(graph, proj, rule, reset and chunks == 0)
            if shift is not None:
                cur = mdl.setdefault(region, {})
                add = shift[None].expand(k, *shift.shape)
                cur["threshold"] = add if "threshold" not in cur else cur["threshold"] + add
        graph.run(k, ins, modulators=mods, modulation=mdl, batch_size=batch_size,
                  reset=reset and chunks == 0, backend=backend)
        done, chunks = b, chunks + 1
        for s in structural:
            if s.due(int(graph.state.t)):
                ev = s.rewire(graph)
                rewirings, replaced = rewirings + 1, replaced + int(ev.pruned.size)
    return ChunkedRun(chunks, rewirings, replaced, time.perf_counter() - t0)


def _shift(graph: Any, proj: str, rule: Any, fresh: bool) -> torch.Tensor | None:
    """The threshold shift ``[B, n]`` in the graph state, ``None`` at rest (no state)."""
    st = None if fresh else graph.state
    s = None if st is None else st.rules.get(f"{proj}.{rule.slot}")
    return None if s is None else s.shift


__all__ = ["ChunkedRun", "run_chunked", "threshold_rules"]
