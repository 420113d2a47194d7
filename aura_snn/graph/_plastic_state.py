r"""State of the engine's plasticity (:mod:`._plastic_layout`), in and out of a
:class:`~aura_snn.graph.state.GraphState`.

A rule's traces are loaded as they are after step ``st.t - 1`` and marked as jumped
then (:mod:`._plastic_kernels` reads them lazily); the arrivals of the last ``d + 1``
steps come from the projection's ``history`` into the ring. At the end of a run every
trace is decayed to the last step, :math:`x a^{t_\text{end} - 1 - t_\text{last}}`,
and written back in the rule's layout (``[1, n_pre]`` or ``[1, nnz]`` presynaptic,
``[1, n_post]`` postsynaptic), the ring back into ``history``, and the final weights
into each projection's plastic part, :math:`W_\text{plastic} = W - W_\text{learned}`.
A synapse model's ``u``, ``x`` (``[B, n_pre]``) travel the same way, per sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import _plastic_kernels as K
from ._plastic_layout import PlasticLayout, local_indices
from .state import GraphState

if TYPE_CHECKING:
    from .graph import Graph


class PlasticState:
    """The mutable arrays of one batch element (traces, rings, synapse model state)."""

    def __init__(self, pl: PlasticLayout, dtype: np.dtype, t0: int) -> None:
        ntr, ntl, nring, ntouch = pl.sizes
        self.tr = np.zeros(ntr, dtype)
        self.tl = np.full(ntl, t0 - 1, np.int64)
        self.ring_i = np.zeros(nring, np.int64)
        self.ring_v = np.zeros(nring, dtype)
        self.ring_n = np.zeros(len(pl.rules) * pl.Lh, np.int64)
        self.touch = np.zeros(ntouch, np.int64)
        self.st_u = np.zeros(pl.n_st, dtype)
        self.st_x = np.ones(pl.n_st, dtype)
        self.st_tl = np.full(pl.n_st, t0 - 1, np.int64)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def load(pl: PlasticLayout, st: GraphState, b: int, dtype: np.dtype) -> PlasticState:
    """Batch element ``b``'s plastic arrays from ``st`` (traces as they are after step
    ``st.t - 1``; the arrivals of the last ``d + 1`` steps from the history)."""
    ps = PlasticState(pl, dtype, st.t)
    for k, r in enumerate(pl.rules):
        p, f, row = r.p, r.form, pl.pl_i[k]
        s = st.rules[r.key]
        off = int(row[K.I_TPRE])
        for name in f.pre_fields:
            x = _np(getattr(s, name))[b].reshape(-1)
            ps.tr[off:off + x.size] = x
            off += x.size
        for name in f.post_fields:
            y = _np(getattr(s, name))[b].reshape(-1)
            ps.tr[off:off + y.size] = y
            off += y.size
        hist = st.history.get(p.name, [])
        for lag, h in enumerate(hist):                  # emitted at st.t - 1 - lag
            slot = (st.t - 1 - lag) % pl.Lh
            v = _np(h)[b]
            nz = np.flatnonzero(v)
            o = int(row[K.I_RING]) + slot * p.n_pre
            ps.ring_i[o:o + nz.size] = nz
            ps.ring_v[o:o + nz.size] = v[nz]
            ps.ring_n[int(row[K.I_RCNT]) + slot] = nz.size
    for m, (p, f, _) in enumerate(pl.stp):
        s = st.synapses[p.name]
        o = int(pl.st_i[m, 3])
        ps.st_u[o:o + p.n_pre] = _np(getattr(s, f.pre_fields[0]))[b]
        ps.st_x[o:o + p.n_pre] = _np(getattr(s, f.pre_fields[1]))[b]
    return ps


def _decay_to(x: np.ndarray, a: float, k: np.ndarray) -> np.ndarray:
    return np.where(k == 0, x, x * np.power(a, k.astype(np.float64)))


def store(pl: PlasticLayout, graph: Graph, st: GraphState, els: list[PlasticState],
          w: np.ndarray, t_end: int) -> tuple[dict[str, Any], dict[str, Any],
                                              dict[str, list[torch.Tensor]]]:
    """The rule states, synapse states and histories after step ``t_end - 1``; writes
    the final weights into each plastic projection's plastic part."""
    rules, synapses = dict(st.rules), dict(st.synapses)
    history = {k: list(v) for k, v in st.history.items()}
    dev, dt_ = graph.device, graph.dtype

    def tensor(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=dev, dtype=like.dtype)

    for k, r in enumerate(pl.rules):
        p, f, row, ff = r.p, r.form, pl.pl_i[k], pl.pl_f[k]
        ps = els[0]
        old = st.rules[r.key]
        slots = p.nnz if p.sparse else p.n_pre
        tlpre = ps.tl[row[K.I_TLPRE]:row[K.I_TLPRE] + p.n_pre]
        tlpost = ps.tl[row[K.I_TLPOST]:row[K.I_TLPOST] + p.n_post]
        kpre = (t_end - 1) - (tlpre if not p.sparse else tlpre[local_indices(p)[0]])
        kpost = (t_end - 1) - tlpost
        new, off = {}, int(row[K.I_TPRE])
        for q, name in enumerate(f.pre_fields):
            x = _decay_to(ps.tr[off:off + slots], float(ff[K.F_APRE0 + q]), kpre)
            new[name] = tensor(x[None], getattr(old, name))
            off += slots
        for q, name in enumerate(f.post_fields):
            y = _decay_to(ps.tr[off:off + p.n_post], float(ff[K.F_APOST0 + q]), kpost)
            new[name] = tensor(y[None], getattr(old, name))
            off += p.n_post
        rules[r.key] = old._replace(**new)
        if p.name in history:
            hist = []
            for lag in range(len(history[p.name])):
                slot = (t_end - 1 - lag) % pl.Lh
                v = np.zeros(p.n_pre, w.dtype)
                o = int(row[K.I_RING]) + slot * p.n_pre
                c = int(ps.ring_n[int(row[K.I_RCNT]) + slot])
                v[ps.ring_i[o:o + c]] = ps.ring_v[o:o + c]
                hist.append(torch.from_numpy(v[None]).to(device=dev, dtype=dt_))
            history[p.name] = hist
        w_new = torch.from_numpy(w[r.pos].reshape(p.weight.shape)).to(
            device=p.weight.device, dtype=p.weight.dtype)
        p.make_plastic()
        p.plastic_weight = w_new - p.weight.detach()
    for m, (p, f, _) in enumerate(pl.stp):
        old = synapses[p.name]
        o, n = int(pl.st_i[m, 3]), p.n_pre
        a_f, a_d = float(pl.st_f[m, 1]), float(pl.st_f[m, 2])
        us, xs = [], []
        for ps in els:
            kk = (t_end - 1) - ps.st_tl[o:o + n]
            us.append(_decay_to(ps.st_u[o:o + n], a_f, kk))
            xs.append(1.0 - _decay_to(1.0 - ps.st_x[o:o + n], a_d, kk))
        u_name, x_name = f.pre_fields[0], f.pre_fields[1]
        synapses[p.name] = old._replace(**{
            u_name: tensor(np.stack(us), getattr(old, u_name)),
            x_name: tensor(np.stack(xs), getattr(old, x_name))})
    return rules, synapses, history


__all__ = ["PlasticState", "load", "store"]
