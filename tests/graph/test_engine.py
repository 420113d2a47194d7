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
    g = Graph(dt=1e-3)
    g.add(SpikingRegion("a", 3, "alif"))
    assert "alif" in unsupported_reason(g)
    g = Graph(dt=1e-3)
    g.add(SpikingRegion("l", 3, "lif", LIFParameters(threshold=torch.ones(3))))
    assert "per-neuron" in unsupported_reason(g)
    g = Graph(dt=1e-3)
    g.add(SpikingRegion("l", 3, "lif", LIFParameters(reset_at="next_step")))
    assert "reset_at" in unsupported_reason(g)
    # auto falls back to torch, and to torch whenever gradients are needed
    g = Graph(dt=1e-3)
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("l", 3, "lif"))
    g.connect("in", "l", torch.ones(2, 3), learnable=True)
    x = torch.ones(5, 1, 2)
    assert g.run(5, inputs={"in": x}).backend == "torch"
    with torch.no_grad():
        assert g.run(5, inputs={"in": x}).backend == "engine"
