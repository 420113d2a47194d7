"""Hybrid partition: ANN parts in PyTorch, spiking parts in Lava 0.10's simulator.
Oracles: the all-PyTorch run of the same model (``floating_pt``) and the fixed-point
twin, itself checked against Lava and a NumPy transcription (``fixed_pt``)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn import LIF, CubaLIF
from hardware.loihi import quantize
from hardware.partition import partition, run_partitioned

DT = 1e-3


def _model() -> nn.Sequential:
    torch.manual_seed(11)
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12),
                      LIF(8e-3, dt=DT, threshold=1.0, reset="zero"), nn.Linear(12, 6),
                      CubaLIF(10e-3, 4e-3, dt=DT, threshold=0.5, reset="zero"),
                      nn.Linear(6, 3), nn.Tanh(), LIF(5e-3, dt=DT, threshold=0.3,
                                                     reset="zero"))
    with torch.no_grad():
        m[2].weight.mul_(6)
        m[4].weight.mul_(4).add_(0.5)
    return m


def test_partition_splits_dense_and_spiking_layers():
    segs = partition(_model())
    assert [(s.kind, s.names) for s in segs] == [
        ("ann", ("0", "1")), ("snn", ("2", "3", "4", "5")), ("ann", ("6", "7")),
        ("snn", ("8",))]


def test_twin_target_fixed_pt_matches_hand_composition():
    m = _model().double()
    x = torch.from_numpy(np.random.default_rng(1).random((30, 2, 8)) * 2)
    with torch.no_grad():
        h = m[7](m[6](quantize(m[2:6])(m[1](m[0](x)))))
    ref = quantize(m[8:], n_in=3)(h)
    assert torch.equal(run_partitioned(m, x, "fixed_pt", target="twin"), ref)


lava = pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                          reason="lava-nc not installed (make setup installs it)")


@lava
def test_floating_pt_end_to_end_equals_all_pytorch():
    m = _model()
    x = torch.from_numpy(np.random.default_rng(2).random((30, 2, 8)) * 2)
    out = run_partitioned(m, x, "floating_pt")
    assert m[0].weight.dtype == torch.float32  # the caller's model is left as it was
    with torch.no_grad():
        ref = m.double()(x)
    assert torch.equal(out, ref) and out.sum() > 5


@lava
def test_fixed_pt_end_to_end_equals_twin():
    m = _model()
    x = torch.from_numpy(np.random.default_rng(3).random((30, 2, 8)) * 2)
    out = run_partitioned(m, x, "fixed_pt")
    assert torch.equal(out, run_partitioned(m, x, "fixed_pt", target="twin"))
    assert out.sum() > 5


def test_bad_input_named():
    with pytest.raises(ValueError, match="no spiking layer"):
        run_partitioned(nn.Sequential(nn.Linear(3, 3)), torch.zeros(4, 1, 3))
    with pytest.raises(ValueError, match="target"):
        run_partitioned(_model(), torch.zeros(4, 1, 8), target="gpu")
    with pytest.raises(ValueError, match="Flatten"):
        run_partitioned(nn.Sequential(nn.Conv2d(1, 2, 3), LIF()), torch.zeros(4, 1, 1, 5, 5),
                        target="twin")
