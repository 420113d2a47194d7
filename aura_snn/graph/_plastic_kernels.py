r"""Compiled plasticity of the graph engine: STDP and short-term plasticity, event by event.

The engine (:mod:`aura_snn.graph.engine`) runs a rule or synapse model itself when it
declares a :class:`~aura_snn.graph.plasticity.CompiledForm` of a kind of
:data:`~aura_snn.graph.plasticity.COMPILED_KINDS`. These kernels are the event-driven
form of those kinds, called by :func:`aura_snn.graph._kernels.run_steps`; the torch
form of each rule is its own module (:mod:`neuromodulation.stdp`,
:mod:`neuromodulation.stp`), whose docstrings define the order of operations, and
``tests/graph/test_engine_plasticity.py`` holds the two equal.

**Traces, lazily.** A trace is stored as its value just after its last jump, at step
:math:`t_\text{last}` (per neuron; a sparse projection keeps one presynaptic value per
synapse, as its rule state does, with the step of its neuron), and read at step
:math:`t` as :math:`x\,a^{t - t_\text{last}}` with :math:`a = e^{-\Delta t/\tau}`, the
way Brian2's event-driven traces are. A jump by activity :math:`s` is :math:`x
\leftarrow x a^k + s` (all-to-all) or :math:`s + (1 - s)\,x a^k` (nearest), the rule
of :mod:`aura_snn.functional.traces`. The torch stepper multiplies by :math:`a` every
step instead: the two agree to :math:`(k + 2)` roundings of the trace (relative), not
bit for bit.

**One step** :math:`t` of a plastic projection, after every region has updated and
every spike of the step has been delivered with the weights of step :math:`t - 1`:

1. *arrivals* (presynaptic neurons that emitted at :math:`t - 1 - d`, ``d`` the
   projection's delay; a ring of the last steps' spikes holds them): each synapse of
   the neuron's row is depressed from the postsynaptic traces (decayed to :math:`t`,
   without this step's jumps), clipped to :math:`[w_\min, w_\max]`; then the neuron's
   presynaptic traces jump;
2. *postsynaptic spikes* of step :math:`t`: each synapse of the neuron's column is
   potentiated from the presynaptic traces (with this step's jumps), clipped; then
   the neuron's postsynaptic traces jump;
3. the weights touched get the projection's clamps (sign, then its bounds; what
   :meth:`~aura_snn.graph.projection.Projection.apply_update` does). In the first
   step of a run every synapse is clipped (the torch rule clips all of them).

Pair rule (``PAIR``), with :math:`f_- = 1` or :math:`w - w_\min`, :math:`f_+ = 1` or
:math:`w_\max - w` (multiplicative): on arrival :math:`w \leftarrow w - A_- s f_-(w) y`,
on a post spike :math:`w \leftarrow w + A_+ f_+(w) x`. Triplet rule (``TRIPLET``): on
arrival :math:`w \leftarrow w - s\,o_1 (A_2^- + A_3^- r_2)` with :math:`r_2` before its
jump, on a post spike :math:`w \leftarrow w + r_1 (A_2^+ + A_3^+ o_2)` with :math:`o_2`
before its jump.

**Short-term plasticity** (Tsodyks-Markram, :func:`stp_efficacy`): at an emission of
activity :math:`s`, ``k`` steps after the neuron's last one, :math:`u \leftarrow u\,
a_f^k`, :math:`x \leftarrow 1 - a_d^k (1 - x)`, efficacy :math:`e = (u + U(1 - u))\,x`,
then :math:`u \leftarrow u + sU(1 - u)`, :math:`x \leftarrow x - s e`; the synapses of
that projection receive :math:`s\,e\,w`.
"""

from __future__ import annotations

import math

import numba

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")

#: Kernel code of each plastic kind of :data:`~aura_snn.graph.plasticity.COMPILED_KINDS`.
PAIR, TRIPLET = 0, 1
RULE_CODES = {"pair_stdp": PAIR, "triplet_stdp": TRIPLET}
#: Synapse-model kinds (efficacy at emission).
SYNAPSE_KINDS = ("tsodyks_markram",)

#: Columns of the integer table ``pl_i`` (one row per plastic projection).
(I_KIND, I_PRE_OUT, I_NPRE, I_POST_OUT, I_NPOST, I_DELAY, I_RPTR, I_CPTR, I_SYN, I_NNZ,
 I_TPRE, I_TPOST, I_TLPRE, I_TLPOST, I_RING, I_RCNT, I_PERSYN, I_SIGN, I_TOUCH) = range(19)
N_I = 19
#: Columns of the float table ``pl_f``: rule bounds, projection bounds, the decays of
#: pre traces 0, 1 and post traces 0, 1, then the kind's amplitudes and flags.
(F_WMIN, F_WMAX, F_LO, F_HI, F_APRE0, F_APRE1, F_APOST0, F_APOST1, F_P0, F_P1, F_P2,
 F_P3, F_P4) = range(13)
N_F = 13
#: Sign codes (``I_SIGN``): none, excitatory (w >= 0), inhibitory (w <= 0).
SIGN_CODES = {None: 0, "exc": 1, "inh": 2}


@_inline
def _decayed(x, a, k):  # pragma: no cover - compiled
    """A trace ``k >= 0`` steps after its last jump: :math:`x a^k`."""
    if k == 0:
        return x
    return x * math.pow(a, k)


@_inline
def _jump(x, s, nearest):  # pragma: no cover - compiled
    """A (decayed) trace ``x`` after activity ``s``: ``x + s`` or ``s + (1 - s) x``."""
    if nearest:
        return s + (1.0 - s) * x
    return x + s


@_inline
def _clip(w, lo, hi):  # pragma: no cover - compiled
    return min(max(w, lo), hi)


@_inline
def _final(w, sign, lo, hi):  # pragma: no cover - compiled
    """The projection's clamps of a changed weight: sign, bounds, sign again (the
    effective weight)."""
    if sign == 1:
        w = max(w, 0.0)
    elif sign == 2:
        w = min(w, 0.0)
    w = _clip(w, lo, hi)
    if sign == 1:
        w = max(w, 0.0)
    elif sign == 2:
        w = min(w, 0.0)
    return w


@_inline
def record_arrivals(j, val, t, Lh, pl_i, ring_i, ring_v, ring_n):  # pragma: no cover
    """Remember that output ``j`` emitted ``val`` in step ``t``, for every plastic
    projection it is presynaptic to (ring slot ``t % Lh``)."""
    slot = t % Lh
    for k in range(pl_i.shape[0]):
        o, n = pl_i[k, I_PRE_OUT], pl_i[k, I_NPRE]
        if o <= j < o + n:
            c = ring_n[pl_i[k, I_RCNT] + slot]
            ring_i[pl_i[k, I_RING] + slot * n + c] = j - o
            ring_v[pl_i[k, I_RING] + slot * n + c] = val
            ring_n[pl_i[k, I_RCNT] + slot] = c + 1


@_inline
def clear_slot(t, Lh, pl_i, ring_n):  # pragma: no cover - compiled
    """Empty ring slot ``t % Lh`` before step ``t`` records into it."""
    slot = t % Lh
    for k in range(pl_i.shape[0]):
        ring_n[pl_i[k, I_RCNT] + slot] = 0


@_jit
def stp_efficacy(m, i, s, t, st_i, st_f, st_u, st_x, st_tl):  # pragma: no cover
    """Efficacy of presynaptic neuron ``i`` of synapse model ``m`` emitting ``s`` in
    step ``t`` (module docstring), and its state after the emission."""
    q = st_i[m, 3] + i
    U, a_f, a_d = st_f[m, 0], st_f[m, 1], st_f[m, 2]
    k = t - st_tl[q]
    u = _decayed(st_u[q], a_f, k)
    x = 1.0 - _decayed(1.0 - st_x[q], a_d, k)
    e = (u + U * (1.0 - u)) * x
    st_u[q] = u + (s * U) * (1.0 - u)
    st_x[q] = x - s * e
    st_tl[q] = t
    return e


@_jit
def plastic_step(t, Lh, first, w, flag, pl_i, pl_f, ptr, syn, tr, tl, ring_i, ring_v,
                 ring_n, touch):  # pragma: no cover - compiled
    """The plasticity of step ``t`` for every plastic projection (module docstring).

    ``w``: the engine's synapse weights (merged CSR order); ``flag``: this step's
    outputs; ``syn[0..3, s]``: position in ``w``, post index, pre index of local synapse
    ``s`` (row order), and ``syn[3]`` the synapses in column order; ``ptr``: row and
    column offsets; ``tr``/``tl``: trace values and their last-jump steps."""
    for k in range(pl_i.shape[0]):
        kind, n_pre, n_post = pl_i[k, I_KIND], pl_i[k, I_NPRE], pl_i[k, I_NPOST]
        post_out, nnz, persyn = pl_i[k, I_POST_OUT], pl_i[k, I_NNZ], pl_i[k, I_PERSYN] != 0
        rp, cp, so = pl_i[k, I_RPTR], pl_i[k, I_CPTR], pl_i[k, I_SYN]
        tpre, tpost = pl_i[k, I_TPRE], pl_i[k, I_TPOST]
        tlpre, tlpost = pl_i[k, I_TLPRE], pl_i[k, I_TLPOST]
        sign, tch = pl_i[k, I_SIGN], pl_i[k, I_TOUCH]
        w_min, w_max, lo, hi = pl_f[k, F_WMIN], pl_f[k, F_WMAX], pl_f[k, F_LO], pl_f[k, F_HI]
        a_pre0, a_pre1 = pl_f[k, F_APRE0], pl_f[k, F_APRE1]
        a_post0, a_post1 = pl_f[k, F_APOST0], pl_f[k, F_APOST1]
        n_slots = nnz if persyn else n_pre      # presynaptic trace values per field
        nearest = False
        if kind == PAIR:
            a_plus, a_minus = pl_f[k, F_P0], pl_f[k, F_P1]
            mult, nearest = pl_f[k, F_P2] != 0.0, pl_f[k, F_P3] != 0.0
        else:
            a2p, a3p, a2m, a3m = pl_f[k, F_P0], pl_f[k, F_P1], pl_f[k, F_P2], pl_f[k, F_P3]
            nearest = pl_f[k, F_P4] != 0.0
        nt = 0
        # 1. arrivals: depress the row, then the presynaptic traces jump
        slot = (t - 1 - pl_i[k, I_DELAY]) % Lh
        ro = pl_i[k, I_RING] + slot * n_pre
        for c in range(ring_n[pl_i[k, I_RCNT] + slot]):
            i = ring_i[ro + c]
            s = ring_v[ro + c]
            ki = t - tl[tlpre + i]
            r2_old = 0.0
            if kind == TRIPLET and not persyn:
                r2_old = _decayed(tr[tpre + n_slots + i], a_pre1, ki)
            for q in range(ptr[rp + i], ptr[rp + i + 1]):
                pos, j = syn[0, so + q], syn[1, so + q]
                kj = t - tl[tlpost + j]
                wq = w[pos]
                if kind == PAIR:
                    y = _decayed(tr[tpost + j], a_post0, kj)
                    dep = (wq - w_min) * y if mult else y
                    wq = _clip(wq + (-a_minus * s) * dep, w_min, w_max)
                else:
                    if persyn:
                        r2_old = _decayed(tr[tpre + n_slots + q], a_pre1, ki)
                    o1 = _decayed(tr[tpost + j], a_post0, kj)
                    dep = o1 * (a2m + a3m * r2_old)
                    wq = _clip(wq + (-s) * dep, w_min, w_max)
                w[pos] = wq
                touch[tch + nt] = pos
                nt += 1
                if persyn:
                    x0 = tpre + q
                    tr[x0] = _jump(_decayed(tr[x0], a_pre0, ki), s, nearest)
                    if kind == TRIPLET:
                        tr[x0 + n_slots] = _jump(_decayed(tr[x0 + n_slots], a_pre1, ki), s,
                                                 nearest)
            if not persyn:
                x0 = tpre + i
                tr[x0] = _jump(_decayed(tr[x0], a_pre0, ki), s, nearest)
                if kind == TRIPLET:
                    tr[x0 + n_slots] = _jump(_decayed(tr[x0 + n_slots], a_pre1, ki), s,
                                             nearest)
            tl[tlpre + i] = t
        if first:   # the torch rule clips every synapse each step: once brings all in
            for q in range(nnz):
                w[syn[0, so + q]] = _clip(w[syn[0, so + q]], w_min, w_max)
        # 2. postsynaptic spikes: potentiate the column, then the post traces jump
        for j in range(n_post):
            if flag[post_out + j] == 0:
                continue
            kj = t - tl[tlpost + j]
            o2_old = 0.0
            if kind == TRIPLET:
                o2_old = _decayed(tr[tpost + n_post + j], a_post1, kj)
            for c in range(ptr[cp + j], ptr[cp + j + 1]):
                q = syn[3, so + c]
                i = syn[2, so + q]
                xs = tpre + (q if persyn else i)
                x = _decayed(tr[xs], a_pre0, t - tl[tlpre + i])
                pos = syn[0, so + q]
                wq = w[pos]
                if kind == PAIR:
                    pot = (w_max - wq) * x if mult else x
                    wq = _clip(wq + a_plus * pot, w_min, w_max)
                else:
                    wq = _clip(wq + x * (a2p + a3p * o2_old), w_min, w_max)
                w[pos] = wq
                touch[tch + nt] = pos
                nt += 1
            y0 = tpost + j
            tr[y0] = _jump(_decayed(tr[y0], a_post0, kj), 1.0, nearest)
            if kind == TRIPLET:
                tr[y0 + n_post] = _jump(_decayed(tr[y0 + n_post], a_post1, kj), 1.0, nearest)
            tl[tlpost + j] = t
        # 3. the projection's clamps on what changed (on everything in the first step)
        if first:
            for q in range(nnz):
                w[syn[0, so + q]] = _final(w[syn[0, so + q]], sign, lo, hi)
        else:
            for c in range(nt):
                w[touch[tch + c]] = _final(w[touch[tch + c]], sign, lo, hi)


__all__ = ["PAIR", "RULE_CODES", "SIGN_CODES", "SYNAPSE_KINDS", "TRIPLET", "clear_slot",
           "plastic_step", "record_arrivals", "stp_efficacy"]
