r"""Adenosine: a sleep pressure that builds with activity and gates excitability,
plasticity and sleep.

Pressure :math:`A \ge 0` (dimensionless) follows, while awake,

.. math::

    \frac{dA}{dt} = -\frac{A}{\tau_w} + \kappa\, r(t),

with :math:`r` the activity (Hz: spikes per neuron per second), :math:`\kappa` the
pressure one spike per neuron adds and :math:`\tau_w` (s) its clearance while awake.
Asleep, nothing builds and it clears faster, :math:`dA/dt = -A/\tau_s`. Each step of
:math:`\Delta t` seconds is integrated exactly for :math:`r` constant over the step:

.. math::

    A' = A\,e^{-\Delta t/\tau_w} + \kappa\, r\, \tau_w\,(1 - e^{-\Delta t/\tau_w})
    \quad \text{(awake)}, \qquad A' = A\,e^{-\Delta t/\tau_s} \quad \text{(asleep)}.

Sleep starts when :math:`A' \ge \theta` (``threshold``) and ends when :math:`A' \le
\theta_w` (``wake_level`` < ``threshold``): a hysteresis, so one sleep lasts
:math:`\tau_s \ln(\theta/\theta_w)` and, for constant activity from :math:`A=0` below
the plateau :math:`\kappa r \tau_w`, wakefulness lasts
:math:`t^* = -\tau_w \ln(1 - \theta/(\kappa r \tau_w))`.

Adenosine lowers what it gates by a Hill factor (A1 receptor inhibition),

.. math::

    g_\text{exc}(A) = \frac{1}{1 + A/K_e}, \qquad g_\text{plast}(A) = \frac{1}{1 + A/K_p},

a gain on the input current of a region (``Graph.run(modulation={region: {"gain":
...}})``) and on learning rates. Pure functions over tensors: the state is a
``NamedTuple`` of tensors, so a batch of independent agents steps at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from aura_snn._checks import check_nonnegative, check_positive


@dataclass(frozen=True)
class AdenosineParams:
    """``tau_wake``, ``tau_sleep`` (s); ``kappa`` (pressure per spike per neuron);
    ``threshold`` > ``wake_level`` >= 0; ``k_excitability``, ``k_plasticity``: the
    pressures at which each gain halves."""

    tau_wake: float = 100.0
    tau_sleep: float = 10.0
    kappa: float = 1e-3
    threshold: float = 1.0
    wake_level: float = 0.1
    k_excitability: float = 2.0
    k_plasticity: float = 1.0

    def __post_init__(self) -> None:
        for name in ("tau_wake", "tau_sleep", "threshold", "k_excitability", "k_plasticity"):
            check_positive(name, getattr(self, name))
        check_nonnegative("kappa", self.kappa)
        check_nonnegative("wake_level", self.wake_level)
        if not self.wake_level < self.threshold:
            raise ValueError(f"wake_level: must be below threshold ({self.threshold}), got "
                             f"{self.wake_level}")


class AdenosineState(NamedTuple):
    level: torch.Tensor   #: :math:`A`, dimensionless
    asleep: torch.Tensor  #: bool


def initial_state(shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float64
                  ) -> AdenosineState:
    """Awake, no pressure."""
    return AdenosineState(torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=torch.bool))


def step(state: AdenosineState, activity: torch.Tensor | float, p: AdenosineParams,
         dt: float) -> AdenosineState:
    """One step of ``dt`` seconds with activity ``activity`` (Hz, >= 0; ignored asleep)."""
    check_positive("dt", dt)
    r = torch.as_tensor(activity, dtype=state.level.dtype)
    if bool(torch.any(r < 0)) or bool(torch.any(torch.isnan(r))):
        raise ValueError(f"activity: must be a rate >= 0 Hz, got {activity}")
    aw = math.exp(-dt / p.tau_wake)
    awake_next = state.level * aw + p.kappa * r * p.tau_wake * (1.0 - aw)
    sleep_next = state.level * math.exp(-dt / p.tau_sleep)
    level = torch.where(state.asleep, sleep_next, awake_next)
    asleep = torch.where(state.asleep, level > p.wake_level, level >= p.threshold)
    return AdenosineState(level, asleep)


def excitability(level: torch.Tensor, p: AdenosineParams) -> torch.Tensor:
    """:math:`g_\\text{exc}(A) = 1/(1 + A/K_e)`."""
    return 1.0 / (1.0 + level / p.k_excitability)


def plasticity(level: torch.Tensor, p: AdenosineParams) -> torch.Tensor:
    """:math:`g_\\text{plast}(A) = 1/(1 + A/K_p)`."""
    return 1.0 / (1.0 + level / p.k_plasticity)


__all__ = ["AdenosineParams", "AdenosineState", "excitability", "initial_state",
           "plasticity", "step"]
