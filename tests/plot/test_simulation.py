"""Simulation figures from event lists: each writes a readable PNG, atomically, without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aura_snn.plot import simulation as fig

ROOT = Path(__file__).resolve().parents[2]


def _events(n: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    k = 5 * n
    return np.sort(rng.integers(0, steps, k)), rng.integers(0, n, k), n


@pytest.fixture()
def spikes() -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    return {"E": _events(40, 1000, 0), "I": _events(10, 1000, 1),
            "silent": (np.zeros(0, np.int64), np.zeros(0, np.int64), 5)}


def _png_shape(path: Path) -> tuple[int, ...]:
    plt = fig.pyplot()
    return plt.imread(path).shape


def test_every_figure_writes_a_png_and_leaves_no_temporary_file(tmp_path, spikes) -> None:
    dt, steps = 1e-4, 1000
    fig.save_event_raster(tmp_path / "raster.png", spikes, dt, steps, max_neurons=20)
    fig.save_population_rates(tmp_path / "rate.png", spikes, dt, steps, bin_s=2e-3)
    fig.save_isi_histogram(tmp_path / "isi.png", spikes, dt)
    fig.save_weight_histogram(tmp_path / "w.png", {"EE": np.full(30, 0.5e-3),
                                                   "IE": np.linspace(-2e-3, 0, 7),
                                                   "empty": np.zeros(0)})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["isi.png", "raster.png", "rate.png", "w.png"]
    for name in names:
        shape = _png_shape(tmp_path / name)
        assert len(shape) == 3 and shape[0] > 100 and shape[1] > 100


def test_figures_accept_no_regions(tmp_path) -> None:
    fig.save_event_raster(tmp_path / "r.png", {}, 1e-3, 10)
    fig.save_weight_histogram(tmp_path / "w.png", {})
    assert (tmp_path / "r.png").stat().st_size > 0 and (tmp_path / "w.png").stat().st_size > 0


def test_raster_and_simulation_share_one_saving_path() -> None:
    from aura_snn.plot import _figure, raster

    assert raster.save_figure is fig.save_figure is _figure.save_figure
    assert raster.pyplot is fig.pyplot is _figure.pyplot


def test_simulation_figures_import_without_torch() -> None:
    code = ("import sys\n"
            "import aura_snn.plot.simulation\n"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.stdout.split() == ["False"], r.stderr
