r"""Projections: the named edges ``pre -> post`` of a :class:`~aura_snn.graph.Graph`.

A projection carries the output :math:`y_\text{pre}` of its presynaptic region to one
receptor of its postsynaptic region. With weights :math:`W` (``[n_pre, n_post]``,
dense, or ``nnz`` values at ``(pre_idx, post_idx)``, sparse) and per-synapse delays
:math:`d_{ij} \ge 0` (steps),

.. math::
    x^{(r)}_\text{post}[t] \mathrel{+}= \sum_i y_{\text{pre},i}[t - 1 - d_{ij}]\, W_{ij}

i.e. what a region emits in step :math:`t` reaches its targets in step
:math:`t + 1 + d`. Every edge is at least one step long, so the update order of the
regions never matters and cycles are allowed. ``d = 0`` is Brian2's zero synaptic
delay (its ``on_pre`` runs after the threshold of the spiking step, and the current
enters the membrane in the next step); a Brian2 delay of ``D`` steps is ``d = D``.
Units: :math:`W` in the unit of the receptor's input (V for the voltage-like currents
of :mod:`aura_snn.functional`).

Sign constraints (Dale's law): ``sign="exc"`` requires :math:`W \ge 0`, ``"inh"``
:math:`W \le 0`; violations at construction raise, and the weights used in a step
are clamped to the allowed half-line (so gradient steps that cross zero stop at 0).

Plasticity (rules live in the ``neuromodulation`` package; this is their socket):
:meth:`Projection.enable_traces` makes the graph keep exponentially filtered traces
of the pre and post outputs,

.. math::
    x_\text{pre}[t] = a_\text{pre}\,x_\text{pre}[t-1] + y_\text{pre}[t], \qquad
    x_\text{post}[t] = a_\text{post}\,x_\text{post}[t-1] + y_\text{post}[t]

(:math:`a` from :func:`aura_snn.functional.decay.decay`; :math:`y` what each region
emitted in step :math:`t`, before any delay), and after every step calls each rule
attached with :meth:`Projection.add_rule` as ``rule(projection, pre, post, traces)``
under ``torch.no_grad()``; a returned tensor is applied with
:meth:`Projection.apply_update` (outside autograd, sign constraints and bounds
enforced). See :class:`PlasticityRule`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

from .._checks import check_positive
from ..errors import ParameterError, ParameterTypeError, ShapeError
from ..functional.decay import decay
from .connectivity import Connectivity, draw_values
from .regions import _check_name

SIGNS = (None, "exc", "inh")


class Traces(NamedTuple):
    """Pre and post traces of a projection, ``[B, n_pre]`` and ``[B, n_post]``."""

    pre: torch.Tensor
    post: torch.Tensor


class PlasticityRule(Protocol):
    """What a plasticity rule implements (duck-typed; any callable works).

    Called after every step, under ``torch.no_grad()``::

        dw = rule(projection, pre_spikes, post_spikes, traces)

    with ``pre_spikes`` ``[B, n_pre]`` and ``post_spikes`` ``[B, n_post]`` the outputs
    emitted in this step and ``traces`` the :class:`Traces` after this step's update
    (``None`` unless :meth:`Projection.enable_traces` was called). Return ``None`` or a
    weight change shaped like ``projection.weight`` (``[n_pre, n_post]`` dense, ``[nnz]``
    sparse); the graph applies it with :meth:`Projection.apply_update`.
    """

    def __call__(self, projection: Projection, pre: torch.Tensor, post: torch.Tensor,
                 traces: Traces | None) -> torch.Tensor | None: ...


class _RuleHandle:
    def __init__(self, proj: Projection, rule: Any) -> None:
        self._proj, self._rule = proj, rule

    def remove(self) -> None:
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
        w_min, w_max: bounds enforced by :meth:`apply_update` (optional).
        seed: seed for drawn weight values.

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
                 w_max: float | None = None, seed: int | None = None) -> None:
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
        self.rules: list[Any] = []
        self.trace_taus: tuple[float, float] | None = None
        self._last_traces: Traces | None = None

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

    def effective_weight(self) -> torch.Tensor:
        """The weights a step uses: clamped to the sign constraint."""
        w = self.weight
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
                "plastic": bool(self.rules), "traces": self.trace_taus}

    def extra_repr(self) -> str:
        return (f"{self.pre!r} -> {self.post!r} ({self.receptor}), {self.n_pre}x{self.n_post}, "
                f"{'sparse ' + str(self.nnz) if self.sparse else 'dense'}, "
                f"max_delay={self.max_delay}, sign={self.sign}")

    # -- propagation --------------------------------------------------------------
    def propagate(self, y: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """Contributions of the pre output ``y`` ``[B, n_pre]`` emitted in one step:
        ``[(d, x [B, n_post]), ...]``, one per distinct delay ``d`` (steps)."""
        w = self.effective_weight().to(y.dtype)
        out = []
        for d, sel in self._groups():
            if self.sparse:
                pre, post, wd = (self.pre_idx, self.post_idx, w) if sel is None else \
                    (self.pre_idx[sel], self.post_idx[sel], w[sel])
                x = y.new_zeros(y.shape[0], self.n_post).index_add(1, post, y[:, pre] * wd)
            else:
                x = y @ (w if sel is None else w * sel.to(w.dtype))
            out.append((d, x))
        return out

    # -- plasticity ---------------------------------------------------------------
    def enable_traces(self, tau_pre: float, tau_post: float) -> None:
        """Keep pre/post traces with time constants ``tau_pre``, ``tau_post`` (s)."""
        check_positive("tau_pre", tau_pre, "s")
        check_positive("tau_post", tau_post, "s")
        self.trace_taus = (float(tau_pre), float(tau_post))

    def trace_decays(self, dt: float) -> tuple[float, float]:
        """Per-step decay factors of the traces (``exact`` discretisation)."""
        if self.trace_taus is None:
            raise ParameterError(f"projection {self.name!r} has no traces; call "
                                 f"enable_traces(tau_pre, tau_post) first")
        return (float(decay(self.trace_taus[0], dt)), float(decay(self.trace_taus[1], dt)))

    @property
    def pre_trace(self) -> torch.Tensor | None:
        """The pre trace after the last step run (a view of ``graph.state.traces``)."""
        return None if self._last_traces is None else self._last_traces.pre

    @property
    def post_trace(self) -> torch.Tensor | None:
        """The post trace after the last step run (a view of ``graph.state.traces``)."""
        return None if self._last_traces is None else self._last_traces.post

    def add_rule(self, rule: PlasticityRule) -> _RuleHandle:
        """Attach a plasticity rule (see :class:`PlasticityRule`); returns a handle with
        ``remove()``."""
        if not callable(rule):
            raise ParameterTypeError(f"rule must be callable, got {type(rule).__name__}")
        self.rules.append(rule)
        return _RuleHandle(self, rule)

    @torch.no_grad()
    def apply_update(self, dw: torch.Tensor) -> None:
        """``W += dw`` outside autograd, then clamp to ``sign`` and ``[w_min, w_max]``.

        ``dw`` is shaped like :attr:`weight` (``[n_pre, n_post]`` dense, ``[nnz]``
        sparse); a dense ``[n_pre, n_post]`` change on a sparse projection is read at
        the synapses (structure is never changed here).
        """
        if not isinstance(dw, torch.Tensor):
            raise ParameterTypeError(f"dw must be a tensor, got {type(dw).__name__}")
        if self.sparse and tuple(dw.shape) == (self.n_pre, self.n_post):
            dw = dw[self.pre_idx, self.post_idx]
        if dw.shape != self.weight.shape:
            raise ShapeError(f"dw for projection {self.name!r} must have shape "
                             f"{list(self.weight.shape)}, got {tuple(dw.shape)}")
        w = self.weight.data
        w.add_(dw.to(w.dtype))
        if self.sign == "exc":
            w.clamp_(min=0.0)
        elif self.sign == "inh":
            w.clamp_(max=0.0)
        if self.w_min is not None or self.w_max is not None:
            w.clamp_(min=self.w_min, max=self.w_max)


__all__ = ["PlasticityRule", "Projection", "SIGNS", "Traces"]
