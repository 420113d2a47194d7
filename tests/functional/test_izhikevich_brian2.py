"""The Izhikevich neuron (:mod:`aura_snn.functional.izhikevich`) against Brian2 and the
model's analytic facts.

Oracles:

* Brian2 (numpy target, float64) running the paper's equations, ``method="euler"``,
  with the same float values for every constant, the input current set in the
  ``start`` slot (so Brian2's generated sum has the order of ours), reset ``v = c;
  u += d``: spike steps equal and ``v``, ``u`` traces equal to 1e-9 (V, V/s).
* Brian2 again for the paper's scheme (two half steps of ``v``, then ``u`` from the
  new ``v``), written as explicit ``run_regularly`` code in the paper's order.
* The fixed point of the two ODEs (a quadratic, solved by hand below) for the resting
  potential, the paper's firing types (RS adapts, FS does not, CH bursts), and the
  surrogate gradient of one step by the chain rule with the fast sigmoid written out.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional import izhikevich as F
from aura_snn.functional import registry
from aura_snn.graph import Graph, InputRegion, SpikingRegion
from aura_snn.graph.engine import unsupported_reason

b2 = pytest.importorskip("brian2", reason="Brian2 is the reference for the Izhikevich model "
                                          "(pip install 'aura-snn[peers]')")

DT = 1e-4
TYPES = ("RS", "FS", "CH")


def _table(types: tuple[str, ...]) -> dict[str, np.ndarray]:
    a, b, c, d = (np.array(col, dtype=np.float64) for col in zip(*(F.PRESETS[k] for k in types),
                                                                 strict=True))
    return {"a": a, "b": b, "c": c, "d": d}


def _params(tab: dict[str, np.ndarray], **kw: object) -> F.IzhikevichParameters:
    t = {k: torch.tensor(v) for k, v in tab.items()}
    return F.IzhikevichParameters(a=t["a"], b=t["b"], v_reset=t["c"], d=t["d"], **kw)


def _ours(p: F.IzhikevichParameters, current: np.ndarray, dt: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``current [T, n]`` (V/s) -> ``v, u [T, n]`` after each step and spikes ``[T, n]``."""
    x = torch.tensor(current)[:, None, :]
    state, vs, us, ss = None, [], [], []
    for x_t in x.unbind(0):
        s, state = F.step(x_t, state, p, dt)
        vs.append(state.v[0].numpy())
        us.append(state.u[0].numpy())
        ss.append(s[0].numpy())
    return np.array(vs), np.array(us), np.array(ss)


def _brian2(tab: dict[str, np.ndarray], current: np.ndarray, dt: float, scheme: str = "euler"
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same neurons in Brian2: ``v, u [T, n]`` at the end of each step, spikes."""
    from brian2 import (
        Network,
        NeuronGroup,
        SpikeMonitor,
        StateMonitor,
        TimedArray,
        defaultclock,
        prefs,
        second,
        start_scope,
        volt,
    )
    prefs.codegen.target = "numpy"
    start_scope()
    defaultclock.dt = dt * second
    steps, n = current.shape
    ns = {"k2": 4e4 / volt / second, "k1": 5e3 / second, "k0": 140.0 * volt / second,
          "vpeak": 30e-3 * volt, "Iarr": TimedArray(current * volt / second, dt=dt * second)}
    common = """
    I : volt/second
    a : 1/second
    b : 1/second
    c : volt
    d : volt/second
    """
    if scheme == "euler":
        eqs = """
        dv/dt = k2*v**2 + k1*v + k0 - u + I : volt
        du/dt = a*(b*v - u) : volt/second
        """ + common
        G = NeuronGroup(n, eqs, threshold="v > vpeak", reset="v = c; u += d",
                        method="euler", namespace=ns)
    else:                       # Izhikevich's code: v in two half steps, u from the new v
        G = NeuronGroup(n, "v : volt\nu : volt/second" + common, threshold="v > vpeak",
                        reset="v = c; u += d", namespace=ns)
        half = "v = v + (0.5*dt)*((k0 + ((I + k1*v) + k2*(v*v))) - u)"
        G.run_regularly(f"{half}\n{half}\nu = u + dt*(a*(b*v - u))", when="groups")
    G.run_regularly("I = Iarr(t, i)", when="start")
    G.a, G.b = tab["a"] / second, tab["b"] / second
    G.c, G.d = tab["c"] * volt, tab["d"] * volt / second
    G.v = -65e-3 * volt
    G.u = "b*v"
    mon = StateMonitor(G, ["v", "u"], record=True, when="end")
    spk = SpikeMonitor(G)
    Network(G, mon, spk).run(steps * dt * second)
    raster = np.zeros((steps, n))
    raster[np.rint(np.asarray(spk.t) / dt).astype(int), np.asarray(spk.i)] = 1.0
    return np.asarray(mon.v).T, np.asarray(mon.u).T, raster


def _currents(steps: int) -> np.ndarray:
    """Per firing type: a constant 10 V/s, a step 0 -> 10 V/s at 50 ms, and a step
    14 -> 4 V/s at half time (for RS, 4 V/s is the saddle-node rheobase)."""
    const = np.full(steps, 10.0)
    up = np.where(np.arange(steps) * DT >= 50e-3, 10.0, 0.0)
    down = np.where(np.arange(steps) < steps // 2, 14.0, 4.0)
    return np.stack([const, up, down], 1)


def test_rs_fs_ch_with_constant_and_step_currents_equal_brian2_euler() -> None:
    steps = 6000                                     # 0.6 s
    cur = _currents(steps)
    types = tuple(k for k in TYPES for _ in range(3))
    tab = _table(types)
    current = np.tile(cur, (1, len(TYPES)))
    v, u, s = _ours(_params(tab), current, DT)
    bv, bu, bs = _brian2(tab, current, DT)
    assert s.sum(0).min() >= 5                        # every neuron fires several times
    np.testing.assert_array_equal(s, bs)
    np.testing.assert_allclose(v, bv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(u, bu, rtol=0, atol=1e-9)


def test_the_papers_half_step_scheme_equals_brian2_run_regularly() -> None:
    dt, steps = 1e-3, 1000                           # the paper's 1 ms step, 1 s
    tab = _table(TYPES)
    current = np.full((steps, 3), 10.0)
    current[:100] = 0.0
    v, u, s = _ours(_params(tab, integration="paper"), current, dt)
    bv, bu, bs = _brian2(tab, current, dt, scheme="paper")
    assert s.sum() > 30
    np.testing.assert_array_equal(s, bs)
    np.testing.assert_allclose(v, bv, rtol=0, atol=1e-9)
    np.testing.assert_allclose(u, bu, rtol=0, atol=1e-9)
    # and it is a different scheme from Euler at this step
    assert not np.array_equal(_ours(_params(tab), current, dt)[2], s)


def test_a_graph_region_runs_the_model_by_name_as_brian2_does() -> None:
    steps = 3000
    tab = _table(TYPES)
    current = _currents(steps)
    g = Graph(dt=DT).double()
    g.add(InputRegion("I", 3, spiking=False))
    g.add(SpikingRegion("izh", 3, "izhikevich", _params(tab)))
    g.connect("I", "izh", torch.eye(3, dtype=torch.float64), same_step=True)
    out = g.run(steps, inputs={"I": torch.tensor(current)[:, None, :]}, record=["izh"])
    _, _, bs = _brian2(tab, current, DT)
    np.testing.assert_array_equal(out.outputs["izh"][:, 0].numpy(), bs)
    assert unsupported_reason(g) is None   # the engine runs izhikevich (test_engine_models)
    assert registry.get("izhikevich").dimension("a") == "rate"


def _fixed_point(b: float, current: float) -> float:
    """Stable rest (mV) of 0.04 v^2 + 5 v + 140 - u + I = 0, u = b v (paper units, b in
    1/ms): the lower root of 0.04 v^2 + (5 - b) v + 140 + I = 0."""
    disc = (5.0 - b) ** 2 - 4 * 0.04 * (140.0 + current)
    return (-(5.0 - b) - math.sqrt(disc)) / (2 * 0.04)


@pytest.mark.parametrize("current", [0.0, 3.0])
def test_rs_rests_at_the_analytic_fixed_point(current: float) -> None:
    steps = 30000                                    # 3 s: the slow u settles (tau 50 ms)
    v, u, s = _ours(F.IzhikevichParameters.preset("RS"), np.full((steps, 1), current), DT)
    assert s.sum() == 0
    v_star = _fixed_point(0.2, current) * 1e-3       # I = 0: -70 mV exactly
    assert v[-1, 0] == pytest.approx(v_star, abs=1e-9)
    assert u[-1, 0] == pytest.approx(200.0 * v_star, abs=1e-6)
    if current == 0.0:
        assert v_star == pytest.approx(-70e-3, abs=1e-15)


def _isis(spikes: np.ndarray, dt: float) -> np.ndarray:
    return np.diff(np.nonzero(spikes)[0]) * dt


def test_firing_types_rs_adapts_fs_does_not_ch_bursts() -> None:
    steps = 10000                                     # 1 s at 10 V/s
    v, u, s = _ours(_params(_table(TYPES)), np.full((steps, 3), 10.0), DT)
    rs, fs, ch = (_isis(s[:, k], DT) for k in range(3))
    # RS: tonic single spikes that slow down (Fig. 2: first ISI 24 ms, then 45 ms)
    assert rs[0] < 0.6 * rs[-1] and rs.min() > 20e-3
    # FS: a steady fast train after two spikes (no lasting adaptation), 5x RS's rate
    steady = fs[3:]
    assert steady.std() < 0.02 * steady.mean() and len(fs) > 5 * len(rs)
    short, long_ = ch[ch < 10e-3], ch[ch > 20e-3]     # intra-burst and inter-burst ISIs
    assert len(short) > len(long_) > 5 and len(short) + len(long_) == len(ch)


def test_surrogate_gradient_of_one_step_by_the_chain_rule() -> None:
    p = F.IzhikevichParameters(slope=50.0)
    v0 = torch.tensor([[-60e-3, 25e-3, 29.9e-3]], dtype=torch.float64)
    u0 = torch.full_like(v0, -12.0)
    x = torch.tensor([[5.0, 40.0, 0.0]], dtype=torch.float64, requires_grad=True)
    s, _ = F.step(x, F.IzhikevichState(v0, u0), p, DT)
    s.sum().backward()
    vv = v0.numpy()[0]
    v_new = vv + DT * (0.04e6 * vv ** 2 + 5e3 * vv + 140.0 + 12.0 + x.detach().numpy()[0])
    expected = DT / (1.0 + 50.0 * np.abs(v_new - 30e-3)) ** 2   # dS/dv' * dv'/dI
    np.testing.assert_allclose(x.grad.numpy()[0], expected, rtol=1e-12)
    assert s.tolist() == [[0.0, float(v_new[1] > 30e-3), float(v_new[2] > 30e-3)]]


def test_float32_follows_float64_until_the_first_spikes() -> None:
    tab = _table(TYPES)
    cur = torch.full((400, 1, 3), 10.0, dtype=torch.float64)
    p64, p32 = _params(tab), _params({k: v.astype(np.float32) for k, v in tab.items()})
    st64 = st32 = None
    for x_t in cur.unbind(0):
        s64, st64 = F.step(x_t, st64, p64, DT)
        s32, st32 = F.step(x_t.float(), st32, p32, DT)
        assert torch.equal(s64, s32.double())
        np.testing.assert_allclose(st32.v.numpy(), st64.v.numpy(), atol=2e-5)


@pytest.mark.parametrize("kw, name", [({"integration": "rk4"}, "integration"),
                                      ({"reset": "subtract"}, "reset"),
                                      ({"k2": 0.0}, "k2"), ({"a": -1.0}, "a"),
                                      ({"d": float("nan")}, "d")])
def test_bad_parameters_name_themselves(kw: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        F.IzhikevichParameters(**kw)
    with pytest.raises(ParameterError, match="preset"):
        F.IzhikevichParameters.preset("XX")
