"""``aura-snn simulate FILE --out DIR``: run a network file and write its results.

Writes into ``DIR``:

* ``spikes_<region>.npz`` (or ``.h5``) — spike events of every neuron region
  (``t`` step, ``b`` batch, ``i`` neuron), streamed during the run;
* ``monitor_<target>_<variable>.npz`` — one file per ``[[monitor]]``;
* ``summary.json`` — per region: rate, CV of ISI, synchrony; per projection:
  synapses and weights; run settings and timings;
* ``raster.png``, ``population_rate.png``, ``isi_histogram.png``,
  ``weight_histogram.png`` (unless ``--no-plots``);
* ``network.<ext>`` — a copy of the file that was run.

Nothing is half-written: everything goes to a staging folder beside ``DIR`` and each
file is moved into ``DIR`` (atomic renames) only after the simulation and the
summary succeeded; on an error the staging folder is removed and ``DIR`` is left
as it was. User errors (bad file, bad field) print one line naming the file, line
and field and exit with status 2.

The library code it calls: :mod:`aura_snn.graph.config` (file -> graph),
:class:`aura_snn.graph.Graph` (run, recorders), :mod:`aura_snn.metrics.events`
(statistics) and :mod:`aura_snn.plot.simulation` (figures). Only :mod:`argparse` is
imported at module import time, so ``aura-snn --help`` stays fast; the simulation
imports its modules inside :func:`run`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``simulate`` options on ``parser``."""
    parser.description = ("Run a network described by a TOML or YAML file (regions, "
                          "projections, connectivity, inputs, duration, monitors, seed) and "
                          "write spikes, a JSON summary (rates, CV of ISI, synchrony) and "
                          "PNG plots.")
    parser.epilog = ("Example: aura-snn simulate examples/cuba.toml --out out/cuba. The file "
                     "format is documented in aura_snn/graph/config.py.")
    parser.add_argument("file", help="network file (.toml, .yaml or .yml)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (created; existing files of the same names are "
                             "replaced)")
    parser.add_argument("--backend", choices=("auto", "engine", "torch"),
                        help="override [simulation].backend")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="override [simulation].duration (s)")
    parser.add_argument("--seed", type=int, help="override [simulation].seed")
    parser.add_argument("--dtype", choices=("float64", "float32"),
                        help="override [simulation].dtype")
    parser.add_argument("--format", choices=("npz", "h5"), help="override [output].format")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``simulate``; returns the exit status (0 ok, 2 user error)."""
    import sys

    from ..errors import AuraError

    try:
        return _run(args)
    except (AuraError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"aura-snn simulate: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import contextlib
    import os
    import shutil
    import sys
    import tempfile
    import time
    from pathlib import Path

    from ..graph.config import load_config

    t_start = time.perf_counter()
    cfg = load_config(args.file)
    if args.duration is not None:
        if not args.duration >= cfg.dt:
            raise _cfg_error(f"--duration must be at least one step ({cfg.dt} s), got "
                             f"{args.duration}")
        cfg.duration = float(args.duration)
    if args.seed is not None:
        if args.seed < 0:
            raise _cfg_error(f"--seed must be >= 0, got {args.seed}")
        cfg.seed = args.seed
    cfg.backend = args.backend or cfg.backend
    cfg.dtype = args.dtype or cfg.dtype
    fmt = args.format or cfg.output["format"]
    plots = cfg.output["plots"] and not args.no_plots

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _cfg_error(f"--out {str(out)!r} exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        summary = _simulate(cfg, staging, fmt, plots, quiet=args.quiet, t_start=t_start)
        out.mkdir(parents=True, exist_ok=True)
        names = sorted(p.name for p in staging.iterdir())
        umask = os.umask(0)
        os.umask(umask)
        for name in names:  # temporary files are created 0600; results follow the umask
            os.chmod(staging / name, 0o666 & ~umask)
            os.replace(staging / name, out / name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    line = ", ".join(f"{n} {r['rate_hz']:.3g} Hz" for n, r in summary["regions"].items()
                     if r["rate_hz"] is not None)
    print(f"simulated {summary['duration_s']:g} s ({summary['steps']} steps, "
          f"{summary['backend']}) in {summary['timing_s']['simulate']:.3g} s; {line}; "
          f"wrote {len(names)} files to {out}", file=sys.stdout)
    return 0


def _cfg_error(msg: str) -> Exception:
    from ..errors import ConfigError

    return ConfigError(msg)


def _simulate(cfg, staging, fmt: str, plots: bool, *, quiet: bool,  # noqa: ANN001
              t_start: float) -> dict:
    import json
    import shutil
    import time

    from .._io import atomic_write_json
    from ..errors import AuraError
    from ..graph.config import build_graph, monitor_specs, params_dict
    from ..graph.recorder import load_recording
    from ..metrics.events import region_summary

    plotter = _PlotWorker() if plots else None  # imports matplotlib in parallel
    try:
        t0 = time.perf_counter()
        built = build_graph(cfg)
        g = built.graph
        ext = "npz" if fmt == "npz" else "h5"
        spiking = [n for n, r in g.regions.items() if r.kind == "spiking"]
        files: dict[str, str] = {}
        for n in spiking:
            g.monitor(n, "spikes", to=staging / f"spikes_{n}.{ext}")
            files[f"spikes_{n}"] = f"spikes_{n}.{ext}"
        for spec, path in monitor_specs(cfg):
            if spec["variable"] == "spikes" and spec["target"] in spiking:
                continue
            fname = f"monitor_{spec['target']}_{spec['variable'].replace(':', '-')}.{ext}"
            try:
                g.monitor(spec["target"], spec["variable"], neurons=spec["neurons"],
                          every=spec["every"], to=staging / fname)
            except AuraError as exc:
                raise cfg.error((*path, "variable"), str(exc)) from None
            files[f"monitor_{spec['target']}_{spec['variable']}"] = fname
        t_build = time.perf_counter() - t0

        import torch

        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                res = g.run(built.steps, built.inputs, backend=cfg.backend,
                            progress=not quiet)
        except AuraError as exc:
            raise cfg.error(("simulation", "backend"), str(exc)) from None
        g.close_monitors()
        t_sim = time.perf_counter() - t0

        t0 = time.perf_counter()
        steps, dt = built.steps, cfg.dt
        spikes, regions, weights, projections = {}, {}, {}, {}
        for n in spiking:
            rec = load_recording(staging / files[f"spikes_{n}"])
            spikes[n] = (rec["t"], rec["i"], g.regions[n].size)
        coo = {name: p.to_coo() for name, p in g.projections.items()}
        for name, (_, _, w, _) in coo.items():
            weights[name] = w
        if plotter is not None:  # the child draws while this process summarises
            plotter.submit(staging, spikes, weights, dt, steps,
                           int(cfg.output["raster_neurons"]))
        for n, (t, i, size) in spikes.items():
            regions[n] = {**region_summary(t, i, size, steps, dt),
                          "model": g.regions[n].model,
                          "params": params_dict(g.regions[n].params())}
        for name, p in g.projections.items():
            _, _, w, d = coo[name]
            projections[name] = {
                "pre": p.pre, "post": p.post, "receptor": p.receptor, "synapses": int(w.size),
                "weight_mean": float(w.mean()) if w.size else None,
                "weight_std": float(w.std()) if w.size else None,
                "delay_steps_max": int(d.max()) if d.size else 0}
        shutil.copyfile(cfg.path, staging / f"network{cfg.path.suffix.lower()}")
        if plotter is not None:
            plotter.wait()
        t_write = time.perf_counter() - t0
        summary = {
            "network": str(cfg.path), "duration_s": steps * dt, "dt_s": dt, "steps": steps,
            "seed": cfg.seed, "dtype": cfg.dtype, "backend": res.backend,
            "regions": regions, "projections": projections,
            "files": sorted(files.values()) + (
                ["raster.png", "population_rate.png", "isi_histogram.png",
                 "weight_histogram.png"] if plotter is not None else []),
            "timing_s": {"build": t_build, "simulate": t_sim, "write": t_write,
                         "total": time.perf_counter() - t_start},
            "speed_x_realtime": steps * dt / t_sim if t_sim > 0 else None,
        }
        atomic_write_json(staging / "summary.json", summary)
        json.dumps(summary)  # fail here, not later, if something is not serialisable
        return summary
    finally:
        if plotter is not None:
            plotter.close()


class _PlotWorker:
    """Draws the PNGs in a child process that starts importing matplotlib at once, in
    parallel with building and simulating (matplotlib's import costs about a second).
    Falls back to drawing in this process if the child cannot be started."""

    def __init__(self) -> None:
        import multiprocessing as mp

        self.proc = None
        try:
            ctx = mp.get_context("fork")
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(target=_plot_child, args=(child,), daemon=True)
            self.proc.start()
            child.close()
        except (OSError, ValueError, RuntimeError):  # pragma: no cover - no fork
            self.proc = None
        self.job = None

    def submit(self, staging, spikes, weights, dt, steps, raster_neurons) -> None:  # noqa: ANN001
        self.job = (str(staging), spikes, weights, dt, steps, raster_neurons)
        if self.proc is not None:
            self.conn.send(self.job)

    def wait(self) -> None:
        if self.job is None:
            return
        if self.proc is None:
            _draw(*self.job)
            return
        status = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"plotting failed: {status}")

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.terminate()
            self.proc.join(timeout=5)
            self.proc = None


def _plot_child(conn) -> None:  # noqa: ANN001 - runs in the child process
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - the point is to pay the import now

    try:
        job = conn.recv()
    except EOFError:
        return
    try:
        _draw(*job)
        conn.send("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send(f"{type(exc).__name__}: {exc}")


def _draw(staging, spikes, weights, dt, steps, raster_neurons) -> None:  # noqa: ANN001
    from pathlib import Path

    from ..plot import simulation as fig

    st = Path(staging)
    fig.save_event_raster(st / "raster.png", spikes, dt, steps, max_neurons=raster_neurons)
    fig.save_population_rates(st / "population_rate.png", spikes, dt, steps)
    fig.save_isi_histogram(st / "isi_histogram.png", spikes, dt)
    fig.save_weight_histogram(st / "weight_histogram.png", weights)
