"""Gridness score and rate maps; the grid-cell validation on a 10-minute random walk."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.cells import (
    GridCells,
    GridParams,
    autocorrelogram,
    gaussian_smooth,
    gridness,
    gridness_analysis,
    random_walk,
    rate_map,
)
from aura_snn.errors import InputValueError, ParameterError, ShapeError


def _box(n: int) -> torch.Tensor:
    """Bin centres of an ``n x n`` map of the unit box, ``[n, n, 2]`` (x, y)."""
    c = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def test_ideal_hexagonal_maps_score_high() -> None:
    cells = GridCells(GridParams(n_modules=2, cells_per_module=3, spacing=0.3,
                                 orientation=0.4), dtype=torch.float64)
    maps = cells(_box(48)).permute(2, 0, 1)
    res = gridness_analysis(maps)
    assert (res.score > 1.0).all(), res.score
    assert (res.score <= 2.0).all()
    # the annulus holds the six inner peaks: inner radius below, outer radius beyond
    spacing_bins = (cells.spacing * 48).repeat_interleave(3)
    assert (res.inner_radius < spacing_bins).all() and (res.outer_radius > spacing_bins).all()
    # r60 and r120 near 1 for a hexagonal pattern
    assert (res.correlations[:, [1, 3]] > 0.8).all()


def test_square_grid_scores_low_and_noise_near_zero() -> None:
    k = 2 * math.pi / 0.3
    xy = _box(48)
    square = torch.cos(k * xy[..., 0]) + torch.cos(k * xy[..., 1])
    res = gridness_analysis(square)
    assert res.score < -0.5
    assert res.correlations[2] > 0.8  # r90 high
    g = torch.Generator().manual_seed(0)
    noise = gridness(torch.rand(40, 32, 32, generator=g, dtype=torch.float64))
    assert abs(float(noise.median())) < 0.15
    assert float(torch.quantile(noise, 0.9)) < 0.3


def test_autocorrelogram_centre_symmetry_and_nan_handling() -> None:
    g = torch.Generator().manual_seed(1)
    m = gaussian_smooth(torch.rand(20, 24, generator=g, dtype=torch.float64), 1.0)
    m[3, 4] = math.nan
    ac = autocorrelogram(m)
    assert ac.shape == (39, 47)
    assert ac[19, 23].item() == pytest.approx(1.0)
    assert torch.allclose(ac, ac.flip(-1, -2), equal_nan=True)  # A(-tau) = A(tau)
    # a direct Pearson at one lag agrees with the FFT version
    dy, dx = 2, -3
    a = m[0:18, 3:24].flatten()
    b = m[2:20, 0:21].flatten()
    ok = ~(torch.isnan(a) | torch.isnan(b))
    direct = torch.corrcoef(torch.stack([a[ok], b[ok]]))[0, 1]
    assert ac[19 + dy, 23 + dx].item() == pytest.approx(direct.item(), abs=1e-10)


def test_rate_map_occupancy_normalised() -> None:
    positions = torch.tensor([[0.1, 0.1], [0.1, 0.1], [0.9, 0.1], [0.1, 0.9]])
    spikes = torch.tensor([1.0, 3.0, 0.0, 5.0])
    m = rate_map(positions, spikes, arena=(1.0, 1.0), bins=2, dt=0.5)
    # bin (y=0, x=0): 4 spikes in 2 samples of 0.5 s = 4 Hz; unvisited bin NaN
    assert m[0, 0].item() == pytest.approx(4.0)
    assert m[0, 1].item() == 0.0 and m[1, 0].item() == pytest.approx(10.0)
    assert math.isnan(m[1, 1].item())
    rates = torch.stack([spikes, 2 * spikes], dim=1)
    mr = rate_map(positions, rates, arena=(0.0, 1.0, 0.0, 1.0), bins=(2, 2))
    assert mr.shape == (2, 2, 2) and mr[1, 0, 0].item() == pytest.approx(4.0)
    smooth = rate_map(positions, spikes, bins=2, dt=0.5, smooth=1.0)
    assert math.isnan(smooth[1, 1].item()) and torch.isfinite(smooth[:1]).all()


def test_grid_cells_from_random_walk_pass_gridness_and_shuffle_does_not() -> None:
    """The validation: 10 min at 50 Hz in a 1 m box, path integration, Poisson spikes."""
    dt = 0.02
    g = torch.Generator().manual_seed(7)
    walk = random_walk(600.0, dt, arena=(1.0, 1.0), generator=g)
    cells = GridCells(GridParams(n_modules=3, cells_per_module=8, spacing=0.3,
                                 orientation=0.1, orientation_step=0.25))  # 0.30/0.43/0.60 m
    rates, _ = cells.integrate(walk.velocities.float(), cells.initial_state(walk.start.float()),
                               dt)
    spikes = torch.poisson(rates * dt, generator=g)
    maps = rate_map(walk.positions, spikes, arena=(1.0, 1.0), bins=32, dt=dt)
    scores = gridness(maps)
    assert (scores >= 0.8).all(), scores
    # control: spikes shuffled against positions, 10 shuffles per cell
    T = spikes.shape[0]
    shuffled = torch.cat([rate_map(walk.positions, spikes[torch.randperm(T, generator=g)],
                                   arena=(1.0, 1.0), bins=32, dt=dt) for _ in range(10)])
    null = gridness(shuffled).view(10, -1)
    assert (null.mean(0) < 0.3).all(), null.mean(0)
    assert float(torch.quantile(null.flatten(), 0.95)) < 0.3
    assert (scores > null.amax(0)).all()  # every cell beats all of its own shuffles


def test_bad_input_raises() -> None:
    with pytest.raises(ShapeError, match="positions"):
        rate_map(torch.zeros(5, 3), torch.zeros(5))
    with pytest.raises(ShapeError, match="samples"):
        rate_map(torch.zeros(5, 2), torch.zeros(4))
    with pytest.raises(InputValueError, match="outside the arena"):
        rate_map(torch.tensor([[1.5, 0.2]]), torch.zeros(1))
    with pytest.raises(ParameterError, match="arena"):
        rate_map(torch.zeros(1, 2), torch.zeros(1), arena=(1.0, 0.0, 1.0))
    with pytest.raises(ParameterError, match="bins"):
        rate_map(torch.zeros(1, 2), torch.zeros(1), bins=1)
    with pytest.raises(ParameterError, match="dt"):
        rate_map(torch.zeros(1, 2), torch.zeros(1), dt=-0.02)
    with pytest.raises(ShapeError, match="rate_map"):
        gridness(torch.zeros(5))
    with pytest.raises(InputValueError, match="infinite"):
        gridness(torch.full((8, 8), math.inf))
    with pytest.raises(ParameterError, match="min_width"):
        gridness(torch.rand(8, 8), min_width=0)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    cells = GridCells(GridParams(n_modules=1, cells_per_module=2), dtype=torch.float64)
    maps = cells(_box(32)).permute(2, 0, 1)
    ref = gridness(maps)
    out = gridness(maps.cuda())
    assert out.device.type == "cuda" and torch.allclose(out.cpu(), ref, atol=1e-6)
    positions = torch.rand(500, 2, device="cuda")
    m = rate_map(positions, torch.ones(500, device="cuda"), bins=8, smooth=1.0)
    assert m.device.type == "cuda"
