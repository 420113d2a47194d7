r"""How NIR's continuous-time neuron nodes map to our per-step updates, both ways.

NIR nodes state ODEs without a step; a simulator picks ``dt`` and a discretisation.
We use one convention, parameterised by ``dt`` (s) and ``integration``: each decay is
:math:`a = 1 - \Delta t/\tau` (``"euler"``, forward Euler: what snnTorch's and Norse's
NIR import and export assume, the default) or :math:`a = e^{-\Delta t/\tau}`
(``"exact"``), from :func:`aura_snn.functional.decay.decay`; the input :math:`x[t]` of
a step is held over the step. Per step :math:`t`:

========== =====================================================================
NIR node   update (state at rest at :math:`t = 0`: :math:`v = v_\text{leak}`,
           :math:`I = 0`; ``I``/``IF`` from :math:`v = 0`)
========== =====================================================================
``LI``     :math:`v \leftarrow v_\text{leak} + a (v - v_\text{leak}) + (1 - a)\,r\,x`
``LIF``    the same, then :math:`z = [v > v_\text{threshold}]`, :math:`v \leftarrow
           v_\text{reset}` where :math:`z` (reset in the step that spikes)
``CubaLI`` :math:`I \leftarrow a_s I + (1 - a_s)\,w_\text{in}\,x`, then
           :math:`v \leftarrow v_\text{leak} + a_m (v - v_\text{leak}) + (1 - a_m)\,r\,I`
           (the new current drives the membrane in the same step)
``CubaLIF`` the same, then threshold and reset as ``LIF``
``I``      :math:`v \leftarrow v + \Delta t\,r\,x`
``IF``     the same, then threshold and reset as ``LIF``
========== =====================================================================

Our modules run these as (``gain`` a :class:`~hardware.nir.modules.Neuron`'s input
scale; :mod:`aura_snn.functional.lif`, :mod:`~aura_snn.functional.cuba`):

========== ===================================== ======================================
NIR node   our module                            gain on :math:`x`
========== ===================================== ======================================
``LIF``    ``LIF(tau_mem=tau, integration,       :math:`r`
           input_scaling="ode", reset="zero")``
``CubaLIF`` ``CubaLIF(tau_mem, tau_syn,          :math:`r (1 - a_s) w_\text{in}` (our
           order="current_first", ...)``         current is :math:`r I`; its coupling
                                                 :math:`k = 1 - a_m` in both integrations)
``IF``     :class:`~hardware.nir.modules.IFNeuron` :math:`\Delta t\,r`
``LI``/``CubaLI`` ``LIF``/``CubaLIF`` that never fire, membrane as output
``I``      :class:`~hardware.nir.modules.Integrator` :math:`\Delta t\,r`
========== ===================================== ======================================

Export goes the other way from a model's compiled family
(:class:`~aura_snn.functional.registry.CompiledFamily`, the model spec's own
coefficients): decay :math:`a_m`, one receptor :math:`(k, b, c)`, ``late``. The
current the membrane sees obeys :math:`\hat\imath[t] = b c\,\hat\imath[t-1] + x[t]`,
so :math:`a_s = b c`, and

========================== ============================================================
family                     NIR
========================== ============================================================
:math:`a_s = 0`            ``LIF``: :math:`\tau = T(a_m)`, :math:`r = k / (1 - a_m)`
:math:`a_s > 0`            ``CubaLIF``: :math:`\tau_\text{mem} = T(a_m)`,
                           :math:`\tau_\text{syn} = T(a_s)`, :math:`w_\text{in} =
                           1/(1 - a_s)`, :math:`r = k_\text{eff}/(1 - a_m)`
``late`` (voltage_first)   a ``Delay`` of one step before the node, :math:`k_\text{eff}
                           = k b` (exact: the membrane sees the current of the step before)
:math:`a_m = 1`            ``IF``: :math:`r = k / \Delta t`
========================== ============================================================

with :math:`T(a) = \Delta t/(1 - a)` (``euler``) or :math:`-\Delta t/\ln a` (``exact``)
(:func:`aura_snn.functional.decay.tau_from_decay`), so that a simulator using the same
convention reproduces our update. ``v_leak``, ``v_threshold``, ``v_reset`` are copied.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from aura_snn._checks import check_choice
from aura_snn.functional.decay import decay, tau_from_decay
from aura_snn.functional.registry import CompiledFamily

INTEGRATIONS = ("euler", "exact")


def as_array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 numpy array of ``value`` (number or tensor) broadcast to ``shape``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape).copy()


def tau_of(a: np.ndarray, dt: float, integration: str) -> np.ndarray:
    """NIR time constant (s) whose per-step decay is ``a`` (``0 < a < 1``)."""
    check_choice("integration", integration, INTEGRATIONS)
    return np.asarray(tau_from_decay(torch.as_tensor(a, dtype=torch.float64), dt,
                                     integration).numpy(), dtype=np.float64)


def decay_of(tau: np.ndarray, dt: float, integration: str) -> np.ndarray:
    """Per-step decay of a NIR time constant ``tau`` (s) at step ``dt`` (s)."""
    check_choice("integration", integration, INTEGRATIONS)
    return np.asarray(decay(torch.as_tensor(tau, dtype=torch.float64), dt,
                            integration).numpy(), dtype=np.float64)


def family_to_nir(fam: CompiledFamily, dt: float, integration: str,
                  shape: tuple[int, ...]) -> tuple[str, dict[str, np.ndarray], bool]:
    """``(node type, NIR fields, needs a one-step Delay before it)`` of a one-receptor
    compiled family (tables in the module docstring). Raises ``ValueError`` for what
    NIR has no node for (the caller adds the layer's name)."""
    if len(fam.receptors) != 1:
        raise ValueError(f"{len(fam.receptors)} receptors with their own currents (NIR "
                         f"nodes take one input)")
    (k, b, c), = fam.receptors
    a_m = as_array(fam.a_m, shape)
    k, b, c = (as_array(v, shape) for v in (k, b, c))
    a_s = b * c
    k_eff = k * b if fam.late else k
    fields = {"v_leak": as_array(fam.v_leak, shape),
              "v_threshold": as_array(fam.threshold, shape),
              "v_reset": as_array(fam.v_reset, shape)}
    if np.all(a_m == 1.0):
        if np.any(a_s != 0) or np.any(fields["v_leak"] != 0):
            raise ValueError("an integrator (decay 1) with a synaptic current or a leak "
                             "potential (NIR's IF has neither)")
        fields.pop("v_leak")
        return "IF", {"r": k_eff / dt, **fields}, bool(fam.late)
    if np.any((a_m <= 0) | (a_m >= 1)):
        raise ValueError(f"membrane decay per step outside (0, 1): {a_m.min()}..{a_m.max()}")
    tau_m = tau_of(a_m, dt, integration)
    r = k_eff / (1.0 - a_m)
    if np.all(a_s == 0):
        return "LIF", {"tau": tau_m, "r": r, **fields}, bool(fam.late)
    if np.any((a_s <= 0) | (a_s >= 1)):
        raise ValueError("a synaptic decay per step outside (0, 1) for some neurons")
    return "CubaLIF", {"tau_mem": tau_m, "tau_syn": tau_of(a_s, dt, integration), "r": r,
                       "w_in": 1.0 / (1.0 - a_s), **fields}, bool(fam.late)


def lif_gain(r: np.ndarray) -> np.ndarray:
    """Input gain of our ``LIF(input_scaling="ode")`` for a NIR ``LIF``/``LI``: :math:`r`."""
    return np.asarray(r, dtype=np.float64)


def cuba_gain(r: np.ndarray, w_in: np.ndarray, tau_syn: np.ndarray, dt: float,
              integration: str) -> np.ndarray:
    """Input gain of our ``CubaLIF`` for a NIR ``CubaLIF``/``CubaLI``:
    :math:`r (1 - a_s) w_\\text{in}`."""
    return np.asarray(r * (1.0 - decay_of(tau_syn, dt, integration)) * w_in,
                      dtype=np.float64)


def integrator_gain(r: np.ndarray, dt: float) -> np.ndarray:
    """Input gain of a NIR ``I``/``IF`` per step: :math:`\\Delta t\\,r`."""
    return np.asarray(dt * r, dtype=np.float64)


__all__ = ["INTEGRATIONS", "as_array", "cuba_gain", "decay_of", "family_to_nir",
           "integrator_gain", "lif_gain", "tau_of"]
