r"""Fused multi-step LIF/CubaLIF on CUDA: Triton kernels, the twins of :mod:`.cpu`.

Same equations, coefficients (the model's compiled family: per neuron ``a_m``, the
receptor's ``b``, ``c``, ``k``, ``v_leak``, threshold, ``v_reset``), layout (``[T, M]``
time-major, per-neuron parameters ``[M]``) and argument order as
:mod:`aura_snn.kernels.cpu`; see its docstring. Each Triton program owns ``BLOCK``
neurons and walks all ``T`` steps with the state in registers, so every step is one
coalesced load of ``x`` and one coalesced store per output: the kernel is bound by
HBM bandwidth, not by launches (one launch for all ``T`` steps instead of ~10 per
step in an unfused loop). Mode flags are ``tl.constexpr``, so each combination
compiles to straight-line code.

The forward step of a neuron is the one of the CPU kernel and the graph engine:
:func:`aura_snn.kernels.family.receptor` and :func:`~aura_snn.kernels.family.neuron`,
the same Python functions compiled by ``triton.jit`` (:func:`_jit_shared` binds their
``where`` to ``tl.where`` and the reset codes to ``tl.constexpr`` values; their mode flags
arrive as ``tl.constexpr``, so their ``if``\ s are resolved at compile time). The
surrogate derivatives are the Python functions of :mod:`aura_snn.functional.surrogate`,
compiled the same way. Backward (BPTT) is this file's twin of
:func:`aura_snn.kernels.cpu.backward`, checked against the reference like it.

Floating-point contraction (FMA) is disabled at launch (``enable_fp_fusion=False``):
the kernels then round exactly as the reference does, so spikes decided within an ulp
of threshold agree across devices.

``tests/kernels/test_gpu_kernel.py`` runs these kernels in Triton's interpreter on
the CPU against the reference (and compiles them for sm_90 without a GPU); on a CUDA
machine the same tests run natively.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any

import torch
import triton
import triton.language as tl

from ..functional.surrogate import arctan_grad, fast_sigmoid_grad, triangle_grad
from . import family

BLOCK = 256


def _jit_shared(fn: FunctionType, scope: dict[str, Any] | None = None) -> triton.JITFunction:
    """``triton.jit`` a plain-arithmetic function from another module, its global names
    looked up first in ``scope`` (a backend's primitives). The clone's globals also
    hold ``tl``, which Triton's interpreter requires to see."""
    return triton.jit(family.rebind(fn, {"tl": tl, "triton": triton, **(scope or {})}))


_fs = _jit_shared(fast_sigmoid_grad)
_at = _jit_shared(arctan_grad)
_tr = _jit_shared(triangle_grad)
SUBTRACT = tl.constexpr(family.SUBTRACT)  # reset codes of functional.firing.RESET_CODE
ZERO = tl.constexpr(family.ZERO)


@triton.jit
def _where(cond, a, b):
    """The shared functions' ``where``: ``tl.where`` behind a jit function (a builtin
    bound directly would bypass the interpreter's patched ``tl``)."""
    return tl.where(cond, a, b)


_SCOPE: dict[str, Any] = {"where": _where, "SUBTRACT": tl.constexpr(family.SUBTRACT),
                          "ZERO": tl.constexpr(family.ZERO), "NONE": tl.constexpr(family.NONE)}
_SCOPE["integrate"] = _jit_shared(family.integrate, _SCOPE)
_receptor = _jit_shared(family.receptor, _SCOPE)
_neuron = _jit_shared(family.neuron, _SCOPE)


@triton.jit
def _sg(x, slope, SID: tl.constexpr):
    ax = tl.abs(x)
    if SID == 0:
        y = _fs(ax, slope)
    elif SID == 1:
        y = _at(ax, slope)
    else:
        y = _tr(ax, slope)
    return y


@triton.jit
def _reset(u, s, theta, vr, RESET: tl.constexpr):
    """The membrane after the reset of a spike ``s`` (backward's reconstruction of the
    state before a step from its saved pre-reset membrane)."""
    if RESET == SUBTRACT:
        v = u - theta * s
    elif RESET == ZERO:
        v = (1.0 - s) * u + s * vr
    else:
        v = u
    return v


@triton.jit
def _load_params(offs, mask, am_ptr, b_ptr, c_ptr, k_ptr, vl_ptr, th_ptr, vr_ptr):
    """Per-neuron coefficients of a block: decay, the receptor's b, c, k, v_leak,
    threshold (1 in masked lanes, never 0) and v_reset."""
    am = tl.load(am_ptr + offs, mask=mask, other=0.0)
    b = tl.load(b_ptr + offs, mask=mask, other=0.0)
    c = tl.load(c_ptr + offs, mask=mask, other=0.0)
    k = tl.load(k_ptr + offs, mask=mask, other=0.0)
    vl = tl.load(vl_ptr + offs, mask=mask, other=0.0)
    th = tl.load(th_ptr + offs, mask=mask, other=1.0)
    vr = tl.load(vr_ptr + offs, mask=mask, other=0.0)
    return am, b, c, k, vl, th, vr


@triton.jit
def _forward_kernel(x_ptr, v0_ptr, i0_ptr, am_ptr, b_ptr, c_ptr, k_ptr, vl_ptr, th_ptr,
                    vr_ptr, s_ptr, u_ptr, vo_ptr, io_ptr, vT_ptr, iT_ptr, chk_ptr, T, M,
                    RESET: tl.constexpr, NXT: tl.constexpr, LATE: tl.constexpr,
                    SAVE_U: tl.constexpr, SAVE_V: tl.constexpr, SAVE_I: tl.constexpr,
                    BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    cur = tl.load(i0_ptr + offs, mask=mask, other=0.0)
    am, b, c, k, vl, th, vr = _load_params(offs, mask, am_ptr, b_ptr, c_ptr, k_ptr, vl_ptr,
                                           th_ptr, vr_ptr)
    chk = v * 0.0
    zero = v * 0.0
    zero64 = tl.zeros([BLOCK], dtype=tl.int64)
    for t in range(0, T):
        idx = (zero64 + t) * M + offs  # int64: T * M may exceed 2**31
        x = tl.load(x_ptr + idx, mask=mask, other=0.0)
        chk += x - x
        ie, inew = _receptor(cur, x, b, c, LATE, zero)
        vn, _r, _b, spk, u = _neuron(v, zero, zero, k * ie, am, vl, th, vr, zero, zero, 0,
                                     RESET, NXT, False, False, zero, zero + 1.0)
        s = tl.where(spk, 1.0, 0.0).to(v.dtype)
        v = vn
        cur = inew
        tl.store(s_ptr + idx, s, mask=mask)
        if SAVE_U:
            tl.store(u_ptr + idx, u, mask=mask)
        if SAVE_V:
            tl.store(vo_ptr + idx, vn, mask=mask)
        if SAVE_I:
            tl.store(io_ptr + idx, inew, mask=mask)
    tl.store(vT_ptr + offs, v, mask=mask)
    tl.store(iT_ptr + offs, cur, mask=mask)
    tl.store(chk_ptr + offs, chk, mask=mask)


@triton.jit
def _backward_kernel(gs_ptr, gtr_ptr, gvT_ptr, giT_ptr, u_ptr, x_ptr, cur_ptr, v0_ptr,
                     i0_ptr, am_ptr, b_ptr, c_ptr, k_ptr, vl_ptr, th_ptr, vr_ptr, slope,
                     gx_ptr, gv0_ptr, gi0_ptr, gam_ptr, gb_ptr, gc_ptr, gk_ptr, gvl_ptr,
                     gth_ptr, gvr_ptr, T, M, gs_rows,
                     RESET: tl.constexpr, NXT: tl.constexpr, LATE: tl.constexpr,
                     SID: tl.constexpr, DETACH: tl.constexpr, PGRAD: tl.constexpr,
                     HAS_TR: tl.constexpr, HAS_CUR: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    gv = tl.load(gvT_ptr + offs, mask=mask, other=0.0)
    gi = tl.load(giT_ptr + offs, mask=mask, other=0.0)
    v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    i0 = tl.load(i0_ptr + offs, mask=mask, other=0.0)
    am, b, c, k, vl, th, vr = _load_params(offs, mask, am_ptr, b_ptr, c_ptr, k_ptr, vl_ptr,
                                           th_ptr, vr_ptr)
    zero = gv * 0.0
    g_am = gv * 0.0
    g_b = gv * 0.0
    g_c = gv * 0.0
    g_k = gv * 0.0
    g_vl = gv * 0.0
    g_th = gv * 0.0
    g_vr = gv * 0.0
    zero64 = tl.zeros([BLOCK], dtype=tl.int64)
    for tt in range(0, T):
        t = T - 1 - tt
        row = zero64 + t
        idx = row * M + offs  # int64: T * M may exceed 2**31
        has_prev = row > 0
        pmask = mask & has_prev
        pidx = idx - M
        ut = tl.load(u_ptr + idx, mask=mask, other=0.0)
        gs_idx = tl.minimum(row, gs_rows - 1) * M + offs  # one row: same grad every step
        gst_ext = tl.load(gs_ptr + gs_idx, mask=mask, other=0.0)
        sg = _sg(ut - th, slope, SID)
        gvt = gv
        if HAS_TR:
            gvt = gvt + tl.load(gtr_ptr + idx, mask=mask, other=0.0)
        up = tl.load(u_ptr + pidx, mask=pmask, other=0.0)
        if NXT:
            vp = tl.where(has_prev, up, v0)
        else:
            sp = tl.where(up - th > 0.0, 1.0, 0.0).to(up.dtype)
            vp = tl.where(has_prev, _reset(up, sp, th, vr, RESET), v0)
        if NXT:
            r = tl.where(vp > th, 1.0, 0.0).to(vp.dtype)
            gu = gvt + gst_ext * sg
            if RESET == ZERO:
                w = (1.0 - r) * vp + r * vr
                gvp = am * (1.0 - r) * gu
            else:
                w = vp
                gvp = am * gu
            if PGRAD:
                g_th -= gst_ext * sg
                if RESET == SUBTRACT:
                    g_th -= gu * r
                elif RESET == ZERO:
                    g_vr += gu * am * r
        else:
            st = tl.where(ut - th > 0.0, 1.0, 0.0).to(ut.dtype)
            if RESET == SUBTRACT:
                dvdu = 1.0
                if DETACH:
                    dvds = 0.0
                else:
                    dvds = -th
            elif RESET == ZERO:
                dvdu = 1.0 - st
                if DETACH:
                    dvds = 0.0
                else:
                    dvds = vr - ut
            else:
                dvdu = 1.0
                dvds = 0.0
            gst = gst_ext + gvt * dvds
            gu = gvt * dvdu + gst * sg
            w = vp
            gvp = am * gu
            if PGRAD:
                g_th -= gst * sg
                if RESET == SUBTRACT:
                    g_th -= gvt * st
                elif RESET == ZERO:
                    g_vr += gvt * st
        # receptor: i_hat = b i + [not late] x, i' = c i_hat + [late] x, u += k i_hat
        gio = gi
        gie = c * gi + k * gu
        if LATE:
            gin = gi
        else:
            gin = gie
        gi = b * gie
        tl.store(gx_ptr + idx, gin, mask=mask)
        gv = gvp
        if PGRAD:
            if HAS_CUR:
                ip = tl.where(has_prev, tl.load(cur_ptr + pidx, mask=pmask, other=0.0), i0)
            else:
                ip = i0
            xt = tl.load(x_ptr + idx, mask=mask, other=0.0)
            ie, _i = _receptor(ip, xt, b, c, LATE, zero)
            g_am += gu * (w - vl)
            g_vl += gu * (1.0 - am)
            g_k += gu * ie
            g_b += gie * ip
            g_c += gio * ie
    tl.store(gv0_ptr + offs, gv, mask=mask)
    tl.store(gi0_ptr + offs, gi, mask=mask)
    if PGRAD:
        tl.store(gam_ptr + offs, g_am, mask=mask)
        tl.store(gb_ptr + offs, g_b, mask=mask)
        tl.store(gc_ptr + offs, g_c, mask=mask)
        tl.store(gk_ptr + offs, g_k, mask=mask)
        tl.store(gvl_ptr + offs, g_vl, mask=mask)
        tl.store(gth_ptr + offs, g_th, mask=mask)
        tl.store(gvr_ptr + offs, g_vr, mask=mask)


def _or(t: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    return t if t.numel() else fallback


def forward(x: torch.Tensor, v0: torch.Tensor, i0: torch.Tensor, am: torch.Tensor,
            b: torch.Tensor, c: torch.Tensor, k: torch.Tensor, vl: torch.Tensor,
            th: torch.Tensor, vr: torch.Tensor, reset: int, nxt: int, late: int,
            s: torch.Tensor, u: torch.Tensor, vo: torch.Tensor, io: torch.Tensor,
            vT: torch.Tensor, iT: torch.Tensor) -> int:
    """Launch the forward kernel; returns the number of neurons that saw non-finite input."""
    T, M = x.shape
    chk = torch.empty_like(v0)
    grid = (triton.cdiv(M, BLOCK),)
    _forward_kernel[grid](x, v0, i0, am, b, c, k, vl, th, vr, s, _or(u, s), _or(vo, s),
                          _or(io, s), vT, iT, chk, T, M, RESET=reset, NXT=bool(nxt),
                          LATE=bool(late), SAVE_U=u.numel() > 0, SAVE_V=vo.numel() > 0,
                          SAVE_I=io.numel() > 0, BLOCK=BLOCK, enable_fp_fusion=False)
    return int((chk != 0).sum())


def backward(gs: torch.Tensor, gvtr: torch.Tensor, gvT: torch.Tensor, giT: torch.Tensor,
             u: torch.Tensor, x: torch.Tensor, cur: torch.Tensor, v0: torch.Tensor,
             i0: torch.Tensor, am: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
             k: torch.Tensor, vl: torch.Tensor, th: torch.Tensor, vr: torch.Tensor, reset: int,
             nxt: int, late: int, sid: int, slope: float, detach: int, pgrad: int,
             gx: torch.Tensor, gv0: torch.Tensor, gi0: torch.Tensor,
             *pgrads: torch.Tensor) -> None:
    """Launch the backward kernel (arguments as :func:`aura_snn.kernels.cpu.backward`)."""
    T, M = u.shape
    grid = (triton.cdiv(M, BLOCK),)
    _backward_kernel[grid](gs, _or(gvtr, gs), gvT, giT, u, _or(x, u), _or(cur, u), v0, i0,
                           am, b, c, k, vl, th, vr, float(slope), gx, gv0, gi0, *pgrads, T, M,
                           gs.shape[0], RESET=reset, NXT=bool(nxt), LATE=bool(late), SID=sid,
                           DETACH=detach, PGRAD=pgrad, HAS_TR=gvtr.numel() > 0,
                           HAS_CUR=cur.numel() > 0, BLOCK=BLOCK, enable_fp_fusion=False)
