"""``CubaLIF``: current-based LIF population (equations in :mod:`aura_snn.functional.cuba`)."""

from __future__ import annotations

import torch

from ..functional import cuba as F
from ..kernels import cuba_multistep
from ..kernels.fused import launch_plan
from .base import SpikingNeuron


class CubaLIF(SpikingNeuron):
    r"""Current-based LIF: input jumps a synaptic current that decays with ``tau_syn``
    and drives the membrane (:mod:`aura_snn.functional.cuba`).

    Args:
        tau_mem, tau_syn: membrane and synaptic time constants (s), each > ``dt``.
        order: ``"current_first"`` (default; snnTorch ``Synaptic``, Norse ``LIF``) or
            ``"voltage_first"`` (Brian2, Lava: input arrives at the step's end).
        The other arguments are those of :class:`~aura_snn.neurons.LIF`.

    Shapes: ``forward(x)``: ``x`` ``[T, B, ...]`` -> spikes ``[T, B, ...]``.

    snnTorch ``Synaptic(alpha, beta)`` maps to ``CubaLIF(tau_syn=tau_from_beta(alpha,
    dt), tau_mem=tau_from_beta(beta, dt), input_scaling="direct",
    reset_at="next_step", detach_reset=True)``; Norse ``LIF`` to
    ``CubaLIF(integration="euler", reset="zero")`` (same spikes and membrane; Norse
    stores the current after its decay, ``norse.i == (1 - dt / tau_syn) * state.i``).
    """

    spec = F.SPEC
    time_constants = ("tau_mem", "tau_syn")
    fused = staticmethod(cuba_multistep)
    fused_plan = staticmethod(launch_plan)

    def __init__(self, tau_mem: float | torch.Tensor = 10e-3,
                 tau_syn: float | torch.Tensor = 5e-3, *, dt: float = 1e-3,
                 threshold: float | torch.Tensor = 1.0, reset: str = "subtract",
                 reset_at: str = "spike", v_leak: float = 0.0, v_reset: float = 0.0,
                 integration: str = "exact", input_scaling: str = "ode",
                 order: str = "current_first", surrogate: str = "fast_sigmoid",
                 slope: float | None = None, detach_reset: bool = False,
                 learn_tau: bool = False, learn_threshold: bool = False,
                 backend: str = "auto") -> None:
        super().__init__(dt=dt, threshold=threshold, reset=reset, reset_at=reset_at,
                         v_reset=v_reset, surrogate=surrogate, slope=slope,
                         detach_reset=detach_reset, learn_threshold=learn_threshold,
                         learn_tau=learn_tau, backend=backend,
                         time_constants={"tau_mem": tau_mem, "tau_syn": tau_syn},
                         extra=dict(v_leak=float(v_leak), integration=integration,
                                    input_scaling=input_scaling, order=order))
