"""Prioritised replay buffer over memory ids (proportional variant, Schaul et al. 2016).

Item ``i`` with priority ``p_i >= 0`` is drawn with probability

    P(i) = (p_i + eps)^alpha / Σ_j (p_j + eps)^alpha

(``alpha = 0``: uniform; ``alpha = 1``: fully proportional; ``eps`` keeps zero-priority
items drawable). A draw carries the importance-sampling weight

    w_i = (N · P(i))^(-beta) / max_j (N · P(j))^(-beta)

with ``N`` items held; the maximum is over every drawable item (the one of smallest
positive ``P``), so weights lie in ``(0, 1]`` and correct the bias of non-uniform sampling
fully at ``beta = 1``. Priorities are dimensionless.

Storage is a sum-tree (and a min-tree for the normaliser) over a power-of-two number
of leaves: an update costs ``O(log capacity)``, a draw descends the tree in
``O(log capacity)``, both vectorised over a batch with numpy. When full, new items
overwrite the oldest slot. Draws use a seeded ``numpy.random.Generator``, so a
sequence of calls is reproducible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .._checks import check_in_range, check_int, check_nonnegative
from ..errors import InputValueError, ParameterError, ShapeError


class ReplaySample(NamedTuple):
    """One batch of draws."""

    ids: torch.Tensor  #: ``[b]`` int64 memory ids
    slots: torch.Tensor  #: ``[b]`` int64 buffer slots (pass to ``update_priorities``)
    weights: torch.Tensor  #: ``[b]`` float64 importance-sampling weights, in (0, 1]
    probabilities: torch.Tensor  #: ``[b]`` float64 ``P(i)`` of each draw


class SumTree:
    """Binary sum-tree over ``capacity`` leaves (values >= 0), with a min-tree of the
    positive leaves beside it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = check_int("capacity", capacity, minimum=1)
        self.leaves = 1 << max(0, (capacity - 1).bit_length())
        self.sum = np.zeros(2 * self.leaves, dtype=np.float64)
        self.min = np.full(2 * self.leaves, np.inf, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.sum[1])

    @property
    def minimum(self) -> float:
        """Smallest positive leaf value (``inf`` if none)."""
        return float(self.min[1])

    def get(self, slots: np.ndarray) -> np.ndarray:
        return self.sum[self.leaves + np.asarray(slots, dtype=np.int64)]

    def set(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``slots`` to ``values`` (later duplicates win) and refresh their parents."""
        node = self.leaves + np.asarray(slots, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        self.sum[node] = values
        self.min[node] = np.where(values > 0, values, np.inf)  # zeros are never drawn
        node = np.unique(node // 2)  # every node of one pass sits at the same depth
        while node.size and node[0] >= 1:
            self.sum[node] = self.sum[2 * node] + self.sum[2 * node + 1]
            self.min[node] = np.minimum(self.min[2 * node], self.min[2 * node + 1])
            node = np.unique(node // 2)

    def find(self, u: np.ndarray) -> np.ndarray:
        """Leaf of each prefix sum ``u`` in ``[0, total)``: smallest ``i`` with ``Σ_{≤i} > u``."""
        node = np.ones(u.shape, dtype=np.int64)
        u = u.copy()
        for _ in range(self.leaves.bit_length() - 1):  # depth of the tree
            left = 2 * node
            lsum = self.sum[left]
            # go right when u passes the left mass, unless rounding left nothing there
            right = (u >= lsum) & (self.sum[left + 1] > 0)
            u = np.where(right, u - lsum, u)
            node = np.where(right, left + 1, left)
        return node - self.leaves


class PrioritizedReplay:
    """Proportional prioritised replay over memory ids (see the module docstring).

    Parameters
    ----------
    capacity: most items held (oldest overwritten first).
    alpha: priority exponent, in [0, 1].
    beta: default importance-sampling exponent, in [0, 1].
    eps: added to every priority (>= 0).
    seed: seed of the sampling generator.
    """

    def __init__(self, capacity: int, *, alpha: float = 0.6, beta: float = 0.4,
                 eps: float = 1e-6, seed: int = 0) -> None:
        self.capacity = check_int("capacity", capacity, minimum=1)
        check_in_range("alpha", alpha, 0.0, 1.0)
        check_in_range("beta", beta, 0.0, 1.0)
        check_nonnegative("eps", eps)
        self.alpha, self.beta, self.eps = float(alpha), float(beta), float(eps)
        self.tree = SumTree(self.capacity)
        self.ids = np.full(self.capacity, -1, dtype=np.int64)
        self.priorities = np.zeros(self.capacity, dtype=np.float64)
        self.size = 0
        self._next = 0
        self._max_priority = 1.0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def _check_priorities(self, p: float | torch.Tensor | None, n: int) -> np.ndarray:
        if p is None:
            return np.full(n, self._max_priority)
        if isinstance(p, torch.Tensor) and p.dim() > 0:
            if p.shape != (n,):
                raise ShapeError(f"priorities must be a scalar or have shape [{n}], "
                                 f"got {tuple(p.shape)}")
            arr = p.detach().cpu().double().numpy()
        else:
            arr = np.full(n, float(p))
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            raise ParameterError(f"priorities must be finite and >= 0, got {arr[bad][0]!r}")
        return arr

    def add(self, ids: int | torch.Tensor,
            priorities: float | torch.Tensor | None = None) -> torch.Tensor:
        """Add memory ``ids`` with ``priorities`` (default: the largest priority seen, so
        new items are drawn at least once soon). Returns their slots (int64)."""
        ids_np = torch.as_tensor(ids, dtype=torch.long).reshape(-1).numpy()
        n = ids_np.size
        p = self._check_priorities(priorities, n)
        if n > self.capacity:  # only the last `capacity` items survive anyway
            ids_np, p, n = ids_np[-self.capacity:], p[-self.capacity:], self.capacity
        slots = (self._next + np.arange(n)) % self.capacity
        self.ids[slots] = ids_np
        self._set(slots, p)
        self._next = int((self._next + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        return torch.from_numpy(slots.astype(np.int64))

    def _set(self, slots: np.ndarray, p: np.ndarray) -> None:
        self.priorities[slots] = p
        self.tree.set(slots, (p + self.eps) ** self.alpha)
        if p.size:
            self._max_priority = max(self._max_priority, float(p.max()))

    def update_priorities(self, slots: torch.Tensor, priorities: float | torch.Tensor) -> None:
        """Set the priority of held ``slots`` (e.g. to new TD or surprise errors)."""
        s = torch.as_tensor(slots, dtype=torch.long).reshape(-1).numpy()
        if s.size and ((s < 0) | (s >= self.size)).any():
            raise InputValueError(f"slots must lie in [0, {self.size}), got "
                                  f"{s[(s < 0) | (s >= self.size)][:10].tolist()}")
        self._set(s, self._check_priorities(priorities, s.size))

    def probabilities(self) -> torch.Tensor:
        """``P(i)`` of every held slot, ``[size]`` float64."""
        leaf = self.tree.get(np.arange(self.size))
        return torch.from_numpy(leaf / self.tree.total)

    def sample(self, batch_size: int, beta: float | None = None,
               stratified: bool = False) -> ReplaySample:
        """Draw ``batch_size`` items with replacement, ``P(i)`` as in the module docstring.

        ``stratified=True`` draws one item from each of ``batch_size`` equal slices of
        the total priority mass (lower variance, same expected counts).
        """
        batch_size = check_int("batch_size", batch_size, minimum=1)
        beta = self.beta if beta is None else beta
        check_in_range("beta", beta, 0.0, 1.0)
        if self.size == 0:
            raise InputValueError("cannot sample from an empty replay buffer")
        total = self.tree.total
        if not total > 0:
            raise InputValueError("every priority is zero (eps=0): nothing can be drawn")
        r = self._rng.random(batch_size)
        if stratified:
            r = (np.arange(batch_size) + r) / batch_size
        u = np.minimum(r * total, np.nextafter(total, 0.0))
        slots = np.minimum(self.tree.find(u), self.size - 1)
        prob = self.tree.get(slots) / total
        p_min = self.tree.minimum / total
        weights = (prob / p_min) ** (-beta)  # (N P)^-beta / (N P_min)^-beta
        return ReplaySample(torch.from_numpy(self.ids[slots].copy()),
                            torch.from_numpy(slots.astype(np.int64)),
                            torch.from_numpy(weights), torch.from_numpy(prob))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that restore the buffer with :meth:`load_state_dict` (the generator
        keeps its own state)."""
        return {"ids": torch.from_numpy(self.ids[:self.size].copy()),
                "priorities": torch.from_numpy(self.priorities[:self.size].copy()),
                "next": torch.tensor(self._next), "max_priority": torch.tensor(self._max_priority)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        ids = state["ids"].numpy().astype(np.int64)
        p = state["priorities"].numpy().astype(np.float64)
        if ids.shape != p.shape or ids.size > self.capacity:
            raise ShapeError(f"ids and priorities must have equal shapes of at most "
                             f"{self.capacity}, got {ids.shape} and {p.shape}")
        self.tree = SumTree(self.capacity)
        self.ids[:] = -1
        self.priorities[:] = 0.0
        self.ids[:ids.size] = ids
        self._set(np.arange(ids.size), p)
        self.size = ids.size
        self._next = int(state["next"]) % self.capacity
        self._max_priority = float(state["max_priority"])

