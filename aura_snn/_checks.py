"""Validation helpers shared by every public entry point.

Each helper raises a typed exception from :mod:`aura_snn.errors` whose message names
the parameter, the received value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from .errors import (
    InputValueError,
    MissingExtraError,
    ParameterError,
    ParameterTypeError,
    ShapeError,
)

Number = float | int


def _as_float_values(name: str, value: Any) -> list[float]:
    if isinstance(value, bool):
        raise ParameterTypeError(f"{name} must be a number or tensor, got bool {value!r}")
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, torch.Tensor):
        if value.numel() == 0:
            raise ParameterError(f"{name} must not be empty")
        return [float(v) for v in value.detach().flatten().tolist()]
    raise ParameterTypeError(
        f"{name} must be a number or torch.Tensor, got {type(value).__name__}"
    )


def check_positive(name: str, value: Any, unit: str = "") -> None:
    """Raise :class:`ParameterError` unless every element of ``value`` is finite and > 0."""
    for v in _as_float_values(name, value):
        if not math.isfinite(v) or v <= 0:
            suffix = f" {unit}" if unit else ""
            raise ParameterError(f"{name} must be finite and > 0{suffix}, got {v!r}")


def check_nonnegative(name: str, value: Any) -> None:
    """Raise :class:`ParameterError` unless every element is finite and >= 0."""
    for v in _as_float_values(name, value):
        if not math.isfinite(v) or v < 0:
            raise ParameterError(f"{name} must be finite and >= 0, got {v!r}")


def check_finite_param(name: str, value: Any) -> None:
    """Raise :class:`ParameterError` unless every element is finite."""
    for v in _as_float_values(name, value):
        if not math.isfinite(v):
            raise ParameterError(f"{name} must be finite, got {v!r}")


def check_in_range(name: str, value: Any, low: float, high: float,
                   low_inclusive: bool = True, high_inclusive: bool = True) -> None:
    """Raise :class:`ParameterError` unless ``low <(=) value <(=) high`` elementwise."""
    for v in _as_float_values(name, value):
        ok_low = v >= low if low_inclusive else v > low
        ok_high = v <= high if high_inclusive else v < high
        if not (math.isfinite(v) and ok_low and ok_high):
            lo = "[" if low_inclusive else "("
            hi = "]" if high_inclusive else ")"
            raise ParameterError(f"{name} must lie in {lo}{low}, {high}{hi}, got {v!r}")


def check_dt_tau(dt: float, tau: Any, tau_name: str) -> None:
    """``dt`` and ``tau`` must be positive and ``dt`` strictly smaller than every ``tau``."""
    check_positive("dt", dt, "s")
    check_positive(tau_name, tau, "s")
    for v in _as_float_values(tau_name, tau):
        if dt >= v:
            raise ParameterError(
                f"dt must be smaller than {tau_name}: got dt={dt!r} s and {tau_name}={v!r} s"
            )


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise list the options."""
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        allowed_text = ", ".join(map(repr, options))
        raise ParameterError(f"{name} must be one of {allowed_text}; got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """Return ``value`` as int if it is an integer (not bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        isinstance(value, float) and value.is_integer()
    ):
        raise ParameterTypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_tensor(name: str, x: Any, ndim: int | Sequence[int] | None = None,
                 finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a floating tensor with the allowed number of dims and finite values."""
    if not isinstance(x, torch.Tensor):
        raise ParameterTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            raise ShapeError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {tuple(x.shape)} ({x.dim()} dimensions)"
            )
    if finite and x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise InputValueError(f"{name} contains {bad} NaN or infinite value(s)")
    return x


def check_min_ndim(name: str, x: torch.Tensor, minimum: int, layout: str) -> None:
    """Raise :class:`ShapeError` unless ``x.dim() >= minimum`` (``layout`` names the axes)."""
    if x.dim() < minimum:
        raise ShapeError(
            f"{name} must have at least {minimum} dimensions {layout}, "
            f"got shape {tuple(x.shape)}"
        )


def require(module: str, extra: str) -> Any:
    """Import an optional dependency or raise :class:`MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"{module} is required for this feature: pip install 'aura-snn[{extra}]' "
            f"(or make setup, which installs every extra)"
        ) from exc
