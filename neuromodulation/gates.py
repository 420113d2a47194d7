r"""The seed system's gates: amygdala salience, endocrine scaling, thalamic gating.

Each is a pure function of tensors with documented inputs, outputs and ranges
(:math:`\sigma` is the logistic function; every output broadcasts over a batch):

============ ==================================================================== ===========
gate         equation                                                             output
============ ==================================================================== ===========
amygdala     :math:`s = \sigma(k_a(|r| + \nu - \theta_a))` from reward/valence         [0, 1]
             :math:`r \in [-1, 1]` and novelty :math:`\nu \ge 0`; memory write
             strength :math:`m = m_0 + (1 - m_0) s`                                  [m0, 1]
endocrine    hormone :math:`h' = h + (1 - e^{-\Delta t/\tau_h})(x - h)`, stress        [0, inf)
             :math:`x \ge 0`; learning-rate scale :math:`e^{\beta_\eta h}` and         (0, inf)
             memory-decay scale :math:`e^{\beta_\lambda h}` (clipped to
             ``[1/max_scale, max_scale]``)
thalamus     :math:`g = \sigma(k_t(s - \theta_t))`; input out :math:`y = g\,x`         [0, 1]
             (``hard=True``: :math:`g = [s \ge \theta_t]`)
============ ==================================================================== ===========

Reward and novelty are dimensionless; :math:`\tau_h`, :math:`\Delta t` in seconds.
The amygdala's strength scales what :meth:`aura_snn.memory.EpisodicMemory.write` is
given (e.g. ``keys * m`` or a priority), the endocrine scales multiply an optimiser's
learning rate and a memory's decay rate, the thalamic gate multiplies an input (an
embedding, a region's input current).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aura_snn._checks import check_in_range, check_nonnegative, check_positive


def _finite(name: str, x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.get_default_dtype() if not torch.is_tensor(x)
                        else x.dtype)
    if bool(torch.isnan(x).any()):
        raise ValueError(f"{name}: must not be NaN, got {x}")
    return x


@dataclass(frozen=True)
class Amygdala:
    """``gain`` :math:`k_a > 0`, ``threshold`` :math:`\\theta_a \\ge 0`,
    ``floor`` :math:`m_0 \\in [0, 1]` (write strength of a wholly unsalient event)."""

    gain: float = 4.0
    threshold: float = 0.5
    floor: float = 0.1

    def __post_init__(self) -> None:
        check_positive("gain", self.gain)
        check_nonnegative("threshold", self.threshold)
        check_in_range("floor", self.floor, 0.0, 1.0)

    def salience(self, reward: torch.Tensor | float, novelty: torch.Tensor | float
                 ) -> torch.Tensor:
        """:math:`s \\in [0, 1]` from reward/valence in [-1, 1] and novelty >= 0."""
        r, nu = _finite("reward", reward), _finite("novelty", novelty)
        if bool((r.abs() > 1).any()):
            raise ValueError(f"reward: must lie in [-1, 1], got {r}")
        if bool((nu < 0).any()):
            raise ValueError(f"novelty: must be >= 0, got {nu}")
        return torch.sigmoid(self.gain * (r.abs() + nu - self.threshold))

    def write_strength(self, reward: torch.Tensor | float, novelty: torch.Tensor | float
                       ) -> torch.Tensor:
        """:math:`m = m_0 + (1 - m_0) s \\in [m_0, 1]`."""
        return self.floor + (1.0 - self.floor) * self.salience(reward, novelty)


@dataclass(frozen=True)
class Endocrine:
    """``tau`` :math:`\\tau_h` (s), ``beta_lr``, ``beta_decay`` (per unit hormone),
    ``max_scale`` >= 1 bounds both scales."""

    tau: float = 60.0
    beta_lr: float = -0.5
    beta_decay: float = 0.5
    max_scale: float = 10.0

    def __post_init__(self) -> None:
        check_positive("tau", self.tau)
        if not (math.isfinite(self.beta_lr) and math.isfinite(self.beta_decay)):
            raise ValueError(f"beta_lr, beta_decay: must be finite, got {self.beta_lr}, "
                             f"{self.beta_decay}")
        if not self.max_scale >= 1.0:
            raise ValueError(f"max_scale: must be >= 1, got {self.max_scale}")

    def step(self, level: torch.Tensor | float, stress: torch.Tensor | float, dt: float
             ) -> torch.Tensor:
        """:math:`h'`, exact for a constant stress over the step."""
        check_positive("dt", dt)
        h, x = _finite("level", level), _finite("stress", stress)
        if bool((x < 0).any()):
            raise ValueError(f"stress: must be >= 0, got {x}")
        return h + (1.0 - math.exp(-dt / self.tau)) * (x - h)

    def _scale(self, beta: float, level: torch.Tensor | float) -> torch.Tensor:
        s = torch.exp(beta * _finite("level", level))
        return s.clamp(1.0 / self.max_scale, self.max_scale)

    def lr_scale(self, level: torch.Tensor | float) -> torch.Tensor:
        """:math:`e^{\\beta_\\eta h}`, clipped."""
        return self._scale(self.beta_lr, level)

    def decay_scale(self, level: torch.Tensor | float) -> torch.Tensor:
        """:math:`e^{\\beta_\\lambda h}`, clipped."""
        return self._scale(self.beta_decay, level)


@dataclass(frozen=True)
class Thalamus:
    """``gain`` :math:`k_t > 0`, ``threshold`` :math:`\\theta_t \\in [0, 1]`, ``hard``."""

    gain: float = 10.0
    threshold: float = 0.5
    hard: bool = False

    def __post_init__(self) -> None:
        check_positive("gain", self.gain)
        check_in_range("threshold", self.threshold, 0.0, 1.0)

    def gate(self, salience: torch.Tensor | float) -> torch.Tensor:
        """:math:`g \\in [0, 1]` from salience in [0, 1]."""
        s = _finite("salience", salience)
        if bool(((s < 0) | (s > 1)).any()):
            raise ValueError(f"salience: must lie in [0, 1], got {s}")
        if self.hard:
            return (s >= self.threshold).to(s.dtype)
        return torch.sigmoid(self.gain * (s - self.threshold))

    def __call__(self, x: torch.Tensor, salience: torch.Tensor | float) -> torch.Tensor:
        """``x`` ``[B, ...]`` times the gate of each batch element (``salience`` a
        scalar or ``[B]``)."""
        g = self.gate(salience).to(x.dtype)
        return x * g.reshape(g.shape + (1,) * (x.dim() - g.dim()))


__all__ = ["Amygdala", "Endocrine", "Thalamus"]
