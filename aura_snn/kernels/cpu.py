r"""Fused multi-step LIF/CubaLIF on the CPU: one compiled time loop, forward and BPTT.

The equations are those of :mod:`aura_snn.functional.cuba` (a LIF population is the
CubaLIF case :math:`a_s = 0`, :math:`k = g`, so :math:`i[t] = x[t]`), with the
threshold/reset rules of :mod:`aura_snn.functional.firing` and the surrogate
derivatives of :mod:`aura_snn.functional.surrogate` (compiled from the same Python
functions). ``tests/kernels`` checks values and gradients against the step-by-step
reference.

Layout: every array is flattened to ``[T, M]`` (time-major, ``M = B * neurons``) and
C-contiguous; per-neuron parameters are ``[M]``. Neurons are split into chunks of
``CHUNK`` run in parallel (``numba.prange``); each chunk walks time with its state in
a small local array, calling a short inner loop over the chunk's neurons for every
step. The inner loops are branch-invariant in their mode flags, so LLVM unswitches and
vectorises them (AVX2): every step streams one contiguous run per array, close to
copy bandwidth.

Mode codes (plain ints, so one compiled function serves every option):
``reset`` 0 subtract, 1 zero, 2 none; ``nxt`` 1 for ``reset_at="next_step"``;
``vfirst`` 1 for ``order="voltage_first"``; ``sid`` surrogate index; ``detach`` 1
to stop the gradient through the reset.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import overload

from ..functional.surrogate import arctan_grad, fast_sigmoid_grad, triangle_grad

CHUNK = 4096  # neurons per parallel task: long contiguous runs for the prefetcher (16 KiB)

# error_model="numpy": a float division by zero gives inf instead of raising. The
# Python error model puts a zero check (and an exception path) in every division,
# which stops LLVM from vectorising the surrogate's 1/(1 + k|x|)^2.
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inl = numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
_fs = _inl(fast_sigmoid_grad)
_at = _inl(arctan_grad)
_tr = _inl(triangle_grad)


def _like(ref, value):  # noqa: ANN001, ANN202
    """``value`` converted to the float type of ``ref`` (compiled by the overload below)."""
    raise RuntimeError("only callable from compiled code")


@overload(_like, inline="always")
def _like_impl(ref, value):  # noqa: ANN001, ANN202
    if ref == types.float32:
        return lambda ref, value: np.float32(value)
    return lambda ref, value: np.float64(value)


@_inl
def _sg(x, sid, slope):  # noqa: ANN001, ANN202 - compiled
    """Surrogate derivative at ``x``, in ``x``'s precision. The shared formulas' float
    literals make numba evaluate them in float64; the result is narrowed back so the
    rest of a float32 loop stays float32 (and twice as wide in SIMD)."""
    ax = abs(x)
    if sid == 0:
        return _like(x, _fs(ax, slope))
    if sid == 1:
        return _like(x, _at(ax, slope))
    return _like(x, _tr(ax, slope))


@_jit
def _fwd_step(chk, xr, sr, ur, vo, io, v, cur, am, asn, k, vl, th, vrs, reset, nxt,
              vfirst):  # pragma: no cover - compiled
    """One step for a chunk of neurons. The mode flags are loop-invariant, so LLVM
    unswitches them and vectorises each variant. ``chk[j]`` accumulates ``x - x`` (0,
    or NaN once a non-finite input arrived): elementwise, so the loop still
    vectorises, unlike a counter."""
    one = np.ones(1, xr.dtype)[0]
    zero = one - one
    for j in range(v.shape[0]):
        xt = xr[j]
        chk[j] += xt - xt
        ip = cur[j]
        inew = asn[j] * ip + xt
        drive = k[j] * (ip if vfirst else inew)
        theta = th[j]
        vp = v[j]
        if nxt:  # reset_at="next_step": the state keeps u; last step's spike resets now
            r = one if vp > theta else zero
            if reset == 0:
                u = (vl[j] + am[j] * (vp - vl[j]) + drive) - theta * r
            elif reset == 1:
                u = vl[j] + am[j] * (((one - r) * vp + r * vrs[j]) - vl[j]) + drive
            else:
                u = vl[j] + am[j] * (vp - vl[j]) + drive
            s = one if u - theta > zero else zero
            vn = u
        else:
            u = vl[j] + am[j] * (vp - vl[j]) + drive
            s = one if u - theta > zero else zero
            if reset == 0:
                vn = u - theta * s
            elif reset == 1:
                vn = (one - s) * u + s * vrs[j]
            else:
                vn = u
        v[j] = vn
        cur[j] = inew
        sr[j] = s
        ur[j] = u
        vo[j] = vn
        io[j] = inew


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def forward(x, v0, i0, am, asn, k, vl, th, vr, reset, nxt, vfirst,
            s_out, u_out, v_out, i_out, vT, iT, bad):  # pragma: no cover - compiled
    """Forward over ``T`` steps. ``u_out`` (pre-reset membrane, for backward), ``v_out``
    (membrane trace) and ``i_out`` (current trace) are written only when non-empty.
    ``bad[c]`` counts the neurons of chunk ``c`` that received a non-finite input."""
    T, M = x.shape
    nchunks = (M + CHUNK - 1) // CHUNK
    save_u = u_out.shape[0] > 0
    save_v = v_out.shape[0] > 0
    save_i = i_out.shape[0] > 0
    for c in numba.prange(nchunks):
        lo = c * CHUNK
        hi = min(M, lo + CHUNK)
        v = v0[lo:hi].copy()
        cur = i0[lo:hi].copy()
        am_, as_, k_ = am[lo:hi], asn[lo:hi], k[lo:hi]
        vl_, th_, vr_ = vl[lo:hi], th[lo:hi], vr[lo:hi]
        chk = np.zeros(hi - lo, x.dtype)
        # outputs that were not asked for go to a per-chunk scratch row (in L1): the
        # inner loops then store unconditionally and stay vectorised
        scratch = np.empty((3, hi - lo), x.dtype)
        for t in range(T):
            ur = u_out[t, lo:hi] if save_u else scratch[0]
            vo = v_out[t, lo:hi] if save_v else scratch[1]
            io = i_out[t, lo:hi] if save_i else scratch[2]
            _fwd_step(chk, x[t, lo:hi], s_out[t, lo:hi], ur, vo, io, v, cur, am_, as_, k_,
                      vl_, th_, vr_, reset, nxt, vfirst)
        vT[lo:hi] = v
        iT[lo:hi] = cur
        bad[c] = np.sum(chk != 0)


@_jit
def _prev_membrane(up, th, vrs, reset, nxt, out):  # pragma: no cover - compiled
    """Membrane state after step ``t - 1`` from its saved pre-reset value ``up``."""
    one = np.ones(1, up.dtype)[0]
    zero = one - one
    for j in range(out.shape[0]):
        upj = up[j]
        sp = one if upj - th[j] > zero else zero
        if nxt or reset == 2:
            out[j] = upj
        elif reset == 0:
            out[j] = upj - th[j] * sp
        else:
            out[j] = (one - sp) * upj + sp * vrs[j]


@_inl
def _bwd_core(gs, gvt, gi, ut, vp, am, asn, k, theta, vr, nxt, c_sub, c_subd, c_zero, c_du,
              vf, sid, slope, one, zero):  # noqa: ANN001, ANN202 - compiled
    """Reverse one step of one neuron. Returns ``(gin, gv_prev, gi_prev, gu, w, d_theta,
    d_vreset)``: the grad of the input, of the state before the step, the grad of the
    membrane ``u``, the membrane entering the decay (for the decay's grad) and the
    threshold and reset-potential grads of this step.

    The reset and order options enter as 0/1 coefficients instead of branches --
    ``dv/du = 1 - c_du S`` and ``dv/dS = -c_sub theta + c_zero (v_reset - u)`` (both
    zero when the reset is detached), ``c_subd`` = subtract reset, ``vf`` = voltage
    first. Multiplying by 1 and adding 0 are exact, so this equals the branchy form
    bit for bit, and loops calling it keep only loop-invariant branches.
    """
    sg = _sg(ut - theta, sid, slope)
    if nxt:
        r = one if vp > theta else zero
        gu = gvt + gs * sg
        gvp = am * (one - c_du * r) * gu
        w = (one - c_du * r) * vp + (c_du * r) * vr
        d_th = gs * sg + c_subd * gu * r
        d_vr = c_du * gu * am * r
    else:
        st = one if ut - theta > zero else zero
        gst = gs + gvt * (c_zero * (vr - ut) - c_sub * theta)
        gu = gvt * (one - c_du * st) + gst * sg
        gvp = am * gu
        w = vp
        d_th = gst * sg + c_subd * gvt * st
        d_vr = c_du * gvt * st
    kgu = k * gu
    gin = gi + (one - vf) * kgu
    return gin, gvp, asn * gin + vf * kgu, gu, w, d_th, d_vr


@_jit
def _bwd_step(gsr, gtr, ur, vpr, gxr, gv, gi, am, asn, k, th, vrs, nxt, c_sub, c_subd,
              c_zero, c_du, vf, sid, slope):  # pragma: no cover - compiled
    """Reverse one step for a chunk without parameter grads (the common case): the
    unused outputs of :func:`_bwd_core` are dead code and the loop vectorises."""
    one = np.ones(1, ur.dtype)[0]
    zero = one - one
    for j in range(gv.shape[0]):
        gin, gvp, gip, _, _, _, _ = _bwd_core(
            gsr[j], gv[j] + gtr[j], gi[j], ur[j], vpr[j], am[j], asn[j], k[j], th[j], vrs[j],
            nxt, c_sub, c_subd, c_zero, c_du, vf, sid, slope, one, zero)
        gxr[j] = gin
        gv[j] = gvp
        gi[j] = gip


@_jit
def _bwd_step_params(gsr, gtr, ur, vpr, ipr, cur_t, gxr, gv, gi, am, asn, k, vl, th, vrs,
                     g_am, g_as, g_k, g_vl, g_th, g_vr, nxt, c_sub, c_subd, c_zero, c_du, vf,
                     sid, slope):  # pragma: no cover - compiled
    """:func:`_bwd_step` that also accumulates the parameter grads (learnable time
    constants, threshold, potentials); ``vpr``/``ipr`` are the membrane and current
    before the step, ``cur_t`` the current after it."""
    one = np.ones(1, ur.dtype)[0]
    zero = one - one
    for j in range(gv.shape[0]):
        gin, gvp, gip, gu, w, d_th, d_vr = _bwd_core(
            gsr[j], gv[j] + gtr[j], gi[j], ur[j], vpr[j], am[j], asn[j], k[j], th[j], vrs[j],
            nxt, c_sub, c_subd, c_zero, c_du, vf, sid, slope, one, zero)
        gxr[j] = gin
        gv[j] = gvp
        gi[j] = gip
        ip = ipr[j]
        g_th[j] -= d_th
        g_vr[j] += d_vr
        g_k[j] += gu * (vf * ip + (one - vf) * cur_t[j])
        g_am[j] += gu * (w - vl[j])
        g_vl[j] += gu * (one - am[j])
        g_as[j] += gin * ip


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def backward(gs, gvtr, gvT, giT, u, cur, v0, i0, am, asn, k, vl, th, vr,
             reset, nxt, vfirst, sid, slope, detach, pgrad,
             gx, gv0, gi0, g_am, g_as, g_k, g_vl, g_th, g_vr):  # pragma: no cover
    """BPTT through :func:`forward`.

    Inputs: ``gs`` grad of spikes ``[T, M]``, or ``[1, M]`` when it is the same at
    every step; ``gvtr`` grad of the membrane trace
    (empty if none); ``gvT``/``giT`` grads of the final state; ``u`` the saved
    pre-reset membrane; ``cur`` the current after each step (for LIF: the input
    itself), read only when ``pgrad`` is 1 (parameter gradients wanted).
    Outputs: ``gx`` ``[T, M]``, ``gv0``, ``gi0``; per-neuron parameter grads ``[M]`` are
    accumulated into the given arrays (the caller zeroes them) when ``pgrad`` is 1.
    """
    T, M = u.shape
    nchunks = (M + CHUNK - 1) // CHUNK
    has_tr = gvtr.shape[0] > 0
    gs_every_t = gs.shape[0] > 1
    for c in numba.prange(nchunks):
        lo = c * CHUNK
        hi = min(M, lo + CHUNK)
        n = hi - lo
        gv = gvT[lo:hi].copy()
        gi = giT[lo:hi].copy()
        vp = np.empty(n, u.dtype)
        zeros = np.zeros(n, u.dtype)
        scratch = np.zeros((6, n), u.dtype)
        if pgrad:
            pg = (g_am[lo:hi], g_as[lo:hi], g_k[lo:hi], g_vl[lo:hi], g_th[lo:hi], g_vr[lo:hi])
        else:
            pg = (scratch[0], scratch[1], scratch[2], scratch[3], scratch[4], scratch[5])
        am_, as_, k_ = am[lo:hi], asn[lo:hi], k[lo:hi]
        vl_, th_, vr_ = vl[lo:hi], th[lo:hi], vr[lo:hi]
        need_vp = pgrad or nxt  # the membrane before the step enters only these terms
        one = np.ones(1, u.dtype)[0]
        c_sub = one if (reset == 0 and not detach) else one - one
        c_subd = one if reset == 0 else one - one
        c_zero = one if (reset == 1 and not detach) else one - one
        c_du = one if reset == 1 else one - one
        vf = one if vfirst else one - one
        for t in range(T - 1, -1, -1):
            if t == 0:
                vp[:] = v0[lo:hi]
                ip = i0[lo:hi] if pgrad else zeros
            else:
                if need_vp:
                    _prev_membrane(u[t - 1, lo:hi], th_, vr_, reset, nxt, vp)
                ip = cur[t - 1, lo:hi] if pgrad else zeros
            gtr = gvtr[t, lo:hi] if has_tr else zeros
            gsr = gs[t, lo:hi] if gs_every_t else gs[0, lo:hi]
            if pgrad:
                _bwd_step_params(gsr, gtr, u[t, lo:hi], vp, ip, cur[t, lo:hi], gx[t, lo:hi],
                                 gv, gi, am_, as_, k_, vl_, th_, vr_, pg[0], pg[1], pg[2],
                                 pg[3], pg[4], pg[5], nxt, c_sub, c_subd, c_zero, c_du, vf,
                                 sid, slope)
            else:
                _bwd_step(gsr, gtr, u[t, lo:hi], vp, gx[t, lo:hi], gv, gi, am_, as_, k_, th_,
                          vr_, nxt, c_sub, c_subd, c_zero, c_du, vf, sid, slope)
        gv0[lo:hi] = gv
        gi0[lo:hi] = gi
