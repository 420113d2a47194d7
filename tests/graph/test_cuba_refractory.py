"""The cuba_refractory model: exact solution, refractory clamp, Brian2's timing rules."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.errors import ParameterError, ShapeError
from aura_snn.functional import cuba_refractory as F
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters, refractory_steps

DT = 1e-4


def _state(v: float, ie: float = 0.0, ii: float = 0.0, ref: float = 0.0) -> F.CubaRefractoryState:
    d = torch.float64
    return F.CubaRefractoryState(torch.tensor([v], dtype=d),
                                 torch.tensor([[ie], [ii]], dtype=d),
                                 torch.tensor([ref], dtype=d))


def _zero_input() -> torch.Tensor:
    return torch.zeros(2, 1, dtype=torch.float64)


def test_currents_and_membrane_follow_the_exact_solution() -> None:
    # below threshold, no input: i_r(t) = i_r(0) e^{-t/tau_r} and, for dv/dt = (i_e + i_i
    # - (v - El))/tau_m, v(t) - El = (v0 - El) e^{-t/tau_m} + sum_r i_r(0) tau_r/(tau_r -
    # tau_m) (e^{-t/tau_r} - e^{-t/tau_m}).
    p = CubaRefractoryParameters(threshold=1.0)  # unreachable
    st = _state(-0.055, ie=2e-3, ii=-1e-3)
    steps = 300
    for _ in range(steps):
        s, st = F.step(_zero_input(), st, p, DT)
        assert float(s) == 0.0
    t = steps * DT
    tm, te, ti, el = 20e-3, 5e-3, 10e-3, -49e-3
    v = el + (-0.055 - el) * math.exp(-t / tm) \
        + 2e-3 * te / (te - tm) * (math.exp(-t / te) - math.exp(-t / tm)) \
        - 1e-3 * ti / (ti - tm) * (math.exp(-t / ti) - math.exp(-t / tm))
    assert float(st.v) == pytest.approx(v, rel=1e-12, abs=1e-15)
    assert float(st.i[0]) == pytest.approx(2e-3 * math.exp(-t / te), rel=1e-12)
    assert float(st.i[1]) == pytest.approx(-1e-3 * math.exp(-t / ti), rel=1e-12)


def test_refractory_clamp_matches_brian2_timestep_rule() -> None:
    # El above threshold: the neuron fires regularly. After a spike in step n the membrane
    # stays at Vr for steps n+1 .. n+n_ref-1 and integrates again in step n+n_ref.
    p = CubaRefractoryParameters()
    n_ref = refractory_steps(p.refractory, DT)
    assert n_ref == 50
    st = _state(-0.0500001)
    spikes, vs = [], []
    for _ in range(2000):
        s, st = F.step(_zero_input(), st, p, DT)
        spikes.append(float(s))
        vs.append(float(st.v))
    t_sp = [k for k, s in enumerate(spikes) if s]
    assert t_sp[0] == 0 and len(t_sp) >= 3
    n = t_sp[0]
    assert all(v == -0.060 for v in vs[n:n + n_ref])  # reset + 49 held steps
    assert vs[n + n_ref] > -0.060                     # integrates again
    # ISI = n_ref + time to climb from Vr to Vt: tau_m ln((El - Vr)/(El - Vt)) (+- 1 step)
    climb = 20e-3 * math.log(11.0) / DT
    isi = t_sp[1] - t_sp[0]
    assert n_ref - 1 + climb <= isi <= n_ref + climb + 1


def test_currents_decay_during_refractoriness() -> None:
    p = CubaRefractoryParameters()
    st = _state(-0.055, ie=1e-3, ref=10.0)
    s, st2 = F.step(_zero_input(), st, p, DT)
    assert float(st2.v) == -0.055 and float(st2.ref) == 9.0
    assert float(st2.i[0]) == pytest.approx(1e-3 * math.exp(-DT / 5e-3), rel=1e-15)


def test_input_enters_the_current_before_the_membrane_step() -> None:
    # Brian2: a jump delivered at the end of step t-1 is integrated by the membrane in
    # step t with the exact coupling, then decays with the current.
    p = CubaRefractoryParameters(threshold=1.0)
    x = torch.tensor([[1e-3], [0.0]], dtype=torch.float64)
    _, st = F.step(x, _state(-0.049), p, DT)
    a_m, (a_e, _), (k_e, _), _ = F.coefficients(p, DT)
    assert float(st.v) == pytest.approx(-0.049 + k_e * 1e-3, rel=1e-14)
    assert float(st.i[0]) == pytest.approx(a_e * 1e-3, rel=1e-15)
    assert k_e == pytest.approx(5e-3 / (5e-3 - 20e-3) * (a_e - a_m), rel=1e-15)


def test_euler_integration_uses_dt_over_tau() -> None:
    p = CubaRefractoryParameters(integration="euler", threshold=1.0)
    a_m, a_syn, k, _ = F.coefficients(p, DT)
    assert a_m == pytest.approx(1 - DT / 20e-3) and k[0] == pytest.approx(DT / 20e-3)
    assert a_syn[1] == pytest.approx(1 - DT / 10e-3)


def test_surrogate_gradient_flows_to_the_input() -> None:
    p = CubaRefractoryParameters()
    x = torch.full((2, 3, 4), 2e-3, dtype=torch.float64, requires_grad=True)
    st = None
    total = 0
    for _ in range(30):
        s, st = F.step(x, st, p, DT)
        total = total + s.sum() + st.v.sum()
    total.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_parameter_validation() -> None:
    with pytest.raises(ParameterError, match="tau_syn and receptors"):
        CubaRefractoryParameters(tau_syn=(5e-3,))
    with pytest.raises(ParameterError, match="refractory"):
        CubaRefractoryParameters(refractory=-1e-3)
    with pytest.raises(ParameterError, match="reset_at"):
        CubaRefractoryParameters(reset_at="next_step")
    with pytest.raises(ParameterError, match="distinct"):
        CubaRefractoryParameters(receptors=("a", "a"))
    with pytest.raises(ParameterError, match="dt must be smaller"):
        CubaRefractoryParameters(tau_syn=(5e-3, 1e-5)).validate(1e-4)
    with pytest.raises(ShapeError, match="R=2"):
        F.step(torch.zeros(3, 1), None, CubaRefractoryParameters(), DT)
