r"""Where spike-timing rules keep their traces, and how a neuron's trace reaches a synapse.

A rule on a projection ``pre -> post`` keeps its presynaptic traces in the layout of
the activity it is given (:class:`~aura_snn.graph.plasticity.SynapseActivity`):

====================================== ============================ ====================
projection                             presynaptic trace             postsynaptic trace
====================================== ============================ ====================
dense, one delay (or same-step)        ``[B, n_pre]`` (per neuron)   ``[B, n_post]``
dense, per-synapse delays              ``[B, n_pre, n_post]``        ``[B, n_post]``
sparse (any delays)                    ``[B, nnz]`` (per synapse)    ``[B, n_post]``
====================================== ============================ ====================

and reads a neuron-level vector at the synapses by broadcasting (dense:
``x[:, :, None]``, ``y[:, None, :]``) or by the projection's ``post_idx`` (sparse:
``y[:, post_idx]``). The index is kept in the rule's state (an int64 field), so that
:meth:`~aura_snn.graph.Graph.rewire` moves it with its synapse and a saved state
carries it; dense projections keep an empty index.

:class:`TraceRule` is the plumbing the rules of :mod:`neuromodulation.stdp` share (state
at rest, the rule's bounds handed to the projection, shape checks). Traces themselves
follow :mod:`aura_snn.functional.traces`, the one place of their equation:
:math:`x \leftarrow a x + s` (all-to-all) or :math:`x \leftarrow s + (1 - s) a x`
(nearest), :math:`a = e^{-\Delta t/\tau}` (``tau``, ``dt`` in s).
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Mapping
from typing import Any

import torch

from aura_snn._checks import check_choice, check_finite_param, check_nonnegative, check_positive
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.functional.traces import TRACE_MODES, trace_decay, trace_step
from aura_snn.graph.plasticity import PlasticityRule, SynapseActivity

PAIRINGS = TRACE_MODES          # ("all_to_all", "nearest")


def pre_trace_shape(projection: Any, batch: int) -> tuple[int, ...]:
    """Shape of a presynaptic trace on ``projection`` (module table)."""
    if projection.sparse:
        return (batch, projection.nnz)
    if projection.uniform_delay or projection.same_step:
        return (batch, projection.n_pre)
    return (batch, projection.n_pre, projection.n_post)


def synapse_index(projection: Any, device: torch.device) -> torch.Tensor:
    """``post_idx`` of a sparse projection (int64 ``[nnz]``); empty for a dense one."""
    if projection.sparse:
        return projection.post_idx.detach().to(device=device, dtype=torch.int64).clone()
    return torch.zeros(0, dtype=torch.int64, device=device)


def pre_activity(activity: Any) -> torch.Tensor:
    """The presynaptic activity in the layout of the presynaptic trace: ``pre_syn`` when
    the socket gives one (sparse, or per-synapse delays), else ``pre``."""
    return activity.pre if activity.pre_syn is None else activity.pre_syn


def at_pre(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A presynaptic quantity at the synapses of weights ``w``: ``[B, n_pre]`` becomes
    ``[B, n_pre, 1]`` for dense ``w``; per-synapse ones are returned as they are."""
    return x[:, :, None] if w.dim() == 2 and x.dim() == 2 else x


def at_post(y: torch.Tensor, w: torch.Tensor, post_idx: torch.Tensor) -> torch.Tensor:
    """A postsynaptic ``[B, n_post]`` quantity at the synapses: ``[B, 1, n_post]``
    (dense ``w``) or ``y[:, post_idx]`` ``[B, nnz]`` (sparse ``w``)."""
    return y[:, None, :] if w.dim() == 2 else y[:, post_idx]


def decays(dt: float, *taus: float) -> tuple[float, ...]:
    """Per-step factors :math:`e^{-\\Delta t/\\tau}` of the given ``taus`` (s); memoised
    (a rule asks every step with the same numbers)."""
    check_positive("dt", dt, "s")
    return _decays(float(dt), *(float(tau) for tau in taus))


@functools.lru_cache(maxsize=256)
def _decays(dt: float, *taus: float) -> tuple[float, ...]:
    return tuple(float(trace_decay(tau, dt)) for tau in taus)


def advance(x: torch.Tensor, s: torch.Tensor, a: float, pairing: str) -> torch.Tensor:
    """Decay trace ``x`` by ``a`` and add the spikes ``s`` (:func:`~aura_snn.functional.
    traces.trace_step`; ``pairing`` is its ``mode``)."""
    return trace_step(x, s.to(x.dtype), a, pairing)


def check_tau(name: str, value: float) -> None:
    """A time constant (s): finite and > 0."""
    check_positive(name, value, "s")


def check_amplitude(name: str, value: float) -> None:
    """A learning amplitude: a finite magnitude >= 0 (its sign is the rule's)."""
    check_nonnegative(name, value)


def check_bounds(w_min: float, w_max: float) -> None:
    """Finite weight bounds with ``w_min <= w_max``."""
    check_finite_param("w_min", w_min)
    check_finite_param("w_max", w_max)
    if w_min > w_max:
        raise ParameterError(f"w_min must be <= w_max, got w_min={w_min!r} and "
                             f"w_max={w_max!r}")


def check_pairing(value: str) -> str:
    """``"all_to_all"`` (traces add 1 per spike) or ``"nearest"`` (reset to 1)."""
    return check_choice("pairing", value, PAIRINGS)


class TraceRule(PlasticityRule):
    """Base of the trace-based rules: checked parameters, traces at rest, shape checks,
    ``dw = w_new - w`` with one row per sample (``batch_reduction = "mean"``).

    A subclass sets ``_params_type`` and defines ``initial_state`` (from :meth:`_zeros`),
    ``_traces_of(state) -> (pre trace, post trace)`` and ``_step(w, pre, post, state, dt)
    -> (w_new, state)``."""

    batch_reduction = "mean"
    _params_type: type = object
    _pre_fields: tuple[str, ...] = ()   # state fields in the presynaptic-trace layout

    def __init__(self, params: Any = None) -> None:
        params = self._params_type() if params is None else params
        if not isinstance(params, self._params_type):
            raise ParameterTypeError(f"params of {type(self).__name__} must be "
                                     f"{self._params_type.__name__}, got "
                                     f"{type(params).__name__}")
        super().__init__(params)

    def _zeros(self, projection: Any, batch: int, device: torch.device, dtype: torch.dtype
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Traces at rest; hands the rule's bounds to a projection that has none, so that
        the socket's clamp (:meth:`~aura_snn.graph.projection.Projection.apply_update`)
        also holds after the change is added to the plastic part in floating point."""
        if getattr(projection, "w_min", 0.0) is None:
            projection.w_min = self.params.w_min
        if getattr(projection, "w_max", 0.0) is None:
            projection.w_max = self.params.w_max
        pre = torch.zeros(pre_trace_shape(projection, batch), device=device, dtype=dtype)
        post = torch.zeros(batch, projection.n_post, device=device, dtype=dtype)
        return pre, post, synapse_index(projection, device)

    def synapse_fields(self, projection: Any) -> tuple[str, ...]:
        """On a sparse projection the presynaptic traces and ``post_idx`` are per synapse
        (:meth:`aura_snn.graph.Graph.rewire` moves them); dense ones have none."""
        return (*self._pre_fields, "post_idx") if projection.sparse else ()

    @abc.abstractmethod
    def _traces_of(self, state: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(presynaptic trace, postsynaptic trace)`` of ``state``."""

    @abc.abstractmethod
    def _step(self, w: torch.Tensor, pre: torch.Tensor, post: torch.Tensor, state: Any,
              dt: float) -> tuple[torch.Tensor, Any]:
        """``(w_new, state)`` after one step (the subclass's rule)."""

    def update(self, activity: SynapseActivity, w: torch.Tensor, state: Any, dt: float,
               modulators: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        """``dw [B, *w.shape]`` of one step: ``_step`` on the activity in the traces' layout."""
        pre, post = pre_activity(activity), activity.post
        x_pre, x_post = self._traces_of(state)
        if pre.shape != x_pre.shape or post.shape != x_post.shape:
            raise ShapeError(f"{type(self).__name__}: activity pre {tuple(pre.shape)} / post "
                             f"{tuple(post.shape)} does not fit its traces "
                             f"{tuple(x_pre.shape)} / {tuple(x_post.shape)}")
        w_new, state = self._step(w, pre, post, state, dt)
        return w_new - w, state


__all__ = ["PAIRINGS", "TraceRule", "advance", "at_post", "at_pre", "check_amplitude",
           "check_bounds", "check_pairing", "check_tau", "decays", "pre_activity",
           "pre_trace_shape", "synapse_index"]
