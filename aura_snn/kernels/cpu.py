r"""Fused multi-step LIF/CubaLIF on the CPU: one compiled time loop, forward and BPTT.

Coefficients are the model's :class:`~aura_snn.functional.registry.CompiledFamily`
(``spec.compile(p, dt)``): per neuron ``a_m``, ``v_leak``, threshold, ``v_reset`` and
the receptor's ``(k, b, c)``, with the flags ``late`` and ``next_step`` (LIF is
:math:`b = c = 0`, so :math:`\hat\imath = x`; CubaLIF ``current_first`` :math:`b =
a_s, c = 1`; ``voltage_first`` :math:`b = 1, c = a_s`, late). The forward step of a
neuron is :func:`aura_snn.kernels.family.receptor` then :func:`~aura_snn.kernels.
family.neuron`, compiled from the same Python functions as the graph engine's and the
CUDA kernel's; the threshold/reset rules are those of :mod:`aura_snn.functional.firing`
and the surrogate derivatives those of :mod:`aura_snn.functional.surrogate` (compiled
from the same Python functions too). ``tests/kernels`` checks values and gradients
against the step-by-step reference.

Layout: every array is flattened to ``[T, M]`` (time-major, ``M = B * neurons``) and
C-contiguous; per-neuron parameters are ``[M]``. Neurons are split into chunks of
``CHUNK`` run in parallel (``numba.prange``); each chunk walks time with its state in
a small local array, calling a short inner loop over the chunk's neurons for every
step. The inner loops are branch-invariant in their mode flags, so LLVM unswitches and
vectorises them (AVX2): every step streams one contiguous run per array, close to
copy bandwidth.

Small problems: :func:`forward` and :func:`backward` run their chunks on numba's
thread pool; :func:`forward_serial` and :func:`backward_serial` run the same chunk
functions in a plain loop on the calling thread, so both give the same bits (each
chunk is computed by the same code whichever thread runs it, and nothing is reduced
across chunks except the integer count of non-finite inputs). :func:`serial` picks the
serial pair below ``SERIAL_NEURONS`` neurons and ``SERIAL_WORK`` neuron-steps, or
whenever there is one chunk (``M <= CHUNK``: no parallelism to gain). Measured on the
2-core development machine (LIF, float32, whole forward + BPTT call, median of 60,
idle machine): the serial loop is as fast as the pool up to ``T * M = 2**17`` (``T = 4,
M = 32768``: 0.40 vs 0.41 ms; ``T = 1, M = 32768``: 0.30 vs 0.31 ms) and slower from
``2**18`` (``T = 4, M = 65536``: 0.90 vs 0.47 ms; ``T = 16, M = 16384``: 0.71 vs 0.52 ms)
or ``M = 65536`` at any ``T`` (``T = 1``: 0.42 vs 0.35 ms). Launching the pool is what
small calls pay for: with torch's OpenMP threads busy in the same process on a loaded
machine, a one-token call (``T = 4, M = 256``) took 3-8 ms in the pool against 0.12 ms
serial, and no size up to ``M = 131072`` was faster in the pool under that load.

Mode codes (plain ints, so one compiled function serves every option):
``reset`` :data:`aura_snn.functional.firing.RESET_CODE`; ``nxt`` 1 for
``reset_at="next_step"``; ``late`` 1 when the input enters the current after the
membrane step (``order="voltage_first"``); ``sid`` surrogate index; ``detach`` 1
to stop the gradient through the reset.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import overload

from ..functional import firing, surrogate
from ..functional.firing import RESET_CODE
from ..functional.surrogate import arctan_grad, fast_sigmoid_grad, triangle_grad
from . import family
from ._numba_cache import invalidate_if_changed

# numba's cache does not see edits of the files inlined here: drop it when they change
invalidate_if_changed(__file__, [family.__file__, surrogate.__file__, firing.__file__])

CHUNK = 4096  # neurons per parallel task: long contiguous runs for the prefetcher (16 KiB)
SERIAL_NEURONS = 2 ** 16  # at or above this many neurons the thread pool pays (docstring)
SERIAL_WORK = 2 ** 18     # ... or at or above this many neuron-steps T * M


def serial(T: int, M: int) -> bool:
    """Whether ``T`` steps of ``M`` neurons run in :func:`forward_serial` /
    :func:`backward_serial` rather than on the thread pool (module docstring, "Small
    problems"): one chunk, or fewer than ``SERIAL_NEURONS`` neurons and
    ``SERIAL_WORK`` neuron-steps."""
    return M <= CHUNK or (M < SERIAL_NEURONS and T * M < SERIAL_WORK)

# error_model="numpy": a float division by zero gives inf instead of raising. The
# Python error model puts a zero check (and an exception path) in every division,
# which stops LLVM from vectorising the surrogate's 1/(1 + k|x|)^2.
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inl = numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
_FAMILY = family.numba_inline()
_receptor = _FAMILY["receptor"]
_neuron = _FAMILY["neuron"]
_SUB, _ZERO, _NONE = RESET_CODE["subtract"], RESET_CODE["zero"], RESET_CODE["none"]
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


@_inl
def _fwd_neuron(j, chk, xr, sr, ur, vo, io, v, cur, am, bb, cc, k, vl, th, vrs, reset, nx,
                lt, zero, one):  # noqa: ANN001, ANN202 - compiled
    """Neuron ``j`` of :func:`_fwd_step`; returns its spike (``one`` or ``zero``)."""
    xt = xr[j]
    chk[j] += xt - xt
    ie, inew = _receptor(cur[j], xt, bb[j], cc[j], lt, zero)
    vn, _, _, s, u = _neuron(v[j], 0, zero, k[j] * ie, am[j], vl[j], th[j], vrs[j], zero,
                             zero, 0, reset, nx, False, False, zero, one)
    v[j] = vn
    cur[j] = inew
    sp = one if s else zero
    sr[j] = sp
    ur[j] = u
    vo[j] = vn
    io[j] = inew
    return sp


@_jit
def _fwd_step(chk, xr, sr, ur, vo, io, v, cur, am, bb, cc, k, vl, th, vrs, reset, nxt,
              late):  # pragma: no cover - compiled
    """One step for a chunk of neurons: the family's receptor and neuron update
    (:mod:`.family`). The mode flags are loop-invariant selects, so the loop
    vectorises. ``chk[j]`` accumulates ``x - x`` (0, or NaN once a non-finite input
    arrived): elementwise, so the loop still vectorises, unlike a counter."""
    one = np.ones(1, xr.dtype)[0]
    zero = one - one
    nx = nxt != 0
    lt = late != 0
    for j in range(v.shape[0]):
        _fwd_neuron(j, chk, xr, sr, ur, vo, io, v, cur, am, bb, cc, k, vl, th, vrs, reset,
                    nx, lt, zero, one)


@_jit
def _fwd_step_count(chk, xr, sr, ur, vo, io, v, cur, am, bb, cc, k, vl, th, vrs, reset,
                    nxt, late):  # pragma: no cover - compiled
    """:func:`_fwd_step` that also returns the number of spikes of the step: an integer
    sum, which LLVM vectorises without reordering any float operation (a float sum it
    may not reassociate, and a per-neuron count array cost about 8 % of a long
    inference forward: one more array streamed). Measured on the development machine,
    alternating calls: 0.96x and 0.98x the time of :func:`_fwd_step`'s forward at
    ``T, M = 500, 65536`` and ``16, 92160``, i.e. no cost. A separate loop, not a flag
    inside one: a test inside the loop stopped LLVM vectorising it (4.5x slower)."""
    one = np.ones(1, xr.dtype)[0]
    zero = one - one
    nx = nxt != 0
    lt = late != 0
    n = 0
    for j in range(v.shape[0]):
        n += _fwd_neuron(j, chk, xr, sr, ur, vo, io, v, cur, am, bb, cc, k, vl, th, vrs,
                         reset, nx, lt, zero, one) > zero
    return n


@_jit
def _forward_chunk(c, x, v0, i0, am, bb, cc, k, vl, th, vr, reset, nxt, late,
                   s_out, u_out, v_out, i_out, vT, iT, bad, nspk):  # pragma: no cover
    """Chunk ``c`` (neurons ``c*CHUNK`` up to ``(c+1)*CHUNK``) of :func:`forward`."""
    T, M = x.shape
    save_u = u_out.shape[0] > 0
    save_v = v_out.shape[0] > 0
    save_i = i_out.shape[0] > 0
    lo = c * CHUNK
    hi = min(M, lo + CHUNK)
    v = v0[lo:hi].copy()
    cur = i0[lo:hi].copy()
    am_, bb_, cc_, k_ = am[lo:hi], bb[lo:hi], cc[lo:hi], k[lo:hi]
    vl_, th_, vr_ = vl[lo:hi], th[lo:hi], vr[lo:hi]
    chk = np.zeros(hi - lo, x.dtype)
    count = nspk.shape[0] > 0
    # outputs that were not asked for go to a per-chunk scratch row (in L1): the
    # inner loops then store unconditionally and stay vectorised
    scratch = np.empty((3, hi - lo), x.dtype)
    total = 0
    for t in range(T):
        ur = u_out[t, lo:hi] if save_u else scratch[0]
        vo = v_out[t, lo:hi] if save_v else scratch[1]
        io = i_out[t, lo:hi] if save_i else scratch[2]
        if count:
            total += _fwd_step_count(chk, x[t, lo:hi], s_out[t, lo:hi], ur, vo, io, v, cur,
                                     am_, bb_, cc_, k_, vl_, th_, vr_, reset, nxt, late)
        else:
            _fwd_step(chk, x[t, lo:hi], s_out[t, lo:hi], ur, vo, io, v, cur, am_, bb_, cc_,
                      k_, vl_, th_, vr_, reset, nxt, late)
    vT[lo:hi] = v
    iT[lo:hi] = cur
    bad[c] = np.sum(chk != 0)
    if count:
        nspk[c] = total


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def forward(x, v0, i0, am, bb, cc, k, vl, th, vr, reset, nxt, late,
            s_out, u_out, v_out, i_out, vT, iT, bad, nspk):  # pragma: no cover - compiled
    """Forward over ``T`` steps, chunks in parallel. ``u_out`` (pre-reset membrane, for
    backward), ``v_out`` (membrane trace) and ``i_out`` (current trace) are written only
    when non-empty. ``bad[c]`` counts the neurons of chunk ``c`` that received a
    non-finite input; ``nspk[c]`` (int64), when ``nspk`` is non-empty, the spikes of
    chunk ``c`` (an int64 sum of each step's integer count: exact), which a spike
    counter reads instead of summing ``s_out`` again."""
    for c in numba.prange((x.shape[1] + CHUNK - 1) // CHUNK):
        _forward_chunk(c, x, v0, i0, am, bb, cc, k, vl, th, vr, reset, nxt, late,
                       s_out, u_out, v_out, i_out, vT, iT, bad, nspk)


@_jit
def forward_serial(x, v0, i0, am, bb, cc, k, vl, th, vr, reset, nxt, late,
                   s_out, u_out, v_out, i_out, vT, iT, bad, nspk):  # pragma: no cover
    """:func:`forward` on the calling thread only (no thread pool): the same chunks, the
    same per-chunk code, so the same results bit for bit (module docstring, "Small
    problems")."""
    for c in range((x.shape[1] + CHUNK - 1) // CHUNK):
        _forward_chunk(c, x, v0, i0, am, bb, cc, k, vl, th, vr, reset, nxt, late,
                       s_out, u_out, v_out, i_out, vT, iT, bad, nspk)


@_jit
def _prev_membrane(up, th, vrs, reset, nxt, out):  # pragma: no cover - compiled
    """Membrane state after step ``t - 1`` from its saved pre-reset value ``up``."""
    one = np.ones(1, up.dtype)[0]
    zero = one - one
    for j in range(out.shape[0]):
        upj = up[j]
        sp = one if upj - th[j] > zero else zero
        if nxt or reset == _NONE:
            out[j] = upj
        elif reset == _SUB:
            out[j] = upj - th[j] * sp
        else:
            out[j] = (one - sp) * upj + sp * vrs[j]


@_inl
def _bwd_core(gs, gvt, gi, ut, vp, am, bb, cc, k, theta, vr, nxt, c_sub, c_subd, c_zero, c_du,
              lt, sid, slope, one, zero):  # noqa: ANN001, ANN202 - compiled
    r"""Reverse one step of one neuron. Returns ``(gin, gv_prev, gi_prev, gu, g_ie, w,
    d_theta, d_vreset)``: the grad of the input, of the state before the step, the grad
    of the membrane ``u`` and of the receptor's :math:`\hat\imath`, the membrane entering
    the decay (for the decay's grad) and the threshold and reset-potential grads of this
    step. ``gi`` is the grad of the current after the step.

    Receptor (:func:`.family.receptor`): :math:`\hat\imath = b i + [\lnot l] x`,
    :math:`i' = c \hat\imath + [l] x`, :math:`u \mathrel{+}= k \hat\imath`, so
    :math:`g_{\hat\imath} = c\,g_{i'} + k\,g_u`, :math:`g_x = g_{i'}` if late else
    :math:`g_{\hat\imath}`, :math:`g_i = b\,g_{\hat\imath}`.

    The reset options enter as 0/1 coefficients instead of branches --
    ``dv/du = 1 - c_du S`` and ``dv/dS = -c_sub theta + c_zero (v_reset - u)`` (both
    zero when the reset is detached), ``c_subd`` = subtract reset. Multiplying by 1 and
    adding 0 are exact, so this equals the branchy form bit for bit, and loops calling
    it keep only loop-invariant branches.
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
    gie = cc * gi + k * gu
    gin = gi if lt else gie
    return gin, gvp, bb * gie, gu, gie, w, d_th, d_vr


@_jit
def _bwd_step(gsr, gtr, ur, vpr, gxr, gv, gi, am, bb, cc, k, th, vrs, nxt, c_sub, c_subd,
              c_zero, c_du, lt, sid, slope):  # pragma: no cover - compiled
    """Reverse one step for a chunk without parameter grads (the common case): the
    unused outputs of :func:`_bwd_core` are dead code and the loop vectorises."""
    one = np.ones(1, ur.dtype)[0]
    zero = one - one
    for j in range(gv.shape[0]):
        gin, gvp, gip, _, _, _, _, _ = _bwd_core(
            gsr[j], gv[j] + gtr[j], gi[j], ur[j], vpr[j], am[j], bb[j], cc[j], k[j], th[j],
            vrs[j], nxt, c_sub, c_subd, c_zero, c_du, lt, sid, slope, one, zero)
        gxr[j] = gin
        gv[j] = gvp
        gi[j] = gip


@_jit
def _bwd_step_params(gsr, gtr, ur, vpr, ipr, xr, gxr, gv, gi, am, bb, cc, k, vl, th, vrs,
                     g_am, g_b, g_c, g_k, g_vl, g_th, g_vr, nxt, c_sub, c_subd, c_zero, c_du,
                     lt, sid, slope):  # pragma: no cover - compiled
    r""":func:`_bwd_step` that also accumulates the parameter grads (learnable time
    constants, threshold, potentials); ``vpr``/``ipr`` are the membrane and current
    before the step, ``xr`` the step's input (the receptor's :math:`\hat\imath` is
    recomputed from them exactly as the forward step computed it)."""
    one = np.ones(1, ur.dtype)[0]
    zero = one - one
    for j in range(gv.shape[0]):
        gio = gi[j]
        gin, gvp, gip, gu, gie, w, d_th, d_vr = _bwd_core(
            gsr[j], gv[j] + gtr[j], gio, ur[j], vpr[j], am[j], bb[j], cc[j], k[j], th[j],
            vrs[j], nxt, c_sub, c_subd, c_zero, c_du, lt, sid, slope, one, zero)
        gxr[j] = gin
        gv[j] = gvp
        gi[j] = gip
        ip = ipr[j]
        ie, _ = _receptor(ip, xr[j], bb[j], cc[j], lt, zero)
        g_th[j] -= d_th
        g_vr[j] += d_vr
        g_k[j] += gu * ie
        g_am[j] += gu * (w - vl[j])
        g_vl[j] += gu * (one - am[j])
        g_b[j] += gie * ip
        g_c[j] += gio * ie


@_jit
def _backward_chunk(c, gs, gvtr, gvT, giT, u, x, cur, v0, i0, am, bb, cc, k, vl, th, vr,
                    reset, nxt, late, sid, slope, detach, pgrad,
                    gx, gv0, gi0, g_am, g_b, g_c, g_k, g_vl, g_th, g_vr):  # pragma: no cover
    """Chunk ``c`` of :func:`backward`."""
    T, M = u.shape
    has_tr = gvtr.shape[0] > 0
    has_cur = cur.shape[0] > 0
    gs_every_t = gs.shape[0] > 1
    lo = c * CHUNK
    hi = min(M, lo + CHUNK)
    n = hi - lo
    gv = gvT[lo:hi].copy()
    gi = giT[lo:hi].copy()
    vp = np.empty(n, u.dtype)
    zeros = np.zeros(n, u.dtype)
    scratch = np.zeros((7, n), u.dtype)
    if pgrad:
        pg = (g_am[lo:hi], g_b[lo:hi], g_c[lo:hi], g_k[lo:hi], g_vl[lo:hi], g_th[lo:hi],
              g_vr[lo:hi])
    else:
        pg = (scratch[0], scratch[1], scratch[2], scratch[3], scratch[4], scratch[5],
              scratch[6])
    am_, bb_, cc_, k_ = am[lo:hi], bb[lo:hi], cc[lo:hi], k[lo:hi]
    vl_, th_, vr_ = vl[lo:hi], th[lo:hi], vr[lo:hi]
    need_vp = pgrad or nxt  # the membrane before the step enters only these terms
    one = np.ones(1, u.dtype)[0]
    c_sub = one if (reset == _SUB and not detach) else one - one
    c_subd = one if reset == _SUB else one - one
    c_zero = one if (reset == _ZERO and not detach) else one - one
    c_du = one if reset == _ZERO else one - one
    lt = late != 0
    for t in range(T - 1, -1, -1):
        if t == 0:
            vp[:] = v0[lo:hi]
            ip = i0[lo:hi] if pgrad else zeros
        else:
            if need_vp:
                _prev_membrane(u[t - 1, lo:hi], th_, vr_, reset, nxt, vp)
            ip = cur[t - 1, lo:hi] if (pgrad and has_cur) else zeros
        gtr = gvtr[t, lo:hi] if has_tr else zeros
        gsr = gs[t, lo:hi] if gs_every_t else gs[0, lo:hi]
        if pgrad:
            _bwd_step_params(gsr, gtr, u[t, lo:hi], vp, ip, x[t, lo:hi], gx[t, lo:hi],
                             gv, gi, am_, bb_, cc_, k_, vl_, th_, vr_, pg[0], pg[1], pg[2],
                             pg[3], pg[4], pg[5], pg[6], nxt, c_sub, c_subd, c_zero, c_du,
                             lt, sid, slope)
        else:
            _bwd_step(gsr, gtr, u[t, lo:hi], vp, gx[t, lo:hi], gv, gi, am_, bb_, cc_, k_,
                      th_, vr_, nxt, c_sub, c_subd, c_zero, c_du, lt, sid, slope)
    gv0[lo:hi] = gv
    gi0[lo:hi] = gi


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def backward(gs, gvtr, gvT, giT, u, x, cur, v0, i0, am, bb, cc, k, vl, th, vr,
             reset, nxt, late, sid, slope, detach, pgrad,
             gx, gv0, gi0, g_am, g_b, g_c, g_k, g_vl, g_th, g_vr):  # pragma: no cover
    """BPTT through :func:`forward`, chunks in parallel.

    Inputs: ``gs`` grad of spikes ``[T, M]``, or ``[1, M]`` when it is the same at
    every step; ``gvtr`` grad of the membrane trace (empty if none); ``gvT``/``giT``
    grads of the final state; ``u`` the saved pre-reset membrane; ``x`` the input and
    ``cur`` the current after each step (empty for a model without current: it stays
    0), read only when ``pgrad`` is 1 (parameter gradients wanted).
    Outputs: ``gx`` ``[T, M]``, ``gv0``, ``gi0``; per-neuron parameter grads ``[M]`` are
    accumulated into the given arrays (the caller zeroes them) when ``pgrad`` is 1.
    """
    for c in numba.prange((u.shape[1] + CHUNK - 1) // CHUNK):
        _backward_chunk(c, gs, gvtr, gvT, giT, u, x, cur, v0, i0, am, bb, cc, k, vl, th, vr,
                        reset, nxt, late, sid, slope, detach, pgrad,
                        gx, gv0, gi0, g_am, g_b, g_c, g_k, g_vl, g_th, g_vr)


@_jit
def backward_serial(gs, gvtr, gvT, giT, u, x, cur, v0, i0, am, bb, cc, k, vl, th, vr,
                    reset, nxt, late, sid, slope, detach, pgrad,
                    gx, gv0, gi0, g_am, g_b, g_c, g_k, g_vl, g_th, g_vr):  # pragma: no cover
    """:func:`backward` on the calling thread only (same chunks, same code, same bits)."""
    for c in range((u.shape[1] + CHUNK - 1) // CHUNK):
        _backward_chunk(c, gs, gvtr, gvT, giT, u, x, cur, v0, i0, am, bb, cc, k, vl, th, vr,
                        reset, nxt, late, sid, slope, detach, pgrad,
                        gx, gv0, gi0, g_am, g_b, g_c, g_k, g_vl, g_th, g_vr)
