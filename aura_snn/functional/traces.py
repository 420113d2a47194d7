r"""Synaptic traces: exponentially filtered activity, the memory plasticity rules read.

A trace :math:`x` of activity :math:`s` (spikes 0/1, or any output) obeys

.. math::
    \tau \frac{dx}{dt} = -x + \tau \sum_k \delta(t - t_k)

per step (:func:`aura_snn.functional.decay.decay` gives :math:`a`):

.. math::
    x[t] = a\,x[t-1] + s[t]

so :math:`x` jumps by 1 at each spike and decays with :math:`\tau`: the "all-to-all"
trace of pair-based STDP. ``mode="nearest"`` resets it to 1 at a spike instead,
:math:`x[t] = s[t] + (1 - s[t])\,a\,x[t-1]` (nearest-neighbour pairing).

For a synapse, :math:`s` is the presynaptic activity *at the synapse*: what the
presynaptic neuron emitted :math:`1 + d` steps earlier (delay :math:`d`), or in the
same step for a same-step edge (:mod:`aura_snn.graph.projection`).

Symbols: ``tau`` (s), ``dt`` (s), ``a`` and ``x`` dimensionless.
"""

from __future__ import annotations

import torch

from .._checks import check_choice
from .decay import Scalar, decay

TRACE_MODES = ("all_to_all", "nearest")


def trace_decay(tau: Scalar, dt: float) -> Scalar:
    """Per-step factor :math:`a = e^{-\\Delta t/\\tau}` of a trace (``tau``, ``dt`` in s)."""
    return decay(tau, dt, "exact")


def trace_step(x: torch.Tensor, s: torch.Tensor, a: Scalar,
               mode: str = "all_to_all") -> torch.Tensor:
    """One step of a trace: :math:`a x + s` (``all_to_all``) or
    :math:`s + (1 - s) a x` (``nearest``)."""
    check_choice("mode", mode, TRACE_MODES)
    if mode == "all_to_all":
        return a * x + s
    return s + (1.0 - s) * (a * x)


__all__ = ["TRACE_MODES", "trace_decay", "trace_step"]
