r"""Izhikevich neuron (Izhikevich 2003, "Simple model of spiking neurons", IEEE TNN 14).

A quadratic membrane :math:`v` with a recovery variable :math:`u`, written in SI:

.. math::
    \frac{dv}{dt} = k_2 v^2 + k_1 v + k_0 - u + I, \qquad
    \frac{du}{dt} = a\,(b\,v - u), \qquad
    v > v_\text{peak}:\ v \leftarrow c,\ u \leftarrow u + d

The paper writes the membrane in mV and ms, :math:`0.04 v^2 + 5 v + 140 - u + I`;
in SI its coefficients are :math:`k_2 = 0.04\,\text{ms}^{-1}\text{mV}^{-1} =
4\times10^4\,\text{V}^{-1}\text{s}^{-1}`, :math:`k_1 = 5\,\text{ms}^{-1} =
5\times10^3\,\text{s}^{-1}`, :math:`k_0 = 140\,\text{mV/ms} = 140\,\text{V/s}`
(Brian2 writes ``(0.04/ms/mV)*v**2 + (5/ms)*v + 140*mV/ms``, the same numbers).
The paper's :math:`a, b` (1/ms) are multiplied by 1000 (1/s), :math:`c` (mV) by
:math:`10^{-3}` (V); :math:`d, u, I` in mV/ms are already V/s. :data:`PRESETS` holds
the firing types of the paper's Fig. 2 in these units.

Discretisation over a step :math:`\Delta t` with the input held, :math:`f(v, u) =
k_2 v^2 + k_1 v + k_0 - u + I`:

================ ============================================================ =============
``integration``  update                                                        convention of
================ ============================================================ =============
``"euler"``      :math:`v' = v + \Delta t\,f(v, u)`,                           Brian2
                 :math:`u' = u + \Delta t\,a(b v - u)` (both from the old state) ``euler``
``"paper"``      :math:`v_{1/2} = v + \tfrac{\Delta t}{2} f(v, u)`,            Izhikevich's
                 :math:`v' = v_{1/2} + \tfrac{\Delta t}{2} f(v_{1/2}, u)`,     code (2003
                 :math:`u' = u + \Delta t\,a(b v' - u)` (the new :math:`v`)     ``spnet``, 2007)
================ ============================================================ =============

then :math:`S = H(v' - v_\text{peak})` (strict, as every model here; the paper's
``v >= 30`` differs only when :math:`v'` lands exactly on the peak), :math:`v \leftarrow
(1 - S) v' + S c` (the ``"zero"`` reset of :mod:`aura_snn.functional.firing`, with its
surrogate gradient) and :math:`u \leftarrow u' + d\,S`. The paper's code checks the
peak at the start of the next step, which is the same sequence of states.

Input: :math:`x = I` (V/s), the drive held during the step. A projection of weight
:math:`w` thus injects :math:`w` V/s for one step, moving :math:`v` by about
:math:`w\,\Delta t` (the paper's synapses add :math:`w` mV/ms to :math:`I` for one 1-ms step).

Symbols (SI): ``a`` (1/s), ``b`` (1/s), ``v_reset`` :math:`c` (V), ``d`` (V/s),
``threshold`` :math:`v_\text{peak}` (V), ``k2`` (1/(V s)), ``k1`` (1/s), ``k0`` (V/s),
``v_init`` (V), ``dt`` (s), ``x`` (V/s). State: ``v`` (V), ``u`` (V/s); at rest
:math:`v = v_\text{init}`, :math:`u = b\,v_\text{init}` (the paper's start).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .._checks import check_choice, check_finite_param, check_nonnegative, check_positive
from ..errors import ParameterError
from .firing import FiringParameters, Scalar, fire, reset_at_spike
from .registry import ModelKernel, ModelSpec

INTEGRATIONS = ("euler", "paper")

#: Izhikevich (2003) Fig. 2 firing types in SI: ``(a 1/s, b 1/s, c V, d V/s)``.
PRESETS: dict[str, tuple[float, float, float, float]] = {
    "RS": (20.0, 200.0, -65e-3, 8.0),     # regular spiking (excitatory cortex)
    "IB": (20.0, 200.0, -55e-3, 4.0),     # intrinsically bursting
    "CH": (20.0, 200.0, -50e-3, 2.0),     # chattering
    "FS": (100.0, 200.0, -65e-3, 2.0),    # fast spiking (inhibitory)
    "LTS": (20.0, 250.0, -65e-3, 2.0),    # low-threshold spiking
    "TC": (20.0, 250.0, -65e-3, 0.05),    # thalamo-cortical
    "RZ": (100.0, 260.0, -65e-3, 2.0),    # resonator
}


class IzhikevichState(NamedTuple):
    """State: membrane ``v`` (V) and recovery ``u`` (V/s), both shaped like the input."""

    v: torch.Tensor
    u: torch.Tensor


@dataclass(frozen=True)
class IzhikevichParameters(FiringParameters):
    """Izhikevich parameters (module docstring); defaults: regular spiking (RS).

    Attributes:
        a: recovery rate (1/s), >= 0 (paper 0.02/ms).
        b: sensitivity of the recovery to ``v`` (1/s) (paper 0.2/ms).
        d: recovery increment at a spike (V/s) (paper 8 mV/ms).
        threshold: spike peak :math:`v_\\text{peak}` (V), > 0 (paper 30 mV).
        v_reset: the paper's :math:`c`, potential after a spike (V) (paper -65 mV).
        k2, k1, k0: coefficients of :math:`k_2 v^2 + k_1 v + k_0`, in 1/(V s), 1/s, V/s.
        v_init: initial membrane (V); the initial recovery is ``b * v_init``.
        integration: ``"euler"`` or ``"paper"`` (module docstring).
        reset, reset_at: fixed to ``"zero"`` and ``"spike"`` (the model's reset).
    """

    threshold: Scalar = 30e-3
    v_reset: Scalar = -65e-3
    reset: str = "zero"
    a: Scalar = 20.0
    b: Scalar = 200.0
    d: Scalar = 8.0
    k2: Scalar = 4e4
    k1: Scalar = 5e3
    k0: Scalar = 140.0
    v_init: Scalar = -65e-3
    integration: str = "euler"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reset != "zero" or self.reset_at != "spike":
            raise ParameterError(
                f"reset must be 'zero' and reset_at 'spike' for izhikevich (v <- c, u <- u + d "
                f"at the spike), got reset={self.reset!r}, reset_at={self.reset_at!r}")
        check_choice("integration", self.integration, INTEGRATIONS)
        check_nonnegative("a", self.a)
        check_positive("k2", self.k2, "1/(V s)")
        for name in ("b", "d", "k1", "k0", "v_init"):
            check_finite_param(name, getattr(self, name))

    @property
    def c(self) -> Scalar:
        """The paper's :math:`c` (V): the reset potential ``v_reset``."""
        return self.v_reset

    @classmethod
    def preset(cls, name: str, **overrides: object) -> IzhikevichParameters:
        """Parameters of a firing type of :data:`PRESETS` (``"RS"``, ``"FS"``, ``"CH"``,
        ...), with any field overridden."""
        check_choice("preset", name, PRESETS)
        a, b, c, d = PRESETS[name]
        return cls(**{"a": a, "b": b, "v_reset": c, "d": d, **overrides})  # type: ignore[arg-type]

    def validate(self, dt: float) -> None:
        """Check the step ``dt`` (s): positive."""
        check_positive("dt", dt, "s")


def drift(v: torch.Tensor, u: torch.Tensor, x: torch.Tensor,
          p: IzhikevichParameters) -> torch.Tensor:
    r""":math:`f(v, u) = k_2 v^2 + k_1 v + k_0 - u + I` (V/s), summed as
    :math:`(k_0 + ((I + k_1 v) + k_2 v^2)) - u`: the order of Brian2's generated code,
    so that float64 runs agree with Brian2 bit for bit (the upstroke amplifies any
    rounding difference by about :math:`1 + \Delta t\,(2 k_2 v + k_1)` per step)."""
    return (p.k0 + ((x + p.k1 * v) + p.k2 * (v * v))) - u


def initial_state(x: torch.Tensor, p: IzhikevichParameters) -> IzhikevichState:
    """Rest: :math:`v = v_\\text{init}`, :math:`u = b\\,v_\\text{init}`, shaped like ``x``."""
    v = torch.zeros_like(x) + p.v_init
    return IzhikevichState(v=v, u=torch.zeros_like(x) + p.b * p.v_init)


def step(x: torch.Tensor, state: IzhikevichState | None, p: IzhikevichParameters,
         dt: float) -> tuple[torch.Tensor, IzhikevichState]:
    """Advance an Izhikevich population by one step of ``dt`` seconds.

    Args:
        x: input current :math:`I` (V/s), shape ``[B, ...]``, held during the step.
        state: previous state, or ``None`` for rest.
        p: parameters.
        dt: step (s).

    Returns:
        ``(S[t], IzhikevichState(v[t], u[t]))``, after the reset.
    """
    if state is None:
        state = initial_state(x, p)
    v, u = state.v, state.u
    if p.integration == "euler":
        v_new = v + dt * drift(v, u, x, p)
        u_new = u + dt * (p.a * (p.b * v - u))
    else:
        half = 0.5 * dt
        v_half = v + half * drift(v, u, x, p)
        v_new = v_half + half * drift(v_half, u, x, p)
        u_new = u + dt * (p.a * (p.b * v_new - u))
    s = fire(v_new, p.threshold, p)
    v_out = reset_at_spike(v_new, s, p.threshold, p)
    return s, IzhikevichState(v_out, u_new + p.d * s)


def kernel_step(j, n, nrec, x, v, g, ref, b, f, P, n_ref, reset):  # noqa: ANN001, ANN201, ARG001
    """:func:`step` of neuron ``j``, on scalars: the engine's form
    (:class:`~aura_snn.functional.registry.ModelKernel`), the same operations in the same
    order. ``x``: the input ``[n]`` (read and cleared); ``b``: the recovery :math:`u`;
    ``g``, ``ref``, ``nrec``, ``n_ref``, ``reset``: unused; ``f``: ``[dt, h, k]``, the
    membrane advanced by ``k`` sub-steps of ``h`` (euler: 1 of ``dt``; paper: 2 of
    ``dt/2``); ``P``: the rows of :func:`kernel` ``[a, b, d, threshold, c, k2, k1, k0]``
    at column ``j``. The reset is a branch, equal to ``(1 - S) v' + S c`` and ``u' +
    d S`` for finite values. Returns :math:`S` (0 or 1)."""
    vj, uj, xj = v[j], b[j], x[j]
    x[j] = 0
    v_new = vj
    for _ in range(int(f[2])):          # drift(v_new, u, x) of :func:`drift`
        v_new = v_new + f[1] * ((P[7, j] + ((xj + P[6, j] * v_new) + P[5, j] * (v_new * v_new)))
                                - uj)
    v_u = vj if f[2] == 1 else v_new
    u_new = uj + f[0] * (P[0, j] * (P[1, j] * v_u - uj))
    if v_new - P[3, j] > 0:
        v[j] = P[4, j]
        b[j] = u_new + P[2, j]
        return 1
    v[j] = v_new
    b[j] = u_new
    return 0


def kernel(p: IzhikevichParameters, dt: float) -> ModelKernel:
    """The engine's form of :func:`step` (:func:`kernel_step`), its coefficients ``[a,
    b, d, threshold, c, k2, k1, k0]`` and scalars ``[dt, h, k]``."""
    sub = (dt, 1.0) if p.integration == "euler" else (0.5 * dt, 2.0)
    return ModelKernel(step=kernel_step, rows=(p.a, p.b, p.d, p.threshold, p.v_reset, p.k2,
                                               p.k1, p.k0), scalars=(dt, *sub), reset=1)

SPEC = ModelSpec(
    name="izhikevich", module=sys.modules[__name__], parameters=IzhikevichParameters,
    state=IzhikevichState,
    units={"a": "1/s", "b": "1/s", "d": "V/s", "threshold": "V", "v_reset": "V",
           "k2": "1/(V s)", "k1": "1/s", "k0": "V/s", "v_init": "V", "slope": "1/V"},
    state_units={"v": "V", "u": "V/s"}, roles={"v": "v", "b": "u"}, kernel=kernel)

__all__ = ["INTEGRATIONS", "IzhikevichParameters", "IzhikevichState", "PRESETS", "SPEC",
           "drift", "initial_state", "kernel", "kernel_step", "step"]
