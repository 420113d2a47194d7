r"""Three-factor learning: STDP tags synapses with an eligibility trace, dopamine turns it
into weight change (Izhikevich 2007, "Solving the distal reward problem through linkage
of STDP and dopamine signaling", Cereb. Cortex 17).

Per synapse an eligibility trace :math:`c`, per batch element a dopamine level :math:`d`:

.. math::
    \frac{dc}{dt} = -\frac{c}{\tau_c} + \text{STDP}(\tau)\,\delta(t - t_\text{pre/post}),
    \qquad
    \frac{dd}{dt} = -\frac{d}{\tau_d} + \sum_k r_k\,\delta(t - t_k), \qquad
    \frac{dw}{dt} = \frac{c\,d}{\tau_s}

STDP is the pair window through two dimensionless traces, :math:`x` (presynaptic,
:math:`\tau_+`) and :math:`y` (postsynaptic, :math:`\tau_-`), each +1 per spike (or
reset to 1, ``pairing="nearest"``): a presynaptic spike adds :math:`-A_- y` to
:math:`c`, a postsynaptic one :math:`+A_+ x`, and :math:`c` is clipped to
:math:`[-c_\max, c_\max]`; a pair pre-then-post :math:`\tau \ge 0` apart adds
:math:`A_+ e^{-\tau/\tau_+}`. The release :math:`r[t]` is the modulator
``modulators[p.modulator]`` of the step (a number or ``[B]``; :func:`rpe_release`
computes one from rewards).

**Order within a step** :math:`t` (Brian2's ``Izhikevich_2007`` example: clock-driven
:math:`c, d, w` in the ``groups`` slot, then ``on_pre``, then ``on_post``):

1. the continuous part, from the values before the step: with ``integration="exact"``
   :math:`a_c = e^{-\Delta t/\tau_c}`, :math:`a_d = e^{-\Delta t/\tau_d}`,
   :math:`w \leftarrow w + c\,d\,\tau_{cd}(1 - a_c a_d)/\tau_s` (the exact integral of
   :math:`c d/\tau_s` over the step, :math:`1/\tau_{cd} = 1/\tau_c + 1/\tau_d`); with
   ``"euler"`` :math:`a = 1 - \Delta t/\tau` and :math:`w \leftarrow w + \Delta t\,c\,
   d/\tau_s`; then :math:`c \leftarrow a_c c`, :math:`d \leftarrow a_d d`, :math:`w`
   clipped to :math:`[w_\min, w_\max]`;
2. :math:`d \leftarrow d + r[t]`;
3. traces decay by :math:`e^{-\Delta t/\tau_\pm}`; where the presynaptic neuron spiked,
   :math:`c \leftarrow \text{clip}(c - A_- y)`, then :math:`x` jumps;
4. where the postsynaptic neuron spiked, :math:`c \leftarrow \text{clip}(c + A_+ x)`
   (with this step's jump of :math:`x`), then :math:`y` jumps.

Brian2's example clips :math:`w` only at spikes; here every step, which agrees whenever
the bound is not reached between spikes. ``pre`` is the activity at the synapse
(:mod:`aura_snn.graph.plasticity`; the layouts of :mod:`._traces`).

**Batch.** :math:`c`, the traces and :math:`d` are per batch element (:math:`d`
``[B]``, shared by the synapses of the projection, as a volume signal); the weight is
shared and moved by the batch mean of :math:`w_b - w` (``batch_reduction = "mean"``).

Units: ``tau_*`` and ``dt`` in s; :math:`c`, ``a_plus``, ``a_minus``, ``c_max`` in the
unit of the eligibility (the weight unit per unit of :math:`d` per ``tau_s``); :math:`d`
and the release in concentration units (dimensionless here); ``w_min``, ``w_max`` in
the weight unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from aura_snn._checks import check_choice, check_finite_param, check_in_range, check_nonnegative
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.functional.decay import decay
from aura_snn.graph.config_plasticity import check_weights_in_bounds, params_from_table
from aura_snn.graph.plasticity import PlasticityRule, SynapseActivity

from ._traces import (
    advance,
    at_post,
    at_pre,
    check_amplitude,
    check_bounds,
    check_pairing,
    check_tau,
    decays,
    pre_activity,
    pre_trace_shape,
    synapse_index,
)

INTEGRATIONS = ("exact", "euler")


@dataclass(frozen=True)
class DopamineSTDPParameters:
    """Dopamine-modulated STDP (module docstring). Defaults: Brian2's ``Izhikevich_2007``
    example (``gmax = 0.01``, ``dApre = 0.01 gmax``, depression 5% stronger, ``tauc =
    1 s``, ``taud = 200 ms``, ``taus = 1 ms``), except ``w_min = 0``.

    Attributes:
        a_plus, a_minus: eligibility jumps :math:`A_\\pm` of a pair (>= 0).
        tau_plus, tau_minus: STDP trace time constants (s).
        tau_c: eligibility time constant (s); tau_d: dopamine time constant (s).
        tau_s: weight time scale (s): :math:`\\dot w = c d/\\tau_s`.
        c_max: eligibility bound (> 0, may be ``inf``).
        w_min, w_max: weight bounds.
        integration: ``"exact"`` or ``"euler"`` (step 1 of the module docstring).
        pairing: ``"all_to_all"`` or ``"nearest"``.
        modulator: the name of the release signal in ``modulators``.
    """

    a_plus: float = 1e-4
    a_minus: float = 1.05e-4
    tau_plus: float = 20e-3
    tau_minus: float = 20e-3
    tau_c: float = 1.0
    tau_d: float = 0.2
    tau_s: float = 1e-3
    c_max: float = 0.01
    w_min: float = 0.0
    w_max: float = 0.01
    integration: str = "exact"
    pairing: str = "all_to_all"
    modulator: str = "dopamine"

    def __post_init__(self) -> None:
        check_amplitude("a_plus", self.a_plus)
        check_amplitude("a_minus", self.a_minus)
        for name in ("tau_plus", "tau_minus", "tau_c", "tau_d", "tau_s"):
            check_tau(name, getattr(self, name))
        if isinstance(self.c_max, bool) or not isinstance(self.c_max, (int, float)) or \
                math.isnan(self.c_max) or self.c_max <= 0:
            raise ParameterError(f"c_max must be a number > 0 (inf for no bound), got "
                                 f"{self.c_max!r}")
        check_bounds(self.w_min, self.w_max)
        check_choice("integration", self.integration, INTEGRATIONS)
        check_pairing(self.pairing)
        if not isinstance(self.modulator, str) or not self.modulator:
            raise ParameterError(f"modulator must be a non-empty name, got {self.modulator!r}")


class DopamineSTDPState(NamedTuple):
    """State: eligibility ``c`` (synapse layout: ``[B, n_pre, n_post]`` dense, ``[B, nnz]``
    sparse), dopamine ``d`` ``[B]``, traces ``x_pre`` (layout of :mod:`._traces`) and
    ``x_post`` ``[B, n_post]``, and ``post_idx`` (sparse projections)."""

    c: torch.Tensor
    d: torch.Tensor
    x_pre: torch.Tensor
    x_post: torch.Tensor
    post_idx: torch.Tensor


def continuous_coefficients(p: DopamineSTDPParameters, dt: float) -> tuple[float, float, float]:
    """``(a_c, a_d, k)`` of step 1: decays of :math:`c`, :math:`d` and the weight gain
    :math:`k` with :math:`\\Delta w = k\\,c\\,d` (``dt`` in s)."""
    a_c, a_d = (float(decay(tau, dt, p.integration)) for tau in (p.tau_c, p.tau_d))
    if p.integration == "euler":
        return a_c, a_d, dt / p.tau_s
    tau_cd = 1.0 / (1.0 / p.tau_c + 1.0 / p.tau_d)
    return a_c, a_d, -tau_cd * math.expm1(-dt / tau_cd) / p.tau_s


def dopamine_stdp_step(w: torch.Tensor, pre: torch.Tensor, post: torch.Tensor,
                       release: torch.Tensor, state: DopamineSTDPState,
                       p: DopamineSTDPParameters, dt: float
                       ) -> tuple[torch.Tensor, DopamineSTDPState]:
    """One step in the module's order; returns ``(w_new [B, *w.shape], state)``.
    ``w``: shared weights; ``pre``: spikes in the layout of ``state.x_pre``; ``post``
    ``[B, n_post]``; ``release`` ``[B]``; ``dt`` in s."""
    a_c, a_d, k = continuous_coefficients(p, dt)
    a_pre, a_post = decays(dt, p.tau_plus, p.tau_minus)
    idx = state.post_idx
    d_syn = state.d.reshape(-1, *([1] * (state.c.dim() - 1)))
    w_new = (w + k * (state.c * d_syn)).clamp(p.w_min, p.w_max)
    c = a_c * state.c
    d = a_d * state.d + release
    y_old = at_post(a_post * state.x_post, w, idx)
    s_pre = at_pre(pre.to(w.dtype), w)
    c = (c - s_pre * (p.a_minus * y_old)).clamp(-p.c_max, p.c_max)
    x_pre = advance(state.x_pre, pre, a_pre, p.pairing)
    c = (c + at_post(post.to(w.dtype), w, idx) * (p.a_plus * at_pre(x_pre, w))
         ).clamp(-p.c_max, p.c_max)
    x_post = advance(state.x_post, post, a_post, p.pairing)
    return w_new, DopamineSTDPState(c, d, x_pre, x_post, idx)


def _release(modulators: Mapping[str, torch.Tensor], name: str, batch: int,
             like: torch.Tensor) -> torch.Tensor:
    if name not in modulators:
        raise ParameterError(f"DopamineSTDP reads modulators[{name!r}] (the release of each "
                             f"step: Graph.run(modulators={{{name!r}: [T] or [T, B]}})), but "
                             f"the run gives {sorted(modulators)}")
    r = torch.as_tensor(modulators[name]).to(device=like.device, dtype=like.dtype)
    if r.dim() == 0:
        return r.expand(batch)
    if r.shape != (batch,):
        raise ShapeError(f"modulators[{name!r}] must be a number or [B={batch}] per step, "
                         f"got {tuple(r.shape)}")
    return r


class DopamineSTDP(PlasticityRule):
    """Dopamine-modulated STDP as a plasticity rule (:func:`dopamine_stdp_step`)."""

    batch_reduction = "mean"

    def __init__(self, params: DopamineSTDPParameters | None = None) -> None:
        params = DopamineSTDPParameters() if params is None else params
        if not isinstance(params, DopamineSTDPParameters):
            raise ParameterTypeError(f"params of DopamineSTDP must be DopamineSTDPParameters, "
                                     f"got {type(params).__name__}")
        super().__init__(params)

    @classmethod
    def from_config(cls, table: dict[str, Any], projection: Any) -> DopamineSTDP:
        """The rule of a ``plasticity`` table with ``rule = "dopamine"``: the fields of
        :class:`DopamineSTDPParameters`, times in s or ``"1 s"``, the eligibility jumps,
        ``c_max`` (may be ``inf``) and the bounds in weight units (V or ``"0.1 mV"``),
        ``modulator`` the name of a ``[modulators]`` signal; ``projection``'s starting
        weights must lie in ``[w_min, w_max]``. Raises ``FieldError`` naming the key."""
        units: dict[str, str | None] = {k: "time" for k in ("tau_plus", "tau_minus", "tau_c",
                                                              "tau_d", "tau_s")}
        units.update({k: "voltage" for k in ("a_plus", "a_minus", "c_max", "w_min",
                                              "w_max")})
        p = params_from_table(DopamineSTDPParameters, table, units, allow_inf=("c_max",))
        check_weights_in_bounds(projection, p.w_min, p.w_max)
        return cls(p)

    def initial_state(self, projection: Any, batch: int, device: torch.device,
                      dtype: torch.dtype) -> DopamineSTDPState:
        """No eligibility, no dopamine, traces at rest; hands the rule's bounds to a
        projection that has none (its clamp then holds them too)."""
        if getattr(projection, "w_min", 0.0) is None:
            projection.w_min = self.params.w_min
        if getattr(projection, "w_max", 0.0) is None:
            projection.w_max = self.params.w_max
        syn = (batch, projection.nnz) if projection.sparse else \
            (batch, projection.n_pre, projection.n_post)
        zeros = {"device": device, "dtype": dtype}
        return DopamineSTDPState(torch.zeros(syn, **zeros), torch.zeros(batch, **zeros),
                                 torch.zeros(pre_trace_shape(projection, batch), **zeros),
                                 torch.zeros(batch, projection.n_post, **zeros),
                                 synapse_index(projection, device))

    def update(self, activity: SynapseActivity, w: torch.Tensor, state: DopamineSTDPState,
               dt: float, modulators: Mapping[str, torch.Tensor]
               ) -> tuple[torch.Tensor, DopamineSTDPState]:
        """``dw [B, *w.shape]`` of one step (module docstring for the order)."""
        pre, post = pre_activity(activity), activity.post
        if pre.shape != state.x_pre.shape or post.shape != state.x_post.shape:
            raise ShapeError(f"DopamineSTDP: activity pre {tuple(pre.shape)} / post "
                             f"{tuple(post.shape)} does not fit its traces "
                             f"{tuple(state.x_pre.shape)} / {tuple(state.x_post.shape)}")
        r = _release(modulators, self.params.modulator, post.shape[0], w)
        w_new, state = dopamine_stdp_step(w, pre, post, r, state, self.params, dt)
        return w_new - w, state


@dataclass(frozen=True)
class RPEParameters:
    """Reward prediction error as dopamine release (:func:`rpe_release`).

    Attributes:
        alpha: learning rate of the expectation per outcome, in [0, 1] (0: no
            expectation, the release is the reward itself).
        gain: release per unit of prediction error (phasic part).
        tonic: tonic release rate (1/s); alone it holds :math:`d` near ``tonic * tau_d``.
    """

    alpha: float = 0.1
    gain: float = 1.0
    tonic: float = 0.0

    def __post_init__(self) -> None:
        check_in_range("alpha", self.alpha, 0.0, 1.0)
        check_finite_param("gain", self.gain)
        check_nonnegative("tonic", self.tonic)


class RPERelease(NamedTuple):
    """Result of :func:`rpe_release`, each ``[T, ...]``: ``release = phasic + tonic``
    (the modulator to hand to :class:`DopamineSTDP`), the ``phasic`` part, the
    ``tonic`` part and the ``expectation`` after each step."""

    release: torch.Tensor
    phasic: torch.Tensor
    tonic: torch.Tensor
    expectation: torch.Tensor


def rpe_release(reward: torch.Tensor, p: RPEParameters, dt: float,
                outcome: torch.Tensor | None = None, expectation: float | torch.Tensor = 0.0
                ) -> RPERelease:
    r"""Dopamine release from rewards: reward minus a running expectation (Rescorla-Wagner).

    At each outcome step :math:`t` (``outcome[t]``; default: the steps with a non-zero
    reward, so an omitted reward needs an explicit ``outcome``):

    .. math::
        \delta[t] = r[t] - V[t-1], \qquad V[t] = V[t-1] + \alpha\,\delta[t]

    and :math:`\delta = 0`, :math:`V` unchanged elsewhere. Release per step:
    phasic :math:`g\,\delta[t]` (negative for a reward below expectation, a dip) plus
    tonic ``tonic * dt``. The expectation is of the reward per outcome,
    not of its timing (no temporal-difference model).

    Args:
        reward: ``[T, ...]`` reward delivered in each step (any unit; the release is in
            that unit times ``gain``).
        p: parameters. dt: step (s).
        outcome: ``[T, ...]`` bool, steps at which a reward is due (given or omitted).
        expectation: :math:`V` before the first step (a number or ``[...]``).
    """
    if not isinstance(reward, torch.Tensor) or reward.dim() < 1:
        raise ShapeError(f"reward must be a tensor [T, ...], got "
                         f"{getattr(reward, 'shape', type(reward).__name__)}")
    if outcome is None:
        outcome = reward != 0
    if not isinstance(outcome, torch.Tensor) or outcome.shape != reward.shape:
        raise ShapeError(f"outcome must be a tensor shaped like reward {tuple(reward.shape)}, "
                         f"got {getattr(outcome, 'shape', type(outcome).__name__)}")
    check_tau("dt", dt)
    v = torch.zeros_like(reward[0]) + torch.as_tensor(expectation, dtype=reward.dtype)
    phasic, values = [], []
    for r_t, o_t in zip(reward.unbind(0), outcome.to(reward.dtype).unbind(0), strict=True):
        delta = o_t * (r_t - v)
        v = v + p.alpha * delta
        phasic.append(p.gain * delta)
        values.append(v)
    ph = torch.stack(phasic)
    tonic = torch.full_like(ph, p.tonic * dt)
    return RPERelease(ph + tonic, ph, tonic, torch.stack(values))


__all__ = ["DopamineSTDP", "DopamineSTDPParameters", "DopamineSTDPState", "INTEGRATIONS",
           "RPEParameters", "RPERelease", "continuous_coefficients", "dopamine_stdp_step",
           "rpe_release"]
