"""``EngineRun``: the compiled engine kept loaded between calls (what each Ray worker
uses), checked against the torch stepper run in one piece: a run in uneven pieces, and
an input region made silent whose spikes are delivered window by window from another
run's record (as a worker receives them), equal it spike for spike and state for state.
Also its errors, and the counting-sort CSR against a stable argsort written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, PoissonRegion, SpikingRegion, fixed_probability
from aura_snn.graph._csr import Part, build
from aura_snn.graph.distributed.plan import WorkerPlan, subgraph
from aura_snn.graph.engine import EngineRun, build_layout

W = 2.0 ** -10  # V: dyadic weights, whose sums are exact in any order


def _net(seed: int = 3) -> Graph:
    """Poisson drive into E/I populations with per-synapse delays of 2..6 steps from
    the drive (so its spikes may arrive 2 steps late) and 1..4 steps between them."""
    g = Graph(dt=1e-4, seed=seed).double()
    gen = torch.Generator().manual_seed(seed)
    g.add(PoissonRegion("drive", 40, rate=torch.linspace(100.0, 600.0, 40)))
    init = {"v": {"uniform": [-0.060, -0.050]}}
    g.add(SpikingRegion("E", 60, "cuba_refractory", CubaRefractoryParameters(), init=init))
    g.add(SpikingRegion("I", 20, "cuba_refractory", CubaRefractoryParameters(), init=init))
    g.add(SpikingRegion("L", 16, "lif", LIFParameters(tau_mem=10e-3, threshold=0.5,
                                                      input_scaling="direct")))
    sizes = {n: r.size for n, r in g.regions.items()}

    def link(pre: str, post: str, w: float, p: float, lo: int, hi: int, **kw: object) -> None:
        c = fixed_probability(sizes[pre], sizes[post], p, seed=len(g.projections) + 1)
        g.connect(pre, post, w, connectivity=c,
                  delay=torch.randint(lo, hi + 1, (c.n_synapses,), generator=gen), **kw)

    link("drive", "E", 16 * W, 0.3, 2, 6, receptor="exc")
    link("drive", "L", 0.0625, 0.3, 2, 6)
    link("E", "E", 2 * W, 0.1, 1, 4, receptor="exc")
    link("E", "I", 8 * W, 0.2, 1, 4, receptor="exc")
    link("I", "E", -8 * W, 0.3, 1, 4, receptor="inh")
    link("E", "L", 0.03125, 0.2, 1, 4)
    return g


def _spikes(g: Graph) -> dict[str, object]:
    return {n: g.monitor(n, "spikes") for n in ("drive", "E", "I", "L")}


def _same_state(a, b, regions) -> None:  # noqa: ANN001
    assert a.t == b.t
    for name in regions:
        for f, x, y in zip(a.regions[name]._fields, a.regions[name], b.regions[name],
                           strict=True):
            assert torch.equal(x, y), (name, f)
        for k, (s0, s1) in enumerate(zip(a.pending[name], b.pending[name], strict=True)):
            for x, y in zip(s0, s1, strict=True):
                x = torch.zeros(()) if x is None else x
                y = torch.zeros(()) if y is None else y
                assert torch.equal(*torch.broadcast_tensors(x, y)), (name, k)


def _reference(steps: int) -> tuple[Graph, dict[str, dict[str, np.ndarray]], object]:
    g = _net()
    mons = _spikes(g)
    with torch.no_grad():
        r = g.run(steps, backend="torch")
    return g, {n: m.data() for n, m in mons.items()}, r.state


def test_uneven_pieces_equal_the_torch_stepper_in_one_piece() -> None:
    steps = 300
    _, want, st_want = _reference(steps)
    g = _net()
    mons = _spikes(g)
    assert len(want["E"]["t"]) > 100 and len(want["I"]["t"]) > 20 and len(want["L"]["t"]) > 20
    run = EngineRun(g, g.initial_state(1))
    for n in (1, 7, 50, 3, 139, 100):
        run.advance(n, {}, [])
    assert run.t == steps
    for name, m in mons.items():
        d = m.data()
        assert np.array_equal(d["t"], want[name]["t"]) and np.array_equal(d["i"],
                                                                         want[name]["i"])
    _same_state(run.state(), st_want, ("E", "I", "L"))


def test_delivered_spikes_of_a_silent_input_equal_the_region_that_made_them() -> None:
    """The drive becomes a silent input of a sub-graph (a worker's ghost); its spikes,
    taken from the reference run, are delivered after each window of D = 1 + 2 steps
    (the drive's minimum delay): the rest of the network runs as in one process."""
    steps, window = 300, 3
    g, want, st_want = _reference(steps)
    sub = subgraph(g, WorkerPlan(0, ["E", "I", "L"], ghosts=["drive"]))
    mons = {n: sub.monitor(n, "spikes") for n in ("E", "I", "L")}
    run = EngineRun(sub, sub.initial_state(1), silent=frozenset({"drive"}))
    t_all, i_all = want["drive"]["t"], want["drive"]["i"]
    assert run.lay.silent_min_delay == {"drive": 2} and len(t_all) > 200
    for t0 in range(0, steps, window):
        run.advance(window, {}, [])
        sel = (t_all >= t0) & (t_all < t0 + window)
        run.deliver({"drive": (t_all[sel], np.zeros(int(sel.sum()), np.int64), i_all[sel],
                               np.ones(int(sel.sum())))})
    for name, m in mons.items():
        d = m.data()
        assert np.array_equal(d["t"], want[name]["t"]), name
        assert np.array_equal(d["i"], want[name]["i"]), name
    _same_state(run.state(), st_want, ("E", "I", "L"))


def test_deliver_refuses_late_spikes_and_unknown_regions_by_name() -> None:
    g = _net()
    sub = subgraph(g, WorkerPlan(0, ["E", "I", "L"], ghosts=["drive"]))
    run = EngineRun(sub, sub.initial_state(1), silent=frozenset({"drive"}))
    run.advance(10, {}, [])
    one = (np.array([6]), np.array([0]), np.array([1]), np.array([1.0]))
    with pytest.raises(RuntimeError, match=r"'drive'.*steps 6\.\.6.*step 10.*minimum delay 2"):
        run.deliver({"drive": one})        # 6 + 1 + 2 < 10: its earliest synapse has passed
    with pytest.raises(RuntimeError, match="steps 10..10"):
        run.deliver({"drive": (np.array([10]), *one[1:])})   # a step not yet run
    with pytest.raises(ParameterError, match="'E' is not a silent input"):
        run.deliver({"E": one})
    with pytest.raises(ParameterError, match="'E' is not an input region"):
        build_layout(g, silent=frozenset({"E"}))
    with pytest.raises(ParameterError, match="'nope' is not an input region"):
        build_layout(g, silent=frozenset({"nope"}))


def test_counting_sort_csr_equals_a_stable_argsort_of_the_concatenation() -> None:
    rng = np.random.default_rng(0)
    parts, n_rows = [], 50
    for k in range(4):
        n_pre, nnz = int(rng.integers(5, 20)), int(rng.integers(0, 300))
        delay = int(rng.integers(0, 3)) if k % 2 else rng.integers(0, 5, nnz)
        parts.append(Part(rng.integers(0, n_pre, nnz), int(rng.integers(0, n_rows - n_pre)),
                          rng.integers(0, 30, nnz), 100 * k, rng.random(nnz), delay,
                          positions=k != 1))
    indptr, tgt, w, dl, has_dl, pos = build(parts, n_rows, np.float32, np.int32)
    rows = np.concatenate([p.pre + p.row_off for p in parts])
    order = np.argsort(rows, kind="stable")
    assert np.array_equal(indptr, np.searchsorted(rows[order], np.arange(n_rows + 1)))
    assert np.array_equal(tgt, np.concatenate([p.post + p.tgt_off for p in parts])[order])
    assert tgt.dtype == np.int32 and w.dtype == np.float32
    assert np.array_equal(w, np.concatenate([p.w for p in parts])[order].astype(np.float32))
    d_all = np.concatenate([np.broadcast_to(p.delay, p.pre.shape) for p in parts])
    assert has_dl and np.array_equal(dl, d_all[order])
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    base = np.cumsum([0] + [p.pre.size for p in parts])
    for k, p in enumerate(parts):
        assert (pos[k] is None) == (not p.positions)
        if p.positions:
            assert np.array_equal(pos[k], inv[base[k]:base[k + 1]])
    flat = build([Part(np.array([1, 0]), 0, np.array([0, 1]), 0, np.ones(2), 0)], 2,
                 np.float64, np.int64)
    assert not flat[4] and flat[3].size == 0           # every delay 0: no delay array
