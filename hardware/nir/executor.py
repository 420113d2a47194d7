r"""Run a (flattened) NIR graph of :mod:`hardware.nir.modules` on time-major input.

Semantics of the edges: every edge is instantaneous (the node sees the sum of its
sources' outputs of the same step, as NIR defines), except

* edges into a :class:`~hardware.nir.modules.Delay` whose every element waits at
  least one step: its output of step :math:`t` comes from its history, so a cycle
  through it is causal and is run exactly;
* an edge that closes a cycle with no such delay on it (a *back edge*, found by a
  depth-first search from the Input nodes, edges taken in the file's order): it
  carries its source's output of the **previous** step (zeros at :math:`t = 0`).
  A zero-delay cycle has no solution in discrete time; this one-step delay on the
  back edge is the convention of nirtorch (and so of snnTorch's and Norse's imports).

A graph without cycles runs node by node over the whole sequence (each neuron in one
fused-kernel call); a graph with cycles runs step by step, carrying each node's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from aura_snn.errors import ParameterError, ShapeError

from .modules import Delay, Node


def _order(names: list[str], edges: list[tuple[str, str]], starts: list[str]
           ) -> tuple[list[str], set[tuple[str, str]]]:
    """``(topological order, back edges)`` of the directed graph ``edges``."""
    succ: dict[str, list[str]] = {n: [] for n in names}
    for s, d in edges:
        succ[s].append(d)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for root in [*starts, *names]:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            n, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[n] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((n, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    indeg = {n: 0 for n in names}
    fwd = [e for e in edges if e not in back]
    for _, d in fwd:
        indeg[d] += 1
    order, ready = [], [n for n in names if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s, d in fwd:
            if s == n:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
                    ready.sort(key=names.index)
    return order, back


class NIRModule(nn.Module):
    """A NIR graph as a module: ``forward(x) -> spikes`` on time-major ``[T, B, ...]``.

    ``x`` is a tensor for a graph with one Input node, else ``{input name: tensor}``;
    the result is a tensor for one Output node, else ``{output name: tensor}``.
    Attributes ``inputs``/``outputs`` map those names to their per-sample shapes;
    ``node_names`` lists the nodes (nested graphs flattened as ``"sub.node"``),
    ``node(name)`` returns one's module, ``shapes``/``in_shapes`` their per-sample
    output and input shapes.
    """

    def __init__(self, nodes: Mapping[str, Node], edges: list[tuple[str, str]],
                 shapes: Mapping[str, tuple[int, ...]],
                 in_shapes: Mapping[str, tuple[int, ...]], inputs: list[str],
                 outputs: list[str], metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.node_names = list(nodes)
        self.mods = nn.ModuleList(nodes.values())
        self.edges = list(edges)
        self.shapes = dict(shapes)        # per-sample output shape of each node
        self.in_shapes = dict(in_shapes)  # per-sample input shape of each node
        self.inputs = {n: self.shapes[n] for n in inputs}
        self.outputs = {n: self.shapes[n] for n in outputs}
        self.metadata = dict(metadata or {})
        self._index = {n: i for i, n in enumerate(self.node_names)}
        self._sources = {n: [s for s, d in self.edges if d == n] for n in self.node_names}
        self.breaking = {n for n in self.node_names
                         if isinstance(self.node(n), Delay) and self.node(n).breaks_cycles}
        _, cycles = _order(self.node_names, self.edges, inputs)
        self.stepped = bool(cycles)
        dep = [e for e in self.edges if e[1] not in self.breaking]
        self.order, self.back_edges = _order(self.node_names, dep, inputs)
        if not self.stepped:
            self.order, _ = _order(self.node_names, self.edges, inputs)

    def node(self, name: str) -> Node:
        """The module of node ``name``."""
        return self.mods[self._index[name]]

    def _feed(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if isinstance(x, torch.Tensor):
            if len(self.inputs) != 1:
                raise ParameterError(f"the graph has inputs {list(self.inputs)}: pass "
                                     f"{{name: tensor}}")
            x = {next(iter(self.inputs)): x}
        if set(x) != set(self.inputs):
            raise ParameterError(f"inputs must be exactly {sorted(self.inputs)}, got "
                                 f"{sorted(x)}")
        lengths = set()
        for name, t in x.items():
            want = self.inputs[name]
            if not isinstance(t, torch.Tensor) or t.dim() != 2 + len(want) \
                    or tuple(t.shape[2:]) != want:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ShapeError(f"input {name!r} must have shape [T, B, "
                                 f"{', '.join(map(str, want))}], got {got}")
            lengths.add(tuple(t.shape[:2]))
        if len(lengths) != 1:
            raise ShapeError(f"inputs disagree on [T, B]: {sorted(lengths)}")
        return dict(x)

    def _sum(self, name: str, outs: Mapping[str, torch.Tensor], like: torch.Tensor,
             steps: int, prev: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        total = None
        for s in self._sources[name]:
            if prev is not None and (s, name) in self.back_edges:
                y = prev.get(s)
                if y is None:
                    continue
            else:
                y = outs[s]
            total = y if total is None else total + y
        if total is None:
            return like.new_zeros((steps, like.shape[1], *self.in_shapes[name]))
        return total

    def forward(self, x: torch.Tensor | Mapping[str, torch.Tensor]
                ) -> torch.Tensor | dict[str, torch.Tensor]:
        feed = self._feed(x)
        like = next(iter(feed.values()))
        outs = self._run_steps(feed, like) if self.stepped else self._run_sequence(feed, like)
        result = {n: outs[n] for n in self.outputs}
        return next(iter(result.values())) if len(result) == 1 else result

    def _run_sequence(self, feed: dict[str, torch.Tensor], like: torch.Tensor
                      ) -> dict[str, torch.Tensor]:
        outs: dict[str, torch.Tensor] = {}
        T = like.shape[0]
        for n in self.order:
            if n in feed:
                outs[n] = feed[n]
                continue
            outs[n] = self.node(n).run(self._sum(n, outs, like, T))[0]
        return outs

    def _run_steps(self, feed: dict[str, torch.Tensor], like: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
        T = like.shape[0]
        state: dict[str, Any] = {}
        prev: dict[str, torch.Tensor] = {}
        trace: dict[str, list[torch.Tensor]] = {n: [] for n in self.outputs}
        for t in range(T):
            outs: dict[str, torch.Tensor] = {}
            for n in self.breaking:
                shape = (1, like.shape[1], *self.shapes[n])
                outs[n] = self.node(n).emit(state.get(n), like.new_zeros(shape))
            for n in self.order:
                if n in self.breaking:
                    continue
                if n in feed:
                    outs[n] = feed[n][t:t + 1]
                    continue
                y, state[n] = self.node(n).run(self._sum(n, outs, like, 1, prev), state.get(n))
                outs[n] = y
            for n in self.breaking:
                state[n] = self.node(n).absorb(self._sum(n, outs, like, 1), state.get(n))
            prev = outs
            for n in self.outputs:
                trace[n].append(outs[n])
        return {n: torch.cat(v, 0) for n, v in trace.items()}

    def extra_repr(self) -> str:
        mode = "step by step (cycles)" if self.stepped else "whole sequence per node"
        return f"inputs={self.inputs}, outputs={self.outputs}, {mode}"


__all__ = ["NIRModule"]
