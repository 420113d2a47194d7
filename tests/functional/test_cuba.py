"""CubaLIF: the exact coupled solution against the matrix exponential, orders, ALIF."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional import alif, cuba, loop


@pytest.mark.parametrize(("tau_m", "tau_s"), [(20e-3, 5e-3), (10e-3, 10e-3), (5e-3, 20e-3)])
def test_voltage_first_exact_equals_matrix_exponential(tau_m: float, tau_s: float) -> None:
    # d/dt [v, i] = A [v, i] with A = [[-1/tm, 1/tm], [0, -1/ts]] (v_leak = 0): one step
    # of the exact propagator expm(A dt) must equal our (a_m, k, a_s) update.
    dt = 1e-4
    A = np.array([[-1 / tau_m, 1 / tau_m], [0.0, -1 / tau_s]])
    P = scipy.linalg.expm(A * dt)
    p = cuba.CubaLIFParameters(tau_mem=tau_m, tau_syn=tau_s, order="voltage_first",
                               threshold=1e9)
    a_m, a_s, k = cuba.coefficients(p, dt)
    assert a_m == pytest.approx(P[0, 0], rel=1e-12)
    assert k == pytest.approx(P[0, 1], rel=1e-9)
    assert a_s == pytest.approx(P[1, 1], rel=1e-12)
    # and over many steps from a state with current
    st = cuba.CubaLIFState(torch.tensor([0.3], dtype=torch.float64),
                           torch.tensor([2.0], dtype=torch.float64))
    out = loop.run(cuba.step, torch.zeros(300, 1, dtype=torch.float64), st, p, dt, record_v=True)
    expected = np.linalg.matrix_power(P, 300) @ np.array([0.3, 2.0])
    assert out.state.v.item() == pytest.approx(expected[0], rel=1e-10)
    assert out.state.i.item() == pytest.approx(expected[1], rel=1e-10)


def test_current_first_sees_input_in_the_same_step() -> None:
    x = torch.zeros(3, 1, dtype=torch.float64)
    x[0] = 1.0
    for order, first_v_nonzero in (("current_first", True), ("voltage_first", False)):
        p = cuba.CubaLIFParameters(order=order, threshold=10.0)
        out = loop.run(cuba.step, x, None, p, 1e-3, record_v=True)
        assert (out.v[0, 0].item() != 0.0) is first_v_nonzero
        assert out.v[1, 0].item() > 0


def test_alif_threshold_rises_and_relaxes() -> None:
    p = alif.ALIFParameters(tau_mem=10e-3, tau_adapt=100e-3, beta=0.5, input_scaling="direct")
    x = torch.zeros(200, 1, dtype=torch.float64)
    x[0] = 2.0
    out = loop.run(alif.step, x, None, p, 1e-3)
    assert out.spikes[0].item() == 1.0
    b = out.state.b.item()
    # b jumped to 1 at the spike, then decayed for 199 steps: exp(-199 dt / tau_adapt)
    assert b == pytest.approx(np.exp(-199e-3 / 100e-3), rel=1e-12)
    # after a spike and a reset to zero, a kick of 1.2 (above the base threshold 1)
    # no longer fires: the threshold is now 1 + 0.5 exp(-dt/tau_adapt) ~ 1.495
    pz = alif.ALIFParameters(tau_mem=10e-3, tau_adapt=100e-3, beta=0.5, reset="zero",
                             input_scaling="direct")
    x2 = torch.tensor([[2.0], [1.2]], dtype=torch.float64)
    out2 = loop.run(alif.step, x2, None, pz, 1e-3)
    assert out2.spikes[:, 0].tolist() == [1.0, 0.0]


def test_alif_rejects_next_step_reset() -> None:
    with pytest.raises(ParameterError, match="reset_at must be 'spike' for ALIF"):
        alif.ALIFParameters(reset_at="next_step")


def test_cuba_order_validated() -> None:
    with pytest.raises(ParameterError, match="order must be one of"):
        cuba.CubaLIFParameters(order="sideways")
