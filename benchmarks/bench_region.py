"""Spiking-region simulation speed: aura-snn's compiled engine against Brian2.

The network is Vogels & Abbott's CUBA (Brian2's examples/CUBA.py): 80 % excitatory /
20 % inhibitory current-based LIF neurons, taue 5 ms, taui 10 ms, refractory 5 ms,
1 s of biological time at dt = 0.1 ms, float64, exact integration.

* CUBA at N = 4,000 with 2 % connectivity (``connect(p=0.02)``).
* A sweep N = 1,000 ... 100,000 with a fixed in-degree of 80 (64 excitatory, 16
  inhibitory: CUBA's 2 % of 4,000), so every neuron sees the same input statistics.
* An in-degree sweep at fixed N to separate the cost of synapses from that of neurons.

* The rest of the compiled family on the same footing (no Brian2 rows): CUBA N = 4,000
  with per-neuron parameters (thresholds; membrane time constants and thresholds, as
  tensors of shape ``[n]``) against the scalar CUBA, and an E/I network of ALIF
  neurons against the same network of LIF neurons (N = 4,000, in-degree 80), all
  interleaved in one loop so that load drifts hit them alike. Their goals compare time
  per neuron-step; time per synaptic event is reported beside it.

Brian2 runs in subprocesses (``benchmarks/brian2_cuba.py``) with each target available
here: ``numpy`` and ``cython`` runtime targets and ``cpp_standalone`` (code generation
+ compilation reported apart from the run). Both simulators get the same connectivity
and initial potentials. Times are per simulated second:

* ``sim``: the time-step loop (Brian2: its own timer, ``device._last_run_time``;
  aura-snn: time in the compiled loop, ``RunResult.profile["steps"]``);
* ``run``: aura-snn's whole ``Graph.run`` call (flattening the graph, state
  conversion and monitors included);
* ``process``: a whole command from start to written results (``aura-snn simulate
  examples/cuba.toml`` with its summary and plots; Brian2's CUBA script saving its
  spikes).

    python benchmarks/bench_region.py [--quick] [--json out/bench_region.json]
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Goal, parser, print_goals, print_table, write_report

ROOT = Path(__file__).resolve().parents[1]
B2_SCRIPT = ROOT / "benchmarks" / "brian2_cuba.py"
CUBA_TOML = ROOT / "examples" / "cuba.toml"
DT = 1e-4
STEPS = 10_000                       # 1 s
WE = 60 * 0.27 / 10 * 1e-3           # V, Brian2's (60*0.27/10)*mV
WI = -20 * 4.5 / 10 * 1e-3
REFERENCE = {                        # measured by the project on this machine (brief)
    "brian2 numpy sim (s)": 1.3, "brian2 numpy process (s)": "2.9-3.1",
    "brian2 cython sim, warm (s)": 0.4, "brian2 cython process, warm (s)": "2.1-2.3",
    "brian2 cython cold compile (s)": 37, "brian2 cpp_standalone build (s)": "6.1-6.3",
    "brian2 cpp_standalone run (s)": "0.08-0.1",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _load() -> float:
    return os.getloadavg()[0]


# -- aura-snn ----------------------------------------------------------------------------
def build_cuba(n: int, *, indegree: int | None = None, p: float | None = None,
               seed: int = 1, w_scale: float = 1.0,
               params: Any = None) -> tuple[Any, dict[str, Any]]:
    """CUBA graph with ``n`` neurons (fixed in-degree split 80/20, or probability ``p``)
    and the same network as arrays for Brian2 (global indices). ``params(name, size)``
    gives a region's parameters (default: Brian2's CUBA, shared)."""
    import numpy as np
    import torch

    from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
    from aura_snn.graph import Graph, SpikingRegion
    from aura_snn.graph import connectivity as C

    n_e = int(round(0.8 * n))
    n_i = n - n_e
    rng = np.random.default_rng(seed)
    v0 = -60e-3 + rng.random(n) * 10e-3
    shared = CubaRefractoryParameters()
    params = params or (lambda name, size: shared)
    g = Graph(dt=DT, seed=seed).double()
    g.add(SpikingRegion("E", n_e, "cuba_refractory", params("E", n_e),
                        init={"v": torch.tensor(v0[:n_e])}))
    g.add(SpikingRegion("I", n_i, "cuba_refractory", params("I", n_i),
                        init={"v": torch.tensor(v0[n_e:])}))
    size, off = {"E": n_e, "I": n_i}, {"E": 0, "I": n_e}
    arrays: dict[str, list] = {"ie": [], "je": [], "ii": [], "ji": []}
    for k, (pre, post) in enumerate([("E", "E"), ("E", "I"), ("I", "E"), ("I", "I")]):
        exc = pre == "E"
        if indegree is not None:
            kk = int(round(indegree * (0.8 if exc else 0.2)))
            conn = C.fixed_indegree(size[pre], size[post], kk, seed=seed * 10 + k)
        else:
            conn = C.fixed_probability(size[pre], size[post], p, seed=seed * 10 + k)
        g.connect(pre, post, (WE if exc else WI) * w_scale, connectivity=conn,
                  receptor="exc" if exc else "inh", sign="exc" if exc else "inh")
        arrays["ie" if exc else "ii"].append(conn.pre + off[pre])
        arrays["je" if exc else "ji"].append(conn.post + off[post])
    net = {k: np.concatenate(v).astype(np.int32) for k, v in arrays.items()}
    net.update(n=n, v0=v0)
    return g, net


def time_aura(g: Any, repeats: int) -> dict[str, float]:
    """Median times of 1 s runs from the initial state (kernel already compiled)."""
    import torch

    spikes = g.monitor("E", "spikes")
    with torch.no_grad():
        g.run(20, reset=True)                       # loads the compiled kernel
        sims, runs = [], []
        for _ in range(repeats):
            spikes.data()                           # (memory monitor: keeps growing)
            r = g.run(STEPS, reset=True)
            assert r.backend == "engine"
            sims.append(r.profile["steps"])
            runs.append(r.wall_time)
    n_sp = len(spikes.data()["t"]) / (repeats + 20 / STEPS)
    syn = sum(p.nnz for p in g.projections.values())
    return {"sim": statistics.median(sims), "run": statistics.median(runs),
            "sim_min": min(sims), "synapses": syn, "spikes_E": n_sp,
            "rate_E_hz": n_sp / g.regions["E"].size}


def per_neuron_params(*, tau: bool, seed: int = 3) -> Any:
    """Parameters for :func:`build_cuba` ``(region name, size) -> parameters`` with
    per-neuron values: thresholds jittered by +-0.5 mV around Brian2's -50 mV and, with
    ``tau``, membrane time constants by +-2 ms around 20 ms (tensors of shape ``[n]``)."""
    import torch

    from aura_snn.functional.cuba_refractory import CubaRefractoryParameters

    gen = torch.Generator().manual_seed(seed)

    def params(name: str, size: int) -> Any:
        jitter = [torch.rand(size, generator=gen, dtype=torch.float64) - 0.5 for _ in range(2)]
        kw: dict[str, Any] = {"threshold": -50e-3 + 1e-3 * jitter[0]}
        if tau:
            kw["tau_mem"] = 20e-3 + 4e-3 * jitter[1]
        return CubaRefractoryParameters(**kw)
    return params


def build_lif_net(n: int, model: str, *, indegree: int = 80, seed: int = 1) -> Any:
    """E/I network of ``model`` (``"lif"`` or ``"alif"``) neurons, 80 % / 20 %, fixed
    in-degree split 80/20: tau_mem 20 ms, threshold 1, v_leak 1.1 (tonic firing near
    20 Hz), reset to 0, excitatory weights 0.02, inhibitory -0.08; ALIF adds an
    adaptation of beta = 0.05 with tau_adapt 100 ms."""
    import numpy as np
    import torch

    from aura_snn.functional.alif import ALIFParameters
    from aura_snn.functional.lif import LIFParameters
    from aura_snn.graph import Graph, SpikingRegion
    from aura_snn.graph import connectivity as C

    n_e = int(round(0.8 * n))
    size = {"E": n_e, "I": n - n_e}
    rng = np.random.default_rng(seed)
    g = Graph(dt=DT, seed=seed).double()
    kw = dict(tau_mem=20e-3, threshold=1.0, v_leak=1.1, reset="zero")
    p = LIFParameters(**kw) if model == "lif" else \
        ALIFParameters(**kw, tau_adapt=100e-3, beta=0.05)
    for name, k in size.items():
        g.add(SpikingRegion(name, k, model, p, init={"v": torch.tensor(rng.random(k))}))
    for k, (pre, post) in enumerate([("E", "E"), ("E", "I"), ("I", "E"), ("I", "I")]):
        exc = pre == "E"
        conn = C.fixed_indegree(size[pre], size[post], int(round(indegree * (0.8 if exc else
                                                                            0.2))),
                                seed=seed * 10 + k)
        g.connect(pre, post, 0.02 if exc else -0.08, connectivity=conn)
    return g


def time_interleaved(graphs: dict[str, Any], repeats: int) -> dict[str, dict[str, float]]:
    """Median times of 1 s runs of several graphs, one run of each in turn per round;
    also the spikes (both regions) and synaptic events (spikes times out-degree) per
    run."""
    import numpy as np
    import torch

    mons, degree = {}, {}
    for key, g in graphs.items():
        mons[key] = {name: g.monitor(name, "spikes") for name in ("E", "I")}
        degree[key] = {name: np.zeros(g.regions[name].size) for name in ("E", "I")}
        for p in g.projections.values():
            pre_i, _, _, _ = p.to_coo()
            degree[key][p.pre] += np.bincount(pre_i, minlength=g.regions[p.pre].size)
    sims: dict[str, list[float]] = {k: [] for k in graphs}
    runs: dict[str, list[float]] = {k: [] for k in graphs}
    with torch.no_grad():
        for g in graphs.values():
            g.run(20, reset=True)                   # loads the compiled kernels
        for m in mons.values():
            for mon in m.values():
                mon.data()
        for _ in range(repeats):
            for key, g in graphs.items():
                r = g.run(STEPS, reset=True)
                assert r.backend == "engine"
                sims[key].append(r.profile["steps"])
                runs[key].append(r.wall_time)
    out = {}
    for key, g in graphs.items():
        spikes = events = 0.0
        for name, mon in mons[key].items():
            i = mon.data()["i"]
            spikes += i.size
            events += float(degree[key][name][i].sum())
        scale = 1.0 / (repeats + 20 / STEPS)
        n = sum(r.size for r in g.regions.values())
        sim = statistics.median(sims[key])
        out[key] = {"sim": sim, "run": statistics.median(runs[key]), "neurons": n,
                    "synapses": sum(p.nnz for p in g.projections.values()),
                    "rate_hz": spikes * scale / n, "events": events * scale,
                    "ns_per_neuron_step": sim / (n * STEPS) * 1e9,
                    "ns_per_event": sim / max(events * scale, 1.0) * 1e9}
    return out


def aura_process(out: Path, extra: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "aura_snn.cli", "simulate", str(CUBA_TOML),
                        "--out", str(out), "--quiet", *extra], env=_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"aura-snn simulate failed: {r.stderr[-2000:]}")
    return wall


# -- Brian2 ------------------------------------------------------------------------------
def run_brian2(target: str, net_file: Path | None, timeout: float = 900,
           spikes: Path | None = None) -> dict[str, Any] | None:
    cmd = [sys.executable, str(B2_SCRIPT), "--target", target]
    if net_file is not None:
        cmd += ["--net", str(net_file)]
    if spikes is not None:
        cmd += ["--spikes", str(spikes)]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["process_wall"] = wall
    if target == "cpp_standalone":
        out["build_total"] = out["run"] + out["build"]   # code generation + compilation
    return out


def cython_cache_warm() -> bool:
    d = Path.home() / ".cython" / "brian_extensions"
    return d.is_dir() and any(d.iterdir())


def slope(xs: list[float], ys: list[float]) -> float:
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / \
        sum((a - mx) ** 2 for a in lx)


def main() -> None:
    ap = parser(__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", help="override the N sweep")
    ap.add_argument("--no-brian2", action="store_true", help="aura-snn only")
    args = ap.parse_args()
    quick = args.quick
    sizes = args.sizes or ([1000, 4000, 10000] if quick else
                           [1000, 2000, 5000, 10000, 20000, 50000, 100000])
    import importlib.util

    have_b2 = not args.no_brian2 and importlib.util.find_spec("brian2") is not None
    targets = []
    if have_b2:
        targets = ["numpy"]
        if not quick or cython_cache_warm():
            targets.append("cython")
        if not quick:
            targets.append("cpp_standalone")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_region_"))
    meta: dict[str, Any] = {"load_before": _load(), "quick": quick, "dt": DT,
                            "steps": STEPS, "brian2_targets": targets, "reference": REFERENCE}
    results: list[dict[str, Any]] = []
    t_bench = time.perf_counter()
    try:
        # -- CUBA, N = 4,000, p = 2 % -------------------------------------------------
        g, net = build_cuba(4000, p=0.02)
        np.savez(tmp / "cuba4000.npz", **net)
        a = time_aura(g, 3 if quick else 5)
        row = {"case": "CUBA 4000 p=2%", "simulator": "aura-snn engine", "sim_s": a["sim"],
               "run_s": a["run"], "synapses": a["synapses"], "rate_hz": a["rate_E_hz"]}
        results.append(row)
        cuba_b2: dict[str, dict[str, Any]] = {}
        for target in targets:
            reps = 1 if target == "cpp_standalone" or quick else 3
            if target == "cython" and not cython_cache_warm():
                cold = run_brian2(target, tmp / "cuba4000.npz")   # compiles (~40 s)
                meta["brian2 cython cold process (s)"] = cold.get("process_wall") if cold \
                    else None
            runs = [run_brian2(target, tmp / "cuba4000.npz") for _ in range(reps)]
            runs = [r for r in runs if r and "error" not in r]
            if not runs:
                results.append({"case": "CUBA 4000 p=2%", "simulator": f"brian2 {target}",
                                "note": "failed"})
                continue
            best = {k: statistics.median(r[k] for r in runs) for k in runs[0]
                    if isinstance(runs[0][k], (int, float))}
            cuba_b2[target] = best
            results.append({"case": "CUBA 4000 p=2%", "simulator": f"brian2 {target}",
                            "sim_s": best["sim"], "run_s": best["run"],
                            "build_s": best.get("build_total"),
                            "binary_s": best.get("binary"), "process_s": best["process_wall"],
                            "synapses": best["synapses"], "rate_hz": best["rate_hz"]})
        # -- the rest of the family: per-neuron parameters, ALIF vs LIF --------------
        family = {"CUBA": build_cuba(4000, p=0.02)[0],
                  "CUBA per-neuron thresholds": build_cuba(
                      4000, p=0.02, params=per_neuron_params(tau=False))[0],
                  "CUBA per-neuron tau_mem + thresholds": build_cuba(
                      4000, p=0.02, params=per_neuron_params(tau=True))[0],
                  "LIF E/I": build_lif_net(4000, "lif"), "ALIF E/I": build_lif_net(4000, "alif")}
        fam = time_interleaved(family, 3 if quick else 15)
        for key, a in fam.items():
            case = (f"CUBA 4000 p=2%{key[4:] and ','}{key[4:]}" if key.startswith("CUBA")
                    else f"{key} 4000 in-degree 80")
            results.append({"case": case, "simulator": "aura-snn engine", "sim_s": a["sim"],
                            "run_s": a["run"], "synapses": a["synapses"],
                            "rate_hz": a["rate_hz"],
                            "ns_per_neuron_step": a["ns_per_neuron_step"],
                            "ns_per_event": a["ns_per_event"]})
        meta["family"] = fam

        # -- whole processes: interleaved, so a change of load hits all alike -------
        reps = 1 if quick else 5
        aura_process(tmp / "warm", [])                     # numba cache, file cache
        walls: dict[str, list[float]] = {}
        for k in range(reps):
            walls.setdefault("aura-snn simulate", []).append(aura_process(tmp / f"p{k}", []))
            walls.setdefault("aura-snn simulate --no-plots", []).append(
                aura_process(tmp / f"q{k}", ["--no-plots"]))
            for target in targets:
                if target == "cpp_standalone" and k > 0 or target == "numpy" and k > 1:
                    continue                                   # slow; fewer repeats
                r = run_brian2(target, None, spikes=tmp / "b2spikes.npz")
                if not r or "error" in r:
                    continue
                walls.setdefault(f"brian2 {target} script", []).append(r["process_wall"])
                if target == "cpp_standalone":
                    walls.setdefault("brian2 cpp_standalone: code generation + compile",
                                     []).append(r["build_total"])
                    walls.setdefault("brian2 cpp_standalone: binary", []).append(r["binary"])
        procs = {name: statistics.median(v) for name, v in walls.items()}
        t_torch = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter(); "
                                  "import torch; print(time.perf_counter()-t)"],
                                 capture_output=True, text=True, env=_env())
        procs["python -c 'import torch'"] = float(t_torch.stdout.strip() or "nan")
        meta["process_walls"] = walls
        meta["load_after_processes"] = _load()
        for k, v in procs.items():
            results.append({"case": "CUBA 4000 process", "simulator": k, "process_s": v})

        # -- N sweep, fixed in-degree 80 ---------------------------------------------
        sweep: dict[str, list[tuple[int, float, int]]] = {"aura": []}
        for n in sizes:
            g, net = build_cuba(n, indegree=80)
            f = tmp / f"in80_{n}.npz"
            np.savez(f, **net)
            a = time_aura(g, 1 if n >= 50000 else (2 if quick else 3))
            sweep["aura"].append((n, a["sim"], a["synapses"]))
            results.append({"case": f"in-degree 80, N={n}", "simulator": "aura-snn engine",
                            "sim_s": a["sim"], "run_s": a["run"], "synapses": a["synapses"],
                            "rate_hz": a["rate_E_hz"],
                            "us_per_step": a["sim"] / STEPS * 1e6})
            del g
            for target in targets:
                if target == "numpy" and (n > 20000 or quick and "cython" in targets):
                    continue        # minutes per run; the numpy target is not the anchor
                r = run_brian2(target, f)
                if not r or "error" in r:
                    results.append({"case": f"in-degree 80, N={n}",
                                    "simulator": f"brian2 {target}",
                                    "note": (r or {}).get("error", "failed")})
                    continue
                sweep.setdefault(target, []).append((n, r["sim"], r["synapses"]))
                results.append({"case": f"in-degree 80, N={n}", "simulator": f"brian2 {target}",
                                "sim_s": r["sim"], "run_s": r["run"],
                                "build_s": r.get("build_total"), "synapses": r["synapses"],
                                "rate_hz": r["rate_hz"], "us_per_step": r["sim"] / STEPS * 1e6})
        # -- in-degree sweep at fixed N (weights scaled to keep the mean input) -------
        n_k = 5000 if quick else 20000
        ks = [20, 320] if quick else [20, 40, 80, 160, 320]
        ksweep = []
        for k in ks:
            g, _ = build_cuba(n_k, indegree=k, w_scale=80 / k)
            a = time_aura(g, 2)
            spikes_all = a["rate_E_hz"] * n_k                # per simulated second (approx)
            ksweep.append((k, a["sim"], a["synapses"], spikes_all * k))
            results.append({"case": f"N={n_k}, in-degree {k}", "simulator": "aura-snn engine",
                            "sim_s": a["sim"], "synapses": a["synapses"],
                            "rate_hz": a["rate_E_hz"]})
            del g
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # -- fits ---------------------------------------------------------------------------
    fits: dict[str, Any] = {}
    for name, pts in sweep.items():
        if len(pts) >= 2:
            fits[f"{name}: slope of sim time vs N"] = slope([p[0] for p in pts],
                                                            [p[1] for p in pts])
            fits[f"{name}: slope vs synapses"] = slope([p[2] for p in pts],
                                                       [p[1] for p in pts])
    big = [p for p in sweep["aura"] if p[0] >= 10000]
    if len(big) >= 2:
        fits["aura: slope vs synapses, N >= 10k"] = slope([p[2] for p in big],
                                                          [p[1] for p in big])
    fits["aura: slope vs synapses at fixed N (in-degree sweep)"] = slope(
        [p[2] for p in ksweep], [p[1] for p in ksweep])
    # per-unit costs: the neuron update dominates at CUBA's rates (~5 Hz), so the cost of
    # a synaptic event is read from the in-degree sweep (same N, 16x the synapses)
    n_big, t_big, _ = sweep["aura"][-1]
    fits[f"aura: ns per neuron-step at N={n_big}"] = t_big / (n_big * STEPS) * 1e9
    if len(ksweep) >= 2:
        (_, ta, _, ea), (_, tb, _, eb) = ksweep[0], ksweep[-1]
        fits["aura: extra ns per synaptic event (in-degree sweep)"] = \
            (tb - ta) / (eb - ea) * 1e9 if eb != ea else float("nan")
    meta["fits"] = fits
    meta["load_after"] = _load()
    meta["bench_wall_s"] = time.perf_counter() - t_bench

    # -- goals --------------------------------------------------------------------------
    goals: list[Goal] = []
    aura4 = results[0]["sim_s"]
    cy = cuba_b2.get("cython")
    goals.append(Goal("simulation >= 2x faster than Brian2 cython (warm), CUBA N=4000",
                      ">= 2.0x", round(cy["sim"] / aura4, 2) if cy else "cython not run",
                      bool(cy and cy["sim"] / aura4 >= 2.0)))
    aura_p = procs.get("aura-snn simulate")
    cy_p = procs.get("brian2 cython script")
    cpp_p = procs.get("brian2 cpp_standalone script")
    if cy_p is not None:
        goals.append(Goal("aura-snn simulate process < Brian2 cython process (warm), CUBA",
                          f"< {cy_p:.2f} s", round(aura_p, 2), aura_p < cy_p))
    else:
        goals.append(Goal("aura-snn simulate process < Brian2 cython process (warm), CUBA",
                          "cython process", "cython not run", False))
    if cpp_p is not None:
        goals.append(Goal("aura-snn simulate process < Brian2 cpp_standalone build + run",
                          f"< {cpp_p:.2f} s", round(aura_p, 2), aura_p < cpp_p))
    cpp_pts = dict((n, t) for n, t, _ in sweep.get("cpp_standalone", []))
    aura_pts = dict((n, t) for n, t, _ in sweep["aura"])
    cpp4 = cuba_b2.get("cpp_standalone")
    goals.append(Goal("simulation within 2x of cpp_standalone run, CUBA N=4000",
                      "<= 2.0x", round(aura4 / cpp4["sim"], 2) if cpp4 else "cpp not run",
                      bool(cpp4 and aura4 <= 2 * cpp4["sim"])))
    if 100000 in cpp_pts and 100000 in aura_pts:
        ratio = aura_pts[100000] / cpp_pts[100000]
        goals.append(Goal("simulation within 2x of cpp_standalone run, N=100,000 (in-degree 80)",
                          "<= 2.0x", round(ratio, 2), ratio <= 2.0))
    else:
        goals.append(Goal("simulation within 2x of cpp_standalone run, N=100,000 (in-degree 80)",
                          "<= 2.0x", "not measured (--quick or cpp not run)", False))
    # Synapses are varied two ways: with N (fixed in-degree; the neuron update, which is
    # memory-bound, grows with them) and alone (in-degree sweep at fixed N). The slope
    # above 10k neurons is reported too: it includes the step from L2- to L3-resident
    # state (~30k neurons here), which Brian2's cpp_standalone shows as well.
    s_syn = fits.get("aura: slope vs synapses", float("nan"))  # one size: no fit, not met
    s_k = fits["aura: slope vs synapses at fixed N (in-degree sweep)"]
    s_10k = fits.get("aura: slope vs synapses, N >= 10k", float("nan"))
    # met only if every slope it reports holds (a missing N >= 10k fit, nan, fails)
    goals.append(Goal("cost grows no worse than linearly in synapses (log-log slope)",
                      "<= 1.1 over the N sweep, over N >= 10k and over the in-degree sweep",
                      f"{s_syn:.3f} (N sweep), {s_k:.3f} (in-degree sweep); N >= 10k: "
                      f"{s_10k:.3f}", bool(s_syn <= 1.1 and s_k <= 1.1 and s_10k <= 1.1)))
    for key, base in (("CUBA per-neuron thresholds", "CUBA"),
                      ("CUBA per-neuron tau_mem + thresholds", "CUBA"), ("ALIF E/I", "LIF E/I")):
        ratio = fam[key]["sim"] / fam[base]["sim"]
        per_event = fam[key]["ns_per_event"] / fam[base]["ns_per_event"]
        goals.append(Goal(f"engine: {key} within 1.2x of {base}, time per neuron-step "
                          f"(N=4000, same steps)", "<= 1.2x",
                          f"{ratio:.2f}x (per synaptic event: {per_event:.2f}x)",
                          ratio <= 1.2))
    goals.append(Goal("GPU: 1M neurons, 100M synapses in real time", "<= 1 s per simulated s",
                      "not measured: no CUDA device on this machine (the compiled engine is "
                      "CPU-only; on a GPU the torch stepper runs the graph)", False))

    cols = ["case", "simulator", "sim_s", "run_s", "build_s", "process_s", "synapses",
            "rate_hz", "us_per_step", "ns_per_neuron_step", "ns_per_event", "note"]
    print_table(results, cols, title="Spiking-region simulation, 1 s at dt = 0.1 ms (float64)")
    print_table([{"fit": k, "value": v} for k, v in fits.items()], ["fit", "value"],
                title="Growth")
    print(f"\nload average before/after: {meta['load_before']:.2f} / {meta['load_after']:.2f}"
          f"  (2 shared cores: compare rows of the same run only)")
    print_goals(goals)
    write_report(args.json, results, goals, meta)


if __name__ == "__main__":
    main()
