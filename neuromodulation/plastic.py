r"""``PlasticLinear``: differentiable plasticity and Backpropamine as a synaptic layer.

The layer's effective weight is a slow part trained by backpropagation plus a fast
Hebbian part that the forward pass itself writes (Miconi et al. 2018, 2019):

.. math::
    W^\text{eff}_b(t) = W + \alpha \odot H_b(t), \qquad
    i_b(t) = x_b(t)\, W^\text{eff}_b(t) \;(+\, \text{bias})

with :math:`W`, :math:`\alpha` (and :math:`\eta`) ``nn.Parameter``\ s and the trace
:math:`H_b` updated after each step from the presynaptic activity :math:`x_b(t)` and
the postsynaptic answer :math:`y_b(t)` by the rule of :mod:`neuromodulation._hebb`
(``"hebb"``, ``"clip"``, ``"oja"``, or neuromodulated by a signal :math:`M(t)` the
network outputs). Gradients flow through :math:`H` across all steps of an episode.

Batch: by default element :math:`b` of a batch is its own episode with its own trace
:math:`H_b` ``[in, out]``; batch elements never mix (``tests/neuromodulation/
test_plastic.py`` checks that each equals its episode run alone). With
``shared_trace=True`` the batch is one episode seen through B parallel streams: one
trace ``[in, out]`` moved by the batch mean of the rule's increment (and ~10x less
work per step). Episodes start at :meth:`PlasticLinear.reset_trace` (or
``state=None``); the state belongs to the caller.

The postsynaptic unit ``post`` of :meth:`PlasticLinear.run` is ``None`` (linear: the
current itself), any tensor function (``torch.tanh``, ``nn.ReLU()``), or an
:mod:`aura_snn` spiking neuron (``LIF``, ``CubaLIF``, ``ALIF``), run one step at a time
through its own backend (the fused kernels on CPU and CUDA), its spikes being
:math:`y`. For a recurrent layer (pre = the units' previous output), call
:meth:`~PlasticLinear.current` and :meth:`~PlasticLinear.update` in your own loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from aura_snn._checks import check_choice, check_finite_param, check_int, check_tensor
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.neurons.base import SpikingNeuron

from ._hebb import RULES, PlasticState, hebbian_update, modulated_update, plastic_current
from ._hebb_fused import FusedEpisodes, neuron_coefficients

Post = Callable[[torch.Tensor], torch.Tensor] | SpikingNeuron | None


class PlasticRun(NamedTuple):
    """Result of :meth:`PlasticLinear.run`.

    Attributes:
        output: ``[T, B, out]`` postsynaptic activity :math:`y` (spikes for a neuron).
        state: the :class:`~neuromodulation._hebb.PlasticState` after the last step.
        post_state: the neuron's state after the last step (``None`` for a rate unit).
    """

    output: torch.Tensor
    state: PlasticState
    post_state: Any


class PlasticLinear(nn.Module):
    r"""Synaptic layer with a slow learned weight and a fast Hebbian trace.

    Equations: module docstring and :mod:`neuromodulation._hebb`.

    Args:
        in_features, out_features: :math:`N` presynaptic and :math:`M` postsynaptic units.
        rule: ``"hebb"`` (default; :math:`H \leftarrow (1-\eta)H + \eta x \otimes y`,
            Miconi 2018), ``"clip"`` (:math:`\mathrm{clip}(H + \eta x \otimes y, -c,
            c)`) or ``"oja"``. With ``modulated=True`` the only rule is ``"clip"`` with
            :math:`M(t)` in place of :math:`\eta` (Miconi 2019).
        eta: :math:`\eta` per step (dimensionless), finite and >= 0; in ``"hebb"`` and
            the eligibility trace it is a decay rate, so in [0, 1]. Not clamped when
            learned.
        learn_eta: make :math:`\eta` an ``nn.Parameter`` (else a buffer).
        alpha_init: initial :math:`\alpha` (current per unit of activity): a float for
            every synapse, or an ``[in, out]`` tensor. ``0`` with ``learn_alpha=False``
            switches plasticity off.
        learn_alpha: make :math:`\alpha` an ``nn.Parameter``.
        clip: :math:`c` > 0, bound of :math:`H` in ``"clip"`` and modulated rules.
        modulated: plasticity gated by a modulator ``M`` passed to each step (scalar,
            ``[B]`` or ``[B, out]``) instead of :math:`\eta`.
        retroactive: with ``modulated``, :math:`M` acts on an eligibility trace
            :math:`E \leftarrow (1-\eta)E + \eta x \otimes y` (Miconi 2019, sec. 3.2).
        bias: add a learned, non-plastic bias ``[out]``.
        shared_trace: one trace ``[in, out]`` for the whole batch, moved by the batch
            mean of the increment (retroactive: :math:`H + \bar M E`, :math:`\bar M` the
            batch mean of :math:`M`), instead of one ``[B, in, out]`` per episode.

    :math:`W` is initialised uniform in :math:`\pm 1/\sqrt{N}` (as ``nn.Linear``) and
    stored ``[in, out]`` (``x @ weight``, the transpose of ``nn.Linear.weight``).

    Shapes: ``run(x)``: ``x`` ``[T, B, in]`` -> ``output`` ``[T, B, out]``; ``hebb``
    ``[B, in, out]`` (``[in, out]`` shared); ``modulator`` ``[T]``, ``[T, B]`` or
    ``[T, B, out]``.

    Example::

        >>> layer = PlasticLinear(64, 32, rule="hebb", eta=0.1, alpha_init=0.5)
        >>> out = layer.run(torch.rand(20, 4, 64), post=torch.tanh)
        >>> out.output.shape, out.state.hebb.shape
        (torch.Size([20, 4, 32]), torch.Size([4, 64, 32]))
    """

    def __init__(self, in_features: int, out_features: int, *, rule: str | None = None,
                 eta: float = 0.01, learn_eta: bool = True,
                 alpha_init: float | torch.Tensor = 0.01, learn_alpha: bool = True,
                 clip: float = 1.0, modulated: bool = False, retroactive: bool = False,
                 bias: bool = False, shared_trace: bool = False) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features, 1)
        self.out_features = check_int("out_features", out_features, 1)
        for name, flag in (("learn_eta", learn_eta), ("learn_alpha", learn_alpha),
                           ("modulated", modulated), ("retroactive", retroactive),
                           ("bias", bias), ("shared_trace", shared_trace)):
            if not isinstance(flag, bool):
                raise ParameterTypeError(f"{name} must be a bool, got {flag!r}")
        if rule is None:
            rule = "clip" if modulated else "hebb"
        check_choice("rule", rule, ("clip",) if modulated else RULES)
        if retroactive and not modulated:
            raise ParameterError("retroactive=True needs modulated=True (the eligibility "
                                 "trace is turned into plasticity by the modulator)")
        check_finite_param("eta", eta)
        decays = rule == "hebb" or retroactive
        if not (0.0 <= float(eta) <= (1.0 if decays else math.inf)):
            allowed = "[0, 1]" if decays else ">= 0"
            raise ParameterError(f"eta must be {allowed} for rule={rule!r}"
                                 f"{' (retroactive)' if retroactive else ''}, got {eta!r}")
        if isinstance(clip, bool) or not (isinstance(clip, (int, float))
                                          and math.isfinite(clip) and clip > 0):
            raise ParameterError(f"clip must be a finite number > 0, got {clip!r}")
        self.rule, self.clip = rule, float(clip)
        self.modulated, self.retroactive = modulated, retroactive
        self.shared_trace = shared_trace
        n, m = self.in_features, self.out_features
        bound = 1.0 / math.sqrt(n)
        self.weight = nn.Parameter(torch.empty(n, m).uniform_(-bound, bound))
        self._store("alpha", self._alpha_tensor(alpha_init, n, m), learn_alpha)
        self._store("eta", torch.tensor(float(eta)), learn_eta)
        self.bias = nn.Parameter(torch.zeros(m)) if bias else None

    def _store(self, name: str, value: torch.Tensor, learnable: bool) -> None:
        """Learnable values are ``nn.Parameter``, fixed ones buffers (in ``state_dict``)."""
        if learnable:
            setattr(self, name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @staticmethod
    def _alpha_tensor(alpha_init: Any, n: int, m: int) -> torch.Tensor:
        if isinstance(alpha_init, torch.Tensor):
            if alpha_init.shape != (n, m):
                raise ShapeError(f"alpha_init must have shape {(n, m)} (in, out), got "
                                 f"{tuple(alpha_init.shape)}")
            check_tensor("alpha_init", alpha_init)
            return alpha_init.detach().to(torch.get_default_dtype()).clone()
        check_finite_param("alpha_init", alpha_init)
        return torch.full((n, m), float(alpha_init))

    # -- state ----------------------------------------------------------------------
    def reset_trace(self, batch: int, *, device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> PlasticState:
        """Zero traces for ``batch`` new episodes (``[batch, in, out]``, or one shared
        ``[in, out]``), on the layer's device and dtype unless given."""
        batch = check_int("batch", batch, 1)
        device = self.weight.device if device is None else device
        dtype = self.weight.dtype if dtype is None else dtype
        shape = (self.in_features, self.out_features)
        shape = shape if self.shared_trace else (batch, *shape)
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        return PlasticState(zeros, zeros.clone() if self.retroactive else None)

    def _check_state(self, state: PlasticState, x_t: torch.Tensor) -> None:
        if not isinstance(state, PlasticState):
            raise ParameterTypeError(f"state must be a PlasticState (from reset_trace), got "
                                     f"{type(state).__name__}")
        want = (self.in_features, self.out_features)
        want = want if self.shared_trace else (x_t.shape[0], *want)
        for name, t in [("hebb", state.hebb)] + (
                [("eligibility", state.eligibility)] if self.retroactive else []):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            if got != want:
                axes = "(in, out)" if self.shared_trace else "(batch, in, out)"
                raise ShapeError(f"state.{name} must have shape {want} {axes}, got {got}")

    # -- one step -------------------------------------------------------------------
    def current(self, x_t: torch.Tensor, state: PlasticState) -> torch.Tensor:
        r"""Current :math:`i = x_t (W + \alpha \odot H) + b` ``[B, out]`` of presynaptic
        activity ``x_t`` ``[B, in]``; the trace is not changed."""
        check_tensor("x_t", x_t, ndim=2)
        if x_t.shape[1] != self.in_features:
            raise ShapeError(f"x_t must have shape [B, {self.in_features}], got "
                             f"{tuple(x_t.shape)}")
        self._check_state(state, x_t)
        return self._current(x_t, state)

    def _current(self, x_t: torch.Tensor, state: PlasticState) -> torch.Tensor:
        dt = x_t.dtype
        i = plastic_current(x_t, self.weight.to(dt), self.alpha.to(dt), state.hebb)
        return i if self.bias is None else i + self.bias.to(dt)

    def update(self, state: PlasticState, pre: torch.Tensor, post: torch.Tensor,
               modulator: torch.Tensor | float | None = None) -> PlasticState:
        """The trace after one step with presynaptic ``pre`` ``[B, in]`` and postsynaptic
        ``post`` ``[B, out]`` activity; ``modulator`` (``M``: scalar, ``[B]`` or
        ``[B, out]``) is required when ``modulated`` and refused otherwise."""
        check_tensor("pre", pre, ndim=2)
        check_tensor("post", post, ndim=2)
        b = pre.shape[0]
        if pre.shape[1] != self.in_features or tuple(post.shape) != (b, self.out_features):
            raise ShapeError(f"pre must be [B, {self.in_features}] and post "
                             f"[B, {self.out_features}], got {tuple(pre.shape)} and "
                             f"{tuple(post.shape)}")
        self._check_state(state, pre)
        m = self._check_modulator(modulator, (b, self.out_features), pre)
        return self._update(state, pre, post, m)

    def _update(self, state: PlasticState, pre: torch.Tensor, post: torch.Tensor,
                m: torch.Tensor | None) -> PlasticState:
        eta = self.eta.to(pre.dtype)
        if self.modulated:
            return modulated_update(state, pre, post, m, eta=eta, clip=self.clip,
                                    retroactive=self.retroactive)
        return hebbian_update(state, pre, post, rule=self.rule, eta=eta, clip=self.clip)

    def _check_modulator(self, m: Any, step_shape: tuple[int, int],
                         like: torch.Tensor, lead: tuple[int, ...] = ()) -> torch.Tensor | None:
        """``m`` as a tensor of shape ``lead + ()``, ``lead + [B]`` or ``lead + [B, out]``."""
        if not self.modulated:
            if m is not None:
                raise ParameterError("modulator given to a layer built with "
                                     "modulated=False (plasticity runs at rate eta)")
            return None
        if m is None:
            raise ParameterError("modulator is required: the layer was built with "
                                 "modulated=True")
        if isinstance(m, (int, float)) and not isinstance(m, bool):
            m = torch.tensor(float(m))
        check_tensor("modulator", m)
        allowed = [lead, lead + step_shape[:1], lead + step_shape]
        if tuple(m.shape) not in allowed:
            raise ShapeError(f"modulator must have shape {' or '.join(map(str, allowed))}, "
                             f"got {tuple(m.shape)}")
        return m.to(device=like.device, dtype=like.dtype)

    def step(self, x_t: torch.Tensor, state: PlasticState | None = None, *,
             post: Post = None, post_state: Any = None,
             modulator: torch.Tensor | float | None = None
             ) -> tuple[torch.Tensor, PlasticState, Any]:
        """One step: current, postsynaptic answer ``y_t``, trace update. Returns
        ``(y_t [B, out], state, post_state)``."""
        if state is None:
            check_tensor("x_t", x_t, ndim=2)
            state = self.reset_trace(x_t.shape[0], device=x_t.device, dtype=x_t.dtype)
        y_t, post_state = _respond(post, self.current(x_t, state), post_state)
        return y_t, self.update(state, x_t, y_t, modulator), post_state

    # -- many steps -----------------------------------------------------------------
    def run(self, x: torch.Tensor, state: PlasticState | None = None, *, post: Post = None,
            post_state: Any = None, modulator: torch.Tensor | None = None) -> PlasticRun:
        """Run every step of time-major ``x`` ``[T, B, in]``; ``modulator`` ``[T]``,
        ``[T, B]`` or ``[T, B, out]`` when ``modulated``. See :class:`PlasticRun`."""
        check_tensor("x", x, ndim=3)
        T, b, n = x.shape
        if n != self.in_features:
            raise ShapeError(f"x must have shape [T, B, {self.in_features}], got "
                             f"{tuple(x.shape)}")
        state = self.reset_trace(b, device=x.device, dtype=x.dtype) if state is None else state
        self._check_state(state, x[0] if T else x.new_zeros(b, n))
        m = self._check_modulator(modulator, (b, self.out_features), x, (T,))
        fused = self._run_fused(x, state, post, post_state, m)
        if fused is not None:
            return fused
        ms = [None] * T if m is None else list(m.unbind(0))
        ys = []
        for x_t, m_t in zip(x.unbind(0), ms, strict=True):
            y_t, post_state = _respond(post, self._current(x_t, state), post_state)
            state = self._update(state, x_t, y_t, m_t)
            ys.append(y_t)
        out = torch.stack(ys) if ys else x.new_zeros(0, b, self.out_features)
        return PlasticRun(out, state, post_state)

    def _run_fused(self, x: torch.Tensor, state: PlasticState, post: Post, post_state: Any,
                   m: torch.Tensor | None) -> PlasticRun | None:
        """The whole episode in one compiled loop (:mod:`neuromodulation._hebb_fused`)
        where it applies: per-episode traces, rule ``"hebb"``/``"clip"`` or simple
        modulation, fused LIF/CubaLIF units on the CPU; else ``None``."""
        T, b, _ = x.shape
        if self.shared_trace or self.retroactive or self.rule == "oja" or T == 0:
            return None
        one_step = x.new_zeros(b, self.out_features)
        neuron = neuron_coefficients(post, one_step)
        if neuron is None:
            return None
        post._check_state(post_state, one_step.shape)
        st = post.initial_state(one_step) if post_state is None else post_state
        dt = x.dtype
        xw = x @ self.weight.to(dt)
        xw = (xw if self.bias is None else xw + self.bias.to(dt)).contiguous()
        eta, one = self.eta.to(dt), x.new_ones(())
        if m is not None:
            keep, c = one, one
            d = m.view(T, 1, 1) if m.dim() == 1 else (m.unsqueeze(-1) if m.dim() == 2 else m)
        else:
            keep, c, d = (1.0 - eta if self.rule == "hebb" else one), eta, one.view(1, 1, 1)
        d = d.expand(T, b, self.out_features).contiguous()
        clip = None if (m is None and self.rule == "hebb") else self.clip
        has_i = "i" in st._fields
        i0 = st.i if has_i else torch.zeros_like(st.v)
        s, hebb, v_t, i_t = FusedEpisodes.apply(
            xw, x.contiguous(), self.alpha.to(dt), keep, c, d, state.hebb.contiguous(),
            st.v.reshape(-1).contiguous(), i0.reshape(-1).contiguous(),
            (neuron, clip, m is not None))
        shape = (b, self.out_features)
        new = type(st)(v_t.view(shape), i_t.view(shape)) if has_i else type(st)(v_t.view(shape))
        return PlasticRun(s, PlasticState(hebb, None), new)

    def forward(self, x: torch.Tensor, state: PlasticState | None = None, *,
                post: Post = None, post_state: Any = None,
                modulator: torch.Tensor | None = None) -> torch.Tensor:
        """Output ``[T, B, out]`` of :meth:`run`."""
        return self.run(x, state, post=post, post_state=post_state,
                        modulator=modulator).output

    def extra_repr(self) -> str:
        mod = f", modulated=True, retroactive={self.retroactive}" if self.modulated else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rule={self.rule!r}, clip={self.clip}{mod}, bias={self.bias is not None}, "
                f"shared_trace={self.shared_trace}")


def _respond(post: Post, i_t: torch.Tensor, post_state: Any) -> tuple[torch.Tensor, Any]:
    """Postsynaptic answer to the current ``i_t`` ``[B, out]``: ``(y_t, post_state)``."""
    if post is None:
        return i_t, None
    if isinstance(post, SpikingNeuron):
        out = post.run(i_t.unsqueeze(0), post_state)
        return out.spikes[0], out.state
    if not callable(post):
        raise ParameterTypeError(f"post must be None, a callable or a SpikingNeuron, got "
                                 f"{type(post).__name__}")
    return post(i_t), None


__all__ = ["PlasticLinear", "PlasticRun", "PlasticState"]
