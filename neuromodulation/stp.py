r"""Tsodyks-Markram short-term plasticity: facilitation and depression of transmission.

Each presynaptic neuron has a utilisation :math:`u` and a fraction of available
resources :math:`x` (dimensionless),

.. math::
    \frac{du}{dt} = -\frac{u}{\tau_f}, \qquad \frac{dx}{dt} = \frac{1 - x}{\tau_d},

and at a presynaptic spike

.. math::
    u \leftarrow u + U (1 - u), \qquad r = u\,x, \qquad x \leftarrow x - r,

in this order: the spike transmits :math:`r\,w` (the efficacy :math:`e = r` scales what
the neuron emits, :class:`~aura_snn.graph.plasticity.SynapseModel`). This is the
event-driven synapse of Brian2's Stimberg et al. (2018) COBA example
(``examples/frompapers/Stimberg_et_al_2018/example_1_COBA.py``). Brian2's user guide
writes the same model with :math:`\tilde u = U + (1 - U) u` (the utilisation after the
jump, relaxing to :math:`U` with :math:`\tau_f`): transmit :math:`w \tilde u x`, then
:math:`x \mathrel{*}= 1 - \tilde u`, :math:`\tilde u \mathrel{+}= U (1 - \tilde u)`; both
give the same efficacies (``tests/neuromodulation/test_stp_brian2.py`` runs both).

Per step :math:`t` (clock-driven, exact): :math:`u \leftarrow a_f u`, :math:`x \leftarrow
1 - a_d (1 - x)` with :math:`a = e^{-\Delta t/\tau}`, then the spike update gated by the
emitted :math:`y \in \{0, 1\}`: :math:`e = (u + U(1 - u))\,x`,
:math:`u \leftarrow u + yU(1 - u)`, :math:`x \leftarrow x - y\,e`. The state is held
after the step's spikes; it starts at rest, :math:`u = 0`, :math:`x = 1`. A graded
:math:`y` interpolates these updates linearly (a model choice, not biophysics).

Parameters: ``U`` utilisation increment, in (0, 1] (the release fraction of a rested
synapse); ``tau_f`` facilitation time constant (s; 0 switches facilitation off: every
spike uses :math:`U`); ``tau_d`` recovery (depression) time constant (s).
The state is per presynaptic neuron, ``[B, n_pre]``; each sample of a batch has its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from aura_snn._checks import check_in_range, check_nonnegative, check_positive
from aura_snn.errors import ParameterTypeError, ShapeError
from aura_snn.functional.traces import trace_decay
from aura_snn.graph.config_plasticity import params_from_table
from aura_snn.graph.plasticity import CompiledForm, SynapseModel


@dataclass(frozen=True)
class TsodyksMarkramParameters:
    """Tsodyks-Markram parameters (module docstring). Defaults: a depressing synapse.

    Attributes:
        U: utilisation increment, in (0, 1] (dimensionless).
        tau_f: facilitation time constant (s), >= 0 (0: no facilitation).
        tau_d: recovery time constant of the resources (s), > 0.
    """

    U: float = 0.5
    tau_f: float = 50e-3
    tau_d: float = 200e-3

    def __post_init__(self) -> None:
        check_in_range("U", self.U, 0.0, 1.0, low_inclusive=False)
        check_nonnegative("tau_f", self.tau_f)
        check_positive("tau_d", self.tau_d, "s")


class TsodyksMarkramState(NamedTuple):
    """``u`` utilisation and ``x`` available resources, ``[B, n_pre]`` (dimensionless),
    after the last step's spikes."""

    u: torch.Tensor
    x: torch.Tensor


def _decays(p: TsodyksMarkramParameters, dt: float) -> tuple[float, float]:
    """Per-step factors :math:`a_f` (0 without facilitation) and :math:`a_d` (``dt`` in s)."""
    a_f = 0.0 if p.tau_f == 0 else float(trace_decay(p.tau_f, dt))
    return a_f, float(trace_decay(p.tau_d, dt))


def tsodyks_markram_step(y: torch.Tensor, state: TsodyksMarkramState,
                         p: TsodyksMarkramParameters, dt: float
                         ) -> tuple[torch.Tensor, TsodyksMarkramState]:
    """One step (module docstring): returns the efficacy ``e`` ``[B, n_pre]`` a spike
    of this step transmits, and the new state. ``dt`` in s."""
    a_f, a_d = _decays(p, dt)
    u = a_f * state.u
    x = 1.0 - a_d * (1.0 - state.x)
    e = (u + p.U * (1.0 - u)) * x
    y = y.to(u.dtype)
    return e, TsodyksMarkramState(u + (y * p.U) * (1.0 - u), x - y * e)


class TsodyksMarkram(SynapseModel):
    """Tsodyks-Markram short-term plasticity on a projection (``synapse=`` of
    :meth:`~aura_snn.graph.Graph.connect`); module docstring for the equations."""

    def __init__(self, params: TsodyksMarkramParameters | None = None) -> None:
        params = TsodyksMarkramParameters() if params is None else params
        if not isinstance(params, TsodyksMarkramParameters):
            raise ParameterTypeError(f"params of TsodyksMarkram must be "
                                     f"TsodyksMarkramParameters, got {type(params).__name__}")
        self.params = params

    @classmethod
    def from_config(cls, table: dict[str, Any], projection: Any) -> TsodyksMarkram:
        """The synapse model of a ``plasticity`` table with ``rule = "stp"``: ``U`` (a
        plain fraction), ``tau_f`` and ``tau_d`` (s or ``"50 ms"``). Raises
        ``FieldError`` naming the key; it fits any projection (state per presynaptic
        neuron)."""
        return cls(params_from_table(TsodyksMarkramParameters, table,
                                     {"U": None, "tau_f": "time", "tau_d": "time"}))

    def compiled(self, projection: Any, dt: float) -> CompiledForm:
        """The model for the compiled engine (kind ``"tsodyks_markram"``; the decays
        are :func:`tsodyks_markram_step`'s, ``dt`` in s)."""
        a_f, a_d = _decays(self.params, dt)
        return CompiledForm("tsodyks_markram", {"U": self.params.U, "a_f": a_f, "a_d": a_d},
                            ("u", "x"))

    def initial_state(self, n_pre: int, batch: int, device: torch.device,
                      dtype: torch.dtype) -> TsodyksMarkramState:
        """At rest: :math:`u = 0`, :math:`x = 1`."""
        return TsodyksMarkramState(torch.zeros(batch, n_pre, device=device, dtype=dtype),
                                   torch.ones(batch, n_pre, device=device, dtype=dtype))

    def step(self, y: torch.Tensor, state: TsodyksMarkramState, dt: float
             ) -> tuple[torch.Tensor, TsodyksMarkramState]:
        """Efficacy and new state for the emitted ``y`` ``[B, n_pre]`` (``dt`` in s)."""
        if y.shape != state.u.shape:
            raise ShapeError(f"TsodyksMarkram: presynaptic output of shape {tuple(y.shape)} "
                             f"does not fit its state {tuple(state.u.shape)}")
        return tsodyks_markram_step(y, state, self.params, dt)


__all__ = ["TsodyksMarkram", "TsodyksMarkramParameters", "TsodyksMarkramState",
           "tsodyks_markram_step"]
