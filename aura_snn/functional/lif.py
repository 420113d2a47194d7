r"""Leaky integrate-and-fire (LIF) neuron.

ODE (membrane potential :math:`v`, input :math:`x` as the voltage :math:`R I` it
would hold at steady state):

.. math::
    \tau_\text{mem} \frac{dv}{dt} = -(v - v_\text{leak}) + x(t)

Discretisation over a step :math:`\Delta t` with :math:`x` held constant in the step
(:func:`aura_snn.functional.decay.decay` gives :math:`a`):

.. math::
    u[t] = v_\text{leak} + a\,(v[t-1] - v_\text{leak}) + g\,x[t]

================== ===================================== =========================
``input_scaling``  :math:`g`                             convention of
================== ===================================== =========================
``"ode"``          :math:`1 - a` (exact: zero-order hold; Norse, Brian2, Lava,
                   euler: :math:`\Delta t/\tau`)          SpikingJelly decay_input
``"direct"``       :math:`1`                              snnTorch ``Leaky``
                                                          (``beta = a``)
================== ===================================== =========================

then :math:`S[t] = H(u[t] - \vartheta)` and the reset of
:mod:`aura_snn.functional.firing` gives :math:`v[t]`.

Symbols (SI): ``tau_mem`` :math:`\tau_\text{mem}` (s), ``dt`` :math:`\Delta t` (s),
``v_leak`` (V), ``threshold`` :math:`\vartheta` (V), ``v_reset`` (V), ``x`` (V).
State: ``v`` (V) — after reset for ``reset_at="spike"``, before reset (snnTorch's
``mem``) for ``reset_at="next_step"``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .._checks import check_choice, check_dt_tau, check_finite_param
from .decay import INTEGRATIONS, decay
from .firing import RESET_CODE, FiringParameters, Scalar, fire, pending_reset, reset_at_spike
from .registry import CompiledFamily, ModelSpec

INPUT_SCALINGS = ("ode", "direct")


class LIFState(NamedTuple):
    """State of a LIF population: ``v`` membrane potential (V), shape of the input."""

    v: torch.Tensor


@dataclass(frozen=True)
class LIFParameters(FiringParameters):
    """LIF parameters (see the module docstring for the equations).

    Attributes:
        tau_mem: membrane time constant (s), > dt.
        v_leak: resting potential (V).
        integration: ``"exact"`` (exponential decay) or ``"euler"`` (forward Euler).
        input_scaling: ``"ode"`` (input scaled by 1 - a) or ``"direct"`` (added as is).
    """

    tau_mem: Scalar = 1e-2
    v_leak: Scalar = 0.0
    integration: str = "exact"
    input_scaling: str = "ode"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("integration", self.integration, INTEGRATIONS)
        check_choice("input_scaling", self.input_scaling, INPUT_SCALINGS)
        check_finite_param("v_leak", self.v_leak)

    def validate(self, dt: float) -> None:
        """Check ``dt`` against ``tau_mem`` (both s): positive and ``dt < tau_mem``."""
        check_dt_tau(dt, self.tau_mem, "tau_mem")


def gain(a: Scalar, input_scaling: str) -> Scalar:
    """Input gain :math:`g`: :math:`1 - a` for ``"ode"``, 1 for ``"direct"``."""
    return 1.0 - a if input_scaling == "ode" else 1.0


def coefficients(p: LIFParameters, dt: float) -> tuple[Scalar, Scalar]:
    """Per-step decay :math:`a` and input gain :math:`g` of the LIF update."""
    a = decay(p.tau_mem, dt, p.integration)
    return a, gain(a, p.input_scaling)


def integrate(v: torch.Tensor, drive: torch.Tensor, a: Scalar, v_leak: Scalar) -> torch.Tensor:
    r"""Sub-threshold update :math:`v_\text{leak} + a (v - v_\text{leak}) + \text{drive}`.

    ``drive`` is the already-scaled input (:math:`g x` for LIF, :math:`k i` for CubaLIF).
    """
    return v_leak + a * (v - v_leak) + drive


def integrate_and_fire(v: torch.Tensor, drive: torch.Tensor, a: Scalar, v_leak: Scalar,
                       theta: Scalar, p: FiringParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """One integrate/fire/reset step of any LIF-type model; returns ``(S, v_new)``.

    Handles both reset timings of :mod:`aura_snn.functional.firing`.
    """
    if p.reset_at == "next_step":
        r = pending_reset(v, theta, p)
        if p.reset == "subtract":
            u = integrate(v, drive, a, v_leak) - theta * r
        elif p.reset == "zero":
            u = integrate((1.0 - r) * v + r * p.v_reset, drive, a, v_leak)
        else:
            u = integrate(v, drive, a, v_leak)
        return fire(u, theta, p), u
    u = integrate(v, drive, a, v_leak)
    s = fire(u, theta, p)
    return s, reset_at_spike(u, s, theta, p)


def initial_state(x: torch.Tensor, p: LIFParameters) -> LIFState:
    """Resting state :math:`v = v_\\text{leak}` shaped, placed and typed like ``x``."""
    return LIFState(v=torch.zeros_like(x) + p.v_leak)


def step(x: torch.Tensor, state: LIFState | None, p: LIFParameters,
         dt: float) -> tuple[torch.Tensor, LIFState]:
    """Advance a LIF population by one step of ``dt`` seconds.

    Args:
        x: input :math:`x[t]` (V), shape ``[B, ...]``.
        state: previous state, or ``None`` for the resting state.
        p: parameters.
        dt: step (s).

    Returns:
        ``(S[t], LIFState(v[t]))``, spikes shaped like ``x``.
    """
    if state is None:
        state = initial_state(x, p)
    a, g = coefficients(p, dt)
    s, v = integrate_and_fire(state.v, g * x, a, p.v_leak, p.threshold, p)
    return s, LIFState(v)


def compiled(p: LIFParameters, dt: float) -> CompiledFamily:
    """LIF in the compiled family: no current (:math:`\\hat\\imath = x`), gain ``g``."""
    a, g = coefficients(p, dt)
    return CompiledFamily(a, p.v_leak, p.threshold, p.v_reset, RESET_CODE[p.reset], 0, False,
                          ((g, 0.0, 0.0),), next_step=p.reset_at == "next_step")


SPEC = ModelSpec(
    name="lif", module=sys.modules[__name__], parameters=LIFParameters, state=LIFState,
    units={"tau_mem": "s", "v_leak": "V", "threshold": "V", "v_reset": "V", "slope": "1/V"},
    state_units={"v": "V"}, compile=compiled)
