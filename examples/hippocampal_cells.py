"""Place, grid and time cells in one figure.

* Place cells (hard kWTA, 3 % active): three fields, and the active cells at one position.
* Grid cells driven by path integration along a 10-minute random walk (50 Hz, 1 m box):
  rate maps from Poisson spikes with their gridness scores, one cell per module, and
  the autocorrelogram of the first.
* Time cells: rates after an event at t = 0, log-spaced and widening.

Run: ``python examples/hippocampal_cells.py --out out/cells.png``
"""

from __future__ import annotations

import argparse
import os

import torch

from aura_snn.cells import (
    GridCells,
    GridParams,
    PlaceCells,
    TimeCellParams,
    TimeCells,
    gaussian_smooth,
    gridness_analysis,
    random_walk,
    rate_map,
)
from aura_snn.plot import house_style, new_figure, save_figure


def _sheet(ax, title: str) -> None:  # noqa: ANN001
    """A map of the 1 m box: metres on both axes, square."""
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="x (m)", ylabel="y (m)",
           title=title)
    ax.grid(False)


def _colorbar(fig, ax, im, label: str) -> None:  # noqa: ANN001
    """A colour bar exactly as tall as the (square) map beside it, with its unit."""
    cax = ax.inset_axes([1.04, 0.0, 0.05, 1.0])
    fig.colorbar(im, cax=cax, label=label)


def _lines_in_order(ax, t, r) -> None:  # noqa: ANN001
    """One line per cell, coloured by its order (viridis), not by a cycling palette."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    for k in range(r.shape[1]):
        ax.plot(t, r[:, k], color=cmap(k / max(1, r.shape[1] - 1)))


def make_figure(seed: int = 0, walk_s: float = 600.0):  # noqa: ANN201 - a Figure
    """The figure: place, grid and time cells (``walk_s`` seconds of random walk)."""
    g = torch.Generator().manual_seed(seed)
    with house_style() as plt:
        fig, axes = new_figure(3, 4, width=15.0, height=11.0)
        fig.get_layout_engine().set(wspace=0.12)  # room for the inset colour bars

        # place cells: fields on a 60 x 60 grid of the 1 m box
        n = 60
        c = (torch.arange(n) + 0.5) / n
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        box = torch.stack([xx, yy], dim=-1)
        place = PlaceCells.uniform(400, generator=g)
        rates = place(box)  # [60, 60, 400]
        for k, ax in enumerate(axes[0, :3]):
            im = ax.imshow(rates[..., k * 7].numpy(), origin="lower", extent=(0, 1, 0, 1))
            _sheet(ax, f"place cell {k * 7} (hard kWTA)")
            _colorbar(fig, ax, im, "rate (Hz)")
        here = torch.tensor([0.4, 0.6])
        active = place(here) > 0
        ax = axes[0, 3]
        ax.scatter(*place.centres.T, s=4, c="0.7", label="field centres")
        ax.scatter(*place.centres[active].T, s=18, c="C1", label="active at +")
        ax.plot(*here, "k+", ms=12)
        _sheet(ax, f"active at +: {int(active.sum())}/400 = {place.measured_sparsity:.1%}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)

        # grid cells: path integration along the walk, Poisson spikes, rate maps
        dt = 0.02
        walk = random_walk(walk_s, dt, generator=g)
        grid = GridCells(GridParams(n_modules=3, cells_per_module=4, orientation=0.1,
                                    orientation_step=0.25))
        rates, _ = grid.integrate(walk.velocities.float(),
                                  grid.initial_state(walk.start.float()), dt)
        spikes = torch.poisson(rates * dt, generator=g)
        maps = rate_map(walk.positions, spikes, bins=32, dt=dt)
        result = gridness_analysis(maps)
        for m, ax in enumerate(axes[1, :3]):
            cell = m * 4
            shown = gaussian_smooth(torch.nan_to_num(maps[cell]), 1.0)  # display only
            im = ax.imshow(shown.numpy(), origin="lower", extent=(0, 1, 0, 1))
            _sheet(ax, f"grid module {m}: {grid.spacing[m]:.2f} m, gridness "
                       f"{result.score[cell]:.2f}")
            _colorbar(fig, ax, im, "rate, smoothed (Hz)")
        ax = axes[1, 3]
        ac = result.autocorrelogram[0]
        half = (ac.shape[-1] - 1) / 2
        im = ax.imshow(ac.numpy(), origin="lower", cmap="RdBu_r", vmin=-1, vmax=1,
                       extent=(-half - 0.5, half + 0.5, -half - 0.5, half + 0.5))
        for radius in (result.inner_radius[0], result.outer_radius[0]):  # scored annulus
            ax.add_patch(plt.Circle((0, 0), float(radius), fill=False, color="k", lw=0.8))
        ax.set(title="autocorrelogram of cell 0, annulus", xlabel="x lag (bins)",
               ylabel="y lag (bins)", aspect="equal")
        ax.grid(False)
        _colorbar(fig, ax, im, "correlation (r)")

        # time cells
        cells = TimeCells(TimeCellParams(n=12, t_min=0.2, t_max=8.0, width=0.2))
        t = torch.linspace(0, 12, 1200)
        r = cells(t)
        ax = axes[2, 0]
        _lines_in_order(ax, t.numpy(), r.numpy())
        ax.set(xlabel="time since event (s)", ylabel="rate (Hz)", title="time cells (gaussian)")
        ax = axes[2, 1]
        _lines_in_order(ax, t.numpy(), r.numpy())
        ax.set(xscale="log", xlim=(0.05, 12), xlabel="time since event (s, log scale)",
               ylabel="rate (Hz)", title="same, log time: equal spacing and width")
        ax = axes[2, 2]
        laplace = TimeCells(TimeCellParams(n=12, t_min=0.2, t_max=8.0, width=0.2,
                                           shape="laplace"))
        im = ax.imshow(laplace(t).T.numpy(), aspect="auto", origin="lower",
                       extent=(0, 12, -0.5, 11.5))
        ax.set(xlabel="time since event (s)", ylabel="cell",
               title="time cells (laplace), sequence")
        ax.grid(False)
        _colorbar(fig, ax, im, "rate (Hz)")
        ax = axes[2, 3]
        first = int(round(60.0 / dt))
        ax.plot(walk.positions[:first, 0].numpy(), walk.positions[:first, 1].numpy(), lw=0.5)
        _sheet(ax, "first minute of the walk")
    fig.gridness = result.score  # for the caller's printout
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/cells.png", help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fig = make_figure(args.seed)
    scores = fig.gridness
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    save_figure(fig, args.out, dpi=90)
    print(f"wrote {args.out}; gridness per cell: "
          + ", ".join(f"{s:.2f}" for s in scores.tolist()))


if __name__ == "__main__":
    main()
