"""k-means: recovers separated clusters, is seeded, handles empty clusters, checks input."""

from __future__ import annotations

import pytest
import torch

from aura_snn.errors import InputValueError, ParameterError
from aura_snn.memory import assign, kmeans


def _blobs(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    centres = 10.0 * torch.randn(6, 8, generator=gen, dtype=torch.float64)
    labels = torch.arange(600) % 6
    x = centres[labels] + 0.1 * torch.randn(600, 8, generator=gen, dtype=torch.float64)
    return x.to(dtype), centres.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_recovers_well_separated_centres(dtype) -> None:
    x, centres = _blobs(dtype=dtype)
    res = kmeans(x, 6, init="kmeans++", iters=20, seed=3)
    assert res.centroids.dtype == dtype and res.centroids.shape == (6, 8)
    # every true centre has a fitted centroid within 0.05 (noise std 0.1, 100 points each)
    dist = torch.cdist(centres.double(), res.centroids.double())
    assert dist.min(dim=1).values.max() < 0.05
    labels, scores = assign(x, res.centroids)
    assert torch.bincount(labels, minlength=6).tolist() == [100] * 6
    # scores come from the expansion 2 x.c - ||c||^2 - ||x||^2: absolute error ~ eps ||x||^2
    ref = -((x - res.centroids[labels]) ** 2).sum(dim=1)
    torch.testing.assert_close(scores, ref, rtol=0, atol=1e-3 if dtype == torch.float32 else 1e-9)


def test_random_init_starts_from_distinct_sample_points() -> None:
    x, _ = _blobs()
    res = kmeans(x, 6, init="random", iters=0, seed=1)
    rows = {tuple(r) for r in x.tolist()}
    assert all(tuple(c) in rows for c in res.centroids.tolist())
    assert len({tuple(c) for c in res.centroids.tolist()}) == 6
    # Lloyd rounds never increase the within-cluster squared error
    sse = [-assign(x, kmeans(x, 6, init="random", iters=i, seed=1).centroids)[1].sum()
           for i in (0, 1, 5)]
    assert sse[0] >= sse[1] >= sse[2]


def test_seed_makes_runs_reproducible() -> None:
    x = torch.randn(2000, 16, generator=torch.Generator().manual_seed(1))
    a = kmeans(x, 20, seed=7, iters=5).centroids
    b = kmeans(x, 20, seed=7, iters=5).centroids
    c = kmeans(x, 20, seed=8, iters=5).centroids
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_spherical_centroids_are_unit_and_assignment_uses_dot_product() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.nn.functional.normalize(torch.randn(1000, 8, generator=gen), dim=1)
    res = kmeans(x, 10, spherical=True, seed=0)
    torch.testing.assert_close(res.centroids.norm(dim=1), torch.ones(10))
    labels, scores = assign(x, res.centroids, spherical=True)
    assert torch.equal(labels, (x @ res.centroids.T).argmax(dim=1))
    assert -1.0 <= res.score <= 1.0


def test_duplicate_points_leave_no_nan_from_empty_clusters() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]]).repeat(50, 1)  # 2 distinct points, k = 3
    res = kmeans(x, 3, iters=5, seed=0)
    assert torch.isfinite(res.centroids).all()
    assert {tuple(r) for r in res.centroids.tolist()} >= {(0.0, 0.0), (1.0, 1.0)}


def test_bad_input_raises_typed_errors() -> None:
    with pytest.raises(ParameterError, match="k must be <= the number of points"):
        kmeans(torch.randn(5, 2), 6)
    with pytest.raises(InputValueError, match="NaN"):
        kmeans(torch.tensor([[0.0, float("nan")], [1.0, 1.0]]), 1)
    with pytest.raises(ParameterError, match="init"):
        kmeans(torch.randn(5, 2), 2, init="farthest")
    x = torch.randn(50, 3)
    res = kmeans(x, 4, iters=0, seed=0)
    assert res.iterations == 0 and torch.isfinite(res.centroids).all()
