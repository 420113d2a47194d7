r"""The plastic part of the engine's layout: which rules and synapse models it runs
itself, their tables for :mod:`aura_snn.graph._plastic_kernels`, and their state.

A projection's rule runs on the engine when it declares a
:class:`~aura_snn.graph.plasticity.CompiledForm` of a plastic kind (pair or triplet
STDP), it is the projection's only rule, the projection has one delay for all its
synapses and no traces of its own, and the run has batch 1 (the torch stepper's batch
mean couples the samples every step). A synapse model runs on the engine when it
declares a form of a synapse kind (Tsodyks-Markram); its state is per sample, so any
batch. Anything else keeps the torch stepper, and :func:`projection_reason` /
:func:`state_reason` name what.

Layout: every synapse of a plastic dense projection is an engine synapse, zeros
included (STDP can grow a zero weight); the synapses of a projection with a synapse
model leave their presynaptic neuron's row for a row of their own (``n_out + base +
i``), which the kernel delivers scaled by the efficacy. The rule state goes in and out
of :class:`~aura_snn.graph.state.GraphState` in its own layout (``[1, n_pre]`` or
``[1, nnz]`` presynaptic traces, ``[1, n_post]`` postsynaptic), the arrivals of the
last ``d + 1`` steps in and out of its ``history``, the final weights into the
projection's plastic part (:math:`W_\text{plastic} = W - W_\text{learned}`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _plastic_kernels as K
from .plasticity import COMPILED_KINDS, CompiledForm
from .regions import SpikingRegion
from .state import GraphState

if TYPE_CHECKING:
    from .graph import Graph


def _form(obj: Any, p: Any, dt: float, kinds: tuple[str, ...], what: str
          ) -> CompiledForm | str:
    """``obj``'s compiled form, checked, or why it has none usable here."""
    name = type(obj).__name__
    method = getattr(obj, "compiled", None)
    form = method(p, dt) if callable(method) else None
    if form is None:
        return (f"projection {p.name!r} has {what} {name} with no compiled form (it runs on "
                f"the torch stepper)")
    if not isinstance(form, CompiledForm) or form.kind not in kinds:
        return (f"projection {p.name!r}: {what} {name} declares compiled kind "
                f"{getattr(form, 'kind', form)!r} (engine: {', '.join(kinds)})")
    want = COMPILED_KINDS[form.kind]
    if set(form.values) != set(want):
        return (f"projection {p.name!r}: {what} {name}'s compiled values "
                f"{sorted(form.values)} are not those of {form.kind!r}: {list(want)}")
    return form


def rule_form(p: Any, dt: float) -> CompiledForm | str | None:
    """The compiled form of ``p``'s rule (``None`` without rules), or why not."""
    if not p.rules:
        return None
    if len(p.rules) > 1:
        return f"projection {p.name!r} has {len(p.rules)} plasticity rules (engine: one)"
    form = _form(p.rules[0], p, dt, tuple(K.RULE_CODES), "plasticity rule")
    if isinstance(form, str):
        return form
    if not p.uniform_delay:
        return (f"projection {p.name!r} has a compiled rule and per-synapse delays "
                f"(engine: one delay per plastic projection)")
    return form


def synapse_form(p: Any, dt: float) -> CompiledForm | str | None:
    """The compiled form of ``p``'s synapse model (``None`` without one), or why not."""
    if p.synapse is None:
        return None
    return _form(p.synapse, p, dt, K.SYNAPSE_KINDS, "synapse model")


def projection_reason(graph: Graph, p: Any) -> str | None:
    """Why the engine cannot run ``p``'s rules or synapse model (``None`` when it can)."""
    for form in (rule_form(p, graph.dt), synapse_form(p, graph.dt)):
        if isinstance(form, str):
            return form
    if p.rules and not isinstance(graph.regions[p.post], SpikingRegion):
        return f"projection {p.name!r} is plastic onto a {graph.regions[p.post].kind} region"
    return None


def state_reason(graph: Graph, st: GraphState) -> str | None:
    """Why the engine cannot run ``graph`` from state ``st`` (``None`` when it can)."""
    for p in graph.projections.values():
        if p.rules and st.batch > 1:
            return (f"projection {p.name!r} is plastic and the batch is {st.batch} (engine: "
                    f"batch 1; the torch stepper moves the shared weights by the batch mean)")
    return None


@dataclass
class _Plastic:
    """One plastic projection: its rule's form, its synapses' positions in the engine."""

    p: Any
    key: str
    form: CompiledForm
    pos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class PlasticLayout:
    """Tables of :mod:`aura_snn.graph._plastic_kernels` (shared by batch elements)."""

    rules: list[_Plastic]
    stp: list[tuple[Any, CompiledForm, int]]   # projection, form, first virtual row
    n_rows: int                                  # rows of the CSR (outputs + virtual)
    Lh: int = 2
    pl_i: np.ndarray = field(default_factory=lambda: np.zeros((0, K.N_I), np.int64))
    pl_f: np.ndarray = field(default_factory=lambda: np.zeros((0, K.N_F)))
    ptr: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    syn: np.ndarray = field(default_factory=lambda: np.zeros((4, 0), np.int64))
    sizes: tuple[int, int, int, int] = (0, 0, 0, 0)   # traces, last steps, ring, touch
    st_i: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    st_f: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    n_st: int = 0
    mask: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))


def plan(graph: Graph, n_out: int) -> PlasticLayout:
    """Which projections are plastic or have a synapse model, and their virtual rows."""
    rules, stp = [], []
    row = n_out
    for p in graph.projections.values():
        form = rule_form(p, graph.dt)
        if isinstance(form, CompiledForm):
            rules.append(_Plastic(p, f"{p.name}.{p.rules[0].slot}", form))
        sform = synapse_form(p, graph.dt)
        if isinstance(sform, CompiledForm):
            stp.append((p, sform, row))
            row += p.n_pre
    return PlasticLayout(rules, stp, row)


def entries(pl: PlasticLayout, p: Any, out_off: int
            ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, int | np.ndarray, bool]:
    """``(row offset, pre, post, weight, delay, plastic)`` of ``p``'s engine synapses
    (all of a plastic dense projection; the nonzeros of other dense ones): synapse ``q``
    sits in row ``pre[q] +`` the offset (a virtual row with a synapse model); ``delay``
    is an int when every synapse has it."""
    plastic = any(r.p is p for r in pl.rules)
    if plastic and not p.sparse:
        w = p.effective_weight().detach().cpu().numpy()
        pre = np.repeat(np.arange(p.n_pre), p.n_post)
        post = np.tile(np.arange(p.n_post), p.n_pre)
        w, d = w.reshape(-1), int(p.delay)
    elif p.sparse:
        w = p.effective_weight().detach().cpu().numpy()
        pre, post = p.pre_idx.cpu().numpy(), p.post_idx.cpu().numpy()
        delay = p.delay.cpu()
        d = int(delay) if delay.dim() == 0 else delay.numpy().astype(np.int64)
    else:
        pre, post, w, d = p.to_coo()
    vrow = next((r for q, _, r in pl.stp if q is p), None)
    return (out_off if vrow is None else vrow), pre, post, w, d, plastic


def finish(pl: PlasticLayout, graph: Graph, out_off: dict[str, int],
           positions: dict[str, np.ndarray], n_out: int, dtype: np.dtype) -> None:
    """Fill ``pl``'s tables once the merged CSR is built: ``positions[p]`` the CSR index
    of each synapse of plastic projection ``p`` (in :func:`entries`' order), ``n_out``
    the engine's outputs."""
    pl.Lh = max((int(r.p.delay) for r in pl.rules), default=0) + 2
    mask = np.zeros(n_out, np.uint8)
    rows_i, rows_f, ptrs, syns = [], [], [], []
    ntr = ntl = nring = ntouch = nsyn = nptr = 0
    for r in pl.rules:
        p, f = r.p, r.form
        pre, post = local_indices(p)
        nnz = pre.size
        r.pos = positions[p.name]
        csyn = np.argsort(post, kind="stable")
        rptr = np.searchsorted(pre, np.arange(p.n_pre + 1))
        cptr = np.searchsorted(post[csyn], np.arange(p.n_post + 1))
        npf, nqf = len(f.pre_fields), len(f.post_fields)
        slots = nnz if p.sparse else p.n_pre
        row = np.zeros(K.N_I, np.int64)
        row[[K.I_KIND, K.I_PRE_OUT, K.I_NPRE, K.I_POST_OUT, K.I_NPOST, K.I_DELAY]] = [
            K.RULE_CODES[f.kind], out_off[p.pre], p.n_pre, out_off[p.post], p.n_post,
            int(p.delay)]
        row[[K.I_RPTR, K.I_CPTR, K.I_SYN, K.I_NNZ, K.I_TPRE, K.I_TPOST, K.I_TLPRE]] = [
            nptr, nptr + p.n_pre + 1, nsyn, nnz, ntr, ntr + npf * slots, ntl]
        row[[K.I_TLPOST, K.I_RING, K.I_RCNT, K.I_PERSYN, K.I_SIGN, K.I_TOUCH]] = [
            ntl + p.n_pre, nring, len(rows_i) * pl.Lh, int(p.sparse),
            K.SIGN_CODES[p.sign], ntouch]
        rows_i.append(row)
        rows_f.append(_floats(p, f))
        ptrs += [rptr, cptr]
        syns.append(np.stack([r.pos, post, pre, csyn]))
        ntr += npf * slots + nqf * p.n_post
        ntl += p.n_pre + p.n_post
        nring += pl.Lh * p.n_pre
        ntouch += 2 * nnz
        nsyn += nnz
        nptr += p.n_pre + p.n_post + 2
        mask[out_off[p.pre]:out_off[p.pre] + p.n_pre] = 1
    if rows_i:
        pl.pl_i = np.stack(rows_i)
        pl.pl_f = np.stack(rows_f).astype(dtype)
        pl.ptr = np.concatenate(ptrs).astype(np.int64)
        pl.syn = np.concatenate(syns, axis=1).astype(np.int64)
    pl.pl_f = pl.pl_f.astype(dtype)
    pl.sizes = (ntr, ntl, nring, ntouch)
    st_i, st_f, n = [], [], 0
    for p, f, vrow in pl.stp:
        st_i.append([out_off[p.pre], p.n_pre, vrow, n])
        st_f.append([f.values[k] for k in ("U", "a_f", "a_d")])
        n += p.n_pre
        mask[out_off[p.pre]:out_off[p.pre] + p.n_pre] = 1
    pl.st_i = np.asarray(st_i, np.int64).reshape(-1, 4)
    pl.st_f = np.asarray(st_f, dtype).reshape(-1, 3)
    pl.n_st = n
    pl.mask = mask


def local_indices(p: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pre and post index of each synapse in the rule's order (stored order, or
    row-major for dense)."""
    if p.sparse:
        return p.pre_idx.cpu().numpy().astype(np.int64), p.post_idx.cpu().numpy().astype(
            np.int64)
    return (np.repeat(np.arange(p.n_pre), p.n_post).astype(np.int64),
            np.tile(np.arange(p.n_post), p.n_pre).astype(np.int64))


def _floats(p: Any, f: CompiledForm) -> np.ndarray:
    """A rule's row of ``pl_f`` (:mod:`._plastic_kernels`)."""
    v = f.values
    row = np.zeros(K.N_F)
    row[K.F_WMIN], row[K.F_WMAX] = v["w_min"], v["w_max"]
    row[K.F_LO] = -np.inf if p.w_min is None else p.w_min
    row[K.F_HI] = np.inf if p.w_max is None else p.w_max
    if f.kind == "pair_stdp":
        row[[K.F_APRE0, K.F_APOST0]] = v["a_pre"], v["a_post"]
        row[K.F_P0:K.F_P0 + 4] = (v["a_plus"], v["a_minus"], v["multiplicative"],
                                  v["nearest"])
    else:
        row[[K.F_APRE0, K.F_APRE1, K.F_APOST0, K.F_APOST1]] = (v["a_r1"], v["a_r2"],
                                                               v["a_o1"], v["a_o2"])
        row[K.F_P0:K.F_P0 + 5] = (v["a2_plus"], v["a3_plus"], v["a2_minus"], v["a3_minus"],
                                  v["nearest"])
    return row


__all__ = ["PlasticLayout", "entries", "finish", "local_indices", "plan",
           "projection_reason", "rule_form", "state_reason", "synapse_form"]
