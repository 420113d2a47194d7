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

from ..functional.surrogate import arctan_grad, fast_sigmoid_grad, triangle_grad

CHUNK = 256

_jit = numba.njit(cache=True, nogil=True)
_inl = numba.njit(cache=True, nogil=True, inline="always")
_fs = _inl(fast_sigmoid_grad)
_at = _inl(arctan_grad)
_tr = _inl(triangle_grad)


@_inl
def _sg(x, sid, slope):  # noqa: ANN001, ANN202 - compiled
    ax = abs(x)
    if sid == 0:
        return _fs(ax, slope)
    if sid == 1:
        return _at(ax, slope)
    return _tr(ax, slope)


@_jit
def _fwd_spike(chk, xr, sr, ur, vo, io, v, cur, am, asn, k, vl, th, vrs,
               reset, vfirst, save_u, save_v, save_i):  # pragma: no cover - compiled
    """One step for a chunk, reset in the spiking step. ``chk[j]`` accumulates
    ``x - x`` (0, or NaN once a non-finite input arrived): elementwise, so the loop
    still vectorises, unlike a counter."""
    one = np.ones(1, xr.dtype)[0]
    zero = one - one
    for j in range(v.shape[0]):
        xt = xr[j]
        chk[j] += xt - xt
        ip = cur[j]
        inew = asn[j] * ip + xt
        drive = k[j] * (ip if vfirst else inew)
        theta = th[j]
        u = vl[j] + am[j] * (v[j] - vl[j]) + drive
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
        if save_u:
            ur[j] = u
        if save_v:
            vo[j] = vn
        if save_i:
            io[j] = inew


@_jit
def _fwd_next(chk, xr, sr, ur, vo, io, v, cur, am, asn, k, vl, th, vrs,
              reset, vfirst, save_u, save_v, save_i):  # pragma: no cover - compiled
    """One step for a chunk, reset applied at the next step (state keeps ``u``)."""
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
        r = one if vp > theta else zero
        if reset == 0:
            u = (vl[j] + am[j] * (vp - vl[j]) + drive) - theta * r
        elif reset == 1:
            u = vl[j] + am[j] * (((one - r) * vp + r * vrs[j]) - vl[j]) + drive
        else:
            u = vl[j] + am[j] * (vp - vl[j]) + drive
        s = one if u - theta > zero else zero
        v[j] = u
        cur[j] = inew
        sr[j] = s
        if save_u:
            ur[j] = u
        if save_v:
            vo[j] = u
        if save_i:
            io[j] = inew


@numba.njit(cache=True, parallel=True, nogil=True)
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
        for t in range(T):
            ur = u_out[t, lo:hi] if save_u else u_out[0, 0:0]
            vo = v_out[t, lo:hi] if save_v else v_out[0, 0:0]
            io = i_out[t, lo:hi] if save_i else i_out[0, 0:0]
            if nxt:
                _fwd_next(chk, x[t, lo:hi], s_out[t, lo:hi], ur, vo, io, v, cur, am_, as_,
                          k_, vl_, th_, vr_, reset, vfirst, save_u, save_v, save_i)
            else:
                _fwd_spike(chk, x[t, lo:hi], s_out[t, lo:hi], ur, vo, io, v, cur, am_, as_,
                           k_, vl_, th_, vr_, reset, vfirst, save_u, save_v, save_i)
        vT[lo:hi] = v
        iT[lo:hi] = cur
        bad[c] = np.sum(chk != 0)


@_jit
def _bwd_step(gsr, gtr, ur, up, cur_t, cur_p, v0, i0, gxr, gv, gi, am, asn, k, vl, th, vrs,
              g_am, g_as, g_k, g_vl, g_th, g_vr, first, has_tr, reset, nxt, vfirst, sid,
              slope, detach, pgrad):  # pragma: no cover - compiled
    """Reverse one step for a chunk: updates ``gv``/``gi`` (grads of the state after the
    step -> before it), writes ``gxr`` and accumulates parameter grads if ``pgrad``."""
    one = np.ones(1, ur.dtype)[0]
    zero = one - one
    for j in range(gv.shape[0]):
        theta = th[j]
        ut = ur[j]
        sg = _sg(ut - theta, sid, slope)
        gvt = gv[j] + gtr[j] if has_tr else gv[j]
        if first:
            vp = v0[j]
        elif nxt:
            vp = up[j]
        else:
            upj = up[j]
            sp = one if upj - theta > zero else zero
            if reset == 0:
                vp = upj - theta * sp
            elif reset == 1:
                vp = (one - sp) * upj + sp * vrs[j]
            else:
                vp = upj
        if nxt:
            r = one if vp > theta else zero
            gu = gvt + gsr[j] * sg
            if reset == 1:
                w = (one - r) * vp + r * vrs[j]
                gvp = am[j] * (one - r) * gu
            else:
                w = vp
                gvp = am[j] * gu
            if pgrad:
                g_th[j] -= gsr[j] * sg
                if reset == 0:
                    g_th[j] -= gu * r
                elif reset == 1:
                    g_vr[j] += gu * am[j] * r
        else:
            st = one if ut - theta > zero else zero
            if reset == 0:
                dvdu = one
                dvds = zero if detach else -theta
            elif reset == 1:
                dvdu = one - st
                dvds = zero if detach else vrs[j] - ut
            else:
                dvdu = one
                dvds = zero
            gst = gsr[j] + gvt * dvds
            gu = gvt * dvdu + gst * sg
            w = vp
            gvp = am[j] * gu
            if pgrad:
                g_th[j] -= gst * sg
                if reset == 0:
                    g_th[j] -= gvt * st
                elif reset == 1:
                    g_vr[j] += gvt * st
        # u = vl + am (w - vl) + k * (i_prev if vfirst else i_new); i_new = as * i_prev + x
        if vfirst:
            gin = gi[j]
            gi[j] = asn[j] * gin + k[j] * gu
        else:
            gin = gi[j] + k[j] * gu
            gi[j] = asn[j] * gin
        gxr[j] = gin
        gv[j] = gvp
        if pgrad:
            ip = i0[j] if first else cur_p[j]
            g_am[j] += gu * (w - vl[j])
            g_vl[j] += gu * (one - am[j])
            g_k[j] += gu * (ip if vfirst else cur_t[j])
            g_as[j] += gin * ip


@numba.njit(cache=True, parallel=True, nogil=True)
def backward(gs, gvtr, gvT, giT, u, cur, v0, i0, am, asn, k, vl, th, vr,
             reset, nxt, vfirst, sid, slope, detach, pgrad,
             gx, gv0, gi0, g_am, g_as, g_k, g_vl, g_th, g_vr):  # pragma: no cover
    """BPTT through :func:`forward`.

    Inputs: ``gs`` grad of spikes ``[T, M]``; ``gvtr`` grad of the membrane trace
    (empty if none); ``gvT``/``giT`` grads of the final state; ``u`` the saved
    pre-reset membrane; ``cur`` the current after each step (for LIF: the input
    itself), read only when ``pgrad`` is 1 (parameter gradients wanted).
    Outputs: ``gx`` ``[T, M]``, ``gv0``, ``gi0``; per-neuron parameter grads ``[M]`` are
    accumulated into the given arrays, which the caller zeroes.
    """
    T, M = u.shape
    nchunks = (M + CHUNK - 1) // CHUNK
    has_tr = gvtr.shape[0] > 0
    for c in numba.prange(nchunks):
        lo = c * CHUNK
        hi = min(M, lo + CHUNK)
        gv = gvT[lo:hi].copy()
        gi = giT[lo:hi].copy()
        pg = (g_am[lo:hi], g_as[lo:hi], g_k[lo:hi], g_vl[lo:hi], g_th[lo:hi], g_vr[lo:hi])
        empty = u[0, 0:0]
        for t in range(T - 1, -1, -1):
            first = t == 0
            up = empty if first else u[t - 1, lo:hi]
            cur_t = cur[t, lo:hi] if pgrad else empty
            cur_p = cur[t - 1, lo:hi] if (pgrad and not first) else empty
            gtr = gvtr[t, lo:hi] if has_tr else empty
            _bwd_step(gs[t, lo:hi], gtr, u[t, lo:hi], up, cur_t, cur_p, v0[lo:hi], i0[lo:hi],
                      gx[t, lo:hi], gv, gi, am[lo:hi], asn[lo:hi], k[lo:hi], vl[lo:hi],
                      th[lo:hi], vr[lo:hi], pg[0], pg[1], pg[2], pg[3], pg[4], pg[5],
                      first, has_tr, reset, nxt, vfirst, sid, slope, detach, pgrad)
        gv0[lo:hi] = gv
        gi0[lo:hi] = gi
