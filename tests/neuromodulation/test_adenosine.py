"""Adenosine pressure against its closed-form solution, sleep onset and duration
against the analytic times, and the Hill gains."""

from __future__ import annotations

import math

import pytest
import torch

from neuromodulation import adenosine as ado

P = ado.AdenosineParams(tau_wake=50.0, tau_sleep=4.0, kappa=2e-3, threshold=1.5,
                        wake_level=0.2, k_excitability=2.0, k_plasticity=0.5)


def _run(steps: int, rate: float, dt: float, state: ado.AdenosineState | None = None
         ) -> tuple[list[float], list[bool]]:
    s = state if state is not None else ado.initial_state()
    levels, asleep = [], []
    for _ in range(steps):
        s = ado.step(s, rate, P, dt)
        levels.append(float(s.level))
        asleep.append(bool(s.asleep))
    return levels, asleep


def test_awake_pressure_follows_the_closed_form_for_any_step() -> None:
    """A(t) = kappa r tau (1 - exp(-t/tau)), exact whatever dt (rate 5 Hz keeps the
    plateau 0.5 below the threshold, so no sleep interrupts it)."""
    for dt in (0.01, 0.7, 3.0):
        n = int(60 / dt)
        levels, asleep = _run(n, 5.0, dt)
        t = dt * n
        assert not any(asleep)
        assert math.isclose(levels[-1], 2e-3 * 5.0 * 50.0 * (1 - math.exp(-t / 50.0)),
                            rel_tol=1e-12)


def test_sleep_starts_and_ends_at_the_analytic_times() -> None:
    r, dt = 40.0, 1e-3                      # plateau kappa r tau = 4 > threshold 1.5
    t_star = -50.0 * math.log(1 - 1.5 / (2e-3 * r * 50.0))
    levels, asleep = _run(int(2 * t_star / dt), r, dt)
    onset = asleep.index(True) * dt + dt   # the step that crosses sets asleep
    assert abs(onset - t_star) <= dt
    a_on = levels[asleep.index(True)]
    i0 = asleep.index(True)
    wake = asleep.index(False, i0) * dt + dt
    duration = wake - (i0 * dt + dt)
    # asleep: A decays from a_on (>= threshold by at most one step's rise) to wake_level
    assert abs(duration - 4.0 * math.log(a_on / 0.2)) <= dt
    assert abs(duration - 4.0 * math.log(1.5 / 0.2)) < 0.01
    # asleep, activity does not build pressure
    assert all(b <= a + 1e-15 for a, b, s in zip(levels[i0:], levels[i0 + 1:],
                                                  asleep[i0:], strict=False) if s)


def test_gains_halve_at_their_constants_and_batch_elements_are_independent() -> None:
    assert float(ado.excitability(torch.tensor(2.0), P)) == 0.5
    assert float(ado.plasticity(torch.tensor(0.5), P)) == 0.5
    assert float(ado.excitability(torch.tensor(0.0), P)) == 1.0
    s = ado.initial_state((3,))
    for _ in range(100):
        s = ado.step(s, torch.tensor([0.0, 5.0, 10.0]), P, 0.5)
    one = ado.initial_state()
    for _ in range(100):
        one = ado.step(one, 5.0, P, 0.5)
    assert float(s.level[0]) == 0.0 and float(s.level[1]) == float(one.level)


@pytest.mark.parametrize("kw,name", [({"tau_wake": -1.0}, "tau_wake"),
                                     ({"kappa": float("nan")}, "kappa"),
                                     ({"wake_level": 2.0, "threshold": 1.0}, "wake_level"),
                                     ({"k_plasticity": 0.0}, "k_plasticity")])
def test_bad_parameters_are_named(kw: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ado.AdenosineParams(**kw)


def test_negative_activity_and_dt_are_refused() -> None:
    with pytest.raises(ValueError, match="activity"):
        ado.step(ado.initial_state(), -1.0, P, 0.1)
    with pytest.raises(ValueError, match="dt"):
        ado.step(ado.initial_state(), 1.0, P, 0.0)
