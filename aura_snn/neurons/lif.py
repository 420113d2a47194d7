"""``LIF``: leaky integrate-and-fire population (equations in :mod:`aura_snn.functional.lif`)."""

from __future__ import annotations

import torch

from ..functional import lif as F
from ..kernels import lif_multistep
from ..kernels.fused import launch_plan
from .base import SpikingNeuron


class LIF(SpikingNeuron):
    r"""Leaky integrate-and-fire neurons, multi-step over time-major input.

    :math:`u[t] = v_\text{leak} + a (v[t-1] - v_\text{leak}) + g x[t]`, spike
    :math:`S[t] = H(u[t] - \vartheta)`, then reset (:mod:`aura_snn.functional.lif`).

    Args:
        tau_mem: membrane time constant (s); float or per-neuron tensor. > ``dt``.
        dt: integration step (s).
        threshold: :math:`\vartheta` (V), > 0.
        reset: ``"subtract"`` (default), ``"zero"`` (to ``v_reset``) or ``"none"``.
        reset_at: ``"spike"`` (default) or ``"next_step"`` (snnTorch ``Leaky``).
        v_leak, v_reset: resting and reset potentials (V).
        integration: ``"exact"`` (default) or ``"euler"`` (Norse, Brian2 ``euler``).
        input_scaling: ``"ode"`` (default; input is :math:`RI` in V) or ``"direct"``
            (added unscaled each step, snnTorch).
        surrogate, slope: surrogate derivative (:mod:`aura_snn.functional.surrogate`).
        detach_reset: no gradient through the reset (snnTorch's behaviour).
        learn_tau, learn_threshold: make ``tau_mem`` / ``threshold`` ``nn.Parameter``.
        backend: ``"auto"`` (fused kernel on CPU/CUDA), ``"fused"`` or ``"reference"``.

    Shapes: ``forward(x)``: ``x`` ``[T, B, ...]`` -> spikes ``[T, B, ...]``.

    Example::

        >>> lif = LIF(tau_mem=20e-3, dt=1e-3)
        >>> spikes = lif(torch.rand(100, 8, 32) * 3)
        >>> spikes.shape
        torch.Size([100, 8, 32])

    snnTorch ``Leaky(beta=b)`` maps to ``LIF(tau_mem=tau_from_beta(b, dt),
    input_scaling="direct", reset_at="next_step", detach_reset=True)``; Norse
    ``LIFBoxCell`` to ``LIF(integration="euler", reset="zero")``.
    """

    spec = F.SPEC
    time_constants = ("tau_mem",)
    fused = staticmethod(lif_multistep)
    fused_plan = staticmethod(launch_plan)

    def __init__(self, tau_mem: float | torch.Tensor = 10e-3, *, dt: float = 1e-3,
                 threshold: float | torch.Tensor = 1.0, reset: str = "subtract",
                 reset_at: str = "spike", v_leak: float = 0.0, v_reset: float = 0.0,
                 integration: str = "exact", input_scaling: str = "ode",
                 surrogate: str = "fast_sigmoid", slope: float | None = None,
                 detach_reset: bool = False, learn_tau: bool = False,
                 learn_threshold: bool = False, backend: str = "auto") -> None:
        super().__init__(dt=dt, threshold=threshold, reset=reset, reset_at=reset_at,
                         v_reset=v_reset, surrogate=surrogate, slope=slope,
                         detach_reset=detach_reset, learn_threshold=learn_threshold,
                         learn_tau=learn_tau, backend=backend,
                         time_constants={"tau_mem": tau_mem},
                         extra=dict(v_leak=float(v_leak), integration=integration,
                                    input_scaling=input_scaling))
