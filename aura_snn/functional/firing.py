r"""Threshold, spike and reset: the part every integrate-and-fire model shares.

Given the integrated (pre-reset) membrane :math:`u[t]` and the threshold
:math:`\vartheta` (both V):

.. math::
    S[t] = H(u[t] - \vartheta)

Reset applied at the spike (``reset_at="spike"``; Norse, Brian2, SpikingJelly, Lava):

============ ==================================================== =================
``reset``    :math:`v[t]`                                         note
============ ==================================================== =================
``subtract`` :math:`u[t] - \vartheta S[t]`                         keeps the excess
``zero``     :math:`(1 - S[t])\,u[t] + S[t]\,v_\text{reset}`       "to zero/v_reset"
``none``     :math:`u[t]`                                          no reset
============ ==================================================== =================

Reset applied at the next step (``reset_at="next_step"``; snnTorch's default
``reset_delay=True``): the state keeps the un-reset :math:`u`, and the next step
applies :math:`r = H(u[t-1] - \vartheta)` (no gradient, as snnTorch does): for
``subtract`` the next integration subtracts :math:`\vartheta r` *after* the decay,
for ``zero`` it replaces :math:`u[t-1]` by :math:`v_\text{reset}` *before* the decay.

With ``detach_reset=True`` the spike that drives the reset carries no gradient
(snnTorch's behaviour); the default keeps the exact surrogate gradient (Norse,
SpikingJelly's default).

Symbols: ``threshold`` :math:`\vartheta` (V, > 0), ``v_reset`` (V), ``slope`` of
the surrogate (1/V).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_choice, check_finite_param, check_positive
from .surrogate import DEFAULT_SLOPE, SURROGATE_ID, SURROGATES, spike_by_id

RESETS = ("subtract", "zero", "none")
RESET_AT = ("spike", "next_step")
#: Integer code of each reset mode in compiled code (engine, fused kernels, exporters).
RESET_CODE = {name: code for code, name in enumerate(RESETS)}

Scalar = float | torch.Tensor


@dataclass(frozen=True)
class FiringParameters:
    """Threshold, reset and surrogate settings shared by every spiking model.

    Attributes:
        threshold: firing threshold :math:`\\vartheta` (V), > 0; float or tensor
            broadcastable to the neuron shape.
        v_reset: reset potential (V) for ``reset="zero"``.
        reset: ``"subtract"``, ``"zero"`` or ``"none"``.
        reset_at: ``"spike"`` (reset in the step that spikes) or ``"next_step"``.
        surrogate: ``"fast_sigmoid"``, ``"arctan"`` or ``"triangle"``.
        slope: surrogate sharpness (1/V); ``None`` takes the surrogate's default.
        detach_reset: stop the gradient through the reset term.
    """

    threshold: Scalar = 1.0
    v_reset: Scalar = 0.0
    reset: str = "subtract"
    reset_at: str = "spike"
    surrogate: str = "fast_sigmoid"
    slope: float | None = None
    detach_reset: bool = False

    def __post_init__(self) -> None:
        check_choice("reset", self.reset, RESETS)
        check_choice("reset_at", self.reset_at, RESET_AT)
        check_choice("surrogate", self.surrogate, SURROGATES)
        if not isinstance(self.threshold, torch.Tensor) or not self.threshold.requires_grad:
            check_positive("threshold", self.threshold, "V")
        check_finite_param("v_reset", self.v_reset)
        if self.slope is not None:
            check_positive("slope", self.slope, "1/V")

    @property
    def surrogate_id(self) -> int:
        return SURROGATE_ID[self.surrogate]

    @property
    def surrogate_slope(self) -> float:
        return DEFAULT_SLOPE[self.surrogate] if self.slope is None else float(self.slope)


def fire(u: torch.Tensor, theta: Scalar, p: FiringParameters) -> torch.Tensor:
    """:math:`S = H(u - \\vartheta)` with the surrogate of ``p`` in backward."""
    return spike_by_id(u - theta, p.surrogate_id, p.surrogate_slope)


def reset_at_spike(u: torch.Tensor, s: torch.Tensor, theta: Scalar,
                   p: FiringParameters) -> torch.Tensor:
    """Membrane after the reset of the step that spiked (``reset_at="spike"``)."""
    if p.reset == "none":
        return u
    r = s.detach() if p.detach_reset else s
    if p.reset == "subtract":
        return u - theta * r
    return (1.0 - r) * u + r * p.v_reset


def pending_reset(v_prev: torch.Tensor, theta: Scalar, p: FiringParameters) -> torch.Tensor:
    """The delayed reset flag :math:`r = H(u[t-1] - \\vartheta)` (no gradient)."""
    return (v_prev.detach() > theta).to(v_prev.dtype)
