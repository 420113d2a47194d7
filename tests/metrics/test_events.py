"""Event-list statistics (aura_snn.metrics.events) equal the raster statistics of
aura_snn.metrics.stats, and both equal the textbook formulas computed here per neuron."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aura_snn.errors import InputValueError, ParameterError, ShapeError
from aura_snn.metrics import events as S
from aura_snn.metrics import stats

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize("seed", [0, 1])
def test_statistics_equal_direct_formulas(seed: int) -> None:
    """Oracle: each statistic written out neuron by neuron on the dense raster in numpy."""
    T, n, dt, B = 1003, 40, 1e-3, 10
    s = _raster(T, n, seed).numpy()
    t, i = s.nonzero()
    rng = np.random.default_rng(seed)
    perm = rng.permutation(t.size)          # event order must not matter
    t, i = t[perm], i[perm]
    assert np.allclose(S.rates(i, n, T, dt), s.sum(0) / (T * dt), rtol=1e-12)
    cv = np.full(n, np.nan)
    for k in range(n):
        times = np.flatnonzero(s[:, k])
        if times.size >= 3:
            isi = np.diff(times).astype(float)
            cv[k] = isi.std() / isi.mean()
    got = S.cv_isi(t, i, n)
    assert np.array_equal(np.isnan(got), np.isnan(cv))
    assert np.allclose(got[~np.isnan(cv)], cv[~np.isnan(cv)], rtol=1e-12)
    c = s[: (T // B) * B].reshape(T // B, B, n).sum(1)          # [bins, n] counts
    chi = math.sqrt(c.mean(1).var() / c.var(0).mean())
    assert S.synchrony(t, i, n, T, B) == pytest.approx(chi, rel=1e-10)
    x, r = S.population_rate(t, n, T, dt, B)
    assert np.allclose(r, c.sum(1) / (n * B * dt), rtol=1e-12)
    assert np.allclose(x, np.arange(T // B) * B * dt)
    pooled = np.concatenate([np.diff(np.flatnonzero(s[:, k])) for k in range(n)]) * dt
    assert np.allclose(np.sort(S.isis(t, i, dt)), np.sort(pooled))


def test_dense_forms_keep_torch_type_and_gradient() -> None:
    s = _raster(200, 8, 5).requires_grad_()
    r = stats.firing_rates(s, 1e-3, batch_dims=0)
    p = stats.population_rate(s, 1e-3, 10)
    assert isinstance(r, torch.Tensor) and isinstance(p, torch.Tensor)
    (r.sum() + p.sum()).backward()
    assert s.grad is not None and bool((s.grad > 0).all())


def test_bad_events_raise_naming_the_parameter() -> None:
    t, i = np.array([0, 3, 5]), np.array([0, 1, 2])
    with pytest.raises(InputValueError, match="neuron indices"):
        S.cv_isi(t, i, 2)
    with pytest.raises(InputValueError, match="steps"):
        S.synchrony(np.array([-1, 3, 5]), i, 3, 100)
    with pytest.raises(ShapeError, match="one length"):
        S.cv_isi(t[:2], i, 3)
    with pytest.raises(ParameterError, match="dt"):
        S.rates(i, 3, 10, 0.0)
    with pytest.raises(ParameterError, match="bin_steps"):
        S.population_rate(t, 3, 10, 1e-3, 0)
    with pytest.raises(ParameterError, match="n \\(neurons\\)"):
        S.rates(i, 0, 10, 1e-3)


def test_event_statistics_import_without_torch() -> None:
    code = ("import sys\n"
            "import aura_snn.metrics.events\n"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.stdout.split() == ["False"], r.stderr
