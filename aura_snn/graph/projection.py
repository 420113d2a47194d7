r"""Projections: the named edges ``pre -> post`` of a :class:`~aura_snn.graph.Graph`.

A projection carries the output :math:`y_\text{pre}` of its presynaptic region to one
receptor of its postsynaptic region. With weights :math:`W` (``[n_pre, n_post]``,
dense, or ``nnz`` values at ``(pre_idx, post_idx)``, sparse) and per-synapse delays
:math:`d_{ij} \ge 0` (steps),

.. math::
    x^{(r)}_\text{post}[t] \mathrel{+}= \sum_i y_{\text{pre},i}[t - 1 - d_{ij}]\, W_{ij}

i.e. what a region emits in step :math:`t` reaches its targets in step
:math:`t + 1 + d`. ``d = 0`` is Brian2's zero synaptic delay (its ``on_pre`` runs
after the threshold of the spiking step, and the current enters the membrane in the
next step); a Brian2 delay of ``D`` steps is ``d = D``. A **same-step** edge
(``same_step=True``, no delay) delivers in the step itself,
:math:`x_\text{post}[t] \mathrel{+}= y_\text{pre}[t] W`, as a stack of
:mod:`aura_snn.neurons` modules, NIR, snnTorch and Norse do: the graph then updates
``post`` after ``pre`` within the step (a cycle must contain a delayed edge).
Units: :math:`W` in the unit of the receptor's input (V for the voltage-like currents
of :mod:`aura_snn.functional`).

Sign constraints (Dale's law): ``sign="exc"`` requires :math:`W \ge 0`, ``"inh"``
:math:`W \le 0`; violations at construction raise, and the weights used in a step
are clamped to the allowed half-line (so gradient steps that cross zero stop at 0).

Plasticity (rules live in the ``neuromodulation`` package; the socket is
:mod:`aura_snn.graph.plasticity`): the weight used in a step is
:math:`W = \text{clamp}(W_\text{learned} + W_\text{plastic})`, the learned part the
``weight`` tensor (an ``nn.Parameter`` when ``learnable``), the plastic part a
buffer that rules change (:meth:`Projection.apply_update`), so gradients through time
stay right. :meth:`Projection.enable_traces` makes the graph keep traces
(:mod:`aura_snn.functional.traces`) of the presynaptic activity *at the synapse*
(after the delay) and of the postsynaptic output,

.. math::
    x_\text{pre}[t] = a_\text{pre}\,x_\text{pre}[t-1] + y_\text{pre}[t - 1 - d], \qquad
    x_\text{post}[t] = a_\text{post}\,x_\text{post}[t-1] + y_\text{post}[t]

(uniform delays; :math:`y_\text{pre}[t]` for a same-step edge). An optional synapse
model (:class:`~aura_snn.graph.plasticity.SynapseModel`, e.g. short-term plasticity)
scales what each presynaptic neuron transmits; :meth:`Projection.rewire` prunes and
grows synapses of a sparse projection in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import check_positive
from ..errors import ParameterError, ParameterTypeError, ShapeError
from ..functional.traces import trace_decay
from .connectivity import Connectivity, draw_values
from .plasticity import CallableRule, PlasticityRule, SynapseModel, Traces
from .regions import _check_name

SIGNS = (None, "exc", "inh")


class _RuleHandle:
    def __init__(self, proj: Projection, rule: Any) -> None:
        self._proj, self._rule = proj, rule

    def remove(self) -> None:
        """Detach the rule (its state leaves the graph state at the next run)."""
        if self._rule in self._proj.rules:
            self._proj.rules.remove(self._rule)


def _stored_entries(name: str, weight: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(pre, post, values)`` of a sparse COO or CSR ``weight`` ``[n_pre, n_post]``, one
    per stored entry, in the stored order (not coalesced: duplicates stay separate)."""
    if weight.layout == torch.sparse_csr:
        if weight.dim() != 2:
            raise ShapeError(f"weight of projection {name!r} must be 2-D [n_pre, n_post], "
                             f"got shape {tuple(weight.shape)}")
        crow, col = weight.crow_indices(), weight.col_indices()
        rows = torch.arange(weight.shape[0], device=crow.device)
        pre = torch.repeat_interleave(rows, crow[1:] - crow[:-1])
        return pre, col.clone(), weight.values().detach().clone()
    if weight.sparse_dim() != 2 or weight.dense_dim() != 0:
        raise ShapeError(f"weight of projection {name!r} must be a 2-D sparse tensor "
                         f"[n_pre, n_post] with scalar entries, got shape "
                         f"{tuple(weight.shape)} ({weight.sparse_dim()} sparse and "
                         f"{weight.dense_dim()} dense dimensions)")
    idx = weight._indices()
    return idx[0].clone(), idx[1].clone(), weight._values().detach().clone()


class Projection(nn.Module):
    """A projection from region ``pre`` to region ``post`` (module docstring).

    Args:
        name: unique name in the graph.
        pre, post: region names.
        weight: dense tensor ``[n_pre, n_post]``; a torch sparse tensor (COO or CSR)
            ``[n_pre, n_post]``; or, with ``connectivity``, the per-synapse values (a
            number, an array of ``nnz`` values, or a distribution dict of
            :func:`~aura_snn.graph.connectivity.draw_values`), in V.
        connectivity: a :class:`~aura_snn.graph.connectivity.Connectivity` (sparse).
        delay: steps, ``>= 0``: one int for every synapse, or one per synapse: a
            ``[n_pre, n_post]`` array (``delay[i, j]`` for the synapse(s) ``i -> j``; any
            route), or, for sparse storage, an array of ``nnz`` values read in the input
            order of the route (table below).
        sign: ``None``, ``"exc"`` (weights >= 0) or ``"inh"`` (weights <= 0).
        receptor: receptor of ``post`` to drive (default: its first, e.g. ``"exc"``).
        learnable: store the weights as an ``nn.Parameter``.
        sparse: force the storage (``True`` turns a dense tensor into its nonzeros).
        w_min, w_max: bounds of the effective weight, enforced by :meth:`apply_update`
            (optional, V).
        seed: seed for drawn weight values.
        same_step: deliver in the step of emission (module docstring); needs delay 0.
        synapse: an optional :class:`~aura_snn.graph.plasticity.SynapseModel`.

    Order of per-synapse arrays (``[nnz]`` weights and delays), route by route; value
    ``s`` belongs to the ``s``-th synapse of that order:

    ============================== ====================================================
    route                          order of synapse ``s``
    ============================== ====================================================
    ``connectivity=c``             ``c.pre[s] -> c.post[s]``: the caller's order for
                                   :func:`~aura_snn.graph.connectivity.from_indices`
                                   (Brian2's ``i``, ``j``, ``w``, ``delay`` as they are)
    sparse COO tensor              its stored entries as given, ``weight._indices()`` /
                                   ``weight._values()``, *not* coalesced first
    sparse CSR tensor              its stored entries, row by row (``crow_indices``,
                                   ``col_indices``, ``values``)
    dense tensor, ``sparse=True``  its nonzeros in row-major order (sorted by
                                   ``(pre, post)``)
    ============================== ====================================================

    Each stored entry of a sparse tensor is one synapse: the tensor is not coalesced,
    so a ``(pre, post)`` pair stored twice gives two synapses (a multapse, as Brian2
    allows), each with its own weight and delay. With equal delays their effect is the
    sum that coalescing would give; only ``nnz`` and the per-synapse view (plasticity,
    :meth:`to_coo`) differ. Zero-valued stored entries are kept as synapses.

    The projection then stores its synapses sorted by ``(pre, post)`` (stable, so
    multapses keep their relative order) and moves every per-synapse value with its
    synapse: :attr:`weight`, ``pre_idx``, ``post_idx``, :attr:`delay`, :meth:`to_coo`
    and the ``[nnz]`` changes of :meth:`apply_update` are in that stored order.
    """

    def __init__(self, name: str, pre: str, post: str,
                 weight: torch.Tensor | float | np.ndarray | dict | None = None, *,
                 connectivity: Connectivity | None = None,
                 delay: int | torch.Tensor | np.ndarray = 0, sign: str | None = None,
                 receptor: str | None = None, learnable: bool = False,
                 sparse: bool | None = None, w_min: float | None = None,
                 w_max: float | None = None, seed: int | None = None,
                 same_step: bool = False, synapse: SynapseModel | None = None) -> None:
        super().__init__()
        self.name = _check_name(name)
        self.pre, self.post = _check_name(pre), _check_name(post)
        if sign not in SIGNS:
            raise ParameterError(f"sign of projection {name!r} must be one of None, 'exc', "
                                 f"'inh'; got {sign!r}")
        if receptor is not None and not isinstance(receptor, str):
            raise ParameterTypeError(f"receptor of projection {name!r} must be a name, got "
                                     f"{receptor!r}")
        self.sign, self.receptor, self.learnable = sign, receptor, bool(learnable)
        self.w_min, self.w_max = w_min, w_max
        self.rules: list[PlasticityRule] = []
        self._rule_count = 0
        self.trace_taus: tuple[float, float] | None = None
        self._last_traces: Traces | None = None
        if synapse is not None and not isinstance(synapse, SynapseModel):
            raise ParameterTypeError(f"synapse of projection {name!r} must be a SynapseModel, "
                                     f"got {type(synapse).__name__}")
        self.synapse = synapse
        self.same_step = bool(same_step)

        if connectivity is not None:
            if not isinstance(connectivity, Connectivity):
                raise ParameterTypeError(f"connectivity of projection {name!r} must be a "
                                         f"Connectivity, got {type(connectivity).__name__}")
            if weight is None:
                raise ParameterError(f"projection {name!r}: weight (the synapse values) is "
                                     f"required with connectivity")
            if isinstance(weight, torch.Tensor):
                weight = weight.detach().cpu().numpy()
            values = draw_values(weight, connectivity.n_synapses, seed=seed,
                                 name=f"weight of {name!r}")
            self.n_pre, self.n_post = connectivity.n_pre, connectivity.n_post
            self._set_sparse(torch.from_numpy(connectivity.pre),
                             torch.from_numpy(connectivity.post),
                             torch.as_tensor(values, dtype=torch.float64))
        elif isinstance(weight, torch.Tensor) and weight.layout in (torch.sparse_coo,
                                                                   torch.sparse_csr):
            entries = _stored_entries(name, weight)
            self.n_pre, self.n_post = (int(s) for s in weight.shape)
            self._set_sparse(*entries)
        elif isinstance(weight, torch.Tensor):
            if weight.dim() != 2:
                raise ShapeError(f"weight of projection {name!r} must be 2-D [n_pre, n_post], "
                                 f"got shape {tuple(weight.shape)}")
            self.n_pre, self.n_post = (int(s) for s in weight.shape)
            w = weight.detach().clone()
            if sparse:
                nz = w.nonzero(as_tuple=True)
                self._set_sparse(nz[0], nz[1], w[nz])
            else:
                self.sparse = False
                self._store_weight(w)
        else:
            raise ParameterTypeError(
                f"weight of projection {name!r} must be a dense or sparse torch tensor, or "
                f"values together with connectivity=; got {type(weight).__name__}")
        w_np = self.weight.detach().cpu().numpy()
        if not bool(np.isfinite(w_np).all()):
            raise ParameterError(f"weight of projection {name!r} contains NaN or infinite "
                                 f"values")
        self._check_sign(w_np)
        self._set_delay(delay)
        if self.same_step and self.max_delay != 0:
            raise ParameterError(f"projection {name!r}: a same-step edge has no delay; got a "
                                 f"delay of up to {self.max_delay} steps")

    # -- construction -------------------------------------------------------------
    def _store_weight(self, w: torch.Tensor) -> None:
        if self.learnable:
            self.weight = nn.Parameter(w)
        else:
            self.register_buffer("weight", w)

    def _set_sparse(self, pre: torch.Tensor, post: torch.Tensor, values: torch.Tensor) -> None:
        """Store synapses ``pre[s] -> post[s]`` of weight ``values[s]`` (V), given in the
        route's input order, sorted (stably) by ``(pre, post)``; ``self._order`` keeps
        the permutation (``stored[k] = given[_order[k]]``, ``None`` when the input was
        already in order) so that :meth:`_set_delay` moves an ``[nnz]`` delay the same
        way."""
        pre, post = pre.to(torch.int64), post.to(torch.int64)
        pre_np, post_np = pre.cpu().numpy(), post.cpu().numpy()
        key = pre_np * self.n_post + post_np
        self.sparse = True
        if key.size < 2 or bool(np.all(key[1:] >= key[:-1])):  # already in (pre, post) order
            self._order: torch.Tensor | None = None
        else:
            order_t = torch.from_numpy(np.lexsort((post_np, pre_np)))  # stable
            pre, post = pre[order_t.to(pre.device)], post[order_t.to(post.device)]
            values = values[order_t.to(values.device)]
            self._order = order_t
        self.register_buffer("pre_idx", pre.contiguous())
        self.register_buffer("post_idx", post.contiguous())
        self._store_weight(values.contiguous())

    def _set_delay(self, delay: int | torch.Tensor | np.ndarray) -> None:
        d = torch.as_tensor(delay)
        if d.is_floating_point():
            if not bool((d == d.round()).all()):
                raise ParameterError(f"delay of projection {self.name!r} must be whole steps, "
                                     f"got non-integer values")
        d = d.to(torch.int64)
        if bool((d < 0).any()):
            raise ParameterError(f"delay of projection {self.name!r} must be >= 0 steps, got "
                                 f"{int(d.min())}")
        if d.dim() > 0:
            pair = (self.n_pre, self.n_post)
            if self.sparse and tuple(d.shape) == pair:      # read at each synapse's pair
                d = d[self.pre_idx.to(d.device), self.post_idx.to(d.device)]
            elif self.sparse and tuple(d.shape) == (self.nnz,):  # in the route's input order
                if self._order is not None:
                    d = d[self._order.to(d.device)]
            elif self.sparse or tuple(d.shape) != pair:
                allowed = f"[{self.nnz}] (one per synapse) or {list(pair)}" if self.sparse \
                    else str(list(pair))
                raise ShapeError(f"delay of projection {self.name!r} must be one int or have "
                                 f"shape {allowed}, got {tuple(d.shape)}")
            if d.numel() and bool((d == d.flatten()[0]).all()):
                d = d.flatten()[0].clone()
        self.register_buffer("delay", d.clone())
        self.max_delay = int(d.max()) if d.numel() else 0
        self._group_delays: list[int] = []
        if d.dim() == 0:
            self._group_delays.append(int(d))
        else:
            for k, v in enumerate(torch.unique(d).tolist()):
                sel = d == v
                self.register_buffer(f"_delay_sel_{k}",
                                     sel.nonzero(as_tuple=True)[0] if self.sparse else sel,
                                     persistent=False)
                self._group_delays.append(int(v))

    def _groups(self) -> list[tuple[int, torch.Tensor | None]]:
        if self.delay.dim() == 0:
            return [(self._group_delays[0], None)]
        return [(d, getattr(self, f"_delay_sel_{k}")) for k, d in enumerate(self._group_delays)]

    def _check_sign(self, w: np.ndarray) -> None:
        if self.sign is None:
            return
        bad = (w < 0) if self.sign == "exc" else (w > 0)
        nbad = int(np.count_nonzero(bad))
        if nbad:
            worst = float(w.min() if self.sign == "exc" else w.max())
            need = ">= 0" if self.sign == "exc" else "<= 0"
            raise ParameterError(f"projection {self.name!r} has sign={self.sign!r}, so weights "
                                 f"must be {need}; {nbad} are not (e.g. {worst:g})")

    # -- introspection ------------------------------------------------------------
    @property
    def nnz(self) -> int:
        """Number of synapses (stored entries; dense: ``n_pre * n_post``)."""
        return int(self.weight.numel())

    @property
    def uniform_delay(self) -> bool:
        return self.delay.dim() == 0

    @property
    def plastic(self) -> bool:
        """Whether the projection has a plastic part (a rule was attached)."""
        return "plastic_weight" in self._buffers

    def make_plastic(self) -> None:
        """Add the plastic buffer :math:`W_\text{plastic}` (zeros) if it is not there."""
        if not self.plastic:
            self.register_buffer("plastic_weight", torch.zeros_like(self.weight.detach()))

    def effective_weight(self, synapses: torch.Tensor | None = None) -> torch.Tensor:
        """The weights a step uses: learned + plastic, clamped to the sign constraint;
        with ``synapses`` (indices into a sparse projection's synapses) only theirs."""
        w = self.weight if synapses is None else self.weight[synapses]
        if self.plastic:
            pw = self.plastic_weight if synapses is None else self.plastic_weight[synapses]
            w = w + pw.to(w.dtype)
        if self.sign == "exc":
            return w.clamp_min(0.0)
        if self.sign == "inh":
            return w.clamp_max(0.0)
        return w

    def to_coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(pre, post, weight, delay)`` numpy arrays, one entry per synapse, sorted by
        ``(pre, post)`` (dense weights: their nonzero entries)."""
        w = self.effective_weight().detach().cpu()
        if self.sparse:
            pre, post, vals = self.pre_idx.cpu().numpy(), self.post_idx.cpu().numpy(), w.numpy()
            d = self.delay.cpu()
            dl = np.full(pre.size, int(d)) if d.dim() == 0 else d.numpy()
            return pre, post, vals, dl.astype(np.int64)
        nz = w.nonzero(as_tuple=True)
        pre, post = nz[0].numpy(), nz[1].numpy()
        d = self.delay.cpu()
        dl = np.full(pre.size, int(d)) if d.dim() == 0 else d[nz].numpy()
        return pre, post, w[nz].numpy(), dl.astype(np.int64)

    def dense_weight(self) -> torch.Tensor:
        """Effective weights as a dense ``[n_pre, n_post]`` tensor."""
        w = self.effective_weight()
        if not self.sparse:
            return w
        out = torch.zeros(self.n_pre, self.n_post, dtype=w.dtype, device=w.device)
        return out.index_put((self.pre_idx, self.post_idx), w, accumulate=True)

    def describe(self) -> dict[str, Any]:
        """Plain description for exporters (topology; weights via :meth:`to_coo`)."""
        return {"name": self.name, "pre": self.pre, "post": self.post,
                "receptor": self.receptor, "n_pre": self.n_pre, "n_post": self.n_post,
                "sparse": self.sparse, "synapses": self.nnz, "sign": self.sign,
                "delay": int(self.delay) if self.uniform_delay else "per-synapse",
                "max_delay": self.max_delay, "learnable": self.learnable,
                "plastic": bool(self.rules), "traces": self.trace_taus,
                "same_step": self.same_step,
                "synapse": None if self.synapse is None else type(self.synapse).__name__}

    def extra_repr(self) -> str:
        return (f"{self.pre!r} -> {self.post!r} ({self.receptor}), {self.n_pre}x{self.n_post}, "
                f"{'sparse ' + str(self.nnz) if self.sparse else 'dense'}, "
                f"max_delay={self.max_delay}, sign={self.sign}")

    # -- propagation --------------------------------------------------------------
    def propagate(self, y: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """Contributions of the pre output ``y`` ``[B, n_pre]`` emitted in one step:
        ``[(d, x [B, n_post]), ...]``, one per distinct delay ``d`` (steps). ``y`` is
        what is transmitted (after any synapse model's efficacy)."""
        w = self.effective_weight().to(y.dtype)
        out = []
        for d, sel in self._groups():
            if self.sparse:
                x = self._deliver(y, slice(None) if sel is None else sel,
                                  w if sel is None else w[sel])
            else:
                x = y @ (w if sel is None else w * sel.to(w.dtype))
            out.append((d, x))
        return out

    def propagate_events(self, y: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """:meth:`propagate` outside autograd, visiting only the synapses of the pre
        neurons whose output ``y`` ``[B, n_pre]`` is nonzero: a sparse projection then
        costs O(synapses of the active neurons) instead of O(all synapses). The sums are
        :meth:`propagate`'s bit for bit: a skipped term is an exact zero and the others
        are added in the same (synapse) order. Dense projections: :meth:`propagate`."""
        if not self.sparse:
            with torch.no_grad():
                return self.propagate(y)
        with torch.no_grad():
            order, start = self._synapses_by_pre()
            active = y.ne(0).any(0).nonzero(as_tuple=True)[0]
            first, count = start[active], start[active + 1] - start[active]
            total = int(count.sum())
            skip = torch.repeat_interleave(count.cumsum(0) - count - first, count)
            syn = order[torch.arange(total, device=y.device) - skip].sort().values
            w = self.effective_weight(syn).to(y.dtype)
            out = []
            delays = None if self.uniform_delay else self.delay[syn]
            for d, _ in self._groups():    # a group's synapses in ascending id order
                keep = slice(None) if delays is None else delays == d
                out.append((d, self._deliver(y, syn[keep], w[keep])))
            return out

    def _deliver(self, y: torch.Tensor, synapses: torch.Tensor | slice,
                 w: torch.Tensor) -> torch.Tensor:
        """:math:`x_j = \\sum_s y_{\\text{pre}(s)} w_s` over ``synapses`` with
        :math:`\\text{post}(s) = j`, added in synapse order: ``[B, n_post]``."""
        return y.new_zeros(y.shape[0], self.n_post).index_add(
            1, self.post_idx[synapses], y[:, self.pre_idx[synapses]] * w)

    def _synapses_by_pre(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(order, start)``: synapse ids sorted by pre neuron (stable) and the CSR
        offsets ``[n_pre + 1]`` into them; kept while ``pre_idx`` is the same tensor,
        unchanged in place (its version counter)."""
        pre = self.pre_idx
        cached = getattr(self, "_by_pre", None)
        if cached is not None and cached[0] is pre and cached[1] == pre._version:
            return cached[2], cached[3]
        order = torch.argsort(pre, stable=True)
        start = torch.zeros(self.n_pre + 1, dtype=torch.long, device=pre.device)
        start[1:] = torch.bincount(pre, minlength=self.n_pre).cumsum(0)
        self._by_pre = (pre, pre._version, order, start)
        return order, start

    def at_synapses(self, history: list[torch.Tensor], current: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Presynaptic activity arriving at the synapses in this step: ``(pre, pre_syn)``.

        ``history[k]`` is what the pre region emitted ``k + 1`` steps ago (``[B, n_pre]``),
        ``current`` what it emits now. A synapse of delay ``d`` receives ``history[d]``
        (``current`` for a same-step edge). ``pre`` ``[B, n_pre]`` is the activity of
        the smallest delay; ``pre_syn`` is per synapse (``[B, nnz]`` sparse, ``[B, n_pre,
        n_post]`` dense with per-synapse delays), ``None`` for a dense uniform delay."""
        if self.same_step:
            pre = current
            return pre, (pre[:, self.pre_idx] if self.sparse else None)
        groups = self._groups()
        pre = history[groups[0][0]]
        if self.uniform_delay:
            return pre, (pre[:, self.pre_idx] if self.sparse else None)
        if self.sparse:
            syn = pre.new_zeros(pre.shape[0], self.nnz)
            for d, sel in groups:
                syn[:, sel] = history[d][:, self.pre_idx[sel]]
            return pre, syn
        syn = pre.new_zeros(pre.shape[0], self.n_pre, self.n_post)
        for d, sel in groups:
            syn = syn + history[d][:, :, None] * sel.to(pre.dtype)
        return pre, syn

    # -- plasticity ---------------------------------------------------------------
    def enable_traces(self, tau_pre: float, tau_post: float) -> None:
        """Keep pre/post traces with time constants ``tau_pre``, ``tau_post`` (s)."""
        check_positive("tau_pre", tau_pre, "s")
        check_positive("tau_post", tau_post, "s")
        self.trace_taus = (float(tau_pre), float(tau_post))

    def trace_decays(self, dt: float) -> tuple[float, float]:
        """Per-step decay factors of the traces (:func:`~aura_snn.functional.traces.
        trace_decay`)."""
        if self.trace_taus is None:
            raise ParameterError(f"projection {self.name!r} has no traces; call "
                                 f"enable_traces(tau_pre, tau_post) first")
        return (float(trace_decay(self.trace_taus[0], dt)),
                float(trace_decay(self.trace_taus[1], dt)))

    @property
    def pre_trace(self) -> torch.Tensor | None:
        """The pre trace after the last step run (a view of ``graph.state.traces``)."""
        return None if self._last_traces is None else self._last_traces.pre

    @property
    def post_trace(self) -> torch.Tensor | None:
        """The post trace after the last step run (a view of ``graph.state.traces``)."""
        return None if self._last_traces is None else self._last_traces.post

    def add_rule(self, rule: PlasticityRule | Any) -> _RuleHandle:
        """Attach a plasticity rule: a :class:`~aura_snn.graph.plasticity.PlasticityRule`
        or a callable ``rule(projection, pre, post, traces) -> dw`` (adapted by
        :class:`~aura_snn.graph.plasticity.CallableRule`). Makes the projection plastic.
        Returns a handle with ``remove()``."""
        if not isinstance(rule, PlasticityRule):
            if not callable(rule):
                raise ParameterTypeError(f"rule must be a PlasticityRule or callable, got "
                                         f"{type(rule).__name__}")
            rule = CallableRule(rule, self)
        rule.slot = f"rule{self._rule_count}"  # its key in the graph state
        self._rule_count += 1
        self.make_plastic()
        self.rules.append(rule)
        return _RuleHandle(self, rule)

    @torch.no_grad()
    def apply_update(self, dw: torch.Tensor) -> None:
        """Add ``dw`` to the plastic part, outside autograd, keeping the effective weight
        within ``sign`` and ``[w_min, w_max]`` (the learned part is never written).

        ``dw`` is shaped like :attr:`weight` (``[n_pre, n_post]`` dense, ``[nnz]``
        sparse); a dense ``[n_pre, n_post]`` change on a sparse projection is read at
        the synapses (structure is changed only by :meth:`rewire`).
        """
        if not isinstance(dw, torch.Tensor):
            raise ParameterTypeError(f"dw must be a tensor, got {type(dw).__name__}")
        if self.sparse and tuple(dw.shape) == (self.n_pre, self.n_post):
            dw = dw[self.pre_idx, self.post_idx]
        if dw.shape != self.weight.shape:
            raise ShapeError(f"dw for projection {self.name!r} must have shape "
                             f"{list(self.weight.shape)}, got {tuple(dw.shape)}")
        self.make_plastic()
        learned = self.weight.detach()
        w = learned + self.plastic_weight + dw.to(learned.dtype)
        if self.sign == "exc":
            w = w.clamp_min(0.0)
        elif self.sign == "inh":
            w = w.clamp_max(0.0)
        if self.w_min is not None or self.w_max is not None:
            w = w.clamp(min=self.w_min, max=self.w_max)
        self.plastic_weight = w - learned

    # -- structure ----------------------------------------------------------------
    @torch.no_grad()
    def rewire(self, prune: torch.Tensor | np.ndarray | None = None,
               grow: tuple[Any, Any, Any] | tuple[Any, Any, Any, Any] | None = None
               ) -> np.ndarray:
        """Prune and grow synapses of a sparse, non-learnable projection in place.

        Args:
            prune: a boolean mask ``[nnz]`` or indices (stored order) of synapses to remove.
            grow: ``(pre, post, weight)`` or ``(pre, post, weight, delay)`` arrays of new
                synapses (weight in V, delay in steps, default 0).

        Returns:
            ``source [nnz_new]``: for each synapse now stored, its index before the call,
            or ``-1`` for a grown one (:meth:`~aura_snn.graph.Graph.rewire` uses it to
            carry per-synapse rule state along). Plastic parts move with their synapse;
            grown synapses start with none.
        """
        if not self.sparse:
            raise ParameterError(f"projection {self.name!r} is dense; only sparse projections "
                                 f"can be rewired")
        if self.learnable:
            raise ParameterError(f"projection {self.name!r} is learnable; rewiring would "
                                 f"replace its Parameter under the optimizer")
        n = self.nnz
        keep = np.ones(n, dtype=bool)
        if prune is not None:
            pr = np.asarray(prune.cpu() if isinstance(prune, torch.Tensor) else prune)
            if pr.dtype == bool:
                if pr.shape != (n,):
                    raise ShapeError(f"prune mask of projection {self.name!r} must have shape "
                                     f"[{n}], got {pr.shape}")
                keep &= ~pr
            else:
                pr = pr.astype(np.int64).ravel()
                if pr.size and (pr.min() < 0 or pr.max() >= n):
                    raise ParameterError(f"prune indices of projection {self.name!r} must lie "
                                         f"in [0, {n}), got {pr.min()}..{pr.max()}")
                keep[pr] = False
        dev, dt_ = self.weight.device, self.weight.dtype
        kept = torch.from_numpy(np.nonzero(keep)[0]).to(dev)
        d_old = self.delay.expand(n) if self.uniform_delay else self.delay
        pre, post = [self.pre_idx[kept]], [self.post_idx[kept]]
        w, d = [self.weight[kept]], [d_old[kept]]
        plastic = [self.plastic_weight[kept]] if self.plastic else None
        source = [kept.cpu().numpy()]
        if grow is not None:
            if len(grow) not in (3, 4):
                raise ParameterError("grow must be (pre, post, weight) or (pre, post, weight, "
                                     "delay)")
            g_pre = torch.as_tensor(np.asarray(grow[0]), dtype=torch.int64, device=dev).ravel()
            g_post = torch.as_tensor(np.asarray(grow[1]), dtype=torch.int64, device=dev).ravel()
            m = g_pre.numel()
            if g_post.numel() != m:
                raise ShapeError(f"grow of projection {self.name!r}: pre and post differ in "
                                 f"length ({m} vs {g_post.numel()})")
            if m and (int(g_pre.min()) < 0 or int(g_pre.max()) >= self.n_pre
                      or int(g_post.min()) < 0 or int(g_post.max()) >= self.n_post):
                raise ParameterError(f"grow of projection {self.name!r}: indices out of range "
                                     f"[0, {self.n_pre}) x [0, {self.n_post})")
            g_w = torch.as_tensor(np.asarray(grow[2], dtype=np.float64)).to(dev, dt_)
            g_w = g_w.expand(m).clone() if g_w.dim() == 0 else g_w.ravel()
            g_d = torch.as_tensor(np.asarray(grow[3] if len(grow) == 4 else 0),
                                  dtype=torch.int64, device=dev)
            g_d = g_d.expand(m).clone() if g_d.dim() == 0 else g_d.ravel()
            if g_w.numel() != m or g_d.numel() != m:
                raise ShapeError(f"grow of projection {self.name!r}: weight and delay need "
                                 f"{m} values")
            if not bool(torch.isfinite(g_w).all()):
                raise ParameterError(f"grow of projection {self.name!r}: NaN or infinite "
                                     f"weight")
            self._check_sign(g_w.cpu().numpy())
            pre.append(g_pre)
            post.append(g_post)
            w.append(g_w)
            d.append(g_d)
            if plastic is not None:
                plastic.append(torch.zeros_like(g_w))
            source.append(np.full(m, -1, np.int64))
        for k in range(len(self._group_delays)):
            self._buffers.pop(f"_delay_sel_{k}", None)
        self._set_sparse(torch.cat(pre), torch.cat(post), torch.cat(w))
        src = np.concatenate(source)
        order = None if self._order is None else self._order.cpu().numpy()
        self._set_delay(torch.cat(d))
        if plastic is not None:
            pl = torch.cat(plastic)
            self.plastic_weight = pl if order is None else pl[torch.from_numpy(order).to(dev)]
        return src if order is None else src[order]


__all__ = ["PlasticityRule", "Projection", "SIGNS", "Traces"]
