r"""Acetylcholine (attention) and norepinephrine (novelty): gains and learning rates.

**Acetylcholine.** An attention signal :math:`a_i \in [0, 1]` per input channel (or
per batch element) raises the gain and the plasticity of attended inputs and, as in
Hasselmo's account of cortical ACh, suppresses recurrent (feedback) drive:

.. math::

    g_i = 1 + \gamma_\text{ACh}\, a_i, \qquad
    \eta_i = \eta\,(1 + \lambda_\text{ACh}\, a_i), \qquad
    g_\text{rec} = 1 - \rho\, \bar a \quad (\rho \in [0, 1]).

**Norepinephrine.** Novelty :math:`\nu \ge 0` is either given as unfamiliarity
:math:`1 - f` of a familiarity :math:`f \in [0, 1]` (e.g. the best similarity of a
memory search), or measured as surprise: the prediction error's magnitude over its
running mean,

.. math::

    \bar e' = \bar e + (1 - e^{-\Delta t/\tau})(|e| - \bar e), \qquad
    \nu = \max\!\big(0, |e| / (\bar e + \epsilon) - 1\big),

(:math:`\bar e` from before the step: an error as large as usual is not novel). NE
then boosts gain and learning rate, :math:`g = \min(1 + \gamma_\text{NE}\,\nu,
g_\text{max})`, :math:`\eta = \eta_0 \min(1 + \lambda_\text{NE}\,\nu, g_\text{max})`
(Yu and Dayan 2005: NE signals unexpected uncertainty). All factors are
dimensionless; :math:`\tau`, :math:`\Delta t` in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aura_snn._checks import check_in_range, check_nonnegative, check_positive


def _unit(name: str, x: torch.Tensor | float) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=x.dtype if torch.is_tensor(x) else torch.float64)
    if bool(torch.isnan(t).any()) or bool(((t < 0) | (t > 1)).any()):
        raise ValueError(f"{name}: must lie in [0, 1], got {t}")
    return t


@dataclass(frozen=True)
class Acetylcholine:
    """``gain`` :math:`\\gamma`, ``lr`` :math:`\\lambda` (>= 0), ``recurrent``
    :math:`\\rho \\in [0, 1]`."""

    gain: float = 1.0
    lr: float = 1.0
    recurrent: float = 0.5

    def __post_init__(self) -> None:
        check_nonnegative("gain", self.gain)
        check_nonnegative("lr", self.lr)
        check_in_range("recurrent", self.recurrent, 0.0, 1.0)

    def input_gain(self, attention: torch.Tensor | float) -> torch.Tensor:
        """:math:`g_i = 1 + \\gamma a_i`."""
        return 1.0 + self.gain * _unit("attention", attention)

    def lr_scale(self, attention: torch.Tensor | float) -> torch.Tensor:
        """:math:`1 + \\lambda a_i` (multiplies a learning rate)."""
        return 1.0 + self.lr * _unit("attention", attention)

    def recurrent_gain(self, attention: torch.Tensor | float) -> torch.Tensor:
        """:math:`1 - \\rho \\bar a` over the last axis."""
        a = _unit("attention", attention)
        return 1.0 - self.recurrent * (a.mean(-1) if a.dim() else a)


@dataclass(frozen=True)
class Norepinephrine:
    """``gain`` :math:`\\gamma`, ``lr`` :math:`\\lambda` (>= 0), ``max_gain``
    :math:`g_\\text{max} \\ge 1`, ``tau`` (s) of the running error, ``eps``."""

    gain: float = 1.0
    lr: float = 2.0
    max_gain: float = 4.0
    tau: float = 10.0
    eps: float = 1e-6

    def __post_init__(self) -> None:
        check_nonnegative("gain", self.gain)
        check_nonnegative("lr", self.lr)
        check_positive("tau", self.tau)
        check_positive("eps", self.eps)
        if not self.max_gain >= 1.0:
            raise ValueError(f"max_gain: must be >= 1, got {self.max_gain}")

    def surprise(self, mean_error: torch.Tensor | float, error: torch.Tensor | float,
                 dt: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(novelty, new_mean_error)`` from a prediction error (module docstring)."""
        check_positive("dt", dt)
        e = torch.as_tensor(error, dtype=torch.float64).abs()
        m = torch.as_tensor(mean_error, dtype=e.dtype)
        if bool(torch.isnan(e).any()) or bool((m < 0).any()):
            raise ValueError(f"error, mean_error: error must not be NaN and mean_error >= 0, "
                             f"got {error}, {mean_error}")
        nu = torch.clamp(e / (m + self.eps) - 1.0, min=0.0)
        return nu, m + (1.0 - math.exp(-dt / self.tau)) * (e - m)

    @staticmethod
    def unfamiliarity(familiarity: torch.Tensor | float) -> torch.Tensor:
        """:math:`\\nu = 1 - f`."""
        return 1.0 - _unit("familiarity", familiarity)

    def input_gain(self, novelty: torch.Tensor | float) -> torch.Tensor:
        nu = torch.as_tensor(novelty, dtype=torch.float64)
        if bool(torch.isnan(nu).any()) or bool((nu < 0).any()):
            raise ValueError(f"novelty: must be >= 0, got {novelty}")
        return torch.clamp(1.0 + self.gain * nu, max=self.max_gain)

    def lr_scale(self, novelty: torch.Tensor | float) -> torch.Tensor:
        nu = torch.as_tensor(novelty, dtype=torch.float64)
        if bool(torch.isnan(nu).any()) or bool((nu < 0).any()):
            raise ValueError(f"novelty: must be >= 0, got {novelty}")
        return torch.clamp(1.0 + self.lr * nu, max=self.max_gain)


__all__ = ["Acetylcholine", "Norepinephrine"]
