"""``ALIF``: adaptive-threshold LIF population (equations in :mod:`aura_snn.functional.alif`)."""

from __future__ import annotations

import torch

from ..functional import alif as F
from .base import SpikingNeuron


class ALIF(SpikingNeuron):
    r"""Adaptive LIF (Bellec et al. 2018): each spike raises the threshold by ``beta``
    (V), relaxing with ``tau_adapt`` (:mod:`aura_snn.functional.alif`).

    Args:
        tau_mem, tau_adapt: membrane and adaptation time constants (s), > ``dt``.
        beta: threshold increment per unit of adaptation trace (V), >= 0.
        The other arguments are those of :class:`~aura_snn.neurons.LIF`; ``reset_at``
        must be ``"spike"``. Runs on the reference backend (no fused kernel).
    """

    spec = F.SPEC
    time_constants = ("tau_mem", "tau_adapt")

    def __init__(self, tau_mem: float | torch.Tensor = 20e-3,
                 tau_adapt: float | torch.Tensor = 200e-3, *, beta: float = 0.1,
                 dt: float = 1e-3, threshold: float | torch.Tensor = 1.0,
                 reset: str = "subtract", v_leak: float = 0.0, v_reset: float = 0.0,
                 integration: str = "exact", input_scaling: str = "ode",
                 surrogate: str = "fast_sigmoid", slope: float | None = None,
                 detach_reset: bool = False, learn_tau: bool = False,
                 learn_threshold: bool = False, backend: str = "auto") -> None:
        super().__init__(dt=dt, threshold=threshold, reset=reset, reset_at="spike",
                         v_reset=v_reset, surrogate=surrogate, slope=slope,
                         detach_reset=detach_reset, learn_threshold=learn_threshold,
                         learn_tau=learn_tau, backend=backend,
                         time_constants={"tau_mem": tau_mem, "tau_adapt": tau_adapt},
                         extra=dict(v_leak=float(v_leak), integration=integration,
                                    input_scaling=input_scaling, beta=float(beta)))
