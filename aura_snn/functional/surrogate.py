r"""Spike functions: exact Heaviside forward, smooth surrogate derivative backward.

Forward, for every surrogate: :math:`S = H(x) = 1` if :math:`x > 0` else :math:`0`,
where :math:`x = v - \vartheta` is the distance of the membrane above threshold (V).
Backward replaces :math:`\delta(x)` by :math:`\sigma'(x)`:

* ``fast_sigmoid``: :math:`\sigma'(x) = 1 / (1 + k|x|)^2`, ``slope`` = :math:`k` (1/V);
  snnTorch ``fast_sigmoid(slope=k)``; Norse 1.1's ``"super"`` is this with ``k = 1``
  (its backward ignores ``alpha``).
* ``arctan``: :math:`\sigma'(x) = (\alpha/2) / (1 + (\pi\alpha x/2)^2)`,
  ``slope`` = :math:`\alpha` (1/V); snnTorch ``atan(alpha)``, SpikingJelly ``ATan(alpha)``.
* ``triangle``: :math:`\sigma'(x) = \gamma \max(0, 1 - \gamma|x|)`, ``slope`` =
  :math:`\gamma` (1/V); unit area, support :math:`|x| < 1/\gamma`.

All three derivatives are even in :math:`x`; each formula below takes
``ax = |x|`` and is written in plain arithmetic (no calls), so the same function body
serves torch tensors here, numba scalars in :mod:`aura_snn.kernels.cpu` and Triton
blocks in :mod:`aura_snn.kernels.gpu` (one source of truth; each caller takes the
absolute value with its own ``abs``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._checks import check_choice, check_positive

SURROGATES = ("fast_sigmoid", "arctan", "triangle")
DEFAULT_SLOPE = {"fast_sigmoid": 25.0, "arctan": 2.0, "triangle": 1.0}
SURROGATE_ID = {name: i for i, name in enumerate(SURROGATES)}


def fast_sigmoid_grad(ax: float, k: float) -> float:
    r""":math:`\sigma'(x) = 1/(1 + k|x|)^2` (Zenke & Ganguli 2018, SuperSpike); ``ax = |x|``."""
    d = 1.0 + k * ax
    return 1.0 / (d * d)


def arctan_grad(ax: float, alpha: float) -> float:
    r""":math:`\sigma'(x) = (\alpha/2)/(1 + (\pi \alpha x / 2)^2)`, derivative of
    :math:`\tfrac{1}{\pi}\arctan(\tfrac{\pi}{2}\alpha x) + \tfrac12` (Fang et al. 2021);
    ``ax = |x|``."""
    z = (0.5 * math.pi * alpha) * ax
    return (0.5 * alpha) / (1.0 + z * z)


def triangle_grad(ax: float, gamma: float) -> float:
    r""":math:`\sigma'(x) = \gamma \max(0, 1 - \gamma|x|)` (Esser et al. 2016), unit area;
    ``ax = |x|``."""
    r = 1.0 - gamma * ax
    return gamma * r * (r > 0.0)


_GRADS = (fast_sigmoid_grad, arctan_grad, triangle_grad)


def surrogate_grad(x: torch.Tensor, surrogate: str, slope: float) -> torch.Tensor:
    """Evaluate :math:`\\sigma'(x)` of the named surrogate (no autograd through it)."""
    return _GRADS[SURROGATE_ID[check_choice("surrogate", surrogate, SURROGATES)]](x.abs(), slope)


class _Spike(torch.autograd.Function):
    """Heaviside forward, ``sigma'(x) * grad`` backward; surrogate chosen by index."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, sid: int, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.sid, ctx.slope = sid, slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * _GRADS[ctx.sid](x.abs(), ctx.slope), None, None


def spike(x: torch.Tensor, surrogate: str = "fast_sigmoid",
          slope: float | None = None) -> torch.Tensor:
    r"""Spike :math:`S = H(x)` with the surrogate derivative ``surrogate`` in backward.

    Args:
        x: distance above threshold :math:`v - \vartheta` (V), any shape.
        surrogate: one of ``fast_sigmoid``, ``arctan``, ``triangle``.
        slope: sharpness (1/V); defaults per surrogate (25, 2, 1).

    Returns:
        Spikes of ``x``'s shape and dtype, values 0 or 1.
    """
    sid = SURROGATE_ID[check_choice("surrogate", surrogate, SURROGATES)]
    k = DEFAULT_SLOPE[surrogate] if slope is None else float(slope)
    check_positive("surrogate slope", k, "1/V")
    return _Spike.apply(x, sid, k)


def spike_by_id(x: torch.Tensor, sid: int, slope: float) -> torch.Tensor:
    """Hot-path form of :func:`spike` for callers that validated once (modules, steppers)."""
    return _Spike.apply(x, sid, slope)
