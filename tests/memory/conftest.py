"""Fixtures for the episodic-memory tests: clustered synthetic keys and a toy text encoder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
import torch


def make_clustered(n: int, dim: int, n_clusters: int, *, spread: float = 1.0, n_queries: int = 0,
                   query_noise: float = 0.3, seed: int = 0,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit keys from a mixture of Gaussians on the sphere, and queries near stored keys.

    ``x = normalise(c + spread · g / sqrt(dim))`` with ``c`` a random unit centre and ``g``
    standard normal; a query is a stored key plus ``query_noise · spread · g / sqrt(dim)``,
    renormalised (near a stored point, never identical).
    """
    gen = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(n_clusters, dim, generator=gen), dim=1)
    labels = torch.randint(n_clusters, (n,), generator=gen)
    x = centres[labels] + spread * torch.randn(n, dim, generator=gen) / dim ** 0.5
    x = torch.nn.functional.normalize(x, dim=1)
    src = torch.randint(n, (n_queries,), generator=gen)
    q = x[src] + query_noise * spread * torch.randn(n_queries, dim, generator=gen) / dim ** 0.5
    q = torch.nn.functional.normalize(q, dim=1)
    return x.to(dtype), q.to(dtype)


@pytest.fixture(scope="session")
def clustered() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    return make_clustered


def hash_encoder(dim: int) -> Callable[[str], torch.Tensor]:
    """Deterministic text -> [dim] vector (seeded by the text's SHA-256)."""
    def enc(text: str) -> torch.Tensor:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        return torch.randn(dim, generator=torch.Generator().manual_seed(seed))
    return enc


@pytest.fixture(scope="session")
def encoder() -> Callable[[int], Callable[[str], torch.Tensor]]:
    return hash_encoder


def recall_at(found: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean fraction of each row of ``truth`` present in the same row of ``found``."""
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.numel()


@pytest.fixture(scope="session")
def recall() -> Callable[[torch.Tensor, torch.Tensor], float]:
    return recall_at


@pytest.fixture(autouse=True)
def _one_thread():
    """Run each memory test on one intra-op thread, restoring the setting afterwards.

    The tests use small tensors, where a BLAS call's thread fork/join costs more than the
    arithmetic; on a machine whose cores are shared with other jobs, two-thread small
    matmuls measured ~30x slower than one-thread ones. Results do not depend on it.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
