r"""Adaptive LIF (ALIF): a LIF neuron whose threshold rises with each spike and relaxes.

Threshold adaptation after Bellec et al. 2018 (LSNN). With the LIF update of
:mod:`aura_snn.functional.lif` for :math:`u[t]` and an adaptation trace :math:`b`
(dimensionless, +1 per spike):

.. math::
    \tau_\text{adapt} \frac{db}{dt} = -b + \sum_k \delta(t - t_k), \qquad
    \vartheta[t] = \vartheta_0 + \beta\, a_b\, b[t-1]

per step: :math:`\tilde b = a_b\,b[t-1]`, :math:`\vartheta[t] = \vartheta_0 + \beta \tilde b`,
:math:`S[t] = H(u[t] - \vartheta[t])`, reset with :math:`\vartheta[t]` (the effective
threshold), then :math:`b[t] = \tilde b + S[t]`.

Symbols (SI): ``tau_adapt`` (s), ``beta`` :math:`\beta` (V per unit of :math:`b`),
``threshold`` :math:`\vartheta_0` (V); the LIF symbols as in :mod:`.lif`.
State: ``v`` (V), ``b`` (dimensionless).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .._checks import check_dt_tau, check_nonnegative
from ..errors import ParameterError
from .decay import decay
from .firing import RESET_CODE, Scalar
from .lif import LIFParameters, integrate_and_fire
from .lif import coefficients as lif_coefficients
from .registry import CompiledFamily, ModelSpec


class ALIFState(NamedTuple):
    """State of an ALIF population: membrane ``v`` (V) and adaptation trace ``b``."""

    v: torch.Tensor
    b: torch.Tensor


@dataclass(frozen=True)
class ALIFParameters(LIFParameters):
    """ALIF parameters: LIF's plus ``tau_adapt`` (s) and ``beta`` (V)."""

    tau_adapt: Scalar = 0.2
    beta: Scalar = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.beta, torch.Tensor) or not self.beta.requires_grad:
            check_nonnegative("beta", self.beta)
        if self.reset_at != "spike":
            raise ParameterError(
                f"reset_at must be 'spike' for ALIF (the adaptive threshold is defined at the "
                f"spike), got {self.reset_at!r}"
            )

    def validate(self, dt: float) -> None:
        """Check ``dt`` against ``tau_mem`` and ``tau_adapt`` (s)."""
        super().validate(dt)
        check_dt_tau(dt, self.tau_adapt, "tau_adapt")


def initial_state(x: torch.Tensor, p: ALIFParameters) -> ALIFState:
    """Rest: :math:`v = v_\\text{leak}`, :math:`b = 0`, shaped like ``x``."""
    return ALIFState(v=torch.zeros_like(x) + p.v_leak, b=torch.zeros_like(x))


def step(x: torch.Tensor, state: ALIFState | None, p: ALIFParameters,
         dt: float) -> tuple[torch.Tensor, ALIFState]:
    """Advance an ALIF population by one step of ``dt`` seconds; returns ``(S, state)``."""
    if state is None:
        state = initial_state(x, p)
    a, g = lif_coefficients(p, dt)
    b_dec = decay(p.tau_adapt, dt, p.integration) * state.b
    theta = p.threshold + p.beta * b_dec
    s, v = integrate_and_fire(state.v, g * x, a, p.v_leak, theta, p)
    return s, ALIFState(v, b_dec + s)


def compiled(p: ALIFParameters, dt: float) -> CompiledFamily:
    """ALIF in the compiled family: LIF's coefficients plus the adaptation decay
    :math:`a_b` and increment ``beta``."""
    a, g = lif_coefficients(p, dt)
    return CompiledFamily(a, p.v_leak, p.threshold, p.v_reset, RESET_CODE[p.reset], 0, False,
                          ((g, 0.0, 0.0),), decay(p.tau_adapt, dt, p.integration), p.beta)


SPEC = ModelSpec(
    name="alif", module=sys.modules[__name__], parameters=ALIFParameters, state=ALIFState,
    units={"tau_mem": "s", "tau_adapt": "s", "v_leak": "V", "threshold": "V", "v_reset": "V",
           "beta": "V", "slope": "1/V"},
    state_units={"v": "V", "b": ""}, roles={"v": "v", "b": "b"}, compile=compiled)
