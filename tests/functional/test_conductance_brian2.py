"""The conductance-based LIF (:mod:`aura_snn.functional.conductance`) against Brian2.

Oracles:

* Brian2 (numpy target, float64) running the Song-Miller-Abbott neuron of its STDP
  example with the driving force ``Ee - v`` (plus an inhibitory conductance and a
  refractory period in the second case), ``method="euler"`` and
  ``"exponential_euler"``, fed by a ``SpikeGeneratorGroup`` with the same spike trains
  and weights: spike steps equal, ``v`` equal to 1e-9 V at the end of every step.
* The shipped Brian2 example's neuron (``ge * (Ee - vr)``, ``method="exact"``) against
  :mod:`aura_snn.functional.cuba_refractory` with jumps ``w (Ee - vr)``.
* SciPy's ``solve_ivp`` (rtol 1e-12) for the response to one input spike: exponential
  Euler converges to it at first order in ``dt``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional import conductance as F
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion
from aura_snn.graph.engine import unsupported_reason

b2 = pytest.importorskip("brian2", reason="Brian2 is the reference for the conductance "
                                          "model (pip install 'aura-snn[peers]')")

DT = 1e-4
# Brian2's examples/synapses/STDP.py (Song, Miller & Abbott 2000)
TAUM, TAUE, EE, VT, VR, EL = 10e-3, 5e-3, 0.0, -54e-3, -60e-3, -74e-3
TAUI, EI = 5e-3, -70e-3


def _rasters(steps: int, n_exc: int, n_inh: int, seed: int
             ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return ((rng.random((steps, n_exc)) < 20.0 * DT).astype(np.float64),
            (rng.random((steps, n_inh)) < 20.0 * DT).astype(np.float64))


def _brian2(exc: np.ndarray, w_exc: np.ndarray, inh: np.ndarray | None, w_inh: np.ndarray | None,
            method: str, refractory: float = 0.0, fixed_force: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """Brian2 neurons fed by generators: ``(v [T, n] at the end of each step,
    spikes [T, n])``. ``fixed_force`` writes the shipped example's ``ge * (Ee - vr)``."""
    from brian2 import (
        Network,
        NeuronGroup,
        SpikeGeneratorGroup,
        SpikeMonitor,
        StateMonitor,
        Synapses,
        defaultclock,
        prefs,
        second,
        start_scope,
        volt,
    )
    prefs.codegen.target = "numpy"
    start_scope()
    defaultclock.dt = DT * second
    steps, n = exc.shape[0], w_exc.shape[1]
    ns = {"taum": TAUM * second, "taue": TAUE * second, "taui": TAUI * second,
          "Ee": EE * volt, "Ei": EI * volt, "vt": VT * volt, "vr": VR * volt, "El": EL * volt}
    force = "(Ee - vr)" if fixed_force else "(Ee - v)"
    inh_term = " + gi * (Ei - v)" if inh is not None else ""
    eqs = f"""
    dv/dt = (ge * {force}{inh_term} + El - v) / taum : volt (unless refractory)
    dge/dt = -ge / taue : 1
    dgi/dt = -gi / taui : 1
    """
    P = NeuronGroup(n, eqs, threshold="v > vt", reset="v = vr", method=method,
                    refractory=refractory * second, namespace=ns)
    P.v = EL * volt
    objs: list = [P]
    for raster, w, target in ((exc, w_exc, "ge"), (inh, w_inh, "gi")):
        if raster is None:
            continue
        t, i = np.nonzero(raster)
        G = SpikeGeneratorGroup(raster.shape[1], i, t * DT * second)
        S = Synapses(G, P, "w : 1", on_pre=f"{target} += w")
        S.connect()                         # all to all, synapse k = (pre k // n, post k % n)
        S.w = w.reshape(-1)
        objs += [G, S]
    mon = StateMonitor(P, "v", record=True, when="end")
    spk = SpikeMonitor(P)
    Network(*objs, mon, spk).run(steps * DT * second)
    s = np.zeros((steps, n))
    s[np.rint(np.asarray(spk.t) / DT).astype(int), np.asarray(spk.i)] = 1.0
    return np.asarray(mon.v).T, s


def _graph(p: F.CondLIFParameters, exc: np.ndarray, w_exc: np.ndarray,
           inh: np.ndarray | None = None, w_inh: np.ndarray | None = None,
           model: str = "lif_cond") -> tuple[np.ndarray, np.ndarray, Graph]:
    """Our graph: generators -> one region by name (delay 0: a spike of step t is the
    jump of step t + 1, Brian2's on_pre after the update). Returns ``(v, spikes, g)``."""
    g = Graph(dt=DT).double()
    n = w_exc.shape[1]
    g.add(InputRegion("exc_in", exc.shape[1]))
    g.add(SpikingRegion("n", n, model, p))
    g.connect("exc_in", "n", torch.tensor(w_exc), receptor="exc")
    inputs = {"exc_in": torch.tensor(exc)[:, None]}
    if inh is not None:
        g.add(InputRegion("inh_in", inh.shape[1]))
        g.connect("inh_in", "n", torch.tensor(w_inh), receptor="inh")
        inputs["inh_in"] = torch.tensor(inh)[:, None]
    mon = g.monitor("n", "v")
    out = g.run(exc.shape[0], inputs=inputs, record=["n"])
    v = np.asarray(mon.data()["values"]).reshape(exc.shape[0], n)
    return v, out.outputs["n"][:, 0].numpy(), g


@pytest.mark.parametrize("method", ["euler", "exponential_euler"])
def test_song_miller_abbott_neuron_equals_brian2(method: str) -> None:
    steps, n_in, n = 10_000, 100, 3                   # 1 s, 100 inputs at 20 Hz
    exc, _ = _rasters(steps, n_in, 0, seed=1)
    w = np.random.default_rng(2).random((n_in, n)) * np.array([0.06, 0.08, 0.12])
    p = F.CondLIFParameters(receptors=("exc",), tau_syn=(TAUE,), e_rev=(EE,),
                            integration=method)
    v, s, g = _graph(p, exc, w)
    bv, bs = _brian2(exc, w, None, None, method)
    assert bs.sum(0).min() >= 5 and bs.sum() > 50
    np.testing.assert_array_equal(s, bs)
    np.testing.assert_allclose(v, bv, rtol=0, atol=1e-9)
    assert unsupported_reason(g) is None   # the engine runs lif_cond (test_engine_models)


@pytest.mark.parametrize("method", ["euler", "exponential_euler"])
def test_excitation_inhibition_and_refractoriness_equal_brian2(method: str) -> None:
    steps = 8000
    exc, inh = _rasters(steps, 120, 40, seed=3)
    rng = np.random.default_rng(4)
    w_exc, w_inh = rng.random((120, 4)) * 0.12, rng.random((40, 4)) * 0.3
    p = F.CondLIFParameters(tau_syn=(TAUE, TAUI), e_rev=(EE, EI), refractory=2e-3,
                            integration=method)
    v, s, _ = _graph(p, exc, w_exc, inh, w_inh)
    bv, bs = _brian2(exc, w_exc, inh, w_inh, method, refractory=2e-3)
    isi = np.diff(np.nonzero(s[:, 0])[0])
    assert bs.sum() > 60 and isi.min() >= 20           # 2 ms = 20 steps between spikes
    np.testing.assert_array_equal(s, bs)
    np.testing.assert_allclose(v, bv, rtol=0, atol=1e-9)


def test_the_shipped_examples_fixed_driving_force_is_cuba_refractory() -> None:
    steps, n_in = 6000, 100
    exc, _ = _rasters(steps, n_in, 0, seed=5)
    w = np.random.default_rng(6).random((n_in, 2)) * np.array([0.05, 0.1])
    p = CubaRefractoryParameters(tau_mem=TAUM, tau_syn=(TAUE,), receptors=("exc",),
                                 v_leak=EL, threshold=VT, v_reset=VR, refractory=0.0)
    v, s, _ = _graph(p, exc, w * (EE - VR), model="cuba_refractory")
    bv, bs = _brian2(exc, w, None, None, "exact", fixed_force=True)
    assert bs.sum() > 20
    np.testing.assert_array_equal(s, bs)
    np.testing.assert_allclose(v, bv, rtol=0, atol=1e-9)


def test_one_input_converges_to_the_ode_solution_at_first_order() -> None:
    from scipy.integrate import solve_ivp

    w, t_end = 2.0, 20e-3                         # a strong jump: v rises ~35 mV

    def rhs(t: float, y: np.ndarray) -> list[float]:
        ge = w * np.exp(-t / TAUE)
        return [(ge * (EE - y[0]) + EL - y[0]) / TAUM]

    ref = solve_ivp(rhs, (0.0, t_end), [EL], rtol=1e-12, atol=1e-15, dense_output=True)
    p = F.CondLIFParameters(receptors=("exc",), tau_syn=(TAUE,), e_rev=(EE,), threshold=1.0,
                            integration="exponential_euler")
    errors = []
    for dt in (1e-4, 5e-5, 2.5e-5):
        steps = round(t_end / dt)
        x = torch.zeros(steps + 1, 1, 1, 1, dtype=torch.float64)
        x[0] = w                                   # the jump, held from t = 0
        state, vs = None, []
        for x_t in x.unbind(0):
            _, state = F.step(x_t, state, p, dt)
            vs.append(float(state.v))
        t = np.arange(1, steps + 2) * dt
        errors.append(np.abs(np.array(vs[:-1]) - ref.sol(t[:-1])[0]).max())
    assert max(vs) < EE                           # never past the reversal potential
    assert errors[0] < 5e-4
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.1)
    assert errors[1] / errors[2] == pytest.approx(2.0, rel=0.1)


def test_huge_conductance_stays_below_the_reversal_potential_with_exponential_euler() -> None:
    p = F.CondLIFParameters(threshold=0.5, integration="exponential_euler")
    x = torch.zeros(2, 1, 1, dtype=torch.float64)
    x[0] = 1e4                                     # one enormous excitatory jump
    _, st = F.step(x, None, p, DT)
    v_inf = (EL + 1e4 * EE) / (1 + 1e4)
    assert EL < float(st.v) < EE and float(st.v) == pytest.approx(v_inf, abs=1e-12)


@pytest.mark.parametrize("kw, name", [
    ({"e_rev": (0.0,)}, "e_rev"), ({"tau_syn": (5e-3,)}, "tau_syn"),
    ({"integration": "exact"}, "integration"), ({"reset_at": "next_step"}, "reset_at"),
    ({"e_rev": (0.0, float("nan"))}, "e_rev"), ({"refractory": -1e-3}, "refractory"),
    ({"receptors": ("exc", "exc")}, "receptors")])
def test_bad_parameters_name_themselves(kw: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        F.CondLIFParameters(**kw)


def test_dt_is_checked_against_every_time_constant_and_x_against_the_receptors() -> None:
    p = F.CondLIFParameters(tau_syn=(5e-3, 1e-4))
    with pytest.raises(ParameterError, match="tau_syn\\['inh'\\]"):
        p.validate(1e-4)
    with pytest.raises(ValueError, match="R=2"):
        F.step(torch.zeros(1, 1, 3), None, p, 1e-4)


def test_surrogate_gradient_of_one_euler_step_by_the_chain_rule() -> None:
    p = F.CondLIFParameters(slope=200.0)             # fast sigmoid, 1/V
    v0 = torch.tensor([[-70e-3, -56e-3, -54.5e-3]], dtype=torch.float64)
    state = F.CondLIFState(v0, torch.zeros(2, 1, 3, dtype=torch.float64),
                           torch.zeros_like(v0))
    x = torch.zeros(2, 1, 3, dtype=torch.float64)
    x[0] = torch.tensor([0.5, 0.2, 0.1])
    x.requires_grad_(True)
    s, _ = F.step(x, state, p, DT)
    s.sum().backward()
    v, g_e = v0.numpy()[0], x.detach().numpy()[0, 0]
    u = v + DT / TAUM * ((EL - v) + g_e * (EE - v))
    sig = 1.0 / (1.0 + 200.0 * np.abs(u - VT)) ** 2      # d S / d u
    np.testing.assert_allclose(x.grad.numpy()[0, 0], sig * DT / TAUM * (EE - v), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy()[1, 0], sig * DT / TAUM * (EI - v), rtol=1e-12)
