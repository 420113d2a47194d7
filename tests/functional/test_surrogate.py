"""Surrogate spike functions: Heaviside forward, analytic derivative backward."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional.surrogate import spike, surrogate_grad

X = torch.linspace(-2, 2, 401, dtype=torch.float64)


def _antiderivative(name: str, k: float, x: torch.Tensor) -> torch.Tensor:
    # smooth functions whose derivative is the documented surrogate
    if name == "fast_sigmoid":
        return x / (1 + k * x.abs())
    if name == "arctan":
        return torch.atan(math.pi / 2 * k * x) / math.pi
    r = (1 - k * x.abs()).clamp_min(0)
    return torch.sign(x) * (0.5 - 0.5 * r * r)


@pytest.mark.parametrize(("name", "slope"), [("fast_sigmoid", 25.0), ("fast_sigmoid", 3.0),
                                              ("arctan", 2.0), ("triangle", 1.0),
                                              ("triangle", 0.5)])
def test_backward_is_the_analytic_derivative(name: str, slope: float) -> None:
    x = X.clone().requires_grad_()
    s = spike(x, name, slope)
    assert torch.equal(s, (X > 0).double())
    (g,) = torch.autograd.grad(s.sum(), x)
    # analytic formula, written out independently of the library
    ax = X.abs()
    if name == "fast_sigmoid":
        expected = 1 / (1 + slope * ax) ** 2
    elif name == "arctan":
        expected = (slope / 2) / (1 + (math.pi / 2 * slope * X) ** 2)
    else:
        expected = slope * (1 - slope * ax).clamp_min(0)
    torch.testing.assert_close(g, expected, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(surrogate_grad(X, name, slope), expected, rtol=1e-12, atol=1e-15)
    # and it is the derivative of a smooth step (central differences, away from kinks)
    h = 1e-6
    fd = (_antiderivative(name, slope, X + h) - _antiderivative(name, slope, X - h)) / (2 * h)
    keep = (X.abs() > 1e-3) & ((1 - slope * X.abs()).abs() > 1e-3)
    torch.testing.assert_close(fd[keep], expected[keep], rtol=1e-6, atol=1e-8)


def test_heaviside_is_strict_at_zero() -> None:
    assert spike(torch.zeros(1)).item() == 0.0


def test_unknown_surrogate_and_bad_slope() -> None:
    with pytest.raises(ParameterError, match="surrogate must be one of"):
        spike(X, "erf")
    with pytest.raises(ParameterError, match="slope"):
        spike(X, "arctan", 0.0)
