"""Hybrid partition of a graph: ANN regions in PyTorch, spiking regions in Lava 0.10.
Oracles: the all-PyTorch run of the same graph (``floating_pt``) and the graph twin,
itself checked against Lava and a NumPy transcription (``fixed_pt``)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn.functional.cuba import CubaLIFParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import DenseRegion, Graph, InputRegion, PoissonRegion, SpikingRegion
from hardware.partition_graph import partition_graph, run_graph_partitioned

DT = 1e-3


def _graph(loop: bool = False) -> Graph:
    """x(8) -> enc (Linear+ReLU, dense) -> S1 (lif) -> S2 (cuba, delay 2) -> readout
    (Linear+Tanh, dense); Poisson noise -> S1; x -> readout (same-step)."""
    torch.manual_seed(3)
    g = Graph(dt=DT, seed=5).double()
    g.add(InputRegion("x", 8))
    g.add(DenseRegion("enc", nn.Sequential(nn.Linear(8, 12), nn.ReLU()).double(), 12, 8))
    g.add(PoissonRegion("noise", 6, rate=150.0))
    g.add(SpikingRegion("S1", 12, "lif", LIFParameters(tau_mem=8e-3, threshold=1.0,
                                                        reset="zero", input_scaling="direct")))
    g.add(SpikingRegion("S2", 6, "cuba", CubaLIFParameters(
        tau_mem=10e-3, tau_syn=4e-3, threshold=0.5, reset="zero", input_scaling="direct")))
    g.add(DenseRegion("readout", nn.Sequential(nn.Linear(6, 3), nn.Tanh()).double(), 3, 6))
    rng = np.random.default_rng(0)
    w = {"x_enc": (8, 8), "enc_S1": (12, 12), "noise_S1": (6, 12), "S1_S2": (12, 6),
         "S2_out": (6, 6), "x_out": (8, 6)}
    t = {k: torch.from_numpy(rng.normal(0.25, 0.4, s)) for k, s in w.items()}
    g.connect("x", "enc", torch.eye(8, dtype=torch.float64), name="x_enc", same_step=True)
    g.connect("enc", "S1", t["enc_S1"] * 0.8, name="enc_S1", same_step=True)
    g.connect("noise", "S1", t["noise_S1"].abs() * 1.5, name="noise_S1")
    g.connect("S1", "S2", t["S1_S2"], name="S1_S2", delay=2)
    g.connect("S2", "readout", t["S2_out"], name="S2_out")
    g.connect("x", "readout", t["x_out"] * 0.1, name="x_out", same_step=True)
    if loop:
        g.connect("readout", "S1", torch.ones(3, 12, dtype=torch.float64) * 0.1, name="back")
    return g


def _x(steps: int = 40, batch: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).random((steps, batch, 8)) * 1.5)


def test_parts():
    parts = partition_graph(_graph())
    assert parts.pre == ("enc", "noise") and parts.snn == ("S1", "S2")
    assert parts.post == ("readout",) and parts.inputs == ("x",)
    with pytest.raises(ValueError, match=r"\['readout'\].*spiking -> ANN -> spiking"):
        partition_graph(_graph(loop=True))


def test_twin_target_floating_pt_equals_all_pytorch_run():
    g, x = _graph(), _x(batch=2)
    with torch.no_grad():
        ref = g.run(40, {"x": x}, record=["S1", "S2", "readout"], backend="torch", reset=True)
    out = run_graph_partitioned(g, {"x": x}, "floating_pt", "twin",
                                record=["S1", "S2", "readout"])
    for n in ("S1", "S2", "readout"):
        assert torch.equal(out[n], ref.outputs[n]), n
    assert ref.outputs["S2"].sum() > 10


lava = pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                          reason="lava-nc not installed (make setup installs it)")


@lava
def test_lava_floating_pt_equals_all_pytorch_run():
    g, x = _graph(), _x()
    with torch.no_grad():
        ref = g.run(40, {"x": x}, record=["S2", "readout"], backend="torch", reset=True)
    out = run_graph_partitioned(g, {"x": x}, "floating_pt", "lava")
    assert set(out) == {"readout"}
    assert torch.equal(out["readout"], ref.outputs["readout"])
    assert ref.outputs["S2"].sum() > 10


@lava
def test_lava_fixed_pt_equals_twin():
    g, x = _graph(), _x()
    lava_out = run_graph_partitioned(g, {"x": x}, "fixed_pt", "lava", record=["S2", "readout"])
    twin_out = run_graph_partitioned(g, {"x": x}, "fixed_pt", "twin", record=["S2", "readout"])
    assert torch.equal(lava_out["S2"], twin_out["S2"]) and lava_out["S2"].sum() > 10
    assert torch.equal(lava_out["readout"], twin_out["readout"])


def test_bad_arguments_named():
    g = _graph()
    with pytest.raises(ValueError, match="target"):
        run_graph_partitioned(g, {"x": _x()}, "floating_pt", "gpu")
    with pytest.raises(ValueError, match="unknown region 'nope'"):
        run_graph_partitioned(g, {"x": _x()}, record=["nope"])
    with pytest.raises(ValueError, match="steps is needed"):
        run_graph_partitioned(g, {})
    g2 = Graph(dt=DT)
    g2.add(InputRegion("x", 2))
    g2.add(DenseRegion("d", nn.Linear(2, 2), 2, 2))
    with pytest.raises(ValueError, match="no spiking region"):
        partition_graph(g2)
