r"""Synaptic tagging and capture (Frey & Morris 1997; after Clopath et al. 2008, simplified).

A :class:`SynapticTagging` rule wraps an underlying rule (e.g. :class:`~neuromodulation.
stdp.PairSTDP`) whose change :math:`\Delta_{ij}` of each step (batch-reduced) is *early*
plasticity :math:`e_{ij}`: it decays back unless it is captured. Each synapse also has a
*tag* :math:`c_{ij} \in [0, 1]` and a *late* (lasting) change :math:`l_{ij}`; each
postsynaptic neuron :math:`j` (or the whole projection, ``scope="global"``) has a level of
plasticity-related proteins (resources) :math:`p_j \in [0, 1]`. The weight is
:math:`w = w_0 + e + l`. In continuous time,

.. math::
    c_{ij} &= 1 \text{ at a strong event } |\Delta_{ij}| \ge \theta_\text{tag},
        \quad \text{else } \tau_\text{tag}\,\dot c_{ij} = -c_{ij}, \\
    p_j &= \max(p_j, \rho_j) \text{ with } \rho_j = \max\big([E_j \ge \theta_p],\
        \text{clip}(m, 0, 1)\big), \quad \text{else } \tau_p\,\dot p_j = -p_j, \\
    \dot e_{ij} &= \Delta_{ij} - k\,c_{ij}\,p_j\,e_{ij} - e_{ij}/\tau_e, \qquad
    \dot l_{ij} = k\,c_{ij}\,p_j\,e_{ij},

with :math:`E_j = \sum_i |e_{ij}|` the early change a neuron holds (a strong stimulus
triggers protein synthesis, a weak one only tags) and :math:`m` a modulator of the step
(``modulators[modulator]``, e.g. dopamine or novelty; batch mean), :math:`k` the capture
rate (1/s). After a strong event at :math:`t = 0` and resources from :math:`t_p`, with
no further plasticity, a fraction

.. math::
    \frac{l(\infty)}{e(0)} = \int_0^\infty k\,c(t)\,p(t)\,
        e^{-\int_0^t (k\,c\,p + 1/\tau_e)\,ds}\,dt, \qquad
        c(t) = e^{-t/\tau_\text{tag}},\ p(t) = e^{-(t - t_p)/\tau_p}\,[t \ge t_p]

of the early change becomes lasting; resources that arrive long after the tag has
decayed (:math:`t_p \gg \tau_\text{tag}`) capture nothing. Time constants are in model
seconds, scaled for simulation (tags last about an hour and early LTP 1-3 h in the
hippocampus; here e.g. seconds).

**One step** :math:`\Delta t` (the underlying rule first, at the same weights):

1. :math:`\Delta = ` the underlying rule's change (its own state, batch, bounds);
2. :math:`c \leftarrow 1` where :math:`|\Delta| \ge \theta_\text{tag}`, else
   :math:`c \leftarrow a_\text{tag} c`; :math:`e \leftarrow e + \Delta`;
3. :math:`p \leftarrow \max(a_p p, \rho)` with :math:`E` from the new :math:`e`;
4. capture and decay, exact for :math:`c, p` held over the step:
   :math:`\lambda = k c p + 1/\tau_e`, :math:`e' = e\,e^{-\lambda \Delta t}`,
   :math:`l' = l + (e - e')\,k c p/\lambda`;
5. the projection receives :math:`dw = (e' + l') - (e + l)` plus :math:`\Delta`, i.e.
   :math:`\Delta - (e - e')/(\lambda \tau_e)`.

Decays :math:`a = e^{-\Delta t/\tau}`. Tags, early and late changes are per synapse and
shared by the batch (like the weights); resources are per neuron. The projection's bounds
clip the weight; :math:`e` and :math:`l` are the rule's account of the changes.

Units: ``tag_threshold``, ``prp_threshold``, :math:`e`, :math:`l` in the unit of the
weight; ``tau_*`` and ``dt`` in s; ``k`` in 1/s; tags, resources, the modulator
dimensionless.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from aura_snn._checks import check_choice, check_nonnegative, check_positive
from aura_snn.errors import InputValueError, ParameterError, ParameterTypeError
from aura_snn.graph.plasticity import PlasticityRule, SynapseActivity, reduce_batch

from ._traces import check_tau, decays, synapse_index

SCOPES = ("neuron", "global")
OWN_FIELDS = ("early", "late", "tag", "prp", "syn_post")


@dataclass(frozen=True)
class TaggingParameters:
    """Tagging and capture (module docstring).

    Attributes:
        tag_threshold: :math:`\\theta_\\text{tag}`, the step change that sets a tag (> 0).
        prp_threshold: :math:`\\theta_p`, the early change :math:`E_j` held by a neuron that
            triggers protein synthesis (> 0; ``math.inf``: only the modulator does).
        tau_tag: tag lifetime :math:`\\tau_\\text{tag}` (s).
        tau_prp: resource lifetime :math:`\\tau_p` (s).
        tau_early: decay of uncaptured early change :math:`\\tau_e` (s).
        k: capture rate :math:`k` (1/s, >= 0).
        modulator: name of the modulator that triggers synthesis, or ``None``.
        scope: ``"neuron"`` (resources per postsynaptic neuron) or ``"global"``.
    """

    tag_threshold: float = 5e-3
    prp_threshold: float = 0.1
    tau_tag: float = 1.0
    tau_prp: float = 1.0
    tau_early: float = 2.0
    k: float = 5.0
    modulator: str | None = "dopamine"
    scope: str = "neuron"

    def __post_init__(self) -> None:
        check_positive("tag_threshold", self.tag_threshold)
        if not (isinstance(self.prp_threshold, (int, float)) and self.prp_threshold > 0):
            raise ParameterError(f"prp_threshold must be > 0 (or math.inf), got "
                                 f"{self.prp_threshold!r}")
        for name in ("tau_tag", "tau_prp", "tau_early"):
            check_tau(name, getattr(self, name))
        check_nonnegative("k", self.k)
        if self.modulator is not None and not isinstance(self.modulator, str):
            raise ParameterTypeError(f"modulator must be a name or None, got "
                                     f"{self.modulator!r}")
        check_choice("scope", self.scope, SCOPES)


def tagging_step(delta: torch.Tensor, early: torch.Tensor, late: torch.Tensor,
                 tag: torch.Tensor, prp: torch.Tensor, syn_post: torch.Tensor,
                 m: torch.Tensor | None, p: TaggingParameters, dt: float
                 ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Steps 2-5 of the module docstring on weight-shaped ``delta``, ``early``, ``late``,
    ``tag`` (dense ``[n_pre, n_post]`` or sparse ``[nnz]`` with postsynaptic indices
    ``syn_post``) and ``prp`` ``[n_post]``; ``m`` the modulator (scalar) or ``None``.
    Returns ``(dw, (early, late, tag, prp))``."""
    a_tag, a_p = decays(dt, p.tau_tag, p.tau_prp)
    tag = torch.where(delta.abs() >= p.tag_threshold, torch.ones_like(tag), a_tag * tag)
    early = early + delta
    sparse = early.dim() == 1
    held = (prp.new_zeros(prp.shape).index_add(0, syn_post, early.abs()) if sparse
            else early.abs().sum(0))
    if p.scope == "global":
        held = held.sum().expand_as(prp)
    rho = (held >= p.prp_threshold).to(prp.dtype)
    if m is not None:
        rho = torch.maximum(rho, m.clamp(0.0, 1.0).to(prp.dtype))
    prp = torch.maximum(a_p * prp, rho)
    kcp = p.k * tag * (prp[syn_post] if sparse else prp[None, :])
    lam = kcp + 1.0 / p.tau_early
    e_new = early * torch.exp(-lam * dt)
    lost = early - e_new
    late = late + lost * (kcp / lam)
    dw = delta - lost / (lam * p.tau_early)
    return dw, (e_new, late, tag, prp)


@functools.lru_cache(maxsize=64)
def state_type(inner_fields: tuple[str, ...]) -> type:
    """The state ``NamedTuple`` of a tagging rule over an inner state with ``inner_fields``:
    ``inner_<field>...`` then ``early``, ``late``, ``tag`` (weight-shaped), ``prp``
    ``[n_post]`` and ``syn_post`` (each synapse's postsynaptic neuron, sparse only)."""
    names = [f"inner_{f}" for f in inner_fields] + list(OWN_FIELDS)
    return NamedTuple("SynapticTaggingState", [(n, torch.Tensor) for n in names])


class SynapticTagging(PlasticityRule):
    """Tagging and capture around an underlying rule (module docstring).

    Args:
        inner: the rule whose changes are early plasticity (a
            :class:`~aura_snn.graph.plasticity.PlasticityRule`).
        params: :class:`TaggingParameters`.
    """

    batch_reduction = "none"

    def __init__(self, inner: PlasticityRule, params: TaggingParameters | None = None) -> None:
        params = TaggingParameters() if params is None else params
        if not isinstance(params, TaggingParameters):
            raise ParameterTypeError(f"params of SynapticTagging must be TaggingParameters, "
                                     f"got {type(params).__name__}")
        if not isinstance(inner, PlasticityRule):
            raise ParameterTypeError(f"inner must be a PlasticityRule, got "
                                     f"{type(inner).__name__}")
        super().__init__(params)
        self.inner = inner
        self._inner_type: type | None = None

    def initial_state(self, projection: Any, batch: int, device: torch.device,
                      dtype: torch.dtype) -> Any:
        inner = self.inner.initial_state(projection, batch, device, dtype)
        self._inner_type = None if inner is None else type(inner)
        fields = () if inner is None else tuple(inner._fields)
        zeros = torch.zeros(projection.weight.shape, device=device, dtype=dtype)
        prp = torch.zeros(projection.n_post, device=device, dtype=dtype)
        return state_type(fields)(*(() if inner is None else inner), zeros, zeros.clone(),
                                  zeros.clone(), prp, synapse_index(projection, device))

    def synapse_fields(self, projection: Any) -> tuple[str, ...] | None:
        """The inner rule's per-synapse fields, and ``early``, ``late``, ``tag``,
        ``syn_post`` on a sparse projection."""
        inner = self.inner.synapse_fields(projection)
        if inner is None:
            return None
        own = ("early", "late", "tag", "syn_post") if projection.sparse else ()
        return (*(f"inner_{f}" for f in inner), *own)

    def update(self, activity: SynapseActivity, w: torch.Tensor, state: Any, dt: float,
               modulators: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        """``dw`` (weight-shaped) of one step and the new state."""
        n_in = len(state) - len(OWN_FIELDS)
        inner = None if self._inner_type is None else self._inner_type(*state[:n_in])
        delta, inner = self.inner.update(activity, w, inner, dt, modulators)
        delta = (torch.zeros_like(w) if delta is None
                 else reduce_batch(delta, self.inner.batch_reduction, w.shape))
        m = None
        name = self.params.modulator
        if name is not None and name in modulators:
            m = torch.as_tensor(modulators[name], dtype=w.dtype, device=w.device)
            if not bool(torch.isfinite(m).all()):
                raise InputValueError(f"modulators[{name!r}] holds NaN or infinite values")
            m = m.mean()
        early, late, tag, prp, syn_post = state[n_in:]
        dw, own = tagging_step(delta, early, late, tag, prp, syn_post, m, self.params, dt)
        return dw, type(state)(*(() if inner is None else inner), *own, syn_post)


__all__ = ["OWN_FIELDS", "SCOPES", "SynapticTagging", "TaggingParameters",
           "state_type", "tagging_step"]
