r"""Per-episode plastic layer and its LIF units in one compiled time loop (CPU, numba).

:meth:`neuromodulation.plastic.PlasticLinear.run` takes this path when each batch
element has its own trace, the rule is ``"hebb"``, ``"clip"`` or the simple
modulated one, and the units are an :mod:`aura_snn` ``LIF``/``CubaLIF`` with fixed
parameters on its fused backend. Batch elements are independent episodes, so each
thread walks all ``T`` steps of one element with its trace :math:`H_b` ``[N, M]``
(256 KiB at 256 x 256, float32) in its own cache, instead of sweeping all ``[B, N, M]``
traces through memory at every step as a step-by-step loop must.

Per step (the rules of :mod:`neuromodulation._hebb`, in one form):

.. math::
    i_b = (x_b W + b) + x_b (\alpha \odot H_b), \quad y_b = \mathrm{LIF}(i_b), \quad
    H_b \leftarrow \mathrm{clip}\big(\kappa H_b + (c\,x_b) \otimes (d_b \odot y_b)\big)

with :math:`(\kappa, c, d) = (1-\eta, \eta, 1)` for ``"hebb"`` (no clip), :math:`(1,
\eta, 1)` for ``"clip"`` and :math:`(1, 1, M_b(t))` for the modulated rule. The
neuron step and its reverse are the fused LIF kernel's own compiled functions
(:mod:`aura_snn.kernels.cpu`), so the spikes are those of ``LIF.run``.

Backward is BPTT in reverse time inside the kernel: the trace is kept at every
:math:`K = \lceil\sqrt T\,\rceil`-th step (checkpoints, :math:`B \lceil T/K\rceil`
copies of ``[N, M]``) and each segment of :math:`K` traces is recomputed from its
checkpoint when the reverse sweep reaches it, so no per-step autograd graph and no
:math:`T` copies of ``[B, N, M]`` are kept. With :math:`G = \partial L/\partial H_b(t)`
and :math:`G_m = G \odot [|\mathrm{pre}| \le c_\text{clip}]`:
:math:`\partial L/\partial y_j \mathrel{+}= d_j \sum_k c x_k G_{m,kj}`; the neuron's
reverse step gives :math:`g = \partial L/\partial i`; then
:math:`\partial L/\partial\alpha \mathrel{+}= (x \otimes g) \odot H(t-1)`,
:math:`\partial L/\partial x_k = \sum_j \alpha_{kj} H_{kj}(t-1) g_j + c \sum_j
G_{m,kj} d_j y_j`, and :math:`G \leftarrow \kappa G_m + \alpha \odot (x \otimes g)`.
``tests/neuromodulation/test_plastic_fused.py`` checks all of it against autograd
through a plain loop (float64, 1e-10) and against finite differences.

Threads: episodes run on numba's pool from ``POOL_MIN_WORK`` synapse-steps
:math:`BTNM` on (``T = 50, B = 16, 64 x 64``: 2.1 ms pooled vs 3.1 ms on the calling
thread, 2 cores, measured under load), below it on the calling thread (a one-step call
must not wake the pool); the same per-episode function either way, so the same bits.
The per-episode loops are compiled with reassociation (``fastmath`` ``reassoc`` and
``contract``, no finite-math flags) so that the sums over a row of the trace vectorise:
about 2x faster at 64 x 64 (3.9 -> 2.1 ms pooled, measured under load).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import torch

from aura_snn.errors import InputValueError
from aura_snn.functional.firing import RESET_CODE
from aura_snn.kernels import cpu, family
from aura_snn.kernels._numba_cache import invalidate_if_changed

# the neuron step of cpu.py is compiled into these kernels: drop the cache when it changes
invalidate_if_changed(__file__, [cpu.__file__, family.__file__])

_SUB, _ZERO = RESET_CODE["subtract"], RESET_CODE["zero"]
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# reassociation lets LLVM vectorise the sums over a row of the trace (only the order of
# additions changes, not what is added; no finite-math assumptions: NaN stays NaN)
_jit_sum = numba.njit(cache=True, nogil=True, error_model="numpy",
                      fastmath={"reassoc", "contract"})


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _advance(h, xr, q, keep, c, clip, do_clip):  # noqa: ANN001, ANN202 - compiled
    """``h <- clip(keep h + (c x) (x) q)`` in place for one episode's ``[N, M]`` trace."""
    n, m = h.shape
    for k in range(n):
        a = c * xr[k]
        for j in range(m):
            v = keep * h[k, j] + a * q[j]
            if do_clip:
                v = min(max(v, -clip), clip)
            h[k, j] = v


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _post(sr, dr, q):  # noqa: ANN001, ANN202 - compiled
    """``q = d * y`` (``d`` is 1 everywhere without a modulator: exact)."""
    for j in range(q.shape[0]):
        q[j] = sr[j] * dr[j]


@_jit_sum
def _forward_episode(b, xw, x, alpha, keep, c, d, clip, do_clip, kk, h0, v0, i0, am, bb,
                     cc, k, vl, th, vr, reset, nxt, late, s_out, u_out, h_out, ck, vT, iT,
                     bad):  # pragma: no cover - compiled
    """Episode ``b`` of :func:`forward`."""
    T, B, M = xw.shape
    N = x.shape[2]
    lo, hi = b * M, (b + 1) * M
    h = h0[b].copy()
    v = v0[lo:hi].copy()
    cur = i0[lo:hi].copy()
    chk = np.zeros(M, xw.dtype)
    scratch = np.empty((2, M), xw.dtype)
    inp = np.empty(M, xw.dtype)
    q = np.empty(M, xw.dtype)
    for t in range(T):
        if t % kk == 0:
            ck[b, t // kk] = h
        inp[:] = xw[t, b]
        for n in range(N):
            xn = x[t, b, n]
            if xn != 0:
                for j in range(M):
                    inp[j] += xn * alpha[n, j] * h[n, j]
        cpu._fwd_step(chk, inp, s_out[t, b], u_out[t, b], scratch[0], scratch[1], v, cur,
                      am[lo:hi], bb[lo:hi], cc[lo:hi], k[lo:hi], vl[lo:hi], th[lo:hi],
                      vr[lo:hi], reset, nxt, late)
        _post(s_out[t, b], d[t, b], q)
        _advance(h, x[t, b], q, keep, c, clip, do_clip)
    h_out[b] = h
    vT[lo:hi] = v
    iT[lo:hi] = cur
    bad[b] = np.sum(chk != 0)


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def forward(xw, x, alpha, keep, c, d, clip, do_clip, kk, h0, v0, i0, am, bb, cc, k, vl,
            th, vr, reset, nxt, late, s_out, u_out, h_out, ck, vT, iT,
            bad):  # pragma: no cover - compiled
    """Forward over ``T`` steps, one batch element per task. ``xw`` ``[T, B, M]`` is
    ``x W + b``; ``ck`` ``[B, ceil(T/kk), N, M]`` receives the trace before steps
    ``0, kk, 2 kk, ...``; ``u_out`` the pre-reset membrane (for backward)."""
    for b in numba.prange(xw.shape[1]):
        _forward_episode(b, xw, x, alpha, keep, c, d, clip, do_clip, kk, h0, v0, i0, am, bb,
                         cc, k, vl, th, vr, reset, nxt, late, s_out, u_out, h_out, ck, vT, iT,
                         bad)


@_jit
def forward_serial(xw, x, alpha, keep, c, d, clip, do_clip, kk, h0, v0, i0, am, bb, cc, k,
                   vl, th, vr, reset, nxt, late, s_out, u_out, h_out, ck, vT, iT,
                   bad):  # pragma: no cover - compiled
    """:func:`forward` on the calling thread (no thread pool): the same per-episode
    code, so the same bits."""
    for b in range(xw.shape[1]):
        _forward_episode(b, xw, x, alpha, keep, c, d, clip, do_clip, kk, h0, v0, i0, am, bb,
                         cc, k, vl, th, vr, reset, nxt, late, s_out, u_out, h_out, ck, vT, iT,
                         bad)


@_jit_sum
def _backward_episode(b, gs, ghT, gvT, giT, x, alpha, keep, c, d, has_mod, clip, do_clip,
                      kk, ck, s_out, u_out, v0, am, bb, cc, k, th, vr, reset, nxt, c_sub,
                      c_subd, c_zero, c_du, late, sid, slope, gxw, gx, galpha, gkeep, gc,
                      gd, gh0, gv0, gi0):  # pragma: no cover - compiled
    """Episode ``b`` of :func:`backward`."""
    T, B, M = s_out.shape
    N = x.shape[2]
    nck = ck.shape[1]
    lo, hi = b * M, (b + 1) * M
    g = ghT[b].copy()
    gv = gvT[lo:hi].copy()
    gi = giT[lo:hi].copy()
    ga = galpha[b]
    buf = np.empty((kk, N, M), x.dtype)
    q = np.empty(M, x.dtype)
    dq = np.empty(M, x.dtype)
    gy = np.empty(M, x.dtype)
    gin = np.empty(M, x.dtype)
    da = np.empty(N, x.dtype)
    vp = v0[lo:hi].copy()
    zeros = np.zeros(M, x.dtype)
    zero = zeros[0]
    sk = zero
    sc = zero
    for seg in range(nck - 1, -1, -1):
        t0 = seg * kk
        t1 = min(T, t0 + kk)
        buf[0] = ck[b, seg]
        for t in range(t0, t1 - 1):
            buf[t - t0 + 1] = buf[t - t0]
            _post(s_out[t, b], d[t, b], q)
            _advance(buf[t - t0 + 1], x[t, b], q, keep, c, clip, do_clip)
        for t in range(t1 - 1, t0 - 1, -1):
            hp = buf[t - t0]
            _post(s_out[t, b], d[t, b], q)
            dq[:] = 0
            for n in range(N):
                a = c * x[t, b, n]
                acc = zero
                for j in range(M):
                    gm = g[n, j]
                    if do_clip and abs(keep * hp[n, j] + a * q[j]) > clip:
                        gm = zero
                        g[n, j] = gm
                    dq[j] += a * gm
                    acc += gm * q[j]
                    sk += gm * hp[n, j]
                da[n] = acc
            for j in range(M):
                gy[j] = gs[t, b, j] + dq[j] * d[t, b, j]
                if has_mod:
                    gd[t, b, j] = dq[j] * s_out[t, b, j]
            if nxt:
                if t == 0:
                    vp[:] = v0[lo:hi]
                else:
                    cpu._prev_membrane(u_out[t - 1, b], th[lo:hi], vr[lo:hi], reset, nxt,
                                       vp)
            cpu._bwd_step(gy, zeros, u_out[t, b], vp, gin, gv, gi, am[lo:hi], bb[lo:hi],
                          cc[lo:hi], k[lo:hi], th[lo:hi], vr[lo:hi], nxt, c_sub, c_subd,
                          c_zero, c_du, late != 0, sid, slope)
            gxw[t, b] = gin
            for n in range(N):
                xn = x[t, b, n]
                acc = zero
                for j in range(M):
                    acc += alpha[n, j] * hp[n, j] * gin[j]
                    ga[n, j] += xn * gin[j] * hp[n, j]
                    g[n, j] = keep * g[n, j] + alpha[n, j] * xn * gin[j]
                gx[t, b, n] = acc + c * da[n]
                sc += xn * da[n]
    gh0[b] = g
    gv0[lo:hi] = gv
    gi0[lo:hi] = gi
    gkeep[b] = sk
    gc[b] = sc


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def backward(gs, ghT, gvT, giT, x, alpha, keep, c, d, has_mod, clip, do_clip, kk, ck,
             s_out, u_out, v0, am, bb, cc, k, th, vr, reset, nxt, c_sub, c_subd, c_zero,
             c_du, late, sid, slope, gxw, gx, galpha, gkeep, gc, gd, gh0, gv0,
             gi0):  # pragma: no cover - compiled
    """Reverse of :func:`forward` (module docstring). ``galpha`` ``[B, N, M]``,
    ``gkeep``/``gc`` ``[B]`` are per-episode sums (the caller adds them over ``B``);
    ``gd`` ``[T, B, M]`` is the modulator's gradient (written when ``has_mod``)."""
    for b in numba.prange(s_out.shape[1]):
        _backward_episode(b, gs, ghT, gvT, giT, x, alpha, keep, c, d, has_mod, clip, do_clip,
                          kk, ck, s_out, u_out, v0, am, bb, cc, k, th, vr, reset, nxt, c_sub,
                          c_subd, c_zero, c_du, late, sid, slope, gxw, gx, galpha, gkeep, gc,
                          gd, gh0, gv0, gi0)


@_jit
def backward_serial(gs, ghT, gvT, giT, x, alpha, keep, c, d, has_mod, clip, do_clip, kk,
                    ck, s_out, u_out, v0, am, bb, cc, k, th, vr, reset, nxt, c_sub,
                    c_subd, c_zero, c_du, late, sid, slope, gxw, gx, galpha, gkeep, gc,
                    gd, gh0, gv0, gi0):  # pragma: no cover - compiled
    """:func:`backward` on the calling thread (no thread pool), the same bits."""
    for b in range(s_out.shape[1]):
        _backward_episode(b, gs, ghT, gvT, giT, x, alpha, keep, c, d, has_mod, clip, do_clip,
                          kk, ck, s_out, u_out, v0, am, bb, cc, k, th, vr, reset, nxt, c_sub,
                          c_subd, c_zero, c_du, late, sid, slope, gxw, gx, galpha, gkeep, gc,
                          gd, gh0, gv0, gi0)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


class Neuron(tuple):
    """The compiled coefficients of a LIF-family neuron module for one ``[B, M]`` step:
    ``(tensors, codes)`` with ``tensors = (a_m, b, c, k, v_leak, theta, v_reset)``
    flattened to ``[B*M]`` and ``codes = (reset, next_step, late, surrogate id, slope,
    detach)``."""


def neuron_coefficients(post: Any, like: torch.Tensor) -> Neuron | None:
    """The family coefficients of ``post`` for steps shaped like ``like`` ``[B, M]``, or
    ``None`` when this path cannot run it (not a fused LIF/CubaLIF with fixed
    parameters on the CPU, an observer attached, or not float32/float64)."""
    from aura_snn.neurons.base import SpikingNeuron

    if not isinstance(post, SpikingNeuron) or post.fused is None or post._observers \
            or not post._use_fused(like) or like.device.type != "cpu" \
            or like.dtype not in (torch.float32, torch.float64) \
            or any(p.requires_grad for p in post.parameters()):
        return None
    spec = post.spec
    if spec.compile is None:
        return None
    p = post.neuron_parameters()
    fam = spec.compile(p, post.dt)
    if fam.n_ref or len(fam.receptors) != 1 or float(np.max(np.abs(np.asarray(
            torch.as_tensor(fam.a_adapt, dtype=torch.float64))))) != 0.0:
        return None
    (k, bb, cc), = fam.receptors
    flat = [torch.as_tensor(v, dtype=like.dtype).expand(like.shape).reshape(-1).contiguous()
            for v in (fam.a_m, bb, cc, k, fam.v_leak, fam.threshold, fam.v_reset)]
    codes = (int(fam.reset), int(fam.next_step), int(fam.late), int(p.surrogate_id),
             float(p.surrogate_slope), int(p.detach_reset))
    return Neuron((tuple(flat), codes))


POOL_MIN_WORK = 2 ** 20  # synapse-steps B*T*N*M from which numba's pool runs the episodes


def pooled(B: int, T: int, N: int, M: int) -> bool:
    """Whether episodes run on numba's thread pool (:func:`forward`, :func:`backward`)
    rather than on the calling thread (``*_serial``: the same per-episode code, so the
    same bits); module docstring, "Threads"."""
    return B > 1 and B * T * N * M >= POOL_MIN_WORK


def segment(steps: int) -> int:
    """Checkpoint spacing :math:`K = \\lceil\\sqrt T\\,\\rceil` (steps)."""
    return max(1, math.ceil(math.sqrt(steps)))


class FusedEpisodes(torch.autograd.Function):
    """``(xw [T,B,M], x [T,B,N], alpha [N,M], keep, c (0-dim), d [T,B,M], h0 [B,N,M],
    v0 [B*M], i0 [B*M], cfg) -> (spikes [T,B,M], H_T, v_T, i_T)``; ``cfg = (neuron,
    clip or None, modulated)``. Module docstring for the maths."""

    @staticmethod
    def forward(ctx: Any, xw: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor,
                keep: torch.Tensor, c: torch.Tensor, d: torch.Tensor, h0: torch.Tensor,
                v0: torch.Tensor, i0: torch.Tensor, cfg: tuple) -> tuple[torch.Tensor, ...]:
        neuron, clip, modulated = cfg
        coeffs, (reset, nxt, late, _, _, _) = neuron
        T, B, M = xw.shape
        kk = segment(T)
        f = _np(xw).dtype.type
        s = torch.empty_like(xw)
        u = torch.empty_like(xw)
        hT = torch.empty_like(h0)
        ck = torch.empty((B, -(-T // kk), *h0.shape[1:]), dtype=h0.dtype)
        vT, iT = torch.empty_like(v0), torch.empty_like(i0)
        bad = np.zeros(B, dtype=np.int64)
        scal = (f(keep.item()), f(c.item()), _np(d), f(clip or 0.0), clip is not None, kk)
        run = forward if pooled(B, T, h0.shape[1], M) else forward_serial
        run(_np(xw), _np(x), _np(alpha), scal[0], scal[1], scal[2], scal[3], scal[4],
                kk, _np(h0), _np(v0), _np(i0), *(_np(t) for t in coeffs), reset, nxt, late,
                _np(s), _np(u), _np(hT), _np(ck), _np(vT), _np(iT), bad)
        if bad.sum():
            raise InputValueError(f"the layer's current contains NaN or infinite values "
                                  f"(at {int(bad.sum())} neuron(s) of {B * M})")
        ctx.cfg, ctx.scal = cfg, scal
        ctx.save_for_backward(x, alpha, d, s, u, v0, ck)
        return s, hT, vT, iT

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor | None, ghT: torch.Tensor | None,
                 gvT: torch.Tensor | None, giT: torch.Tensor | None) -> tuple[Any, ...]:
        x, alpha, d, s, u, v0, ck = ctx.saved_tensors
        neuron, clip, modulated = ctx.cfg
        coeffs, (reset, nxt, late, sid, slope, detach) = neuron
        keep, c, _, clipf, do_clip, kk = ctx.scal
        T, B, M = s.shape
        N = x.shape[2]

        def given(g: torch.Tensor | None, shape: tuple[int, ...]) -> np.ndarray:
            return _np(torch.zeros(shape, dtype=s.dtype) if g is None else g.contiguous())

        f = _np(s).dtype.type
        c_sub = f(reset == _SUB and not detach)
        c_subd = f(reset == _SUB)
        c_zero = f(reset == _ZERO and not detach)
        c_du = f(reset == _ZERO)
        gxw, gx, gd = torch.empty_like(s), torch.empty_like(x), torch.zeros_like(s)
        galpha = torch.zeros((B, N, M), dtype=s.dtype)
        gkeep, gc = torch.zeros(B, dtype=s.dtype), torch.zeros(B, dtype=s.dtype)
        gh0, gv0, gi0 = torch.empty((B, N, M), dtype=s.dtype), torch.empty_like(v0), \
            torch.empty_like(v0)
        run = backward if pooled(B, T, N, M) else backward_serial
        run(given(gs, s.shape), given(ghT, (B, N, M)), given(gvT, v0.shape),
                 given(giT, v0.shape), _np(x), _np(alpha), keep, c, _np(d), bool(modulated),
                 clipf, do_clip, kk, _np(ck), _np(s), _np(u), _np(v0),
                 *(_np(t) for i, t in enumerate(coeffs) if i != 4), reset, nxt, c_sub,
                 c_subd, c_zero, c_du, late, sid, slope, _np(gxw), _np(gx), _np(galpha),
                 _np(gkeep), _np(gc), _np(gd), _np(gh0), _np(gv0), _np(gi0))
        need = ctx.needs_input_grad
        outs = (gxw, gx, galpha.sum(0), gkeep.sum(), gc.sum(), gd if modulated else None,
                gh0, gv0, gi0)
        return (*(g if need[n] else None for n, g in enumerate(outs)), None)


__all__ = ["FusedEpisodes", "Neuron", "neuron_coefficients", "segment"]
