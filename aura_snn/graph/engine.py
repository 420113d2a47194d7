r"""Compiled event-driven engine: runs a graph without a Python step loop.

For no-gradient runs on the CPU, :meth:`aura_snn.graph.Graph.run` hands supported
graphs to this engine. It compiles the graph into flat arrays once per run:

* all spiking neurons in one state vector (membrane ``v``, receptor currents,
  refractory counters, adaptation traces), region by region. Each region's model is
  read from the registry (:mod:`aura_snn.functional.registry`): ``spec.compile(p,
  dt)`` gives its coefficients in the compiled family's encoding
  (:class:`~aura_snn.functional.registry.CompiledFamily`), ``spec.roles`` which state
  field is the membrane, the current(s), the refractory counter and the adaptation
  trace, ``spec.multi_receptor`` the shape of the currents. A coefficient is a scalar
  per region, or a per-neuron array when the parameters it comes from are tensors of
  shape ``[n]``;
* every projection merged into one CSR table indexed by presynaptic output, whose
  entries point straight at a postsynaptic receptor input, with per-synapse delays;
* pending inputs in a ring buffer ``pend[L, inputs]`` (``L = 2 + max delay``): a
  spike of step ``t`` through a synapse of delay ``d`` is added to row
  ``(t + 1 + d) % L``, read and cleared in step ``t + 1 + d``.

Each step, :func:`aura_snn.graph._kernels.run_steps` updates every population with a
vectorised loop around the family's one per-neuron step (:mod:`aura_snn.kernels.
family`, shared with the fused kernels), gathers the spikes from a byte mask and
propagates only those (event-driven: the cost of synaptic transmission grows with the
number of spikes times the out-degree, not with the number of synapses). It runs
chunks of steps; after each, every observer (:mod:`aura_snn.graph.observer`:
recorders, counters) gets one :class:`~aura_snn.graph.observer.Chunk` and the progress
bar advances.

What it supports (:func:`unsupported_reason` says why not otherwise): spiking regions
of every model whose spec has a ``compile`` (``lif``, ``cuba``, ``alif``,
``cuba_refractory``; functional or neuron modules), with scalar or per-neuron
parameters and either reset timing; regions of models outside that family whose spec
has a ``kernel`` (``lif_cond``, ``izhikevich``: their scalar step, compiled by
:mod:`._kernels_models`, every coefficient a per-neuron row); Poisson regions; input
regions; projections without traces of their own (same-step edges:
:meth:`~aura_snn.graph.Graph.engine_reason`), with a rule or synapse model that
declares a compiled form (pair and triplet STDP, Tsodyks-Markram STP:
:mod:`._plastic_layout` says which, and :mod:`._plastic_kernels` runs them event by
event; rules need batch 1 and one delay per projection); observers of spikes, outputs,
state fields, weights (of projections without rules) and synaptic event counts.
Float32 and float64. A batch runs as independent copies in lockstep, each in its own
thread (the kernel releases the GIL), so a batch uses the available cores.

It computes exactly what the torch stepper computes, in the same order
(``tests/graph/test_engine.py`` asserts identical spikes and states over thousands of
steps in float64). The only place where results may differ in the last bit is the sum
of several synaptic inputs arriving at one neuron in one step, which the engine adds
one by one and torch as a matrix product; tests use dyadic weights, whose sums are
exact in any order. Plastic weights and traces are not dyadic: there the engine
equals the torch stepper to rounding (``tests/graph/test_engine_plasticity.py``: spikes
identical, weights to 1e-12 of their range), because it reads traces as :math:`x a^k`
where torch multiplies by :math:`a` every step.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ParameterError
from ..functional.registry import CompiledFamily
from . import _align, _csr, _engine_chunk, _kernels, _plastic_state
from . import _kernels_models as _models
from . import _plastic_layout as _plastic
from ._rng import MASK64, region_key
from .observer import Probe, out_degrees, spike_regions_wanted
from .projection import Projection
from .regions import InputRegion, PoissonRegion, SpikingRegion
from .state import GraphState

if TYPE_CHECKING:
    from .graph import Graph

#: Probe source code of each state role (the kernel's probe table; 3 is a region output).
_ROLE_SRC = {"v": 0, "i": 1, "ref": 2, "b": 4}


@dataclass
class _Coefficients:
    """A spiking region in the engine's encoding (see :mod:`._kernels`)."""

    kind: int
    level: int                     # 0 scalar, 1 per-neuron threshold/reset, 2 membrane too
    mask: int                      # bit q: coefficient q has a row (ROWS, then k, b, c)
    scalars: np.ndarray            # [6]: _kernels.ROWS (NaN where per neuron)
    receptors: np.ndarray          # [R, 3]: k, b, c (NaN where per neuron)
    block: np.ndarray | None       # [rows, n]: the rows of the mask's coefficients
    reset: int
    n_ref: int
    late: bool
    next_step: bool


def _check_parameters(r: SpikingRegion, p: Any, dtype: torch.dtype) -> str | None:
    """Why ``p``'s tensors cannot become per-neuron coefficients (``None`` if they can):
    each must broadcast to ``[n]``, and must not be wider than the graph's dtype (torch
    would then compute in that wider type)."""
    for f in dataclasses.fields(p):
        value = getattr(p, f.name)
        for k, t in enumerate(value if isinstance(value, tuple) else (value,)):
            if not isinstance(t, torch.Tensor) or t.dim() == 0:
                continue
            name = f"{f.name}[{k}]" if isinstance(value, tuple) else f.name
            try:
                ok = torch.broadcast_shapes(t.shape, (r.size,)) == (r.size,)
            except RuntimeError:
                ok = False
            if not ok:
                return (f"region {r.name!r} has a per-neuron {name} of shape "
                        f"{tuple(t.shape)} (engine: scalars or shape [n] = ({r.size},))")
            if t.is_floating_point() and torch.promote_types(t.dtype, dtype) != dtype:
                return (f"region {r.name!r} has a per-neuron {name} in {t.dtype}, wider than "
                        f"the graph's {dtype} (torch would compute it in {t.dtype}; convert "
                        f"the parameter, or the graph with .to({t.dtype}))")
    return None


def _values(c: Any, n: int, dtype: np.dtype) -> np.ndarray | float:
    """A coefficient as a float (one value for the region) or an ``[n]`` array."""
    if isinstance(c, torch.Tensor):
        if c.numel() == 1:
            return float(c.detach().reshape(()))
        return np.ascontiguousarray(np.broadcast_to(
            c.detach().cpu().numpy().astype(dtype), (n,)))
    return float(c)


def _region_coefficients(r: SpikingRegion, dt: float, dtype: torch.dtype
                         ) -> _Coefficients | str:
    """Engine coefficients of a spiking region, or the reason it is unsupported."""
    spec = r.spec
    if spec is None or (spec.compile is None and spec.kernel is None):
        return (f"region {r.name!r} uses model {r.model!r}, which has no compiled family "
                f"(its registry spec has neither compile nor kernel)")
    p = r.params()
    why = _check_parameters(r, p, dtype)
    if why is not None:
        return why
    roles = dict(spec.roles)
    unknown = [f for f in spec.state._fields if f not in roles.values()]
    if unknown or set(roles) - set(_ROLE_SRC):
        return (f"region {r.name!r} (model {r.model!r}) has state field(s) {unknown} or "
                f"roles {sorted(set(roles) - set(_ROLE_SRC))} outside the compiled family "
                f"(roles: {sorted(_ROLE_SRC)})")
    npdt = np.float64 if dtype == torch.float64 else np.float32
    if spec.compile is None:             # a model kernel (._kernels_models)
        got = _models.coefficients(r, p, dt, len(_kernels.ROWS), npdt)
        if isinstance(got, str):
            return got
        kind, mask, scal, block, reset, n_ref = got
        nan = np.full((len(spec.receptors(p)), 3), np.nan, npdt)
        return _Coefficients(kind, 0, mask, scal, nan, block, reset, n_ref, False, False)
    fam: CompiledFamily = spec.compile(p, dt)
    n, R = r.size, len(fam.receptors)
    has_i, refr, adapt = "i" in roles, "ref" in roles, "b" in roles
    mem = [_values(c, n, npdt) for c in (fam.a_m, fam.v_leak, fam.threshold, fam.v_reset,
                                         fam.a_adapt, fam.beta)]
    rec = [[_values(c, n, npdt) for c in kbc] for kbc in fam.receptors]
    if not has_i and (fam.late or any(isinstance(c, np.ndarray) or c != 0.0
                                      for _, b, cc in rec for c in (b, cc))):
        return (f"region {r.name!r} (model {r.model!r}): its compiled receptors keep a current "
                f"(b, c != 0 or late) but its state has none (no 'i' role)")
    if not adapt and any(isinstance(c, np.ndarray) or c != 0.0 for c in mem[4:]):
        return (f"region {r.name!r} (model {r.model!r}): its compiled family adapts "
                f"(a_adapt, beta != 0) but its state has no adaptation trace (no 'b' role)")
    rows = [*mem, *(c for kbc in rec for c in kbc)]          # _kernels.ROWS, then k, b, c
    per_neuron = {q for q, c in enumerate(rows) if isinstance(c, np.ndarray)}
    kind = _kernels.KINDS.get((has_i, refr, adapt, R, bool(fam.next_step)), _kernels.GENERIC)
    level = 0 if not per_neuron else 1 if per_neuron <= _kernels.FIRING else 2
    if not per_neuron <= _kernels.MEMBRANE:   # per-neuron b_r, c_r (tau_syn): generic loop
        kind = _kernels.GENERIC
    # levels 3, 4: a fixed set read as rows without selects (its scalars repeated in rows)
    fixed = {3: _kernels.THRESHOLD_ROWS, 4: _kernels.membrane_rows(R)}
    fit = [lv for lv, rs in fixed.items() if per_neuron and per_neuron <= rs]
    if kind == _kernels.GENERIC:        # every coefficient a row (scalars repeated)
        mask = (1 << len(rows)) - 1
    elif fit:
        level = fit[0]
        mask = sum(1 << q for q in fixed[level])
    else:                               # a row for each per-neuron coefficient
        mask = sum(1 << q for q in per_neuron)
    block = None
    if mask:
        block = np.stack([np.broadcast_to(np.asarray(c, dtype=npdt), (n,))
                          for q, c in enumerate(rows) if (mask >> q) & 1])
    scal = np.asarray([np.nan if isinstance(c, np.ndarray) else c for c in mem], dtype=npdt)
    rc = np.asarray([[np.nan if isinstance(c, np.ndarray) else c for c in kbc] for kbc in rec],
                    dtype=npdt).reshape(R, 3)
    return _Coefficients(kind, level, mask, scal, rc, block, int(fam.reset), int(fam.n_ref),
                         bool(fam.late), bool(fam.next_step))


def unsupported_reason(graph: Graph) -> str | None:
    """Why the engine cannot run ``graph`` (``None`` when it can)."""
    if graph.dtype not in (torch.float32, torch.float64):
        return f"dtype {graph.dtype} (engine: float32, float64)"
    for r in graph.regions.values():
        if isinstance(r, SpikingRegion):
            c = _region_coefficients(r, graph.dt, graph.dtype)
            if isinstance(c, str):
                return c
        elif not isinstance(r, (PoissonRegion, InputRegion)):
            return f"region {r.name!r} is a {r.kind} region (engine: spiking, poisson, input)"
    for p in graph.projections.values():
        why = _plastic.projection_reason(graph, p)
        if why is not None:
            return why
        if p.trace_taus is not None:
            return f"projection {p.name!r} keeps traces"
    for o in graph.all_observers():
        for pr in o.probes:
            if pr.variable in ("pre_trace", "post_trace"):
                return f"observer {o!r} samples traces"
            if pr.variable == "weights" and graph.projections[pr.target].rules:
                return (f"observer {o!r} samples the weights of plastic projection "
                        f"{pr.target!r} (the engine has them at the end of the run)")
    return None


def state_reason(graph: Graph, st: GraphState) -> str | None:
    """Why the engine cannot run ``graph`` from state ``st`` (``None`` when it can):
    what :func:`unsupported_reason` cannot know before the run (the batch size)."""
    return _plastic.state_reason(graph, st)


@dataclass
class _Layout:
    """Flat layout of a graph for the kernel (shared by all batch elements)."""

    names: list[str]
    out_off: dict[str, int]
    n_out: int
    sp: list[str]
    sp_off: np.ndarray
    sp_n: np.ndarray
    sp_R: np.ndarray
    sp_coff: np.ndarray
    sp_kof: np.ndarray
    sp_kind: np.ndarray
    sp_lvl: np.ndarray
    sp_mask: np.ndarray
    sp_poff: np.ndarray
    sp_reset: np.ndarray
    sp_nref: np.ndarray
    sp_late: np.ndarray
    sp_nxt: np.ndarray
    sp_f: np.ndarray
    rc: np.ndarray
    pn: np.ndarray
    sp_out: np.ndarray
    n_v: int
    n_in: int
    po: list[str]
    po_out: np.ndarray
    po_n: np.ndarray
    po_poff: np.ndarray
    po_key: np.ndarray
    po_p: np.ndarray
    fd: list[str]
    fd_out: np.ndarray
    fd_n: np.ndarray
    fd_voff: np.ndarray
    n_fed: int
    indptr: np.ndarray
    tgt: np.ndarray
    w: np.ndarray
    dl: np.ndarray
    has_dl: bool
    L: int
    dtype: np.dtype
    pl: _plastic.PlasticLayout
    key: tuple[Any, ...] = ()      # the graph it was built for (:func:`_layout_key`)
    silent: frozenset[str] = frozenset()      # input regions fed no values (EngineRun)
    silent_min_delay: dict[str, int] = dataclasses.field(default_factory=dict)


def _layout_key(graph: Graph, silent: frozenset[str] = frozenset()) -> tuple[Any, ...]:
    """What a layout must match to run ``graph``: the graph object, its regions and
    projections in order, its dtype, its silent inputs (a cheap check; weights are not
    compared)."""
    return (id(graph), tuple(graph.regions), tuple(graph.projections), graph.dtype,
            tuple(sorted(silent)))


def check_layout(graph: Graph, layout: Any, silent: frozenset[str] = frozenset()
                 ) -> _Layout:
    """``layout`` if it was built by :func:`build_layout` for ``graph`` as it is now
    (same object, regions, projections, dtype and ``silent``); ``ParameterError``
    otherwise."""
    if not isinstance(layout, _Layout):
        raise ParameterError(f"layout must come from aura_snn.graph.engine.build_layout, "
                             f"got {type(layout).__name__}")
    if layout.key != _layout_key(graph, frozenset(silent)):
        raise ParameterError("layout was built for another graph (or before its regions, "
                             "projections or dtype changed, or with other silent inputs): "
                             "build it again with build_layout(graph)")
    return layout


def _i64(x: list[int]) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _per_neuron_block(blocks: list[tuple[int, np.ndarray]], size: int,
                      dtype: np.dtype) -> np.ndarray:
    """The regions' per-neuron coefficient rows in one cache-line aligned buffer, each
    region's block at its offset (a multiple of :data:`._align.LANES`, so a region of
    a multiple of 8 neurons has every row aligned; the gaps stay zero and are never read)."""
    out = _align.zeros(size, dtype)
    for off, block in blocks:
        out[off:off + block.size] = block
    return out


def build_layout(graph: Graph, silent: frozenset[str] = frozenset()) -> _Layout:
    """Flatten ``graph`` (regions, coefficients, merged CSR) for the kernel.

    ``silent``: input regions that are fed no values (:class:`EngineRun`); their outputs
    have synapses in the table but no fed column.

    :func:`run_graph` builds one per run unless given one (``layout=``, also
    :meth:`Graph.run`): many short runs of one graph (the windows of a partitioned
    run, :mod:`.distributed.worker`) build it once. A layout holds the weights as they
    were when it was built, updated in place by the engine's plasticity (and written
    back to the projections after each run), so it stays valid across runs as long as
    nothing else changes the graph's weights, delays or parameters."""
    reason = unsupported_reason(graph)
    if reason is not None:
        raise ParameterError(f"the engine cannot run this graph: {reason}")
    silent = frozenset(silent)
    for name in sorted(silent):
        if name not in graph.regions or not isinstance(graph.regions[name], InputRegion):
            raise ParameterError(f"silent={sorted(silent)}: {name!r} is not an input region "
                                 f"of the graph")
    dtype = np.float64 if graph.dtype == torch.float64 else np.float32
    names = list(graph.regions)
    out_off, o = {}, 0
    for n in names:
        out_off[n] = o
        o += graph.regions[n].size
    n_out = (o + 7) // 8 * 8  # padded: the kernel reads the mask 8 bytes at a time
    sp, sp_off, sp_n, sp_R, sp_coff, sp_kof = [], [], [], [], [], []
    sp_kind, sp_lvl, sp_mask, sp_poff, sp_nxt, blocks = [], [], [], [], [], []
    sp_reset, sp_nref, sp_late, sp_f, rc, sp_out = [], [], [], [], [], []
    npn = 0
    po, po_out, po_n, po_poff, po_key, po_p = [], [], [], [], [], []
    fd, fd_out, fd_n, fd_voff = [], [], [], []
    nv = nin = npp = nfd = 0
    cur_off: dict[str, int] = {}
    for n in names:
        r = graph.regions[n]
        if isinstance(r, SpikingRegion):
            c = _region_coefficients(r, graph.dt, graph.dtype)
            assert isinstance(c, _Coefficients)
            R = c.receptors.shape[0]
            sp.append(n)
            sp_off.append(nv)
            sp_n.append(r.size)
            sp_R.append(R)
            sp_coff.append(nin)
            cur_off[n] = nin
            sp_kof.append(len(rc))
            rc.extend(c.receptors)
            sp_kind.append(c.kind)
            sp_lvl.append(c.level)
            sp_mask.append(c.mask)
            npn = _align.pad(npn)          # each block's rows start on a cache line
            sp_poff.append(npn)
            if c.block is not None:
                blocks.append((npn, c.block.reshape(-1)))
                npn += c.block.size
            sp_reset.append(c.reset)
            sp_nref.append(c.n_ref)
            sp_late.append(int(c.late))
            sp_nxt.append(int(c.next_step))
            sp_f.append(c.scalars)
            sp_out.append(out_off[n])
            nv += r.size
            nin += R * r.size
        elif isinstance(r, PoissonRegion):
            po.append(n)
            po_out.append(out_off[n])
            po_n.append(r.size)
            po_poff.append(npp)
            po_key.append(region_key(r.seed if r.seed is not None else 0) & MASK64)
            po_p.append(r.probability(graph.dt).numpy())
            npp += r.size
        elif n not in silent:
            fd.append(n)
            fd_out.append(out_off[n])
            fd_n.append(r.size)
            fd_voff.append(nfd)
            nfd += r.size
    parts, max_d = [], 0
    pl = _plastic.plan(graph, n_out)
    for p in graph.projections.values():
        assert isinstance(p, Projection)
        post = graph.regions[p.post]
        r_idx = post.receptors.index(p.receptor)
        row_off, pre_i, post_i, w, d, plastic = _plastic.entries(pl, p, out_off[p.pre])
        parts.append(_csr.Part(pre_i, row_off, post_i, cur_off[p.post] + r_idx * post.size,
                               w, d, plastic))
        max_d = max(max_d, p.max_delay)
    indptr, tgt, w, dl, has_dl, pos = _csr.build(parts, pl.n_rows, dtype,
                                                 np.int32 if nin < 2**31 else np.int64)
    del parts
    _plastic.finish(pl, graph, out_off, {p: x for p, x in zip(graph.projections, pos,
                                                              strict=True) if x is not None},
                    n_out, dtype)
    min_delay = {}
    for n in silent:
        lo, hi = indptr[out_off[n]], indptr[out_off[n] + graph.regions[n].size]
        min_delay[n] = int(dl[lo:hi].min()) if has_dl and hi > lo else 0
    return _Layout(
        names, out_off, n_out, sp, _i64(sp_off), _i64(sp_n), _i64(sp_R), _i64(sp_coff),
        _i64(sp_kof), _i64(sp_kind), _i64(sp_lvl), _i64(sp_mask), _i64(sp_poff), _i64(sp_reset),
        _i64(sp_nref), _i64(sp_late), _i64(sp_nxt),
        np.asarray(sp_f, dtype=dtype).reshape(-1, len(_kernels.ROWS)),
        np.asarray(rc, dtype=dtype).reshape(-1, 3),
        _per_neuron_block(blocks, npn, dtype),
        _i64(sp_out), nv, nin, po, _i64(po_out), _i64(po_n), _i64(po_poff),
        np.asarray(po_key, dtype=np.uint64),
        np.concatenate(po_p) if po_p else np.zeros(0, np.float64),
        fd, _i64(fd_out), _i64(fd_n), _i64(fd_voff), nfd,
        indptr, tgt, w, dl, has_dl, max_d + 2, dtype, pl,
        _layout_key(graph, silent), silent, min_delay)


class _Element:
    """Engine state arrays of one batch element."""

    def __init__(self, lay: _Layout) -> None:
        # cache-line aligned: the region loops use 64-byte vector loads (._align)
        self.v = _align.zeros(lay.n_v, lay.dtype)
        self.cur = _align.zeros(lay.n_in, lay.dtype)
        self.ref = _align.zeros(lay.n_v, np.int32)
        self.bt = _align.zeros(lay.n_v, lay.dtype)
        self.pend = _align.zeros((lay.L, lay.n_in), lay.dtype)
        self.flag = _align.zeros(lay.n_out, np.uint8)
        self.ev_t = self.ev_i = np.zeros(0, np.int64)   # event buffers (set per run)
        self.ps: _plastic_state.PlasticState | None = None   # traces, rings, synapse states


def _fields(r: SpikingRegion) -> dict[str, str]:
    """State field of each role of ``r``'s model (``{"v": "v", "i": "i", ...}``)."""
    assert r.spec is not None
    return dict(r.spec.roles)


def _load_state(graph: Graph, lay: _Layout, st: GraphState) -> list[_Element]:
    els = [_Element(lay) for _ in range(st.batch)]
    for b, el in enumerate(els):
        el.ps = _plastic_state.load(lay.pl, st, b, lay.dtype)
    t_next = st.t
    for g, name in enumerate(lay.sp):
        r = graph.regions[name]
        s = st.regions[name]
        o, n, co, R = int(lay.sp_off[g]), r.size, int(lay.sp_coff[g]), int(lay.sp_R[g])
        roles = _fields(r)
        arr = {role: getattr(s, f).detach().cpu().numpy() for role, f in roles.items()}
        if "i" in arr and not r.multi_receptor:
            arr["i"] = arr["i"][None]                                 # [1, B, n]
        ring = st.pending.get(name, [])
        for b, el in enumerate(els):
            el.v[o:o + n] = arr["v"][b]
            if "i" in arr:
                el.cur[co:co + R * n] = arr["i"][:, b].reshape(-1)   # [R, B, n]
            if "ref" in arr:
                el.ref[o:o + n] = arr["ref"][b].astype(np.int32)
            if "b" in arr:
                el.bt[o:o + n] = arr["b"][b]
            for k, slot in enumerate(ring):
                row = (t_next + k) % lay.L
                for ri, x in enumerate(slot):
                    if x is not None:
                        el.pend[row, co + ri * n:co + (ri + 1) * n] = \
                            x.detach().cpu().numpy()[b]
    return els


def _store_state(graph: Graph, lay: _Layout, st: GraphState, els: list[_Element],
                 t_end: int) -> GraphState:
    dev, dt_ = graph.device, graph.dtype
    regions = dict(st.regions)
    pending = {}
    for g, name in enumerate(lay.sp):
        r = graph.regions[name]
        o, n, co, R = int(lay.sp_off[g]), r.size, int(lay.sp_coff[g]), int(lay.sp_R[g])
        old = st.regions[name]
        arr = {"v": np.stack([el.v[o:o + n] for el in els]),
               "ref": np.stack([el.ref[o:o + n] for el in els]).astype(np.float64),
               "b": np.stack([el.bt[o:o + n] for el in els])}
        cur = np.stack([el.cur[co:co + R * n].reshape(R, n) for el in els], axis=1)
        arr["i"] = cur if r.multi_receptor else cur[0]               # [R, B, n] or [B, n]
        values = {}
        for role, f in _fields(r).items():
            like = getattr(old, f)
            values[f] = torch.from_numpy(np.ascontiguousarray(arr[role])).to(
                device=dev, dtype=like.dtype)
        regions[name] = type(old)(**values)
        ring = []
        for k in range(len(st.pending.get(name, [[None] * R]))):
            row = (t_end + k) % lay.L
            slot = []
            for ri in range(R):
                a = np.stack([el.pend[row, co + ri * n:co + (ri + 1) * n] for el in els])
                slot.append(torch.from_numpy(a).to(device=dev, dtype=dt_) if a.any()
                            else None)
            ring.append(slot)
        pending[name] = ring
    rules, synapses, history = _plastic_state.store(
        lay.pl, graph, st, [el.ps for el in els if el.ps is not None], lay.w, t_end)
    return dataclasses.replace(st, t=t_end, regions=regions, pending=pending,
                               traces=dict(st.traces), rules=rules, synapses=synapses,
                               history=history)


def _probe_table(graph: Graph, lay: _Layout, probes: list[Probe]
                 ) -> tuple[list[Any], np.ndarray, np.ndarray, int]:
    """Columns of the kernel's probe array: one entry per (probe, neuron)."""
    src, idx, plan = [], [], []
    every = 0
    for m in probes:
        if m.target in graph.projections:
            continue
        r = graph.regions[m.target]
        if m.variable == "output" and isinstance(r, InputRegion):
            continue  # taken from the fed tensor directly
        neurons = np.arange(r.size) if m.neurons is None else m.neurons
        if neurons.size and neurons.max() >= r.size:
            raise ParameterError(f"monitor {m!r}: neuron index {int(neurons.max())} out of "
                                 f"range for region {r.name!r} of size {r.size}")
        base, _, recname = m.variable.partition(":")
        shape = None
        if base == "output":
            cols = [(3, lay.out_off[r.name] + j) for j in neurons]
        else:
            g = lay.sp.index(r.name)
            o, co, R = int(lay.sp_off[g]), int(lay.sp_coff[g]), int(lay.sp_R[g])
            role = {f: role for role, f in _fields(r).items()}.get(base)
            if role is None:
                raise ParameterError(f"region {r.name!r} ({r.model}) has no state field "
                                     f"{base!r} to monitor")
            if role == "i":
                recs = [r.receptors.index(recname)] if recname else list(range(R))
                cols = [(1, co + ri * r.size + j) for ri in recs for j in neurons]
                shape = None if recname or not r.multi_receptor else (R, neurons.size)
            else:
                cols = [(_ROLE_SRC[role], o + j) for j in neurons]
        plan.append((m, len(src), len(cols), shape))
        for s_, i_ in cols:
            src.append(s_)
            idx.append(i_)
        every = m.every if every == 0 else int(np.gcd(every, m.every))
    return plan, _i64(src), _i64(idx), max(every, 1)


class EngineRun:
    r"""A compiled-engine run whose arrays stay loaded between calls.

    :func:`run_graph` is one :meth:`advance` between loading the state and storing it.
    A caller that runs a graph in many short pieces (the windows of a partitioned run,
    :mod:`.distributed.worker`) keeps one ``EngineRun`` instead: the state, the ring of
    pending inputs, the plastic arrays and the event buffers are converted once, each
    :meth:`advance` continues where the last stopped, :meth:`deliver` adds spikes that
    an input region emitted elsewhere to the ring event by event (the same synapse loop
    as the engine's own spikes), and :meth:`state` gives the
    :class:`~aura_snn.graph.state.GraphState` when one is needed (a snapshot, the end).

    Args:
        graph: a graph the engine supports (:func:`unsupported_reason`).
        st: the state to start from.
        layout: one from :func:`build_layout` to reuse (checked by :func:`check_layout`),
            else built here.
        silent: input regions fed no values: their outputs reach the ring only through
            :meth:`deliver` (a worker's ghosts); :meth:`advance` does not take them.
    """

    def __init__(self, graph: Graph, st: GraphState, layout: _Layout | None = None,
                 silent: frozenset[str] = frozenset()) -> None:
        clock = time.perf_counter
        tic = clock()
        self.graph = graph
        self.lay = build_layout(graph, silent) if layout is None else \
            check_layout(graph, layout, silent)
        self.profile = {"layout": clock() - tic, "steps": 0.0, "monitors": 0.0,
                        "state": 0.0}
        tic = clock()
        self.st0, self.t_load, self.t = st, st.t, st.t
        self.els = _load_state(graph, self.lay, st)
        self.ev_cap = max(1 << 20, 4 * self.lay.n_out)
        for el in self.els:
            el.ev_t = np.zeros(self.ev_cap, np.int64)
            el.ev_i = np.zeros(self.ev_cap, np.int32)
        self.profile["state"] += clock() - tic

    def deliver(self, spikes: Mapping[str, tuple[np.ndarray, ...]]) -> None:
        r"""Add what silent input regions emitted to the pending inputs:
        ``spikes[region] = (t, b, i, value)``, output ``i`` of batch element ``b`` had
        ``value`` (1 for a spike) at step ``t``. Through each synapse of weight :math:`w`
        and delay :math:`d`, :math:`w \cdot value` goes to the input of step
        :math:`t + 1 + d`, in the order the engine delivers its own outputs (by step, then
        output index). Every ``t`` must be a step already run whose synapses all reach a
        step not yet run (:math:`t + 1 + d_{min} \ge` the next step)."""
        lay = self.lay
        ts, bs, js, vs = [], [], [], []
        for name, (t, b, i, v) in spikes.items():
            if name not in lay.silent:
                raise ParameterError(f"deliver: {name!r} is not a silent input region of "
                                     f"this run (silent: {sorted(lay.silent)})")
            if t.size == 0:
                continue
            first, last = int(t.min()), int(t.max())
            if last >= self.t or first + 1 + lay.silent_min_delay[name] < self.t:
                raise RuntimeError(f"region {name!r}: outputs of steps {first}..{last} "
                                   f"arrived when the run is at step {self.t} (minimum "
                                   f"delay {lay.silent_min_delay[name]} steps)")
            ts.append(t)
            bs.append(b)
            js.append(i + lay.out_off[name])
            vs.append(v)
        if not ts:
            return
        t, b, j, v = (np.concatenate(x) for x in (ts, bs, js, vs))
        order = np.lexsort((j, t, b))
        t, b, j, v = t[order], b[order], j[order], v[order]
        cuts = np.flatnonzero(np.diff(b)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, t.size], strict=True):
            _kernels.deliver_events(t[lo:hi].astype(np.int64), j[lo:hi].astype(np.int64),
                                    v[lo:hi].astype(lay.dtype), lay.L,
                                    self.els[int(b[lo])].pend, lay.indptr, lay.tgt, lay.w,
                                    lay.dl, lay.has_dl)

    def advance(self, steps: int, inputs: Mapping[str, torch.Tensor], record: list[str],
                progress: bool = False, events: tuple[str, ...] = ()
                ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[np.ndarray, ...]]]:
        """Run ``steps`` steps; returns the recorded outputs (``[steps, B, size]``) and,
        for each region in ``events``, its spikes ``(t, b, i)`` ordered by step, batch
        element and neuron. The graph's observers get one chunk per kernel call."""
        graph, lay, els, prof = self.graph, self.lay, self.els, self.profile
        clock = time.perf_counter
        batch, t0 = self.st0.batch, self.t
        fed_np = {}
        for name in lay.fd:
            r = graph.regions[name]
            assert isinstance(r, InputRegion)
            x = inputs.get(name)
            r.check_fed(x, steps, batch)
            assert x is not None
            fed_np[name] = x.detach().to(torch.float64 if lay.dtype == np.float64
                                         else torch.float32).cpu().numpy()
        observers = graph.all_observers()
        probes = [pr for o in observers for pr in o.probes]
        counting = any(o.count_events for o in observers)
        want = spike_regions_wanted(observers, [n for n, r in graph.regions.items()
                                                if r.spiking])
        if counting:  # event counts need the outputs of every presynaptic region
            want |= {p.pre for p in graph.projections.values()}
        degrees = out_degrees(graph) if counting else None
        rec_mask = np.zeros(lay.n_out, np.uint8)
        for name in (*want, *record, *events):
            o = lay.out_off[name]
            rec_mask[o:o + graph.regions[name].size] = 1
        plan, pr_src, pr_idx, pr_every = _probe_table(graph, lay, probes)
        outputs = {n: torch.zeros(steps, batch, graph.regions[n].size, dtype=graph.dtype)
                   for n in record}
        got_events: dict[str, list[tuple[np.ndarray, ...]]] = {n: [] for n in events}
        # steps per kernel call: bounded by the probe/fed buffers (<= 4M values), and small
        # enough for the progress bar to move (~20 updates) without Python overhead mattering
        chunk = min(steps, 10_000, max(50, 4_000_000 // max(1, len(pr_src) + lay.n_fed)),
                    max(500, steps // 20))
        bar = None
        if progress:
            from .progress import SimProgress

            bar = SimProgress(steps, graph.dt)
        pool = None
        if batch > 1 and (os.cpu_count() or 1) > 1:
            # batch elements are independent and the kernel releases the GIL: one thread each
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=min(batch, os.cpu_count() or 1))

        def run_element(b: int, n: int, t_start: int, done: int
                    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
            """Run ``n`` steps of batch element ``b``; its events and probe rows."""
            el, pl = els[b], lay.pl
            ps = el.ps
            assert ps is not None
            fd_vals = np.zeros((n, lay.n_fed), lay.dtype)
            for g, name in enumerate(lay.fd):
                vo = int(lay.fd_voff[g])
                fd_vals[:, vo:vo + graph.regions[name].size] = fed_np[name][done:done + n, b]
            pr_out = np.zeros((n // pr_every + 2, len(pr_src)), np.float64)
            k = npr_total = 0
            evs = []
            while k < n:
                got, ne, npr = _kernels.run_steps(
                    n - k, t_start + k, lay.L, batch, b,
                    el.v, el.cur, el.ref, el.bt, el.pend, el.flag,
                    lay.sp_off, lay.sp_n, lay.sp_R, lay.sp_coff, lay.sp_kof, lay.sp_kind,
                    lay.sp_lvl, lay.sp_mask, lay.sp_poff, lay.sp_reset, lay.sp_nref,
                    lay.sp_late, lay.sp_nxt,
                    lay.sp_f, lay.rc, lay.pn, lay.sp_out,
                    lay.po_out, lay.po_n, lay.po_poff, lay.po_key, lay.po_p,
                    lay.fd_out, lay.fd_n, lay.fd_voff, fd_vals[k:],
                    lay.indptr, lay.tgt, lay.w, lay.dl, lay.has_dl,
                    rec_mask, el.ev_t, el.ev_i, self.ev_cap,
                    pr_src, pr_idx, pr_every, pr_out[npr_total:],
                    pl.mask, pl.Lh, t_start + k == self.t_load, pl.pl_i, pl.pl_f, pl.ptr,
                    pl.syn, ps.tr, ps.tl, ps.ring_i, ps.ring_v, ps.ring_n, ps.touch, pl.st_i,
                    pl.st_f, ps.st_u, ps.st_x, ps.st_tl)
                evs.append((el.ev_t[:ne].copy(), el.ev_i[:ne].copy()))
                npr_total += npr
                k += got
            t_ev = np.concatenate([e[0] for e in evs])
            i_ev = np.concatenate([e[1] for e in evs])
            return (t_ev, np.full(t_ev.size, b, np.int32), i_ev), pr_out[:npr_total]

        done = 0
        try:
            while done < steps:
                n = min(chunk, steps - done)
                t_start = t0 + done
                tic = clock()
                if pool is not None:
                    parts = list(pool.map(run_element, range(batch), [n] * batch,
                                          [t_start] * batch, [done] * batch))
                else:
                    parts = [run_element(b, n, t_start, done) for b in range(batch)]
                self.t = t_start + n
                prof["steps"] += clock() - tic
                tic = clock()
                ev = _engine_chunk.merge([p[0] for p in parts])
                chunk_ = _engine_chunk.chunk(graph, lay.out_off, plan, probes, want, ev,
                                             [p[1] for p in parts], t_start, n, pr_every,
                                             batch, fed_np, done, outputs, degrees)
                for name in events:
                    got_events[name].append(_engine_chunk.select(
                        ev, lay.out_off[name], graph.regions[name].size))
                for o in observers:
                    o.observe(chunk_)
                prof["monitors"] += clock() - tic
                done += n
                if bar is not None:
                    bar.advance(n)
        finally:
            if bar is not None:
                bar.close()
            if pool is not None:
                pool.shutdown()
        joined = {name: tuple(np.concatenate([p[k] for p in parts_]) if parts_
                              else np.zeros(0, np.int64) for k in range(3))
                  for name, parts_ in got_events.items()}
        return outputs, joined

    def state(self) -> GraphState:
        """The graph state after the last step run (before any spike :meth:`deliver`
        added for later steps: those are in its pending inputs)."""
        tic = time.perf_counter()
        st = _store_state(self.graph, self.lay, self.st0, self.els, self.t)
        self.profile["state"] += time.perf_counter() - tic
        return st


def run_graph(graph: Graph, st: GraphState, steps: int, inputs: Mapping[str, torch.Tensor],
              record: list[str], progress: bool, layout: _Layout | None = None
              ) -> tuple[dict[str, torch.Tensor], GraphState, dict[str, float]]:
    """Run ``steps`` steps of ``graph`` from ``st`` with the compiled kernel; returns the
    recorded outputs, the new state and where the time went (s). ``layout``: one from
    :func:`build_layout` to reuse (checked by :func:`check_layout`), else built here."""
    run = EngineRun(graph, st, layout)
    outputs, _ = run.advance(steps, inputs, record, progress)
    return outputs, run.state(), run.profile


__all__ = ["EngineRun", "build_layout", "check_layout", "run_graph", "state_reason",
           "unsupported_reason"]
