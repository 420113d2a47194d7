"""A feed-forward chain: Poisson input -> LIF layer 1 -> LIF layer 2 -> LIF layer 3.

Each layer receives a fixed in-degree from the one before (seeded), so activity travels
down the chain with one step of transmission delay (plus a 1 ms synaptic delay) per
layer. Prints the rate of every layer and the latency of the first spike.

    python examples/poisson_lif_chain.py
"""

from __future__ import annotations

import numpy as np
import torch

from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, PoissonRegion, SpikingRegion, fixed_indegree

DT = 1e-4            # s
LAYERS, N, K = 3, 200, 20


def build() -> Graph:
    g = Graph(dt=DT, seed=2).double()
    g.add(PoissonRegion("input", N, rate=40.0))                    # Hz
    # membrane in units of the threshold: x is the steady-state potential of the input
    lif = LIFParameters(tau_mem=10e-3, threshold=1.0, v_leak=0.0, reset="zero")
    prev = "input"
    for k in range(1, LAYERS + 1):
        g.add(SpikingRegion(f"L{k}", N, "lif", lif))
        g.connect(prev, f"L{k}", 11.5, connectivity=fixed_indegree(N, N, K, seed=k),
                  delay=int(round(1e-3 / DT)))                     # 1 ms
        prev = f"L{k}"
    return g


def main() -> None:
    g = build()
    names = ["input"] + [f"L{k}" for k in range(1, LAYERS + 1)]
    mons = {n: g.monitor(n, "spikes") for n in names}
    steps = int(round(0.5 / DT))
    with torch.no_grad():
        res = g.run(steps)
    print(f"0.5 s, backend {res.backend}")
    for n, m in mons.items():
        t = m.data()["t"]
        first = f"{t.min() * DT * 1e3:.1f} ms" if t.size else "-"
        print(f"  {n:6s} rate {t.size / (N * steps * DT):6.2f} Hz   first spike {first}")
    rates = [mons[n].data()["t"].size for n in names]
    assert np.all(np.asarray(rates) > 0), "every layer should be active"


if __name__ == "__main__":
    main()
