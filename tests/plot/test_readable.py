"""The simulation figures stay readable at any duration (issue "Hardening what landed",
item 18): rate bins adapt to the run (widths checked by hand), the raster shows a window
with the whole run as a rate trace above it, each region and projection gets its own
panel (none hides another), weights are in mV and intervals in ms, a silent network
draws without warnings, and the examples' maps say what their axes and colours are."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from aura_snn.plot import simulation as fig

ROOT = Path(__file__).resolve().parents[2]
DT = 1e-4


def _poisson(n: int, steps: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    k = rng.poisson(rate * n * steps * DT)
    t = np.sort(rng.integers(0, steps, k))
    return t, rng.integers(0, n, k), n


@pytest.fixture(scope="module")
def long_run() -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    steps = 1_000_000   # 100 s at 0.1 ms
    return {"E": _poisson(400, steps, 5.0, 0), "I": _poisson(100, steps, 20.0, 1)}


@pytest.mark.parametrize("steps,dt,bin_steps", [
    (10_000, 1e-4, 20),        # 1 s: 1 s / 500 = 2 ms
    (1_000_000, 1e-4, 2000),   # 100 s: 0.2 s
    (30_000, 1e-4, 100),       # 3 s: 6 ms -> the next 1-2-5 value, 10 ms
    (100, 1e-4, 1),            # 10 ms: 20 us is below dt: one step
    (1000, 1e-3, 2),           # 1 s at 1 ms: 2 ms
    (36_000_000, 1e-4, 100_000),  # an hour: 7.2 s -> 10 s
])
def test_rate_bins_adapt_to_the_duration(steps: int, dt: float, bin_steps: int) -> None:
    assert fig.rate_bin_steps(steps, dt) == bin_steps


def test_population_rate_at_100_s_has_200_ms_bins_one_panel_per_region(long_run) -> None:
    f = fig.population_rate_figure(long_run, DT, 1_000_000)
    axes = [ax for ax in f.axes if ax.lines]
    assert len(axes) == 2                               # E and I: neither hides the other
    for ax, (name, (t, _i, n)) in zip(axes, long_run.items(), strict=True):
        x, y = ax.lines[0].get_data()
        assert np.allclose(np.diff(x), 0.2) and len(x) == 500
        # bin 0 by hand: spikes in the first 2000 steps over n neurons and 0.2 s
        assert y[0] == pytest.approx(np.sum(t < 2000) / (n * 0.2))
        assert name in ax.get_title("left") and "Hz" in ax.get_ylabel()
        assert ax.get_xlim()[1] == pytest.approx(100.0)
    assert "0.2 s bins" in f.axes[0].get_title() + f._suptitle.get_text()


def test_raster_at_100_s_shows_the_last_second_under_the_whole_run(long_run) -> None:
    f = fig.event_raster_figure(long_run, DT, 1_000_000, max_neurons=50)
    rate_ax, raster_ax = f.axes[0], f.axes[1]
    assert rate_ax.get_xlim() == pytest.approx((0.0, 100.0))       # the whole run, s
    assert "(s)" in rate_ax.get_xlabel()
    assert raster_ax.get_xlim() == pytest.approx((0.0, 1000.0))   # ms after 99 s
    assert raster_ax.get_xlabel() == "time after 99 s (ms)"
    # the dots are the spikes of the window of the 50 (E) and 50 (I) neurons shown
    shown = 0
    for t, i, n in long_run.values():
        pick = np.unique(np.linspace(0, n - 1, min(n, 50)).round().astype(int))
        shown += int(np.sum((t >= 990_000) & np.isin(i, pick)))
    assert sum(len(c.get_offsets()) for c in raster_ax.collections) == shown


def test_raster_window_can_be_chosen(long_run) -> None:
    f = fig.event_raster_figure(long_run, DT, 1_000_000, window=(10.0, 10.5))
    assert f.axes[1].get_xlim() == pytest.approx((0.0, 500.0))
    assert f.axes[1].get_xlabel() == "time after 10 s (ms)"
    f = fig.event_raster_figure(long_run, DT, 1_000_000, window=(20.0, 80.0))
    assert f.axes[1].get_xlim() == pytest.approx((20.0, 80.0))
    assert f.axes[1].get_xlabel() == "time (s)"
    with pytest.raises(ValueError, match="does not overlap"):
        fig.event_raster_figure(long_run, DT, 1_000_000, window=(200.0, 300.0))


def test_short_run_raster_is_in_ms_over_the_whole_run() -> None:
    sp = {"E": _poisson(40, 500, 20.0, 2)}
    f = fig.event_raster_figure(sp, DT, 500)
    assert f.axes[1].get_xlim() == pytest.approx((0.0, 50.0))
    assert "(ms)" in f.axes[1].get_xlabel()


def test_weights_in_mV_one_panel_per_projection_without_a_legend() -> None:
    w = {"EE": np.full(2000, 1.62e-3), "EI": np.full(500, 1.62e-3),
         "IE": np.full(500, -9e-3), "II": np.full(100, -9e-3)}
    f = fig.weight_figure(w)
    axes = [ax for ax in f.axes if ax.patches]
    assert len(axes) == 4
    for ax, (name, values) in zip(axes, w.items(), strict=True):
        assert ax.get_legend() is None
        lefts = [p.get_x() for p in ax.patches if p.get_height() > 0]
        rights = [p.get_x() + p.get_width() for p in ax.patches if p.get_height() > 0]
        assert min(lefts) <= values[0] * 1e3 <= max(rights)             # drawn in mV
        assert sum(p.get_height() for p in ax.patches) == values.size
        label = " ".join(t.get_text() for t in ax.texts)
        assert name in label and f"{values[0] * 1e3:.3g} mV" in label
    assert axes[-1].get_xlabel() == "weight (mV)"


def test_isi_histogram_in_ms_with_the_legend_outside_the_data() -> None:
    sp = {"E": _poisson(40, 10_000, 20.0, 3), "I": _poisson(10, 10_000, 50.0, 4)}
    f = fig.isi_figure(sp, DT)
    ax = f.axes[0]
    assert ax.get_xlabel() == "inter-spike interval (ms)"
    legend = ax.get_legend()
    assert legend is not None
    f.canvas.draw()
    box = legend.get_window_extent().transformed(ax.transAxes.inverted())
    assert box.x0 >= 1.0                                   # right of the axes


def test_region_colours_are_the_same_in_every_figure(long_run) -> None:
    from matplotlib.colors import to_hex

    rate = fig.population_rate_figure(long_run, DT, 1_000_000)
    raster = fig.event_raster_figure(long_run, DT, 1_000_000)
    c_rate = [to_hex(ax.lines[0].get_color()) for ax in rate.axes if ax.lines]
    c_raster = [to_hex(c.get_edgecolor()[0] if len(c.get_edgecolor()) else c.get_facecolor()[0])
                for c in raster.axes[1].collections]
    assert c_rate == c_raster == [to_hex(fig.region_color(k)) for k in range(2)]


def test_silent_network_draws_every_figure_without_warnings(tmp_path: Path) -> None:
    silent = {"E": (np.zeros(0, np.int64), np.zeros(0, np.int64), 30),
              "I": (np.zeros(0, np.int64), np.zeros(0, np.int64), 10)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.save_event_raster(tmp_path / "r.png", silent, DT, 10_000)
        fig.save_population_rates(tmp_path / "p.png", silent, DT, 10_000)
        fig.save_isi_histogram(tmp_path / "i.png", silent, DT)
        fig.save_weight_histogram(tmp_path / "w.png", {"EI": np.zeros(0)})
    assert len(list(tmp_path.iterdir())) == 4


def _load_example(name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hippocampal_maps_have_axis_labels_and_colour_bar_units() -> None:
    f = _load_example("hippocampal_cells").make_figure(seed=0)
    images = [ax for ax in f.axes if ax.images]
    assert len(images) >= 8    # 3 place fields, 3 grid maps, autocorrelogram, laplace cells
    for ax in images:
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title("left")
        bar = ax.images[0].colorbar
        assert bar is not None, ax.get_title("left")
        label = bar.ax.get_ylabel()
        assert "(" in label and label.endswith(")"), label   # a quantity and its unit


NET = """\
[simulation]
dt = "0.1 ms"
duration = "50 ms"

[[region]]
name = "noise"
size = 20
model = "poisson"
rate = "100 Hz"

[[region]]
name = "E"
size = 30
model = "cuba_refractory"

[[projection]]
pre = "noise"
post = "E"
weight = "3 mV"
connectivity = { rule = "fixed_probability", p = 0.2 }
"""


@pytest.mark.parametrize("value,window", [
    (None, (0.0, 0.05)),                     # a 50 ms run: all of it
    ('"20 ms"', (0.03, 0.05)),               # the last 20 ms
    ('["10 ms", "20 ms"]', (0.01, 0.02)),
    ('["40 ms", "1 s"]', (0.04, 0.05)),      # clipped to the run
])
def test_raster_window_from_the_network_file(tmp_path: Path, value: str | None,
                                             window: tuple[float, float]) -> None:
    from aura_snn.graph.config import load_config, raster_window_of

    text = NET + ("" if value is None else f"\n[output]\nraster_window = {value}\n")
    (tmp_path / "net.toml").write_text(text)
    assert raster_window_of(load_config(tmp_path / "net.toml")) == pytest.approx(window)


def test_raster_window_after_the_run_is_one_error_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aura_snn.cli import main

    text = NET + '\n[output]\nraster_window = ["5 s", "6 s"]\n'
    (tmp_path / "net.toml").write_text(text)
    assert main(["simulate", str(tmp_path / "net.toml"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    line = text.splitlines().index('raster_window = ["5 s", "6 s"]') + 1
    assert capsys.readouterr().err == (
        f"aura-snn simulate: error: net.toml:{line}: output.raster_window: starts at 5 s, "
        f"after the end of the run (0.05 s)\n")
    assert not (tmp_path / "o").exists()
