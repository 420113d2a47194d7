"""Vogels & Abbott (2005) CUBA balanced network with the Python API.

The same network as ``examples/cuba.toml`` (and Brian2's ``examples/CUBA.py``):
4,000 current-based LIF neurons, 80 % excitatory, 2 % random connectivity,
exponential synaptic currents (taue 5 ms, taui 10 ms), refractory 5 ms, simulated for
1 s (or ``--duration``) at dt = 0.1 ms by the compiled engine. With ``--out`` it draws
the figures ``aura-snn simulate`` draws (raster, population rate, ISIs, weights).

    python examples/cuba.py [--duration 100] [--out out/cuba_py]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.graph import Graph, SpikingRegion, fixed_probability
from aura_snn.metrics.events import region_summary

ms, mV = 1e-3, 1e-3
DT = 0.1 * ms
N_E, N_I = 3200, 800
WE = 60 * 0.27 / 10 * mV      # excitatory jump of the current (V)
WI = -20 * 4.5 / 10 * mV      # inhibitory jump (V)


def build(seed: int = 1) -> Graph:
    """The CUBA graph: two regions (E, I) and four 2 % projections."""
    params = CubaRefractoryParameters(
        tau_mem=20 * ms, tau_syn=(5 * ms, 10 * ms), receptors=("exc", "inh"),
        v_leak=-49 * mV, threshold=-50 * mV, v_reset=-60 * mV, refractory=5 * ms)
    g = Graph(dt=DT, seed=seed).double()          # float64 first: weights stay exact
    init = {"v": {"uniform": [-60 * mV, -50 * mV]}}
    g.add(SpikingRegion("E", N_E, "cuba_refractory", params, init=init))
    g.add(SpikingRegion("I", N_I, "cuba_refractory", params, init=init))
    sizes = {"E": N_E, "I": N_I}
    for k, (pre, post) in enumerate([("E", "E"), ("E", "I"), ("I", "E"), ("I", "I")]):
        exc = pre == "E"
        g.connect(pre, post, WE if exc else WI, name=pre + post,
                  connectivity=fixed_probability(sizes[pre], sizes[post], 0.02,
                                                 seed=seed * 10 + k),
                  receptor="exc" if exc else "inh", sign="exc" if exc else "inh")
    return g


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="folder for the figures (optional)")
    ap.add_argument("--duration", type=float, default=1.0, help="simulated time (s)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not 0 < args.duration < 1e6:
        ap.error(f"--duration must be in (0, 1e6) s, got {args.duration}")
    g = build(args.seed)
    mons = {name: g.monitor(name, "spikes") for name in ("E", "I")}
    t0 = time.perf_counter()
    with torch.no_grad():
        res = g.run(max(1, int(round(args.duration / DT))), progress=True)
    print(f"{args.duration:g} s of CUBA in {time.perf_counter() - t0:.2f} s ({res.backend} "
          f"backend, {sum(p.nnz for p in g.projections.values())} synapses)")
    for name, m in mons.items():
        d = m.data()
        s = region_summary(d["t"], d["i"], g.regions[name].size, res.state.t, DT)
        print(f"  {name}: {s['rate_hz']:.2f} Hz, CV of ISI {s['cv_isi_mean']:.2f}, "
              f"synchrony {s['synchrony_chi']:.3f}")
    if args.out:
        from aura_snn.plot import simulation as fig

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        spikes = {n: (m.data()["t"], m.data()["i"], g.regions[n].size) for n, m in mons.items()}
        steps = res.state.t
        fig.save_event_raster(out / "raster.png", spikes, DT, steps)
        fig.save_population_rates(out / "population_rate.png", spikes, DT, steps)
        fig.save_isi_histogram(out / "isi_histogram.png", spikes, DT)
        fig.save_weight_histogram(out / "weight_histogram.png",
                                  {n: p.to_coo()[2] for n, p in g.projections.items()})
        print(f"  figures: {out}/{{raster,population_rate,isi_histogram,weight_histogram}}.png")


if __name__ == "__main__":
    main()
