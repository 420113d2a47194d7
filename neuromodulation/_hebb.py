r"""Differentiable Hebbian plasticity: the pure maths of a plastic synaptic matrix.

A plastic layer (Miconi et al. 2018, "Differentiable plasticity"; Miconi et al. 2019,
"Backpropamine") maps presynaptic activity :math:`x` ``[B, N]`` to a current
:math:`i` ``[B, M]`` through a slow weight :math:`W` ``[N, M]`` plus a fast Hebbian
trace :math:`H` ``[B, N, M]`` (one per batch element: B independent episodes; or one
``[N, M]`` trace shared by the batch, moved by the batch mean of the increments below)
scaled per synapse by :math:`\alpha` ``[N, M]``:

.. math::
    i_{bj} = \sum_k x_{bk} \left(W_{kj} + \alpha_{kj} H_{bkj}\right)

After the postsynaptic units answer with :math:`y` ``[B, M]``, the trace moves by one
rule (per batch element :math:`b`; :math:`k` presynaptic, :math:`j` postsynaptic;
:math:`\eta` per step):

========================= =====================================================
``"hebb"`` (Miconi 2018,  :math:`H \leftarrow (1-\eta) H + \eta\, x \otimes y`
eq. 2)                    (a running average: :math:`|H| \le \max|x||y|`)
``"clip"``                :math:`H \leftarrow \mathrm{clip}(H + \eta\, x \otimes y,
                          -c, c)`
``"oja"`` (Miconi 2018,   :math:`H_{kj} \leftarrow H_{kj} + \eta\, y_j (x_k - y_j
eq. 3; Oja 1982)          H_{kj})`
modulated, simple         :math:`H \leftarrow \mathrm{clip}(H + M\, x \otimes y, -c, c)`
(Miconi 2019)
modulated, retroactive    :math:`E \leftarrow (1-\eta) E + \eta\, x \otimes y`, then
(Miconi 2019, eligibility :math:`H \leftarrow \mathrm{clip}(H + M E, -c, c)`
trace :math:`E`)
========================= =====================================================

:math:`M` is the neuromodulator the network itself outputs: a scalar, one value per
batch element ``[B]``, or one per postsynaptic unit ``[B, M]``. ``clip`` bounds are
inclusive: an entry that lands exactly on :math:`\pm c` keeps its gradient, as
``torch.clamp`` does.

Units: :math:`x`, :math:`y` are activities (rates, or spikes 0/1, dimensionless);
:math:`W` and :math:`\alpha` are current per unit of activity (V for an
:mod:`aura_snn` LIF input); :math:`H`, :math:`E`, :math:`\eta`, :math:`M` and
:math:`c` are dimensionless, :math:`\eta` and :math:`M` per step.

The matrix-sized work runs in two hand-written autograd functions (their backward
is checked against a plain loop in ``tests/neuromodulation/test_plastic.py``): no
``[B, N, M]`` tensor is kept for backward beyond the trace itself (and the clip mask),
and CPU buffers come from the fused kernels' pool, warm from the previous step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from aura_snn.kernels._memory import BUFFERS

RULES = ("hebb", "clip", "oja")


class PlasticState(NamedTuple):
    """State of a plastic layer for one batch of episodes.

    Attributes:
        hebb: Hebbian trace :math:`H` ``[B, N, M]`` (dimensionless).
        eligibility: eligibility trace :math:`E` ``[B, N, M]`` of retroactive
            neuromodulation, else ``None``.
    """

    hebb: torch.Tensor
    eligibility: torch.Tensor | None = None

    def detach(self) -> PlasticState:
        """The same traces cut from the autograd graph (truncated BPTT between chunks)."""
        e = None if self.eligibility is None else self.eligibility.detach()
        return PlasticState(self.hebb.detach(), e)


def _pooled(like: torch.Tensor) -> torch.Tensor:
    return BUFFERS.empty_like(like)


def _matvec(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``a [B, N, M] @ v [B, M] -> [B, N]``, written as ``v^T a^T``: on CPU the
    row-vector product is ~9x faster than the batched matrix-vector one (measured)."""
    return torch.bmm(v.unsqueeze(1), a.transpose(1, 2)).squeeze(1)


class _Current(torch.autograd.Function):
    """``(x [B,N], W [N,M], alpha [N,M], H [B,N,M]) -> x W + bmm(x, alpha * H)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, alpha: torch.Tensor,
                hebb: torch.Tensor) -> torch.Tensor:
        p = torch.mul(hebb, alpha, out=_pooled(hebb))
        i = torch.addmm(torch.bmm(x.unsqueeze(1), p).squeeze(1), x, w)
        ctx.save_for_backward(x, w, alpha, hebb)
        return i

    @staticmethod
    def backward(ctx: Any, gi: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w, alpha, hebb = ctx.saved_tensors
        nx, nw, na, nh = ctx.needs_input_grad
        gx = gw = ga = gh = None
        if nx:
            p = torch.mul(hebb, alpha, out=_pooled(hebb))
            gx = torch.addmm(_matvec(p, gi), gi, w.t())
        if nw:
            gw = x.t() @ gi
        if na or nh:
            outer = torch.mul(x.unsqueeze(2), gi.unsqueeze(1), out=_pooled(hebb))
            if nh:
                gh = torch.mul(outer, alpha, out=_pooled(hebb))
            if na:
                ga = outer.mul_(hebb).sum(0)
        return gx, gw, ga, gh


def _clip_(out: torch.Tensor, clip: float) -> torch.Tensor:
    """Clamp ``out`` to ``[-clip, clip]`` in place; return the mask of the entries that
    were inside (1.0, bounds included, as ``torch.clamp``'s gradient) or outside (0.0).
    A float mask: multiplying by it is ~6x faster than by a bool one (measured)."""
    mask = torch.abs(out, out=_pooled(out))
    torch.le(mask, clip, out=mask)
    out.clamp_(-clip, clip)
    return mask


class _Gated(torch.autograd.Function):
    """``H' = clip(H + m * E, -c, c)`` for ``[B, N, M]`` traces; ``m`` is 0-dim,
    ``[B, 1, 1]`` or ``[B, 1, M]``."""

    @staticmethod
    def forward(ctx: Any, hebb: torch.Tensor, elig: torch.Tensor, m: torch.Tensor,
                clip: float) -> torch.Tensor:
        out = torch.mul(elig, m, out=_pooled(hebb)).add_(hebb)
        mask = _clip_(out, clip)
        ctx.save_for_backward(elig, m, mask)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        elig, m, mask = ctx.saved_tensors
        nh, ne, nm, _ = ctx.needs_input_grad
        g = torch.mul(g, mask, out=_pooled(g))
        ge = torch.mul(g, m, out=_pooled(g)) if ne else None
        gm = None
        if nm:
            gm = torch.mul(g, elig, out=_pooled(g))
            gm = gm.sum() if m.dim() == 0 else gm.sum(1, keepdim=True)
            gm = gm if m.dim() == 0 or m.shape[2] > 1 else gm.sum(2, keepdim=True)
        return g if nh else None, ge, gm, None


class _Outer(torch.autograd.Function):
    """``H' = clip(keep * H + a (x) b, -c, c)``; ``keep`` is ``None`` (1), a 0-dim
    tensor or ``[B, 1, M]``; ``clip`` a float or ``None`` (no clipping)."""

    @staticmethod
    def forward(ctx: Any, hebb: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                keep: torch.Tensor | None, clip: float | None) -> torch.Tensor:
        out = torch.mul(a.unsqueeze(2), b.unsqueeze(1), out=_pooled(hebb))
        if keep is None:
            out.add_(hebb)
        else:
            out.addcmul_(hebb, keep)
        mask = None if clip is None else _clip_(out, clip)
        ctx.save_for_backward(hebb, a, b, keep, mask)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hebb, a, b, keep, mask = ctx.saved_tensors
        nh, na, nb, nk, _ = ctx.needs_input_grad
        if mask is not None:
            g = torch.mul(g, mask, out=_pooled(g))
        gh = ga = gb = gk = None
        if nh:
            gh = g if keep is None else torch.mul(g, keep, out=_pooled(g))
        if na:
            ga = _matvec(g, b)
        if nb:
            gb = torch.bmm(a.unsqueeze(1), g).squeeze(1)
        if nk:
            if keep.dim() == 0:
                gk = torch.dot(g.reshape(-1), hebb.reshape(-1))
            else:
                gk = torch.mul(g, hebb, out=_pooled(g)).sum(1, keepdim=True)
        return gh, ga, gb, gk, None


def plastic_current(x: torch.Tensor, w: torch.Tensor, alpha: torch.Tensor,
                    hebb: torch.Tensor) -> torch.Tensor:
    r"""Current :math:`i_{bj} = \sum_k x_{bk} (W_{kj} + \alpha_{kj} H_{bkj})` ``[B, M]``.

    ``x`` ``[B, N]`` (activity), ``w`` and ``alpha`` ``[N, M]`` (current per unit of
    activity), ``hebb`` ``[B, N, M]`` (one trace per episode) or ``[N, M]`` (one trace
    shared by the batch); one dtype and device. Shapes are not checked here
    (:class:`~neuromodulation.plastic.PlasticLinear` checks them).
    """
    if hebb.dim() == 2:
        return x @ torch.addcmul(w, alpha, hebb)
    return _Current.apply(x, w, alpha, hebb)


def _outer(hebb: torch.Tensor, a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor | None,
           clip: float | None) -> torch.Tensor:
    """``clip(keep * H + a (x) b)`` per episode, or with the batch mean of ``a (x) b``
    for a shared ``[N, M]`` trace."""
    if hebb.dim() == 3:
        return _Outer.apply(hebb, a, b, keep, clip)
    pre = torch.addmm(hebb if keep is None else keep * hebb, a.t(), b, alpha=1.0 / a.shape[0])
    return pre if clip is None else torch.clamp(pre, -clip, clip)


def hebbian_update(state: PlasticState, x: torch.Tensor, y: torch.Tensor, *, rule: str,
                   eta: torch.Tensor, clip: float) -> PlasticState:
    r"""One step of an unmodulated rule (``"hebb"``, ``"clip"`` or ``"oja"``, module
    docstring) with presynaptic ``x`` ``[B, N]``, postsynaptic ``y`` ``[B, M]``, a 0-dim
    ``eta`` (per step) and the bound ``clip`` :math:`c` (used by ``"clip"`` only).
    A shared ``[N, M]`` trace moves by the batch mean of the per-episode increments."""
    a = eta * x
    if rule == "hebb":
        h = _outer(state.hebb, a, y, 1.0 - eta, None)
    elif rule == "clip":
        h = _outer(state.hebb, a, y, None, float(clip))
    elif rule == "oja":
        y2 = y * y if state.hebb.dim() == 3 else (y * y).mean(0)
        h = _outer(state.hebb, a, y, (1.0 - eta * y2).unsqueeze(-2), None)
    else:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}; got {rule!r}")
    return PlasticState(h, state.eligibility)


def modulated_update(state: PlasticState, x: torch.Tensor, y: torch.Tensor,
                     m: torch.Tensor, *, eta: torch.Tensor, clip: float,
                     retroactive: bool) -> PlasticState:
    r"""One step of neuromodulated plasticity (module docstring): simple,
    :math:`H \leftarrow \mathrm{clip}(H + M x \otimes y)`, or retroactive through the
    eligibility trace :math:`E` (``state.eligibility``, required then) with rate
    ``eta``. ``m`` is 0-dim, ``[B]`` or ``[B, M]``. A shared ``[N, M]`` trace takes the
    batch mean of :math:`M x \otimes y` (simple) or :math:`H + \bar M E` with
    :math:`\bar M` the batch mean of :math:`M` (retroactive; :math:`E` is shared too)."""
    if not retroactive:
        my = (m.unsqueeze(1) if m.dim() == 1 else m) * y
        return PlasticState(_outer(state.hebb, x, my, None, float(clip)), None)
    e = _outer(state.eligibility, eta * x, y, 1.0 - eta, None)
    if state.hebb.dim() == 2:
        m = m if m.dim() == 0 else m.mean(0)
        return PlasticState(torch.clamp(torch.addcmul(state.hebb, e, m), -clip, clip), e)
    m3 = m.view(-1, 1, 1) if m.dim() == 1 else (m.unsqueeze(1) if m.dim() == 2 else m)
    return PlasticState(_Gated.apply(state.hebb, e, m3, float(clip)), e)


__all__ = ["RULES", "PlasticState", "hebbian_update", "modulated_update", "plastic_current"]
