r"""Conversions between our parameters (``tau`` in seconds, ``dt`` explicit) and peers'.

One documented function per conversion; ``tests/functional/test_conventions.py``
checks each against the peer's own update where the peer is installed.

================ ========================= =============================================
peer             their parameter           our equivalent
================ ========================= =============================================
snnTorch         ``beta`` (per step)       ``decay(tau_mem, dt, "exact")``, with
                                           ``input_scaling="direct"``,
                                           ``reset_at="next_step"``, ``detach_reset=True``
snnTorch         ``alpha`` (Synaptic)      ``decay(tau_syn, dt, "exact")``,
                                           ``order="current_first"``
Norse            ``tau_mem_inv`` (1/s)     ``1 / tau_mem``, ``integration="euler"``
SpikingJelly     ``tau`` (steps)           ``tau_mem / dt``, ``integration="euler"``
Brian2           ``tau`` (second)          ``tau`` (s), ``integration`` = method
Loihi 2 / Lava   ``du``, ``dv`` (12 bit)   ``round(4096 (1 - a))``
================ ========================= =============================================
"""

from __future__ import annotations

import math

from .._checks import check_dt_tau, check_in_range, check_positive
from .decay import decay

LOIHI_DECAY_BITS = 12
LOIHI_DECAY_SCALE = 1 << LOIHI_DECAY_BITS  # 4096


def beta_from_tau(tau: float, dt: float, integration: str = "exact") -> float:
    """snnTorch ``beta`` (or ``alpha``) for a time constant ``tau`` (s) at step ``dt`` (s)."""
    check_dt_tau(dt, tau, "tau")
    return float(decay(tau, dt, integration))


def tau_from_beta(beta: float, dt: float, integration: str = "exact") -> float:
    """Time constant (s) of an snnTorch ``beta`` in (0, 1) at step ``dt`` (s)."""
    check_in_range("beta", beta, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    check_positive("dt", dt, "s")
    return -dt / math.log(beta) if integration == "exact" else dt / (1.0 - beta)


def tau_inv_from_tau(tau: float) -> float:
    """Norse's ``tau_mem_inv``/``tau_syn_inv`` (1/s) from ``tau`` (s)."""
    check_positive("tau", tau, "s")
    return 1.0 / tau


def tau_from_tau_inv(tau_inv: float) -> float:
    """``tau`` (s) from Norse's inverse time constant (1/s)."""
    check_positive("tau_inv", tau_inv, "1/s")
    return 1.0 / tau_inv


def tau_steps_from_tau(tau: float, dt: float) -> float:
    """SpikingJelly's ``tau`` (in steps; its update is Euler with ``1/tau``) from seconds."""
    check_dt_tau(dt, tau, "tau")
    return tau / dt


def tau_from_tau_steps(tau_steps: float, dt: float) -> float:
    """``tau`` (s) from SpikingJelly's ``tau`` in steps (> 1)."""
    check_in_range("tau_steps", tau_steps, 1.0, math.inf, low_inclusive=False)
    check_positive("dt", dt, "s")
    return tau_steps * dt


def loihi_decay_from_tau(tau: float, dt: float, integration: str = "exact") -> int:
    """Loihi 2 12-bit decay ``du``/``dv``: the state keeps ``(4096 - d) / 4096`` per step.

    ``d = round(4096 (1 - a))`` with ``a`` from :func:`~aura_snn.functional.decay.decay`;
    the quantisation error of ``a`` is at most ``1/8192``.
    """
    check_dt_tau(dt, tau, "tau")
    a = float(decay(tau, dt, integration))
    return int(min(LOIHI_DECAY_SCALE, max(0, round(LOIHI_DECAY_SCALE * (1.0 - a)))))


def decay_from_loihi(d: int) -> float:
    """Per-step decay factor ``a = 1 - d / 4096`` of a Loihi 12-bit decay ``d``."""
    check_in_range("d", d, 0, LOIHI_DECAY_SCALE)
    return 1.0 - d / LOIHI_DECAY_SCALE
