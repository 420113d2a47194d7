r"""Current-based LIF (CubaLIF): an exponentially decaying synaptic current drives the membrane.

ODEs (synaptic current :math:`i` in V, i.e. :math:`R I`; input :math:`x` adds jumps):

.. math::
    \tau_\text{syn} \frac{di}{dt} = -i + \sum_k x_k\,\tau_\text{syn}\,\delta(t - t_k), \qquad
    \tau_\text{mem} \frac{dv}{dt} = -(v - v_\text{leak}) + i

Per step (:math:`a_s`, :math:`a_m` from :func:`aura_snn.functional.decay.decay`):

``order="current_first"`` (snnTorch ``Synaptic``, Norse ``LIF``): the input of step
:math:`t` enters the current first, and the membrane sees it in the same step,

.. math::
    i[t] = a_s\,i[t-1] + x[t], \qquad
    u[t] = v_\text{leak} + a_m (v[t-1] - v_\text{leak}) + k\,i[t]

``order="voltage_first"`` (Brian2, Lava): the membrane integrates the current it had
during the step, and input spikes arrive at the step's end,

.. math::
    u[t] = v_\text{leak} + a_m (v[t-1] - v_\text{leak}) + k\,i[t-1], \qquad
    i[t] = a_s\,i[t-1] + x[t]

Coupling coefficient :math:`k`:

* ``input_scaling="direct"`` (snnTorch): :math:`k = 1`.
* ``integration="euler"`` (Norse, Brian2 ``euler``): :math:`k = \Delta t/\tau_\text{mem}`.
* ``exact``, ``voltage_first``: the exact solution of the linear ODE over the step
  (Brian2 ``exact``), :math:`k = \frac{\tau_s}{\tau_s - \tau_m}(a_s - a_m)`, with the
  limit :math:`k = \frac{\Delta t}{\tau} a` when :math:`\tau_s = \tau_m`.
* ``exact``, ``current_first``: the new current held over the step, :math:`k = 1 - a_m`.

then :math:`S[t] = H(u[t] - \vartheta)` and the reset of :mod:`aura_snn.functional.firing`.

Symbols (SI): ``tau_syn`` (s), ``tau_mem`` (s), ``dt`` (s), ``v_leak``, ``threshold``,
``v_reset``, ``x``, ``i`` (V). State: ``v`` (V), ``i`` (V).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .._checks import check_choice, check_dt_tau
from .decay import decay
from .firing import RESET_CODE, Scalar
from .lif import LIFParameters, integrate_and_fire
from .registry import CompiledFamily, ModelSpec

ORDERS = ("current_first", "voltage_first")


class CubaLIFState(NamedTuple):
    """State of a CubaLIF population: membrane ``v`` (V) and synaptic current ``i`` (V)."""

    v: torch.Tensor
    i: torch.Tensor


@dataclass(frozen=True)
class CubaLIFParameters(LIFParameters):
    """CubaLIF parameters: those of LIF plus ``tau_syn`` (s) and ``order``.

    Attributes:
        tau_syn: synaptic current time constant (s), > dt.
        order: ``"current_first"`` or ``"voltage_first"`` (module docstring).
    """

    tau_syn: Scalar = 5e-3
    order: str = "current_first"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("order", self.order, ORDERS)

    def validate(self, dt: float) -> None:
        """Check ``dt`` against both time constants (s)."""
        super().validate(dt)
        check_dt_tau(dt, self.tau_syn, "tau_syn")


def coupling(a_m: Scalar, a_s: Scalar, p: CubaLIFParameters, dt: float) -> Scalar:
    """Coupling :math:`k` of the current into the membrane (table in the module docstring)."""
    if p.input_scaling == "direct":
        return 1.0
    if p.integration == "euler":
        return dt / p.tau_mem
    if p.order == "current_first":
        return 1.0 - a_m
    tau_m, tau_s = p.tau_mem, p.tau_syn
    diff = tau_s - tau_m
    if isinstance(diff, torch.Tensor):
        near = diff.abs() <= 1e-9 * tau_m
        safe = torch.where(near, torch.ones_like(diff), diff)
        return torch.where(near, (dt / tau_m) * a_m, tau_s / safe * (a_s - a_m))
    if abs(diff) <= 1e-9 * tau_m:
        return dt / tau_m * a_m
    return tau_s / diff * (a_s - a_m)


def coefficients(p: CubaLIFParameters, dt: float) -> tuple[Scalar, Scalar, Scalar]:
    """Per-step ``(a_m, a_s, k)``: membrane decay, current decay, coupling."""
    a_m = decay(p.tau_mem, dt, p.integration)
    a_s = decay(p.tau_syn, dt, p.integration)
    return a_m, a_s, coupling(a_m, a_s, p, dt)


def initial_state(x: torch.Tensor, p: CubaLIFParameters) -> CubaLIFState:
    """Resting state: :math:`v = v_\\text{leak}`, :math:`i = 0`, shaped like ``x``."""
    return CubaLIFState(v=torch.zeros_like(x) + p.v_leak, i=torch.zeros_like(x))


def step(x: torch.Tensor, state: CubaLIFState | None, p: CubaLIFParameters,
         dt: float) -> tuple[torch.Tensor, CubaLIFState]:
    """Advance a CubaLIF population by one step of ``dt`` seconds.

    Args:
        x: input jump of the current :math:`x[t]` (V), shape ``[B, ...]``.
        state: previous state, or ``None`` for rest.
        p: parameters.
        dt: step (s).

    Returns:
        ``(S[t], CubaLIFState(v[t], i[t]))``.
    """
    if state is None:
        state = initial_state(x, p)
    a_m, a_s, k = coefficients(p, dt)
    i_new = a_s * state.i + x
    i_drive = i_new if p.order == "current_first" else state.i
    s, v = integrate_and_fire(state.v, k * i_drive, a_m, p.v_leak, p.threshold, p)
    return s, CubaLIFState(v, i_new)


def compiled(p: CubaLIFParameters, dt: float) -> CompiledFamily:
    """CubaLIF in the compiled family: ``current_first`` decays then adds the input
    (:math:`b = a_s`, :math:`c = 1`); ``voltage_first`` adds it after the membrane step
    (:math:`b = 1`, :math:`c = a_s`, late)."""
    a_m, a_s, k = coefficients(p, dt)
    late = p.order == "voltage_first"
    rec = ((k, 1.0, a_s),) if late else ((k, a_s, 1.0),)
    return CompiledFamily(a_m, p.v_leak, p.threshold, p.v_reset, RESET_CODE[p.reset], 0, late,
                          rec, next_step=p.reset_at == "next_step")


SPEC = ModelSpec(
    name="cuba", module=sys.modules[__name__], parameters=CubaLIFParameters,
    state=CubaLIFState,
    units={"tau_mem": "s", "tau_syn": "s", "v_leak": "V", "threshold": "V", "v_reset": "V",
           "slope": "1/V"},
    state_units={"v": "V", "i": "V"}, roles={"v": "v", "i": "i"}, compile=compiled)
