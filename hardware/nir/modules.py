r"""The modules one NIR node becomes in :func:`hardware.nir.from_nir`.

Every module takes time-major input ``[T, B, *shape]`` and offers
``run(x, state=None) -> (y, state)`` (the executor calls it with ``T = 1`` per step in
graphs with cycles, carrying ``state``) and ``forward(x) -> y``. Per-sample layers act
on each time step and batch element (``[T * B, ...]``). The neuron nodes run the
neuron modules of :mod:`aura_snn.neurons` (fused kernels) or the registered IF model;
their per-step equations are in :mod:`hardware.nir.conventions`.

================== ==========================================================
module             equation (per step :math:`t`)
================== ==========================================================
:class:`PerStep`   ``layer(x[t])`` (Linear/Affine, Conv1d/2d, SumPool2d, AvgPool2d)
:class:`Flatten`   flatten of the per-sample dims ``start_dim..end_dim`` (NIR's
                   dims exclude batch and time)
:class:`Scale`     :math:`y = s \odot x`
:class:`Threshold` :math:`y = H(x - \vartheta)` (strict ``>``, surrogate in backward)
:class:`Delay`     :math:`y[t] = x[t - d]` per element, :math:`d` in steps, 0 before
:class:`Integrator` :math:`v[t] = v[t-1] + x[t]` (NIR ``I`` after its gain)
:class:`Neuron`    a neuron module fed :math:`g \odot x`; output spikes or membrane
================== ==========================================================
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from aura_snn.functional import integrate_fire
from aura_snn.functional.surrogate import spike
from aura_snn.neurons.base import SpikingNeuron

#: Threshold that disables firing (LI, CubaLI run the LIF kernels with it): the
#: largest float32, finite in every dtype the kernels run.
NEVER = float(torch.finfo(torch.float32).max)


class Node(nn.Module, abc.ABC):
    """Abstract base: ``forward(x) = run(x)[0]``; stateless nodes ignore ``state``."""

    @abc.abstractmethod
    def run(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """``(y, new state)`` of time-major input ``x`` ``[T, B, *shape]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


class PerStep(Node):
    """A per-sample layer applied to every step of ``[T, B, ...]`` (merged to ``[T B, ...]``)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def run(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        T, B = x.shape[:2]
        y = self.layer(x.reshape(T * B, *x.shape[2:]))
        return y.reshape(T, B, *y.shape[1:]), None


class Flatten(Node):
    """NIR ``Flatten``: ``start_dim``/``end_dim`` index the per-sample shape."""

    def __init__(self, start_dim: int, end_dim: int) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def run(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        s = self.start_dim + 2 if self.start_dim >= 0 else self.start_dim
        e = self.end_dim + 2 if self.end_dim >= 0 else self.end_dim
        return x.flatten(s, e), None


class Scale(Node):
    """:math:`y = s \\odot x` (``s`` broadcast over time and batch)."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def run(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return x * self.scale.to(x.dtype), None


class Threshold(Node):
    """:math:`y = H(x - \\vartheta)`, 1 where ``x`` exceeds the threshold (V)."""

    def __init__(self, threshold: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def run(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return spike(x - self.threshold.to(x.dtype)), None


class Delay(Node):
    """:math:`y[t] = x[t - d]` with a whole number of steps ``d >= 0`` per element.

    ``state`` is the input history ``[D, B, *shape]`` of the last ``D = max(d)`` steps
    (oldest first), zeros at the start."""

    def __init__(self, steps: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("steps", steps.to(torch.int64))
        self.max_steps = int(steps.max()) if steps.numel() else 0

    @property
    def breaks_cycles(self) -> bool:
        """Every element is delayed by at least one step: the output of step ``t`` is
        known before the input of step ``t`` (a cycle through this node is causal)."""
        return self.steps.numel() > 0 and int(self.steps.min()) >= 1

    def run(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        D, T = self.max_steps, x.shape[0]
        if state is None:
            state = x.new_zeros((D, *x.shape[1:]))
        full = torch.cat([state, x], 0)                              # [D + T, B, ...]
        idx = (torch.arange(T, device=x.device).view(T, *([1] * (x.dim() - 1))) + D
               - self.steps.to(x.device))                            # [T, 1, *shape]
        y = torch.gather(full, 0, idx.expand(T, *x.shape[1:]))
        return y, full[full.shape[0] - D:]

    def emit(self, state: Any, like: torch.Tensor) -> torch.Tensor:
        """Output of the next step from the history alone (``breaks_cycles`` nodes)."""
        if state is None:
            return like.new_zeros(like.shape)
        D = self.max_steps
        idx = (D - self.steps.to(like.device)).unsqueeze(0)          # [1, *shape]
        return torch.gather(state, 0, idx.expand(1, *like.shape[1:]))

    def absorb(self, x: torch.Tensor, state: Any) -> Any:
        """History after the input ``x`` (``[1, B, ...]``) of one step."""
        if state is None:
            state = x.new_zeros((self.max_steps, *x.shape[1:]))
        return torch.cat([state, x], 0)[1:]


class Integrator(Node):
    """:math:`v[t] = v[t-1] + x[t]`, output :math:`v`, from 0 (NIR ``I`` after its gain)."""

    def __init__(self, gain: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("gain", gain)

    def run(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        v = torch.cumsum(x * self.gain.to(x.dtype), 0)
        if state is not None:
            v = v + state
        return v, v[-1]


class Neuron(Node):
    """A neuron module fed :math:`g \\odot x` (``gain`` ``None``: ``x`` as is).

    ``output="spikes"`` returns its spikes; ``"v"`` its membrane after the step (LI and
    CubaLI nodes: a neuron that never fires, :data:`NEVER`)."""

    def __init__(self, neuron: SpikingNeuron, gain: torch.Tensor | None,
                 output: str = "spikes") -> None:
        super().__init__()
        self.neuron = neuron
        self.output = output
        if gain is not None:
            self.register_buffer("gain", gain)
        else:
            self.gain = None

    def run(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        if self.gain is not None:
            x = x * self.gain.to(x.dtype)
        out = self.neuron.run(x, state, record_v=self.output == "v")
        return (out.v if self.output == "v" else out.spikes), out.state




class IFNeuron(SpikingNeuron):
    """Integrate-and-fire population over :mod:`aura_snn.functional.integrate_fire`
    (:math:`u = v + x`, reset to ``v_reset``); runs the reference loop (no fused kernel).

    Args:
        dt: step (s). threshold: :math:`\\vartheta` (V, > 0). v_reset: reset potential (V).
        reset: ``"zero"`` (default), ``"subtract"`` or ``"none"``.
    """

    spec = integrate_fire.SPEC
    time_constants = ()

    def __init__(self, *, dt: float, threshold: float | torch.Tensor = 1.0,
                 v_reset: float = 0.0, reset: str = "zero", surrogate: str = "fast_sigmoid",
                 slope: float | None = None) -> None:
        super().__init__(dt=dt, threshold=threshold, reset=reset, reset_at="spike",
                         v_reset=v_reset, surrogate=surrogate, slope=slope, detach_reset=False,
                         learn_threshold=False, learn_tau=False, backend="reference",
                         time_constants={}, extra={})


__all__ = ["NEVER", "Delay", "Flatten", "IFNeuron", "Integrator", "Neuron", "Node", "PerStep",
           "Scale", "Threshold"]
