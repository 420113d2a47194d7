r"""Discretisation of first-order linear decay: the one place ``dt`` meets ``tau``.

A state obeying :math:`\tau \, dx/dt = -x` is advanced by one step of ``dt`` as
:math:`x[t] = a \, x[t-1]` with

=========== ============================ ==========================================
integration decay factor :math:`a`        convention of
=========== ============================ ==========================================
``exact``   :math:`e^{-\Delta t / \tau}`  Brian2 ``exact``, Lava, our default
``euler``   :math:`1 - \Delta t / \tau`   Norse, Brian2 ``euler``, SpikingJelly
=========== ============================ ==========================================

Symbols: ``tau`` time constant (s), ``dt`` integration step (s), ``a`` dimensionless.
Both functions accept Python floats or tensors (learnable time constants) and keep
autograd intact. Every neuron model, kernel, exporter and energy counter obtains its
decay factors from here.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_choice

INTEGRATIONS = ("exact", "euler")

Scalar = float | torch.Tensor


def decay(tau: Scalar, dt: float, integration: str = "exact") -> Scalar:
    r"""Return the per-step decay factor :math:`a` of a state with time constant ``tau``.

    ``exact``: :math:`a = e^{-\Delta t/\tau}`; ``euler``: :math:`a = 1 - \Delta t/\tau`.
    ``tau`` and ``dt`` in seconds. Validation of ``tau``/``dt`` is the caller's job
    (modules validate at construction; this is on the hot path).
    """
    check_choice("integration", integration, INTEGRATIONS)
    if isinstance(tau, torch.Tensor):
        return torch.exp(-dt / tau) if integration == "exact" else 1.0 - dt / tau
    return math.exp(-dt / tau) if integration == "exact" else 1.0 - dt / tau


def tau_from_decay(a: Scalar, dt: float, integration: str = "exact") -> Scalar:
    r"""Inverse of :func:`decay`: the time constant (s) whose per-step factor is ``a``.

    ``exact``: :math:`\tau = -\Delta t / \ln a`; ``euler``: :math:`\tau = \Delta t / (1 - a)`.
    Requires ``0 < a < 1``.
    """
    check_choice("integration", integration, INTEGRATIONS)
    if isinstance(a, torch.Tensor):
        return -dt / torch.log(a) if integration == "exact" else dt / (1.0 - a)
    if not 0.0 < a < 1.0:
        raise ValueError(f"decay factor a must lie in (0, 1), got {a!r}")
    return -dt / math.log(a) if integration == "exact" else dt / (1.0 - a)
