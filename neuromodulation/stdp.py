r"""Spike-timing-dependent plasticity: pair rules (additive, multiplicative; all-to-all,
nearest) and the triplet rule of Pfister & Gerstner (2006).

**Pair rule.** Dimensionless traces, a presynaptic :math:`x` (``tau_plus``) and a
postsynaptic :math:`y` (``tau_minus``), jump at each spike (all-to-all: :math:`x
\mathrel{+}= 1`; nearest: :math:`x = 1`) and decay in between,
:math:`\tau\,\dot x = -x`. A presynaptic spike depresses, a postsynaptic spike
potentiates:

.. math::
    \text{on pre: } w \leftarrow \text{clip}(w - A_-\,f_-(w)\,y), \qquad
    \text{on post: } w \leftarrow \text{clip}(w + A_+\,f_+(w)\,x)

with :math:`f_\pm = 1` (``"additive"``) or the soft bounds :math:`f_+ = w_\max - w`,
:math:`f_- = w - w_\min` (``"multiplicative"``), and clip to :math:`[w_\min, w_\max]`.
A single pair, pre at :math:`t_\text{pre}`, post at :math:`t_\text{post} = t_\text{pre}
+ \Delta t`, gives :math:`A_+ e^{-\Delta t/\tau_+}` for :math:`\Delta t \ge 0` and
:math:`-A_- e^{\Delta t/\tau_-}` for :math:`\Delta t < 0` (additive). Nearest pairing
(trace reset) is the symmetric nearest-spike scheme: each spike pairs with the latest
spike of the other side only.

**Triplet rule** (Pfister & Gerstner 2006, eqs. 2-3): presynaptic traces :math:`r_1`
(``tau_plus``), :math:`r_2` (``tau_x``), postsynaptic :math:`o_1` (``tau_minus``),
:math:`o_2` (``tau_y``), with the same jumps,

.. math::
    \text{on pre: } w \leftarrow \text{clip}(w - o_1 [A_2^- + A_3^- r_2(t-\epsilon)]),
    \qquad
    \text{on post: } w \leftarrow \text{clip}(w + r_1 [A_2^+ + A_3^+ o_2(t-\epsilon)])

(:math:`t - \epsilon`: before the trace's own jump). The "minimal" models of the paper
are parameter sets with :math:`A_2^+ = 0` and/or :math:`A_3^- = 0`; the nearest-spike
versions use ``pairing="nearest"``.

**Order within a step** :math:`t` (the rule runs after the step's regions; ``pre`` is the
presynaptic activity at the synapse, ``post`` the postsynaptic spikes of step :math:`t`):

1. every trace decays by :math:`a = e^{-\Delta t/\tau}`;
2. synapses whose presynaptic neuron spiked are depressed, reading the decayed
   postsynaptic traces (which do not yet include the spikes of step :math:`t`), clipped;
   then the presynaptic traces jump;
3. synapses whose postsynaptic neuron spiked are potentiated from the weights of 2,
   reading the presynaptic traces *with* the jumps of step :math:`t` (a simultaneous
   pair potentiates, :math:`\Delta t = 0`), clipped; then the postsynaptic traces jump.

This is Brian2's order for ``Synapses(on_pre=..., on_post=...)`` with event-driven (or
clock-driven exact) traces: both pathways run in the ``synapses`` slot, ``pre`` (order
-1) before ``post`` (order 1), and each updates its traces from the last update first.
A graph hands the rule a presynaptic spike when it *arrives* at the synapse, step
:math:`t_\text{emit} + 1 + d` (:mod:`aura_snn.graph.projection`), while Brian2 runs
``on_pre`` at :math:`t_\text{emit} + D`. So a same-step edge is Brian2's zero-delay
``on_pre``, and a delayed edge is Brian2 with the plasticity in its own pathway at delay
``d + 1`` steps, ordered after the transmitting one (delay ``d``). For ``d = 0`` that
holds spike for spike in a closed loop; for ``d > 0`` the graph transmits with the
weights of the emission step (its ring holds currents) where Brian2 reads them on
arrival, so there only the plasticity timing is Brian2's
(``tests/neuromodulation/test_stdp_brian2.py`` runs each case against Brian2).

**Batch.** The socket keeps one weight per synapse, shared by the batch. Each sample
``b`` computes its own new weight :math:`w_b` from the shared :math:`w` with its own
traces (state ``[B, ...]``); the projection receives the mean change
:math:`\frac{1}{B}\sum_b (w_b - w)` (``batch_reduction = "mean"``), which stays inside the
bounds because each :math:`w_b` does. :math:`B = 1` is Brian2's single network.

Units: ``tau_*`` and ``dt`` in s; ``w_min``, ``w_max`` and the additive amplitudes in
the unit of the weight (V for the voltage-like inputs of :mod:`aura_snn.functional`);
multiplicative amplitudes are dimensionless (fraction of the distance to the bound).
Brian2's ``dApost`` (negative) is :math:`-A_-` here: amplitudes are magnitudes >= 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from aura_snn._checks import check_choice
from aura_snn.graph.config_plasticity import check_weights_in_bounds, params_from_table
from aura_snn.graph.plasticity import CompiledForm

from ._traces import (
    TraceRule,
    advance,
    at_post,
    at_pre,
    check_amplitude,
    check_bounds,
    check_pairing,
    check_tau,
    decays,
)

WEIGHT_DEPENDENCES = ("additive", "multiplicative")


@dataclass(frozen=True)
class PairSTDPParameters:
    """Pair STDP (module docstring). Defaults: Song, Miller & Abbott (2000) as in
    Brian2's STDP example, in units of ``w_max`` (``a_minus = 1.05 a_plus``).

    Attributes:
        a_plus: potentiation amplitude :math:`A_+` (>= 0; weight units, or fraction).
        a_minus: depression amplitude :math:`A_-` (>= 0; weight units, or fraction).
        tau_plus: presynaptic trace time constant :math:`\\tau_+` (s).
        tau_minus: postsynaptic trace time constant :math:`\\tau_-` (s).
        w_min, w_max: weight bounds (weight units), ``w_min <= w_max``.
        weight_dependence: ``"additive"`` or ``"multiplicative"`` (soft bounds).
        pairing: ``"all_to_all"`` (traces add up) or ``"nearest"`` (traces reset to 1).
    """

    a_plus: float = 0.01
    a_minus: float = 0.0105
    tau_plus: float = 20e-3
    tau_minus: float = 20e-3
    w_min: float = 0.0
    w_max: float = 1.0
    weight_dependence: str = "additive"
    pairing: str = "all_to_all"

    def __post_init__(self) -> None:
        check_amplitude("a_plus", self.a_plus)
        check_amplitude("a_minus", self.a_minus)
        check_tau("tau_plus", self.tau_plus)
        check_tau("tau_minus", self.tau_minus)
        check_bounds(self.w_min, self.w_max)
        check_choice("weight_dependence", self.weight_dependence, WEIGHT_DEPENDENCES)
        check_pairing(self.pairing)


class PairSTDPState(NamedTuple):
    """Traces of a pair rule: ``x_pre`` (layout of :mod:`._traces`), ``x_post``
    ``[B, n_post]`` (dimensionless), and ``post_idx`` (sparse projections)."""

    x_pre: torch.Tensor
    x_post: torch.Tensor
    post_idx: torch.Tensor


@dataclass(frozen=True)
class TripletSTDPParameters:
    """Triplet STDP (module docstring). Defaults: Pfister & Gerstner (2006), Table 4,
    visual cortex, all-to-all, full model (dimensionless amplitudes, ``w`` in [0, 1]).

    Attributes:
        a2_plus, a3_plus: pair and triplet potentiation amplitudes (>= 0).
        a2_minus, a3_minus: pair and triplet depression amplitudes (>= 0).
        tau_plus, tau_x: presynaptic trace time constants of :math:`r_1`, :math:`r_2` (s).
        tau_minus, tau_y: postsynaptic trace time constants of :math:`o_1`, :math:`o_2` (s).
        w_min, w_max: weight bounds, ``w_min <= w_max``.
        pairing: ``"all_to_all"`` or ``"nearest"`` (traces saturate at 1).
    """

    a2_plus: float = 5e-10
    a3_plus: float = 6.2e-3
    a2_minus: float = 7e-3
    a3_minus: float = 2.3e-4
    tau_plus: float = 16.8e-3
    tau_minus: float = 33.7e-3
    tau_x: float = 101e-3
    tau_y: float = 125e-3
    w_min: float = 0.0
    w_max: float = 1.0
    pairing: str = "all_to_all"

    def __post_init__(self) -> None:
        for name in ("a2_plus", "a3_plus", "a2_minus", "a3_minus"):
            check_amplitude(name, getattr(self, name))
        for name in ("tau_plus", "tau_minus", "tau_x", "tau_y"):
            check_tau(name, getattr(self, name))
        check_bounds(self.w_min, self.w_max)
        check_pairing(self.pairing)


class TripletSTDPState(NamedTuple):
    """Traces of the triplet rule: ``r1``, ``r2`` (presynaptic layout), ``o1``, ``o2``
    ``[B, n_post]``, and ``post_idx`` (sparse projections)."""

    r1: torch.Tensor
    r2: torch.Tensor
    o1: torch.Tensor
    o2: torch.Tensor
    post_idx: torch.Tensor


def pair_stdp_step(w: torch.Tensor, pre: torch.Tensor, post: torch.Tensor,
                   state: PairSTDPState, p: PairSTDPParameters, dt: float
                   ) -> tuple[torch.Tensor, PairSTDPState]:
    """One step of pair STDP in the module's order; returns ``(w_new [B, *w.shape],
    state)``. ``w``: shared weights; ``pre``: spikes in the layout of ``state.x_pre``;
    ``post``: ``[B, n_post]`` spikes; ``dt`` in s."""
    a_pre, a_post = decays(dt, p.tau_plus, p.tau_minus)
    idx = state.post_idx
    y_old = at_post(a_post * state.x_post, w, idx)          # before this step's post
    s_pre = at_pre(pre.to(w.dtype), w)
    s_post = at_post(post.to(w.dtype), w, idx)
    additive = p.weight_dependence == "additive"
    # w - A- f-(w) y at presynaptic spikes (addcmul: one fused op on the hot path)
    dep = y_old if additive else (w - p.w_min) * y_old
    w1 = torch.addcmul(w, s_pre, dep, value=-p.a_minus).clamp_(p.w_min, p.w_max)
    x_pre = advance(state.x_pre, pre, a_pre, p.pairing)
    x = at_pre(x_pre, w)
    pot = x if additive else (p.w_max - w1) * x
    w2 = torch.addcmul(w1, s_post, pot, value=p.a_plus).clamp_(p.w_min, p.w_max)
    x_post = advance(state.x_post, post, a_post, p.pairing)
    return w2, PairSTDPState(x_pre, x_post, idx)


def triplet_stdp_step(w: torch.Tensor, pre: torch.Tensor, post: torch.Tensor,
                      state: TripletSTDPState, p: TripletSTDPParameters, dt: float
                      ) -> tuple[torch.Tensor, TripletSTDPState]:
    """One step of triplet STDP in the module's order (arguments as
    :func:`pair_stdp_step`)."""
    a_p, a_x, a_m, a_y = decays(dt, p.tau_plus, p.tau_x, p.tau_minus, p.tau_y)
    idx = state.post_idx
    o1_old = at_post(a_m * state.o1, w, idx)
    o2_old = at_post(a_y * state.o2, w, idx)
    r2_old = at_pre(a_x * state.r2, w)
    s_pre = at_pre(pre.to(w.dtype), w)
    s_post = at_post(post.to(w.dtype), w, idx)
    dep = o1_old * (p.a2_minus + p.a3_minus * r2_old)
    w1 = torch.addcmul(w, s_pre, dep, value=-1.0).clamp_(p.w_min, p.w_max)
    r1 = advance(state.r1, pre, a_p, p.pairing)
    r2 = advance(state.r2, pre, a_x, p.pairing)
    pot = at_pre(r1, w) * (p.a2_plus + p.a3_plus * o2_old)
    w2 = torch.addcmul(w1, s_post, pot).clamp_(p.w_min, p.w_max)
    o1 = advance(state.o1, post, a_m, p.pairing)
    o2 = advance(state.o2, post, a_y, p.pairing)
    return w2, TripletSTDPState(r1, r2, o1, o2, idx)


class PairSTDP(TraceRule):
    """Pair STDP as a plasticity rule (:func:`pair_stdp_step`; module docstring)."""

    _params_type = PairSTDPParameters
    _pre_fields = ("x_pre",)

    def initial_state(self, projection: Any, batch: int, device: torch.device,
                      dtype: torch.dtype) -> PairSTDPState:
        return PairSTDPState(*self._zeros(projection, batch, device, dtype))

    def _traces_of(self, state: PairSTDPState) -> tuple[torch.Tensor, torch.Tensor]:
        return state.x_pre, state.x_post

    def _step(self, w: torch.Tensor, pre: torch.Tensor, post: torch.Tensor,
              state: PairSTDPState, dt: float) -> tuple[torch.Tensor, PairSTDPState]:
        return pair_stdp_step(w, pre, post, state, self.params, dt)

    def compiled(self, projection: Any, dt: float) -> CompiledForm:
        """The rule for the compiled engine (kind ``"pair_stdp"``; the decays are
        :func:`pair_stdp_step`'s, ``dt`` in s)."""
        p = self.params
        a_pre, a_post = decays(dt, p.tau_plus, p.tau_minus)
        return CompiledForm("pair_stdp", {
            "a_plus": p.a_plus, "a_minus": p.a_minus, "a_pre": a_pre, "a_post": a_post,
            "w_min": p.w_min, "w_max": p.w_max,
            "multiplicative": float(p.weight_dependence == "multiplicative"),
            "nearest": float(p.pairing == "nearest")}, ("x_pre",), ("x_post",))

    @classmethod
    def from_config(cls, table: dict[str, Any], projection: Any) -> PairSTDP:
        """The rule of a network file's ``plasticity`` table (``rule = "stdp"``): the
        fields of :class:`PairSTDPParameters`, times in s or ``"20 ms"``, bounds and
        additive amplitudes in V or ``"0.1 mV"``, multiplicative amplitudes as plain
        fractions; ``projection``'s starting weights must lie in ``[w_min, w_max]``.
        Raises :class:`~aura_snn.graph.config_plasticity.FieldError` naming the key."""
        amp = None if table.get("weight_dependence") == "multiplicative" else "voltage"
        p = params_from_table(PairSTDPParameters, table, {
            "a_plus": amp, "a_minus": amp, "tau_plus": "time", "tau_minus": "time",
            "w_min": "voltage", "w_max": "voltage"})
        check_weights_in_bounds(projection, p.w_min, p.w_max)
        return cls(p)


class TripletSTDP(TraceRule):
    """Triplet STDP as a plasticity rule (:func:`triplet_stdp_step`; module docstring)."""

    _params_type = TripletSTDPParameters
    _pre_fields = ("r1", "r2")

    def initial_state(self, projection: Any, batch: int, device: torch.device,
                      dtype: torch.dtype) -> TripletSTDPState:
        r1, o1, idx = self._zeros(projection, batch, device, dtype)
        return TripletSTDPState(r1, r1.clone(), o1, o1.clone(), idx)

    def _traces_of(self, state: TripletSTDPState) -> tuple[torch.Tensor, torch.Tensor]:
        return state.r1, state.o1

    def _step(self, w: torch.Tensor, pre: torch.Tensor, post: torch.Tensor,
              state: TripletSTDPState, dt: float) -> tuple[torch.Tensor, TripletSTDPState]:
        return triplet_stdp_step(w, pre, post, state, self.params, dt)

    def compiled(self, projection: Any, dt: float) -> CompiledForm:
        """The rule for the compiled engine (kind ``"triplet_stdp"``; the decays are
        :func:`triplet_stdp_step`'s, ``dt`` in s)."""
        p = self.params
        a_r1, a_r2, a_o1, a_o2 = decays(dt, p.tau_plus, p.tau_x, p.tau_minus, p.tau_y)
        return CompiledForm("triplet_stdp", {
            "a2_plus": p.a2_plus, "a3_plus": p.a3_plus, "a2_minus": p.a2_minus,
            "a3_minus": p.a3_minus, "a_r1": a_r1, "a_r2": a_r2, "a_o1": a_o1, "a_o2": a_o2,
            "w_min": p.w_min, "w_max": p.w_max, "nearest": float(p.pairing == "nearest")},
            ("r1", "r2"), ("o1", "o2"))

    @classmethod
    def from_config(cls, table: dict[str, Any], projection: Any) -> TripletSTDP:
        """The rule of a ``plasticity`` table with ``rule = "triplet"``: the fields of
        :class:`TripletSTDPParameters`, times in s or ``"16.8 ms"``, amplitudes and
        bounds in weight units (V or ``"0.1 mV"``); ``projection``'s starting weights
        must lie in ``[w_min, w_max]``. Raises ``FieldError`` naming the key."""
        units: dict[str, str | None] = {k: "time" for k in ("tau_plus", "tau_minus",
                                                              "tau_x", "tau_y")}
        units.update({k: "voltage" for k in ("a2_plus", "a3_plus", "a2_minus", "a3_minus",
                                              "w_min", "w_max")})
        p = params_from_table(TripletSTDPParameters, table, units)
        check_weights_in_bounds(projection, p.w_min, p.w_max)
        return cls(p)


__all__ = ["PairSTDP", "PairSTDPParameters", "PairSTDPState", "TripletSTDP",
           "TripletSTDPParameters", "TripletSTDPState", "WEIGHT_DEPENDENCES",
           "pair_stdp_step", "triplet_stdp_step"]
