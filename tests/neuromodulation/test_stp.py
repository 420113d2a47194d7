"""Tsodyks-Markram short-term plasticity against closed forms: the first spikes of a
train, the steady state of a regular train, no facilitation when ``tau_f = 0``, the
efficacy reaching the postsynaptic membrane through a graph, and bad parameters."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion
from neuromodulation.stp import TsodyksMarkram, TsodyksMarkramParameters

DT = 1e-3


def _efficacies(p: TsodyksMarkramParameters, spikes: torch.Tensor) -> torch.Tensor:
    """Efficacy of each step for a 0/1 train ``[T]`` (one neuron), stepping the model."""
    syn = TsodyksMarkram(p)
    st = syn.initial_state(1, 1, torch.device("cpu"), torch.float64)
    out = []
    for s in spikes:
        e, st = syn.step(s.reshape(1, 1), st, DT)
        out.append(e[0, 0])
    return torch.stack(out)


def test_first_two_spikes() -> None:
    """Rested: e1 = U. After an interval D: u = U e^{-D/tau_f} before the jump, x = 1 - U
    e^{-D/tau_d}, so e2 = (u + U (1 - u)) x."""
    p = TsodyksMarkramParameters(U=0.3, tau_f=0.1, tau_d=0.25)
    spikes = torch.zeros(40, dtype=torch.float64)
    spikes[[5, 25]] = 1.0
    e = _efficacies(p, spikes)
    D = 20 * DT
    u = p.U * math.exp(-D / p.tau_f)
    e2 = (u + p.U * (1 - u)) * (1 - p.U * math.exp(-D / p.tau_d))
    assert float(e[5]) == pytest.approx(p.U, rel=1e-15)
    assert float(e[25]) == pytest.approx(e2, rel=1e-13)


@pytest.mark.parametrize("U, tau_f, tau_d", [(0.5, 0.02, 0.2), (0.1, 0.75, 0.05),
                                             (0.4, 0.0, 0.1)])
def test_regular_train_reaches_the_closed_form_steady_state(U: float, tau_f: float,
                                                             tau_d: float) -> None:
    """Period D: u+ = U / (1 - (1 - U) e^{-D/tau_f}); x- = (1 - e^{-D/tau_d}) /
    (1 - (1 - u+) e^{-D/tau_d}); e = u+ x-. tau_f = 0: u+ = U (no facilitation)."""
    p = TsodyksMarkramParameters(U=U, tau_f=tau_f, tau_d=tau_d)
    period = 15
    spikes = torch.zeros(period * 400, dtype=torch.float64)
    spikes[::period] = 1.0
    e = _efficacies(p, spikes)
    D = period * DT
    af = 0.0 if tau_f == 0 else math.exp(-D / tau_f)
    ad = math.exp(-D / tau_d)
    u = U / (1 - (1 - U) * af)
    x = (1 - ad) / (1 - (1 - u) * ad)
    assert float(e[-period]) == pytest.approx(u * x, rel=1e-12)
    facilitating = float(e[period]) > float(e[0])
    assert facilitating == (tau_f > tau_d)          # the two regimes show


def test_the_graph_transmits_w_times_the_efficacy_one_step_later() -> None:
    """A quiet LIF membrane (direct input, a = e^{-dt/tau}) receives w e[t] at t + 1."""
    T, w = 60, 0.75
    p = TsodyksMarkramParameters(U=0.25, tau_f=0.05, tau_d=0.1)
    lif = LIFParameters(threshold=1e6, input_scaling="direct")
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 1))
    g.add(SpikingRegion("post", 1, "lif", lif))
    g.connect("in", "post", torch.full((1, 1), w, dtype=torch.float64),
              synapse=TsodyksMarkram(p))
    mon = g.monitor("post", "v")
    x = torch.zeros(T, 1, 1, dtype=torch.float64)
    at = [3, 4, 10, 30, 31, 32]
    x[at, 0, 0] = 1.0
    g.run(T, inputs={"in": x})
    v = torch.as_tensor(mon.data()["values"][:, 0, 0])
    a = math.exp(-DT / lif.tau_mem)
    received = v[1:] - a * v[:-1]
    e = _efficacies(p, x[:, 0, 0])
    expect = torch.zeros(T - 1, dtype=torch.float64)
    expect[at] = w * e[at]                    # emitted at t, in the membrane at t + 1
    # independent check of the first two: U, then (U a_f + U (1 - U a_f)) (1 - U a_d)
    af, ad = math.exp(-DT / p.tau_f), math.exp(-DT / p.tau_d)
    assert float(e[3]) == pytest.approx(p.U, rel=1e-15)
    assert float(e[4]) == pytest.approx((p.U * af + p.U * (1 - p.U * af)) * (1 - p.U * ad),
                                        rel=1e-13)
    torch.testing.assert_close(received, expect, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kwargs, match", [
    ({"U": 0.0}, r"U must lie in \(0.0, 1.0\], got 0.0"),
    ({"U": 1.5}, r"U must lie in .* got 1.5"),
    ({"U": float("nan")}, r"U must lie in .* got nan"),
    ({"tau_f": -0.01}, r"tau_f must be finite and >= 0, got -0.01"),
    ({"tau_d": 0.0}, r"tau_d must be finite and > 0 s, got 0.0"),
    ({"tau_d": float("inf")}, r"tau_d must be finite and > 0 s, got inf"),
])
def test_bad_parameters_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        TsodyksMarkramParameters(**kwargs)


def test_wrong_shapes_and_types_are_refused() -> None:
    with pytest.raises(ParameterTypeError, match="TsodyksMarkramParameters, got dict"):
        TsodyksMarkram({"U": 0.5})  # type: ignore[arg-type]
    syn = TsodyksMarkram()
    st = syn.initial_state(3, 2, torch.device("cpu"), torch.float64)
    with pytest.raises(ShapeError, match=r"shape \(2, 4\) does not fit its state \(2, 3\)"):
        syn.step(torch.zeros(2, 4, dtype=torch.float64), st, DT)
