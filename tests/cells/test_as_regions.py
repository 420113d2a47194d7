"""Hippocampal populations as graph regions: place, grid and time cells drive spiking
regions through :class:`aura_snn.graph.ModuleRegion` (rates -> Poisson spikes)."""

from __future__ import annotations

import torch
from torch import nn

from aura_snn.cells import GridCells, GridParams, PlaceCells, TimeCellParams, TimeCells
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, ModuleRegion, SpikingRegion, one_to_one

DT = 1e-3


class _TimeSince(nn.Module):
    """Feeds time cells from a ``[B, 1]`` column of times since the event (s)."""

    def __init__(self, cells: TimeCells) -> None:
        super().__init__()
        self.cells = cells

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.cells(t[:, 0])


def test_place_cells_drive_a_lif_region_and_their_spikes_follow_the_tuning() -> None:
    g_cells = torch.Generator().manual_seed(0)
    place = PlaceCells.uniform(50, generator=g_cells)
    g = Graph(dt=DT, seed=1)
    g.add(ModuleRegion("place", place, 50))
    g.add(SpikingRegion("ca1", 50, "lif", LIFParameters(tau_mem=10e-3)))
    g.connect("place", "ca1", 60.0, connectivity=one_to_one(50))
    T, B = 2000, 4
    pos = torch.rand(B, 2, generator=g_cells)  # each batch element sits at one place
    with torch.no_grad():
        out = g.run(T, {"place": pos}, record=["place", "ca1"])
    spikes = out.outputs["place"]
    assert spikes.shape == (T, B, 50)
    expected = (1 - torch.exp(-place(pos) * DT)) * T      # Poisson count per cell
    counts = spikes.sum(0)
    active = expected > 5
    assert int(active.sum()) > 0
    # counts within 5 binomial standard deviations of the expectation, cell by cell
    sd = (expected * (1 - expected / T)).sqrt()
    assert bool(((counts - expected).abs() <= 5 * sd + 1)[active].all())
    assert int(counts[~active].sum()) <= int((~active).sum())  # silent cells stay ~silent
    assert out.outputs["ca1"].sum() > 0
    assert bool((out.outputs["ca1"].sum(0)[~active] == 0).all())


def test_grid_and_time_cells_run_as_regions() -> None:
    grid = GridCells(GridParams(n_modules=2, cells_per_module=8))
    time_cells = TimeCells(TimeCellParams(n=12, t_min=0.02, t_max=0.6, r_max=200.0))
    g = Graph(dt=DT, seed=3)
    g.add(ModuleRegion("grid", grid, grid.n))
    g.add(ModuleRegion("time", _TimeSince(time_cells), 12))
    T, B = 800, 2
    t_since = (torch.arange(T, dtype=torch.float32) * DT).view(T, 1, 1).expand(T, B, 1)
    with torch.no_grad():
        out = g.run(T, {"grid": torch.rand(B, 2), "time": t_since.contiguous()},
                    record=["grid", "time"])
    assert out.outputs["grid"].shape == (T, B, grid.n) and out.outputs["grid"].sum() > 0
    # time cells fire in sequence: early-preferring cells spike earlier on average
    s = out.outputs["time"].sum(1)  # [T, 12]
    t_idx = torch.arange(T, dtype=torch.float32).view(T, 1)
    mean_t = (s * t_idx).sum(0) / s.sum(0).clamp_min(1)
    fired = s.sum(0) > 3
    assert int(fired.sum()) >= 4
    assert bool((mean_t[fired].diff() > 0).float().mean() >= 0.75)
