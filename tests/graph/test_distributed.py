"""A graph partitioned over Ray workers computes what one process computes.

The oracle is the single-process :meth:`Graph.run` (the torch stepper and the compiled
engine, an independent code path): spikes, recorded outputs, monitors and the final
state (pending inputs included) must be equal bit for bit. Weights are equal within a
projection (CUBA) or dyadic (multiples of 2**-k), so the sums of synaptic inputs are
exact in any order. Exchange counts and bytes are checked by hand on a tiny graph.
One Ray cluster serves the whole module and is shut down at the end, and every process
it started must be gone.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from aura_snn.errors import MissingExtraError, ParameterError
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import (
    DenseRegion,
    Graph,
    InputRegion,
    Observer,
    PoissonRegion,
    SpikingRegion,
    fixed_probability,
)
from aura_snn.graph.config import build_graph, load_config

ray = pytest.importorskip("ray")

ROOT = Path(__file__).parents[2]
W = 2.0 ** -10  # V


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    before = _descendants(os.getpid())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    from aura_snn.graph.distributed import release_workers

    started = _descendants(os.getpid()) - before
    release_workers()
    ray.shutdown()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in started):
        time.sleep(0.2)
    left = sorted(p for p in started if _alive(p))
    assert not left, f"Ray processes left running after shutdown: {left}"


# -- networks -------------------------------------------------------------------------
def _cuba(tmp_path: Path, dtype: str) -> Graph:
    """examples/cuba.toml at a tenth of the size (320 E, 80 I; p = 0.2 keeps the
    in-degrees of 64 E and 16 I synapses), in ``dtype``."""
    text = (ROOT / "examples" / "cuba.toml").read_text()
    for old, new in (("size = 3200", "size = 320"), ("size = 800", "size = 80"),
                     ("p = 0.02", "p = 0.2"), ('dtype = "float64"', f'dtype = "{dtype}"')):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"cuba_{dtype}.toml"
    path.write_text(text)
    return build_graph(load_config(path)).graph


def _ei(dtype: torch.dtype) -> Graph:
    """Poisson drive, two E and two I populations of three models, heterogeneous
    per-synapse delays 1..6 steps between populations, dyadic weights."""
    g = Graph(dt=1e-4, seed=3).to(dtype)
    gen = torch.Generator().manual_seed(7)
    g.add(PoissonRegion("drive", 40, rate=torch.linspace(50.0, 400.0, 40)))
    init = {"v": {"uniform": [-0.060, -0.050]}}
    g.add(SpikingRegion("E1", 60, "cuba_refractory", CubaRefractoryParameters(), init=init))
    g.add(SpikingRegion("E2", 50, "cuba_refractory",
                        CubaRefractoryParameters(refractory=1e-3, reset="subtract"), init=init))
    g.add(SpikingRegion("I1", 20, "cuba_refractory", CubaRefractoryParameters(), init=init))
    g.add(SpikingRegion("I2", 16, "lif", LIFParameters(tau_mem=10e-3, threshold=0.5,
                                                       input_scaling="direct")))
    sizes = {n: r.size for n, r in g.regions.items()}

    def link(pre: str, post: str, w: float, p: float, seed: int, **kw: object) -> None:
        c = fixed_probability(sizes[pre], sizes[post], p, seed=seed)
        delay = torch.randint(1, 7, (c.n_synapses,), generator=gen)
        g.connect(pre, post, w, connectivity=c, delay=delay, **kw)

    link("drive", "E1", 16 * W, 0.3, 1, receptor="exc")
    link("drive", "E2", 8 * W, 0.3, 2, receptor="exc")
    link("E1", "E2", 4 * W, 0.1, 3, receptor="exc")
    link("E2", "E1", 4 * W, 0.1, 4, receptor="exc")
    link("E1", "I1", 8 * W, 0.2, 5, receptor="exc")
    link("E2", "I2", 0.0625, 0.2, 6)
    link("I1", "E1", -8 * W, 0.3, 7, receptor="inh")
    link("I1", "E2", -8 * W, 0.3, 8, receptor="inh")
    link("I2", "E2", -4 * W, 0.3, 9, receptor="inh")
    link("E1", "E1", 2 * W, 0.1, 10, receptor="exc")
    return g


def _monitors(g: Graph) -> list:
    mons = [g.monitor(n, "spikes") for n, r in g.regions.items() if r.spiking]
    first = next(n for n, r in g.regions.items() if isinstance(r, SpikingRegion))
    mons.append(g.monitor(first, "v", neurons=[0, 3, 7], every=3))
    mons.append(g.monitor(first, "i", every=5))
    return mons


def _assert_same_state(a, b) -> None:  # noqa: ANN001
    assert (a.t, a.batch) == (b.t, b.batch)
    assert list(a.regions) == list(b.regions)
    for name, s0 in a.regions.items():
        s1 = b.regions[name]
        if s0 is None:
            assert s1 is None, name
            continue
        for f, x, y in zip(s0._fields, s0, s1, strict=True):
            assert torch.equal(x, y), (name, f)
    assert set(a.pending) == set(b.pending)
    for name, ring in a.pending.items():
        assert len(ring) == len(b.pending[name]), name
        for k, (s0, s1) in enumerate(zip(ring, b.pending[name], strict=True)):
            for x, y in zip(s0, s1, strict=True):
                x = torch.zeros(()) if x is None else x
                y = torch.zeros(()) if y is None else y
                assert torch.equal(*torch.broadcast_tensors(x, y)), (name, k)


def _compare(make, steps: int, partition, worker_backend: str = "auto",  # noqa: ANN001
             single: str = "auto", **kw: object):  # noqa: ANN202
    g0, g1 = make(), make()
    m0, m1 = _monitors(g0), _monitors(g1)
    names = list(g0.regions)
    with torch.no_grad():
        r0 = g0.run(steps, record=names, backend=single, **kw)
    r1 = g1.run(steps, record=names, backend="ray", partition=partition,
                worker_backend=worker_backend, **kw)
    assert r1.backend == "ray"
    for n in names:
        assert torch.equal(r0.outputs[n], r1.outputs[n]), n
    for a, b in zip(m0, m1, strict=True):
        da, db = a.data(), b.data()
        assert set(da) == set(db)
        for key in da:
            if key != "_meta":
                assert np.array_equal(da[key], db[key]), (a, key)
    _assert_same_state(r0.state, r1.state)
    _assert_same_state(r1.state, g1.state)
    return r0, r1, g1


# -- identical results ----------------------------------------------------------------
@pytest.mark.parametrize("dtype,backend", [("float64", "engine"), ("float32", "engine"),
                                           ("float64", "torch"), ("float32", "torch")])
def test_cuba_split_equals_one_process(tmp_path: Path, dtype: str, backend: str) -> None:
    r0, r1, _ = _compare(lambda: _cuba(tmp_path, dtype), 300, {"E": 0, "I": 1},
                         worker_backend=backend, single=backend)
    rep = r1.distributed
    assert rep.backends == (backend, backend)
    assert rep.min_delay_window == 1 and rep.windows == 300   # CUBA's delays are 0
    assert rep.exchanges == 2 * 300                           # E -> I and I -> E each step
    assert r0.outputs["E"].sum() > 30 and r0.outputs["I"].sum() > 10     # 51 and 15


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("partition", [
    {"drive": 0, "E1": 0, "I1": 0, "E2": 1, "I2": 1},
    {"drive": 2, "E1": 0, "I1": 1, "E2": 1, "I2": 0},
    4,
])
def test_ei_with_heterogeneous_delays_split_2_3_4_ways(dtype: torch.dtype,
                                                       partition: object) -> None:
    r0, r1, _ = _compare(lambda: _ei(dtype), 400, partition)
    rep = r1.distributed
    assert rep.workers == (partition if isinstance(partition, int) else
                           len(set(partition.values())))
    assert rep.min_delay_window == 2 and rep.window == 2 and rep.windows == 200
    assert r0.outputs["E1"].sum() > 100 and r0.outputs["I2"].sum() > 10


def test_partitioned_run_continues_in_one_process() -> None:
    """The merged state (membranes, currents, refractory counters and the inputs still
    on their way) lets one process continue exactly where the workers stopped."""
    g0, g1 = _ei(torch.float64), _ei(torch.float64)
    with torch.no_grad():
        full = g0.run(500, record=["E2"], backend="torch").outputs["E2"]
        a = g1.run(250, record=["E2"], backend="ray",
                   partition={"drive": 1, "E1": 0, "I1": 1, "E2": 2, "I2": 0}).outputs["E2"]
        b = g1.run(250, record=["E2"], backend="engine").outputs["E2"]
        assert torch.equal(torch.cat([a, b]), full)
        c = g1.run(200, record=["E2"], backend="ray", partition=2, reset=True).outputs["E2"]
    assert torch.equal(c, full[:200])


def test_hybrid_graph_with_dense_messages_and_local_plasticity() -> None:
    """An ANN region between workers travels as dense values; same-step edges and a
    plastic projection stay on one worker, and its plastic weights come back."""
    def make() -> Graph:
        g = Graph(dt=1e-3, seed=5).double()
        g.add(PoissonRegion("in", 12, rate=300.0))
        g.add(SpikingRegion("A", 10, "lif", LIFParameters(tau_mem=5e-3, threshold=0.5)))
        lin = torch.nn.Linear(10, 6).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randint(-4, 5, (6, 10)).double() / 8)
            lin.bias.fill_(0.125)
        g.add(DenseRegion("ann", torch.nn.Sequential(lin, torch.nn.ReLU()), 6, 10))
        g.add(SpikingRegion("B", 8, "lif", LIFParameters(tau_mem=5e-3, threshold=0.5)))
        p = g.connect("in", "A", torch.randint(0, 3, (12, 10)).double() / 4, delay=1)
        p.add_rule(lambda proj, pre, post, traces: pre[0][:, None] * post[0][None, :] / 64)
        g.connect("A", "ann", torch.eye(10, dtype=torch.float64), same_step=True)
        g.connect("ann", "B", torch.randint(0, 3, (6, 8)).double() / 4, delay=2)
        g.connect("B", "A", -torch.ones(8, 10, dtype=torch.float64) / 8, delay=1)
        return g

    torch.manual_seed(0)
    g0 = make()
    torch.manual_seed(0)
    g1 = make()
    with torch.no_grad():
        r0 = g0.run(120, record=["A", "ann", "B"], backend="torch")
    r1 = g1.run(120, record=["A", "ann", "B"], backend="ray",
                partition={"in": 0, "A": 0, "ann": 0, "B": 1})
    assert r1.distributed.backends == ("torch", "engine")
    assert r1.distributed.cut == ("ann-B", "B-A")
    for n in ("A", "ann", "B"):
        assert torch.equal(r0.outputs[n], r1.outputs[n]), n
    assert r0.outputs["B"].sum() > 5 and r0.outputs["A"].sum() > 5
    w0, w1 = (g.projections["in-A"].plastic_weight for g in (g0, g1))
    assert torch.equal(w0, w1) and w0.abs().sum() > 0
    _assert_same_state(r0.state, r1.state)
    g2 = make()
    with pytest.raises(ParameterError, match="'A-ann'.*same-step.*one worker"):
        g2.run(10, backend="ray", partition={"in": 0, "A": 0, "ann": 1, "B": 1})
    with pytest.raises(ParameterError, match="'in-A'.*plasticity rules.*one worker"):
        g2.run(10, backend="ray", partition={"in": 1, "A": 0, "ann": 0, "B": 0})


def test_engine_worker_with_stdp_over_many_windows_equals_one_process() -> None:
    """A worker's engine keeps one layout over its windows (built at the first): its
    pair-STDP weights, updated in place window after window, end where one process's
    engine run ends, and the spikes are identical over 150 windows of 2 steps. The
    weights are not dyadic, so they are compared to 1e-12 (inputs summed in another
    order)."""
    from neuromodulation.stdp import PairSTDP, PairSTDPParameters

    def make() -> Graph:
        g = Graph(dt=1e-3, seed=3).double()
        g.add(PoissonRegion("noise", 40, rate=torch.linspace(10.0, 40.0, 40), seed=7))
        g.add(SpikingRegion("E", 20, "lif", LIFParameters(tau_mem=10e-3, threshold=0.5,
                                                          input_scaling="direct")))
        g.add(SpikingRegion("X", 10, "lif", LIFParameters(tau_mem=10e-3, threshold=0.5,
                                                          input_scaling="direct")))
        w = torch.rand(40, 20, generator=torch.Generator().manual_seed(1),
                       dtype=torch.float64) * 0.3
        g.connect("noise", "E", w, delay=1).add_rule(PairSTDP(PairSTDPParameters(
            a_plus=0.02, a_minus=0.021, tau_plus=17e-3, tau_minus=34e-3, w_max=1.0)))
        g.connect("E", "X", 0.25, connectivity=fixed_probability(20, 10, 0.5, seed=2),
                  delay=1)
        g.connect("X", "E", -0.125, connectivity=fixed_probability(10, 20, 0.5, seed=3),
                  delay=2)
        return g

    g0, g1 = make(), make()
    m0, m1 = g0.monitor("E"), g1.monitor("E")
    with torch.no_grad():
        r0 = g0.run(300, record=["E", "X"], backend="engine")
    r1 = g1.run(300, record=["E", "X"], backend="ray", partition={"noise": 0, "E": 0, "X": 1},
                worker_backend="engine")
    assert r1.distributed.backends == ("engine", "engine")
    assert r1.distributed.window == 2 and r1.distributed.windows == 150
    for n in ("E", "X"):
        assert torch.equal(r0.outputs[n], r1.outputs[n]), n
    assert r0.outputs["E"].sum() > 100 and r0.outputs["X"].sum() > 20
    assert np.array_equal(m0.data()["t"], m1.data()["t"])
    w0, w1 = (g.projections["noise-E"].effective_weight() for g in (g0, g1))
    assert (w0 - w1).abs().max() <= 1e-12
    assert (w0 - g0.projections["noise-E"].weight).abs().max() > 0.05   # STDP moved them


# -- exchange counts, by hand ---------------------------------------------------------
class _Events(Observer):
    count_events = True

    def __init__(self) -> None:
        self.events: dict[str, list[np.ndarray]] = {}
        self.steps: list[tuple[int, int]] = []

    def observe(self, chunk) -> None:  # noqa: ANN001
        self.steps.append((chunk.t0, chunk.steps))
        for k, v in chunk.events.items():
            self.events.setdefault(k, []).append(v)


def test_exchange_count_and_bytes_of_a_tiny_graph() -> None:
    """``src`` (4 spiking inputs) and ``cur`` (3 real-valued inputs) on worker 0 drive
    ``dst`` on worker 1 with delays 2 and 4: D = 1 + 2 = 3 steps, so T = 10 steps are
    the windows 0-2, 3-5, 6-8, 9: four messages, each holding 4 bytes per spike of
    ``src`` and the window's [n, 1, 3] float64 values of ``cur``."""
    g = Graph(dt=1e-3).double()
    g.add(InputRegion("src", 4))
    g.add(InputRegion("cur", 3, spiking=False))
    g.add(SpikingRegion("dst", 2, "lif", LIFParameters(tau_mem=5e-3, threshold=0.5)))
    g.connect("src", "dst", torch.tensor([[0.5, 0.0], [0.25, 0.25], [0.0, 0.5], [1.0, 1.0]],
                                         dtype=torch.float64), delay=2)
    g.connect("cur", "dst", torch.full((3, 2), 0.125, dtype=torch.float64), delay=4)
    T = 10
    src = torch.zeros(T, 1, 4, dtype=torch.float64)
    for t, i in ((0, 0), (1, 3), (4, 1), (4, 2), (7, 3), (9, 0), (9, 1)):
        src[t, 0, i] = 1.0
    cur = torch.linspace(0.0, 1.0, T * 3, dtype=torch.float64).view(T, 1, 3)
    inputs = {"src": src, "cur": cur}
    ev0, ev1 = _Events(), _Events()
    g.add_observer(ev0)
    with torch.no_grad():
        r0 = g.run(T, inputs, record=["dst"], backend="torch")
    g.remove_observer(ev0)
    g.add_observer(ev1)
    r1 = g.run(T, inputs, record=["dst"], backend="ray", partition={"src": 0, "cur": 0,
                                                                    "dst": 1}, reset=True)
    rep = r1.distributed
    assert (rep.min_delay_window, rep.window, rep.windows) == (3, 3, 4)
    assert rep.exchanges == 4
    assert rep.bytes == 7 * 4 + T * 3 * 8
    assert rep.cut == ("src-dst", "cur-dst") and rep.cut_synapses == 4 * 2 + 3 * 2  # dense
    assert torch.equal(r0.outputs["dst"], r1.outputs["dst"])
    assert ev1.steps == [(0, 3), (3, 3), (6, 3), (9, 1)]
    # events: each spike of src times its out-degree (1, 2, 1, 2); cur: nonzero values x 2
    deg = [1, 2, 1, 2]
    want_src = np.zeros(T, np.int64)
    for t, i in ((0, 0), (1, 3), (4, 1), (4, 2), (7, 3), (9, 0), (9, 1)):
        want_src[t] += deg[i]
    want_cur = (cur[:, 0] != 0).sum(1).numpy() * 2
    for ev in (ev0, ev1):
        assert np.array_equal(np.concatenate(ev.events["src-dst"]), want_src)
        assert np.array_equal(np.concatenate(ev.events["cur-dst"]), want_cur)


# -- bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"partition": {"drive": 0, "E1": 0, "E3": 1, "E2": 1, "I1": 1, "I2": 1}},
     r"unknown region\(s\) \['E3'\]"),
    ({"partition": {"drive": 0, "E1": 0, "E2": 1, "I1": 1}}, r"leaves out region\(s\) \['I2'\]"),
    ({"partition": 6}, "partition=6: more workers than regions"),
    ({"partition": {"drive": 0, "E1": 0, "E2": 2, "I1": 2, "I2": 2}}, r"indices \[0, 2\]"),
    ({"partition": None}, "needs partition="),
    ({"partition": 2, "worker_backend": "numba"}, "worker_backend must be one of"),
    ({"partition": 2, "address": "127.0.0.1:1"}, r"address='127.0.0.1:1': cannot reach"),
    ({"partition": 2, "address": "ray://localhost"}, "is not 'host:port'"),
])
def test_bad_partitions_and_addresses_name_the_problem_and_keep_the_state(
        kwargs: dict, match: str) -> None:
    g = _ei(torch.float64)
    with torch.no_grad():
        g.run(20, backend="engine")
    before = g.state_tensors()
    kept = g.state
    with pytest.raises(ParameterError, match=match):
        g.run(20, backend="ray", **kwargs)
    assert g.state is kept
    after = g.state_tensors()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_same_step_edge_across_workers_is_refused_by_name() -> None:
    g = Graph(dt=1e-3)
    g.add(PoissonRegion("p", 4, rate=100.0))
    g.add(SpikingRegion("s", 4, "lif"))
    g.connect("p", "s", torch.eye(4), same_step=True, name="fast")
    with pytest.raises(ParameterError, match="'fast' \\('p' -> 's'\\).*same-step.*'p' and "
                                             "'s' on one worker"):
        g.run(5, backend="ray", partition={"p": 0, "s": 1})
    with pytest.raises(ParameterError, match="more workers than regions that can be placed "
                                             "apart"):
        g.run(5, backend="ray", partition=2)
    with pytest.raises(ParameterError, match="backend='ray' only"):
        g.run(5, partition=2)
    assert g.state is None


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    g = _ei(torch.float64)
    with pytest.raises(MissingExtraError, match=r"aura-snn\[distributed\]"):
        g.run(5, backend="ray", partition=2)
