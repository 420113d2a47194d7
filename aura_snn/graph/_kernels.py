r"""Compiled (numba) inner loops of the graph engine; see :mod:`aura_snn.graph.engine`.

The equations are those of :mod:`aura_snn.functional` (``lif``, ``cuba``,
``cuba_refractory``), written as one family so a single loop serves all three:

.. math::
    \hat\imath_r = b_r i_r + x_r \;(\text{or } b_r i_r \text{ if late}),\quad
    u = v_\text{leak} + a_m (v - v_\text{leak}) + \sum_r k_r \hat\imath_r,\quad
    i_r \leftarrow c_r \hat\imath_r \;(+ x_r \text{ if late})

=================== ====== ======= ======= ===== =========================================
model               b_r    c_r     k_r     late  note
=================== ====== ======= ======= ===== =========================================
lif                 0      0       g       no    no current; :math:`\hat\imath = x`
cuba current_first  a_s    1       k       no
cuba voltage_first  1      a_s     k       yes   the input enters after the membrane step
cuba_refractory     1      a_r     k_r     no    plus the refractory counter
=================== ====== ======= ======= ===== =========================================

The coefficients are computed by :mod:`aura_snn.functional` and passed in; the
operations are done in the same order as the torch reference (multiplying by 1 and
adding 0 are exact), so results are bit-identical. The neuron loops are free of
data-dependent branches (selects only) and branch-invariant in their mode flags, so
LLVM vectorises them; spikes are then collected from a byte mask, 8 neurons per
64-bit word, and propagated event by event through a CSR table into a ring buffer of
pending inputs (``pend[(t + 1 + d) % L]``).

Uniform numbers of Poisson regions: splitmix64 of a counter (:mod:`._rng`).
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@_jit
def uniform(ctr):  # noqa: ANN001, ANN201 - compiled
    """splitmix64 finaliser of ``ctr + GOLDEN`` as a float64 in [0, 1)."""
    z = ctr + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@_inline
def _fire(u, vo, refj, th, vr, rz, rs, nref, zero):  # pragma: no cover - compiled
    """Refractory clamp, threshold and reset of one neuron: ``(v, ref, spike)``.

    ``c = max(ref - 1, 0)``; refractory (``c > 0``): the membrane keeps ``vo``; a spike
    needs ``c == 0`` and ``u - th > 0``; reset to ``vr`` (``rz``), by ``th`` (``rs``) or
    none."""
    c = refj - 1
    c = c if c > 0 else 0
    free = c == 0
    u = u if free else vo
    s = free & (u - th > zero)
    vres = vr if rz else (u - th if rs else u)
    return (vres if s else u), (nref if s else c), s


@_jit
def _neurons_r1(n, xr0, v, c0, ref, flag, am, vl, th, vr, reset, nref, late,
                k0, b0, cc0, zero, one):  # pragma: no cover - compiled
    """Single-receptor population: inputs ``xr0`` (cleared), state ``v``, ``c0``, ``ref``.

    The mode flags enter as 0/1 factors and loop-invariant selects, not branches, so
    the loop vectorises whatever the flags (``late``: where ``x`` enters; ``reset``:
    0 subtract, 1 to ``vr``, 2 none)."""
    xa = zero if late else one
    xb = one - xa
    rz, rs = reset == 1, reset == 0
    for j in range(n):
        x = xr0[j]
        xr0[j] = zero
        ie = b0 * c0[j] + xa * x
        c0[j] = cc0 * ie + xb * x
        vo = v[j]
        u = vl + am * (vo - vl) + k0 * ie
        v[j], ref[j], flag[j] = _fire(u, vo, ref[j], th, vr, rz, rs, nref, zero)


@_jit
def _neurons_r2(n, xr0, xr1, v, c0, c1, ref, flag, am, vl, th, vr, reset, nref, late,
                k0, b0, cc0, k1, b1, cc1, zero, one):  # pragma: no cover - compiled
    """Two-receptor population (e.g. exc/inh): as :func:`_neurons_r1`; the drive is
    ``k0 ie0 + k1 ie1`` in that order."""
    xa = zero if late else one
    xb = one - xa
    rz, rs = reset == 1, reset == 0
    for j in range(n):
        x0 = xr0[j]
        x1 = xr1[j]
        xr0[j] = zero
        xr1[j] = zero
        ie0 = b0 * c0[j] + xa * x0
        ie1 = b1 * c1[j] + xa * x1
        c0[j] = cc0 * ie0 + xb * x0
        c1[j] = cc1 * ie1 + xb * x1
        vo = v[j]
        u = vl + am * (vo - vl) + (k0 * ie0 + k1 * ie1)
        v[j], ref[j], flag[j] = _fire(u, vo, ref[j], th, vr, rz, rs, nref, zero)


@_jit
def _neurons_rn(n, nrec, xr, v, cur, ref, flag, am, vl, th, vr, reset, nref, late,
                kk, bb, cc, zero, one):  # pragma: no cover - compiled
    """Any number of receptors (rows of ``xr``/``cur``); drive summed in receptor order."""
    xa = zero if late else one
    xb = one - xa
    rz, rs = reset == 1, reset == 0
    for j in range(n):
        drive = zero
        for r in range(nrec):
            x = xr[r, j]
            xr[r, j] = zero
            e = bb[r] * cur[r, j] + xa * x
            cur[r, j] = cc[r] * e + xb * x
            drive = kk[r] * e if r == 0 else drive + kk[r] * e
        vo = v[j]
        u = vl + am * (vo - vl) + drive
        v[j], ref[j], flag[j] = _fire(u, vo, ref[j], th, vr, rz, rs, nref, zero)


@_jit
def _poisson(n, flag, p, ctr0):  # pragma: no cover - compiled
    """``flag[j] = U(ctr0 + j) < p[j]``."""
    for j in range(n):
        flag[j] = 1 if uniform(ctr0 + np.uint64(j)) < p[j] else 0


@_jit
def _deliver(j, val, t, L, pend, indptr, tgt, w, dl, has_dl):  # pragma: no cover - compiled
    """Add the synapses of output ``j`` (value ``val``) to the pending rows
    ``(t + 1 + d) % L``."""
    if has_dl:
        for q in range(indptr[j], indptr[j + 1]):
            pend[(t + 1 + dl[q]) % L, tgt[q]] += w[q] * val
    else:
        row = pend[(t + 1) % L]
        for q in range(indptr[j], indptr[j + 1]):
            row[tgt[q]] += w[q] * val


@_jit
def run_steps(n_steps, t0, L, batch, bidx,
              v, cur, ref, pend, flag,
              sp_off, sp_n, sp_R, sp_coff, sp_kof, sp_reset, sp_nref, sp_late, sp_f, rc,
              sp_out,
              po_out, po_n, po_poff, po_key, po_p,
              fd_out, fd_n, fd_voff, fd_vals,
              indptr, tgt, w, dl, has_dl,
              rec_mask, ev_t, ev_i, ev_cap,
              pr_src, pr_idx, pr_every, pr_out):  # pragma: no cover
    """Run up to ``n_steps`` steps starting at absolute step ``t0``.

    Returns ``(steps_done, n_events, n_probe_rows)``; stops early (after a whole step)
    when the event buffer could overflow in the next step.
    """
    one = np.ones(1, v.dtype)[0]
    zero = one - one
    n_out = flag.shape[0]
    nwords = n_out // 8
    words = flag.view(np.uint64)
    ne = 0
    npr = 0
    done = 0
    for s in range(n_steps):
        if ne + n_out > ev_cap:
            break
        t = t0 + s
        slot = t % L
        xs = pend[slot]
        # 1. spiking regions
        for g in range(sp_n.shape[0]):
            o, n, co, ko = sp_off[g], sp_n[g], sp_coff[g], sp_kof[g]
            fo = sp_out[g]
            am, vl, th, vr = sp_f[g, 0], sp_f[g, 1], sp_f[g, 2], sp_f[g, 3]
            R = sp_R[g]
            reset, nref, late = sp_reset[g], sp_nref[g], sp_late[g]
            if R == 1:
                _neurons_r1(n, xs[co:co + n], v[o:o + n], cur[co:co + n], ref[o:o + n],
                            flag[fo:fo + n], am, vl, th, vr, reset, nref, late,
                            rc[ko, 0], rc[ko, 1], rc[ko, 2], zero, one)
            elif R == 2:
                _neurons_r2(n, xs[co:co + n], xs[co + n:co + 2 * n], v[o:o + n],
                            cur[co:co + n], cur[co + n:co + 2 * n], ref[o:o + n],
                            flag[fo:fo + n], am, vl, th, vr, reset, nref, late,
                            rc[ko, 0], rc[ko, 1], rc[ko, 2],
                            rc[ko + 1, 0], rc[ko + 1, 1], rc[ko + 1, 2], zero, one)
            else:
                _neurons_rn(n, R, xs[co:co + R * n].reshape(R, n), v[o:o + n],
                            cur[co:co + R * n].reshape(R, n), ref[o:o + n],
                            flag[fo:fo + n], am, vl, th, vr, reset, nref, late,
                            rc[ko:ko + R, 0], rc[ko:ko + R, 1], rc[ko:ko + R, 2], zero, one)
        # 2. Poisson regions
        for g in range(po_n.shape[0]):
            n = po_n[g]
            ctr0 = po_key[g] + np.uint64((t * batch + bidx) * n)
            _poisson(n, flag[po_out[g]:po_out[g] + n], po_p[po_poff[g]:po_poff[g] + n], ctr0)
        # 3. fed regions
        for g in range(fd_n.shape[0]):
            fo, n, vo = fd_out[g], fd_n[g], fd_voff[g]
            for j in range(n):
                flag[fo + j] = 1 if fd_vals[s, vo + j] != 0 else 0
        # 4. probes (state after this step)
        if pr_src.shape[0] > 0 and t % pr_every == 0:
            for q in range(pr_src.shape[0]):
                src = pr_src[q]
                k = pr_idx[q]
                if src == 0:
                    pr_out[npr, q] = v[k]
                elif src == 1:
                    pr_out[npr, q] = cur[k]
                elif src == 2:
                    pr_out[npr, q] = ref[k]
                else:
                    pr_out[npr, q] = flag[k]
            npr += 1
        # 5. collect spikes (8 mask bytes at a time) and propagate them
        for wi in range(nwords + 1):
            if wi < nwords:
                if words[wi] == 0:
                    continue
                lo, hi = wi * 8, wi * 8 + 8
            else:
                lo, hi = nwords * 8, n_out
            for j in range(lo, hi):
                if flag[j] == 0:
                    continue
                if rec_mask[j]:
                    ev_t[ne] = t
                    ev_i[ne] = j
                    ne += 1
                val = one
                for g in range(fd_n.shape[0]):
                    if fd_out[g] <= j < fd_out[g] + fd_n[g]:
                        val = fd_vals[s, fd_voff[g] + j - fd_out[g]]
                _deliver(j, val, t, L, pend, indptr, tgt, w, dl, has_dl)
        done += 1
    return done, ne, npr
