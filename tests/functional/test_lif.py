"""LIF maths: analytic decay, golden spike train, reset rules, validation."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional import lif, loop
from aura_snn.functional.decay import decay, tau_from_decay


@pytest.mark.parametrize("integration", ["exact", "euler"])
def test_free_decay_matches_analytic(integration: str) -> None:
    # No input, v(0) = 1, v_leak = 0: exact gives exp(-t/tau) at every step; Euler
    # gives (1 - dt/tau)^n.
    tau, dt, n = 20e-3, 1e-3, 200
    p = lif.LIFParameters(tau_mem=tau, threshold=10.0, integration=integration)
    x = torch.zeros(n, 1, dtype=torch.float64)
    out = loop.run(lif.step, x, lif.LIFState(torch.ones(1, dtype=torch.float64)), p, dt,
                   record_v=True)
    steps = torch.arange(1, n + 1, dtype=torch.float64)
    expected = torch.exp(-steps * dt / tau) if integration == "exact" else (1 - dt / tau) ** steps
    torch.testing.assert_close(out.v[:, 0], expected, rtol=1e-12, atol=0)


def test_constant_input_golden_spike_train() -> None:
    # Exact integration of tau dv/dt = -v + x with constant x from rest and reset to 0:
    # v_n = x (1 - a^n); the neuron first fires at the smallest n with v_n > theta,
    # i.e. n* = ceil(ln(1 - theta/x) / ln a), then every n* steps (reset to zero).
    tau, dt, x0, theta = 10e-3, 1e-3, 1.5, 1.0
    a = math.exp(-dt / tau)
    n_star = math.ceil(math.log(1 - theta / x0) / math.log(a))
    p = lif.LIFParameters(tau_mem=tau, threshold=theta, reset="zero")
    x = torch.full((100, 1), x0, dtype=torch.float64)
    spikes = loop.run(lif.step, x, None, p, dt).spikes[:, 0]
    expected = torch.zeros(100, dtype=torch.float64)
    expected[n_star - 1 :: n_star] = 1.0
    assert n_star == 11
    torch.testing.assert_close(spikes, expected)


def test_subtract_reset_keeps_excess_and_zero_reset_clears() -> None:
    x = torch.tensor([[3.0]], dtype=torch.float64)
    for reset, v_expected in (("subtract", 2.0), ("zero", -0.5), ("none", 3.0)):
        p = lif.LIFParameters(tau_mem=1e-2, reset=reset, v_reset=-0.5, input_scaling="direct")
        s, st = lif.step(x[0], lif.LIFState(torch.zeros(1, dtype=torch.float64)), p, 1e-3)
        assert s.item() == 1.0
        assert st.v.item() == pytest.approx(v_expected, abs=1e-12)


def test_next_step_reset_is_applied_one_step_later_undecayed() -> None:
    # snnTorch convention: the state keeps u; the subtraction happens at the next step
    # after the decay: u[1] = a u[0] + x - theta.
    p = lif.LIFParameters(tau_mem=1e-2, reset_at="next_step", input_scaling="direct")
    a = decay(1e-2, 1e-3)
    x = torch.tensor([[1.5], [0.2]], dtype=torch.float64)
    out = loop.run(lif.step, x, None, p, 1e-3, record_v=True)
    assert out.v[0, 0].item() == pytest.approx(1.5)
    assert out.v[1, 0].item() == pytest.approx(a * 1.5 + 0.2 - 1.0, abs=1e-12)


def test_decay_round_trip() -> None:
    for integ in ("exact", "euler"):
        a = decay(0.02, 1e-3, integ)
        assert tau_from_decay(a, 1e-3, integ) == pytest.approx(0.02, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reset": "hard"}, "reset must be one of"),
        ({"reset_at": "later"}, "reset_at must be one of"),
        ({"surrogate": "sigmoid"}, "surrogate must be one of"),
        ({"threshold": 0.0}, "threshold must be finite and > 0"),
        ({"threshold": float("nan")}, "threshold"),
        ({"integration": "rk4"}, "integration must be one of"),
        ({"input_scaling": "x"}, "input_scaling must be one of"),
        ({"slope": -1.0}, "slope"),
    ],
)
def test_invalid_parameters_name_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        lif.LIFParameters(**kwargs)


def test_dt_must_be_smaller_than_tau() -> None:
    p = lif.LIFParameters(tau_mem=1e-3)
    with pytest.raises(ParameterError, match="dt must be smaller than tau_mem"):
        p.validate(1e-3)
    with pytest.raises(ParameterError, match="dt must be finite and > 0"):
        p.validate(0.0)
