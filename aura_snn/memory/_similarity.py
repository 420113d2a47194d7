"""Similarity scores shared by the store, the IVF index, k-means and the FAISS backend.

Every score in this package is "higher is better":

============  =======================================  ===============================
metric        score s(q, x)                            keys as stored
============  =======================================  ===============================
``cosine``    q̂ · x̂  with  v̂ = v / ||v||₂  (in [-1, 1])  L2-normalised on write
``ip``        q · x  (inner product)                   as given
``l2``        -||q - x||₂²  (negative squared distance)  as given
============  =======================================  ===============================

so the top-k of a query are the k largest scores under every metric. Scores carry the
units of the keys (squared for ``l2``); cosine scores are dimensionless.
"""

from __future__ import annotations

import torch

from ..errors import InputValueError

METRICS = ("cosine", "ip", "l2")

#: Rows of the key matrix scored per chunk in exact search; bounds the temporary
#: ``[q, chunk]`` score block (1000 queries x 65536 rows x 4 bytes = 262 MB).
EXACT_CHUNK_ROWS = 65536


def prepare_keys(x: torch.Tensor, metric: str, name: str = "keys") -> torch.Tensor:
    """Return ``x`` as stored for ``metric``: L2-normalised rows for cosine, unchanged otherwise.

    Raises :class:`InputValueError` for a zero row under cosine (its direction is undefined).
    """
    if metric != "cosine" or x.numel() == 0:
        return x
    norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    zero = norms.squeeze(-1) == 0
    if bool(zero.any()):
        rows = torch.nonzero(zero.reshape(-1)).flatten()[:5].tolist()
        raise InputValueError(
            f"{name} has {int(zero.sum())} zero-norm row(s) (first at row(s) {rows}); "
            f"metric='cosine' needs nonzero vectors"
        )
    return x / norms


def coarse_scores(q: torch.Tensor, centroids: torch.Tensor, metric: str,
                  centroid_sqnorm: torch.Tensor | None = None) -> torch.Tensor:
    """Scores ``[q, nlist]`` used to pick the lists a query probes.

    cosine / ip: ``q · c``; l2: ``q · c - ||c||²/2``, which orders centroids like
    ``-||q - c||²`` (the ``||q||²`` term is the same for every centroid).
    """
    s = q @ centroids.T
    if metric == "l2":
        if centroid_sqnorm is None:
            centroid_sqnorm = (centroids * centroids).sum(dim=1)
        s = s - 0.5 * centroid_sqnorm
    return s


def exact_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                 valid: torch.Tensor | None = None,
                 chunk_rows: int = EXACT_CHUNK_ROWS) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute-force top-``k`` rows of ``x`` for each query: ``(scores [q, k], rows [q, k])``.

    ``valid`` (bool ``[n]``) masks rows out. Fewer than ``k`` candidates pad with score
    ``-inf`` and row ``-1``. The key matrix is scored in chunks of ``chunk_rows`` rows
    and the running top-k merged, so memory stays ``O(q * chunk_rows)``.
    """
    nq, n = q.shape[0], x.shape[0]
    best_s = torch.full((nq, k), float("-inf"), dtype=q.dtype, device=q.device)
    best_i = torch.full((nq, k), -1, dtype=torch.long, device=q.device)
    q_sq = (q * q).sum(dim=1, keepdim=True) if metric == "l2" else None
    for start in range(0, n, chunk_rows):
        xb = x[start:start + chunk_rows]
        s = q @ xb.T
        if metric == "l2":
            s = 2.0 * s - (xb * xb).sum(dim=1) - q_sq
        if valid is not None:
            s = s.masked_fill(~valid[start:start + chunk_rows], float("-inf"))
        kk = min(k, xb.shape[0])
        v, i = s.topk(kk, dim=1)
        cat_s = torch.cat([best_s, v], dim=1)
        cat_i = torch.cat([best_i, i + start], dim=1)
        best_s, j = cat_s.topk(k, dim=1)
        best_i = cat_i.gather(1, j)
    best_i = best_i.masked_fill(torch.isneginf(best_s), -1)
    return best_s, best_i
