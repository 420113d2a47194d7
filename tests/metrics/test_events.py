"""Event-list statistics equal the raster statistics of aura_snn.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aura_snn.graph import summary as S
from aura_snn.metrics import stats


def _raster(T: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.linspace(0.0, 0.2, n)
    s = (torch.rand(T, n, generator=g) < p).double()
    s[::50, : n // 3] = 1.0          # a synchronous component
    return s


@pytest.mark.parametrize("seed", [0, 1])
def test_event_statistics_equal_raster_statistics(seed: int) -> None:
    T, n, dt = 1003, 40, 1e-3
    s = _raster(T, n, seed)
    t, i = (x.numpy() for x in s.nonzero(as_tuple=True))
    assert np.allclose(S.rates(i, n, T, dt), stats.firing_rates(s, dt, batch_dims=0).numpy())
    cv_r = stats.cv_isi(s, dt)
    cv_e = S.cv_isi(t, i, n)
    assert np.array_equal(np.isnan(cv_r), np.isnan(cv_e))
    ok = ~np.isnan(cv_r)
    assert np.allclose(cv_r[ok], cv_e[ok], rtol=1e-9)
    for bin_steps in (1, 10, 37):
        assert S.synchrony(t, i, n, T, bin_steps) == pytest.approx(
            stats.synchrony(s, bin_steps), rel=1e-9)
    x, r = S.population_rate(t, n, T, dt, 10)
    assert np.allclose(r, stats.population_rate(s, dt, 10).numpy())
    assert x[1] == pytest.approx(10 * dt)


def test_region_summary_fields() -> None:
    s = _raster(500, 10, 3)
    t, i = (x.numpy() for x in s.nonzero(as_tuple=True))
    out = S.region_summary(t, i, 10, 500, 1e-3)
    assert out["neurons"] == 10 and out["spikes"] == int(s.sum())
    assert out["rate_hz"] == pytest.approx(float(s.sum()) / (10 * 0.5))
    assert 0 < out["synchrony_chi"] <= 1 and out["cv_isi_neurons"] > 0
    empty = S.region_summary(np.zeros(0), np.zeros(0), 5, 100, 1e-3)
    assert empty["rate_hz"] == 0 and empty["cv_isi_mean"] is None
    assert math.isnan(S.synchrony(np.zeros(0), np.zeros(0), 5, 100, 10))
