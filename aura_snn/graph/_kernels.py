r"""Compiled (numba) inner loops of the graph engine; see :mod:`aura_snn.graph.engine`.

Every spiking region is one member of the compiled LIF family
(:class:`~aura_snn.functional.registry.CompiledFamily`, from its model's
``spec.compile``), and every neuron is updated by the one per-neuron step of
:mod:`aura_snn.kernels.family` (``receptor`` per receptor, then ``neuron``), which the
fused kernels compile too. The loops here only load a neuron's state and
coefficients, call that step and store the result; ``tests/graph/test_engine.py``
checks bit-identical results against the torch stepper.

A region's loop is chosen by what its model's state holds (``roles``) and its number
of receptors, not by the model's name:

====== ======== ========== ========== =========== ==================================
kind   current  refractory adaptation receptors   e.g.
====== ======== ========== ========== =========== ==================================
0      no       no         no         1           ``lif``
1      no       no         yes        1           ``alif``
2      yes      no         no         1           ``cuba``
3      yes      yes        no         2           ``cuba_refractory`` (exc, inh)
4      yes      yes        yes        any         any other member (generic)
====== ======== ========== ========== =========== ==================================

(Regions with ``reset_at="next_step"`` run the generic loop too; kinds from
:data:`._kernels_models.FIRST` on are models outside the family, each stepped by its
own compiled scalar step.) The generic loop
computes every family member exactly (a missing current has :math:`b = c = 0`, a
missing refractory period :math:`n_\text{ref} = 0`, a missing adaptation :math:`a_b =
\beta = 0`; each is then an exact no-op); the others drop the state they do not have
from the loop. The neuron update is memory-bound, so what a loop reads matters: each
kind runs at one of five levels,

===== ===================================================================================
level coefficients read per neuron (the others are scalars held in registers)
===== ===================================================================================
0     none
1     threshold, ``v_reset``, ``beta`` (:data:`FIRING`), through handles
2     also ``a_m``, ``v_leak``, ``a_b``, the couplings ``k_r`` (:data:`MEMBRANE`),
      through handles
3     the threshold (:data:`THRESHOLD_ROWS`), as a row
4     ``a_m``, the threshold and every ``k_r`` (:func:`membrane_rows`: what a per-neuron
      ``tau_mem`` and threshold vary), as rows
===== ===================================================================================

(per-neuron receptor decays :math:`b_r, c_r`, i.e. ``tau_syn``, run the generic loop).
A region takes level 3 or 4 when the coefficients that vary lie in that level's set
(its scalars then repeat along a row of the block), else level 1 or 2. At levels 3
and 4 the loop gets each row as a 1-d array: one contiguous vector load per 8 (float64)
or 16 (float32) neurons, nothing else. At levels 1 and 2 a coefficient that may vary is
read through a handle: a select between its row of the region's per-neuron block,
which holds only the coefficients that do vary, and its scalar. The select's condition
is loop-invariant, so LLVM turns each handle into a branch around its load, with the
row's address reloaded from the stack: measured (loaded 2-core AMD EPYC, CUBA update
of 3,200 neurons alone, float64) per-neuron thresholds cost 1.15-1.2x the scalar loop
through a handle and 1.0x as a row; a_m, threshold and both couplings 1.8-1.95x through
handles and 1.35x as rows. What remains is the rows' own traffic: the scalar loop moves
~100 bytes per neuron (inputs read and cleared, ``v``, two currents, ``ref``, the spike
byte) and runs at the core's load/store rate, to which four float64 rows add 32 bytes.
The kind and level are compile-time constants (one compiled function each, called by
:func:`run_steps`), the reset code and ``late`` loop-invariant selects, so every
variant is straight-line code that LLVM vectorises. Spikes are then collected from a
byte mask, 8 neurons per 64-bit word, and propagated event by event through a CSR table
into a ring buffer of pending inputs (``pend[(t + 1 + d) % L]``).

Uniform numbers of Poisson regions: splitmix64 of a counter (:mod:`._rng`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import overload

from ..functional import firing
from ..kernels import family
from ..kernels._numba_cache import invalidate_if_changed
from . import _kernels_models as _km
from . import _plastic_kernels as _pk

# numba's cache does not see edits of the files inlined here: drop it when they change
invalidate_if_changed(__file__, [family.__file__, firing.__file__, _pk.__file__,
                                 _km.__file__, *_km.DEPENDS])

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
_FAMILY = family.numba_inline()
_receptor = _FAMILY["receptor"]
_neuron = _FAMILY["neuron"]
_where = _FAMILY["where"]

#: Loop by ``(current, refractory, adaptation, receptors, next_step)``; others: GENERIC.
KINDS = {(False, False, False, 1, False): 0, (False, False, True, 1, False): 1,
         (True, False, False, 1, False): 2, (True, True, False, 2, False): 3}
GENERIC = 4
#: Coefficients of a region, in order: these, then ``k, b, c`` per receptor.
ROWS = ("am", "vl", "th", "vr", "ab", "beta")
#: Coefficients that may be per neuron at level 1 (threshold, reset, adaptation step).
FIRING = frozenset({2, 3, 5})
#: Coefficients that may be per neuron at level 2 (with the receptors' couplings
#: ``k_r`` of two receptors); per-neuron ``b_r, c_r`` run the generic loop.
MEMBRANE = frozenset({0, 1, 2, 3, 4, 5, 6, 9})
#: Coefficients read as rows at level 3 (the threshold) and 4 (what a per-neuron tau_mem
#: and threshold vary: a_m, the threshold, the coupling k_r of each receptor).
THRESHOLD_ROWS = frozenset({2})


def membrane_rows(receptors: int) -> frozenset[int]:
    """Coefficients read as rows at level 4 for a region of ``receptors`` receptors."""
    return frozenset({0, 2, *(6 + 3 * r for r in range(receptors))})


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


def _co(Pk, h, j):  # noqa: ANN001, ANN202
    """Coefficient of neuron ``j``: ``h`` itself for a scalar, ``h[j]`` for a row (a 1-d
    array, levels 3 and 4), or for a handle ``h = (row, per_neuron, value)`` row ``row``
    of ``Pk`` if ``per_neuron`` else ``value`` (compiled by the overload)."""
    raise RuntimeError("only callable from compiled code")


@overload(_co, inline="always")
def _co_impl(Pk, h, j):  # noqa: ANN001, ANN202
    if isinstance(h, types.Array):
        return lambda Pk, h, j: h[j]
    if isinstance(h, types.BaseTuple):
        # both sides are loaded; a scalar's handle points at a row the loop loads anyway
        # (the first per-neuron row), so the select costs no memory traffic
        def impl(Pk, h, j):  # noqa: ANN001, ANN202
            x = Pk[h[0], j]
            return _where(h[1], x, h[2])
        return impl
    return lambda Pk, h, j: h


@_inline
def _loop_r1(n, xr0, v, c0, ref, bt, flag, Pk, am, vl, th, vr, ab, beta, k0, b0, cc0, reset,
             nref, late, nxt, cur, refr, adapt, zero, one):  # pragma: no cover - compiled
    """One receptor: inputs ``xr0`` (read and cleared), state ``v``, current ``c0`` (if
    ``cur``), ``ref`` (if ``refr``), ``bt`` (if ``adapt``); spikes into ``flag``.
    Coefficients are scalars or handles into ``Pk`` (:func:`_co`)."""
    for j in range(n):
        x = xr0[j]
        xr0[j] = zero
        if cur:
            ie, inew = _receptor(c0[j], x, _co(Pk, b0, j), _co(Pk, cc0, j), late, zero)
            c0[j] = inew
        else:
            ie = x
        vn, rn, bn, s, _ = _neuron(
            v[j], ref[j] if refr else 0, bt[j] if adapt else zero, _co(Pk, k0, j) * ie,
            _co(Pk, am, j), _co(Pk, vl, j), _co(Pk, th, j), _co(Pk, vr, j), _co(Pk, ab, j),
            _co(Pk, beta, j), nref, reset, nxt, adapt, refr, zero, one)
        v[j] = vn
        if refr:
            ref[j] = rn
        if adapt:
            bt[j] = bn
        flag[j] = s


@_inline
def _loop_r2(n, xr0, xr1, v, c0, c1, ref, bt, flag, Pk, am, vl, th, vr, ab, beta, k0, b0,
             cc0, k1, b1, cc1, reset, nref, late, nxt, refr, adapt, zero,
             one):  # pragma: no cover - compiled
    """Two receptors with currents (e.g. exc/inh); the drive is ``k0 ie0 + k1 ie1``."""
    for j in range(n):
        x0 = xr0[j]
        x1 = xr1[j]
        xr0[j] = zero
        xr1[j] = zero
        ie0, i0 = _receptor(c0[j], x0, _co(Pk, b0, j), _co(Pk, cc0, j), late, zero)
        ie1, i1 = _receptor(c1[j], x1, _co(Pk, b1, j), _co(Pk, cc1, j), late, zero)
        c0[j] = i0
        c1[j] = i1
        vn, rn, bn, s, _ = _neuron(
            v[j], ref[j] if refr else 0, bt[j] if adapt else zero,
            _co(Pk, k0, j) * ie0 + _co(Pk, k1, j) * ie1, _co(Pk, am, j), _co(Pk, vl, j),
            _co(Pk, th, j), _co(Pk, vr, j), _co(Pk, ab, j), _co(Pk, beta, j), nref, reset, nxt,
            adapt, refr, zero, one)
        v[j] = vn
        if refr:
            ref[j] = rn
        if adapt:
            bt[j] = bn
        flag[j] = s


@_inline
def _loop_generic(n, nrec, xr, v, cur, ref, bt, flag, P, reset, nref, late, nxt, zero,
                  one):  # pragma: no cover - compiled
    """Any member: ``nrec`` receptors (rows of ``xr``/``cur``), drive summed in receptor
    order, every coefficient per neuron (rows of ``P``, :data:`ROWS`)."""
    for j in range(n):
        drive = zero
        for r in range(nrec):
            x = xr[r, j]
            xr[r, j] = zero
            ie, inew = _receptor(cur[r, j], x, P[7 + 3 * r, j], P[8 + 3 * r, j], late, zero)
            cur[r, j] = inew
            kie = P[6 + 3 * r, j] * ie
            drive = kie if r == 0 else drive + kie
        vn, rn, bn, s, _ = _neuron(v[j], ref[j], bt[j], drive, P[0, j], P[1, j], P[2, j],
                                   P[3, j], P[4, j], P[5, j], nref, reset, nxt, True, True,
                                   zero, one)
        v[j] = vn
        ref[j] = rn
        bt[j] = bn
        flag[j] = s


# One compiled function per kind and level (_<kind>_<s|f|p>: levels 0, 1, 2): the loop
# inlined with its flags as constants. Each is its own compilation unit (compiling them
# all inlined into run_steps takes minutes); run_steps calls the region's one once per
# step. Arguments: n, inputs, v, currents, ref, b, spikes, scalar coefficients f
# (ROWS), receptor scalars rc [R, 3] (k, b, c), the rows Pk of the coefficients that
# vary, their mask m (bit q: coefficient q, in the order ROWS then k, b, c per
# receptor), reset, n_ref, late, zero, one. Coefficients that the level lets vary are
# read through handles (_h), the others are scalars.


@_inline
def _h(m, q, value):  # pragma: no cover - compiled
    """Handle of coefficient ``q``: its row in ``Pk`` (the number of per-neuron
    coefficients before it), whether it is per neuron, its scalar value."""
    row = 0
    for p in range(q):
        row += (m >> p) & 1
    pn = ((m >> q) & 1) != 0
    return (row if pn else 0, pn, value)


@_jit
def _lif_s(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], f[2], f[3], f[4], f[5], rc[0, 0],
             rc[0, 1], rc[0, 2], reset, nref, late, False, False, False, False, zero, one)


@_jit
def _lif_f(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], _h(m, 2, f[2]), _h(m, 3, f[3]), f[4],
             f[5], rc[0, 0], rc[0, 1], rc[0, 2], reset, nref, late, False, False, False, False,
             zero, one)


@_jit
def _lif_p(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, _h(m, 0, f[0]), _h(m, 1, f[1]), _h(m, 2, f[2]),
             _h(m, 3, f[3]), f[4], f[5], _h(m, 6, rc[0, 0]), rc[0, 1], rc[0, 2], reset, nref, late,
             False, False, False, False, zero, one)


@_jit
def _alif_s(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], f[2], f[3], f[4], f[5], rc[0, 0],
             rc[0, 1], rc[0, 2], reset, nref, late, False, False, False, True, zero, one)


@_jit
def _alif_f(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], _h(m, 2, f[2]), _h(m, 3, f[3]), f[4],
             _h(m, 5, f[5]), rc[0, 0], rc[0, 1], rc[0, 2], reset, nref, late, False, False, False,
             True, zero, one)


@_jit
def _alif_p(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, _h(m, 0, f[0]), _h(m, 1, f[1]), _h(m, 2, f[2]),
             _h(m, 3, f[3]), _h(m, 4, f[4]), _h(m, 5, f[5]), _h(m, 6, rc[0, 0]), rc[0, 1],
             rc[0, 2], reset, nref, late, False, False, False, True, zero, one)


@_jit
def _cuba_s(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], f[2], f[3], f[4], f[5], rc[0, 0],
             rc[0, 1], rc[0, 2], reset, nref, late, False, True, False, False, zero, one)


@_jit
def _cuba_f(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], _h(m, 2, f[2]), _h(m, 3, f[3]), f[4],
             f[5], rc[0, 0], rc[0, 1], rc[0, 2], reset, nref, late, False, True, False, False,
             zero, one)


@_jit
def _cuba_p(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, _h(m, 0, f[0]), _h(m, 1, f[1]), _h(m, 2, f[2]),
             _h(m, 3, f[3]), f[4], f[5], _h(m, 6, rc[0, 0]), rc[0, 1], rc[0, 2], reset, nref, late,
             False, True, False, False, zero, one)


@_jit
def _cr2_s(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r2(n, xs[:n], xs[n:], v, cur[:n], cur[n:], ref, bt, flag, Pk, f[0], f[1], f[2], f[3],
             f[4], f[5], rc[0, 0], rc[0, 1], rc[0, 2], rc[1, 0], rc[1, 1], rc[1, 2], reset, nref,
             late, False, True, False, zero, one)


@_jit
def _cr2_f(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r2(n, xs[:n], xs[n:], v, cur[:n], cur[n:], ref, bt, flag, Pk, f[0], f[1], _h(m, 2, f[2]),
             _h(m, 3, f[3]), f[4], f[5], rc[0, 0], rc[0, 1], rc[0, 2], rc[1, 0], rc[1, 1],
             rc[1, 2], reset, nref, late, False, True, False, zero, one)


@_jit
def _cr2_p(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r2(n, xs[:n], xs[n:], v, cur[:n], cur[n:], ref, bt, flag, Pk, _h(m, 0, f[0]),
             _h(m, 1, f[1]), _h(m, 2, f[2]), _h(m, 3, f[3]), f[4], f[5], _h(m, 6, rc[0, 0]),
             rc[0, 1], rc[0, 2], _h(m, 9, rc[1, 0]), rc[1, 1], rc[1, 2], reset, nref, late, False,
             True, False, zero, one)


# Levels 3 and 4: the coefficients of a fixed set are rows of Pk, passed as 1-d arrays
# (read with no select, :func:`_co`), the others scalars. Level 3: the threshold (Pk =
# [th]); level 4: what a per-neuron tau_mem and threshold vary, a_m, the threshold and
# the couplings (Pk = [am, th, k_0, ..., k_{R-1}]).


@_jit
def _lif_t(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], Pk[0], f[3], f[4], f[5], rc[0, 0],
             rc[0, 1], rc[0, 2], reset, nref, late, False, False, False, False, zero, one)


@_jit
def _lif_m(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, Pk[0], f[1], Pk[1], f[3], f[4], f[5], Pk[2],
             rc[0, 1], rc[0, 2], reset, nref, late, False, False, False, False, zero, one)


@_jit
def _alif_t(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], Pk[0], f[3], f[4], f[5], rc[0, 0],
             rc[0, 1], rc[0, 2], reset, nref, late, False, False, False, True, zero, one)


@_jit
def _alif_m(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, Pk[0], f[1], Pk[1], f[3], f[4], f[5], Pk[2],
             rc[0, 1], rc[0, 2], reset, nref, late, False, False, False, True, zero, one)


@_jit
def _cuba_t(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, f[0], f[1], Pk[0], f[3], f[4], f[5], rc[0, 0],
             rc[0, 1], rc[0, 2], reset, nref, late, False, True, False, False, zero, one)


@_jit
def _cuba_m(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
            one):  # pragma: no cover - compiled
    _loop_r1(n, xs, v, cur, ref, bt, flag, Pk, Pk[0], f[1], Pk[1], f[3], f[4], f[5], Pk[2],
             rc[0, 1], rc[0, 2], reset, nref, late, False, True, False, False, zero, one)


@_jit
def _cr2_t(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r2(n, xs[:n], xs[n:], v, cur[:n], cur[n:], ref, bt, flag, Pk, f[0], f[1], Pk[0],
             f[3], f[4], f[5], rc[0, 0], rc[0, 1], rc[0, 2], rc[1, 0], rc[1, 1], rc[1, 2],
             reset, nref, late, False, True, False, zero, one)


@_jit
def _cr2_m(n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero,
           one):  # pragma: no cover - compiled
    _loop_r2(n, xs[:n], xs[n:], v, cur[:n], cur[n:], ref, bt, flag, Pk, Pk[0], f[1], Pk[1],
             f[3], f[4], f[5], Pk[2], rc[0, 1], rc[0, 2], Pk[3], rc[1, 1], rc[1, 2],
             reset, nref, late, False, True, False, zero, one)


@_jit
def _generic(n, xs, v, cur, ref, bt, flag, f, rc, P, reset, nref, late, nxt, zero,
             one):  # pragma: no cover - compiled
    R = rc.shape[0]
    _loop_generic(n, R, xs.reshape((R, n)), v, cur.reshape((R, n)), ref, bt, flag, P, reset,
                  nref, late, nxt, zero, one)


@_inline
def _update(kind, lvl, n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, nxt,
            zero, one):  # pragma: no cover - compiled
    """Update one region with the function of its kind and level (module docstring)."""
    a = (n, xs, v, cur, ref, bt, flag, f, rc, Pk, m, reset, nref, late, zero, one)
    if kind == 0:
        if lvl == 0:
            _lif_s(*a)
        elif lvl == 1:
            _lif_f(*a)
        elif lvl == 2:
            _lif_p(*a)
        elif lvl == 3:
            _lif_t(*a)
        else:
            _lif_m(*a)
    elif kind == 1:
        if lvl == 0:
            _alif_s(*a)
        elif lvl == 1:
            _alif_f(*a)
        elif lvl == 2:
            _alif_p(*a)
        elif lvl == 3:
            _alif_t(*a)
        else:
            _alif_m(*a)
    elif kind == 2:
        if lvl == 0:
            _cuba_s(*a)
        elif lvl == 1:
            _cuba_f(*a)
        elif lvl == 2:
            _cuba_p(*a)
        elif lvl == 3:
            _cuba_t(*a)
        else:
            _cuba_m(*a)
    elif kind == 3:
        if lvl == 0:
            _cr2_s(*a)
        elif lvl == 1:
            _cr2_f(*a)
        elif lvl == 2:
            _cr2_p(*a)
        elif lvl == 3:
            _cr2_t(*a)
        else:
            _cr2_m(*a)
    else:
        _generic(n, xs, v, cur, ref, bt, flag, f, rc, Pk, reset, nref, late, nxt, zero, one)


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
def deliver_events(t_ev, j_ev, v_ev, L, pend, indptr, tgt, w, dl, has_dl):  # pragma: no cover
    """Deliver outputs ``j_ev`` of value ``v_ev`` emitted at steps ``t_ev`` (in order)
    through their synapses, as :func:`run_steps` delivers its own: what an input region
    emitted in another process (:meth:`~aura_snn.graph.engine.EngineRun.deliver`)."""
    for q in range(t_ev.shape[0]):
        _deliver(j_ev[q], v_ev[q], t_ev[q], L, pend, indptr, tgt, w, dl, has_dl)


@_jit
def run_steps(n_steps, t0, L, batch, bidx,
              v, cur, ref, bt, pend, flag,
              sp_off, sp_n, sp_R, sp_coff, sp_kof, sp_kind, sp_lvl, sp_mask, sp_poff,
              sp_reset, sp_nref, sp_late, sp_nxt, sp_f, rc, pn, sp_out,
              po_out, po_n, po_poff, po_key, po_p,
              fd_out, fd_n, fd_voff, fd_vals,
              indptr, tgt, w, dl, has_dl,
              rec_mask, ev_t, ev_i, ev_cap,
              pr_src, pr_idx, pr_every, pr_out,
              pl_mask, Lh, first, pl_i, pl_f, pl_ptr, pl_syn, tr, tl, ring_i, ring_v,
              ring_n, touch, st_i, st_f, st_u, st_x, st_tl):  # pragma: no cover
    """Run up to ``n_steps`` steps starting at absolute step ``t0``.

    Returns ``(steps_done, n_events, n_probe_rows)``; stops early (after a whole step)
    when the event buffer could overflow in the next step. Plasticity
    (:mod:`._plastic_kernels`): outputs with ``pl_mask`` set feed synapse models
    (``st_*``: their synapses in rows of their own, scaled by the efficacy) and plastic
    projections (``pl_*``: arrivals recorded in a ring of ``Lh`` steps, then
    :func:`~._plastic_kernels.plastic_step` after the step's spikes are delivered;
    ``first``: the run's first step is ``t0``).
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
            o, n, co, R = sp_off[g], sp_n[g], sp_coff[g], sp_R[g]
            fo, ko, po, m = sp_out[g], sp_kof[g], sp_poff[g], sp_mask[g]
            if sp_kind[g] >= _km.FIRST:     # a model kernel (._kernels_models)
                _km.update(sp_kind[g], n, R, xs[co:co + R * n], v[o:o + n],
                           cur[co:co + R * n], ref[o:o + n], bt[o:o + n], flag[fo:fo + n],
                           sp_f[g], pn[po:], m, sp_nref[g], sp_reset[g])
                continue
            rows = 0
            for q in range(6 + 3 * R):
                rows += (m >> q) & 1
            Pk = pn[po:po + rows * n].reshape((rows, n))
            _update(sp_kind[g], sp_lvl[g], n, xs[co:co + R * n], v[o:o + n],
                    cur[co:co + R * n], ref[o:o + n], bt[o:o + n], flag[fo:fo + n], sp_f[g],
                    rc[ko:ko + R], Pk, m, sp_reset[g], sp_nref[g], sp_late[g] != 0,
                    sp_nxt[g] != 0, zero, one)
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
                elif src == 3:
                    pr_out[npr, q] = flag[k]
                else:
                    pr_out[npr, q] = bt[k]
            npr += 1
        # 5. collect spikes (8 mask bytes at a time) and propagate them
        n_pl = pl_i.shape[0]
        if n_pl > 0:
            _pk.clear_slot(t, Lh, pl_i, ring_n)
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
                if pl_mask[j]:
                    for m in range(st_i.shape[0]):
                        so, sn = st_i[m, 0], st_i[m, 1]
                        if so <= j < so + sn:
                            e = _pk.stp_efficacy(m, j - so, val, t, st_i, st_f, st_u, st_x,
                                                 st_tl)
                            _deliver(st_i[m, 2] + j - so, val * e, t, L, pend, indptr, tgt,
                                     w, dl, has_dl)
                    if n_pl > 0:
                        _pk.record_arrivals(j, val, t, Lh, pl_i, ring_i, ring_v, ring_n)
        # 6. plasticity, after this step's spikes left with the weights of step t - 1
        if n_pl > 0:
            _pk.plastic_step(t, Lh, first and s == 0, w, flag, pl_i, pl_f, pl_ptr, pl_syn,
                             tr, tl, ring_i, ring_v, ring_n, touch)
        done += 1
    return done, ne, npr
