"""Fused multi-step LIF and CubaLIF: one autograd node for all ``T`` steps.

:func:`lif_multistep` and :func:`cuba_multistep` take the same arguments as the
reference ``functional.loop.run(functional.lif.step, ...)`` and return the same
:class:`~aura_snn.functional.loop.MultiStep`; ``tests/kernels`` asserts equal values
and gradients (``gradcheck`` in float64). Coefficients are the model's compiled
family (``spec.compile(p, dt)`` of :mod:`aura_snn.functional.registry`, the encoding
the graph engine runs too); the time loop runs in a compiled kernel: :mod:`.cpu`
(numba; problems below :func:`.cpu.serial`'s size on the calling thread, larger ones
on numba's thread pool, same bits either way) for CPU tensors, :mod:`.gpu` (Triton)
for CUDA tensors, both around the one per-neuron step of :mod:`.family`. Without
Triton on a CUDA machine the reference loop runs instead, with a warning.

Backward is hand-written BPTT through the surrogate derivative. Parameter gradients
(learnable ``tau``/``threshold``) are computed in the same reverse sweep, and only
when some parameter requires grad.
"""

from __future__ import annotations

import importlib.util
import warnings
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch

from .._checks import check_choice
from ..errors import InputValueError, ParameterTypeError
from ..functional import cuba as F_cuba
from ..functional import lif as F_lif
from ..functional import loop, registry
from ..functional.loop import MultiStep
from . import cpu
from ._coeffs import coefficient_rows
from ._memory import BUFFERS

KERNELS = ("auto", "numba", "triton")
#: The kernels' per-chunk spike counts when nobody asked for them: empty, never written.
_NOT_COUNTED = np.zeros(0, dtype=np.int64)
SMALL_BYTES = 64 << 10  # outputs up to this size skip the buffer pool (see _forward)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy() if t.requires_grad else t.numpy()


def _buffer(like: torch.Tensor) -> torch.Tensor:
    """An uninitialised ``[T, M]`` output: from the buffer pool above ``SMALL_BYTES``,
    else from torch's allocator (the pool's bookkeeping costs more than it saves below
    the page-fault sizes it exists for, :mod:`._memory`)."""
    if like.numel() * like.element_size() > SMALL_BYTES:
        return BUFFERS.empty_like(like)
    return torch.empty_like(like, memory_format=torch.contiguous_format)


def _empty(like: torch.Tensor) -> torch.Tensor:
    return torch.empty((0, 0), dtype=like.dtype, device=like.device)


def triton_available() -> bool:
    """Whether the Triton package can be imported (the CUDA kernels need it)."""
    return importlib.util.find_spec("triton") is not None


def _gpu() -> ModuleType:
    from . import gpu

    return gpu


def _launch_forward(kernel: str, x: torch.Tensor, *args: Any, count: bool = False
                    ) -> tuple[int, int | None]:
    """Run the forward kernel; returns the neurons that saw a non-finite input and, with
    ``count``, the number of spikes (counted by the CPU kernel as it writes them; None
    on CUDA or without ``count``)."""
    if kernel == "triton":
        return _gpu().forward(x, *args), None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    coeffs = tensors[:9]                      # v0, i0, a_m, b, c, k, v_leak, theta, v_reset
    reset, nxt, late = args[9:12]
    outs = tensors[9:]                        # s, u, v trace, i trace, v_T, i_T
    bad = np.zeros((x.shape[1] + cpu.CHUNK - 1) // cpu.CHUNK, dtype=np.int64)
    nspk = np.zeros(bad.shape[0], dtype=np.int64) if count else _NOT_COUNTED
    run = cpu.forward_serial if cpu.serial(*x.shape) else cpu.forward
    run(_np(x), *(_np(t) for t in coeffs), reset, nxt, late, *(_np(t) for t in outs), bad,
        nspk)
    return int(bad.sum()), int(nspk.sum()) if count else None


def _launch_backward(kernel: str, *args: Any) -> None:
    if kernel == "triton":
        _gpu().backward(*args)
        return
    u = args[4]                               # saved pre-reset membrane [T, M]
    run = cpu.backward_serial if cpu.serial(*u.shape) else cpu.backward
    run(*(_np(a) if isinstance(a, torch.Tensor) else a for a in args))


def _forward(x: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor, am: torch.Tensor,
             bb: torch.Tensor, cc: torch.Tensor, k: torch.Tensor, vl: torch.Tensor,
             th: torch.Tensor, vr: torch.Tensor, cfg: tuple, need_grad: bool,
             pgrad: bool, count: bool = False) -> tuple[Any, ...]:
    """Run the forward kernel: ``(S, u, v_trace, i_trace, v_T, i_T, n_spikes)`` (``u``
    kept only for ``need_grad``, the current trace only for parameter grads ``pgrad``;
    ``n_spikes`` the sum of ``S`` where ``count`` asked the kernel for it and it can,
    else None)."""
    reset, nxt, late, sid, slope, detach, has_cur, record_v, kernel = cfg
    s = _buffer(x)
    u = _buffer(x) if need_grad else _empty(x)
    vtr = _buffer(x) if record_v else _empty(x)
    cur = _buffer(x) if (pgrad and has_cur) else _empty(x)
    vT, iT = torch.empty_like(v0), torch.empty_like(i0)
    nbad, nspk = _launch_forward(kernel, x, v0, i0, am, bb, cc, k, vl, th, vr, reset, nxt, late,
                           s, u, vtr, cur, vT, iT, count=count)
    if nbad:
        raise InputValueError(
            f"input x contains NaN or infinite values (at {nbad} neuron(s) of {x.shape[1]})")
    return s, u, vtr, cur, vT, iT, nspk


class _FusedCuba(torch.autograd.Function):
    """``(x, v0, i0, a_m, b, c, k, v_leak, theta, v_reset) -> (S, v_trace, v_T, i_T)``.

    ``x`` is ``[T, M]``; every other tensor is ``[M]``; all contiguous, same dtype and
    device. The coefficients are those of :class:`~aura_snn.functional.registry.
    CompiledFamily` (one receptor). ``cfg = (reset, next_step, late, surrogate id,
    slope, detach, has_current, record_v, kernel)``.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor,
                am: torch.Tensor, bb: torch.Tensor, cc: torch.Tensor, k: torch.Tensor,
                vl: torch.Tensor, th: torch.Tensor, vr: torch.Tensor,
                cfg: tuple) -> tuple[torch.Tensor, ...]:
        need_grad = any(ctx.needs_input_grad[:10])
        pgrad = any(ctx.needs_input_grad[3:10])
        s, u, vtr, cur, vT, iT, _ = _forward(x, v0, i0, am, bb, cc, k, vl, th, vr, cfg,
                                          need_grad, pgrad)
        ctx.cfg = cfg
        ctx.pgrad = pgrad
        if need_grad:
            ctx.save_for_backward(u, x if pgrad else _empty(x), cur, v0, i0, am, bb, cc, k,
                                  vl, th, vr)
        return s, vtr, vT, iT

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor | None, gvtr: torch.Tensor | None,
                 gvT: torch.Tensor | None, giT: torch.Tensor | None) -> tuple[Any, ...]:
        reset, nxt, late, sid, slope, detach, has_cur, record_v, kernel = ctx.cfg
        u, x, cur, v0, i0, am, bb, cc, k, vl, th, vr = ctx.saved_tensors
        gs = _time_rows(gs, u)
        gvtr = gvtr.contiguous() if (record_v and gvtr is not None) else _empty(u)
        gvT = _zeros_if_none(gvT, v0).contiguous()
        giT = _zeros_if_none(giT, i0).contiguous()
        gx = _buffer(u)
        gv0, gi0 = torch.empty_like(v0), torch.empty_like(i0)
        # a_m, b, c, k, v_leak, theta, v_reset: accumulated into zeros when wanted; else
        # never touched by the kernels, so no [M] buffer is zeroed for them
        grads = [torch.zeros_like(v0) for _ in range(7)] if ctx.pgrad else \
            [v0.new_empty(0)] * 7
        _launch_backward(kernel, gs, gvtr, gvT, giT, u, x, cur, v0, i0, am, bb, cc, k, vl, th,
                         vr, reset, nxt, late, sid, slope, detach, int(ctx.pgrad), gx, gv0,
                         gi0, *grads)
        need = ctx.needs_input_grad
        outs = (gx, gv0, gi0, *grads)
        return (*(g if need[n] else None for n, g in enumerate(outs)), None)


def _time_rows(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """The spike gradient as ``[T, M]``, or as one row ``[1, M]`` when it is the same at
    every step (no gradient, or a loss on spike counts ``S.sum(0)``, whose gradient is
    expanded along time): the kernels then read that row for every ``t`` instead of a
    materialised ``[T, M]`` copy."""
    if g is None:
        return torch.zeros((1, like.shape[1]), dtype=like.dtype, device=like.device)
    if g.shape[0] > 1 and g.stride(0) == 0:
        return g[0].contiguous().view(1, -1)
    return g.contiguous()


def _zeros_if_none(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if g is None else g


def _pick_kernel(kernel: str, x: torch.Tensor) -> str | None:
    check_choice("kernel", kernel, KERNELS)
    if kernel != "auto":
        return kernel
    if x.device.type == "cpu":
        return "numba"
    if x.device.type == "cuda" and triton_available():
        return "triton"
    return None


_warned: set[str] = set()


class LaunchPlan(NamedTuple):
    """What a CPU launch of one parameter set on ``M`` neurons needs besides its input,
    prepared once: the kernel's flags, the coefficient rows and the resting state as
    numpy arrays (read by the kernel, never written). :func:`run_planned` launches it;
    :class:`~aura_snn.neurons.base.SpikingNeuron` keeps a plan per input shape while its
    parameter values stay the same, so a small call (one decoded token through a
    spiking FFN: ``[4, 512]``, a ~5 us kernel) no longer pays ~0.1 ms of preparation.
    """

    is_lif: bool
    flags: tuple[int, int, int]           # reset code, next_step, late
    rows: tuple[np.ndarray, ...]          # a_m, b, c, k, v_leak, theta, v_reset  [M]
    v_rest: torch.Tensor                  # [M]
    i_rest: torch.Tensor                  # [M]
    nothing: np.ndarray                   # [0, 0] of the dtype: traces not written


def _kernel_coefficients(fam: registry.CompiledFamily) -> tuple[Any, ...]:
    """The seven per-neuron coefficients of a one-receptor family in the kernels' order:
    :math:`a_m, b, c, k, v_\text{leak}, \vartheta, v_\text{reset}`."""
    (k, bb, cc), = fam.receptors
    return (fam.a_m, bb, cc, k, fam.v_leak, fam.threshold, fam.v_reset)


def launch_plan(p: Any, dt: float, shape: torch.Size, dtype: torch.dtype,
                fam: registry.CompiledFamily | None = None) -> LaunchPlan:
    """The :class:`LaunchPlan` of parameters ``p`` (LIF or CubaLIF) for a CPU input of
    neuron shape ``shape`` and ``dtype`` (float32/float64); coefficients from the
    model's compiled family (``spec.compile(p, dt)``, the one source of them; ``fam``
    when the caller has compiled it already)."""
    spec = registry.spec_of(p)
    if spec is None or spec.module not in (F_lif, F_cuba):
        raise ParameterTypeError(f"p must be LIFParameters or CubaLIFParameters, got "
                                 f"{type(p).__name__}")
    F = spec.module
    is_lif = F is F_lif
    fam = spec.compile(p, dt) if fam is None else fam
    rows = coefficient_rows(_kernel_coefficients(fam), shape, torch.empty((), dtype=dtype))
    rest = F.initial_state(torch.zeros(shape, dtype=dtype), p)
    v_rest = rest.v.reshape(-1).contiguous()
    i_rest = torch.zeros_like(v_rest) if is_lif else rest.i.reshape(-1).contiguous()
    return LaunchPlan(is_lif, (fam.reset, int(fam.next_step), int(fam.late)),
                      tuple(_np(r) for r in rows), v_rest, i_rest,
                      np.empty((0, 0), dtype=v_rest.numpy().dtype))


def run_planned(plan: LaunchPlan, x: torch.Tensor, state: Any, record_v: bool = False,
                count_spikes: bool = False) -> MultiStep:
    """Run ``x`` ``[T, *shape]`` (CPU, the plan's dtype, ``T >= 1``) from ``state`` (or
    rest) through the plan's kernel, outside autograd; the same :class:`MultiStep` as
    :func:`lif_multistep` / :func:`cuba_multistep` (``spike_count`` with
    ``count_spikes``)."""
    T, shape = x.shape[0], x.shape[1:]
    M = plan.v_rest.shape[0]
    xs = x.detach().reshape(T, M)
    if not xs.is_contiguous():
        xs = xs.contiguous()
    if state is None:
        v0, i0 = plan.v_rest, plan.i_rest
    else:
        v0 = state.v.detach().reshape(-1).contiguous()
        i0 = plan.i_rest if plan.is_lif else state.i.detach().reshape(-1).contiguous()
    s = _buffer(xs)
    vtr = _buffer(xs) if record_v else None
    vT, iT = torch.empty_like(v0), torch.empty_like(i0)
    bad = np.zeros((M + cpu.CHUNK - 1) // cpu.CHUNK, dtype=np.int64)
    nspk = np.zeros(bad.shape[0], dtype=np.int64) if count_spikes else _NOT_COUNTED
    run = cpu.forward_serial if cpu.serial(T, M) else cpu.forward
    run(xs.numpy(), v0.numpy(), i0.numpy(), *plan.rows, *plan.flags, s.numpy(), plan.nothing,
        plan.nothing if vtr is None else vtr.numpy(), plan.nothing, vT.numpy(), iT.numpy(),
        bad, nspk)
    nbad = int(bad.sum())
    if nbad:
        raise InputValueError(
            f"input x contains NaN or infinite values (at {nbad} neuron(s) of {M})")
    new_state = F_lif.LIFState(vT.view(shape)) if plan.is_lif else \
        F_cuba.CubaLIFState(vT.view(shape), iT.view(shape))
    return MultiStep(s.view(x.shape), None if vtr is None else vtr.view(x.shape), new_state,
                     int(nspk.sum()) if count_spikes else None)


def _run(x: torch.Tensor, state: Any, p: F_lif.LIFParameters, dt: float, record_v: bool,
         kernel: str, is_lif: bool, count_spikes: bool = False) -> MultiStep:
    F = F_lif if is_lif else F_cuba
    if x.dtype in HALF:
        return _run_upcast(x, state, p, dt, record_v, kernel, is_lif)
    if x.shape[0] == 0:  # T = 0: empty outputs, the state unchanged
        if state is None:
            state = F.initial_state(x.new_zeros(x.shape[1:]), p)
        return loop.run(F.step, x, state, p, dt, record_v=record_v)
    chosen = _pick_kernel(kernel, x)
    if chosen is None:
        if x.device.type not in _warned:
            _warned.add(x.device.type)
            warnings.warn(f"no fused kernel for device {x.device.type!r} (Triton not "
                          f"installed?): running the reference loop", stacklevel=3)
        return loop.run(F.step, x, state, p, dt, record_v=record_v)
    T, shape = x.shape[0], x.shape[1:]
    spec = registry.spec_of(F)
    fam = spec.compile(p, dt)                           # the one source of the coefficients
    params = _kernel_coefficients(fam)
    grad = torch.is_grad_enabled() and (
        x.requires_grad or any(isinstance(v, torch.Tensor) and v.requires_grad
                               for v in (*params, *(state or ()))))
    if chosen == "numba" and not grad:  # nothing to differentiate: no autograd node
        return run_planned(launch_plan(p, dt, shape, x.dtype, fam), x, state, record_v,
                           count_spikes)
    if state is None:
        state = F.initial_state(x.new_zeros(shape), p)
    cfg = (fam.reset, int(fam.next_step), int(fam.late), p.surrogate_id, p.surrogate_slope,
           int(p.detach_reset), "i" in spec.roles, record_v, chosen)
    rows = coefficient_rows(params, shape, x)
    i0 = torch.zeros_like(state.v) if is_lif else state.i
    args = (x.reshape(T, -1).contiguous(), state.v.reshape(-1).contiguous(),
            i0.reshape(-1).contiguous(), *rows)
    if torch.is_grad_enabled() and any(a.requires_grad for a in args):
        s, vtr, vT, iT = _FusedCuba.apply(*args, cfg)
        nspk = None
    else:  # CUDA without a gradient: the same kernel without an autograd node
        s, _, vtr, _, vT, iT, nspk = _forward(*args, cfg, False, False, count_spikes)
    v = vtr.view(x.shape) if record_v else None
    new_state = F_lif.LIFState(vT.view(shape)) if is_lif else \
        F_cuba.CubaLIFState(vT.view(shape), iT.view(shape))
    return MultiStep(s.view(x.shape), v, new_state, nspk)


#: Half-precision dtypes, computed in float32 (:func:`_run_upcast`).
HALF = (torch.float16, torch.bfloat16)


def _run_upcast(x: torch.Tensor, state: Any, p: F_lif.LIFParameters, dt: float,
                record_v: bool, kernel: str, is_lif: bool) -> MultiStep:
    """float16/bfloat16 input: the kernel runs in float32 (as autocast would) and the
    spikes, trace and state come back in the input's dtype; gradients reach ``x`` (and
    the state) in their own dtype through the casts."""
    half = x.dtype
    up = None if state is None else type(state)(*(t.float() for t in state))
    out = _run(x.float(), up, p, dt, record_v, kernel, is_lif)
    return MultiStep(out.spikes.to(half), None if out.v is None else out.v.to(half),
                     type(out.state)(*(t.to(half) for t in out.state)))


def lif_multistep(x: torch.Tensor, state: F_lif.LIFState | None, p: F_lif.LIFParameters,
                  dt: float, record_v: bool = False, kernel: str = "auto",
                  count_spikes: bool = False) -> MultiStep:
    """Fused equivalent of ``loop.run(functional.lif.step, x, state, p, dt, record_v)``.

    ``x``: ``[T, B, ...]`` input (V) in float16, bfloat16 (computed in float32), float32
    or float64; returns spikes ``[T, B, ...]``, the membrane trace
    if ``record_v``, and the final :class:`~aura_snn.functional.lif.LIFState`.
    ``T = 0`` gives empty ``[0, B, ...]`` spikes (and trace) and the initial state
    (``state``, or rest when ``None``), without launching a kernel.
    ``kernel``: ``"auto"`` (numba on CPU, Triton on CUDA), or force one (tests run the
    Triton kernels on CPU tensors in Triton's interpreter). ``count_spikes``: the CPU
    kernel also counts the spikes it writes (``MultiStep.spike_count``; not under
    autograd, nor on CUDA, where it stays None).
    """
    return _run(x, state, p, dt, record_v, kernel, True, count_spikes)


def cuba_multistep(x: torch.Tensor, state: F_cuba.CubaLIFState | None,
                   p: F_cuba.CubaLIFParameters, dt: float, record_v: bool = False,
                   kernel: str = "auto", count_spikes: bool = False) -> MultiStep:
    """Fused equivalent of ``loop.run(functional.cuba.step, x, state, p, dt, record_v)``.

    Dtypes, ``T = 0``, ``kernel`` and ``count_spikes`` as in :func:`lif_multistep`."""
    return _run(x, state, p, dt, record_v, kernel, False, count_spikes)
