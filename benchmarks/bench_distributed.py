"""Partitioned simulation on Ray against one process (issue 14, Benchmark).

The network is CUBA-like (Vogels & Abbott, as ``bench_region.py``): two columns
``A`` and ``B``, each 80 % excitatory / 20 % inhibitory current-based LIF neurons
(``cuba_refractory``, Brian2's CUBA parameters and weights, float64, dt = 0.1 ms).
Every neuron receives 64 synapses from its own column (48 E, 16 I, delay 0) and 16
excitatory synapses from the other column with a delay of ``CROSS_DELAY`` steps, so
a column per worker exchanges spikes once per window of D = 1 + ``CROSS_DELAY``
steps (NEST-style conservative synchronisation). Sizes are total neurons (both
columns): 100k and 1M (``--quick``: 20k).

Each size runs, from the same initial state:

* ``engine``: one process, the compiled engine (``Graph.run``, ``backend="auto"``);
* ``ray-1``: Ray, both columns on one worker (``partition`` all 0);
* ``ray-2``: Ray, one column per worker.

Threads: the in-process run has ``torch.set_num_threads(1)``; Ray workers get
``OMP_NUM_THREADS=NUMBA_NUM_THREADS=MKL_NUM_THREADS=1`` (runtime env) and the
engine's numba loop is serial, so each worker uses one core; ``ray.init(num_cpus=2)``.
Every Ray run's spikes (monitors of all four regions) must equal the in-process
run's event for event; otherwise the row reads "wrong result" and gets no speed.

Times are per simulated second: ``wall`` is the whole ``Graph.run`` call; ``sim``
excludes the one-off setup (in-process: the engine loop, ``profile["steps"]``; Ray:
``wall - setup_time``, i.e. the windows with their exchanges); ``busy`` is the busiest
worker's time inside its windows (``DistributedReport.busy``: stepping, taking in and
making messages), so ``sim - busy`` is what waiting on Ray and on the other worker
cost. Numba kernels are compiled (or loaded from cache) by a short warm-up run before
timing. The goals compare ``wall``. ``--quick`` repeats each run 3 times interleaved
(medians), the full run once. Sizes and simulated times: 100k neurons for 0.2 s, 1M
for 1 s (the goals' size: one simulated second, so the per-run setup, shipping 1.9 GB
of synapses to a worker, counts as much as it would in a one-second run).

Snapshots and recovery after a killed worker (the smallest size, ``ray-2``): the same
run with a snapshot every ``steps // 8`` steps (size, slowest worker's write time,
the run's overhead, spikes equal to the run without), then again with worker 1's
process killed by SIGKILL in the middle; the run must recover on a new worker, lose at
most two snapshot intervals and finish with the same spikes.

Each engine worker keeps its run loaded from start to end
(:class:`aura_snn.graph.engine.EngineRun`): received spikes go into its ring event by
event and its own spikes leave as the kernel reported them, so a window costs its
steps plus a few milliseconds. The sub-graphs travel to the workers with their
tensors' storages as arrays beside the pickle
(:class:`aura_snn.graph.distributed.transport.Shipped`), and the engine's synapse table
is built by a counting sort (:mod:`aura_snn.graph._csr`).

Expected time: ``--quick`` about 40 s; the full run about 4 min on the shared 2-core
machine, a quarter of it building the 1M graph (80M synapses).

    python benchmarks/bench_distributed.py [--quick] [--json out/bench_distributed.json]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Goal, parser, print_goals, print_table, write_report

ROOT = Path(__file__).resolve().parents[1]
DT = 1e-4
WE = 60 * 0.27 / 10 * 1e-3           # V, Brian2's CUBA excitatory weight
WI = -20 * 4.5 / 10 * 1e-3           # V, inhibitory
CROSS_DELAY = 9                      # steps (0.9 ms): window D = 10 steps (--cross-delay)
IN_E, IN_I, IN_X = 48, 16, 16        # in-degree: own E, own I, other column's E
THREAD_ENV = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
REGIONS = ("EA", "IA", "EB", "IB")


def build(n: int, seed: int = 1, cross_delay: int = CROSS_DELAY) -> Any:
    """Two CUBA columns of ``n // 2`` neurons each, joined with ``cross_delay`` steps
    (module docstring)."""
    import numpy as np
    import torch

    from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
    from aura_snn.graph import Graph, SpikingRegion
    from aura_snn.graph import connectivity as C

    half = n // 2
    n_e = int(round(0.8 * half))
    size = {"E": n_e, "I": half - n_e}
    rng = np.random.default_rng(seed)
    g = Graph(dt=DT, seed=seed).double()
    p = CubaRefractoryParameters()
    for col in "AB":
        for kind in "EI":
            v0 = -60e-3 + rng.random(size[kind]) * 10e-3
            g.add(SpikingRegion(kind + col, size[kind], "cuba_refractory", p,
                                init={"v": torch.tensor(v0)}))
    k = 0
    for col, other in (("A", "B"), ("B", "A")):
        for pre, post in (("E", "E"), ("E", "I"), ("I", "E"), ("I", "I")):
            exc = pre == "E"
            k += 1
            conn = C.fixed_indegree(size[pre], size[post], IN_E if exc else IN_I,
                                    seed=seed * 100 + k)
            g.connect(pre + col, post + col, WE if exc else WI, connectivity=conn,
                      receptor="exc" if exc else "inh", sign="exc" if exc else "inh")
        for post in "EI":
            k += 1
            conn = C.fixed_indegree(size["E"], size[post], IN_X, seed=seed * 100 + k)
            g.connect("E" + other, post + col, WE, connectivity=conn, delay=cross_delay,
                      receptor="exc", sign="exc")
    return g


class Spikes:
    """Spike monitors on every region; :meth:`take` returns a run's new events."""

    def __init__(self, g: Any) -> None:
        self.mons = {r: g.monitor(r, "spikes") for r in REGIONS}
        self.seen = dict.fromkeys(REGIONS, 0)

    def take(self) -> dict[str, tuple[Any, Any]]:
        out = {}
        for r, m in self.mons.items():
            d = m.data()
            out[r] = (d["t"][self.seen[r]:].copy(), d["i"][self.seen[r]:].copy())
            self.seen[r] = len(d["t"])
        return out


def same(a: dict[str, tuple[Any, Any]], b: dict[str, tuple[Any, Any]]) -> bool:
    import numpy as np

    return all(np.array_equal(a[r][0], b[r][0]) and np.array_equal(a[r][1], b[r][1])
               for r in REGIONS)


PARTS = {"engine": None, "ray-1": dict.fromkeys(REGIONS, 0),
         "ray-2": {"EA": 0, "IA": 0, "EB": 1, "IB": 1}}


def run_once(g: Any, steps: int, run: str) -> dict[str, Any]:
    """One timed run from the initial state: wall, loop time, setup, report."""
    kw = {} if PARTS[run] is None else {"backend": "ray", "partition": PARTS[run]}
    t0 = time.perf_counter()
    r = g.run(steps, reset=True, **kw)
    wall = time.perf_counter() - t0
    if PARTS[run] is None:
        assert r.backend == "engine", r.backend
        return {"wall": wall, "sim": r.profile["steps"], "setup": 0.0, "rep": None}
    rep = r.distributed
    return {"wall": wall, "sim": wall - rep.setup_time, "setup": rep.setup_time, "rep": rep}


def run_size(n: int, steps: int, cross_delay: int, repeats: int) -> list[dict[str, Any]]:
    """The three runs of one size, interleaved ``repeats`` times so that load drifts
    hit them alike (module docstring); medians, one row per run."""
    import torch

    t0 = time.perf_counter()
    g = build(n, cross_delay=cross_delay)
    build_s = time.perf_counter() - t0
    mon = Spikes(g)
    sim_s = steps * DT
    syn = sum(p.nnz for p in g.projections.values())
    times: dict[str, list[dict[str, Any]]] = {run: [] for run in PARTS}
    wrong: set[str] = set()
    ref: dict[str, tuple[Any, Any]] = {}
    with torch.no_grad():
        for run in PARTS:                                   # compile kernels, warm actors
            run_once(g, 20, run)
        mon.take()
        for _ in range(repeats):
            for run in PARTS:
                times[run].append(run_once(g, steps, run))
                got = mon.take()
                if run == "engine":
                    ref = got
                elif not same(got, ref):
                    wrong.add(run)
    n_sp = sum(len(t) for t, _ in ref.values())
    rows = []
    for run, ts in times.items():
        rep = ts[-1]["rep"]
        row: dict[str, Any] = {
            "N": n, "run": run, "workers": 0 if rep is None else rep.workers,
            "synapses": syn, "build_s": build_s, "repeats": repeats,
            "setup_s": statistics.median(t["setup"] for t in ts),
            "window": None if rep is None else rep.window,
            "backends": "engine" if rep is None else ",".join(rep.backends),
            "exch_per_s": 0.0 if rep is None else rep.exchanges / sim_s,
            "busy_per_s": None if rep is None else
            statistics.median(max(t["rep"].busy) for t in ts) / sim_s,
            "MB_per_s": 0.0 if rep is None else rep.bytes / sim_s / 1e6,
            "rate_hz": n_sp / n / sim_s if run == "engine" else None,
            "result": "wrong result" if run in wrong else "ok"}
        if run not in wrong:
            row.update(wall_per_s=statistics.median(t["wall"] for t in ts) / sim_s,
                       sim_per_s=statistics.median(t["sim"] for t in ts) / sim_s)
        rows.append(row)
    return rows


def faults(n: int, steps: int, every: int, cross_delay: int, tmp: Path) -> dict[str, Any]:
    """Snapshots and a killed worker on the ``ray-2`` run (module docstring): the run
    without snapshots is the reference; with a snapshot every ``every`` steps it reports
    their size and write time and its overhead; then worker 1's process is killed
    (SIGKILL) when the observers reach step ``steps // 2 + every // 2``, and the run must
    finish with the reference's spikes, having lost at most two snapshot intervals."""
    import signal
    import warnings

    import ray

    from aura_snn.graph import Observer
    from aura_snn.graph.distributed import cluster
    from aura_snn.graph.distributed.worker import RegionWorker

    kill_at = steps // 2 + every // 2

    class KillAt(Observer):
        spike_regions = frozenset()

        def __init__(self, pid: int) -> None:
            self.pid, self.done = pid, False

        def observe(self, chunk: Any) -> None:
            if not self.done and chunk.t0 >= kill_at:
                self.done = True
                os.kill(self.pid, signal.SIGKILL)

    g = build(n, cross_delay=cross_delay)
    mon = Spikes(g)
    part = {"backend": "ray", "partition": PARTS["ray-2"]}
    g.run(20, reset=True, **part)
    mon.take()
    t0 = time.perf_counter()
    g.run(steps, reset=True, **part)
    plain_s = time.perf_counter() - t0
    ref = mon.take()
    t0 = time.perf_counter()
    r = g.run(steps, reset=True, checkpoint_every=every, checkpoint_dir=tmp / "snap", **part)
    snap_s = time.perf_counter() - t0
    snaps = r.distributed.snapshots
    snap_same = same(mon.take(), ref)
    on_disk = sum(f.stat().st_size for f in (tmp / "snap").rglob("*") if f.is_file())
    pids = ray.get([a.pid.remote() for a in cluster.workers(ray, 2, RegionWorker)])
    killer = g.add_observer(KillAt(pids[1]))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = g.run(steps, reset=True, checkpoint_every=every, checkpoint_dir=tmp / "kill",
                  **part)
    kill_s = time.perf_counter() - t0
    g.remove_observer(killer)
    rc = r.distributed.recoveries
    return {"N": n, "steps": steps, "every": every, "snapshots": len(snaps),
            "snapshot_MB": statistics.median(x.bytes for x in snaps) / 1e6 if snaps else None,
            "snapshot_write_s": statistics.median(x.write_s for x in snaps) if snaps else None,
            "on_disk_MB": on_disk / 1e6, "plain_s": plain_s, "with_snapshots_s": snap_s,
            "snapshot_overhead": snap_s / plain_s - 1.0, "snapshot_run_identical": snap_same,
            "killed_at_step": kill_at, "recoveries": len(rc),
            "failed_at": rc[0].failed_at if rc else None,
            "restarted_from": rc[0].restarted_from if rc else None,
            "lost_steps": rc[0].lost_steps if rc else None,
            "restart_s": rc[0].restart_s if rc else None, "killed_run_s": kill_s,
            "killed_run_identical": same(mon.take(), ref),
            "warnings": [str(w.message)[:120] for w in caught]}


def checkpoint_api_committed() -> bool:
    """Whether ``checkpoint_every`` is in ``Graph.run`` at HEAD (not only local edits)."""
    out = subprocess.run(["git", "grep", "-q", "checkpoint_every", "HEAD", "--",
                          "aura_snn/graph/graph.py"], cwd=ROOT, check=False)
    return out.returncode == 0


def ratio(rows: list[dict[str, Any]], n: int, num: str, den: str) -> float | str:
    """``wall_per_s`` (the whole ``Graph.run`` call, what a user waits for) of run
    ``num`` over run ``den`` at size ``n``, or why not."""
    by = {r["run"]: r for r in rows if r["N"] == n}
    a, b = by.get(num, {}), by.get(den, {})
    if "wall_per_s" not in a or "wall_per_s" not in b:
        return f"not measured: {num}/{den} at N={n} missing or wrong result"
    return a["wall_per_s"] / b["wall_per_s"]


def goals(rows: list[dict[str, Any]], big: int, quick: bool,
          fault: dict[str, Any] | None = None) -> list[Goal]:
    """The issue's goals, computed from the rows and the :func:`faults` row."""
    speed = ratio(rows, big, "ray-1", "ray-2")
    over = ratio(rows, big, "ray-1", "engine")
    tag = f" (N={big}{', --quick: not the 1M target' if quick else ''})"
    out = [Goal("2 workers vs 1 worker speed-up" + tag, ">= 1.5x", speed,
                isinstance(speed, float) and speed >= 1.5),
           Goal("Ray 1 worker over in-process engine" + tag, "<= 1.20x", over,
                isinstance(over, float) and over <= 1.20 and not quick)]
    target = "<= 2 snapshot intervals lost, identical spikes"
    if fault is None or not checkpoint_api_committed():
        why = "not measured: the checkpoint/resume API is not in the committed code"
        return out + [Goal("snapshot time and size", "reported", why, False),
                      Goal("recovery after a killed worker", target, why, False)]
    f = fault
    reported = f["snapshots"] > 0 and f["snapshot_run_identical"]
    out.append(Goal(f"snapshot time and size (N={f['N']}, every {f['every']} steps)",
                    "reported, identical spikes",
                    (f"{f['snapshots']} snapshots, {f['snapshot_MB']:.2f} MB each, "
                     f"{f['snapshot_write_s'] * 1e3:.0f} ms write, run +"
                     f"{f['snapshot_overhead']:.0%}") if f["snapshots"] else "no snapshot",
                    reported))
    ok = (f["recoveries"] == 1 and f["killed_run_identical"]
          and f["lost_steps"] is not None and f["lost_steps"] <= 2 * f["every"])
    spikes = "identical" if f["killed_run_identical"] else "DIFFER"
    got = (f"{f['lost_steps']} steps lost (interval {f['every']}), restart "
           f"{f['restart_s']:.2f} s, spikes {spikes}"
           if f["recoveries"] else f"no recovery recorded ({f['recoveries']})")
    out.append(Goal(f"recovery after a killed worker (N={f['N']})", target, got, ok))
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Bar chart of wall time per simulated second (the goals' measure), per size/run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["N"] for r in rows})
    runs = ["engine", "ray-1", "ray-2"]
    fig, ax = plt.subplots(figsize=(6, 4))
    w = 0.8 / len(runs)
    for k, run in enumerate(runs):
        ys = [next((r.get("wall_per_s", 0.0) for r in rows
                    if r["N"] == n and r["run"] == run), 0.0) for n in sizes]
        ax.bar([i + k * w for i in range(len(sizes))], ys, w, label=run)
    ax.set_xticks([i + w for i in range(len(sizes))], [f"{n:,}" for n in sizes])
    ax.set_xlabel("neurons")
    ax.set_ylabel("wall s per simulated s (whole Graph.run)")
    ax.set_title(f"CUBA, two columns, load {os.getloadavg()[0]:.2f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    ap = parser(__doc__.split("\n")[0])
    ap.add_argument("--cross-delay", type=int, default=CROSS_DELAY,
                    help="delay (steps) between the columns; window = 1 + this")
    args = ap.parse_args()
    plan = [(20_000, 2000)] if args.quick else [(100_000, 2000), (1_000_000, 10_000)]
    import ray
    import torch

    from aura_snn.graph.distributed import release_workers

    torch.set_num_threads(1)
    load0 = os.getloadavg()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": THREAD_ENV})
    rows: list[dict[str, Any]] = []
    fault = None
    try:
        for n, steps in plan:
            rows += run_size(n, steps, args.cross_delay, 3 if args.quick else 1)
        with tempfile.TemporaryDirectory() as tmp:
            n, steps = plan[0]
            fault = faults(n, steps, steps // 8, args.cross_delay, Path(tmp))
    finally:
        release_workers()
        ray.shutdown()
    print_table(rows, ["N", "run", "synapses", "rate_hz", "wall_per_s", "sim_per_s",
                       "busy_per_s", "setup_s", "window", "exch_per_s", "MB_per_s",
                       "result"],
                title="CUBA two columns: seconds per simulated second")
    print_table([fault], ["N", "every", "snapshots", "snapshot_MB", "snapshot_write_s",
                          "on_disk_MB", "snapshot_overhead", "killed_at_step",
                          "restarted_from", "lost_steps", "restart_s",
                          "killed_run_identical"], title="Snapshots and a killed worker")
    gs = goals(rows, plan[-1][0], args.quick, fault)
    print_goals(gs)
    load1 = os.getloadavg()
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} (shared 2-core machine)")
    meta = {"quick": args.quick, "steps": {str(n): s for n, s in plan}, "dt": DT,
            "cross_delay_steps": args.cross_delay, "worker_threads": THREAD_ENV,
            "in_process_torch_threads": 1, "loadavg_before": load0, "loadavg_after": load1}
    write_report(args.json, rows + [{"section": "faults", **fault}], gs, meta)
    if args.json:
        plot(rows, Path(args.json).with_suffix(".png"))


if __name__ == "__main__":
    main()
