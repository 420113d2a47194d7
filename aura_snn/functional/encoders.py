r"""Spike encoders: turn values into time-major spike trains ``[T, B, ...]``.

* :func:`rate`: :math:`S[t] \sim \text{Bernoulli}(p)`, :math:`p = \text{clip}(x, 0, 1)`
  per step.
* :func:`poisson`: :math:`S[t] \sim \text{Bernoulli}(1 - e^{-r \Delta t})`, rate ``r`` in
  Hz, ``dt`` in s.
* :func:`latency`: one spike at :math:`t_s`; linear :math:`t_s = (1 - x)(T - 1)` for
  ``x`` in [0, 1], or log :math:`t_s = \tau \ln\frac{x}{x - \vartheta}` (RC charging,
  ``tau`` in steps).
* :func:`delta`: :math:`S[t] = \pm 1` when :math:`|x[t] - x_\text{ref}| > \vartheta`, and
  :math:`x_\text{ref} \leftarrow x[t]` at each spike (``x`` and ``threshold`` in the same
  units).

Random encoders take a ``torch.Generator`` (or ``seed``) so runs are reproducible.
"""

from __future__ import annotations

import torch

from .._checks import check_choice, check_int, check_positive, check_tensor
from ..errors import InputValueError


def _generator(generator: torch.Generator | None, seed: int | None,
               device: torch.device) -> torch.Generator | None:
    if generator is not None:
        return generator
    if seed is None:
        return None
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def rate(x: torch.Tensor, steps: int, *, gain: float = 1.0,
         generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
    """Bernoulli rate code: spike with probability ``clip(gain * x, 0, 1)`` at every step.

    Args:
        x: intensities, any shape ``[B, ...]`` (dimensionless, typically in [0, 1]).
        steps: number of time steps ``T``.
        gain: multiplies ``x`` before clipping.
        generator, seed: randomness source (a generator wins over a seed).

    Returns:
        ``[T, B, ...]`` spikes in ``x.dtype``.
    """
    check_tensor("x", x)
    steps = check_int("steps", steps, minimum=1)
    p = (gain * x).clamp(0.0, 1.0)
    g = _generator(generator, seed, x.device)
    u = torch.rand((steps, *x.shape), generator=g, device=x.device, dtype=x.dtype)
    return (u < p).to(x.dtype)


def poisson(rates_hz: torch.Tensor, steps: int, dt: float, *,
            generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
    """Poisson spike trains: in each step of ``dt`` seconds a neuron with rate ``r`` Hz
    spikes with probability :math:`1 - e^{-r \\Delta t}` (at least one event of a Poisson
    process in the bin; at most one spike per step is emitted).

    Returns ``[T, *rates_hz.shape]`` spikes.
    """
    check_tensor("rates_hz", rates_hz)
    check_positive("dt", dt, "s")
    if bool((rates_hz < 0).any()):
        raise InputValueError("rates_hz must be >= 0 Hz everywhere")
    p = -torch.expm1(-rates_hz * dt)
    return rate(p, steps, generator=generator, seed=seed)


def latency(x: torch.Tensor, steps: int, *, mode: str = "linear", tau: float = 5.0,
            threshold: float = 0.01) -> torch.Tensor:
    """Time-to-first-spike code: stronger input spikes earlier, each neuron at most once.

    ``mode="linear"``: :math:`t_s = \\text{round}((1 - x)(T - 1))` for ``x`` in (0, 1];
    ``x <= 0`` never spikes.
    ``mode="log"``: an RC circuit charged by ``x`` crosses ``threshold`` at
    :math:`t_s = \\tau \\ln(x / (x - \\vartheta))` steps (``tau`` in steps); inputs
    ``x <= threshold`` never spike; times past ``T - 1`` are dropped.

    Returns ``[T, B, ...]`` spikes in ``x.dtype``.
    """
    check_tensor("x", x)
    steps = check_int("steps", steps, minimum=1)
    check_choice("mode", mode, ("linear", "log"))
    if mode == "linear":
        fires = x > 0
        t_s = torch.round((1.0 - x.clamp(0.0, 1.0)) * (steps - 1))
    else:
        check_positive("tau", tau, "steps")
        check_positive("threshold", threshold)
        fires = x > threshold
        safe = torch.where(fires, x, torch.full_like(x, 2.0 * threshold))
        t_s = torch.round(tau * torch.log(safe / (safe - threshold)))
        fires = fires & (t_s <= steps - 1)
    t = torch.arange(steps, device=x.device, dtype=x.dtype).view(-1, *([1] * x.dim()))
    return ((t == t_s.unsqueeze(0)) & fires.unsqueeze(0)).to(x.dtype)


def delta(x: torch.Tensor, threshold: float, *, off_spikes: bool = False) -> torch.Tensor:
    """Delta modulation of a time-major signal ``x`` (``[T, B, ...]``).

    A spike is emitted when the signal has moved more than ``threshold`` away from the
    reference level, which is then reset to the current value; the reference starts at
    ``x[0]``. With ``off_spikes`` decreases give ``-1``, otherwise only increases spike.

    Returns ``[T, B, ...]`` spikes in {0, 1} (or {-1, 0, 1}).
    """
    check_tensor("x", x)
    check_positive("threshold", threshold)
    if x.dim() < 1:
        raise InputValueError("x must be time-major with at least one dimension")
    ref = x[0].clone()
    out = torch.zeros_like(x)
    for t in range(1, x.shape[0]):
        d = x[t] - ref
        up = d > threshold
        down = d < -threshold
        moved = up | down
        out[t] = up.to(x.dtype) - (down.to(x.dtype) if off_spikes else 0.0)
        ref = torch.where(moved, x[t], ref)
    return out


__all__ = ["delta", "latency", "poisson", "rate"]
