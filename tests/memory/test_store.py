"""EpisodicMemory: write/search/delete, values and metadata, forgetting, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.errors import InputValueError, ParameterError, ParameterTypeError, ShapeError
from aura_snn.memory import EpisodicMemory


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_exact_store_returns_true_top_k_with_values(metric, dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(300, 12, generator=gen, dtype=dtype)
    vals = torch.randn(300, 3, generator=gen, dtype=dtype)
    mem = EpisodicMemory(12, value_dim=3, metric=metric, backend="flat", dtype=dtype)
    ids = mem.write(keys, vals, [{"row": i} for i in range(300)])
    assert torch.equal(ids, torch.arange(300)) and len(mem) == 300
    q = torch.randn(7, 12, generator=gen, dtype=dtype)
    res = mem.search(q, 4)
    if metric == "cosine":
        ref = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(keys, dim=1).T
    elif metric == "ip":
        ref = q @ keys.T
    else:
        ref = -torch.cdist(q, keys) ** 2
    top = ref.topk(4, dim=1)
    assert torch.equal(res.ids, top.indices)
    torch.testing.assert_close(res.scores, top.values)
    assert res.scores.dtype == dtype
    torch.testing.assert_close(res.values, vals[top.indices])
    entries = mem.get(res.ids[0])
    assert [m["row"] for m in entries.metadata] == res.ids[0].tolist()


def test_single_vector_query_and_k_clamped_when_store_is_small() -> None:
    mem = EpisodicMemory(4, backend="flat")
    mem.write(torch.eye(4)[:3])
    res = mem.search(torch.tensor([1.0, 0.0, 0.0, 0.0]), 5)
    assert res.ids.shape == (1, 3)  # k clamped to the three stored memories
    assert res.ids[0, 0] == 0 and sorted(res.ids[0].tolist()) == [0, 1, 2]
    assert res.scores[0].tolist() == [1.0, 0.0, 0.0] and res.values is None


@pytest.mark.parametrize("kernel", ["numba", "torch"])
def test_ivf_store_trains_automatically_and_matches_exact(kernel, clustered, recall) -> None:
    x, q = clustered(6000, 32, 30, n_queries=100, seed=1)
    mem = EpisodicMemory(32, train_min=2000, nprobe=8, kernel=kernel)
    mem.write(x[:1500])
    assert mem.index is None  # below train_min: exact search
    mem.write(x[1500:])
    stats = mem.index_stats()
    assert stats["indexed"] and stats["nlist"] == round(math.sqrt(6000))
    approx = mem.search(q, 5, touch=False)
    exact = mem.search(q, 5, exact=True, touch=False)
    assert recall(approx.ids, exact.ids) >= 0.97
    assert torch.equal(mem.search(q, 5, nprobe=stats["nlist"], touch=False).ids, exact.ids)
    single = mem.search(q[3], 5, touch=False)  # a [dim] query is a batch of one
    assert torch.equal(single.ids, approx.ids[3:4])


def test_delete_removes_from_search_get_and_index(clustered) -> None:
    x, _ = clustered(3000, 16, 10, seed=2)
    mem = EpisodicMemory(16, train_min=1000)
    ids = mem.write(x)
    gone = ids[::2]
    mem.delete(gone)
    assert len(mem) == 1500 and mem.index.ntotal == 1500
    res = mem.search(x[:100], 3, nprobe=mem.index.nlist)
    assert not torch.isin(res.ids, gone).any()
    assert 0 not in mem and 1 in mem
    with pytest.raises(InputValueError, match="unknown or deleted id"):
        mem.get(gone[:1])


def test_delete_unknown_id_raises_and_deletes_nothing() -> None:
    mem = EpisodicMemory(4, backend="flat")
    mem.write(torch.randn(5, 4))
    with pytest.raises(InputValueError, match=r"unknown or deleted id\(s\): \[99\]"):
        mem.delete(torch.tensor([1, 99]))
    assert len(mem) == 5 and 1 in mem


def test_forgetting_order_follows_retention_score_with_capacity() -> None:
    # r_i = w_i * exp(-(t - a_i) / tau); tau = 10 steps, one step per write
    mem = EpisodicMemory(2, backend="flat", capacity=4, tau=10.0)
    a = mem.write(torch.randn(1, 2), importance=1.0)       # a = 0
    b = mem.write(torch.randn(1, 2), importance=5.0)       # a = 1
    c = mem.write(torch.randn(1, 2), importance=0.5)       # a = 2
    d = mem.write(torch.randn(1, 2), importance=1.0)       # a = 3
    t = mem.step  # 4
    expected = {int(a): 1.0 * math.exp(-(t - 0) / 10), int(b): 5.0 * math.exp(-(t - 1) / 10),
                int(c): 0.5 * math.exp(-(t - 2) / 10), int(d): 1.0 * math.exp(-(t - 3) / 10)}
    torch.testing.assert_close(mem.retention(mem.ids), torch.tensor(
        [expected[i] for i in mem.ids.tolist()], dtype=torch.float64))
    e = mem.write(torch.randn(1, 2), importance=1.0)  # capacity exceeded: c has the lowest r
    assert mem.last_evicted.tolist() == [int(c)]
    assert sorted(mem.ids.tolist()) == sorted([int(a), int(b), int(d), int(e)])
    # a retrieval refreshes recency: touching `a` makes `d` the next to go
    mem.search(mem.get(a).keys, 1)
    assert mem.forget(1).tolist() == [int(d)]


def test_forget_ties_break_by_age_then_id_and_decay_uses_min_retention() -> None:
    mem = EpisodicMemory(2, backend="flat", tau=5.0, clock_per_write=0.0, min_retention=0.2)
    ids = mem.write(torch.randn(4, 2), importance=torch.tensor([1.0, 1.0, 0.0, 2.0]))
    assert mem.forget(2).tolist() == [2, 0]  # w = 0 first, then tie 0/1 -> smaller id
    # after 5 steps r = w * e^-1: 0.368 for w=1 stays, 0.736 for w=2 stays
    assert mem.decay(5.0).tolist() == []
    # after 5 more: 0.135 < 0.2 goes, 0.271 stays
    assert mem.decay(5.0).tolist() == [int(ids[1])]
    assert mem.ids.tolist() == [int(ids[3])]


def test_compaction_after_many_deletes_keeps_everything_consistent() -> None:
    mem = EpisodicMemory(8, value_dim=1, backend="flat")
    keys = torch.randn(5000, 8)
    ids = mem.write(keys, torch.arange(5000.0)[:, None], [{"i": i} for i in range(5000)])
    mem.delete(ids[:4000])  # passes the tombstone threshold: rows are compacted
    assert mem._table.n_rows == 1000
    got = mem.get(ids[4000:])
    assert torch.equal(got.values[:, 0], torch.arange(4000.0, 5000.0))
    assert [m["i"] for m in got.metadata] == list(range(4000, 5000))
    assert torch.equal(mem.search(keys[4500], 1).ids[0, 0], ids[4500])


def _snapshot(mem: EpisodicMemory) -> tuple:
    return (len(mem), mem.ids.tolist(), mem.step, mem.search(torch.ones(1, 4), 3, touch=False))


R = torch.randn


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m.write(R(3, 5)), ShapeError, r"keys must have shape \[n, 4\]"),
    (lambda m: m.write(torch.tensor([[0.0, float("nan"), 1.0, 1.0]])), InputValueError, "NaN"),
    (lambda m: m.write(torch.zeros(1, 4)), InputValueError, "zero-norm"),
    (lambda m: m.write(torch.ones(2, 4, dtype=torch.long)), ParameterTypeError, "floating"),
    (lambda m: m.write(R(2, 4), R(2, 2)), ShapeError, r"values must have shape \[2, 3\]"),
    (lambda m: m.write(R(2, 4), R(2, 3), [{}]), ParameterError, "one entry per key"),
    (lambda m: m.write(R(1, 4), R(1, 3), [{"x": object()}]), ParameterTypeError, "JSON"),
    (lambda m: m.write(R(1, 4), R(1, 3), importance=-1.0), ParameterError, "importance"),
    (lambda m: m.write(R(1, 4)), ParameterError, "values is required"),
    (lambda m: m.search(R(1, 4), 0), ParameterError, "k must be >= 1"),
    (lambda m: m.search(R(1, 4), 2, nprobe=0), ParameterError, "nprobe must be >= 1"),
    (lambda m: m.search(R(1, 3), 2), ShapeError, r"queries must have shape \[n, 4\]"),
    (lambda m: m.search(torch.full((1, 4), float("inf")), 2), InputValueError, "queries"),
    (lambda m: m.delete(torch.tensor([7, 1000])), InputValueError, "1000"),
    (lambda m: m.delete(torch.tensor([0.5])), ParameterTypeError, "integer ids"),
    (lambda m: m.forget(100), ParameterError, "n must be <="),
])
def test_bad_input_raises_typed_error_and_leaves_memory_intact(call, error, match) -> None:
    mem = EpisodicMemory(4, value_dim=3, backend="flat")
    mem.write(torch.randn(10, 4), torch.randn(10, 3))
    before = _snapshot(mem)
    with pytest.raises(error, match=match):
        call(mem)
    after = _snapshot(mem)
    assert before[:3] == after[:3]
    assert torch.equal(before[3].ids, after[3].ids)


def test_bad_constructor_parameters_name_the_parameter() -> None:
    with pytest.raises(ParameterError, match="metric must be one of"):
        EpisodicMemory(4, metric="manhattan")
    with pytest.raises(ParameterError, match="tau must be finite and > 0"):
        EpisodicMemory(4, tau=0.0)
    with pytest.raises(ParameterError, match="dim must be >= 1"):
        EpisodicMemory(0)
    with pytest.raises(ParameterError, match="dtype"):
        EpisodicMemory(4, dtype=torch.float16)


def test_device_is_kept_and_inputs_are_moved() -> None:
    mem = EpisodicMemory(4, backend="flat", device="cpu")
    mem.write(torch.randn(3, 4, dtype=torch.float64))  # cast to the store dtype
    res = mem.search(torch.randn(2, 4), 2)
    assert res.ids.device == mem.device and res.scores.dtype == torch.float32
    assert mem.to("cpu") is mem


def test_store_retrains_when_size_doubles_and_drops_index_when_small(clustered) -> None:
    x, _ = clustered(5000, 16, 10, seed=7)
    mem = EpisodicMemory(16, train_min=1000, rebuild_growth=2.0)
    mem.write(x[:1000])
    assert mem.index_stats()["trained_size"] == 1000 and mem.index.nlist == 32
    mem.write(x[1000:2000])  # exactly 2x: no drift yet
    assert mem.index_stats()["trained_size"] == 1000
    mem.write(x[2000:2001])  # beyond 2x: retrained on all 2001, nlist follows sqrt(N)
    assert mem.index_stats()["trained_size"] == 2001 and mem.index.nlist == 45
    mem.delete(torch.arange(1500))  # 501 left: below the drift band and below train_min
    assert mem.index is None and len(mem) == 501
    res = mem.search(x[1600:1601], 1)
    assert int(res.ids[0, 0]) == 1600  # exact search again


def test_auto_rebuild_off_trains_once_and_rebuilds_only_on_request(clustered) -> None:
    x, _ = clustered(4000, 16, 10, seed=8)
    mem = EpisodicMemory(16, train_min=1000, auto_rebuild=False)
    mem.write(x[:1000])
    assert mem.index_stats()["trained_size"] == 1000  # the first training still happens
    mem.write(x[1000:4000])
    assert mem.index.needs_rebuild() is not None  # drifted, but left alone
    assert mem.index_stats()["trained_size"] == 1000 and mem.index.ntotal == 4000
    mem.rebuild()
    assert mem.index_stats()["trained_size"] == 4000 and mem.index.nlist == 63
    with pytest.raises(ParameterTypeError, match="auto_rebuild"):
        EpisodicMemory(16, auto_rebuild="no")
