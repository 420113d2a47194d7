r"""Conductance-based LIF: receptor conductances pull the membrane toward their reversal potentials.

The neuron of Song, Miller & Abbott (2000), as in Brian2's STDP example: each receptor
:math:`r` (``"exc"``, ``"inh"``, ...) has a conductance :math:`g_r`, measured in units
of the leak conductance (dimensionless), that jumps by the synaptic weight :math:`w`
at a presynaptic spike and decays with :math:`\tau_r`:

.. math::
    \tau_m \frac{dv}{dt} = (v_\text{leak} - v) + \sum_r g_r\,(E_r - v)
    \quad \text{(unless refractory)}, \qquad
    \tau_r \frac{dg_r}{dt} = -g_r + \sum_k w_k\,\tau_r\,\delta(t - t_k)

Discretisation over a step :math:`\Delta t`. The input :math:`x_r[t]` holds the jumps
delivered at the end of the previous step (Brian2 runs ``on_pre`` after the state
update of the step in which the presynaptic neuron fired, as in
:mod:`aura_snn.functional.cuba_refractory`), so :math:`\hat g_r = g_r[t-1] + x_r[t]`
is the conductance during the step, and with :math:`G = 1 + \sum_r \hat g_r`,
:math:`v_\infty = (v_\text{leak} + \sum_r \hat g_r E_r)/G`:

* ``integration="euler"``: :math:`u = v + \frac{\Delta t}{\tau_m}\big((v_\text{leak}
  - v) + \sum_r \hat g_r (E_r - v)\big)` and :math:`a_r = 1 - \Delta t/\tau_r`;
* ``integration="exponential_euler"``: :math:`u = v_\infty + (v - v_\infty)\,
  e^{-G\Delta t/\tau_m}` and :math:`a_r = e^{-\Delta t/\tau_r}`

(Brian2's ``euler`` and ``exponential_euler``: the conductances are held during the
step; exponential Euler is exact for :math:`v` given them, so :math:`v` stays between
the lowest and highest of :math:`v_\text{leak}, E_r` whatever the weights.) Then, as
in :mod:`aura_snn.functional.cuba_refractory`: :math:`c = \max(c[t-1] - 1, 0)`,
:math:`f = [c = 0]`, :math:`u \leftarrow f u + (1 - f) v[t-1]`, :math:`S = f H(u -
\vartheta)`, :math:`v[t] = \text{reset}(u, S)` (``v_reset`` by default), :math:`c[t] =
S\,n_\text{ref} + (1 - S) c` with Brian2's ``timestep`` rounding of the refractory
period, and :math:`g_r[t] = a_r \hat g_r` (the conductances keep decaying while the
membrane is clamped).

Note: Brian2's shipped STDP and Izhikevich_2007 examples (2.9) write the drive as
``ge * (Ee - vr)``, a fixed driving force: that neuron is current-based, the model of
:mod:`aura_snn.functional.cuba_refractory` with jumps :math:`w (E_e - v_r)`
(``tests/functional/test_conductance_brian2.py`` checks both against Brian2).

Symbols (SI): ``tau_mem`` :math:`\tau_m` (s), ``tau_syn`` :math:`\tau_r` (s, one per
receptor), ``e_rev`` :math:`E_r` (V, one per receptor), ``v_leak``, ``threshold``
:math:`\vartheta`, ``v_reset`` (V), ``refractory`` (s), ``dt`` (s); ``x``, ``g``
dimensionless (leak conductances). State: ``v`` (V) ``[B, ...]``, ``g`` ``[R, B, ...]``,
``ref`` (steps left, in ``v``'s dtype) ``[B, ...]``.
"""

from __future__ import annotations

import math
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
from .cuba_refractory import refractory_steps
from .decay import decay
from .firing import (
    RESET_AT,
    RESET_CODE,
    RESETS,
    FiringParameters,
    Scalar,
    fire,
    reset_at_spike,
)
from .registry import ModelKernel, ModelSpec
from .surrogate import SURROGATES

INTEGRATIONS = ("euler", "exponential_euler")
_DECAY = {"euler": "euler", "exponential_euler": "exact"}


class CondLIFState(NamedTuple):
    """State: membrane ``v`` (V) ``[B, ...]``, conductances ``g`` (leak units)
    ``[R, B, ...]``, refractory steps left ``ref`` ``[B, ...]``."""

    v: torch.Tensor
    g: torch.Tensor
    ref: torch.Tensor


@dataclass(frozen=True)
class CondLIFParameters(FiringParameters):
    """Parameters (module docstring). Defaults: the neuron of Brian2's Song-Miller-Abbott
    STDP example (``exc``) plus an inhibitory receptor of Song et al. (2000)
    (:math:`E = -70` mV, 5 ms).

    Attributes:
        tau_mem: membrane time constant (s), > dt.
        tau_syn: one conductance time constant (s) per receptor, each > dt.
        e_rev: one reversal potential (V) per receptor.
        receptors: receptor names (projections target them).
        v_leak: resting potential (V).
        refractory: absolute refractory period (s), >= 0.
        integration: ``"euler"`` or ``"exponential_euler"``.
        threshold, v_reset: absolute potentials (V), any finite values.
    """

    threshold: Scalar = -54e-3
    v_reset: Scalar = -60e-3
    reset: str = "zero"
    tau_mem: Scalar = 10e-3
    tau_syn: tuple[Scalar, ...] = (5e-3, 5e-3)
    e_rev: tuple[Scalar, ...] = (0.0, -70e-3)
    receptors: tuple[str, ...] = ("exc", "inh")
    v_leak: Scalar = -74e-3
    refractory: float = 0.0
    integration: str = "euler"

    def __post_init__(self) -> None:
        # Not FiringParameters.__post_init__: potentials are absolute (negative threshold).
        check_choice("reset", self.reset, RESETS)
        check_choice("reset_at", self.reset_at, RESET_AT)
        if self.reset_at != "spike":
            raise ParameterError(f"reset_at must be 'spike' for lif_cond (the refractory "
                                 f"clamp starts at the spike), got {self.reset_at!r}")
        check_choice("surrogate", self.surrogate, SURROGATES)
        check_choice("integration", self.integration, INTEGRATIONS)
        for name in ("threshold", "v_reset", "v_leak"):
            check_finite_param(name, getattr(self, name))
        check_nonnegative("refractory", self.refractory)
        if self.slope is not None:
            check_positive("slope", self.slope, "1/V")
        for name in ("tau_syn", "e_rev", "receptors"):
            if not isinstance(getattr(self, name), tuple):
                raise ParameterError(f"{name} must be a tuple (one entry per receptor), got "
                                     f"{type(getattr(self, name)).__name__}")
        n = len(self.receptors)
        if n == 0 or len(self.tau_syn) != n or len(self.e_rev) != n:
            raise ParameterError(
                f"tau_syn and e_rev must have one entry per receptor {self.receptors!r}; got "
                f"{len(self.tau_syn)} time constant(s) and {len(self.e_rev)} e_rev value(s)")
        if len(set(self.receptors)) != n or not all(isinstance(r, str) and r
                                                    for r in self.receptors):
            raise ParameterError(f"receptors must be distinct non-empty names, got "
                                 f"{self.receptors!r}")
        for name, e in zip(self.receptors, self.e_rev, strict=True):
            check_finite_param(f"e_rev[{name!r}]", e)

    def validate(self, dt: float) -> None:
        """Check ``dt`` (s) against ``tau_mem`` and every ``tau_syn`` (s)."""
        check_dt_tau(dt, self.tau_mem, "tau_mem")
        for name, tau in zip(self.receptors, self.tau_syn, strict=True):
            check_dt_tau(dt, tau, f"tau_syn[{name!r}]")


def coefficients(p: CondLIFParameters, dt: float) -> tuple[tuple[Scalar, ...], int]:
    """Per-step ``((a_r, ...), n_ref)``: conductance decays and refractory steps."""
    kind = _DECAY[p.integration]
    return tuple(decay(tau, dt, kind) for tau in p.tau_syn), refractory_steps(p.refractory, dt)


def membrane(v: torch.Tensor, g: torch.Tensor, p: CondLIFParameters,
             dt: float) -> torch.Tensor:
    """The unclamped membrane :math:`u` after one step with conductances ``g``
    ``[R, B, ...]`` held (table of the module docstring)."""
    if p.integration == "euler":
        drive = g[0] * (p.e_rev[0] - v)
        for r in range(1, g.shape[0]):
            drive = drive + g[r] * (p.e_rev[r] - v)
        return v + (dt / p.tau_mem) * ((p.v_leak - v) + drive)
    total = 1.0 + g.sum(0)
    v_inf = (p.v_leak + sum(g[r] * p.e_rev[r] for r in range(g.shape[0]))) / total
    return v_inf + (v - v_inf) * torch.exp(-(dt / p.tau_mem) * total)


def initial_state(x: torch.Tensor, p: CondLIFParameters) -> CondLIFState:
    """Rest, not refractory, no conductance; ``x`` is one step of input ``[R, B, ...]``."""
    v = torch.zeros_like(x[0]) + p.v_leak
    return CondLIFState(v=v, g=torch.zeros_like(x), ref=torch.zeros_like(x[0]))


def step(x: torch.Tensor, state: CondLIFState | None, p: CondLIFParameters,
         dt: float) -> tuple[torch.Tensor, CondLIFState]:
    """Advance the population by one step of ``dt`` seconds.

    Args:
        x: conductance jumps :math:`x_r[t]` (leak units), ``[R, B, ...]`` with ``R =
            len(p.receptors)`` (delivered at the end of the previous step).
        state: previous state, or ``None`` for rest.
        p: parameters.
        dt: step (s).

    Returns:
        ``(S[t] [B, ...], CondLIFState(v[t], g[t], ref[t]))``.
    """
    n_rec = len(p.receptors)
    if x.dim() < 2 or x.shape[0] != n_rec:
        raise ShapeError(f"x must have shape [R={n_rec}, B, ...] (one row per receptor "
                         f"{p.receptors!r}), got {tuple(x.shape)}")
    if state is None:
        state = initial_state(x, p)
    a_syn, n_ref = coefficients(p, dt)
    g_hat = state.g + x
    c = (state.ref - 1.0).clamp_min(0.0)
    free = c <= 0.0
    u = torch.where(free, membrane(state.v, g_hat, p, dt), state.v)
    s = fire(u, p.threshold, p) * free.to(u.dtype)
    v = reset_at_spike(u, s, p.threshold, p)
    ref = torch.where(s.detach() > 0, torch.full_like(c, float(n_ref)), c)
    g_new = torch.stack([a_syn[r] * g_hat[r] for r in range(n_rec)])
    return s, CondLIFState(v, g_new, ref)


def kernel_step(j, n, nrec, x, v, g, ref, b, f, P, n_ref, reset):  # noqa: ANN001, ANN201, ARG001
    """:func:`step` of neuron ``j``, on scalars: the engine's form
    (:class:`~aura_snn.functional.registry.ModelKernel`), the same operations in the same
    order. ``x``, ``g``: inputs (read and cleared) and conductances ``[nrec * n]``,
    receptor-major; ``ref``: steps left (int); ``b``: unused; ``f``: ``[1, exponential]``
    (1.0 in ``v``'s dtype; 0: euler, 1: exponential euler); ``P``: the rows of
    :func:`kernel` at column ``j``. The reset is a branch, equal to ``(1 - S) u + S
    v_reset`` (and ``u - S\vartheta``) for finite values. Returns :math:`S` (0 or 1)."""
    vj = v[j]
    free = ref[j] <= 1
    c = ref[j] - 1 if ref[j] > 1 else 0
    u = vj
    if free and f[1] == 0:
        drive = (g[j] + x[j]) * (P[4, j] - vj)
        for r in range(1, nrec):
            drive = drive + (g[r * n + j] + x[r * n + j]) * (P[4 + r, j] - vj)
        u = vj + P[0, j] * ((P[1, j] - vj) + drive)
    elif free:
        total = g[j] + x[j]
        pull = total * P[4, j]
        for r in range(1, nrec):
            gr = g[r * n + j] + x[r * n + j]
            total = total + gr
            pull = pull + gr * P[4 + r, j]
        total = f[0] + total
        v_inf = (P[1, j] + pull) / total
        u = v_inf + (vj - v_inf) * math.exp(-P[0, j] * total)
    s = 1 if free and u - P[2, j] > 0 else 0
    if s == 0 or reset == 2:
        v[j] = u
    elif reset == 1:
        v[j] = P[3, j]
    else:
        v[j] = u - P[2, j]
    ref[j] = n_ref if s == 1 else c
    for r in range(nrec):
        g[r * n + j] = P[4 + nrec + r, j] * (g[r * n + j] + x[r * n + j])
        x[r * n + j] = 0
    return s


def kernel(p: CondLIFParameters, dt: float) -> ModelKernel:
    """The engine's form of :func:`step` (:func:`kernel_step`) and its coefficients
    ``[dt/tau_mem, v_leak, threshold, v_reset, E_r..., a_r...]`` (1, V, V, V, V, 1),
    computed as :func:`step` computes them."""
    a_syn, n_ref = coefficients(p, dt)
    return ModelKernel(
        step=kernel_step, rows=(dt / p.tau_mem, p.v_leak, p.threshold, p.v_reset, *p.e_rev,
                                *a_syn),
        scalars=(1.0, float(p.integration != "euler")), reset=RESET_CODE[p.reset],
        n_ref=n_ref)

SPEC = ModelSpec(
    name="lif_cond", module=sys.modules[__name__], parameters=CondLIFParameters,
    state=CondLIFState,
    units={"tau_mem": "s", "tau_syn": "s", "e_rev": "V", "v_leak": "V", "threshold": "V",
           "v_reset": "V", "refractory": "s", "slope": "1/V"},
    state_units={"v": "V", "g": "", "ref": "steps"}, multi_receptor=True,
    roles={"v": "v", "i": "g", "ref": "ref"}, kernel=kernel)

__all__ = ["CondLIFParameters", "CondLIFState", "INTEGRATIONS", "SPEC", "coefficients",
           "initial_state", "kernel", "kernel_step", "membrane", "step"]
