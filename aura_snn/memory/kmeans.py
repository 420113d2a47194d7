"""Seeded k-means in torch: the centroids of the IVF index.

Lloyd's algorithm on a random sample of the data:

1. initialise ``k`` centroids: ``init="kmeans++"`` draws the first uniformly and each
   next one with probability ``D(x)² / Σ D²`` (``D`` = distance to the nearest centroid
   chosen so far; Arthur & Vassilvitskii 2007), on a subsample of ``init_sample`` points;
   ``init="random"`` takes ``k`` distinct sample points;
2. assign every sample point to its best centroid,
   ``a(x) = argmin_j ||x - c_j||²`` (``spherical=True``: ``argmax_j x · c_j``);
3. move each centroid to the mean of its points, ``c_j = mean{x : a(x) = j}``
   (``spherical=True``: then ``c_j ← c_j / ||c_j||``, spherical k-means of Dhillon & Modha
   2001, for cosine similarity on unit vectors);
4. repeat 2-3 for ``iters`` rounds or until the mean score changes by less than
   ``tol`` (relative).

An empty cluster is re-seeded with the sample point farthest from its centroid (each
empty cluster a different point), so all ``k`` lists stay in use. Sums are accumulated
in float64. Every random draw comes from a CPU ``torch.Generator`` seeded with ``seed``,
so results are reproducible on CPU and the same draws are used on any device.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._checks import check_choice, check_int, check_nonnegative, check_tensor
from ..errors import ParameterError

#: Rows assigned per matmul in :func:`assign` (bounds the ``[rows, k]`` score block).
ASSIGN_CHUNK_ROWS = 32768


class KMeansResult(NamedTuple):
    """Result of :func:`kmeans`."""

    centroids: torch.Tensor  #: ``[k, d]``, dtype and device of the input
    score: float  #: mean best score on the sample (-squared distance, or cosine if spherical)
    iterations: int  #: Lloyd rounds run
    sample_size: int  #: points the centroids were fitted on


def assign(x: torch.Tensor, centroids: torch.Tensor, *, spherical: bool = False,
           chunk_rows: int = ASSIGN_CHUNK_ROWS) -> tuple[torch.Tensor, torch.Tensor]:
    """Best centroid of each row: ``(labels int64 [n], scores [n])``.

    ``spherical=False``: label ``argmin_j ||x - c_j||²``, score ``-||x - c_a||²``
    (computed as ``2 x·c - ||c||² - ||x||²``, one matmul, so its absolute error is about
    ``eps · ||x||²``); ``spherical=True``: label ``argmax_j x · c_j``, score ``x · c_a``.
    """
    n = x.shape[0]
    labels = torch.empty(n, dtype=torch.long, device=x.device)
    scores = torch.empty(n, dtype=x.dtype, device=x.device)
    c_sq = None if spherical else (centroids * centroids).sum(dim=1)
    for start in range(0, n, chunk_rows):
        xb = x[start:start + chunk_rows]
        s = xb @ centroids.T
        if c_sq is not None:
            s = s - 0.5 * c_sq
        best, lab = s.max(dim=1)
        if c_sq is not None:  # -||x - c||² = 2 (x·c - ||c||²/2) - ||x||²
            best = 2.0 * best - (xb * xb).sum(dim=1)
        labels[start:start + chunk_rows] = lab
        scores[start:start + chunk_rows] = best
    return labels, scores


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-30)


def _kmeanspp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding on ``x`` (``n >= k`` rows): D² sampling, one candidate per step."""
    n = x.shape[0]
    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = int(torch.randint(n, (1,), generator=gen))
    x_sq = (x * x).sum(dim=1)
    c = x[int(chosen[0])]
    d2 = (x_sq - 2.0 * (x @ c) + c @ c).clamp_min_(0.0)
    for j in range(1, k):
        cum = torch.cumsum(d2.double(), dim=0)
        total = float(cum[-1])
        if total <= 0.0:  # every point coincides with a centroid: fall back to uniform
            idx = int(torch.randint(n, (1,), generator=gen))
        else:
            u = float(torch.rand(1, generator=gen, dtype=torch.float64)) * total
            u_t = torch.tensor([u], dtype=torch.float64, device=x.device)
            idx = min(int(torch.searchsorted(cum, u_t, right=True)), n - 1)
        chosen[j] = idx
        c = x[idx]
        d2 = torch.minimum(d2, (x_sq - 2.0 * (x @ c) + c @ c).clamp_min_(0.0))
    return x[chosen.to(x.device)].clone()


def kmeans(x: torch.Tensor, k: int, *, iters: int = 10, init: str = "kmeans++",
           seed: int = 0, spherical: bool = False, sample_size: int | None = None,
           init_sample: int | None = None, tol: float = 1e-4,
           chunk_rows: int = ASSIGN_CHUNK_ROWS) -> KMeansResult:
    """Fit ``k`` centroids to the rows of ``x`` ``[n, d]`` (see the module docstring).

    Parameters
    ----------
    x: data ``[n, d]``, floating point, finite, ``n >= k``.
    k: number of centroids.
    iters: Lloyd rounds (>= 0; 0 returns the initial centroids).
    init: ``"kmeans++"`` or ``"random"``.
    seed: seed of the CPU generator behind every random draw.
    spherical: unit-norm centroids and dot-product assignment (cosine k-means).
    sample_size: points the Lloyd rounds run on, drawn without replacement
        (default ``min(n, 64 k)``).
    init_sample: points k-means++ draws from (default ``min(sample, 8 k)``); the
        seeding costs ``O(k · init_sample · d)`` sequential work, hence the subsample.
    tol: stop when ``|Δ mean score| <= tol · |mean score|`` between rounds.
    """
    check_tensor("x", x, ndim=2)
    if not x.is_floating_point():
        raise ParameterError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    k = check_int("k", k, minimum=1)
    iters = check_int("iters", iters, minimum=0)
    check_choice("init", init, ("kmeans++", "random"))
    check_nonnegative("tol", tol)
    n = x.shape[0]
    if n < k:
        raise ParameterError(f"k must be <= the number of points ({n}), got k={k}")
    gen = torch.Generator().manual_seed(int(seed))
    m = min(n, 64 * k) if sample_size is None else min(n, check_int("sample_size", sample_size, k))
    sample = x if m == n else x[torch.randperm(n, generator=gen)[:m].to(x.device)]
    if spherical:
        sample = _unit(sample)

    if init == "random":
        centroids = sample[torch.randperm(m, generator=gen)[:k].to(x.device)].clone()
    else:
        mi = min(m, 8 * k if init_sample is None else check_int("init_sample", init_sample, k))
        base = sample if mi == m else sample[torch.randperm(m, generator=gen)[:mi].to(x.device)]
        centroids = _kmeanspp(base, k, gen)
    if spherical:
        centroids = _unit(centroids)

    prev = None
    score = float("nan")
    rounds = 0
    for rounds in range(1, iters + 1):  # noqa: B007 - rounds is reported
        labels, best = assign(sample, centroids, spherical=spherical, chunk_rows=chunk_rows)
        score = float(best.double().mean())
        sums = torch.zeros(k, sample.shape[1], dtype=torch.float64, device=x.device)
        sums.index_add_(0, labels, sample.double())
        counts = torch.bincount(labels, minlength=k)
        empty = torch.nonzero(counts == 0).flatten()
        new = (sums / counts.clamp_min(1).unsqueeze(1).double()).to(x.dtype)
        if empty.numel():
            # re-seed each empty cluster with a distinct far-away point (lowest best score)
            far = torch.topk(best, min(empty.numel(), m), largest=False).indices
            new[empty[:far.numel()]] = sample[far]
        if spherical:
            new = _unit(new)
        centroids = new
        if prev is not None and abs(score - prev) <= tol * abs(score) and empty.numel() == 0:
            break
        prev = score
    return KMeansResult(centroids.contiguous(), score, rounds, m)
