"""FAISS backend agrees with our IVF index; missing faiss names the ``peers`` extra."""

from __future__ import annotations

import sys

import pytest
import torch

from aura_snn.errors import InputValueError, MissingExtraError
from aura_snn.memory import EpisodicMemory, IVFIndex
from aura_snn.memory._similarity import prepare_keys


def _faiss():
    return pytest.importorskip("faiss", reason="faiss-cpu not installed (extra 'peers')")


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_same_centroids_give_the_same_results_as_our_index(metric, clustered) -> None:
    _faiss()
    from aura_snn.memory.faiss_backend import FaissIVFIndex

    x, q = clustered(4000, 16, 20, n_queries=60, seed=5)
    x = prepare_keys(x * torch.linspace(0.5, 1.5, 4000)[:, None], metric)
    q = prepare_keys(q, metric)
    ours = IVFIndex(16, metric=metric, nlist=40, seed=0)
    ours.train(x)
    ours.add(torch.arange(4000), x)
    theirs = FaissIVFIndex(16, metric=metric, nlist=40)
    theirs.train(x, centroids=ours.centroids)
    theirs.add(torch.arange(4000), x)
    for nprobe in (1, 3, 40):  # same lists probed -> same candidates -> same top k
        s1, i1 = ours.search(q, 5, nprobe)
        s2, i2 = theirs.search(q, 5, nprobe)
        assert torch.equal(i1, i2)
        torch.testing.assert_close(s1, s2, rtol=1e-5, atol=1e-5)


def test_faiss_store_trains_itself_searches_deletes_and_round_trips(clustered, recall,
                                                                    tmp_path) -> None:
    _faiss()
    x, q = clustered(5000, 32, 25, n_queries=80, seed=6)
    mem = EpisodicMemory(32, backend="faiss", train_min=2000, nprobe=8)
    ids = mem.write(x)
    assert mem.index_stats()["indexed"] and mem.index.ntotal == 5000
    exact = mem.search(q, 5, exact=True, touch=False)
    assert recall(mem.search(q, 5, touch=False).ids, exact.ids) >= 0.97
    mem.delete(ids[:1000])
    res = mem.search(q, 5, touch=False)
    assert not torch.isin(res.ids, ids[:1000]).any()
    with pytest.raises(InputValueError):
        mem.delete(ids[:1])
    path = tmp_path / "faiss.safetensors"
    mem.save(path)
    back = EpisodicMemory.from_file(path)
    again = back.search(q, 5, touch=False)
    assert torch.equal(again.ids, res.ids) and torch.equal(again.scores, res.scores)


def test_missing_faiss_raises_missing_extra_naming_peers(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    with pytest.raises(MissingExtraError, match=r"aura-snn\[peers\]"):
        EpisodicMemory(8, backend="faiss")
    EpisodicMemory(8, backend="ivf")  # other backends never import faiss
