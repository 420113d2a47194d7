"""The compiled engine computes exactly what the torch stepper computes.

Weights and fed values are dyadic (multiples of 2**-k), so the sums of synaptic inputs
are exact whatever order the two backends add them in; everything else is done in
the same order, so spikes, membranes, currents and refractory counters must be equal
bit for bit, over thousands of steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn import CubaLIF
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import (
    DenseRegion,
    Graph,
    InputRegion,
    PoissonRegion,
    SpikingRegion,
    _kernels,
    fixed_indegree,
    fixed_probability,
)
from aura_snn.graph._rng import region_key, uniform_torch
from aura_snn.graph.engine import unsupported_reason

W = 2.0 ** -10  # V


def _network(dtype: torch.dtype, seed: int = 0) -> Graph:
    """A recurrent E/I network with every supported model, delays and Poisson input."""
    g = Graph(dt=1e-4, seed=seed).to(dtype)
    g.add(PoissonRegion("noise", 40, rate=torch.linspace(20.0, 200.0, 40)))
    g.add(InputRegion("drive", 6, spiking=False))
    g.add(SpikingRegion("E", 60, "cuba_refractory", CubaRefractoryParameters(),
                        init={"v": {"uniform": [-0.060, -0.050]}}))
    g.add(SpikingRegion("I", 15, "cuba_refractory",
                        CubaRefractoryParameters(refractory=2e-3, reset="subtract"),
                        init={"v": {"uniform": [-0.060, -0.050]}}))
    g.add(SpikingRegion("L", 10, "lif", LIFParameters(tau_mem=10e-3, threshold=0.5,
                                                     reset="subtract")))
    g.add(SpikingRegion("C", 8, CubaLIF(tau_mem=10e-3, tau_syn=4e-3, dt=1e-4,
                                        threshold=0.3, reset="zero")))
    g.add(SpikingRegion("V", 8, "cuba", _cuba_voltage_first()))
    g.connect("noise", "E", 8 * W, connectivity=fixed_probability(40, 60, 0.25, seed=1),
              receptor="exc")
    g.connect("drive", "E", torch.full((6, 60), 2 * W, dtype=dtype), receptor="exc")
    g.connect("E", "E", 2 * W, connectivity=fixed_indegree(60, 60, 6, seed=2),
              receptor="exc", delay=torch.randint(0, 5, (360,),
                                                  generator=torch.Generator().manual_seed(3)))
    g.connect("E", "I", 4 * W, connectivity=fixed_probability(60, 15, 0.2, seed=4),
              receptor="exc", sign="exc")
    g.connect("I", "E", -8 * W, connectivity=fixed_probability(15, 60, 0.3, seed=5),
              receptor="inh", sign="inh", delay=2)
    g.connect("I", "I", -4 * W, connectivity=fixed_probability(15, 15, 0.3, seed=6),
              receptor="inh")
    g.connect("E", "L", 4.0, connectivity=fixed_probability(60, 10, 0.3, seed=7))
    g.connect("L", "C", torch.full((10, 8), 0.25, dtype=dtype))
    g.connect("E", "V", 0.0625, connectivity=fixed_probability(60, 8, 0.3, seed=8))
    g.connect("C", "L", -2.0, connectivity=fixed_probability(8, 10, 0.5, seed=9), delay=1)
    return g


def _cuba_voltage_first():  # noqa: ANN202
    from aura_snn.functional.cuba import CubaLIFParameters

    return CubaLIFParameters(tau_mem=10e-3, tau_syn=4e-3, threshold=0.2, reset="zero",
                             order="voltage_first")


def _drive(T: int, B: int, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    return (torch.randint(0, 8, (T, B, 6), generator=g) * 0.25).to(dtype)  # dyadic values


def _run(g: Graph, T: int, B: int, backend: str, dtype: torch.dtype) -> tuple:
    mons = [g.monitor(n, "spikes") for n in ("E", "I", "L", "C", "V", "noise")]
    mv = g.monitor("E", "v", neurons=[0, 5, 59], every=7)
    mi = g.monitor("I", "i", every=3)
    mr = g.monitor("E", "ref", neurons=[1, 2])
    mo = g.monitor("drive", "output", every=5)
    with torch.no_grad():
        r = g.run(T, inputs={"drive": _drive(T, B, dtype)}, record=["E", "C", "noise"],
                  backend=backend)
    assert r.backend == backend
    return r, [m.data() for m in mons], mv.data(), mi.data(), mr.data(), mo.data()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_engine_equals_torch_stepper(dtype: torch.dtype) -> None:
    T, B = 2500 if dtype == torch.float64 else 1000, 2
    assert unsupported_reason(_network(dtype)) is None
    ref = _run(_network(dtype), T, B, "torch", dtype)
    eng = _run(_network(dtype), T, B, "engine", dtype)
    r0, r1 = ref[0], eng[0]
    for name in ("E", "C", "noise"):
        assert torch.equal(r0.outputs[name], r1.outputs[name]), name
    assert r0.outputs["E"].sum() > 50 and r0.outputs["C"].sum() > 0
    for name, s0 in r0.state.regions.items():
        s1 = r1.state.regions[name]
        if s0 is None:
            assert s1 is None
            continue
        for f, a, b in zip(s0._fields, s0, s1, strict=True):
            assert torch.equal(a, b), (name, f)
    for name, ring in r0.state.pending.items():
        for k, slot in enumerate(ring):
            for x0, x1 in zip(slot, r1.state.pending[name][k], strict=True):
                z0 = torch.zeros(1) if x0 is None else x0
                z1 = torch.zeros(1) if x1 is None else x1
                assert torch.equal(z0.expand_as(z1) if x0 is None else z0,
                                   z1.expand_as(z0) if x1 is None else z1), (name, k)
    for d0, d1 in zip(ref[1], eng[1], strict=True):   # spike events of every region
        for key in ("t", "b", "i"):
            assert np.array_equal(d0[key], d1[key])
    for a, b in zip(ref[2:], eng[2:], strict=True):   # v, i, ref, output probes
        assert np.array_equal(a["t"], b["t"])
        assert np.array_equal(a["values"], b["values"])
    for name in ("L", "V"):
        assert len(ref[1][("E", "I", "L", "C", "V").index(name)]["t"]) > 0, name


def test_engine_and_torch_states_interchange() -> None:
    T = 600
    drive = _drive(2 * T, 1, torch.float64)
    g = _network(torch.float64)
    with torch.no_grad():
        full = g.run(2 * T, inputs={"drive": drive}, record=["E"], backend="torch").outputs["E"]
    g = _network(torch.float64)
    with torch.no_grad():
        a = g.run(T, inputs={"drive": drive[:T]}, record=["E"], backend="engine").outputs["E"]
        b = g.run(T, inputs={"drive": drive[T:]}, record=["E"], backend="torch").outputs["E"]
    assert torch.equal(torch.cat([a, b]), full)


def test_counter_rng_is_identical_in_torch_and_numba() -> None:
    key = region_key(12345)
    u_t = uniform_torch(key, 77, 3, 50).numpy()
    k64 = np.uint64(key & ((1 << 64) - 1))
    for b in range(3):
        for j in range(50):
            ctr = k64 + np.uint64((77 * 3 + b) * 50 + j)
            assert _kernels.uniform(ctr) == u_t[b, j]
    assert 0.0 <= u_t.min() and u_t.max() < 1.0
    assert abs(u_t.mean() - 0.5) < 0.1


def test_poisson_rate_and_independence() -> None:
    g = Graph(dt=1e-3, seed=9)
    g.add(PoissonRegion("p", 200, rate=50.0))
    m = g.monitor("p")
    with torch.no_grad():
        g.run(4000)
    rec = m.data()
    rate = len(rec["t"]) / (200 * 4.0)
    expect = -np.expm1(-50.0 * 1e-3) / 1e-3          # 48.8 Hz: at most one spike per step
    assert abs(rate - expect) < 5 * np.sqrt(expect / (200 * 4.0))
    counts = np.bincount(rec["i"], minlength=200)
    assert counts.std() < 2 * np.sqrt(counts.mean())  # no neuron-locked streams


def test_engine_refuses_what_it_does_not_support() -> None:
    from torch import nn
    g = Graph(dt=1e-3)
    g.add(DenseRegion("d", nn.Linear(2, 2), 2, 2))
    assert "dense" in unsupported_reason(g)
    # per-neuron values: shaped [n], in the graph's precision (torch would promote a
    # float64 tensor in a float32 graph: the engine cannot compute what it computes)
    g = Graph(dt=1e-3)
    g.add(SpikingRegion("l", 3, "lif", LIFParameters(threshold=torch.ones(3, dtype=torch.float64))))
    reason = unsupported_reason(g)
    assert "per-neuron" in reason and "threshold" in reason and "float64" in reason
    g = Graph(dt=1e-3)
    g.add(SpikingRegion("l", 3, "lif", LIFParameters(threshold=torch.ones(2, 3))))
    reason = unsupported_reason(g)
    assert "threshold" in reason and "(2, 3)" in reason
    g = Graph(dt=1e-3)
    g.add(SpikingRegion("l", 3, "lif", LIFParameters(threshold=torch.ones(3))))
    assert unsupported_reason(g) is None
    # auto falls back to torch, and to torch whenever gradients are needed
    g = Graph(dt=1e-3)
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("l", 3, "lif"))
    g.connect("in", "l", torch.ones(2, 3), learnable=True)
    x = torch.ones(5, 1, 2)
    assert g.run(5, inputs={"in": x}).backend == "torch"
    with torch.no_grad():
        assert g.run(5, inputs={"in": x}).backend == "engine"


# -- the whole compiled family: ALIF, per-neuron parameters, next-step resets ---------------

def _family_network(dtype: torch.dtype = torch.float64, seed: int = 0) -> Graph:
    """Every model of the registry with adaptation, per-neuron parameters (tensors of
    shape [n] for thresholds, potentials and time constants), both reset timings and
    1, 2 and 3 receptors, driven by Poisson noise and a fed input, with delays."""
    from aura_snn import ALIF
    from aura_snn.functional.alif import ALIFParameters
    from aura_snn.functional.cuba import CubaLIFParameters

    def lin(lo: float, hi: float, n: int) -> torch.Tensor:
        return torch.linspace(lo, hi, n, dtype=dtype)

    g = Graph(dt=1e-4, seed=seed).to(dtype)
    g.add(PoissonRegion("noise", 40, rate=torch.linspace(50.0, 400.0, 40)))
    g.add(InputRegion("drive", 6, spiking=False))
    g.add(SpikingRegion("A", 20, "alif", ALIFParameters(
        threshold=0.5, tau_mem=10e-3, tau_adapt=30e-3, beta=0.25)))
    g.add(SpikingRegion("Am", 12, ALIF(tau_mem=lin(8e-3, 16e-3, 12), tau_adapt=40e-3, beta=0.5,
                                      dt=1e-4, threshold=0.4, reset="zero", v_reset=-0.125)))
    g.add(SpikingRegion("Ap", 12, "alif", ALIFParameters(
        threshold=lin(0.3, 0.6, 12), tau_mem=10e-3, tau_adapt=lin(10e-3, 60e-3, 12),
        beta=lin(0.0, 0.5, 12), v_leak=lin(0.0, 0.05, 12), reset="none")))
    g.add(SpikingRegion("Lp", 10, "lif", LIFParameters(
        tau_mem=lin(5e-3, 20e-3, 10), threshold=lin(0.2, 0.5, 10), v_leak=lin(-0.1, 0.1, 10),
        v_reset=lin(-0.2, 0.0, 10), reset="zero")))
    g.add(SpikingRegion("Ln", 10, "lif", LIFParameters(tau_mem=10e-3, threshold=0.4,
                                                      reset_at="next_step")))
    g.add(SpikingRegion("Cn", 8, "cuba", CubaLIFParameters(
        tau_mem=10e-3, tau_syn=4e-3, threshold=0.2, reset="zero", reset_at="next_step",
        v_reset=lin(-0.1, 0.0, 8))))
    g.add(SpikingRegion("Cp", 8, "cuba", CubaLIFParameters(
        tau_mem=lin(6e-3, 12e-3, 8), tau_syn=lin(2e-3, 6e-3, 8), threshold=0.2,
        order="voltage_first")))
    g.add(SpikingRegion("Cc", 8, "cuba", CubaLIFParameters(
        tau_mem=10e-3, tau_syn=lin(2e-3, 6e-3, 8), threshold=0.2)))
    # per-neuron threshold/reset only (the engine's level 1) and membrane (level 2)
    g.add(SpikingRegion("L", 8, "lif", LIFParameters(tau_mem=10e-3, threshold=0.4,
                                                    reset="none")))
    g.add(SpikingRegion("C", 8, "cuba", CubaLIFParameters(tau_mem=10e-3, tau_syn=4e-3,
                                                         threshold=0.2, reset="zero")))
    g.add(SpikingRegion("Lf", 8, "lif", LIFParameters(
        tau_mem=10e-3, threshold=lin(0.3, 0.6, 8), v_reset=lin(-0.1, 0.0, 8), reset="zero")))
    g.add(SpikingRegion("Af", 8, "alif", ALIFParameters(
        threshold=lin(0.3, 0.6, 8), tau_mem=10e-3, tau_adapt=30e-3, beta=lin(0.1, 0.4, 8))))
    g.add(SpikingRegion("Cf", 8, "cuba", CubaLIFParameters(
        tau_mem=10e-3, tau_syn=4e-3, threshold=lin(0.15, 0.25, 8))))
    g.add(SpikingRegion("Cm", 8, "cuba", CubaLIFParameters(
        tau_mem=lin(6e-3, 12e-3, 8), tau_syn=4e-3, threshold=0.2, v_leak=lin(0.0, 0.02, 8),
        order="voltage_first")))
    # per-neuron thresholds only (level 3) and tau_mem + thresholds (level 4), the
    # per-neuron sets read as plain rows; a per-neuron v_reset alone (level 1)
    g.add(SpikingRegion("Lt", 8, "lif", LIFParameters(
        tau_mem=10e-3, threshold=lin(0.3, 0.6, 8), reset="zero")))
    g.add(SpikingRegion("Lm", 8, "lif", LIFParameters(
        tau_mem=lin(6e-3, 12e-3, 8), threshold=lin(0.3, 0.6, 8), reset="subtract")))
    g.add(SpikingRegion("At", 8, "alif", ALIFParameters(
        threshold=lin(0.3, 0.6, 8), tau_mem=10e-3, tau_adapt=30e-3, beta=0.25)))
    g.add(SpikingRegion("Cr", 8, "cuba", CubaLIFParameters(
        tau_mem=10e-3, tau_syn=4e-3, threshold=0.2, reset="zero", v_reset=lin(-0.1, 0.0, 8))))
    g.add(SpikingRegion("Ct", 8, "cuba", CubaLIFParameters(
        tau_mem=lin(6e-3, 12e-3, 8), tau_syn=4e-3, threshold=lin(0.15, 0.25, 8))))
    g.add(SpikingRegion("Rp", 30, "cuba_refractory", CubaRefractoryParameters(
        threshold=lin(-0.052, -0.048, 30), tau_mem=lin(15e-3, 25e-3, 30),
        tau_syn=(lin(4e-3, 6e-3, 30), 10e-3), refractory=2e-3),
        init={"v": {"uniform": [-0.060, -0.050]}}))
    g.add(SpikingRegion("R", 20, "cuba_refractory", CubaRefractoryParameters(refractory=2e-3),
                        init={"v": {"uniform": [-0.060, -0.050]}}))
    g.add(SpikingRegion("Rf", 20, "cuba_refractory", CubaRefractoryParameters(
        threshold=lin(-0.052, -0.048, 20), v_reset=lin(-0.062, -0.058, 20), refractory=2e-3),
        init={"v": {"uniform": [-0.060, -0.050]}}))
    g.add(SpikingRegion("Rm", 20, "cuba_refractory", CubaRefractoryParameters(
        tau_mem=lin(15e-3, 25e-3, 20), refractory=2e-3),
        init={"v": {"uniform": [-0.060, -0.050]}}))
    g.add(SpikingRegion("R3", 10, "cuba_refractory", CubaRefractoryParameters(
        tau_syn=(5e-3, 10e-3, 3e-3), receptors=("exc", "inh", "nmda"), reset="subtract"),
        init={"v": {"uniform": [-0.060, -0.050]}}))
    g.add(SpikingRegion("Rl", 20, "cuba_refractory", CubaRefractoryParameters(
        v_leak=lin(-0.072, -0.068, 20), refractory=2e-3),
        init={"v": {"uniform": [-0.060, -0.050]}}))
    g.add(SpikingRegion("Rt", 20, "cuba_refractory", CubaRefractoryParameters(
        threshold=lin(-0.052, -0.048, 20), refractory=2e-3),
        init={"v": {"uniform": [-0.060, -0.050]}}))
    conn = 0
    for name in ("A", "Am", "Ap", "Lp", "Ln", "Cn", "Cp", "Cc", "L", "C", "Lf", "Af", "Cf",
                 "Cm", "Lt", "Lm", "At", "Cr", "Ct"):
        n = g.regions[name].size
        conn += 1
        cuba = name.startswith("C")
        g.connect("noise", name, 4 * W if cuba else 2.0, delay=conn % 3,
                  connectivity=fixed_probability(40, n, 0.3, seed=conn))
        g.connect("drive", name, torch.full((6, n), W if cuba else 0.125, dtype=dtype))
    g.connect("A", "A", -0.25, connectivity=fixed_probability(20, 20, 0.2, seed=20))
    g.connect("A", "Lp", 0.5, connectivity=fixed_probability(20, 10, 0.3, seed=21), delay=2)
    for k, (pre, post, rec, w) in enumerate([("noise", "Rp", "exc", 8 * W),
                                             ("Rp", "Rp", "exc", 2 * W),
                                             ("Rp", "Rp", "inh", -4 * W),
                                             ("noise", "Rf", "exc", 8 * W),
                                             ("noise", "R", "exc", 8 * W),
                                             ("R", "Rf", "exc", 4 * W),
                                             ("Rm", "R", "inh", -4 * W),
                                             ("Rf", "Rm", "exc", 4 * W),
                                             ("noise", "Rm", "exc", 8 * W),
                                             ("Rm", "Rf", "inh", -4 * W),
                                             ("noise", "R3", "exc", 8 * W),
                                             ("Rp", "R3", "nmda", 4 * W),
                                             ("R3", "R3", "inh", -2 * W)]):
        g.connect(pre, post, w, receptor=rec, delay=k % 2,
                  connectivity=fixed_probability(g.regions[pre].size, g.regions[post].size,
                                                 0.25, seed=30 + k))
    g.connect("drive", "Rp", torch.full((6, 30), 2 * W, dtype=dtype), receptor="exc")
    g.connect("drive", "R3", torch.full((6, 10), 2 * W, dtype=dtype), receptor="exc")
    for name in ("R", "Rf", "Rm", "Rl", "Rt"):
        g.connect("drive", name, torch.full((6, 20), 2 * W, dtype=dtype), receptor="exc")
    for k, name in enumerate(("Rl", "Rt")):
        g.connect("noise", name, 8 * W, receptor="exc", delay=k,
                  connectivity=fixed_probability(40, 20, 0.25, seed=50 + k))
    return g


FAMILY = ("A", "Am", "Ap", "Lp", "Ln", "Cn", "Cp", "Cc", "L", "C", "Lf", "Af", "Cf", "Cm",
          "Lt", "Lm", "At", "Cr", "Ct", "Rp", "R", "Rf", "Rm", "R3", "Rl", "Rt")


def _run_family(g: Graph, T: int, B: int, backend: str,
                dtype: torch.dtype = torch.float64) -> tuple:
    mons = [g.monitor(n, "spikes") for n in FAMILY]
    probes = [g.monitor("A", "b", every=3), g.monitor("Ap", "b", neurons=[0, 11]),
              g.monitor("Am", "v", every=5), g.monitor("Cp", "i"),
              g.monitor("Rp", "i:exc", every=2), g.monitor("R3", "i", every=7),
              g.monitor("Rp", "ref", neurons=[3, 4]), g.monitor("Ln", "v", every=4)]
    with torch.no_grad():
        r = g.run(T, inputs={"drive": _drive(T, B, dtype)}, record=list(FAMILY),
                  backend=backend)
    assert r.backend == backend
    return r, [m.data() for m in mons], [m.data() for m in probes]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_engine_equals_torch_on_alif_per_neuron_parameters_and_next_step_resets(
        dtype: torch.dtype) -> None:
    from aura_snn.graph import _kernels
    from aura_snn.graph.engine import build_layout

    T, B = (2000, 2) if dtype == torch.float64 else (800, 2)
    assert unsupported_reason(_family_network(dtype)) is None
    lay = build_layout(_family_network(dtype))       # every compiled loop is exercised
    assert set(zip(lay.sp_kind.tolist(), lay.sp_lvl.tolist(), strict=True)) >= {
        (kind, lvl) for kind in range(_kernels.GENERIC) for lvl in range(5)}
    assert _kernels.GENERIC in lay.sp_kind
    ref = _run_family(_family_network(dtype), T, B, "torch", dtype)
    eng = _run_family(_family_network(dtype), T, B, "engine", dtype)
    r0, r1 = ref[0], eng[0]
    for name in FAMILY:
        assert torch.equal(r0.outputs[name], r1.outputs[name]), name
        assert r0.outputs[name].sum() > 10, (name, r0.outputs[name].sum())
        s0, s1 = r0.state.regions[name], r1.state.regions[name]
        for f, a, b in zip(s0._fields, s0, s1, strict=True):
            assert a.dtype == b.dtype and torch.equal(a, b), (name, f)
    # adaptation is active: the trace is non-zero and ALIF neurons fire less than LIF ones
    assert r0.state.regions["A"].b.abs().sum() > 0
    for d0, d1 in zip(ref[1], eng[1], strict=True):
        for key in ("t", "b", "i"):
            assert np.array_equal(d0[key], d1[key])
    for a, b in zip(ref[2], eng[2], strict=True):
        assert np.array_equal(a["t"], b["t"])
        assert np.array_equal(a["values"], b["values"])


def test_auto_backend_runs_alif_and_per_neuron_parameters_on_the_engine() -> None:
    from aura_snn import ALIF

    g = Graph(dt=1e-3).double()
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("a", 3, "alif"))
    g.add(SpikingRegion("m", 3, ALIF(tau_mem=torch.tensor([0.01, 0.02, 0.03]), dt=1e-3)))
    g.add(SpikingRegion("l", 3, "lif", LIFParameters(threshold=torch.tensor([0.5, 1.0, 2.0]),
                                                     reset_at="next_step")))
    for post in ("a", "m", "l"):
        g.connect("in", post, torch.ones(2, 3))
    assert g.engine_reason() is None
    with torch.no_grad():
        assert g.run(5, inputs={"in": torch.ones(5, 1, 2)}).backend == "engine"
