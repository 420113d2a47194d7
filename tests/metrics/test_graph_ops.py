"""Operation counts of graph runs (:mod:`aura_snn.metrics.graph_ops`).

Oracle: counts computed here with numpy from the recorded outputs of every region
(``run(record=...)``) and the connectivity the test built itself (its ``pre``/``post``
index arrays, or the dense matrices it wrote): events of a projection
:math:`= \\sum_{t,b,i} [y_{t,b,i} \\ne 0]\\,\\mathrm{outdeg}(i)`, dense ops
``nnz x T x B``, membrane updates ``n x T x B``, spikes ``sum y``, the ``Linear``
inside a dense region ``in x out x T x B`` dense and ``[x != 0] @ [W != 0]`` effective.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn.graph import (
    DenseRegion,
    Graph,
    InputRegion,
    PoissonRegion,
    SpikingRegion,
    fixed_probability,
)
from aura_snn.metrics.graph_ops import GraphOpCounter, RegionCounts

T, B = 400, 2


def _spiking_graph() -> tuple[Graph, dict[str, np.ndarray]]:
    g = Graph(dt=1e-4, seed=1).double()
    g.add(PoissonRegion("in", 50, rate=300.0))
    g.add(SpikingRegion("E", 40, "cuba_refractory"))
    g.add(SpikingRegion("I", 10, "cuba_refractory"))
    c_in = fixed_probability(50, 40, 0.3, seed=1)
    c_ee = fixed_probability(40, 40, 0.1, seed=2)
    g.connect("in", "E", connectivity=c_in, weight=2 ** -7, receptor="exc")
    g.connect("E", "E", connectivity=c_ee, weight=2 ** -9, receptor="exc", delay=3)
    w_ei = np.zeros((40, 10))
    w_ei[::3, ::2] = 2 ** -7      # 14 of 40 rows connect, 5 synapses each
    g.connect("E", "I", torch.tensor(w_ei), name="EI", receptor="exc")
    deg = {"in-E": np.bincount(c_in.pre, minlength=50), "E-E": np.bincount(c_ee.pre, minlength=40),
           "EI": (w_ei != 0).sum(1)}
    return g, deg


def _expected_events(y: np.ndarray, deg: np.ndarray) -> int:
    return int(((y != 0) * deg).sum())


@pytest.mark.parametrize("backend", ["torch", "engine"])
def test_spiking_graph_counts_equal_numpy_from_recorded_spikes(backend: str) -> None:
    g, deg = _spiking_graph()
    with GraphOpCounter(g) as oc:
        r = g.run(T, batch_size=B, record=["in", "E", "I"], backend=backend)
    assert r.backend == backend
    c = oc.counts
    y = {n: r.outputs[n].numpy() for n in ("in", "E", "I")}
    assert y["E"].sum() > 50 and y["I"].sum() > 5
    pre = {"in-E": "in", "E-E": "E", "EI": "E"}
    # stored synapses; a dense projection stores every pair (zeros included)
    nnz = {"in-E": deg["in-E"].sum(), "E-E": deg["E-E"].sum(), "EI": 40 * 10}
    for p, region in pre.items():
        lc = c.layers[p]
        assert lc.acs == lc.effective == _expected_events(y[region], deg[p])
        assert lc.macs == 0
        assert lc.dense == nnz[p] * T * B and lc.synapses == nnz[p]
    for n, size in (("E", 40), ("I", 10)):
        assert c.layers[n].membrane_updates == size * T * B
        assert c.layers[n].spikes == y[n].sum()
        assert c.layers[n].activation_sparsity == pytest.approx(1 - y[n].sum() / (size * T * B))
    src = c.layers["in"]
    assert isinstance(src, RegionCounts)
    assert (src.membrane_updates, src.spikes, src.emitted) == (0, 0, y["in"].sum())
    assert src.activation_sparsity == pytest.approx(1 - y["in"].sum() / (50 * T * B))
    assert c.samples == B and c.steps == [T]
    # connection sparsity: zero fraction over all n_pre x n_post pairs
    assert c.layers["in-E"].connection_sparsity == pytest.approx(1 - nnz["in-E"] / 2000)
    assert c.layers["EI"].connection_sparsity == pytest.approx(1 - 70 / 400)
    total = 2000 + 1600 + 400
    zeros = (2000 - nnz["in-E"]) + (1600 - nnz["E-E"]) + (400 - 70)
    assert c.connection_sparsity == pytest.approx(zeros / total)
    # activation sparsity of the model: zero fraction of all spiking-region outputs
    assert c.activation_sparsity == pytest.approx(
        1 - (y["E"].sum() + y["I"].sum()) / (50 * T * B))


def test_backends_agree_and_counting_changes_nothing() -> None:
    counts, outs = {}, {}
    for backend in ("torch", "engine"):
        g, _ = _spiking_graph()
        with GraphOpCounter(g) as oc:
            outs[backend] = g.run(T, batch_size=B, record=["E"], backend=backend).outputs["E"]
        counts[backend] = oc.counts
        plain = g.run(T, batch_size=B, record=["E"], backend=backend, reset=True).outputs["E"]
        assert torch.equal(plain, outs[backend])
    assert torch.equal(outs["torch"], outs["engine"])
    for name, lc in counts["torch"].layers.items():
        other = counts["engine"].layers[name]
        for f in ("dense", "effective", "acs", "macs", "membrane_updates", "spikes"):
            assert getattr(lc, f) == getattr(other, f), (name, f)


def test_counts_add_up_over_runs_and_batch_sizes() -> None:
    g, deg = _spiking_graph()
    oc = g.add_observer(GraphOpCounter())
    r1 = g.run(150, batch_size=1, record=["E"], backend="engine")
    r2 = g.run(250, batch_size=3, record=["E"], backend="engine")
    c = oc.counts
    e1, e2 = r1.outputs["E"].numpy(), r2.outputs["E"].numpy()
    assert c.samples == 4 and c.steps == [150, 250]
    assert c.layers["E"].membrane_updates == 40 * (150 * 1 + 250 * 3)
    assert c.layers["E"].spikes == e1.sum() + e2.sum()
    assert c.layers["E-E"].acs == _expected_events(e1, deg["E-E"]) + \
        _expected_events(e2, deg["E-E"])
    assert c.layers["E-E"].dense == deg["E-E"].sum() * (150 + 750)


def test_dense_ann_region_same_step_edge_and_real_input_are_macs() -> None:
    """A dense (ANN) region fed with real values drives a spiking region through a
    same-step edge; a real-valued input region through a delayed one: both MACs. The
    Linear inside the dense region is counted by the module hooks."""
    gen = torch.Generator().manual_seed(4)
    g = Graph(dt=1e-3, seed=2).double()
    lin = nn.Linear(6, 8, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(8, 6, generator=gen, dtype=torch.float64))
        lin.weight[:, 0] = 0.0                          # a zero input column of W
    g.add(DenseRegion("ann", nn.Sequential(lin, nn.ReLU()), 8, 6))
    g.add(InputRegion("x", 5, spiking=False))
    g.add(SpikingRegion("E", 4, "lif"))
    w_ae = torch.randn(8, 4, generator=gen, dtype=torch.float64).abs() * 0.5
    w_ae[2] = 0.0                                       # ann unit 2 reaches nothing
    w_xe = torch.rand(5, 4, generator=gen, dtype=torch.float64)
    w_xe[:, 1] = 0.0
    g.connect("ann", "E", w_ae, name="AE", same_step=True)
    g.connect("x", "E", w_xe, name="XE", delay=2)
    feed = torch.randn(T, B, 6, generator=gen, dtype=torch.float64)
    feed[feed.abs() < 0.5] = 0.0
    x = torch.rand(T, B, 5, generator=gen, dtype=torch.float64)
    x[x < 0.6] = 0.0
    with GraphOpCounter(g) as oc:
        r = g.run(T, inputs={"ann": feed, "x": x}, record=["ann", "E"], backend="torch")
    c = oc.counts
    y_ann = r.outputs["ann"].detach().numpy()
    assert 0 < (y_ann != 0).mean() < 1
    assert c.layers["AE"].macs == c.layers["AE"].effective == \
        _expected_events(y_ann, (w_ae.numpy() != 0).sum(1))
    assert c.layers["XE"].macs == _expected_events(x.numpy(), (w_xe.numpy() != 0).sum(1))
    assert c.layers["AE"].acs == c.layers["XE"].acs == 0
    assert c.layers["AE"].dense == 32 * T * B and c.layers["XE"].dense == 20 * T * B
    assert c.layers["E"].spikes == r.outputs["E"].sum() > 0
    assert c.layers["E"].membrane_updates == 4 * T * B
    assert np.isnan(c.layers["ann"].activation_sparsity)
    inner = c.layers["ann.0"]
    nz_w = (lin.weight.detach().numpy() != 0).astype(float)
    assert inner.dense == 6 * 8 * T * B
    assert inner.macs == inner.effective == ((feed.numpy() != 0) @ nz_w.T).sum()
    assert c.layers["XE"].connection_sparsity == pytest.approx(0.25)


def test_footprints_are_the_bytes_of_weights_indices_and_state() -> None:
    g, deg = _spiking_graph()
    with GraphOpCounter(g) as oc:
        g.run(20, batch_size=B, backend="engine")
    c = oc.counts
    nnz = int(deg["in-E"].sum())
    # float64 weights, int64 pre and post indices, an int64 scalar delay
    assert c.layers["in-E"].parameter_bytes == nnz * (8 + 8 + 8) + 8
    assert c.layers["EI"].parameter_bytes == 40 * 10 * 8 + 8
    # a region's state: its model's fields and its ring of pending inputs
    pend = g.state.pending["E"]
    ring = sum(x.numel() * 8 for slot in pend for x in slot if x is not None)
    fields = sum(f.numel() * f.element_size() for f in g.state.regions["E"])
    L, R = len(pend), len(pend[0])
    assert c.layers["E"].state_bytes == fields + L * R * B * 40 * 8
    assert ring <= L * R * B * 40 * 8
    assert c.state_bytes == sum(v.numel() * v.element_size()
                                for v in g.state_tensors().values())


@pytest.mark.parametrize("backend", ["torch", "engine"])
def test_events_follow_rewired_sparse_indices_between_runs(backend: str) -> None:
    """The counter keeps a sparse projection's out-degrees between runs (every pre
    region spikes, so it counts from the spike events itself): after the pre indices
    change in place, the next run's events follow the new connectivity. Oracle: the
    test's own index arrays, bincounted, times the recorded spikes."""
    g, deg = _spiking_graph()
    oc = g.add_observer(GraphOpCounter())
    r1 = g.run(T, batch_size=B, record=["in", "E"], backend=backend)
    assert not oc.count_events  # the backend was not asked for events
    p = g.projections["in-E"]
    new_pre = (p.pre_idx * 7 + 3) % 50  # another connectivity, same synapse count
    with torch.no_grad():
        p.pre_idx.copy_(new_pre)
    deg2 = np.bincount(new_pre.numpy(), minlength=50)
    assert not np.array_equal(deg2, deg["in-E"])
    r2 = g.run(T, batch_size=B, record=["in", "E"], backend=backend)
    y1, y2 = r1.outputs["in"].numpy(), r2.outputs["in"].numpy()
    c = oc.counts.layers["in-E"]
    assert c.acs == c.effective == _expected_events(y1, deg["in-E"]) + \
        _expected_events(y2, deg2)
    e1, e2 = r1.outputs["E"].numpy(), r2.outputs["E"].numpy()
    assert oc.counts.layers["E-E"].acs == _expected_events(e1, deg["E-E"]) + \
        _expected_events(e2, deg["E-E"])


def test_fresh_counters_share_degrees_and_see_rewiring() -> None:
    """Out-degrees are kept per index tensor across counters (a counter made per run
    reuses them); a fresh counter after an in-place rewiring, or after the index tensor
    is replaced, counts the new connectivity. Oracle: the test's bincounts times the
    recorded spikes."""
    g, deg = _spiking_graph()
    p = g.projections["in-E"]
    for rewire in (None, "in_place", "replace"):
        if rewire is not None:
            new_pre = (p.pre_idx * 7 + 3) % 50
            with torch.no_grad():
                if rewire == "in_place":
                    p.pre_idx.copy_(new_pre)
                else:
                    p.pre_idx = new_pre.clone()
            deg["in-E"] = np.bincount(new_pre.numpy(), minlength=50)
        with GraphOpCounter(g) as oc:
            r = g.run(T, batch_size=B, record=["in"], backend="engine")
        assert oc.counts.layers["in-E"].acs == _expected_events(r.outputs["in"].numpy(),
                                                                deg["in-E"])
