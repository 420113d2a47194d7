"""``hardware.loihi.quantize`` on an ``aura_snn.graph.Graph``: the fixed-point twin against
the NumPy transcription of Lava's bit-accurate processes in ``loihi_graph_nets.py``
(neuron coefficients written out there from the models' equations), quantisation
errors against analytic bounds, overflow counts against a direct count, and the
refusals. Lava itself: ``test_lava_graph.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from loihi_graph_nets import DT, build, coefficients, feedforward, np_weights, oracle, recurrent

import hardware._graph_twin as gt
import hardware.loihi_graph as lg
from aura_snn.functional.alif import ALIFParameters
from aura_snn.functional.cuba import CubaLIFParameters
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import DenseRegion, Graph, InputRegion, PoissonRegion, SpikingRegion
from hardware.loihi import quantize

NETS = {"feedforward": feedforward, "recurrent": recurrent}


def _x(n: int, binary: bool, seed: int = 3, steps: int = 70, batch: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch, n)) < 0.3) * 1.0 if binary else \
        rng.random((steps, batch, n)) * 0.8


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_graph_twin_matches_numpy_transcription_of_lava(net, binary, backend):
    graph, desc = NETS[net]()
    twin = quantize(graph)
    x = _x(desc["regions"][0][2], binary)
    ours = twin.run({"in": torch.from_numpy(x)}, backend)
    assert set(ours) == set(twin.regions)
    for b in range(x.shape[1]):
        ref = oracle(desc, twin, {"in": x[:, b]})
        for n, s in ref.items():
            assert np.array_equal(ours[n][:, b].numpy(), s), f"region {n} sample {b}"
    assert all(int(s.sum()) > 40 for s in ours.values())  # every region fires


@pytest.mark.parametrize("net", list(NETS))
def test_negative_weight_exponents_match_oracle(net):
    """weight_exp = -2 everywhere (Lava right-shifts each connection's sum, rounding
    toward minus infinity), scales chosen here to fit the largest weight in 8 bits."""
    graph, desc = NETS[net]()
    gains = {n: coefficients(k)[0] for n, k, _ in desc["regions"] if k != "input"}
    peak = {n: max(np.abs(gains[n] * p["w"]).max() for p in desc["projections"]
                   if p["post"] == n) for n in gains}
    twin = quantize(graph, scale={n: 250 / 4 / v for n, v in peak.items()}, weight_exp=-2)
    assert {p.weight_exp for p in twin.projections} == {-2}
    x = _x(desc["regions"][0][2], True, seed=11)
    ours = twin.run(torch.from_numpy(x))
    ref = oracle(desc, twin, {"in": x[:, 0]})
    for n, s in ref.items():
        assert np.array_equal(ours[n][:, 0].numpy(), s), n
    assert all(int(s.sum()) > 10 for s in ref.values())


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_lif_kernels_at_small_integers(backend):
    """Lava's LIF step at a scale where one unit of rounding decides spikes: small
    thresholds and inputs of both signs, so the round-toward-zero decay of negative
    u and v matters; against the transcription in loihi_graph_nets."""
    from loihi_graph_nets import _lava_lif_step

    from hardware._loihi_fixed import lif_fixed

    rng = np.random.default_rng(2)
    a = rng.integers(-6, 9, (300, 1, 64))
    for du, dv, vth in [(0, 0, 3), (700, 300, 2), (4095, 1000, 5), (2000, 4000, 1)]:
        ours = lif_fixed(torch.from_numpy(a), du, dv, vth, backend)[:, 0].numpy()
        u = v = np.zeros(64, np.int64)
        ref = np.zeros((300, 64), bool)
        for t in range(300):
            ref[t], u, v = _lava_lif_step(u, v, a[t, 0], du, dv, vth)
        assert np.array_equal(ours, ref), (du, dv, vth)
        assert 0.05 < ref.mean() < 0.95


def test_step_by_step_path_equals_oracle_on_feedforward_graph(monkeypatch):
    """The path for graphs with cycles (all regions stepped together), forced on the
    feed-forward graph with its same-step edge and per-synapse delays."""
    graph, desc = feedforward()
    twin = quantize(graph)
    monkeypatch.setattr(gt, "_acyclic_order", lambda names, projections: None)
    x = _x(12, True, seed=5)
    ours = twin.run(torch.from_numpy(x))
    ref = oracle(desc, twin, {"in": x[:, 1]})
    assert all(np.array_equal(ours[n][:, 1].numpy(), s) for n, s in ref.items())


def test_registers_from_the_model_equations():
    """Decays, thresholds and the v_leak shift of each region against the equations
    (exact integration): dv = round(4096 (1 - e^{-dt/tau_mem})), du = round(4096 (1 -
    e^{-dt/tau_syn})) - 1 (Lava's ds_offset), or 4095 without a current."""
    graph, desc = feedforward()
    twin = quantize(graph)
    for n, kind, _ in desc["regions"][1:]:
        g, a_u, a_m, th, v_leak = coefficients(kind)
        r = twin.regions[n]
        assert r.dv == round(4096 * (1 - a_m))
        assert r.du == (4095 if a_u == 0 else round(4096 * (1 - a_u)) - 1)
        assert r.vth == round(th * r.scale) and r.v_leak == v_leak
        assert r.vth_f == pytest.approx(th, abs=1e-15)
    assert twin.regions["C"].vth == round(15e-3 * twin.regions["C"].scale)  # -50 - (-65) mV


def test_quantisation_errors_within_analytic_bounds():
    graph, _ = feedforward()
    twin = quantize(graph)
    regions = {e.name: e for e in twin.errors if isinstance(e, lg.RegionError)}
    projs = {e.name: e for e in twin.errors if isinstance(e, lg.ProjectionError)}
    assert set(regions) == set(twin.regions)
    assert set(projs) == {p.name for p in twin.projections}
    for p in twin.projections:
        r = twin.regions[p.post]
        lsb = 2.0 ** p.weight_exp / r.scale  # one weight step, V of drive
        assert projs[p.name].weight_max_err <= 1.5 * lsb + 1e-15  # rounding + mixed-sign cut
        assert projs[p.name].clipped == 0
        assert int(p.weights.abs().max()) >= 128  # the exponent uses the 8 bits
    for n, r in twin.regions.items():
        assert regions[n].threshold_rel_err <= 0.5 / (r.vth_f * r.scale) + 1e-15
        assert regions[n].decay_u_err <= 1 / 8192 and regions[n].decay_v_err <= 1 / 8192


def test_overflow_refused_with_projection_and_amount_or_clipped_on_request():
    graph, desc = feedforward()
    w = desc["projections"][0]["w"]  # in_A, region A (lif, gain 1)
    with pytest.raises(ValueError, match=r"'in_A'.*overflow.*allow_saturation"):
        quantize(graph, scale={"A": 2000.0}, weight_exp={"in_A": 0})
    twin = quantize(graph, scale={"A": 2000.0}, weight_exp={"in_A": 0}, allow_saturation=True)
    raw = np.round(w.T * 2000.0)
    over = np.maximum(raw - 255, 0) + np.maximum(-256 - raw, 0)
    err = next(e for e in twin.errors if e.name == "in_A")
    assert err.clipped == int((over > 0).sum()) > 0
    assert err.clipped_max == pytest.approx(over.max() / 2000.0)
    p = next(q for q in twin.projections if q.name == "in_A")
    assert np.array_equal(p.weights.numpy(), np_weights(w.T, 2000.0, 0))


def test_spike_and_current_error_against_float_graph():
    """Per region: spike mismatch of twin and float graph, and the input current's
    error (twin integers over the scale against the float drive, both from the float
    run's spikes) computed directly here from the graph's weights."""
    graph, desc = feedforward()
    twin = quantize(graph)
    x = torch.from_numpy(_x(12, True, seed=7, steps=50))
    rep = {r["name"]: r for r in twin.spike_error(graph, x)}
    assert graph.state is None  # the float run did not leave its state behind
    res = graph.run(50, {"in": x}, record=list(twin.regions), backend="torch", reset=True)
    flt = {"in": x.numpy(), **{k: v.numpy() for k, v in res.outputs.items()}}
    tw = twin.run(x)
    for n in twin.regions:
        assert rep[n]["mismatch"] == pytest.approx(float((tw[n].numpy() != flt[n]).mean()))
        assert rep[n]["rate_float"] == pytest.approx(float(flt[n].mean()))
        g, scale = coefficients(dict((r[0], r[1]) for r in desc["regions"])[n])[0], \
            twin.regions[n].scale
        cf = np.zeros((50, 2, twin.regions[n].size))
        cq = np.zeros_like(cf)
        for p in desc["projections"]:
            if p["post"] != n:
                continue
            e = next(q.weight_exp for q in twin.projections if q.name == p["name"])
            wi = np_weights(g * p["w"].T, scale, e)
            d = np.broadcast_to(np.asarray(p.get("delay", 0)), p["w"].shape)
            lat = 0 if p.get("same_step") else 1
            for k in np.unique(d):
                m = (d == k)
                src = flt[p["pre"]][:50 - lat - k]
                cf[lat + k:] += src @ (g * p["w"] * m)
                acc = np.round(src @ (wi.T * m)).astype(np.int64)
                cq[lat + k:] += (acc << e if e > 0 else acc >> -e) / scale
        assert rep[n]["current_max_err"] == pytest.approx(np.abs(cq - cf).max(), rel=1e-9)
        assert rep[n]["current_mean_err"] == pytest.approx(np.abs(cq - cf).mean(), rel=1e-9)
        assert 0 < rep[n]["current_mean_err"] < 0.03 * np.abs(cf).mean()  # ~1 % weights


def _one(neuron, params=None, **kw):
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 3))
    g.add(SpikingRegion("X", 4, neuron, params, **kw))
    g.connect("in", "X", torch.ones(3, 4, dtype=torch.float64) * 0.1, name="in_X")
    return g


@pytest.mark.parametrize("make,match", [
    (lambda: _one("alif", ALIFParameters(tau_mem=10e-3, reset="zero")), "'X'.*adaptation"),
    (lambda: _one("cuba_refractory", CubaRefractoryParameters(
        v_leak=-65e-3, v_reset=-65e-3, tau_syn=(5e-3, 5e-3), refractory=2e-3)),
     "'X'.*refractory period of 2 steps"),
    (lambda: _one("cuba_refractory", CubaRefractoryParameters(
        v_leak=-65e-3, v_reset=-65e-3, tau_syn=(5e-3, 10e-3), refractory=0.0)),
     "'X'.*different currents"),
    (lambda: _one("cuba_refractory", CubaRefractoryParameters(refractory=0.0,
                                                              tau_syn=(5e-3, 5e-3))),
     "'X'.*v_reset=-0.06 V differs from v_leak=-0.049 V"),
    (lambda: _one("lif", LIFParameters(reset="subtract")), "'X'.*reset='subtract'"),
    (lambda: _one("cuba", CubaLIFParameters(order="voltage_first", reset="zero")),
     "'X'.*order='voltage_first'"),
    (lambda: _one("lif", LIFParameters(reset="zero", threshold=torch.linspace(0.5, 1, 4))),
     "'X'.*threshold per neuron"),
])
def test_unsupported_neurons_named(make, match):
    with pytest.raises(ValueError, match=match):
        quantize(make())


def test_bad_graphs_named():
    g = _one("lif", LIFParameters(reset="zero"))
    g.add(PoissonRegion("noise", 3, rate=10.0))
    with pytest.raises(ValueError, match="'noise' \\(poisson\\).*InputRegion"):
        quantize(g)
    g = _one("lif", LIFParameters(reset="zero"))
    g.add(DenseRegion("ann", torch.nn.Linear(3, 3), 3, 3))
    with pytest.raises(ValueError, match="'ann' \\(dense\\).*PyTorch"):
        quantize(g)
    g = _one("lif", LIFParameters(reset="zero"))
    g.connect("X", "X", torch.full((4, 4), 0.1, dtype=torch.float64), name="loop", delay=64)
    with pytest.raises(ValueError, match="'loop'.*64 steps"):
        quantize(g)
    g = _one("lif", LIFParameters(reset="zero"))
    with torch.no_grad():
        g.projection("in_X").weight[0, 0] = math.nan
    with pytest.raises(ValueError, match="'in_X'.*NaN"):
        quantize(g)
    g = Graph(dt=DT)
    g.add(InputRegion("in", 3))
    with pytest.raises(ValueError, match="no spiking region"):
        quantize(g)
    with pytest.raises(ValueError, match="n_in, input_shape and delays"):
        quantize(_one("lif", LIFParameters(reset="zero")), n_in=3)


def test_multapses_with_different_delays_refused():
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("X", 2, "lif", LIFParameters(reset="zero")))
    w = torch.sparse_coo_tensor(torch.tensor([[0, 0], [1, 1]]), torch.tensor([0.5, 0.5]),
                                (2, 2), dtype=torch.float64, check_invariants=True)
    g.connect("in", "X", w, name="multi", delay=torch.tensor([1, 3]))
    with pytest.raises(ValueError, match="'multi'.*0 -> 1.*delays 1 and 3"):
        quantize(g)


def test_bad_inputs_named():
    twin = quantize(feedforward()[0])
    with pytest.raises(ValueError, match=r"inputs\['in'\] must be \[T, B, 12\]"):
        twin.run(torch.zeros(5, 1, 11))
    with pytest.raises(ValueError, match="exactly the input regions"):
        twin.run({"input": torch.zeros(5, 1, 12)})
    with pytest.raises(ValueError, match="NaN"):
        twin.run(torch.full((5, 1, 12), math.nan))
    g = build([("a", "input", 2), ("b", "input", 2), ("X", "lif", 2)],
              [dict(name="p", pre="a", post="X", w=np.ones((2, 2))),
               dict(name="q", pre="b", post="X", w=np.ones((2, 2)))])
    with pytest.raises(ValueError, match="mapping over the input regions"):
        quantize(g).run(torch.zeros(5, 1, 2))
    with pytest.raises(ValueError, match="disagree"):
        quantize(g).run({"a": torch.zeros(5, 1, 2), "b": torch.zeros(6, 1, 2)})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("net", list(NETS))
def test_graph_twin_on_gpu_equals_cpu(net):
    twin = quantize(NETS[net]()[0])
    x = torch.from_numpy(_x(twin.inputs["in"], False))
    cpu, gpu = twin.run(x), twin.run(x.cuda())
    assert all(torch.equal(cpu[n], gpu[n].cpu()) for n in cpu)
