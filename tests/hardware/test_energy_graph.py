"""Energy of graph runs (:mod:`hardware.energy_graph`).

Oracle: counts computed here with numpy from recorded spike events and the test's own
connectivity, times the published figures written out below (Horowitz ISSCC 2014 for
cmos45; Davies et al., IEEE Micro 2018, Table 2 for Loihi), not read from
``hardware.energy.TARGETS``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn.graph import DenseRegion, Graph, PoissonRegion, SpikingRegion, fixed_probability
from hardware.energy import format_report
from hardware.energy_graph import measure_graph

# pJ: cmos45 float32 MAC = 3.7 + 0.9, AC = 0.9, SRAM read/write 10; Loihi synaptic
# op 23.6, neuron update active 81 / inactive 52, spike 1.7
CMOS = {"mac": 4.6, "ac": 0.9, "mem": 10.0}
LOIHI = {"syn": 23.6, "active": 81.0, "inactive": 52.0, "spike": 1.7}
T, B = 300, 2


def _graph() -> tuple[Graph, dict[str, np.ndarray]]:
    g = Graph(dt=1e-4, seed=5).double()
    g.add(PoissonRegion("in", 60, rate=250.0))
    g.add(SpikingRegion("E", 30, "cuba_refractory"))
    c_in = fixed_probability(60, 30, 0.25, seed=3)
    c_ee = fixed_probability(30, 30, 0.2, seed=4)
    g.connect("in", "E", connectivity=c_in, weight=2 ** -7, receptor="exc")
    g.connect("E", "E", connectivity=c_ee, weight=2 ** -8, receptor="exc", delay=2)
    return g, {"in-E": np.bincount(c_in.pre, minlength=60),
               "E-E": np.bincount(c_ee.pre, minlength=30)}


def _measured(target: str, backend: str = "engine", **kw):  # noqa: ANN202
    g, deg = _graph()
    rec = {n: g.monitor(n, "spikes") for n in ("in", "E")}
    rep = measure_graph(g, T, target, batch_size=B, backend=backend, **kw)
    ev = {n: m.data()["i"] for n, m in rec.items()}
    acs = {"in-E": deg["in-E"][ev["in"]].sum(), "E-E": deg["E-E"][ev["E"]].sum()}
    nnz = {p: d.sum() for p, d in deg.items()}
    return rep, acs, nnz, len(ev["E"])


@pytest.mark.parametrize("backend", ["torch", "engine"])
def test_cmos45_energies_equal_hand_computation(backend: str) -> None:
    rep, acs, nnz, spikes = _measured("cmos45", backend)
    assert rep["backend"] == backend and rep["samples"] == B and rep["steps"] == T
    updates = 30 * T * B
    compute = CMOS["ac"] * (acs["in-E"] + acs["E-E"])
    memory = compute + CMOS["mem"] * (acs["in-E"] + acs["E-E"] + updates) + CMOS["mem"] * updates
    dense = CMOS["mac"] * (nnz["in-E"] + nnz["E-E"]) * T * B
    p = rep["per_inference"]
    assert p["compute_pJ"] == pytest.approx(compute / B, rel=1e-12)
    assert p["memory_pJ"] == pytest.approx(memory / B, rel=1e-12)
    assert p["dense_ann_pJ"] == pytest.approx(dense / B, rel=1e-12)
    assert rep["per_step"]["compute_per_step_pJ"] == pytest.approx(compute / B / T, rel=1e-12)
    lay = rep["layers"]
    assert lay["in-E"]["compute_pJ"] == pytest.approx(CMOS["ac"] * acs["in-E"])
    assert lay["E"]["spikes"] == spikes > 0
    assert rep["activation_sparsity"] == pytest.approx(1 - spikes / updates)
    # the printed table is per inference, like the totals
    row = next(r for r in format_report(rep).splitlines() if r.startswith("E-E "))
    assert float(row.split()[-2]) == pytest.approx(CMOS["ac"] * acs["E-E"] / B, abs=0.06)


def test_loihi_energies_equal_hand_computation() -> None:
    rep, acs, _, spikes = _measured("loihi")
    updates = 30 * T * B
    neuron = LOIHI["active"] * spikes + LOIHI["inactive"] * (updates - spikes) + \
        LOIHI["spike"] * spikes
    compute = LOIHI["syn"] * (acs["in-E"] + acs["E-E"]) + neuron
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(compute / B, rel=1e-12)
    assert rep["layers"]["E"]["compute_pJ"] == pytest.approx(neuron, rel=1e-12)
    # the Poisson source is not a neuron update: no target charges it
    assert rep["layers"]["in"]["compute_pJ"] == 0.0


def _ann_graph() -> tuple[Graph, dict[str, torch.Tensor], nn.Linear, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    g = Graph(dt=1e-3, seed=1).double()
    lin = nn.Linear(3, 5, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(5, 3, generator=gen, dtype=torch.float64))
    g.add(DenseRegion("ann", nn.Sequential(lin, nn.ReLU()), 5, 3))
    g.add(SpikingRegion("E", 4, "lif"))
    w = torch.rand(5, 4, generator=gen, dtype=torch.float64)
    w[0] = 0.0
    g.connect("ann", "E", w, name="AE", same_step=True)
    x = torch.randn(T, 1, 3, generator=gen, dtype=torch.float64)
    return g, {"ann": x}, lin, w


def test_real_valued_projection_is_priced_as_macs_and_refused_on_loihi() -> None:
    g, inputs, lin, w = _ann_graph()
    with pytest.raises(ValueError, match=r"'loihi' has no MAC.*\['AE'\].*\['ann'\]"):
        measure_graph(g, T, "loihi", inputs=inputs)
    assert g.state is None  # refused before running
    rep = measure_graph(g, T, "cmos45", inputs=inputs)
    y = torch.relu(inputs["ann"][:, 0] @ lin.weight.detach().T).numpy()  # [T, 5]
    macs_ae = ((y != 0) * (w.numpy() != 0).sum(1)).sum()
    macs_lin = T * 3 * 5  # every input value is nonzero, every weight too
    assert rep["layers"]["AE"]["macs"] == macs_ae > 0
    assert rep["layers"]["ann.0"]["macs"] == macs_lin
    assert rep["per_inference"]["compute_pJ"] == pytest.approx(CMOS["mac"] * (macs_ae + macs_lin))
    lo = measure_graph(g, T, "loihi", inputs=inputs, strict=False)
    spikes = lo["layers"]["E"]["spikes"]
    neuron = 81.0 * spikes + 52.0 * (4 * T - spikes) + 1.7 * spikes
    assert lo["per_inference"]["compute_pJ"] == pytest.approx(
        LOIHI["syn"] * (macs_ae + macs_lin) + neuron)


def test_json_is_strict_and_holds_the_report(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "energy.json"
    rep, *_ = _measured("cmos45", json_path=path)

    def refuse(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    data = json.loads(path.read_text(), parse_constant=refuse)
    assert data["layers"]["in-E"]["activation_sparsity"] is None
    assert math.isnan(rep["layers"]["in-E"]["activation_sparsity"])
    assert data["per_inference"] == rep["per_inference"]
    assert data["footprint_bytes"] == rep["footprint_bytes"]


def test_bad_arguments_name_the_parameter() -> None:
    g, _ = _graph()
    with pytest.raises(TypeError, match="graph: expected an aura_snn Graph"):
        measure_graph(nn.Linear(2, 2), 10)
    with pytest.raises(ValueError, match=r"target: unknown 'tpu'; known"):
        measure_graph(g, 10, "tpu")
    with pytest.raises(ValueError, match="loihi2.*unavailable"):
        measure_graph(g, 10, "loihi2")
