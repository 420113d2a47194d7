"""EpisodicMemory.to_tensors / from_tensors: the store's public tensor interface.

The oracle is a brute-force top-k over the keys as written, computed in numpy here
(cosine: normalised rows; ip: raw inner products), never by the store.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aura_snn.errors import InputValueError, ShapeError
from aura_snn.memory import EpisodicMemory

DIM, VDIM, K = 16, 3, 6


def _top_k(x: np.ndarray, alive: np.ndarray, q: np.ndarray, metric: str, k: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Ids and scores of the k best live rows (ids = row numbers, as written)."""
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = q @ x.T
    s[:, ~alive] = -np.inf
    ids = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(s, ids, axis=1)


def _store(metric: str, backend: str, dtype: torch.dtype, seed: int = 0
           ) -> tuple[EpisodicMemory, np.ndarray, np.ndarray, np.ndarray]:
    """A store with 1,800 written and 200 deleted memories, trained when ivf."""
    g = torch.Generator().manual_seed(seed)
    n = 1800
    keys = torch.randn(n, DIM, generator=g, dtype=torch.float64)
    vals = torch.randn(n, VDIM, generator=g, dtype=torch.float64)
    mem = EpisodicMemory(DIM, value_dim=VDIM, metric=metric, backend=backend, train_min=600,
                         nlist=12, nprobe=3, tau=40.0, dtype=dtype)
    mem.write(keys[:1000].to(dtype), vals[:1000].to(dtype),
              [{"row": i} if i % 4 else None for i in range(1000)])
    mem.write(keys[1000:].to(dtype), vals[1000:].to(dtype), importance=torch.rand(800, generator=g))
    dead = torch.randperm(n, generator=g)[:200]
    mem.delete(dead)
    alive = np.ones(n, dtype=bool)
    alive[dead.numpy()] = False
    assert (mem.index is not None) == (backend == "ivf")
    return mem, keys.numpy(), vals.numpy(), alive


@pytest.mark.parametrize("backend", ["flat", "ivf"])
@pytest.mark.parametrize("metric", ["cosine", "ip"])
def test_round_trip_gives_identical_search_results_equal_to_brute_force(metric, backend) -> None:
    mem, keys, vals, alive = _store(metric, backend, torch.float64)
    tensors, meta = mem.to_tensors()
    other = EpisodicMemory.from_tensors(tensors, meta)
    q = np.random.default_rng(1).standard_normal((25, DIM))
    qt = torch.from_numpy(q)
    ref_ids, ref_scores = _top_k(keys, alive, q, metric, K)
    for m in (mem, other):
        exact = m.search(qt, K, exact=True, touch=False)
        assert np.array_equal(exact.ids.numpy(), ref_ids)
        np.testing.assert_allclose(exact.scores.numpy(), ref_scores, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(exact.values.numpy(), vals[ref_ids])
    a, b = mem.search(qt, K, touch=False), other.search(qt, K, touch=False)  # index path
    assert torch.equal(a.ids, b.ids) and torch.equal(a.scores, b.scores)
    assert torch.equal(a.values, b.values)
    if backend == "flat":
        assert np.array_equal(b.ids.numpy(), ref_ids)
    else:  # approximate, but the restored lists are the same lists
        assert other.index_stats() == mem.index_stats()
        assert np.isin(b.ids.numpy(), np.flatnonzero(alive)).all()


def test_float32_ivf_round_trip_is_bit_identical_and_keeps_every_field() -> None:
    mem, keys, _, alive = _store("cosine", "ivf", torch.float32, seed=2)
    other = EpisodicMemory.from_tensors(*mem.to_tensors())
    q = torch.from_numpy(np.random.default_rng(3).standard_normal((20, DIM))).float()
    for nprobe in (1, 3, 12):
        a = mem.search(q, K, nprobe=nprobe, touch=False)
        b = other.search(q, K, nprobe=nprobe, touch=False)
        assert torch.equal(a.ids, b.ids) and torch.equal(a.scores, b.scores)
    assert torch.equal(other.ids, mem.ids) and other.step == mem.step
    ea, eb = mem.get(mem.ids), other.get(other.ids)
    for name in ("ids", "keys", "values", "importance", "last_access"):
        assert torch.equal(getattr(ea, name), getattr(eb, name)), name
    assert ea.metadata == eb.metadata
    torch.testing.assert_close(other.retention(), mem.retention())
    new = other.write(torch.randn(2, DIM), torch.randn(2, VDIM))
    assert int(new[0]) == 1800  # ids continue after next_id, never reused


def test_to_tensors_lists_the_documented_tensors_and_config() -> None:
    mem, _, _, alive = _store("ip", "ivf", torch.float32)
    tensors, meta = mem.to_tensors()
    n = int(alive.sum())
    assert set(tensors) == {"ids", "keys", "values", "importance", "last_access", "metadata",
                            "ivf.centroids", "ivf.list_sizes", "ivf.list_ids"}
    assert tensors["ids"].dtype == torch.long and tensors["ids"].shape == (n,)
    assert tensors["keys"].shape == (n, DIM) and tensors["keys"].dtype == torch.float32
    assert all(v.device.type == "cpu" and v.is_contiguous() for v in tensors.values())
    assert set(meta) == {"config"}
    cfg = json.loads(meta["config"])
    assert cfg["constructor"]["dim"] == DIM and cfg["constructor"]["metric"] == "ip"
    assert cfg["state"]["next_id"] == 1800 and cfg["state"]["index"] is not None
    flat = EpisodicMemory(4, backend="flat")
    t0, m0 = flat.to_tensors()  # an empty store round-trips too
    assert t0["ids"].shape == (0,) and len(EpisodicMemory.from_tensors(t0, m0)) == 0


def test_tensors_are_copies_in_both_directions() -> None:
    mem, _, _, _ = _store("cosine", "ivf", torch.float32)
    q = torch.randn(5, DIM)
    before = mem.search(q, K, touch=False)
    tensors, meta = mem.to_tensors()
    other = EpisodicMemory.from_tensors(tensors, meta)
    for t in tensors.values():      # scribbling on the exported tensors changes neither store
        t.zero_()
    for m in (mem, other):
        after = m.search(q, K, touch=False)
        assert torch.equal(before.ids, after.ids) and torch.equal(before.scores, after.scores)


def test_inconsistent_tensors_raise_naming_the_tensor() -> None:
    mem, _, _, _ = _store("cosine", "ivf", torch.float32)
    tensors, meta = mem.to_tensors()

    def without(name: str) -> dict[str, torch.Tensor]:
        return {k: v for k, v in tensors.items() if k != name}

    with pytest.raises(InputValueError, match="'values' is missing"):
        EpisodicMemory.from_tensors(without("values"), meta)
    with pytest.raises(InputValueError, match="'ivf.list_ids' is missing"):
        EpisodicMemory.from_tensors(without("ivf.list_ids"), meta)
    with pytest.raises(ShapeError, match="'keys'"):
        EpisodicMemory.from_tensors({**tensors, "keys": tensors["keys"][:, :4]}, meta)
    with pytest.raises(ShapeError, match="'importance'"):
        EpisodicMemory.from_tensors({**tensors, "importance": tensors["importance"].float()},
                                    meta)
    with pytest.raises(InputValueError, match="'ids'"):
        EpisodicMemory.from_tensors({**tensors, "ids": tensors["ids"].flip(0)}, meta)
    with pytest.raises(InputValueError, match="permutation"):
        bad = tensors["ivf.list_ids"].clone()
        bad[0] = bad[1]
        EpisodicMemory.from_tensors({**tensors, "ivf.list_ids": bad}, meta)
    with pytest.raises(InputValueError, match="config"):
        EpisodicMemory.from_tensors(tensors, {})
    with pytest.raises(InputValueError, match="torch.Tensor"):
        EpisodicMemory.from_tensors({**tensors, "keys": tensors["keys"].numpy()}, meta)
