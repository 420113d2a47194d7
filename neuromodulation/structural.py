r"""Structural plasticity: periodic pruning of the weakest synapses and regrowth of as many
new ones under a per-neuron in-degree budget, on sparse projections.

Every :math:`K` steps (``every``), one rewiring of a projection with synapses
:math:`s = 1 \dots N` (effective weights :math:`w_s`, postsynaptic neurons :math:`j_s`):

1. **prune** the weakest: with ``prune_below`` :math:`\theta`, the synapses with
   :math:`|w_s| < \theta`; with ``prune_fraction`` :math:`f`, the
   :math:`\lfloor f N \rfloor` synapses of smallest :math:`|w_s|` (ties: lower stored
   index first); with both, the weakest :math:`\lfloor f N \rfloor` of those below
   :math:`\theta`. Call :math:`m` their number;
2. **regrow** :math:`m` synapses at pairs :math:`(i, j)` drawn uniformly among those not
   connected after pruning, accepted in the order drawn while
   :math:`j`'s in-degree stays within the budget :math:`D_\max` (``max_in_degree``)
   and no pair is drawn twice; a pruned pair may be drawn again. New synapses start at
   weight ``w_new`` with delay ``delay`` (steps) and their rules' per-synapse state at
   rest (:meth:`aura_snn.graph.Graph.rewire` carries the kept synapses' state along).

So the synapse count :math:`N` is the same after every rewiring, every in-degree stays
:math:`\le D_\max`, and memory does not grow with the length of a run. Regrowth is
always possible when :math:`D_\max \le n_\text{pre}` and :math:`n_\text{post} D_\max \ge N`,
which :meth:`StructuralPlasticity.check` requires, with every in-degree within budget at
the start.

The random pairs of the rewiring at absolute step :math:`t` come from a generator seeded
with ``(seed, t)``, so a run reproduces and a resumed run draws what an uninterrupted
one would. The driver is :func:`neuromodulation.run_chunked` (the graph runs in chunks
of :math:`K` steps and rewires between them: the plasticity socket runs inside a step,
where the structure cannot change).

Units: ``prune_below`` and ``w_new`` in the unit of the weight (V); ``every`` and
``delay`` in steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from aura_snn._checks import check_finite_param, check_in_range, check_int, check_nonnegative
from aura_snn.errors import ParameterError, ParameterTypeError

_ROUNDS = 8          # rejection-sampling rounds before enumerating the free pairs


@dataclass(frozen=True)
class StructuralParameters:
    """Structural plasticity (module docstring).

    Attributes:
        max_in_degree: budget :math:`D_\\max` of synapses per postsynaptic neuron (>= 1).
        every: steps between rewirings :math:`K` (>= 1).
        prune_fraction: fraction of synapses pruned each time, in [0, 1], or ``None``.
        prune_below: prune synapses with ``|w| < prune_below`` (>= 0, V), or ``None``.
        w_new: weight of a grown synapse (V).
        delay: delay of a grown synapse (steps, >= 0).
        seed: seed of the regrowth draws (>= 0).
    """

    max_in_degree: int
    every: int = 1000
    prune_fraction: float | None = 0.05
    prune_below: float | None = None
    w_new: float = 0.0
    delay: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("max_in_degree", self.max_in_degree, minimum=1)
        check_int("every", self.every, minimum=1)
        check_int("delay", self.delay, minimum=0)
        check_int("seed", self.seed, minimum=0)
        if self.prune_fraction is None and self.prune_below is None:
            raise ParameterError("prune_fraction and prune_below are both None: give at least "
                                 "one pruning criterion")
        if self.prune_fraction is not None:
            check_in_range("prune_fraction", self.prune_fraction, 0.0, 1.0)
        if self.prune_below is not None:
            check_nonnegative("prune_below", self.prune_below)
        check_finite_param("w_new", self.w_new)


class RewireEvent(NamedTuple):
    """One rewiring: at step ``t``, the stored indices ``pruned`` (before it) and the
    pairs ``grown_pre``, ``grown_post`` (int64 arrays of equal length)."""

    t: int
    pruned: np.ndarray
    grown_pre: np.ndarray
    grown_post: np.ndarray


def weakest(w: np.ndarray, prune_fraction: float | None, prune_below: float | None
            ) -> np.ndarray:
    """Stored indices of the synapses to prune (module docstring, step 1), ascending
    :math:`|w|`, ties by index."""
    mag = np.abs(np.asarray(w, dtype=np.float64))
    order = np.argsort(mag, kind="stable")
    if prune_below is not None:
        order = order[mag[order] < prune_below]
    if prune_fraction is not None:
        order = order[:math.floor(prune_fraction * mag.size + 1e-9)]
    return order.astype(np.int64)


def _accept(keys: np.ndarray, n_post: int, room: np.ndarray, need: int) -> np.ndarray:
    """Of candidate pair keys in draw order (distinct, all free), the first ``need`` that
    fit: a candidate for neuron ``j`` is accepted while fewer than ``room[j]`` earlier
    candidates for ``j`` were."""
    post = keys % n_post
    by_post = np.argsort(post, kind="stable")
    sorted_post = post[by_post]
    first = np.searchsorted(sorted_post, sorted_post, side="left")
    rank = np.empty_like(by_post)
    rank[by_post] = np.arange(keys.size) - first
    return keys[rank < room[post]][:need]


def draw_pairs(pre: np.ndarray, post: np.ndarray, n_pre: int, n_post: int,
               max_in_degree: int, m: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """``m`` new pairs ``(pre, post)`` not among the existing ``pre``, ``post`` arrays nor
    each other, with every in-degree ``<= max_in_degree`` (module docstring, step 2)."""
    existing = np.unique(np.asarray(pre, np.int64) * n_post + np.asarray(post, np.int64))
    room = np.maximum(max_in_degree - np.bincount(post, minlength=n_post), 0)
    if int(room.sum()) < m:
        raise ParameterError(f"max_in_degree={max_in_degree}: only {int(room.sum())} free "
                             f"places for the {m} synapses to regrow")
    total = n_pre * n_post
    chosen: list[np.ndarray] = []
    taken = existing
    need = m
    for _ in range(_ROUNDS):
        if need == 0:
            break
        cand = rng.integers(0, total, size=max(4 * need, 64))
        _, first = np.unique(cand, return_index=True)
        cand = cand[np.sort(first)]                          # distinct, in draw order
        pos = np.searchsorted(taken, cand).clip(max=max(taken.size - 1, 0))
        free = cand if taken.size == 0 else cand[taken[pos] != cand]
        got = _accept(free, n_post, room, need)
        chosen.append(got)
        need -= got.size
        room = room - np.bincount(got % n_post, minlength=n_post)
        taken = np.union1d(taken, got)
    if need:                                               # nearly full: enumerate
        cols = np.nonzero(room > 0)[0]
        cand = (np.arange(n_pre)[:, None] * n_post + cols[None, :]).ravel()
        cand = np.setdiff1d(cand, taken, assume_unique=False)
        got = _accept(rng.permutation(cand), n_post, room, need)
        chosen.append(got)
    keys = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    return (keys // n_post).astype(np.int64), (keys % n_post).astype(np.int64)


class StructuralPlasticity:
    """Pruning and regrowth of projection ``projection`` (module docstring).

    Args:
        projection: name of a sparse, non-learnable projection of the graph.
        params: :class:`StructuralParameters`.
    """

    def __init__(self, projection: str, params: StructuralParameters) -> None:
        if not isinstance(projection, str):
            raise ParameterTypeError(f"projection must be a projection name, got "
                                     f"{type(projection).__name__}")
        if not isinstance(params, StructuralParameters):
            raise ParameterTypeError(f"params must be StructuralParameters, got "
                                     f"{type(params).__name__}")
        self.projection, self.params = projection, params

    def check(self, graph: Any) -> None:
        """Refuse a projection that cannot be rewired within the budget (module docstring)."""
        p = graph.projection(self.projection)
        if not p.sparse or p.learnable:
            raise ParameterError(f"projection {p.name!r} must be sparse and not learnable for "
                                 f"structural plasticity (sparse={p.sparse}, "
                                 f"learnable={p.learnable})")
        budget = self.params.max_in_degree
        if budget > p.n_pre:
            raise ParameterError(f"max_in_degree={budget} exceeds the {p.n_pre} presynaptic "
                                 f"neurons of projection {p.name!r}")
        if budget * p.n_post < p.nnz:
            raise ParameterError(f"max_in_degree={budget}: {p.n_post} neurons x {budget} < "
                                 f"the {p.nnz} synapses of projection {p.name!r}")
        deg = np.bincount(p.post_idx.cpu().numpy(), minlength=p.n_post)
        if deg.max(initial=0) > budget:
            j = int(deg.argmax())
            raise ParameterError(f"max_in_degree={budget}: neuron {j} of projection "
                                 f"{p.name!r} already has {int(deg[j])} synapses")
        for bound, ok in (("w_min", p.w_min is None or self.params.w_new >= p.w_min),
                          ("w_max", p.w_max is None or self.params.w_new <= p.w_max)):
            if not ok:
                raise ParameterError(f"w_new={self.params.w_new!r} lies outside projection "
                                     f"{p.name!r}'s {bound}={getattr(p, bound)!r}")
        p._check_sign(np.array([self.params.w_new]))

    def due(self, t: int) -> bool:
        """Whether absolute step ``t`` (steps run so far) ends a period of ``every``."""
        return t > 0 and t % self.params.every == 0

    def rewire(self, graph: Any) -> RewireEvent:
        """One rewiring now (at the graph's step ``t``); returns what changed."""
        self.check(graph)
        p = graph.projection(self.projection)
        t = 0 if graph.state is None else int(graph.state.t)
        pre, post = p.pre_idx.cpu().numpy(), p.post_idx.cpu().numpy()
        w = p.effective_weight().detach().cpu().numpy()
        pruned = weakest(w, self.params.prune_fraction, self.params.prune_below)
        keep = np.ones(pre.size, dtype=bool)
        keep[pruned] = False
        rng = np.random.default_rng([self.params.seed, t])
        g_pre, g_post = draw_pairs(pre[keep], post[keep], p.n_pre, p.n_post,
                                   self.params.max_in_degree, pruned.size, rng)
        if pruned.size:
            graph.rewire(self.projection, prune=pruned,
                         grow=(g_pre, g_post, np.full(g_pre.size, self.params.w_new),
                               np.full(g_pre.size, self.params.delay)))
        return RewireEvent(t, pruned, g_pre, g_post)


__all__ = ["RewireEvent", "StructuralParameters", "StructuralPlasticity", "draw_pairs",
           "weakest"]
