r"""Time cells: a population that fires in sequence after an event, scale-invariantly.

Hippocampal time cells (MacDonald et al. 2011) fire at successive moments after an
event; later cells have wider fields and are fewer, which a logarithmic spacing of
preferred times with widths proportional to the preferred time captures (Howard et
al. 2014, the inverse-Laplace "timeline"). Cell :math:`i` of :math:`n` has

.. math::
    \tau_i = t_\text{min} \left(\frac{t_\text{max}}{t_\text{min}}\right)^{i/(n-1)},
    \qquad \sigma_i = w\,\tau_i,

and its rate at time :math:`t` since the last event is one of

.. math::
    \text{gaussian:}\quad r_i(t) = r_\text{max}
        \exp\!\left(-\frac{(t - \tau_i)^2}{2 (w \tau_i)^2}\right),
    \qquad
    \text{laplace:}\quad r_i(t) = r_\text{max}
        \left(\frac{t}{\tau_i} e^{1 - t/\tau_i}\right)^{1/w^2},

for :math:`t \ge 0`, and 0 before any event (:math:`t = +\infty`) or for :math:`t < 0`.
Both peak at :math:`t = \tau_i` with value :math:`r_\text{max}` and are functions of
:math:`t/\tau_i` only (scale invariance: every field is the same shape stretched by
:math:`\tau_i`, so widths grow linearly). The ``laplace`` form is the
:math:`k`-th order inverse-Laplace kernel of Howard et al. with :math:`k = 1/w^2`, chosen so
its curvature at the peak equals the Gaussian's; it is skewed towards later times.

Step form (state explicit): :math:`t \leftarrow 0` on an event, else
:math:`t \leftarrow t + \Delta t`; rates are read out after the update.

Symbols: ``t_since`` :math:`t` (s), ``t_min``, ``t_max`` (s), ``width`` :math:`w`
(dimensionless), ``r_max`` (Hz), ``dt`` :math:`\Delta t` (s). Rates ``[..., n]`` in Hz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .._checks import check_choice, check_int, check_positive, check_tensor
from ..errors import ParameterError, ShapeError

SHAPES = ("gaussian", "laplace")


@dataclass(frozen=True)
class TimeCellParams:
    """Parameters of a time-cell population (module docstring for the equations).

    Attributes:
        n: number of cells, >= 1 (n = 1 puts its field at ``t_min``).
        t_min: earliest preferred time (s), > 0.
        t_max: latest preferred time (s), > t_min (or = t_min when n = 1).
        width: :math:`w = \\sigma_i / \\tau_i` (dimensionless), > 0.
        r_max: peak rate (Hz), > 0.
        shape: ``"gaussian"`` or ``"laplace"``.
    """

    n: int = 32
    t_min: float = 0.1
    t_max: float = 10.0
    width: float = 0.2
    r_max: float = 10.0
    shape: str = "gaussian"

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=1)
        check_positive("t_min", self.t_min, "s")
        check_positive("t_max", self.t_max, "s")
        if self.t_max < self.t_min or (self.t_max == self.t_min and self.n > 1):
            raise ParameterError(f"t_max must be > t_min (s), got t_min={self.t_min!r}, "
                                 f"t_max={self.t_max!r}")
        check_positive("width", self.width)
        check_positive("r_max", self.r_max, "Hz")
        check_choice("shape", self.shape, SHAPES)


class TimeCellState(NamedTuple):
    """``t_since`` (s) since the last event, ``[...]``; ``+inf`` before the first event."""

    t_since: torch.Tensor


def preferred_times(n: int, t_min: float, t_max: float, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Log-spaced preferred times :math:`\\tau_i` (s), ``[n]``, constant ratio."""
    if n == 1:
        return torch.full((1,), float(t_min), dtype=dtype, device=device)
    exponents = torch.arange(n, dtype=torch.float64) / (n - 1)
    taus = t_min * (t_max / t_min) ** exponents
    return taus.to(dtype=dtype, device=device)


def time_cell_rates(t_since: torch.Tensor, t_pref: torch.Tensor, width: float, r_max: float,
                    shape: str = "gaussian") -> torch.Tensor:
    """Rates (Hz) ``[..., n]`` at times since the event ``t_since`` ``[...]`` (s).

    Args:
        t_since: time since the last event (s); ``+inf`` (no event yet) or negative give 0.
        t_pref: preferred times :math:`\\tau_i` (s), ``[n]``.
        width: :math:`w` (dimensionless).
        r_max: peak rate (Hz).
        shape: ``"gaussian"`` or ``"laplace"`` (module docstring).
    """
    check_choice("shape", shape, SHAPES)
    t = t_since.unsqueeze(-1)
    valid = torch.isfinite(t) & (t >= 0)
    u = torch.where(valid, t, torch.ones_like(t)) / t_pref  # t / tau, safe where invalid
    if shape == "gaussian":
        log_r = -0.5 * ((u - 1.0) / width) ** 2
    else:
        log_r = (torch.log(u) + 1.0 - u) / (width * width)
    return torch.where(valid, r_max * torch.exp(log_r), torch.zeros_like(log_r))


def time_since_event_step(event: torch.Tensor, state: TimeCellState, dt: float
                          ) -> TimeCellState:
    """:math:`t \\leftarrow 0` where ``event`` (bool or > 0.5), else :math:`t + \\Delta t` (s)."""
    fired = event if event.dtype == torch.bool else event > 0.5
    t = state.t_since + dt
    return TimeCellState(torch.where(fired, torch.zeros_like(t), t))


class TimeCells(nn.Module):
    """A time-cell population (module docstring).

    * ``forward(t_since)``: rates (Hz) ``[..., n]`` at times ``t_since`` ``[...]`` (s).
    * ``initial_state(batch_shape)``: no event yet (``t_since = +inf``).
    * ``step(event, state, dt)``: ``event`` ``[...]`` (bool, or float > 0.5 = event)
      resets the clock; returns ``(rates [..., n], state)``.

    Preferred times are a buffer (``t_pref``), so ``.to(device, dtype)`` moves them.
    """

    def __init__(self, params: TimeCellParams | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.params = p = params if params is not None else TimeCellParams()
        self.register_buffer("t_pref", preferred_times(p.n, p.t_min, p.t_max, dtype, device))

    @property
    def n(self) -> int:
        """Number of cells."""
        return self.params.n

    @property
    def widths(self) -> torch.Tensor:
        """Field widths :math:`\\sigma_i = w\\tau_i` (s), ``[n]``."""
        return self.params.width * self.t_pref

    def forward(self, t_since: torch.Tensor) -> torch.Tensor:
        """Rates (Hz) ``[..., n]`` at times since the event ``t_since`` ``[...]`` (s)."""
        check_tensor("t_since", t_since, finite=False)
        if bool(torch.isnan(t_since).any()):
            raise ParameterError("t_since contains NaN; use +inf for 'no event yet'")
        p = self.params
        return time_cell_rates(t_since, self.t_pref.to(t_since.dtype), p.width, p.r_max, p.shape)

    def initial_state(self, batch_shape: tuple[int, ...] | torch.Size = (),
                      dtype: torch.dtype | None = None) -> TimeCellState:
        """State before any event: ``t_since = +inf``, shape ``batch_shape``."""
        dtype = dtype if dtype is not None else self.t_pref.dtype
        return TimeCellState(torch.full(tuple(batch_shape), math.inf, dtype=dtype,
                                        device=self.t_pref.device))

    def step(self, event: torch.Tensor, state: TimeCellState, dt: float
             ) -> tuple[torch.Tensor, TimeCellState]:
        """Advance the clock by ``dt`` (s) or reset it on ``event``; returns ``(rates, state)``."""
        check_positive("dt", dt, "s")
        check_tensor("event", event)
        if event.shape != state.t_since.shape:
            raise ShapeError(f"event must have the shape of state.t_since "
                             f"{tuple(state.t_since.shape)}, got {tuple(event.shape)}")
        state = time_since_event_step(event, state, dt)
        return self(state.t_since), state

    def extra_repr(self) -> str:
        return str(self.params)
