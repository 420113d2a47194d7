r"""Automatic partition (:func:`auto_partition`) of ``N`` workers, deterministic:

1. *units*: regions joined by edges that cannot cross workers (same-step, plastic:
   :func:`.partition.binds`) are merged (union-find); a unit's
   cost is :math:`\sum (n_\text{neurons} + n_\text{incoming synapses})` of its regions,
   the work of updating them and of storing and delivering their inputs;
2. *starts*: longest processing time first (units by decreasing cost, each to the
   worker with the smallest load so far), which also sets the load bound below; and
   up to 8 starts grown greedily from the heaviest units (a worker takes the unit with
   the most synapses to it while under the mean load);
3. *cut* (Kernighan–Lin / Fiduccia–Mattheyses passes): in each pass, repeatedly make
   the move of one unit to another worker, or swap of two units (graphs of at most 64
   units), that lowers the number of cut synapses most (or raises it least), among
   units not yet moved in the pass, keeping every worker non-empty and every load at
   most :math:`\max\big((1 + \epsilon)\,\bar L,\ L_\text{max}^{(2)}\big)`
   (:math:`\epsilon = 0.1`, :math:`\bar L` the mean load, :math:`L^{(2)}_\text{max}`
   the largest load of the first start; ties: lower maximum load); then keep the
   prefix of the pass with the smallest cut. Passes repeat until one gains nothing
   (at most 20). The start whose refinement cuts fewest synapses wins (ties: lower
   maximum load). A local optimum that escapes single-move traps, not a guaranteed
   minimum cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ParameterError
from .partition import region_costs, units

if TYPE_CHECKING:
    from ..graph import Graph

IMBALANCE = 0.1
MAX_PASSES = 20
SWAP_UNITS = 64
STARTS = 8


def auto_partition(graph: Graph, workers: int) -> dict[str, int]:
    """Assign the regions of ``graph`` to ``workers`` workers (module docstring)."""
    groups = units(graph)
    if workers > len(groups):
        bound = [g for g in groups if len(g) > 1]
        extra = f" ({len(bound)} of them groups bound by same-step or plastic edges: " \
                f"{bound})" if bound else ""
        raise ParameterError(f"partition={workers}: more workers than regions that can be "
                             f"placed apart; the graph has {len(groups)}{extra}")
    cost = region_costs(graph)
    ucost = [sum(cost[n] for n in g) for g in groups]
    # synapses between units (either direction): adj[u][v]
    index = {n: k for k, g in enumerate(groups) for n in g}
    adj: list[dict[int, int]] = [{} for _ in groups]
    for p in graph.projections.values():
        a, b = index[p.pre], index[p.post]
        if a != b:
            adj[a][b] = adj[a].get(b, 0) + p.nnz
            adj[b][a] = adj[b].get(a, 0) + p.nnz
    n = len(groups)
    lpt = [0] * n
    load = [0] * workers
    for u in sorted(range(n), key=lambda k: (-ucost[k], k)):
        w = min(range(workers), key=lambda k: (load[k], k))
        lpt[u] = w
        load[w] += ucost[u]
    cap = max((1 + IMBALANCE) * sum(ucost) / workers, max(load))
    starts = [lpt] + [_grown(seed, ucost, adj, workers, cap)
                      for seed in sorted(range(n), key=lambda k: (-ucost[k], k))[:STARTS]]
    best: tuple[int, int, list[int]] | None = None
    for start in starts:
        if start is None:
            continue
        where = _refine(list(start), _loads(start, ucost, workers), ucost, adj, workers, cap)
        key = (_cut_of(where, adj), max(_loads(where, ucost, workers)))
        if best is None or key < best[:2]:
            best = (*key, where)
    assert best is not None
    where = best[2]
    return {n: where[index[n]] for n in graph.regions}


def _loads(where: list[int], ucost: list[int], workers: int) -> list[int]:
    load = [0] * workers
    for u, w in enumerate(where):
        load[w] += ucost[u]
    return load


def _cut_of(where: list[int], adj: list[dict[int, int]]) -> int:
    return sum(s for u, row in enumerate(adj) for v, s in row.items()
               if u < v and where[u] != where[v])


def _grown(seed: int, ucost: list[int], adj: list[dict[int, int]], workers: int,
           cap: float) -> list[int] | None:
    """A start grown greedily: worker 0 from unit ``seed``, each later worker from the
    heaviest unit left; a worker takes the unit with the most synapses to it (ties:
    the heaviest) while its load is under the mean and the unit fits under ``cap``.
    The last worker takes the rest; ``None`` if that exceeds ``cap``."""
    n = len(ucost)
    where = [-1] * n
    target = sum(ucost) / workers
    for w in range(workers - 1):
        left = [u for u in range(n) if where[u] < 0]
        first = seed if w == 0 else max(left, key=lambda k: (ucost[k], -k))
        where[first], load = w, ucost[first]
        while load < target and sum(1 for u in where if u < 0) > workers - 1 - w:
            fits = [u for u in range(n) if where[u] < 0 and load + ucost[u] <= cap]
            if not fits:
                break
            u = max(fits, key=lambda k: (sum(s for v, s in adj[k].items() if where[v] == w),
                                         ucost[k], -k))
            where[u], load = w, load + ucost[u]
    for u in range(n):
        if where[u] < 0:
            where[u] = workers - 1
    if workers - 1 not in where or max(_loads(where, ucost, workers)) > cap:
        return None
    return where


def _step(where: list[int], load: list[int], ucost: list[int], adj: list[dict[int, int]],
          workers: int, cap: float, locked: set[int]
          ) -> tuple[int, int, list[tuple[int, int]]] | None:
    """The best feasible move of one unlocked unit, or swap of two (at most
    :data:`SWAP_UNITS` units), as ``(change of the cut, max load, [(unit, worker)])``;
    the change may be positive."""
    members = [0] * workers
    for w in where:
        members[w] += 1

    def delta(u: int, w: int) -> int:
        return sum(s if where[v] == where[u] else -s if where[v] == w else 0
                   for v, s in adj[u].items())

    best = None
    n = len(where)
    for u in range(n):
        if u in locked:
            continue
        a = where[u]
        for w in range(workers):
            if w == a or members[a] < 2 or load[w] + ucost[u] > cap:
                continue
            top = max(load[k] + (ucost[u] if k == w else -ucost[u] if k == a else 0)
                      for k in range(workers))
            cand = (delta(u, w), top, [(u, w)])
            if best is None or cand[:2] < best[:2]:
                best = cand
        if n > SWAP_UNITS:
            continue
        for v in range(u + 1, n):
            b = where[v]
            if v in locked or b == a:
                continue
            la, lb = load[a] - ucost[u] + ucost[v], load[b] - ucost[v] + ucost[u]
            if max(la, lb) > cap:
                continue
            top = max([la, lb] + [load[k] for k in range(workers) if k not in (a, b)])
            cand = (delta(u, b) + delta(v, a) + 2 * adj[u].get(v, 0), top, [(u, b), (v, a)])
            if best is None or cand[:2] < best[:2]:
                best = cand
    return best


def _refine(where: list[int], load: list[int], ucost: list[int], adj: list[dict[int, int]],
            workers: int, cap: float) -> list[int]:
    """Kernighan-Lin / Fiduccia-Mattheyses passes: in each pass, make the best feasible
    move or swap of units not yet moved in the pass (even if it raises the cut), lock
    them, and finally keep the prefix of the pass with the lowest cut; stop when a pass
    gains nothing."""
    for _ in range(MAX_PASSES):
        start, start_load = list(where), list(load)
        history: list[list[tuple[int, int]]] = []
        locked: set[int] = set()
        gain = best_gain = best_len = 0
        while True:
            step = _step(where, load, ucost, adj, workers, cap, locked)
            if step is None:
                break
            gain += step[0]
            for u, w in step[2]:
                load[where[u]] -= ucost[u]
                load[w] += ucost[u]
            for u, w in step[2]:
                where[u] = w
                locked.add(u)
            history.append(step[2])
            if gain < best_gain:
                best_gain, best_len = gain, len(history)
        where, load = start, start_load
        for moves in history[:best_len]:
            for u, w in moves:
                load[where[u]] -= ucost[u]
                load[w] += ucost[u]
            for u, w in moves:
                where[u] = w
        if best_gain == 0:
            break
    return where



__all__ = ["IMBALANCE", "auto_partition"]
