"""Shared machinery of the neuron modules: parameter storage, backends, run/step, observers.

A neuron module is a thin shell over one model of :mod:`aura_snn.functional`:

* ``forward(x, state=None) -> spikes``: ``x`` time-major ``[T, B, ...]``, spikes of
  the same shape. The state starts at rest when ``None``.
* ``run(x, state=None, record_v=False) -> MultiStep(spikes, v, state)``: the same,
  returning the membrane trace and the final state (truncated BPTT, streaming).
* ``step(x_t, state=None) -> (spikes_t, state)``: one step on ``[B, ...]``.

State belongs to the caller (no hidden registry). Learnable values are
``nn.Parameter``; fixed ones are buffers, so ``state_dict`` is complete. Observers
(monitors in :mod:`aura_snn.metrics`) attach per instance and never change outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._checks import (
    check_choice,
    check_dt_tau,
    check_min_ndim,
    check_positive,
    check_tensor,
)
from ..errors import ParameterError, ShapeError
from ..functional.firing import RESET_AT, RESETS
from ..functional.loop import MultiStep
from ..functional.loop import run as reference_run
from ..functional.registry import ModelSpec
from ..functional.surrogate import SURROGATES
from ..kernels.cpu import serial
from ..kernels.fused import run_planned

#: Launch plans a neuron module keeps (one per input shape and dtype) before starting over.
_MAX_PLANS = 8

BACKENDS = ("auto", "fused", "reference")

Observer = Callable[[nn.Module, MultiStep], None]


def detach_state(state: Any) -> Any:
    """Return ``state`` (a NamedTuple of tensors, or ``None``) cut from the autograd graph.

    Use between chunks of a long sequence for truncated backpropagation through time.
    """
    if state is None:
        return None
    return type(state)(*(t.detach() for t in state))


class _ObserverHandle:
    def __init__(self, owner: SpikingNeuron, entry: tuple[Observer, bool]) -> None:
        self._owner, self._entry = owner, entry

    def remove(self) -> None:
        if self._entry in self._owner._observers:
            self._owner._observers.remove(self._entry)


class SpikingNeuron(nn.Module):
    """Base class: subclasses set ``spec`` (the model's
    :class:`~aura_snn.functional.registry.ModelSpec`: its functional module and parameter
    dataclass), ``time_constants`` and optionally ``fused``."""

    spec: ModelSpec | None = None
    time_constants: tuple[str, ...] = ()
    fused: Callable[..., MultiStep] | None = None
    #: Makes the fused CPU kernel's launch plan (:func:`aura_snn.kernels.fused.
    #: launch_plan`) for small no-grad calls; a subclass that replaces ``fused`` sets
    #: this to ``None`` (or to its own plan maker).
    fused_plan: Callable[..., Any] | None = None
    #: Every spike is exactly 0 or 1: the spike function's forward is the step
    #: :math:`[u - \vartheta > 0]` in the reference loop and in every fused kernel.
    #: Counters (:class:`aura_snn.metrics.ops.OpCounter`) rely on it to count spikes by
    #: a sum instead of testing each value; a subclass with graded output sets False.
    binary_spikes: bool = True

    def __init__(self, *, dt: float, threshold: float | torch.Tensor, reset: str,
                 reset_at: str, v_reset: float, surrogate: str, slope: float | None,
                 detach_reset: bool, learn_threshold: bool, learn_tau: bool,
                 backend: str, time_constants: dict[str, float | torch.Tensor],
                 extra: dict[str, Any]) -> None:
        super().__init__()
        check_choice("reset", reset, RESETS)
        check_choice("reset_at", reset_at, RESET_AT)
        check_choice("surrogate", surrogate, SURROGATES)
        check_choice("backend", backend, BACKENDS)
        if backend == "fused" and self.fused is None:
            raise ParameterError(
                f"backend must be one of 'auto', 'reference' for {type(self).__name__} "
                f"(no fused kernel for this model), got 'fused'"
            )
        check_positive("dt", dt, "s")
        check_positive("threshold", threshold, "V")
        for name, tau in time_constants.items():
            check_dt_tau(dt, tau, name)
        self.dt = float(dt)
        self.backend = backend
        self._static = dict(reset=reset, reset_at=reset_at, v_reset=float(v_reset),
                            surrogate=surrogate, slope=slope, detach_reset=bool(detach_reset),
                            **extra)
        self._store("threshold", threshold, learn_threshold)
        for name, tau in time_constants.items():
            self._store(name, tau, learn_tau)
        self._observers: list[tuple[Observer, bool, bool]] = []
        self._plans: dict[tuple, tuple[tuple[float, ...], Any]] = {}
        self.neuron_parameters()  # validate the combination once, at construction

    @property
    def functional(self) -> Any:
        """The model's functional module (``step``, ``initial_state``), from its spec."""
        return self.spec.module

    @property
    def params_cls(self) -> type:
        """The model's parameter dataclass, from its spec."""
        return self.spec.parameters

    def _store(self, name: str, value: float | torch.Tensor, learnable: bool) -> None:
        """Learnable values become ``nn.Parameter`` in the default dtype (they train with
        the model); fixed ones become float64 buffers, so a model built in float32 and
        run in float64 (``.double()``) still uses the exact time constants it was given.
        Kernels cast coefficients to the input's dtype."""
        if learnable:
            t = torch.as_tensor(value, dtype=torch.get_default_dtype()).clone()
            setattr(self, name, nn.Parameter(t))
        else:
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float64).clone())

    # -- parameters -----------------------------------------------------------------
    def neuron_parameters(self) -> Any:
        """The functional parameter dataclass for the current values.

        Learnable values are clamped: time constants to at least ``dt * 1.000001`` s
        (the discretisation needs ``dt < tau``), thresholds to at least ``1e-6`` V.
        """
        values: dict[str, Any] = {}
        for name in self.time_constants:
            t = getattr(self, name)
            values[name] = t.clamp_min(self.dt * 1.000001) if t.requires_grad else t
        th = self.threshold
        values["threshold"] = th.clamp_min(1e-6) if th.requires_grad else th
        return self.params_cls(**values, **self._static)

    # -- observers ------------------------------------------------------------------
    def add_observer(self, fn: Observer, needs_v: bool = False,
                     needs_count: bool = False) -> _ObserverHandle:
        """Call ``fn(module, MultiStep)`` after every ``run``/``forward``. With
        ``needs_v`` the membrane trace is computed for it; with ``needs_count`` the fused
        CPU kernel also counts the spikes it writes (``MultiStep.spike_count``, else
        None: other backends, autograd). Outputs are unchanged. Returns a handle with
        ``remove()``."""
        entry = (fn, bool(needs_v), bool(needs_count))
        self._observers.append(entry)
        return _ObserverHandle(self, entry)

    # -- running --------------------------------------------------------------------
    def _use_fused(self, x: torch.Tensor) -> bool:
        if self.backend == "reference" or self.fused is None:
            return False
        return x.device.type == "cpu" or x.device.type == "cuda"

    def _check_state(self, state: Any, shape: torch.Size) -> None:
        if state is None:
            return
        for name, t in zip(state._fields, state, strict=True):
            if not isinstance(t, torch.Tensor) or t.shape != shape:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ShapeError(
                    f"state.{name} must have shape {tuple(shape)} (one step of the "
                    f"input), got {got}"
                )

    def _plan(self, x: torch.Tensor, state: Any) -> Any:
        """The fused CPU kernel's :class:`~aura_snn.kernels.fused.LaunchPlan` for ``x``,
        or ``None`` where a call goes the general way: autograd, a device other than the
        CPU, per-neuron parameters, a problem big enough for the thread pool (whose
        preparation is small beside its kernel), or a model without a plan. Plans are
        kept per neuron shape and dtype, keyed by the exact parameter values and ``dt``
        (an in-place change of a buffer, a ``.data`` write included, makes a new one)."""
        maker = type(self).fused_plan
        if (maker is None or self.backend == "reference" or x.device.type != "cpu"
                or x.dtype not in (torch.float32, torch.float64)):
            return None
        tensors = [getattr(self, n) for n in self.time_constants]
        tensors.append(self.threshold)
        if any(t.dim() for t in tensors) or not serial(x.shape[0], math.prod(x.shape[1:])):
            return None
        if torch.is_grad_enabled() and (
                x.requires_grad or any(t.requires_grad for t in tensors)
                or (state is not None and any(t.requires_grad for t in state))):
            return None
        key = (x.shape[1:], x.dtype)
        values = (self.dt, *(float(t) for t in tensors))
        hit = self._plans.get(key)
        if hit is not None and hit[0] == values:
            return hit[1]
        with torch.inference_mode(False):  # ordinary tensors, whatever mode asked first
            plan = maker(self.neuron_parameters(), self.dt, x.shape[1:], x.dtype)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[key] = (values, plan)
        return plan

    def run(self, x: torch.Tensor, state: Any = None, record_v: bool = False) -> MultiStep:
        """Run all ``T`` steps of time-major ``x`` (``[T, B, ...]``).

        Returns ``MultiStep(spikes [T, B, ...], v [T, B, ...] or None, final state)``.
        ``T = 0`` gives empty ``[0, B, ...]`` spikes (and trace) and the initial state
        (``state``, or the resting state); observers are not called for it. float16 and
        bfloat16 inputs are computed in float32 on every backend (a membrane kept in
        half precision drifts: ALIF's adaptation lost 0.2 % / 1.9 % of its spikes that
        way) and returned, state included, in the input's dtype.
        """
        check_tensor("x", x, finite=False)
        check_min_ndim("x", x, 2, "[T, B, ...]")
        if not x.is_floating_point():
            raise ShapeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if x.dtype in (torch.float16, torch.bfloat16):
            up = None if state is None else type(state)(*(t.float() for t in state))
            out = self.run(x.float(), up, record_v)
            return MultiStep(out.spikes.to(x.dtype),
                             None if out.v is None else out.v.to(x.dtype),
                             type(out.state)(*(t.to(x.dtype) for t in out.state)))
        self._check_state(state, x.shape[1:])
        if x.shape[0] == 0:
            out = reference_run(self.functional.step, x, state, None, self.dt,
                                record_v=record_v)
            return out._replace(state=state if state is not None
                                else self.initial_state(x.new_zeros(x.shape[1:])))
        record = record_v or any(needs for _, needs, _ in self._observers)
        counted = any(w for _, _, w in self._observers)
        plan = self._plan(x, state)
        if plan is not None:
            out = run_planned(plan, x, state, record, counted)
        elif self._use_fused(x):
            if x.device.type != "cpu":
                check_tensor("x", x)
            # a fused function of a subclass need not know count_spikes unless asked
            count = {"count_spikes": True} if counted else {}
            out = type(self).fused(x, state, self.neuron_parameters(), self.dt,
                                   record_v=record, **count)
        else:
            check_tensor("x", x)
            out = reference_run(self.functional.step, x, state, self.neuron_parameters(),
                                self.dt, record_v=record)
        for fn, _, _ in self._observers:
            fn(self, out)
        return out if (record_v or out.v is None) else out._replace(v=None)

    def forward(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` of time-major input ``x``; see :meth:`run`."""
        return self.run(x, state).spikes

    def step(self, x_t: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """One step: ``x_t`` is ``[B, ...]``; returns ``(spikes_t, new_state)``."""
        check_tensor("x_t", x_t)
        check_min_ndim("x_t", x_t, 1, "[B, ...]")
        self._check_state(state, x_t.shape)
        return self.functional.step(x_t, state, self.neuron_parameters(), self.dt)

    def initial_state(self, x_t: torch.Tensor) -> Any:
        """Resting state shaped, placed and typed like one step ``x_t`` of input."""
        return self.functional.initial_state(x_t, self.neuron_parameters())

    def extra_repr(self) -> str:
        consts = ", ".join(f"{n}={_fmt(getattr(self, n))}" for n in self.time_constants)
        return (f"{consts}, dt={self.dt}, threshold={_fmt(self.threshold)}, "
                f"reset={self._static['reset']!r}, backend={self.backend!r}")


def _fmt(t: torch.Tensor) -> str:
    return f"{t.item():g}" if t.numel() == 1 else f"tensor{tuple(t.shape)}"
