r"""Connectivity builders: which presynaptic neuron reaches which postsynaptic one.

Every builder returns a :class:`Connectivity` — two index arrays (``pre``, ``post``),
synapse ``s`` being ``pre[s] -> post[s]``. The builders below return them sorted by
``pre`` then ``post`` (the CSR order the compiled engine propagates in);
:func:`from_indices` keeps the caller's order, so per-synapse weights and delays
given in that order (e.g. Brian2's ``i``, ``j``, ``w``, ``delay``) stay with their
synapse. The random builders draw from a ``numpy.random.Generator`` seeded by
``seed``, so a seed gives the same synapses on every machine. They use numpy only (no
torch), so the command line builds large networks without importing torch.

====================== ================================================================
builder                rule
====================== ================================================================
:func:`fixed_probability` each pair ``(i, j)`` independently with probability ``p``
                       (Brian2 ``connect(p=p)``); the count is Binomial(n_pre n_post, p)
:func:`fixed_indegree`  each post neuron gets exactly ``k`` distinct pre neurons, uniformly
:func:`fixed_outdegree` each pre neuron reaches exactly ``k`` distinct post neurons
:func:`one_to_one`      ``i -> i`` (equal sizes)
:func:`all_to_all`      every pair
:func:`distance`        pair at distance :math:`d` on a 2-D sheet with probability
                        :math:`p_\text{max} \exp(-d^2 / 2\sigma^2)` (Gaussian) or
                        :math:`p_\text{max} \exp(-d/\sigma)` (exponential);
                        ``periodic`` wraps the sheet into a torus
====================== ================================================================

``autapses=False`` (only meaningful when pre and post are the same population)
excludes ``i -> i``. Positions and :math:`\sigma` share one length unit (m, or grid
units). Weights and delays are set on the :class:`~aura_snn.graph.Projection`; an
array of per-synapse values given there is read in the order of ``pre``/``post``
(value ``s`` belongs to ``pre[s] -> post[s]``), and the projection carries each value
with its synapse when it sorts them into its own storage order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, ParameterTypeError, ShapeError

PROFILES = ("gaussian", "exponential")


@dataclass(frozen=True)
class Connectivity:
    """Synapses ``pre[s] -> post[s]`` between populations of ``n_pre`` and ``n_post``.

    The index ``s`` is the order in which per-synapse values (weights, delays) given to
    a :class:`~aura_snn.graph.Projection` with this connectivity are read: value ``s``
    belongs to synapse ``pre[s] -> post[s]``. Pairs may repeat (multapses, each its own
    synapse).

    Attributes:
        pre, post: ``int64`` index arrays of equal length; sorted by ``(pre, post)`` when
            made by a builder of this module, in the caller's order when made by
            :func:`from_indices` or directly.
        n_pre, n_post: population sizes.
    """

    pre: np.ndarray
    post: np.ndarray
    n_pre: int
    n_post: int

    def __post_init__(self) -> None:
        if self.pre.shape != self.post.shape or self.pre.ndim != 1:
            raise ShapeError(f"pre and post must be 1-D arrays of equal length, got shapes "
                             f"{self.pre.shape} and {self.post.shape}")
        if self.pre.size:
            if self.pre.min() < 0 or self.pre.max() >= self.n_pre:
                raise ParameterError(f"pre indices must lie in [0, {self.n_pre}), got range "
                                     f"[{self.pre.min()}, {self.pre.max()}]")
            if self.post.min() < 0 or self.post.max() >= self.n_post:
                raise ParameterError(f"post indices must lie in [0, {self.n_post}), got "
                                     f"range [{self.post.min()}, {self.post.max()}]")

    @property
    def n_synapses(self) -> int:
        return int(self.pre.size)

    def indegree(self) -> np.ndarray:
        """Number of synapses onto each post neuron, ``[n_post]``."""
        return np.bincount(self.post, minlength=self.n_post)

    def outdegree(self) -> np.ndarray:
        """Number of synapses from each pre neuron, ``[n_pre]``."""
        return np.bincount(self.pre, minlength=self.n_pre)

    def dense(self) -> np.ndarray:
        """Boolean adjacency ``[n_pre, n_post]`` (small populations only)."""
        a = np.zeros((self.n_pre, self.n_post), dtype=bool)
        a[self.pre, self.post] = True
        return a


def _n(name: str, n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ParameterTypeError(f"{name} must be an integer, got {n!r}")
    if n < 1:
        raise ParameterError(f"{name} must be >= 1, got {n}")
    return int(n)


def _prob(name: str, p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)):
        raise ParameterTypeError(f"{name} must be a number in [0, 1], got {p!r}")
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ParameterError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ParameterTypeError(f"seed must be an integer or None, got {seed!r}")
    return np.random.default_rng(seed)


def from_indices(pre: np.ndarray, post: np.ndarray, n_pre: int, n_post: int,
                 *, unique: bool = True) -> Connectivity:
    """A :class:`Connectivity` from explicit index arrays (e.g. Brian2's ``i``, ``j``).

    The arrays are kept in the caller's order (they are not sorted), so per-synapse
    weights and delays given to the projection in the same order stay with their
    synapse: value ``s`` belongs to ``pre[s] -> post[s]``.

    Args:
        pre, post: presynaptic and postsynaptic neuron indices, one per synapse.
        n_pre, n_post: population sizes (indices must lie in ``[0, n)``).
        unique: with ``True`` a repeated ``(pre, post)`` pair is an error; with
            ``False`` each repeat is its own synapse (a multapse).

    Raises:
        ShapeError: ``pre`` and ``post`` differ in length.
        ParameterError: an index out of range, or a duplicate pair with ``unique``.
    """
    n_pre, n_post = _n("n_pre", n_pre), _n("n_post", n_post)
    pre = np.asarray(pre, dtype=np.int64).ravel()
    post = np.asarray(post, dtype=np.int64).ravel()
    if pre.shape != post.shape:
        raise ShapeError(f"pre and post must have the same length, got {pre.size} and "
                         f"{post.size}")
    conn = Connectivity(pre.copy(), post.copy(), n_pre, n_post)  # checks the ranges
    if unique and pre.size > 1:
        order = np.lexsort((post, pre))
        sp, so = pre[order], post[order]
        dup = (sp[1:] == sp[:-1]) & (so[1:] == so[:-1])
        if dup.any():
            k = int(np.argmax(dup))
            raise ParameterError(f"duplicate synapse {int(sp[k])} -> {int(so[k])} "
                                 f"(pass unique=False to allow multapses)")
    return conn


def _sorted(pre: np.ndarray, post: np.ndarray, n_pre: int, n_post: int) -> Connectivity:
    """The builders' :class:`Connectivity`: the synapses sorted by ``(pre, post)``."""
    order = np.lexsort((post, pre))
    return Connectivity(np.ascontiguousarray(pre[order], dtype=np.int64),
                        np.ascontiguousarray(post[order], dtype=np.int64), n_pre, n_post)


def _from_flat(flat: np.ndarray, n_post: int, n_pre: int) -> Connectivity:
    flat = np.sort(flat)
    return Connectivity(flat // n_post, flat % n_post, n_pre, n_post)


def fixed_probability(n_pre: int, n_post: int, p: float, *, seed: int | None = None,
                      autapses: bool = True) -> Connectivity:
    """Each pair independently with probability ``p`` (Brian2 ``connect(p=p)``).

    Drawn by geometric skips over the flattened ``n_pre x n_post`` matrix, so the cost
    is proportional to the number of synapses, not of pairs.
    """
    n_pre, n_post, p = _n("n_pre", n_pre), _n("n_post", n_post), _prob("p", p)
    rng = _rng(seed)
    total = n_pre * n_post
    if p == 0.0:
        flat = np.empty(0, dtype=np.int64)
    elif p == 1.0:
        flat = np.arange(total, dtype=np.int64)
    else:
        chunks, pos = [], -1
        expect = total * p
        while True:
            m = int(expect + 6.0 * math.sqrt(expect * (1 - p)) + 16)
            gaps = rng.geometric(p, size=m).astype(np.int64)
            idx = pos + np.cumsum(gaps)
            inside = idx[idx < total]
            chunks.append(inside)
            if inside.size < idx.size:
                break
            pos = int(idx[-1])
            expect = (total - pos) * p
        flat = np.concatenate(chunks)
    if not autapses:
        flat = flat[(flat // n_post) != (flat % n_post)]
    return _from_flat(flat, n_post, n_pre)


def _distinct_rows(rng: np.random.Generator, rows: int, k: int, n: int,
                   forbid: np.ndarray | None) -> np.ndarray:
    """``[rows, k]`` distinct values in ``[0, n)`` per row, uniform over k-subsets;
    ``forbid[r]`` (or -1) is excluded from row ``r``."""
    avail = n - (0 if forbid is None else 1)
    if k > avail:
        raise ParameterError(f"cannot draw {k} distinct partners from {avail} neurons")
    if k == 0:
        return np.empty((rows, 0), dtype=np.int64)
    if k * 4 >= avail or rows * n <= 4_000_000:
        # dense enough: a random permutation per row (argsort of uniforms)
        keys = rng.random((rows, n))
        if forbid is not None:
            keys[np.arange(rows), forbid] = 2.0
        return np.sort(np.argsort(keys, axis=1)[:, :k], axis=1).astype(np.int64)
    out = rng.integers(0, n, size=(rows, k), dtype=np.int64)
    while True:
        out.sort(axis=1)
        bad = np.zeros_like(out, dtype=bool)
        bad[:, 1:] = out[:, 1:] == out[:, :-1]
        if forbid is not None:
            bad |= out == forbid[:, None]
        nbad = int(bad.sum())
        if nbad == 0:
            return out
        out[bad] = rng.integers(0, n, size=nbad, dtype=np.int64)


def fixed_indegree(n_pre: int, n_post: int, k: int, *, seed: int | None = None,
                   autapses: bool = True) -> Connectivity:
    """Every post neuron receives exactly ``k`` synapses from distinct pre neurons."""
    n_pre, n_post = _n("n_pre", n_pre), _n("n_post", n_post)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ParameterError(f"k (in-degree) must be an integer >= 0, got {k!r}")
    forbid = None
    if not autapses:
        if n_pre != n_post:
            raise ParameterError("autapses=False needs pre and post of the same size "
                                 f"(same population), got {n_pre} and {n_post}")
        forbid = np.arange(n_post)
    rng = _rng(seed)
    pre = _distinct_rows(rng, n_post, int(k), n_pre, forbid)
    post = np.repeat(np.arange(n_post, dtype=np.int64), int(k))
    return _sorted(pre.ravel(), post, n_pre, n_post)


def fixed_outdegree(n_pre: int, n_post: int, k: int, *, seed: int | None = None,
                    autapses: bool = True) -> Connectivity:
    """Every pre neuron makes exactly ``k`` synapses onto distinct post neurons."""
    c = fixed_indegree(n_post, n_pre, k, seed=seed, autapses=autapses)
    return _sorted(c.post, c.pre, n_pre, n_post)


def one_to_one(n_pre: int, n_post: int | None = None) -> Connectivity:
    """``i -> i`` for ``i < n`` (sizes must be equal)."""
    n_pre = _n("n_pre", n_pre)
    n_post = n_pre if n_post is None else _n("n_post", n_post)
    if n_pre != n_post:
        raise ParameterError(f"one_to_one needs equal sizes, got n_pre={n_pre}, "
                             f"n_post={n_post}")
    idx = np.arange(n_pre, dtype=np.int64)
    return Connectivity(idx, idx.copy(), n_pre, n_post)


def all_to_all(n_pre: int, n_post: int, *, autapses: bool = True) -> Connectivity:
    """Every pair (``autapses=False`` drops ``i -> i``)."""
    return fixed_probability(n_pre, n_post, 1.0, autapses=autapses)


def sheet_positions(n: int, *, width: float = 1.0, layout: str = "grid",
                    seed: int | None = None) -> np.ndarray:
    """Positions ``[n, 2]`` on a ``width x width`` sheet: a regular ``grid`` (row-major,
    cell centres; ``n`` need not be square) or ``random`` (uniform, seeded)."""
    n = _n("n", n)
    if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
        raise ParameterError(f"width must be finite and > 0, got {width!r}")
    if layout == "grid":
        side = math.ceil(math.sqrt(n))
        k = np.arange(n)
        return np.stack([(k % side + 0.5) * width / side, (k // side + 0.5) * width / side], 1)
    if layout == "random":
        return _rng(seed).random((n, 2)) * width
    raise ParameterError(f"layout must be one of 'grid', 'random'; got {layout!r}")


def distance(pre_pos: np.ndarray, post_pos: np.ndarray, *, p_max: float, sigma: float,
             profile: str = "gaussian", periodic: float | None = None,
             seed: int | None = None, autapses: bool = True,
             block: int = 1024) -> Connectivity:
    """Distance-dependent connectivity on a 2-D sheet.

    Args:
        pre_pos, post_pos: positions ``[n, 2]`` (any length unit).
        p_max: probability at distance 0, in [0, 1].
        sigma: length scale (same unit), > 0.
        profile: ``"gaussian"`` :math:`p_\\text{max} e^{-d^2/2\\sigma^2}` or
            ``"exponential"`` :math:`p_\\text{max} e^{-d/\\sigma}`.
        periodic: side of the square sheet to wrap distances on a torus, or ``None``.
        autapses: with ``False``, pairs with ``i == j`` are excluded (same population).
        block: rows of pre neurons per vectorised block (memory ``block * n_post``).
    """
    pre_pos = np.asarray(pre_pos, dtype=np.float64)
    post_pos = np.asarray(post_pos, dtype=np.float64)
    for name, pos in (("pre_pos", pre_pos), ("post_pos", post_pos)):
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise ShapeError(f"{name} must have shape [n, 2], got {pos.shape}")
    p_max = _prob("p_max", p_max)
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ParameterError(f"sigma must be finite and > 0, got {sigma!r}")
    if profile not in PROFILES:
        raise ParameterError(f"profile must be one of {PROFILES!r}; got {profile!r}")
    if periodic is not None and not (periodic > 0):
        raise ParameterError(f"periodic must be a sheet side > 0 or None, got {periodic!r}")
    rng = _rng(seed)
    n_pre, n_post = len(pre_pos), len(post_pos)
    pres, posts = [], []
    for lo in range(0, n_pre, block):
        d = pre_pos[lo:lo + block, None, :] - post_pos[None, :, :]
        if periodic is not None:
            d = np.abs(d)
            d = np.minimum(d, periodic - d)
        d2 = (d * d).sum(-1)
        prob = p_max * (np.exp(-d2 / (2 * sigma * sigma)) if profile == "gaussian"
                        else np.exp(-np.sqrt(d2) / sigma))
        hit = rng.random(prob.shape) < prob
        if not autapses:
            rows = np.arange(lo, min(lo + block, n_pre))
            ok = rows < n_post
            hit[np.nonzero(ok)[0], rows[ok]] = False
        i, j = np.nonzero(hit)
        pres.append(i + lo)
        posts.append(j)
    pre = np.concatenate(pres).astype(np.int64)
    post = np.concatenate(posts).astype(np.int64)
    return Connectivity(pre, post, _n("n_pre", n_pre), _n("n_post", n_post))


def draw_values(spec: float | str | dict | np.ndarray, n: int, *,
                seed: int | None = None, name: str = "weight") -> np.ndarray:
    """Per-synapse values: a number (constant), an array of length ``n``, or a
    distribution ``{"dist": "normal"|"uniform"|"lognormal", ...}`` with
    ``mean``/``std``, ``low``/``high`` or ``mu``/``sigma`` (seeded)."""
    if isinstance(spec, np.ndarray):
        arr = np.asarray(spec, dtype=np.float64).ravel()
        if arr.size == 1:
            return np.full(n, float(arr[0]))
        if arr.size != n:
            raise ShapeError(f"{name} array must have one value per synapse ({n}), got "
                             f"{arr.size}")
        return arr
    if isinstance(spec, (int, float, np.floating)) and not isinstance(spec, bool):
        return np.full(n, float(spec))
    if isinstance(spec, dict):
        rng = _rng(seed)
        dist = spec.get("dist")
        try:
            if dist == "normal":
                return rng.normal(float(spec["mean"]), float(spec["std"]), n)
            if dist == "uniform":
                return rng.uniform(float(spec["low"]), float(spec["high"]), n)
            if dist == "lognormal":
                return rng.lognormal(float(spec["mu"]), float(spec["sigma"]), n)
        except KeyError as exc:
            raise ParameterError(f"{name} distribution {dist!r} needs the key {exc}") from None
        raise ParameterError(f"{name} dist must be one of 'normal', 'uniform', "
                             f"'lognormal'; got {dist!r}")
    raise ParameterTypeError(f"{name} must be a number, an array or a distribution dict, "
                             f"got {type(spec).__name__}")


__all__ = ["Connectivity", "PROFILES", "all_to_all", "distance", "draw_values",
           "fixed_indegree", "fixed_outdegree", "fixed_probability", "from_indices",
           "one_to_one", "sheet_positions"]
