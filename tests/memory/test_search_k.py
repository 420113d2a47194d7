"""``EpisodicMemory.search``/``neighbours`` with ``k`` beyond the store: clamped to the
stored memories (no allocation of ``k`` slots), checked against brute-force top-k in
NumPy; an empty store gives ``[q, 0]``; ``k <= 0`` is refused naming ``k``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.memory import EpisodicMemory

#: memories stored: above the training size (39 x nlist = 156), so the index is built
N = 200
BACKENDS = ["ivf", pytest.param("faiss", marks=pytest.mark.peers)]


def _brute(keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Ids (= row order) of every key by decreasing cosine similarity, per query."""
    kn = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.argsort(-(qn @ kn.T), axis=1, kind="stable")


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_k_returns_every_memory_in_brute_force_order(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    gen = torch.Generator().manual_seed(0)
    keys, q = torch.randn(N, 8, generator=gen), torch.randn(3, 8, generator=gen)
    mem = EpisodicMemory(8, backend=backend, train_min=16, nlist=4, nprobe=4,
                         value_dim=2)
    mem.write(keys, torch.randn(N, 2, generator=gen))
    assert mem.index is not None  # the IVF path, not the exact scan
    res = mem.search(q, k=10**9)
    assert res.ids.shape == (3, N) and res.values.shape == (3, N, 2)
    assert np.array_equal(res.ids.numpy(), _brute(keys.numpy(), q.numpy()))
    exact = mem.search(q, k=10**9, exact=True)
    assert np.array_equal(exact.ids.numpy(), _brute(keys.numpy(), q.numpy()))
    nb = mem.neighbours(torch.tensor([0, 5]), k=10**9)
    want = _brute(keys.numpy(), keys[[0, 5]].numpy())[:, 1:]  # itself first, dropped
    assert np.array_equal(nb.ids.numpy(), want)


def test_empty_store_and_bad_k():
    mem = EpisodicMemory(4, value_dim=3)
    res = mem.search(torch.randn(2, 4), k=10**9)
    assert res.ids.shape == (2, 0) and res.scores.shape == (2, 0)
    assert res.values.shape == (2, 0, 3)
    for bad in (0, -1):
        with pytest.raises(ParameterError, match="k"):
            mem.search(torch.randn(1, 4), k=bad)
    mem.write(torch.randn(1, 4), torch.randn(1, 3))
    assert mem.neighbours(torch.tensor([0]), k=3).ids.shape == (1, 0)  # no other memory


@pytest.mark.parametrize("k", [1000, 10**9])
@pytest.mark.parametrize("backend", BACKENDS)
def test_index_search_clamps_k_to_its_keys(backend, k):
    """The IVF index itself (numba and torch scans) and the FAISS index, probing every
    list: ``k`` beyond the keys held gives them all in brute-force order, ``[q, n]``."""
    if backend == "faiss":
        pytest.importorskip("faiss")
    gen = torch.Generator().manual_seed(1)
    keys, q = torch.randn(N, 8, generator=gen), torch.randn(3, 8, generator=gen)
    mem = EpisodicMemory(8, backend=backend, train_min=16, nlist=4, nprobe=4)
    mem.write(keys)
    assert mem.index is not None
    qn = q / q.norm(dim=1, keepdim=True)
    want = _brute(keys.numpy(), q.numpy())
    kernels = ["numba", "torch"] if backend == "ivf" else [None]
    for kernel in kernels:
        if kernel is not None:
            mem.index.kernel = kernel
        scores, ids = mem.index.search(qn, k, nprobe=4)
        assert ids.shape == (3, N) and scores.shape == (3, N)
        assert np.array_equal(ids.numpy(), want)
    with pytest.raises(ParameterError, match="k"):
        mem.index.search(qn, 0)
