"""``Shipped`` (how a worker's part of a run travels to its Ray actor): an object with
large tensors round-trips equal, with the tensors' storages out of the pickle (the
claim that makes it cheap), shared storages and repeated tensor objects kept shared,
``Parameter`` and ``requires_grad`` kept, and the loaded tensors writable and
independent of the sender's and of the arrays Ray would map read-only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.graph.distributed.transport import MIN_BYTES, Shipped

pytest.importorskip("ray")


def test_round_trip_keeps_values_sharing_identity_and_kind() -> None:
    big = torch.arange(50_000, dtype=torch.float64)              # 400 kB
    view = big[10:2010:2]                                        # a strided view of it
    param = torch.nn.Parameter(torch.randn(300, 200))            # 240 kB, requires grad
    frozen = torch.ones(40_000, dtype=torch.int32)
    small = torch.tensor([1.0, 2.0])
    obj = {"big": big, "view": view, "again": big, "param": param,
           "frozen": frozen.requires_grad_(False), "small": small,
           "nested": [param, {"i": torch.arange(20_000)}], "text": "kept"}
    s = Shipped(obj)
    assert len(s.pickle) < 4_000                                 # no storage in the pickle
    assert sum(a.nbytes for a in s.arrays) == (big.numel() * 8 + param.numel() * 4
                                               + frozen.numel() * 4 + 20_000 * 8)
    assert s.nbytes == len(s.pickle) + sum(a.nbytes for a in s.arrays)
    got = s.load()
    assert got["text"] == "kept" and torch.equal(got["small"], small)
    for k in ("big", "view", "param", "frozen"):
        assert torch.equal(got[k], obj[k]) and got[k].dtype == obj[k].dtype, k
    assert got["view"].stride() == (2,) and got["view"].storage_offset() == 10
    assert got["again"] is got["big"] and got["nested"][0] is got["param"]
    assert got["view"].untyped_storage().data_ptr() == got["big"].untyped_storage().data_ptr()
    assert isinstance(got["param"], torch.nn.Parameter) and got["param"].requires_grad
    assert not isinstance(got["big"], torch.nn.Parameter) and not got["big"].requires_grad
    assert torch.equal(got["nested"][1]["i"], torch.arange(20_000))
    got["big"][10] = -1.0                                        # writable, shared view
    assert float(got["view"][0]) == -1.0 and float(big[10]) == 10.0
    for a in s.arrays:                                           # arrays Ray maps read-only
        a.flags.writeable = False
    again = s.load()
    again["big"][0] = 5.0
    assert float(big[0]) == 0.0


def test_only_large_plain_cpu_tensors_leave_the_pickle() -> None:
    under = torch.zeros(MIN_BYTES // 8 - 1, dtype=torch.float64)
    sparse = torch.eye(200).to_sparse()
    s = Shipped((under, sparse))
    assert s.arrays == []
    a, b = s.load()
    assert torch.equal(a, under) and torch.equal(b.to_dense(), torch.eye(200))
    assert np.array_equal(Shipped(np.arange(5)).load(), np.arange(5))
