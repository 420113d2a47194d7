r"""Current-based LIF with several receptor currents and an absolute refractory period.

The model of Brian2's CUBA example (Vogels & Abbott 2005): each receptor
:math:`r` (e.g. ``"exc"``, ``"inh"``) has its own current :math:`i_r` (V, i.e.
:math:`R I_r`) decaying with :math:`\tau_r`; the membrane integrates their sum and
is clamped while refractory.

.. math::
    \tau_r \frac{di_r}{dt} = -i_r + \sum_k w_k\,\tau_r\,\delta(t - t_k), \qquad
    \tau_\text{mem} \frac{dv}{dt} = -(v - v_\text{leak}) + \sum_r i_r
    \quad \text{(unless refractory)}

Discretisation (per step :math:`\Delta t`; :math:`a_m`, :math:`a_r` from
:func:`aura_snn.functional.decay.decay`, :math:`k_r` the coupling of
:func:`aura_snn.functional.cuba.coupling` for :math:`\tau_\text{syn} = \tau_r` and
``order="voltage_first"``, i.e. the exact solution of the coupled linear system,
:math:`\frac{\tau_r}{\tau_r - \tau_m}(a_r - a_m)`, or :math:`\Delta t/\tau_m` for
``euler``). The input :math:`x_r[t]` holds the jumps delivered at the end of the
previous step (Brian2 runs ``on_pre`` after the threshold of the step in which the
presynaptic neuron fired, so a spike in step :math:`t-1` is part of :math:`x[t]`):

.. math::
    \hat\imath_r &= i_r[t-1] + x_r[t] \\
    c &= \max(c[t-1] - 1,\ 0), \qquad f = [c = 0] \quad\text{(not refractory)} \\
    u[t] &= f\,\big(v_\text{leak} + a_m (v[t-1] - v_\text{leak})
            + \textstyle\sum_r k_r \hat\imath_r\big) + (1 - f)\, v[t-1] \\
    S[t] &= f\, H(u[t] - \vartheta) \\
    v[t] &= \text{reset}(u[t], S[t]) \quad (\text{default } v_\text{reset} \text{ at a spike}) \\
    c[t] &= S[t]\, n_\text{ref} + (1 - S[t])\, c, \qquad i_r[t] = a_r\, \hat\imath_r

with :math:`n_\text{ref} = \lfloor (t_\text{ref} + 10^{-3}\Delta t)/\Delta t \rfloor`
(Brian2's ``timestep``): after a spike in step :math:`n` the membrane is held for
steps :math:`n+1 \dots n+n_\text{ref}-1` and may fire again in step :math:`n + n_\text{ref}`,
exactly as Brian2's ``not_refractory = timestep(t - lastspike) >= timestep(refractory)``.
The currents keep decaying and receiving input while the membrane is clamped.
The sum over receptors is taken in receptor order (``k_0 i_0 + k_1 i_1 + ...``), which
the compiled engine in :mod:`aura_snn.graph.engine` reproduces bit for bit.

Potentials are absolute here (Brian2's ``Vt = -50 mV``), so unlike
:class:`~aura_snn.functional.firing.FiringParameters` the threshold may be negative.

Symbols (SI): ``tau_mem`` :math:`\tau_m` (s), ``tau_syn`` :math:`\tau_r` (s, one per
receptor), ``dt`` (s), ``v_leak`` :math:`v_\text{leak}`, ``threshold``
:math:`\vartheta`, ``v_reset`` (V), ``refractory`` :math:`t_\text{ref}` (s, >= 0),
``x``, ``i`` (V). State: ``v`` (V) ``[B, ...]``, ``i`` (V) ``[R, B, ...]``, ``ref``
:math:`c` (steps of refractoriness left, stored in ``v``'s dtype) ``[B, ...]``.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .._checks import (
    check_choice,
    check_dt_tau,
    check_finite_param,
    check_nonnegative,
    check_positive,
)
from ..errors import ParameterError, ShapeError
from .cuba import CubaLIFParameters
from .cuba import coefficients as cuba_coefficients
from .decay import INTEGRATIONS, decay
from .firing import RESET_AT, RESET_CODE, RESETS, FiringParameters, Scalar, fire, reset_at_spike
from .lif import integrate
from .registry import CompiledFamily, ModelSpec
from .surrogate import SURROGATES


class CubaRefractoryState(NamedTuple):
    """State: membrane ``v`` (V) ``[B, ...]``, receptor currents ``i`` (V) ``[R, B, ...]``,
    refractory steps left ``ref`` ``[B, ...]`` (whole numbers in ``v``'s dtype)."""

    v: torch.Tensor
    i: torch.Tensor
    ref: torch.Tensor


@dataclass(frozen=True)
class CubaRefractoryParameters(FiringParameters):
    """Parameters (module docstring for the equations); defaults are Brian2's CUBA.

    Attributes:
        tau_mem: membrane time constant (s), > dt.
        tau_syn: one time constant (s) per receptor, each > dt.
        receptors: receptor names, as many as ``tau_syn`` (projections target them).
        v_leak: resting potential (V).
        refractory: absolute refractory period (s), >= 0.
        integration: ``"exact"`` (Brian2 ``exact``) or ``"euler"`` (Brian2 ``euler``).
        threshold, v_reset: absolute potentials (V), any finite values.
        reset: ``"zero"`` (to ``v_reset``; default), ``"subtract"`` or ``"none"``.
    """

    threshold: Scalar = -50e-3
    v_reset: Scalar = -60e-3
    reset: str = "zero"
    tau_mem: Scalar = 20e-3
    tau_syn: tuple[Scalar, ...] = (5e-3, 10e-3)
    receptors: tuple[str, ...] = ("exc", "inh")
    v_leak: Scalar = -49e-3
    refractory: float = 5e-3
    integration: str = "exact"

    def __post_init__(self) -> None:
        # Not FiringParameters.__post_init__: potentials are absolute, so the threshold
        # is only required to be finite.
        check_choice("reset", self.reset, RESETS)
        check_choice("reset_at", self.reset_at, RESET_AT)
        if self.reset_at != "spike":
            raise ParameterError(
                f"reset_at must be 'spike' for cuba_refractory (the refractory clamp starts "
                f"at the spike), got {self.reset_at!r}")
        check_choice("surrogate", self.surrogate, SURROGATES)
        check_choice("integration", self.integration, INTEGRATIONS)
        check_finite_param("threshold", self.threshold)
        check_finite_param("v_reset", self.v_reset)
        check_finite_param("v_leak", self.v_leak)
        check_nonnegative("refractory", self.refractory)
        if self.slope is not None:
            check_positive("slope", self.slope, "1/V")
        if not isinstance(self.tau_syn, tuple) or not isinstance(self.receptors, tuple):
            raise ParameterError(
                f"tau_syn and receptors must be tuples (one entry per receptor), got "
                f"{type(self.tau_syn).__name__} and {type(self.receptors).__name__}")
        if len(self.tau_syn) == 0 or len(self.tau_syn) != len(self.receptors):
            raise ParameterError(
                f"tau_syn and receptors must have the same, non-zero length; got "
                f"{len(self.tau_syn)} time constant(s) for receptors {self.receptors!r}")
        if len(set(self.receptors)) != len(self.receptors) or not all(
                isinstance(r, str) and r for r in self.receptors):
            raise ParameterError(f"receptors must be distinct non-empty names, got "
                                 f"{self.receptors!r}")

    def validate(self, dt: float) -> None:
        """Check ``dt`` (s) against ``tau_mem`` and every ``tau_syn`` (s)."""
        check_dt_tau(dt, self.tau_mem, "tau_mem")
        for name, tau in zip(self.receptors, self.tau_syn, strict=True):
            check_dt_tau(dt, tau, f"tau_syn[{name!r}]")


def refractory_steps(refractory: float, dt: float) -> int:
    """:math:`n_\\text{ref}`: Brian2's ``timestep(refractory, dt)``, i.e.
    ``floor((refractory + 1e-3 dt) / dt)`` (s, s -> steps)."""
    check_nonnegative("refractory", refractory)
    check_positive("dt", dt, "s")
    return int((float(refractory) + 1e-3 * dt) / dt)


def coefficients(p: CubaRefractoryParameters, dt: float
                 ) -> tuple[Scalar, tuple[Scalar, ...], tuple[Scalar, ...], int]:
    """Per-step ``(a_m, (a_r, ...), (k_r, ...), n_ref)``: membrane decay, receptor
    decays, couplings (from :mod:`.cuba`, ``order="voltage_first"``), refractory steps.

    Memoised when every time constant is a Python number (the usual case), since the
    step function asks for them every step."""
    taus = (p.tau_mem, *p.tau_syn)
    if not any(isinstance(t, torch.Tensor) for t in taus):
        return _coefficients_cached(float(p.tau_mem), tuple(float(t) for t in p.tau_syn),
                                    p.integration, float(p.refractory), float(dt))
    return _coefficients(p, dt)


@functools.lru_cache(maxsize=256)
def _coefficients_cached(tau_mem: float, tau_syn: tuple[float, ...], integration: str,
                         refractory: float, dt: float
                         ) -> tuple[float, tuple[float, ...], tuple[float, ...], int]:
    p = CubaRefractoryParameters(tau_mem=tau_mem, tau_syn=tau_syn,
                                 receptors=tuple(f"r{k}" for k in range(len(tau_syn))),
                                 refractory=refractory, integration=integration)
    return _coefficients(p, dt)  # type: ignore[return-value]


def _coefficients(p: CubaRefractoryParameters, dt: float
                  ) -> tuple[Scalar, tuple[Scalar, ...], tuple[Scalar, ...], int]:
    a_m = decay(p.tau_mem, dt, p.integration)
    a_syn, k = [], []
    for tau in p.tau_syn:
        cp = CubaLIFParameters(tau_mem=p.tau_mem, tau_syn=tau, order="voltage_first",
                               integration=p.integration)
        _, a_r, k_r = cuba_coefficients(cp, dt)
        a_syn.append(a_r)
        k.append(k_r)
    return a_m, tuple(a_syn), tuple(k), refractory_steps(p.refractory, dt)


def initial_state(x: torch.Tensor, p: CubaRefractoryParameters) -> CubaRefractoryState:
    """Rest, not refractory, no current; ``x`` is one step of input ``[R, B, ...]``."""
    v = torch.zeros_like(x[0]) + p.v_leak
    return CubaRefractoryState(v=v, i=torch.zeros_like(x), ref=torch.zeros_like(x[0]))


def step(x: torch.Tensor, state: CubaRefractoryState | None, p: CubaRefractoryParameters,
         dt: float) -> tuple[torch.Tensor, CubaRefractoryState]:
    """Advance the population by one step of ``dt`` seconds.

    Args:
        x: receptor jumps :math:`x_r[t]` (V), shape ``[R, B, ...]`` with ``R =
            len(p.receptors)`` (delivered at the end of the previous step).
        state: previous state, or ``None`` for rest.
        p: parameters.
        dt: step (s).

    Returns:
        ``(S[t] [B, ...], CubaRefractoryState(v[t], i[t], ref[t]))``.
    """
    n_rec = len(p.receptors)
    if x.dim() < 2 or x.shape[0] != n_rec:
        raise ShapeError(f"x must have shape [R={n_rec}, B, ...] (one row per receptor "
                         f"{p.receptors!r}), got {tuple(x.shape)}")
    if state is None:
        state = initial_state(x, p)
    a_m, a_syn, k, n_ref = coefficients(p, dt)
    i_hat = state.i + x
    drive = k[0] * i_hat[0]
    for r in range(1, n_rec):
        drive = drive + k[r] * i_hat[r]
    c = (state.ref - 1.0).clamp_min(0.0)
    free = c <= 0.0
    u = torch.where(free, integrate(state.v, drive, a_m, p.v_leak), state.v)
    s = fire(u, p.threshold, p) * free.to(u.dtype)
    v = reset_at_spike(u, s, p.threshold, p)
    ref = torch.where(s.detach() > 0, torch.full_like(c, float(n_ref)), c)
    i_new = torch.stack([a_syn[r] * i_hat[r] for r in range(n_rec)])
    return s, CubaRefractoryState(v, i_new, ref)


def compiled(p: CubaRefractoryParameters, dt: float) -> CompiledFamily:
    """The model in the compiled family: per receptor :math:`b_r = 1` (the input joins
    the current before the membrane step), :math:`c_r = a_r`, and ``n_ref`` steps."""
    a_m, a_syn, k, n_ref = coefficients(p, dt)
    rec = tuple((k_r, 1.0, a_r) for k_r, a_r in zip(k, a_syn, strict=True))
    return CompiledFamily(a_m, p.v_leak, p.threshold, p.v_reset, RESET_CODE[p.reset], n_ref,
                          False, rec)


SPEC = ModelSpec(
    name="cuba_refractory", module=sys.modules[__name__],
    parameters=CubaRefractoryParameters, state=CubaRefractoryState,
    units={"tau_mem": "s", "tau_syn": "s", "v_leak": "V", "threshold": "V", "v_reset": "V",
           "refractory": "s", "slope": "1/V"},
    state_units={"v": "V", "i": "V", "ref": "steps"}, multi_receptor=True,
    roles={"v": "v", "i": "i", "ref": "ref"}, compile=compiled)

__all__ = ["CubaRefractoryParameters", "CubaRefractoryState", "SPEC", "coefficients",
           "compiled", "initial_state", "refractory_steps", "step"]
