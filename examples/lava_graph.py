"""A recurrent E/I graph on Loihi 2's fixed-point arithmetic: PyTorch float, our integer
twin and Lava's own bit-accurate simulator side by side.

Poisson input (drawn in PyTorch) drives an excitatory LIF population with sparse
recurrent synapses (2-step delay) and a CUBA inhibitory population fed in the same
step, which inhibits E one step later. The Poisson spikes enter Lava through a
``RingBuffer`` source. Prints each region's quantisation error against the float
graph, the twin's and Lava's spike counts and whether they agree bit for bit.

    python examples/lava_graph.py
"""

from __future__ import annotations

import time

import torch

from aura_snn.functional.cuba import CubaLIFParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, PoissonRegion, SpikingRegion, fixed_probability
from hardware.loihi import quantize
from hardware.partition_graph import run_graph_partitioned

DT = 1e-3  # s
STEPS = 300


def build() -> Graph:
    g = Graph(dt=DT, seed=7).double()
    g.add(PoissonRegion("input", 60, rate=40.0))  # Hz
    g.add(SpikingRegion("E", 80, "lif", LIFParameters(tau_mem=20e-3, threshold=1.0,
                                                       reset="zero", input_scaling="direct")))
    g.add(SpikingRegion("I", 20, "cuba", CubaLIFParameters(
        tau_mem=10e-3, tau_syn=5e-3, threshold=0.6, reset="zero", input_scaling="direct")))
    g.connect("input", "E", {"dist": "normal", "mean": 0.35, "std": 0.1},
              connectivity=fixed_probability(60, 80, 0.2, seed=1), seed=2)
    g.connect("E", "E", {"dist": "normal", "mean": 0.05, "std": 0.05},
              connectivity=fixed_probability(80, 80, 0.1, seed=3), seed=4, delay=2)
    g.connect("E", "I", 0.08, connectivity=fixed_probability(80, 20, 0.3, seed=5),
              same_step=True)
    g.connect("I", "E", -0.25, connectivity=fixed_probability(20, 80, 0.4, seed=6), delay=1)
    return g


def main() -> None:
    g = build()
    with torch.no_grad():
        flt = g.run(STEPS, batch_size=1, record=["input", "E", "I"], backend="torch",
                    reset=True).outputs
    twin = quantize(_spiking_part(g))
    print("quantisation error per projection / region:")
    for e in twin.errors:
        print(f"  {e}")
    for row in twin.spike_error(_spiking_part(g), {"input": flt["input"]}):
        print(f"  {row['name']}: spike mismatch {row['mismatch']:.3f}, rate float "
              f"{row['rate_float']:.3f} twin {row['rate_twin']:.3f} per step, current error "
              f"mean {row['current_mean_err']:.2e} V")
    t0 = time.perf_counter()
    ours = run_graph_partitioned(g, {}, "fixed_pt", "twin", record=["E", "I"], steps=STEPS)
    t1 = time.perf_counter()
    lava = run_graph_partitioned(g, {}, "fixed_pt", "lava", record=["E", "I"], steps=STEPS)
    t2 = time.perf_counter()
    for n in ("E", "I"):
        same = torch.equal(ours[n], lava[n])
        print(f"{n}: twin {int(ours[n].sum())} spikes, Lava fixed_pt {int(lava[n].sum())}, "
              f"float {int(flt[n].sum())}; twin == Lava: {same}")
        assert same
    print(f"twin {t1 - t0:.3f} s, Lava {t2 - t1:.2f} s (compile, start, run, stop)")


def _spiking_part(g: Graph) -> Graph:
    """The spiking regions with the Poisson source as an input region."""
    s = Graph(dt=DT).double()
    s.add(InputRegion("input", 60))
    for n in ("E", "I"):
        s.add(g.regions[n])
    for p in g.projections.values():
        s.add(p)
    return s


if __name__ == "__main__":
    main()
