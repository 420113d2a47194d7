"""Time cells: log-spaced preferred times, peaks, scale-invariant widths, step form."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.cells import TimeCellParams, TimeCells, preferred_times
from aura_snn.errors import ParameterError, ShapeError


def _fwhm(t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Full width at half maximum of each column of ``r`` ``[T, n]``, linear interpolation."""
    out = []
    for i in range(r.shape[1]):
        y = r[:, i] / r[:, i].max()
        above = (y >= 0.5).nonzero().flatten()
        lo, hi = int(above[0]), int(above[-1])
        t_lo = t[lo - 1] + (0.5 - y[lo - 1]) / (y[lo] - y[lo - 1]) * (t[lo] - t[lo - 1])
        t_hi = t[hi] + (y[hi] - 0.5) / (y[hi] - y[hi + 1]) * (t[hi + 1] - t[hi])
        out.append(t_hi - t_lo)
    return torch.stack(out)


def test_preferred_times_are_log_spaced() -> None:
    taus = preferred_times(12, 0.1, 10.0, dtype=torch.float64)
    assert taus[0].item() == pytest.approx(0.1) and taus[-1].item() == pytest.approx(10.0)
    ratios = taus[1:] / taus[:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, 100.0 ** (1 / 11)))
    assert preferred_times(1, 0.5, 0.5).tolist() == [0.5]


@pytest.mark.parametrize("shape", ["gaussian", "laplace"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_cell_peaks_at_its_preferred_time(shape: str, dtype: torch.dtype) -> None:
    cells = TimeCells(TimeCellParams(n=16, t_min=0.1, t_max=10.0, width=0.2, shape=shape),
                      dtype=dtype)
    step = 1e-3  # s
    t = torch.arange(0, 12.0, step, dtype=dtype)
    rates = cells(t)
    assert rates.shape == (t.numel(), 16) and rates.dtype == dtype
    peak_t = t[rates.argmax(0)]
    # Both curves peak exactly at tau, so the exact argmax on the grid is the grid point
    # nearest tau: error <= step / 2. In floating point, rates within a few ulps of the
    # peak tie; near the peak log r = -(t/tau - 1)^2 / (2 w^2), so ties span
    # |t - tau| <= tau w sqrt(2 c eps) with c ~ 8 ulps of rounding in exp/log.
    eps = torch.finfo(dtype).eps
    tol = step / 2 + cells.t_pref * 0.2 * math.sqrt(16 * eps) + 1e-6
    assert ((peak_t - cells.t_pref).abs() <= tol).all(), (peak_t, cells.t_pref)
    assert torch.allclose(rates.max(0).values, torch.full((16,), 10.0, dtype=dtype), rtol=1e-3)
    # sequence: peaks in the order of the cells
    assert (torch.diff(peak_t) > 0).all()


@pytest.mark.parametrize("shape", ["gaussian", "laplace"])
def test_widths_grow_linearly_with_preferred_time(shape: str) -> None:
    w = 0.15
    cells = TimeCells(TimeCellParams(n=8, t_min=0.5, t_max=8.0, width=w, shape=shape),
                      dtype=torch.float64)
    t = torch.arange(0, 20.0, 5e-4, dtype=torch.float64)
    fwhm = _fwhm(t, cells(t))
    ratio = fwhm / cells.t_pref
    # scale invariance: FWHM / tau is the same for every cell (grid error ~ step / FWHM)
    assert torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=2e-3)
    if shape == "gaussian":  # FWHM = 2 sqrt(2 ln 2) w tau
        assert ratio.mean().item() == pytest.approx(2 * math.sqrt(2 * math.log(2)) * w, rel=1e-3)
    assert torch.allclose(cells.widths, w * cells.t_pref)


def test_step_form_resets_on_event() -> None:
    cells = TimeCells(TimeCellParams(n=5, t_min=0.05, t_max=0.5), dtype=torch.float64)
    dt = 0.01
    state = cells.initial_state((2,))
    rates, state = cells.step(torch.tensor([False, False]), state, dt)
    assert (rates == 0).all()  # no event yet: silent
    events = torch.zeros(60, 2, dtype=torch.bool)
    events[0, 0] = True  # animal 0 at step 0
    events[10, 1] = True  # animal 1 at step 10
    events[40, 0] = True  # animal 0 again at step 40
    out = []
    for e in events:
        r, state = cells.step(e, state, dt)
        out.append(r)
    out = torch.stack(out)
    since0 = torch.tensor([i * dt if i < 40 else (i - 40) * dt for i in range(60)],
                          dtype=torch.float64)
    assert torch.allclose(out[:, 0], cells(since0), atol=1e-12)
    since1 = torch.tensor([math.inf] * 10 + [(i - 10) * dt for i in range(10, 60)],
                          dtype=torch.float64)
    assert torch.allclose(out[:, 1], cells(since1), atol=1e-12)
    # float events (> 0.5 counts) work the same
    r_f, s_f = cells.step(torch.tensor([1.0, 0.0], dtype=torch.float64), state, dt)
    assert s_f.t_since[0].item() == 0.0 and s_f.t_since[1].item() > 0.4


def test_bad_input_raises() -> None:
    with pytest.raises(ParameterError, match="t_max"):
        TimeCellParams(t_min=1.0, t_max=0.5)
    with pytest.raises(ParameterError, match="t_min"):
        TimeCellParams(t_min=0.0)
    with pytest.raises(ParameterError, match="width"):
        TimeCellParams(width=-0.1)
    with pytest.raises(ParameterError, match="shape"):
        TimeCellParams(shape="cosine")
    cells = TimeCells()
    with pytest.raises(ParameterError, match="t_since"):
        cells(torch.tensor([math.nan]))
    state = cells.initial_state((3,))
    with pytest.raises(ShapeError, match="event"):
        cells.step(torch.zeros(2), state, 0.01)
    with pytest.raises(ParameterError, match="dt"):
        cells.step(torch.zeros(3), state, 0.0)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    cells = TimeCells(TimeCellParams(n=6, shape="laplace"))
    t = torch.linspace(0, 12, 100)
    ref = cells(t)
    gpu = cells.to("cuda")
    assert torch.allclose(gpu(t.cuda()).cpu(), ref, atol=1e-5)
    state = gpu.initial_state((2,))
    r, state = gpu.step(torch.tensor([True, False], device="cuda"), state, 0.01)
    assert r.device.type == "cuda" and state.t_since.device.type == "cuda"
