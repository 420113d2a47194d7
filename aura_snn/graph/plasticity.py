r"""The plasticity socket of a projection: rules and synapse models, with state in the graph.

Rules follow the neuron pattern: parameters in a frozen dataclass, state in a
``NamedTuple``, and a pure update. After every step :math:`t` of the torch stepper,
each rule of a projection is called under ``torch.no_grad()`` as

.. code-block:: python

    dw, state = rule.update(activity, w, state, dt, modulators)

with

* ``activity``: a :class:`SynapseActivity` — the presynaptic activity *at the
  synapse* (what the presynaptic region emitted :math:`1 + d` steps earlier, or this
  step for a same-step edge), the postsynaptic output of step :math:`t`, and the
  projection's traces when enabled;
* ``w``: the effective weights (learned + plastic, sign-clamped), shaped like
  ``projection.weight`` (``[n_pre, n_post]`` dense, ``[nnz]`` sparse);
* ``state``: the rule's state, kept in :class:`~aura_snn.graph.state.GraphState`
  (saved, reset, detached and resumed with the neurons), ``None`` if it has none;
* ``dt`` (s) and ``modulators``: ``{name: tensor}`` of this step (scalars or
  ``[B]``), as given to :meth:`~aura_snn.graph.Graph.run`.

``dw`` is a weight change with a leading batch axis (``[B, *weight.shape]``), reduced
over the batch by the rule's declared ``batch_reduction`` (``"mean"`` or ``"sum"``),
or already weight-shaped when it is ``"none"``; ``None`` means no change. The graph
adds it to the projection's plastic buffer (:meth:`~aura_snn.graph.projection.
Projection.apply_update`), never to the learned ``Parameter``: the effective weight is
:math:`W = W_\text{learned} + W_\text{plastic}`, so gradients through time stay right
(:math:`\partial W / \partial W_\text{learned} = 1` in every step).

A synapse model (:class:`SynapseModel`, e.g. short-term plasticity) scales what each
presynaptic neuron transmits: :math:`y'_{\text{pre}}[t] = e[t] \odot y_\text{pre}[t]`
with an efficacy :math:`e` from its own state, stepped at emission.

**Compiled forms.** The compiled engine (:mod:`aura_snn.graph.engine`) cannot call
Python each step. A rule or synapse model that it may run itself says so through
``compiled(projection, dt)``, returning a :class:`CompiledForm`: one kind of
:data:`COMPILED_KINDS` (the engine's table; each kind is an equation the engine
implements event by event, ``aura_snn/graph/_plastic_kernels.py``), the kind's numbers
and which fields of the rule's state hold its traces. ``None`` (the default) keeps the
rule on the torch stepper, which calls any rule or callable.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch

from .._checks import check_choice

REDUCTIONS = ("mean", "sum", "none")

#: What the compiled engine can run itself: kind -> the numbers of its
#: :attr:`CompiledForm.values` (decays ``a = exp(-dt / tau)`` per step, dimensionless;
#: amplitudes and bounds in weight units; flags 0.0 or 1.0).
#:
#: * ``"pair_stdp"``: pair STDP (:mod:`neuromodulation.stdp`), pre trace ``a_pre``,
#:   post trace ``a_post``; ``multiplicative`` soft bounds; ``nearest`` pairing.
#: * ``"triplet_stdp"``: triplet STDP (Pfister & Gerstner 2006), pre traces ``r1, r2``
#:   (decays ``a_r1, a_r2``), post traces ``o1, o2`` (``a_o1, a_o2``).
#: * ``"tsodyks_markram"``: a synapse model (:mod:`neuromodulation.stp`): utilisation
#:   ``u`` (decay ``a_f``) and resources ``x`` (recovering with ``a_d``), increment ``U``.
COMPILED_KINDS: dict[str, tuple[str, ...]] = {
    "pair_stdp": ("a_plus", "a_minus", "a_pre", "a_post", "w_min", "w_max",
                  "multiplicative", "nearest"),
    "triplet_stdp": ("a2_plus", "a3_plus", "a2_minus", "a3_minus", "a_r1", "a_r2", "a_o1",
                     "a_o2", "w_min", "w_max", "nearest"),
    "tsodyks_markram": ("U", "a_f", "a_d"),
}


class CompiledForm(NamedTuple):
    """A rule or synapse model in the compiled engine's terms (module docstring).

    Attributes:
        kind: a key of :data:`COMPILED_KINDS`.
        values: ``{name: number}`` for exactly the names the kind lists.
        pre_fields: state fields holding presynaptic traces (or, for a synapse model,
            its per-presynaptic-neuron state), in the kind's order.
        post_fields: state fields holding postsynaptic traces ``[B, n_post]``.
    """

    kind: str
    values: Mapping[str, float]
    pre_fields: tuple[str, ...] = ()
    post_fields: tuple[str, ...] = ()


class Traces(NamedTuple):
    """Pre and post traces of a projection, ``[B, n_pre]`` and ``[B, n_post]``
    (:mod:`aura_snn.functional.traces`; the pre trace is fed at the synapse)."""

    pre: torch.Tensor
    post: torch.Tensor


class SynapseActivity(NamedTuple):
    """What a rule sees in one step.

    Attributes:
        pre: ``[B, n_pre]`` presynaptic activity at the synapses (after the delay);
            with per-synapse delays use :attr:`pre_syn`.
        post: ``[B, n_post]`` postsynaptic output of this step.
        pre_syn: ``[B, nnz]`` activity at each synapse (sparse projections), or
            ``[B, n_pre, n_post]`` (dense projections with per-synapse delays), else
            ``None`` (uniform delay: read :attr:`pre`).
        traces: the projection's :class:`Traces` after this step, or ``None``.
        t: absolute step index.
    """

    pre: torch.Tensor
    post: torch.Tensor
    pre_syn: torch.Tensor | None
    traces: Traces | None
    t: int


class PlasticityRule(abc.ABC):
    """Base class of plasticity rules (module docstring).

    Attributes:
        params: the rule's frozen parameter dataclass (or ``None``).
        batch_reduction: ``"mean"``, ``"sum"`` (over a leading batch axis of ``dw``) or
            ``"none"`` (``dw`` is already weight-shaped).
    """

    batch_reduction: str = "mean"

    def __init__(self, params: Any = None) -> None:
        self.params = params
        check_choice("batch_reduction", self.batch_reduction, REDUCTIONS)

    def initial_state(self, projection: Any, batch: int, device: torch.device,
                      dtype: torch.dtype) -> Any:
        """The rule's state before any step (a ``NamedTuple`` of tensors, or ``None``)."""
        return None

    def synapse_fields(self, projection: Any) -> tuple[str, ...] | None:
        """Names of the state fields holding one entry per synapse (last axis ``nnz``),
        which :meth:`~aura_snn.graph.Graph.rewire` carries along with their synapses.
        ``None`` (the default) lets ``rewire`` infer them from shapes, which it refuses
        to do where a neuron axis of the projection has the same length as ``nnz``."""
        return None

    def compiled(self, projection: Any, dt: float) -> CompiledForm | None:
        """The rule in the compiled engine's terms, or ``None`` (the default: the torch
        stepper runs it); ``dt`` in s."""
        return None

    @abc.abstractmethod
    def update(self, activity: SynapseActivity, w: torch.Tensor, state: Any, dt: float,
               modulators: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor | None, Any]:
        """Return ``(dw, new_state)`` for one step (module docstring)."""


class CallableRule(PlasticityRule):
    """Adapter for the callable form ``fn(projection, pre, post, traces) -> dw``:
    ``pre`` is the activity at the synapse (after the delay), ``dw`` weight-shaped."""

    batch_reduction = "none"

    def __init__(self, fn: Callable[..., torch.Tensor | None], projection: Any) -> None:
        super().__init__()
        self.fn, self.projection = fn, projection

    def update(self, activity: SynapseActivity, w: torch.Tensor, state: Any, dt: float,
               modulators: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor | None, Any]:
        return self.fn(self.projection, activity.pre, activity.post, activity.traces), None


class SynapseModel(abc.ABC):
    """A synapse with state (e.g. Tsodyks-Markram short-term plasticity): each step it
    maps the presynaptic output ``y`` ``[B, n_pre]`` to the efficacy ``e`` ``[B, n_pre]``
    that scales what is transmitted, and advances its state (at emission)."""

    def initial_state(self, n_pre: int, batch: int, device: torch.device,
                      dtype: torch.dtype) -> Any:
        return None

    def compiled(self, projection: Any, dt: float) -> CompiledForm | None:
        """The model in the compiled engine's terms, or ``None`` (the default: the torch
        stepper runs it); ``dt`` in s."""
        return None

    @abc.abstractmethod
    def step(self, y: torch.Tensor, state: Any, dt: float) -> tuple[torch.Tensor, Any]:
        """Return ``(efficacy, new_state)``; ``dt`` in s."""


def reduce_batch(dw: torch.Tensor, reduction: str, weight_shape: torch.Size) -> torch.Tensor:
    """``dw`` reduced over its leading batch axis as the rule declared."""
    if reduction == "none":
        return dw
    if dw.dim() != len(weight_shape) + 1:
        from ..errors import ShapeError

        raise ShapeError(f"a rule with batch_reduction={reduction!r} returns dw of shape "
                         f"[B, {', '.join(map(str, weight_shape))}], got {tuple(dw.shape)}")
    return dw.mean(0) if reduction == "mean" else dw.sum(0)


__all__ = ["COMPILED_KINDS", "CallableRule", "CompiledForm", "PlasticityRule", "REDUCTIONS",
           "SynapseActivity", "SynapseModel", "Traces", "reduce_batch"]
