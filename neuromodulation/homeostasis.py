r"""Homeostasis: synaptic scaling toward a target rate, and intrinsic threshold adaptation.

**Rate estimate** (both mechanisms). Each postsynaptic neuron :math:`j` keeps an
exponential moving average :math:`\bar r_j` (Hz) of its spike train
:math:`S_j(t) = \sum_k \delta(t - t_j^k)`,

.. math::
    \tau_r \frac{d\bar r_j}{dt} = -\bar r_j + S_j(t),

integrated exactly with the step's spikes :math:`s_j \in \{0, 1\}` held over the step as
the rate :math:`s_j/\Delta t`,

.. math::
    \bar r_j \leftarrow a\,\bar r_j + (1 - a)\,\frac{s_j}{\Delta t},
    \qquad a = e^{-\Delta t/\tau_r},

so that the time average of :math:`\bar r_j` equals the neuron's firing rate exactly
(a neuron firing every :math:`n` steps has mean estimate :math:`1/(n \Delta t)`).
It starts at ``rate_init`` (default: the target, so nothing is pushed before the
estimate has seen any activity).

**Synaptic scaling** (Turrigiano et al. 1998; van Rossum, Bi & Turrigiano 2000):
every synapse onto :math:`j` is scaled by the same factor, multiplicatively,

.. math::
    \frac{dw_{ij}}{dt} = \eta\,(r_\text{target} - \bar r_j)\,w_{ij},

one step: :math:`w_{ij} \leftarrow \text{clip}\big(w_{ij}\,(1 + \max(\eta\,(r_\text{target}
- \bar r_j)\,\Delta t, -1)),\ w_\min, w_\max\big)`. The factor is floored at 0, so a
weight never changes sign. With :math:`\bar r` frozen the weights follow
:math:`w(T) = w(0)\,e^{\eta (r_\text{target} - \bar r) T}` (to :math:`O(\Delta t)`).

**Intrinsic threshold adaptation** (Desai, Rutherford & Turrigiano 1999, as a
threshold shift :math:`\Delta\vartheta_j`, V):

.. math::
    \frac{d\Delta\vartheta_j}{dt} = \eta_\vartheta\,(\bar r_j - r_\text{target}),

one step: :math:`\Delta\vartheta_j \leftarrow \text{clip}(\Delta\vartheta_j +
\eta_\vartheta (\bar r_j - r_\text{target}) \Delta t,\ \Delta\vartheta_\min,
\Delta\vartheta_\max)`. The plasticity socket lets a rule change weights only; a
region's threshold moves through the graph's modulation input
(``Graph.run(modulation={region: {"threshold": ...}})``), which is given per run. So
:class:`IntrinsicThreshold` keeps :math:`\bar r` and :math:`\Delta\vartheta` in its rule
state (in the graph state: saved, reset, resumed with it) and
:func:`neuromodulation.run_chunked` runs the graph in chunks of :math:`K` steps,
handing each chunk the shift reached at its start: the applied threshold is
piecewise constant and lags the rule's by at most :math:`K` steps (keep
:math:`K \Delta t` well below the adaptation time).

**Order within a step**: the rate estimate takes this step's spikes first, then the
weights (or the shift) move with the new estimate.

**Batch**: the estimate and the shift are per sample (``[B, n_post]``: each sample's
neurons adapt to their own rate and threshold); the weights are shared, so scaling hands
the projection the batch mean of the per-sample changes (``batch_reduction = "mean"``).

Units: ``tau_r``, ``dt`` in s; rates in Hz; ``eta`` in 1/(Hz s) (relative weight change
per second per Hz of rate error: dimensionless); ``eta_theta`` in V/(Hz s) = V per spike;
``w_min``, ``w_max`` in the unit of the weight; shifts in V.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from aura_snn._checks import check_finite_param, check_nonnegative
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.graph.plasticity import PlasticityRule, SynapseActivity

from ._traces import at_post, check_tau, decays, synapse_index


def rate_step(rate: torch.Tensor, spikes: torch.Tensor, a: float, dt: float) -> torch.Tensor:
    """One step of the rate estimate (module docstring): :math:`a \\bar r + (1 - a) s/\\Delta t`
    (Hz; ``a = exp(-dt/tau_r)``, ``dt`` in s)."""
    return a * rate + ((1.0 - a) / dt) * spikes.to(rate.dtype)


def _check_rate(name: str, value: float) -> None:
    check_nonnegative(name, value)


def _check_optional_bound(name: str, value: float | None) -> None:
    if value is not None:
        check_finite_param(name, value)


@dataclass(frozen=True)
class SynapticScalingParameters:
    """Synaptic scaling (module docstring).

    Attributes:
        r_target: target rate :math:`r_\\text{target}` (Hz, >= 0).
        eta: scaling rate :math:`\\eta` (1/(Hz s), >= 0).
        tau_r: time constant of the rate estimate :math:`\\tau_r` (s, > 0).
        w_min, w_max: weight bounds (weight units; ``None``: unbounded on that side).
        rate_init: starting rate estimate (Hz, >= 0); ``None`` starts at ``r_target``.
    """

    r_target: float = 5.0
    eta: float = 1e-3
    tau_r: float = 1.0
    w_min: float | None = None
    w_max: float | None = None
    rate_init: float | None = None

    def __post_init__(self) -> None:
        _check_rate("r_target", self.r_target)
        check_nonnegative("eta", self.eta)
        check_tau("tau_r", self.tau_r)
        _check_optional_bound("w_min", self.w_min)
        _check_optional_bound("w_max", self.w_max)
        if self.w_min is not None and self.w_max is not None and self.w_min > self.w_max:
            raise ParameterError(f"w_min must be <= w_max, got w_min={self.w_min!r} and "
                                 f"w_max={self.w_max!r}")
        if self.rate_init is not None:
            _check_rate("rate_init", self.rate_init)


class SynapticScalingState(NamedTuple):
    """``rate`` :math:`\\bar r` ``[B, n_post]`` (Hz) and ``post_idx`` (sparse projections:
    each synapse's postsynaptic neuron, int64 ``[nnz]``; empty for dense ones)."""

    rate: torch.Tensor
    post_idx: torch.Tensor


@dataclass(frozen=True)
class IntrinsicThresholdParameters:
    """Intrinsic threshold adaptation (module docstring).

    Attributes:
        r_target: target rate (Hz, >= 0).
        eta_theta: adaptation rate :math:`\\eta_\\vartheta` (V/(Hz s), >= 0).
        tau_r: time constant of the rate estimate (s, > 0).
        shift_min, shift_max: bounds of the shift :math:`\\Delta\\vartheta` (V),
            ``shift_min <= 0 <= shift_max``; infinite means unbounded. Keep the region's
            threshold plus ``shift_min`` above its reset potential.
        rate_init: starting rate estimate (Hz); ``None`` starts at ``r_target``.
    """

    r_target: float = 5.0
    eta_theta: float = 1e-3
    tau_r: float = 1.0
    shift_min: float = -math.inf
    shift_max: float = math.inf
    rate_init: float | None = None

    def __post_init__(self) -> None:
        _check_rate("r_target", self.r_target)
        check_nonnegative("eta_theta", self.eta_theta)
        check_tau("tau_r", self.tau_r)
        for name, ok in (("shift_min", self.shift_min <= 0.0),
                         ("shift_max", self.shift_max >= 0.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not ok:
                need = "<= 0" if name == "shift_min" else ">= 0"
                raise ParameterError(f"{name} must be a number {need} (V), got {v!r}")
        if self.rate_init is not None:
            _check_rate("rate_init", self.rate_init)


class IntrinsicThresholdState(NamedTuple):
    """``rate`` :math:`\\bar r` (Hz) and ``shift`` :math:`\\Delta\\vartheta` (V), both
    ``[B, n_post]``."""

    rate: torch.Tensor
    shift: torch.Tensor


def synaptic_scaling_step(w: torch.Tensor, post: torch.Tensor, state: SynapticScalingState,
                          p: SynapticScalingParameters, dt: float
                          ) -> tuple[torch.Tensor, SynapticScalingState]:
    """One step of synaptic scaling: returns ``(w_new [B, *w.shape], state)``. ``w``:
    shared weights (dense ``[n_pre, n_post]`` or sparse ``[nnz]``); ``post``: ``[B, n_post]``
    spikes of this step; ``dt`` in s."""
    (a,) = decays(dt, p.tau_r)
    rate = rate_step(state.rate, post, a, dt)
    factor = (p.eta * dt * (p.r_target - rate)).clamp_min(-1.0)
    w_new = w + w * at_post(factor, w, state.post_idx)
    if p.w_min is not None or p.w_max is not None:
        w_new = w_new.clamp(min=p.w_min, max=p.w_max)
    return w_new, SynapticScalingState(rate, state.post_idx)


def intrinsic_threshold_step(post: torch.Tensor, state: IntrinsicThresholdState,
                             p: IntrinsicThresholdParameters, dt: float
                             ) -> IntrinsicThresholdState:
    """One step of threshold adaptation from the ``[B, n_post]`` spikes ``post``."""
    (a,) = decays(dt, p.tau_r)
    rate = rate_step(state.rate, post, a, dt)
    shift = (state.shift + p.eta_theta * dt * (rate - p.r_target)).clamp(p.shift_min,
                                                                          p.shift_max)
    return IntrinsicThresholdState(rate, shift)


class _RateRule(PlasticityRule):
    _params_type: type = object

    def __init__(self, params: Any = None) -> None:
        params = self._params_type() if params is None else params
        if not isinstance(params, self._params_type):
            raise ParameterTypeError(f"params of {type(self).__name__} must be "
                                     f"{self._params_type.__name__}, got "
                                     f"{type(params).__name__}")
        super().__init__(params)

    def _rate0(self, batch: int, n: int, device: torch.device, dtype: torch.dtype
               ) -> torch.Tensor:
        r0 = self.params.r_target if self.params.rate_init is None else self.params.rate_init
        return torch.full((batch, n), float(r0), device=device, dtype=dtype)

    def _check_post(self, post: torch.Tensor, rate: torch.Tensor) -> None:
        if post.shape != rate.shape:
            raise ShapeError(f"{type(self).__name__}: postsynaptic activity of shape "
                             f"{tuple(post.shape)} does not fit its rate estimate "
                             f"{tuple(rate.shape)}")


class SynapticScaling(_RateRule):
    """Multiplicative synaptic scaling as a plasticity rule (:func:`synaptic_scaling_step`;
    module docstring). Its bounds are handed to a projection that has none."""

    batch_reduction = "mean"
    _params_type = SynapticScalingParameters

    def initial_state(self, projection: Any, batch: int, device: torch.device,
                      dtype: torch.dtype) -> SynapticScalingState:
        for side in ("w_min", "w_max"):
            if getattr(projection, side, 0.0) is None and getattr(self.params, side) is not None:
                setattr(projection, side, getattr(self.params, side))
        return SynapticScalingState(self._rate0(batch, projection.n_post, device, dtype),
                                    synapse_index(projection, device))

    def synapse_fields(self, projection: Any) -> tuple[str, ...]:
        """``post_idx`` on a sparse projection (the rate estimate is per neuron)."""
        return ("post_idx",) if projection.sparse else ()

    def update(self, activity: SynapseActivity, w: torch.Tensor, state: SynapticScalingState,
               dt: float, modulators: Mapping[str, torch.Tensor]
               ) -> tuple[torch.Tensor, SynapticScalingState]:
        """``dw [B, *w.shape]`` of one step (batch-mean reduced by the socket)."""
        self._check_post(activity.post, state.rate)
        w_new, state = synaptic_scaling_step(w, activity.post, state, self.params, dt)
        return w_new - w, state


class IntrinsicThreshold(_RateRule):
    """Intrinsic threshold adaptation of the postsynaptic region of the projection it is
    attached to (:func:`intrinsic_threshold_step`; module docstring). It changes no weight
    (``dw = None``); :func:`neuromodulation.run_chunked` applies its shift to the region.
    Attach one per region."""

    batch_reduction = "none"
    _params_type = IntrinsicThresholdParameters

    def initial_state(self, projection: Any, batch: int, device: torch.device,
                      dtype: torch.dtype) -> IntrinsicThresholdState:
        rate = self._rate0(batch, projection.n_post, device, dtype)
        return IntrinsicThresholdState(rate, torch.zeros_like(rate))

    def synapse_fields(self, projection: Any) -> tuple[str, ...]:
        """None: both fields are per neuron."""
        return ()

    def update(self, activity: SynapseActivity, w: torch.Tensor,
               state: IntrinsicThresholdState, dt: float,
               modulators: Mapping[str, torch.Tensor]) -> tuple[None, IntrinsicThresholdState]:
        """``(None, state)``: the rate estimate and the shift after this step."""
        self._check_post(activity.post, state.rate)
        return None, intrinsic_threshold_step(activity.post, state, self.params, dt)


__all__ = ["IntrinsicThreshold", "IntrinsicThresholdParameters", "IntrinsicThresholdState",
           "SynapticScaling", "SynapticScalingParameters", "SynapticScalingState",
           "intrinsic_threshold_step", "rate_step", "synaptic_scaling_step"]
