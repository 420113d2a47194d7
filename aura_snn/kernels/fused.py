"""Fused multi-step LIF and CubaLIF: one autograd node for all ``T`` steps.

:func:`lif_multistep` and :func:`cuba_multistep` take the same arguments as the
reference ``functional.loop.run(functional.lif.step, ...)`` and return the same
:class:`~aura_snn.functional.loop.MultiStep`; ``tests/kernels`` asserts equal values
and gradients (``gradcheck`` in float64). Coefficients come from
:mod:`aura_snn.functional` (decay, gain, coupling); the time loop runs in a compiled
kernel per device: :mod:`.cpu` (numba) on the CPU, :mod:`.gpu` on CUDA.

Backward is hand-written BPTT through the surrogate derivative. Parameter gradients
(learnable ``tau``/``threshold``) are computed in the same reverse sweep, and only
when some parameter requires grad.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import InputValueError
from ..functional import cuba as F_cuba
from ..functional import lif as F_lif
from ..functional.firing import RESETS
from ..functional.loop import MultiStep
from . import cpu

_RESET = {name: i for i, name in enumerate(RESETS)}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _empty(dtype: torch.dtype) -> torch.Tensor:
    return torch.empty((0, 0), dtype=dtype)


class _FusedCuba(torch.autograd.Function):
    """``(x, v0, i0, a_m, a_s, k, v_leak, theta, v_reset) -> (S, v_trace, v_T, i_T)``.

    ``x`` is ``[T, M]``; every other tensor is ``[M]``; all contiguous, same dtype.
    ``cfg = (reset, next_step, voltage_first, surrogate id, slope, detach, is_lif,
    record_v)``.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor,
                am: torch.Tensor, asyn: torch.Tensor, k: torch.Tensor, vl: torch.Tensor,
                th: torch.Tensor, vr: torch.Tensor, cfg: tuple) -> tuple[torch.Tensor, ...]:
        reset, nxt, vfirst, sid, slope, detach, is_lif, record_v = cfg
        T, M = x.shape
        dt_ = x.dtype
        need_grad = any(ctx.needs_input_grad[:9])
        pgrad = any(ctx.needs_input_grad[3:9])
        s = torch.empty_like(x)
        u = torch.empty_like(x) if need_grad else _empty(dt_)
        vtr = torch.empty_like(x) if record_v else _empty(dt_)
        cur = torch.empty_like(x) if (pgrad and not is_lif) else _empty(dt_)
        vT, iT = torch.empty_like(v0), torch.empty_like(i0)
        bad = np.zeros((M + cpu.CHUNK - 1) // cpu.CHUNK, dtype=np.int64)
        cpu.forward(_np(x), _np(v0), _np(i0), _np(am), _np(asyn), _np(k), _np(vl), _np(th),
                    _np(vr), reset, nxt, vfirst, _np(s), _np(u), _np(vtr), _np(cur),
                    _np(vT), _np(iT), bad)
        nbad = int(bad.sum())
        if nbad:
            raise InputValueError(
                f"input x contains NaN or infinite values (at {nbad} neuron(s) of {M})")
        ctx.cfg = cfg
        ctx.pgrad = pgrad
        if need_grad:
            ctx.save_for_backward(u, x if is_lif else cur, v0, i0, am, asyn, k, vl, th, vr)
        return s, vtr, vT, iT

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor, gvtr: torch.Tensor, gvT: torch.Tensor,
                 giT: torch.Tensor) -> tuple[Any, ...]:
        reset, nxt, vfirst, sid, slope, detach, is_lif, record_v = ctx.cfg
        u, cur, v0, i0, am, asyn, k, vl, th, vr = ctx.saved_tensors
        dtype = u.dtype
        gs = _zeros_if_none(gs, u).contiguous()
        gvtr = gvtr.contiguous() if (record_v and gvtr is not None) else _empty(dtype)
        gvT = _zeros_if_none(gvT, v0).contiguous()
        giT = _zeros_if_none(giT, i0).contiguous()
        gx = torch.empty_like(u)
        gv0, gi0 = torch.empty_like(v0), torch.empty_like(i0)
        grads = [torch.zeros_like(v0) for _ in range(6)]
        cur_np = _np(cur) if ctx.pgrad else _np(_empty(dtype))
        cpu.backward(_np(gs), _np(gvtr), _np(gvT), _np(giT), _np(u), cur_np, _np(v0),
                     _np(i0), _np(am), _np(asyn), _np(k), _np(vl), _np(th), _np(vr),
                     reset, nxt, vfirst, sid, slope, detach, int(ctx.pgrad),
                     _np(gx), _np(gv0), _np(gi0), *(_np(g) for g in grads))
        need = ctx.needs_input_grad
        g_am, g_as, g_k, g_vl, g_th, g_vr = grads
        return (gx if need[0] else None, gv0 if need[1] else None,
                gi0 if need[2] else None, g_am if need[3] else None,
                g_as if need[4] else None, g_k if need[5] else None,
                g_vl if need[6] else None, g_th if need[7] else None,
                g_vr if need[8] else None, None)


def _zeros_if_none(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if g is None else g


def _flat(value: Any, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar/tensor parameter to the neuron shape and flatten to ``[M]``."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return t.expand(shape).reshape(-1).contiguous()


def _run(x: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor, am: Any, asyn: Any, k: Any,
         p: F_lif.LIFParameters, record_v: bool, is_lif: bool,
         vfirst: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    if x.device.type != "cpu":
        from . import gpu

        return gpu.run(x, v0, i0, am, asyn, k, p, record_v, is_lif, vfirst)
    T = x.shape[0]
    shape = x.shape[1:]
    x2 = x.reshape(T, -1).contiguous()
    cfg = (_RESET[p.reset], int(p.reset_at == "next_step"), int(vfirst), p.surrogate_id,
           p.surrogate_slope, int(p.detach_reset), is_lif, record_v)
    params = [_flat(c, shape, x) for c in (am, asyn, k, p.v_leak, p.threshold, p.v_reset)]
    s, vtr, vT, iT = _FusedCuba.apply(x2, v0.reshape(-1).contiguous(),
                                      i0.reshape(-1).contiguous(), *params, cfg)
    return (s.view(x.shape), vtr.view(x.shape) if record_v else None, vT.view(shape),
            iT.view(shape))


def lif_multistep(x: torch.Tensor, state: F_lif.LIFState | None, p: F_lif.LIFParameters,
                  dt: float, record_v: bool = False) -> MultiStep:
    """Fused equivalent of ``loop.run(functional.lif.step, x, state, p, dt, record_v)``.

    ``x``: ``[T, B, ...]`` input (V); returns spikes ``[T, B, ...]``, the membrane trace
    if ``record_v``, and the final :class:`~aura_snn.functional.lif.LIFState`.
    """
    if state is None:
        state = F_lif.initial_state(x[0], p)
    a, g = F_lif.coefficients(p, dt)
    zeros = torch.zeros_like(state.v)
    s, vtr, vT, _ = _run(x, state.v, zeros, a, 0.0, g, p, record_v, True, False)
    return MultiStep(s, vtr, F_lif.LIFState(vT))


def cuba_multistep(x: torch.Tensor, state: F_cuba.CubaLIFState | None,
                   p: F_cuba.CubaLIFParameters, dt: float, record_v: bool = False) -> MultiStep:
    """Fused equivalent of ``loop.run(functional.cuba.step, x, state, p, dt, record_v)``."""
    if state is None:
        state = F_cuba.initial_state(x[0], p)
    a_m, a_s, k = F_cuba.coefficients(p, dt)
    s, vtr, vT, iT = _run(x, state.v, state.i, a_m, a_s, k, p, record_v, False,
                          p.order == "voltage_first")
    return MultiStep(s, vtr, F_cuba.CubaLIFState(vT, iT))
