"""``aura-snn simulate FILE --out DIR``: run a network file and write its results.

Writes into ``DIR``:

* ``spikes_<region>.npz`` (or ``.h5``) — spike events of every neuron region
  (``t`` step, ``b`` batch, ``i`` neuron), streamed during the run;
* ``monitor_<target>_<variable>.npz`` — one file per ``[[monitor]]``;
* ``summary.json`` — per region: rate, CV of ISI, synchrony; per projection:
  synapses and weights; run settings and timings; with ``--workers N`` the
  partition, window, exchange count and bytes, snapshots and recoveries under
  ``"distributed"`` (:mod:`aura_snn.graph.distributed`: the same results as one
  process; snapshots with ``--checkpoint-every K --checkpoint-dir DIR``, continued by
  ``--resume DIR``: :mod:`._checkpoint`); with
  ``--energy TARGET``, the
  run's operation counts, energy and sparsity report under ``"energy"``;
* ``raster.png``, ``population_rate.png``, ``isi_histogram.png``,
  ``weight_histogram.png`` (unless ``--no-plots``);
* with ``plasticity`` in the file, per plastic projection ``weights_<projection>.npz``
  (weights before and after) and ``weight_trajectory_<projection>.npz`` (sampled
  synapses), their statistics in ``summary.json``, and ``weights_before_after.png``,
  ``weight_trajectories.png`` (:mod:`._plasticity`);
* ``network.<ext>`` — a copy of the file that was run;
* ``manifest.json`` — the names of the files above that this run wrote.

Nothing is half-written and nothing is written before the run succeeded: the network
is sized first (one that does not fit in memory is refused with its estimate), the
results go to a hidden staging folder in the nearest existing folder above ``DIR``,
and only after the simulation and the summary succeeded are the missing parents of
``DIR`` created and each file moved in (atomic renames). A previous run's output in
``DIR`` is replaced whole: the files its ``manifest.json`` lists that this run does
not write again are removed; other files in ``DIR`` are never touched, and a
``manifest.json`` we did not write is refused. On an error, Ctrl+C or SIGTERM the
staging folder is removed and ``DIR`` is left as it was.

Exit status: 0; 2 for a user error (bad file, field or option; a network too large),
printed as one line ``file:line: field: message``; 130 on Ctrl+C; 143 on SIGTERM.

The library code it calls: :mod:`aura_snn.graph.config` (file -> graph),
:class:`aura_snn.graph.Graph` (run, recorders), :mod:`aura_snn.metrics.events`
(statistics) and :mod:`aura_snn.plot.simulation` (figures). Only :mod:`argparse` is
imported at module import time, so ``aura-snn --help`` stays fast; the simulation
imports its modules inside :func:`run`.

``--energy TARGET`` is served by a report plugin, never imported by the core (the
import rule of ``DESIGN.md``): the entry point ``energy`` of the group
``aura_snn.reports`` (``hardware.energy_graph:simulate_report`` in ``setup.cfg``)
takes the target name and returns an object whose ``attach(graph)`` adds an operation
counter before the run and whose ``report(steps, backend)`` gives the JSON report
after it. Without ``--energy`` nothing is counted.
"""

from __future__ import annotations

import argparse

#: Entry point group of the reports ``simulate`` can add to ``summary.json``.
REPORT_GROUP = "aura_snn.reports"


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
                        help="output folder (created; the files of a previous run into it "
                             "are replaced, other files are kept)")
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
    parser.add_argument("--energy", metavar="TARGET",
                        help="count the run's synaptic ops, membrane updates and spikes and "
                             "add their energy on TARGET (cmos45, loihi, gpu) and the "
                             "sparsity to summary.json (needs the hardware package)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="run the regions on N Ray workers (automatic partition; the "
                             "same outputs as one process; needs the distributed extra)")
    parser.add_argument("--address", metavar="ADDR",
                        help="with --workers: a Ray cluster (ray://host:port or host:port) "
                             "instead of a local one")
    from . import _checkpoint

    _checkpoint.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``simulate``; returns the exit status: 0 ok, 2 a user error (one line on
    stderr naming the file, line and field), 130 on Ctrl+C (SIGINT), 143 on SIGTERM."""
    import sys

    from ..errors import AuraError

    stops = _Signals()
    started = {"progress": False}
    try:
        with stops:
            return _run(args, stops, started)
    except (_Stop, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, _Stop) else 2
        name = "interrupted" if signum == 2 else "terminated"
        msg, status = f"aura-snn simulate: {name}; nothing was written to {args.out}", \
            128 + signum
    except (AuraError, OSError) as exc:
        msg, status = f"aura-snn simulate: error: {exc}", 2
    if started["progress"]:
        _close_progress_bars()
    print(msg, file=sys.stderr)
    return status


def _close_progress_bars() -> None:
    """Close the progress bar of a run that stopped half-way (it clears its line), so
    the error is the last line on the terminal, not followed by the bar's remains."""
    import sys

    tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` swallows it and every ``finally`` runs)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """While entered (in the main thread), SIGINT and SIGTERM raise :class:`_Stop`, so
    the staging folder is removed as for any other error. While ``defer`` is set (the
    results are being moved into place) a signal is only recorded and reported at the
    end; after the first signal, later ones are recorded too, so cleanup is not
    interrupted."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self.defer = False
        self.saved: dict[int, object] = {}

    def _handler(self, signum: int, frame: object) -> None:
        if self.defer or self.pending is not None:
            self.pending = self.pending or signum
            return
        self.pending = signum
        raise _Stop(signum)

    def __enter__(self) -> _Signals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, old in self.saved.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self.saved.clear()


def _run(args: argparse.Namespace, stops: _Signals, started: dict) -> int:
    import contextlib
    import os
    import shutil
    import sys
    import tempfile
    import time
    from pathlib import Path

    from ..graph.config import duration_problem, load_config, raster_window_of

    t_start = time.perf_counter()
    cfg = load_config(args.file)
    if args.duration is not None:
        problem = duration_problem(float(args.duration), cfg.dt)
        if problem:
            raise _cfg_error(f"--duration: {problem}")
        cfg.duration = float(args.duration)
    if args.seed is not None:
        if args.seed < 0:
            raise _cfg_error(f"--seed: must be >= 0, got {args.seed}")
        cfg.seed = args.seed
    cfg.backend = args.backend or cfg.backend
    energy = None if args.energy is None else _report_plugin("--energy", "energy",
                                                              args.energy)
    cfg.dtype = args.dtype or cfg.dtype
    from . import _checkpoint

    ray_run = {**_ray_options(args, cfg.backend), **_checkpoint.options(args)}
    fmt = args.format or cfg.output["format"]
    plots = cfg.output["plots"] and not args.no_plots
    if plots:
        raster_window_of(cfg)  # a window after the end of the run: say so before running

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _cfg_error(f"--out: {str(out)!r} exists and is not a folder")
    previous = _previous_files(out)
    # nothing is created outside the staging folder until the run succeeded: it goes in
    # the nearest folder that exists above --out (resolved, so that it shares the file
    # system of its target), or in --out itself when that folder is read-only
    target = out.resolve()
    anchor = target.parent
    while not anchor.exists():
        anchor = anchor.parent
    if not anchor.is_dir():
        raise _cfg_error(f"--out: {str(anchor)!r} is not a folder")
    if target.is_dir() and not os.access(anchor, os.W_OK):
        anchor = target
    plotter = _PlotWorker() if plots else None  # imports matplotlib in parallel
    staging = None
    try:
        built = _build(cfg)
        if ray_run and ray_run["partition"] > len(built.graph.regions):
            raise _cfg_error(f"--workers: {ray_run['partition']} workers but the network has "
                             f"{len(built.graph.regions)} regions")
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=anchor))
        try:
            summary = _simulate(cfg, built, staging, fmt, plotter, quiet=args.quiet,
                                t_start=t_start, started=started, energy=energy,
                                ray_run=ray_run)
        except _RunError as exc:
            msg = str(exc.error)
            for form in {str(staging), str(staging.resolve())}:
                msg = msg.replace(form, str(out))
            raise cfg.error(exc.path, msg) from None
        except (MemoryError, RuntimeError) as exc:
            raise _out_of_memory(cfg, exc) from None
        names = sorted(p.name for p in staging.iterdir())
        stops.defer = True  # from here on a signal waits: the results are being kept
        _commit(staging, out, names, previous)
    finally:
        if plotter is not None:
            plotter.close()
        if staging is not None:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(staging)
    line = ", ".join(f"{n} {r['rate_hz']:.3g} Hz" for n, r in summary["regions"].items()
                     if r["rate_hz"] is not None)
    speed = summary["timing_s"]["simulate"]
    print(f"simulated {summary['duration_s']:g} s ({summary['steps']} steps, "
          f"{summary['backend']}) in {speed:.3g} s; {line}; "
          f"wrote {len(names)} files to {out}", file=sys.stdout)
    if energy is not None:
        e = summary["energy"]
        print(f"energy on {e['target']['name']}: {e['per_inference']['compute_pJ']:.4g} pJ "
              f"compute, {e['per_inference']['memory_pJ']:.4g} pJ with memory, per batch "
              f"element of the run (summary.json: energy)", file=sys.stdout)
    if stops.pending is not None:  # arrived while the results were being kept
        name = "interrupted" if stops.pending == 2 else "terminated"
        print(f"aura-snn simulate: {name} after the results were written to {out}",
              file=sys.stderr)
        return 128 + stops.pending
    return 0


def _cfg_error(msg: str) -> Exception:
    from ..errors import ConfigError

    return ConfigError(msg)


def _report_plugin(option: str, name: str, value: str):  # noqa: ANN202
    """The report of entry point ``name`` (group :data:`REPORT_GROUP`) for ``value``;
    a missing plugin or a value it refuses is a one-line error naming ``option``."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=REPORT_GROUP) if ep.name == name]
    if not found:
        raise _cfg_error(f"{option}: needs the hardware package (entry point {name!r} of "
                         f"group {REPORT_GROUP!r}), which is not installed")
    try:
        make = found[0].load()
    except ImportError as exc:
        raise _cfg_error(f"{option}: its plugin {found[0].value} failed to import: "
                         f"{exc}") from None
    try:
        return make(value)
    except ValueError as exc:
        raise _cfg_error(f"{option}: {exc}") from None


def _ray_options(args: argparse.Namespace, backend: str) -> dict:
    """``Graph.run`` arguments of ``--workers N [--address ADDR]`` (none without
    --workers); ``--backend engine|torch`` becomes each worker's backend."""
    if args.workers is None:
        if args.address is not None:
            raise _cfg_error("--address: needs --workers N")
        return {}
    if args.workers < 1:
        raise _cfg_error(f"--workers: must be >= 1, got {args.workers}")
    if args.address is not None:
        from ..graph.distributed.cluster import check_address

        try:
            check_address(args.address)
        except ValueError as exc:
            raise _cfg_error(f"--address: {exc}") from None
    return {"backend": "ray", "partition": args.workers, "address": args.address,
            "worker_backend": backend if backend in ("engine", "torch") else "auto"}


def _build(cfg):  # noqa: ANN001, ANN202
    try:
        from ..graph.config import build_graph

        return build_graph(cfg)
    except (MemoryError, RuntimeError) as exc:
        raise _out_of_memory(cfg, exc) from None


def _out_of_memory(cfg, exc: BaseException) -> Exception:  # noqa: ANN001
    """One line for an allocation that failed although the network was sized to fit;
    any other RuntimeError is a bug and keeps its traceback."""
    from ..graph.config import available_memory, human_bytes, network_size

    text = str(exc)
    if not isinstance(exc, MemoryError) and "allocate" not in text and \
            "out of memory" not in text:
        return exc
    size = network_size(cfg)
    avail = available_memory()
    return _cfg_error(f"{cfg.path.name}: ran out of memory ({size.neurons} neurons, "
                      f"{size.synapses} synapses, estimated {human_bytes(size.bytes)}, "
                      f"{human_bytes(avail) if avail is not None else 'unknown'} available)")


class _RunError(Exception):
    """An error found while running, with the field it belongs to."""

    def __init__(self, path: tuple, error: Exception) -> None:
        super().__init__(str(error))
        self.path, self.error = path, error


#: The file a run of ``simulate`` leaves in ``--out`` listing the files it wrote, so
#: that the next run into the same folder replaces them (and only them).
MANIFEST = "manifest.json"
_TOOL = "aura-snn simulate"


def _previous_files(out) -> set[str]:  # noqa: ANN001
    """Names the previous run of ours wrote into ``out`` (its manifest); a manifest
    that we did not write is refused rather than overwritten."""
    import json

    path = out / MANIFEST
    if not path.exists():
        return set()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ok = isinstance(data, dict) and data.get("written_by") == _TOOL
        names = data.get("files", []) if ok else None
    except (OSError, ValueError):
        ok, names = False, None
    if not ok or not isinstance(names, list):
        raise _cfg_error(f"--out: {str(path)!r} was not written by {_TOOL}; choose another "
                         f"folder or remove it")
    # only plain names in this folder: a manifest never reaches outside it
    return {n for n in names if isinstance(n, str) and n not in ("", ".", "..", MANIFEST)
            and "/" not in n and "\\" not in n and "\0" not in n}


def _commit(staging, out, names: list[str], previous: set[str]) -> None:  # noqa: ANN001
    """Move the run's files from ``staging`` into ``out`` and remove the files of the
    previous run that this one did not write again.

    The manifest first lists the union of both runs, then only this run's, so at every
    instant each file of ours in ``out`` is listed and a crash can be cleaned by the
    next run. Files that neither run wrote are never touched."""
    import os

    from .. import __version__
    from .._io import atomic_write_json

    def manifest(files: list[str]) -> dict:
        return {"written_by": _TOOL, "version": __version__, "files": files}

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MANIFEST, manifest(sorted(set(names) | previous)))
    umask = os.umask(0)
    os.umask(umask)
    for name in names:  # temporary files are created 0600; results follow the umask
        os.chmod(staging / name, 0o666 & ~umask)
        os.replace(staging / name, out / name)
    for name in sorted(previous - set(names)):
        old = out / name
        if old.is_file() and not old.is_symlink():
            old.unlink()
    atomic_write_json(out / MANIFEST, manifest(names))


def _simulate(cfg, built, staging, fmt: str, plotter, *, quiet: bool,  # noqa: ANN001
              t_start: float, started: dict, energy=None,  # noqa: ANN001
              ray_run: dict | None = None) -> dict:
    import json
    import shutil
    import time

    from .._io import atomic_write_json
    from ..errors import AuraError
    from ..graph.config import monitor_specs, params_dict, raster_window_of
    from ..graph.recorder import load_recording
    from ..metrics.events import region_summary
    from . import _plasticity

    t0 = time.perf_counter()
    g = built.graph
    ext = "npz" if fmt == "npz" else "h5"
    spiking = [n for n, r in g.regions.items() if r.kind == "spiking"]
    files: dict[str, str] = {}
    for n in spiking:
        g.monitor(n, "spikes", to=staging / f"spikes_{n}.{ext}")
        files[f"spikes_{n}"] = f"spikes_{n}.{ext}"
    for spec, path in monitor_specs(cfg, g):
        if spec["variable"] == "spikes" and spec["target"] in spiking:
            continue
        fname = f"monitor_{spec['target']}_{spec['variable'].replace(':', '-')}.{ext}"
        try:
            g.monitor(spec["target"], spec["variable"], neurons=spec["neurons"],
                      every=spec["every"], to=staging / fname)
        except AuraError as exc:
            raise cfg.error((*path, "variable"), str(exc)) from None
        files[f"monitor_{spec['target']}_{spec['variable']}"] = fname
    plastic = _plasticity.attach(cfg, g, staging, ext)  # trajectories, starting weights
    if energy is not None:
        try:
            energy.attach(g)  # the counter observes this run only
        except ValueError as exc:
            raise _cfg_error(f"--energy: {exc}") from None
    t_build = time.perf_counter() - t0

    import torch

    from . import _checkpoint

    first = 0 if not (ray_run or {}).get("resume") else \
        _checkpoint.resume_step(g, ray_run["resume"], built.steps)
    inputs, modulators, modulation = _checkpoint.tail(built, first)
    t0 = time.perf_counter()
    started["progress"] = not quiet
    try:
        with torch.no_grad():
            res = g.run(built.steps - first, inputs, progress=not quiet,
                        modulators=modulators or None, modulation=modulation or None,
                        **(ray_run or {"backend": cfg.backend}))
        g.close_monitors()
    except AuraError as exc:
        # the file's errors were found before; what is left belongs to the run as a whole
        raise _RunError(("simulation",), exc) from None
    started["progress"] = False
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
    plastic_summary, plastic_plots = _plasticity.finish(plastic, g, staging, dt)
    if plotter is not None:  # the child draws while this process summarises
        plotter.submit(staging, spikes, weights, dt, steps, int(cfg.output["raster_neurons"]),
                       raster_window_of(cfg), plastic_plots)
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
        if name in plastic_summary:
            projections[name]["plasticity"] = plastic_summary[name]
    shutil.copyfile(cfg.path, staging / f"network{cfg.path.suffix.lower()}")
    if plotter is not None:
        plotter.wait()
    t_write = time.perf_counter() - t0
    summary = {
        "network": str(cfg.path), "duration_s": steps * dt, "dt_s": dt, "steps": steps,
        "seed": cfg.seed, "dtype": cfg.dtype, "backend": res.backend,
        "regions": regions, "projections": projections,
        "files": sorted(files.values()) + _plasticity.files(plastic) + (
            ["raster.png", "population_rate.png", "isi_histogram.png",
             "weight_histogram.png"] if plotter is not None else []) + (
            list(_plasticity.FIGURES) if plotter is not None and plastic else []),
        "timing_s": {"build": t_build, "simulate": t_sim, "write": t_write,
                     "total": time.perf_counter() - t_start},
        "speed_x_realtime": steps * dt / t_sim if t_sim > 0 else None,
    }
    if res.distributed is not None:
        d = res.distributed
        summary["distributed"] = {
            "workers": d.workers, "assignment": d.assignment, "backends": list(d.backends),
            "window_steps": d.window, "exchanges": d.exchanges, "bytes": d.bytes,
            "cut_synapses": d.cut_synapses, "resumed_from_step": first,
            "snapshots": [{"step": x.step, "bytes": x.bytes, "write_s": x.write_s}
                          for x in d.snapshots],
            "recoveries": [dict(vars(x)) for x in d.recoveries]}
    if energy is not None:
        summary["energy"] = energy.report(steps, res.backend)
    json.dumps(summary)  # fail here, not later, if something is not serialisable
    atomic_write_json(staging / "summary.json", summary)
    return summary


class _PlotWorker:
    """Draws the PNGs in a child process that starts importing matplotlib at once, in
    parallel with building and simulating (matplotlib's import costs about a second).
    Falls back to drawing in this process if the child cannot be started."""

    def __init__(self) -> None:
        import multiprocessing as mp
        import signal

        self.proc = None
        # the child inherits the parent's signal handlers; it installs its own before
        # it takes SIGINT or SIGTERM, so both stay blocked across the fork
        stops = {signal.SIGINT, signal.SIGTERM}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            ctx = mp.get_context("fork")
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(target=_plot_child, args=(child, mask), daemon=True)
            self.proc.start()
            child.close()
        except (OSError, ValueError, RuntimeError):  # pragma: no cover - no fork
            self.proc = None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.job = None

    def submit(self, staging, spikes, weights, dt, steps, raster_neurons,  # noqa: ANN001
               window, plastic=None) -> None:  # noqa: ANN001
        self.job = (str(staging), spikes, weights, dt, steps, raster_neurons, window, plastic)
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


def _plot_child(conn, mask) -> None:  # noqa: ANN001 - runs in the child process
    import signal

    # the parent handles Ctrl+C (sent to the whole process group) and ends this child
    # with SIGTERM: neither may print a traceback here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
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


def _draw(staging, spikes, weights, dt, steps, raster_neurons, window,  # noqa: ANN001
          plastic=None) -> None:  # noqa: ANN001
    from pathlib import Path

    from ..plot import simulation as fig

    st = Path(staging)
    fig.save_event_raster(st / "raster.png", spikes, dt, steps, max_neurons=raster_neurons,
                          window=window)
    fig.save_population_rates(st / "population_rate.png", spikes, dt, steps)
    fig.save_isi_histogram(st / "isi_histogram.png", spikes, dt)
    fig.save_weight_histogram(st / "weight_histogram.png", weights)
    if plastic is not None:
        from . import _plasticity

        _plasticity.draw(st, plastic)
