"""A :class:`aura_snn.graph.Graph` exported to NIR and run by :func:`hardware.nir.from_nir`.

Oracle: :meth:`Graph.run` on the same input (its own stepper, not the NIR executor):
identical spikes in float64 for a graph with an input region, LIF and CubaLIF regions
(functional parameters and a neuron module), dense and sparse projections with their
zeros, a uniform delay, per-synapse delays, a same-step edge and a recurrent (delayed)
projection. Features NIR cannot express are refused with the region or projection
named, or exported approximately when asked.
"""

from __future__ import annotations

import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional.cuba import CubaLIFParameters
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, PoissonRegion, SpikingRegion
from aura_snn.graph.connectivity import fixed_probability
from aura_snn.neurons import CubaLIF
from hardware.nir import from_nir, read, to_nir, write

pytest.importorskip("nir")
DT = 1e-3


def build() -> Graph:
    g = Graph(dt=DT, seed=1).double()
    g.add(InputRegion("inp", 8))
    g.add(SpikingRegion("A", 10, "lif", LIFParameters(tau_mem=8e-3, threshold=0.6,
                                                      reset="zero", v_reset=0.1)))
    g.add(SpikingRegion("B", 6, CubaLIF(6e-3, 3e-3, dt=DT, reset="zero", threshold=0.4,
                                        order="voltage_first").double()))
    g.add(SpikingRegion("C", 5, "cuba", CubaLIFParameters(tau_mem=5e-3, tau_syn=2e-3,
                                                          reset="zero", threshold=1.0)))
    gen = torch.Generator().manual_seed(4)
    w = torch.rand(8, 10, generator=gen, dtype=torch.float64) * 0.9
    w[w < 0.3] = 0.0                                    # zeros in a dense projection
    g.connect("inp", "A", w, delay=0)
    conn = fixed_probability(10, 6, 0.5, seed=2)
    g.connect("A", "B", connectivity=conn, weight=0.5, delay=torch.randint(
        0, 3, (conn.n_synapses,), generator=gen))       # per-synapse delays 0..2
    g.connect("inp", "B", torch.rand(8, 6, generator=gen, dtype=torch.float64) * 0.3,
              same_step=True)
    g.connect("B", "A", -0.4 * torch.rand(6, 10, generator=gen, dtype=torch.float64),
              delay=1)                                  # recurrent, through a cycle
    g.connect("B", "C", 0.4 * torch.rand(6, 5, generator=gen, dtype=torch.float64), sparse=True,
              delay=2)
    return g


def test_graph_export_spikes_as_graph_run(tmp_path) -> None:
    g = build()
    x = (torch.rand(120, 2, 8, dtype=torch.float64) < 0.3).double()
    ref = g.run(120, {"inp": x}, record=["A", "B", "C"], reset=True).outputs
    nir_graph = to_nir(g, outputs=["A", "B", "C"])
    write(tmp_path / "g.nir", nir_graph)
    out = from_nir(read(tmp_path / "g.nir"), dtype=torch.float64)({"inp": x})
    for name in "ABC":
        assert 0.02 < float(ref[name].mean()) < 0.7, name
        assert torch.equal(out[f"{name}_output"], ref[name]), name   # 120 x 2 x (10+6+5)
    kinds = {k: type(v).__name__ for k, v in nir_graph.nodes.items()}
    assert kinds["A"] == "LIF" and kinds["B"] == "CubaLIF" and kinds["B_late"] == "Delay"
    assert {k for k in kinds if k.startswith("A-B_d")} >= {"A-B_d0", "A-B_d1", "A-B_d2"}
    assert nir_graph.nodes["B-C_delay"].delay[0] == pytest.approx(3 * DT)


def test_graph_features_nir_cannot_express_are_named() -> None:
    g = Graph(dt=DT).double()
    g.add(PoissonRegion("noise", 4, rate=50.0))
    g.add(SpikingRegion("E", 3, "lif", LIFParameters(reset="zero")))
    g.connect("noise", "E", torch.ones(4, 3, dtype=torch.float64))
    with pytest.raises(ParameterError, match="region 'noise'.*Poisson.*'poisson'"):
        to_nir(g)
    with pytest.warns(UserWarning, match="noise"):
        assert type(to_nir(g, approximate={"poisson"}).nodes["noise"]).__name__ == "Input"
    h = Graph(dt=1e-4).double()
    h.add(InputRegion("i", 2))
    h.add(SpikingRegion("R", 2, "cuba_refractory", CubaRefractoryParameters(
        tau_syn=(5e-3,), receptors=("exc",))))
    h.connect("i", "R", torch.ones(2, 2, dtype=torch.float64))
    with pytest.raises(ParameterError, match="region 'R'.*refractory"):
        to_nir(h)
