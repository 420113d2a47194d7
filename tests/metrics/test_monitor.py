"""Monitors and spike statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import aura_snn as A
from aura_snn.errors import ParameterError
from aura_snn.metrics import Monitor, cv_isi, firing_rates, sparsity, synchrony


def test_monitor_records_every_layer_without_changing_outputs() -> None:
    net = nn.Sequential(nn.Linear(10, 20), A.LIF(), nn.Linear(20, 5), A.CubaLIF())
    x = torch.rand(30, 4, 10) * 5
    plain = net(x)
    with Monitor(net, record_v=True, every=2) as mon:
        out = net(x)
        net(x)
    assert torch.equal(out, plain)
    assert set(mon.spikes) == {"1", "3"}
    assert mon.spikes["1"].shape == (30, 4, 20)  # 2 calls x 15 kept steps
    assert mon.v["3"].shape == (30, 4, 5)
    summary = mon.summary(1e-3)
    s1 = mon.spikes["1"]
    assert summary["1"]["spikes"] == float(s1.sum())
    assert summary["1"]["sparsity"] == pytest.approx(1 - float(s1.mean()))
    assert summary["1"]["rate_hz"] == pytest.approx(float(s1.mean()) / 2e-3, rel=1e-6)
    assert mon.counts()["1"].shape == (20,)
    # detached: later forwards are not recorded
    net(x)
    assert mon.spikes["1"].shape[0] == 30


def test_monitor_rejects_models_without_neurons() -> None:
    with pytest.raises(ParameterError, match="no SpikingNeuron"):
        Monitor(nn.Linear(3, 3))


def test_rates_cv_synchrony() -> None:
    T, dt = 10000, 1e-3
    regular = torch.zeros(T, 2)
    regular[::10, 0] = 1  # 100 Hz clock
    gen = torch.Generator().manual_seed(0)
    regular[:, 1] = (torch.rand(T, generator=gen) < 0.05).float()  # Poisson ~50 Hz
    rates = firing_rates(regular, dt, batch_dims=0)
    assert rates[0].item() == pytest.approx(100.0)
    assert rates[1].item() == pytest.approx(50.0, rel=0.1)
    cv = cv_isi(regular, dt)
    assert cv[0] == pytest.approx(0.0, abs=1e-9)
    assert cv[1] == pytest.approx(1.0, abs=0.1)  # geometric ISIs: CV sqrt(1-p) ~ 0.97
    assert sparsity(regular) == pytest.approx(1 - float(regular.mean()))
    sync = torch.zeros(1000, 50)
    sync[::20] = 1
    assert synchrony(sync, bin_steps=5) == pytest.approx(1.0)
    indep = (torch.rand(1000, 50, generator=gen) < 0.05).float()
    assert synchrony(indep, bin_steps=5) < 0.3
    assert math.isnan(cv_isi(torch.zeros(10, 1), dt)[0])
    assert isinstance(cv, np.ndarray)
