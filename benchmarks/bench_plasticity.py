"""Plasticity: Song-Miller-Abbott and Izhikevich distal reward against Brian2, continual
learning, and the cost of a plastic layer (issue 12). Every simulation goes through the
public ``Graph.run`` (its ``auto`` backend), so a compiled engine path is picked up.

1. ``sma``: Song, Miller & Abbott (2000) as in ``tests/neuromodulation/
   test_song_miller_abbott.py`` (1,000 Poisson inputs at 15 Hz onto four ``lif_cond``
   neurons, additive pair STDP, dt = 0.1 ms; the model written once, there): ours
   (``run_ours``, one torch thread) and Brian2 on the same model in the same process.
   Brian2 target: ``--quick`` numpy (no compiler: fast on a cold cache), the full run
   cython in a fresh cache directory, its setup (``Network.run`` of 0 s: code generation
   and compilation) reported apart from the simulation, which then runs compiled (the
   warm timing); the targets are bit-identical, so one runs. Reported: wall time per
   simulated second, the total-variation distance between the pooled 20-bin histograms
   of final w/gmax, and the fractions below 0.1 / above 0.9 / within 0.3-0.7 gmax.
   100 s (``--quick``: 5 s, too short to become bimodal: the goal is then not met).
2. ``distal``: :mod:`neuromodulation.experiments.distal_reward`. Speed (steps/s) of the
   paper's 1,000-neuron network with its 1-20 ms delays and with ``daspnet.m``'s 1 ms,
   and the paper's hour extrapolated from it; then the shortened protocol
   (:func:`~neuromodulation.experiments.distal_reward.shortened`) and the rank of the
   chosen synapse among all excitatory weights: the 1,000-neuron network for 200 s and
   the 100-neuron one (8 batch copies, 30 s) over seeds 0-3 (``--quick``: the 100-neuron
   one, seed 0). No Brian2 twin of this run yet.
3. ``continual``: :func:`neuromodulation.continual.run` for finetune / ewc / replay with
   sleep consolidation, class- and task-incremental (``--quick``: class only), default
   :class:`~neuromodulation.continual.ContinualConfig`: average forgetting and final
   accuracy.
4. ``plastic_layer``: :class:`neuromodulation.plastic.PlasticLinear` (rule ``hebb``, one
   trace per episode, LIF units: the compiled whole-episode path) against ``nn.Linear``
   and the same LIF (fused multi-step kernel), float32, T = 50, B = 16, 256 -> 256 and
   64 -> 64, spike or dense inputs; forward + backward, the two alternating call by call.

Usage::

    python benchmarks/bench_plasticity.py [--quick] [--json PATH]

``--json`` also writes a figure beside the file (``PATH`` with ``.png``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import Goal, parser, print_goals, print_table, write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "neuromodulation"))

import test_song_miller_abbott as sma  # noqa: E402  (the model, written once, there)

from neuromodulation.experiments.distal_reward import (  # noqa: E402
    DistalRewardConfig,
    run,
    shortened,
)

# -- 1. Song-Miller-Abbott -------------------------------------------------------------


def brian2_sma(seconds: float, seed: int, target: str) -> tuple[np.ndarray, float, float]:
    """The test's Brian2 model (``sma.brian2_network``) on a code-generation target;
    returns final w/gmax ``[N, N_POST]``, the setup time (``Network.run`` of 0 s: code
    generation, and compilation for cython) and the simulation wall time."""
    from brian2 import second

    net, syn, _ = sma.brian2_network(seed, target)
    t0 = time.perf_counter()
    net.run(0 * second)
    t1 = time.perf_counter()
    net.run(seconds * second)
    wall = time.perf_counter() - t1
    return sma.brian2_weights(syn), t1 - t0, wall


def bench_sma(seconds: float, quick: bool) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Ours, then Brian2: ``--quick`` on the numpy target (no compiler, fast on a cold
    cache), the full run on cython in a fresh cache directory (setup = compilation,
    reported apart from the simulation, which then runs compiled: the warm timing)."""
    rows, weights = [], {}
    t0 = time.perf_counter()
    ours, n_spikes = sma.run_ours(seconds)
    wall = time.perf_counter() - t0
    weights["ours"] = ours
    rows.append({"sim": "ours", "seconds": seconds, "wall_s": wall,
                 "s_per_sim_s": wall / seconds, "post_spikes": n_spikes})
    try:
        import brian2  # noqa: F401
    except ImportError:
        rows.append({"sim": "brian2", "note": "brian2 not installed (aura-snn[peers])"})
        return rows, weights
    from brian2 import prefs

    targets = ["numpy"] if quick else ["cython", "numpy"]
    for target in targets:
        with tempfile.TemporaryDirectory() as cache:
            prefs.codegen.runtime.cython.cache_dir = cache
            try:
                w, setup, wall = brian2_sma(seconds, 1234, target)
            except Exception as exc:  # a missing compiler must not hide the other rows
                rows.append({"sim": f"brian2 {target}",
                             "note": f"{type(exc).__name__}: {exc}"[:200]})
                continue
        weights[f"brian2 {target}"] = w
        rows.append({"sim": f"brian2 {target}", "seconds": seconds, "wall_s": wall,
                     "s_per_sim_s": wall / seconds, "setup_s": setup,
                     "note": "setup = codegen + compile (cold cache)" if target == "cython"
                     else "setup = codegen"})
        break  # one Brian2 target per run: they are bit-identical (issue 12)
    for r in rows:
        w = weights.get(r["sim"])
        if w is not None:
            low, high, mid = sma.bimodality(w)
            r.update(below_0_1=low, above_0_9=high, mid_0_3_0_7=mid, mean=float(w.mean()),
                     tv_vs_ours=sma.tv_distance(w, ours))
    return rows, weights


# -- 2. distal reward ------------------------------------------------------------------


def bench_distal(quick: bool) -> tuple[list[dict[str, Any]], list[Any]]:
    rows, runs = [], []
    for label, delay in (("paper, delays 1-20 ms", 20e-3), ("daspnet.m, delays 1 ms", 1e-3)):
        res = run(DistalRewardConfig(duration=1.0 if quick else 5.0, max_delay=delay))
        rows.append({"run": f"speed: {label}", "neurons": 1000, "batch": 1,
                     "sim_s": 1.0 if quick else 5.0, "steps_per_s": res.steps_per_second,
                     "hour_wall_h": 3.6e6 / res.steps_per_second / 3600,
                     "rate_exc_hz": res.rate_exc})
    plans = [("shortened, 100 neurons x 8 copies", dict(n_exc=80, n_inh=20,
              synapses_per_neuron=10, batch=8), 30.0, [0] if quick else [0, 1, 2, 3])]
    if not quick:
        plans.append(("shortened, 1,000 neurons", {}, 200.0, [0]))
    for label, kw, duration, seeds in plans:
        for seed in seeds:
            res = run(shortened(duration, seed=seed, **kw))
            runs.append((label, seed, res))
            s = res.summary()
            rows.append({"run": label, "seed": seed, "neurons": 1000 if not kw else 100,
                         "batch": kw.get("batch", 1), "sim_s": duration,
                         "steps_per_s": s["steps_per_second"], "rank": s["rank"],
                         "chosen": s["chosen_final"], "p99": s["p99_final"],
                         "others_mean_change": s["others_mean_change"],
                         "within_0_25": s["others_within_0.25"], "rewards": s["rewards"],
                         "rate_exc_hz": s["rate_exc_hz"], "backend": s["backend"]})
            print(f"  distal {label} seed {seed}: {rows[-1]}", flush=True)
    return rows, runs


# -- 3. continual learning ---------------------------------------------------------------


def bench_continual(quick: bool) -> list[dict[str, Any]]:
    from neuromodulation.continual import ContinualConfig
    from neuromodulation.continual import run as run_continual

    rows = []
    for scenario in ("class",) if quick else ("class", "task"):
        for method in ("finetune", "ewc", "replay"):
            t0 = time.perf_counter()
            r = run_continual(method, ContinualConfig(scenario=scenario))
            rows.append({"scenario": scenario, "method": method, "forgetting": r.forgetting,
                         "final_accuracy": r.final_accuracy, "sleeps": r.sleeps,
                         "wall_s": time.perf_counter() - t0})
            print(f"  continual {rows[-1]}", flush=True)
    return rows


# -- 4. plastic layer --------------------------------------------------------------------


LAYER_SIZES = ((50, 16, 256), (50, 16, 64))  # T, B, N = M


def _fwd_bwd_ms(lif: Any, dense: torch.nn.Module, plastic: Any, x: torch.Tensor,
                grad: torch.Tensor, repeats: int) -> dict[str, float]:
    """Forward + backward times (ms) of ``dense`` + ``lif`` and ``plastic`` + ``lif``
    on ``x``, the two alternating call by call so that the machine's load falls on both
    alike: median and best of ``repeats`` each, after one warm-up call."""
    def plain() -> None:
        lif.run(dense(x)).spikes.backward(grad)

    def hebb() -> None:
        plastic.run(x, post=lif).output.backward(grad)

    times: dict[str, list[float]] = {"linear_lif": [], "plastic_lif": []}
    plain()
    hebb()
    for _ in range(repeats):
        for name, fn in (("linear_lif", plain), ("plastic_lif", hebb)):
            t0 = time.perf_counter()
            fn()
            times[name].append(1e3 * (time.perf_counter() - t0))
    out = {f"{k}_ms": float(np.median(v)) for k, v in times.items()}
    out.update({f"{k}_best_ms": float(min(v)) for k, v in times.items()})
    return out


def bench_plastic_layer(repeats: int) -> list[dict[str, Any]]:
    """Forward + backward (a random upstream gradient on the spikes, so every parameter
    and the input get a gradient) of ``PlasticLinear`` (rule ``"hebb"``, one trace per
    episode) + LIF against ``nn.Linear`` + the same LIF (its fused multi-step kernel on
    the whole ``[T, B, M]`` current), float32, the same ``W`` (N(0, 9 / N)) in both,
    inputs Bernoulli spikes (p = 0.2) or dense uniform rates in [0, 1]; median of
    ``repeats`` and best of them, the two layers alternating call by call."""
    from aura_snn.neurons import LIF
    from neuromodulation.plastic import PlasticLinear

    rows = []
    for T, B, N in LAYER_SIZES:
        g = torch.Generator().manual_seed(0)
        lif = LIF(tau_mem=10e-3, dt=1e-3, threshold=0.5)
        grad = torch.randn(T, B, N, generator=g)
        dense = torch.nn.Linear(N, N, bias=False)
        plastic = PlasticLinear(N, N, rule="hebb", eta=0.1, alpha_init=0.1)
        with torch.no_grad():  # the same W in both, large enough that the LIF fires
            plastic.weight.copy_(torch.randn(N, N, generator=g) * 3.0 / N ** 0.5)
            dense.weight.copy_(plastic.weight.t())
        for inputs in ("spikes 0.2", "dense"):
            x = torch.rand(T, B, N, generator=g)
            x = ((x < 0.2).float() if inputs == "spikes 0.2" else x).requires_grad_()

            t = _fwd_bwd_ms(lif, dense, plastic, x, grad, repeats)
            rate = float(plastic.run(x.detach(), post=lif).output.mean())
            rows.append({"layer": f"T={T} B={B} {N}->{N} {inputs}", "T": T, "B": B, "N": N,
                         "inputs": inputs, **t,
                         "ratio": t["plastic_lif_ms"] / t["linear_lif_ms"],
                         "ratio_best": t["plastic_lif_best_ms"] / t["linear_lif_best_ms"],
                         "spike_rate": rate})
    return rows


# -- report ------------------------------------------------------------------------------


def goals_from(sma_rows: list[dict[str, Any]], distal_rows: list[dict[str, Any]],
               cont: list[dict[str, Any]], layer: list[dict[str, Any]],
               seconds: float) -> list[Goal]:
    by = {r["sim"]: r for r in sma_rows}
    ours = by["ours"]
    b2 = next((r for r in sma_rows if "tv_vs_ours" in r and r["sim"] != "ours"), {})
    goals = []
    name = f"SMA {seconds:g} s: ours bimodal and TV(ours, Brian2) < 0.1"
    bimodal = ours["below_0_1"] > 0.15 and ours["above_0_9"] > 0.15 and \
        ours["mid_0_3_0_7"] < 0.30
    if "tv_vs_ours" in b2:
        goals.append(Goal(name + ("" if seconds >= 100.0 else " (paper: 100 s)"),
                          "< 0.1, bimodal", f"TV {b2['tv_vs_ours']:.4f} vs {b2['sim']}, "
                          f"{ours['below_0_1']:.1%} < 0.1, {ours['above_0_9']:.1%} > 0.9",
                          bimodal and b2["tv_vs_ours"] < 0.1))
    else:
        goals.append(Goal(name, "< 0.1, bimodal", "not measured (no Brian2)", False))
    cy, b2np = by.get("brian2 cython", {}), by.get("brian2 numpy", {})
    if "s_per_sim_s" in cy:
        ratio = cy["s_per_sim_s"] / ours["s_per_sim_s"]
        goals.append(Goal("SMA: ours >= 5x faster than Brian2 cython simulation (warm)",
                          ">= 5x", round(ratio, 3), ratio >= 5.0))
    else:
        vs = (f"; ours vs Brian2 numpy: {b2np['s_per_sim_s'] / ours['s_per_sim_s']:.3f}x"
              if "s_per_sim_s" in b2np else "")
        goals.append(Goal("SMA: ours >= 5x faster than Brian2 cython simulation (warm)",
                          ">= 5x", f"not measured (cython runs in the full run only{vs})",
                          False))
    learn = [r for r in distal_rows if "rank" in r]
    worst = min(r["rank"] for r in learn)
    goals.append(Goal("distal reward: chosen synapse above the 99th percentile (all runs)",
                      "rank > 0.99", round(worst, 5), worst > 0.99))
    rep = [r for r in cont if r["method"] == "replay" and r["scenario"] == "class"]
    goals.append(Goal("continual (class): forgetting with replay + sleep", "< 0.10",
                      round(rep[0]["forgetting"], 4), rep[0]["forgetting"] < 0.10))
    for r in layer:
        goals.append(Goal(f"plastic layer fwd+bwd / nn.Linear+LIF, {r['layer']} (best of "
                          f"calls; median in results)", "<= 2x", round(r["ratio_best"], 3),
                          r["ratio_best"] <= 2.0))
    return goals


def plot(path: Path, weights: dict[str, np.ndarray], runs: list[Any],
         cont: list[dict[str, Any]], sma_rows: list[dict[str, Any]]) -> None:
    from aura_snn.plot._figure import house_style, new_figure, save_figure

    with house_style():
        fig, ax = new_figure(2, 2, width=10.0, height=7.0)
        centres = 0.5 * (sma.BINS[1:] + sma.BINS[:-1])
        for name, w in weights.items():
            ax[0, 0].plot(centres, sma.histogram(w), marker="o", ms=3, label=name)
        ax[0, 0].set(xlabel="final w / gmax", ylabel="fraction", title="Song-Miller-Abbott")
        ax[0, 0].legend()
        for label, seed, res in runs:
            line, = ax[0, 1].plot(res.times, res.chosen_w, lw=1,
                                  label=f"{label.split(',')[1].strip()} s{seed}")
            ax[0, 1].plot(res.times, res.p99, lw=0.8, ls="--", color=line.get_color())
        ax[0, 1].set(xlabel="time (s)", ylabel="weight (V/s = mV/ms)",
                     title="distal reward: chosen (solid), 99th pct (dashed)")
        ax[0, 1].legend(fontsize=7)
        labels = [f"{r['method']}\n{r['scenario']}" for r in cont]
        ax[1, 0].bar(labels, [r["forgetting"] for r in cont])
        ax[1, 0].axhline(0.10, color="grey", ls="--", lw=0.8)
        ax[1, 0].set(ylabel="average forgetting", title="continual learning (digits)")
        timed = [r for r in sma_rows if "s_per_sim_s" in r]
        ax[1, 1].bar([r["sim"] for r in timed], [r["s_per_sim_s"] for r in timed])
        ax[1, 1].set(ylabel="wall s per simulated s", title="SMA simulation speed",
                     yscale="log")
        ax[1, 1].tick_params(axis="x", labelsize=7)
        save_figure(fig, path)
    print(f"wrote {path}")


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()
    seconds = 5.0 if args.quick else 100.0
    print(f"load average {load_start[0]:.2f}; torch threads 1", flush=True)
    sma_rows, weights = bench_sma(seconds, args.quick)
    print_table(sma_rows, ["sim", "seconds", "wall_s", "s_per_sim_s", "setup_s",
                           "below_0_1", "above_0_9", "mid_0_3_0_7", "mean", "tv_vs_ours",
                           "note"], title=f"Song-Miller-Abbott, {seconds:g} s")
    distal_rows, runs = bench_distal(args.quick)
    print_table(distal_rows, ["run", "seed", "neurons", "batch", "sim_s", "steps_per_s",
                              "hour_wall_h", "rank", "chosen", "p99", "others_mean_change",
                              "within_0_25", "rewards", "rate_exc_hz", "backend"],
                title="Izhikevich 2007 distal reward (Graph.run, auto backend, float64)")
    cont = bench_continual(args.quick)
    print_table(cont, ["scenario", "method", "forgetting", "final_accuracy", "sleeps",
                       "wall_s"], title="continual learning on digits, 5 tasks")
    layer = bench_plastic_layer(15 if args.quick else 41)
    print_table(layer, ["layer", "linear_lif_ms", "plastic_lif_ms", "ratio",
                        "linear_lif_best_ms", "plastic_lif_best_ms", "ratio_best",
                        "spike_rate"],
                title="plastic layer fwd+bwd vs nn.Linear + LIF (fused LIF), float32")
    goals = goals_from(sma_rows, distal_rows, cont, layer, seconds)
    print_goals(goals)
    results = [{"bench": "sma", **r} for r in sma_rows] + \
        [{"bench": "distal", **r} for r in distal_rows] + \
        [{"bench": "continual", **r} for r in cont] + \
        [{"bench": "plastic_layer", **r} for r in layer]
    write_report(args.json, results, goals,
                 meta={"quick": args.quick, "sma_seconds": seconds,
                       "note": "measured under load: other jobs share the machine's cores "
                               "(load averages below); timings are noisy, the plastic "
                               "layer's most (its numba pool waits for descheduled threads)",
                       "load_average_start": load_start, "load_average_end": os.getloadavg()})
    if args.json:
        plot(Path(args.json).with_suffix(".png"), weights, runs, cont, sma_rows)


if __name__ == "__main__":
    main()
