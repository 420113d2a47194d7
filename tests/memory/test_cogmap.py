"""Cognitive map: index-built kNN graph equals exact kNN; adjacency and edge list forms."""

from __future__ import annotations

import pytest
import torch

from aura_snn.errors import InputValueError, ParameterError
from aura_snn.memory import EpisodicMemory, build_cognitive_map


def _exact_knn(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    s = x @ x.T
    s.fill_diagonal_(float("-inf"))  # a memory is not its own neighbour
    top = s.topk(k, dim=1)
    return top.indices, top.values


@pytest.fixture(scope="module")
def store(clustered) -> tuple[EpisodicMemory, torch.Tensor]:
    x, _ = clustered(2500, 16, 12, seed=4, dtype=torch.float64)
    mem = EpisodicMemory(16, train_min=1000, dtype=torch.float64)
    mem.write(x)
    assert mem.index is not None
    return mem, x


def test_map_from_index_equals_exact_knn_with_all_lists_probed(store) -> None:
    mem, x = store
    cmap = mem.cognitive_map(k=6, nprobe=mem.index.nlist, batch_size=700)
    idx, val = _exact_knn(x, 6)
    assert torch.equal(cmap.ids, torch.arange(2500))
    assert torch.equal(cmap.neighbour_ids, idx)
    torch.testing.assert_close(cmap.scores, val)


def test_map_with_few_probes_is_close_to_exact(store, recall) -> None:
    mem, x = store
    cmap = build_cognitive_map(mem, 6, nprobe=8)
    idx, _ = _exact_knn(x, 6)
    assert recall(cmap.neighbour_ids, idx) >= 0.95
    assert not (cmap.neighbour_ids == cmap.ids[:, None]).any()  # never itself


def test_neighbours_query_and_sparse_adjacency(store) -> None:
    mem, x = store
    cmap = mem.cognitive_map(k=4, nprobe=mem.index.nlist)
    idx, val = _exact_knn(x, 4)
    ids, scores = cmap.neighbours(17)
    assert torch.equal(ids, idx[17]) and torch.allclose(scores, val[17])
    assert torch.equal(cmap.neighbours(17, k=2)[0], idx[17, :2])
    live = mem.neighbours(torch.tensor([17, 30]), 4, nprobe=mem.index.nlist)
    assert torch.equal(live.ids, idx[[17, 30]])

    adj = cmap.adjacency()
    assert adj.layout == torch.sparse_coo and adj.shape == (2500, 2500)
    assert adj._nnz() == 2500 * 4
    dense = adj.to_dense()
    assert dense[17, idx[17]].allclose(val[17])
    sym = cmap.adjacency(symmetric=True).to_dense()
    edge = (sym != 0)
    assert torch.equal(edge, edge.T)
    csr = cmap.adjacency(layout="csr")
    assert csr.layout == torch.sparse_csr and torch.equal(csr.to_dense(), dense)
    src, dst, w = cmap.edges()
    assert src.numel() == 2500 * 4 and torch.equal(dense[src, dst], w)


def test_bad_queries_on_the_map_raise(store) -> None:
    mem, _ = store
    cmap = mem.cognitive_map(k=3)
    with pytest.raises(InputValueError, match="not a node"):
        cmap.neighbours(10**9)
    with pytest.raises(InputValueError, match="k must be <= 3"):
        cmap.neighbours(0, k=4)
    with pytest.raises(ParameterError, match="layout"):
        cmap.adjacency(layout="dense")
    with pytest.raises(InputValueError, match="unknown or deleted"):
        mem.neighbours(10**9)
