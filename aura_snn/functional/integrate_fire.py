r"""Integrate-and-fire (IF): a perfect integrator with threshold and reset, no leak.

ODE (membrane :math:`v`, input :math:`x` the voltage added per unit time):

.. math::
    \frac{dv}{dt} = \dot x(t)

Per step the input :math:`x[t]` is the voltage increment of the step (V), so

.. math::
    u[t] = v[t-1] + x[t]

then :math:`S[t] = H(u[t] - \vartheta)` and the reset of
:mod:`aura_snn.functional.firing` gives :math:`v[t]` (``reset="zero"`` to
``v_reset`` by default, the convention of NIR's ``IF`` node). This is the LIF update
of :mod:`aura_snn.functional.lif` with decay :math:`a = 1` and input gain 1; it
reuses that module's integrate/fire/reset step. A NIR ``IF`` node (``dv/dt = R I``)
integrated with step :math:`\Delta t` is this model fed :math:`\Delta t\,R\,x`
(:mod:`hardware.nir`).

Symbols (SI): ``threshold`` :math:`\vartheta` (V), ``v_reset`` (V), ``x`` (V per
step). State: ``v`` (V), starting at 0.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .._checks import check_positive
from .firing import RESET_CODE, FiringParameters
from .lif import integrate_and_fire
from .registry import CompiledFamily, ModelSpec


class IFState(NamedTuple):
    """State of an IF population: ``v`` membrane potential (V), shape of the input."""

    v: torch.Tensor


@dataclass(frozen=True)
class IFParameters(FiringParameters):
    """IF parameters: the threshold, reset and surrogate of
    :class:`~aura_snn.functional.firing.FiringParameters`; the default reset is
    ``"zero"`` (to ``v_reset``)."""

    reset: str = "zero"

    def validate(self, dt: float) -> None:
        """Check the step ``dt`` (s) is positive (IF has no time constant)."""
        check_positive("dt", dt, "s")


def initial_state(x: torch.Tensor, p: IFParameters) -> IFState:
    """Resting state :math:`v = 0` shaped, placed and typed like ``x``."""
    return IFState(v=torch.zeros_like(x))


def step(x: torch.Tensor, state: IFState | None, p: IFParameters,
         dt: float) -> tuple[torch.Tensor, IFState]:
    """Advance an IF population by one step: :math:`u = v + x`, fire, reset.

    Args:
        x: voltage increment of the step (V), shape ``[B, ...]``.
        state: previous state, or ``None`` for rest.
        p: parameters.
        dt: step (s); unused by the update (kept for the common signature).

    Returns:
        ``(S[t], IFState(v[t]))``.
    """
    if state is None:
        state = initial_state(x, p)
    s, v = integrate_and_fire(state.v, x, 1.0, 0.0, p.threshold, p)
    return s, IFState(v)


def compiled(p: IFParameters, dt: float) -> CompiledFamily:
    """IF in the compiled family: :math:`a_m = 1`, :math:`v_\\text{leak} = 0`, gain 1."""
    return CompiledFamily(1.0, 0.0, p.threshold, p.v_reset, RESET_CODE[p.reset], 0, False,
                          ((1.0, 0.0, 0.0),), next_step=p.reset_at == "next_step")


SPEC = ModelSpec(
    name="if", module=sys.modules[__name__], parameters=IFParameters, state=IFState,
    units={"threshold": "V", "v_reset": "V", "slope": "1/V"},
    state_units={"v": "V"}, compile=compiled)

__all__ = ["IFParameters", "IFState", "SPEC", "compiled", "initial_state", "step"]
