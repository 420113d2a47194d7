"""Graph building, validation, delays, signs, sparse storage, hybrid gradients, plasticity
socket, state save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aura_snn import LIF, cells
from aura_snn.errors import CorruptFileError, ParameterError, ShapeError
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.graph import (
    DenseRegion,
    Graph,
    InputRegion,
    ModuleRegion,
    PoissonRegion,
    Projection,
    SpikingRegion,
    fixed_probability,
    one_to_one,
)

DT = 1e-4
W = 2.0 ** -9  # dyadic weights: sums are exact in any order (V)


def _spikes_at(T: int, n: int, events: list[tuple[int, int]]) -> torch.Tensor:
    x = torch.zeros(T, 1, n, dtype=torch.float64)
    for t, i in events:
        x[t, 0, i] = 1.0
    return x


# -- validation ---------------------------------------------------------------------
def test_unknown_region_names_are_reported() -> None:
    g = Graph(dt=DT)
    g.add(InputRegion("in", 3))
    with pytest.raises(ParameterError, match=r"unknown region 'out'.*\['in'\]"):
        g.connect("in", "out", torch.zeros(3, 4))
    with pytest.raises(ParameterError, match="unknown monitor target"):
        g.monitor("nope")
    with pytest.raises(ParameterError, match="unknown region"):
        g.run(5, inputs={"in": torch.zeros(5, 1, 3), "ghost": torch.zeros(5, 1, 3)})


def test_shape_mismatch_and_receptor_errors() -> None:
    g = Graph(dt=DT)
    g.add(InputRegion("in", 3))
    g.add(SpikingRegion("E", 4, "cuba_refractory"))
    with pytest.raises(ShapeError, match="weight has 5 columns but region 'E' takes 4"):
        g.connect("in", "E", torch.zeros(3, 5))
    with pytest.raises(ShapeError, match="weight has 2 rows"):
        g.connect("in", "E", torch.zeros(2, 4))
    with pytest.raises(ParameterError, match="receptor 'gaba'"):
        g.connect("in", "E", torch.zeros(3, 4), receptor="gaba")
    with pytest.raises(ParameterError, match="takes no input"):
        g.connect("E", "in", torch.zeros(4, 3))
    with pytest.raises(ParameterError, match="already used"):
        g.add(InputRegion("E", 2))
    with pytest.raises(ShapeError, match=r"inputs\['in'\]"):
        g.run(10, inputs={"in": torch.zeros(10, 1, 7)})
    with pytest.raises(ParameterError, match=r"needs inputs\['in'\]"):
        g.run(10)


def test_bad_parameters() -> None:
    with pytest.raises(ParameterError, match="delay"):
        Projection("p", "a", "b", torch.zeros(2, 2), delay=-1)
    with pytest.raises(ParameterError, match="sign"):
        Projection("p", "a", "b", torch.zeros(2, 2), sign="positive")
    with pytest.raises(ParameterError, match="name"):
        InputRegion("a.b", 2)
    with pytest.raises(ParameterError, match="model"):
        SpikingRegion("x", 2, "hodgkin_huxley")
    with pytest.raises(ParameterError, match="dt"):
        Graph(dt=1e-4).add(SpikingRegion("x", 2, LIF(dt=1e-3)))
    with pytest.raises(ParameterError, match="unknown state field"):
        SpikingRegion("x", 2, "lif", init={"w": 1.0})
    with pytest.raises(ParameterError, match="backend"):
        _feedforward().run(3, inputs={"in": torch.zeros(3, 1, 4, dtype=torch.float64)},
                           backend="gpu")


# -- semantics ----------------------------------------------------------------------
def _feedforward(delay: int | torch.Tensor = 0, sparse: bool = False) -> Graph:
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 4))
    p = CubaRefractoryParameters(threshold=1.0)  # never fires: look at the currents
    g.add(SpikingRegion("E", 3, "cuba_refractory", p))
    w = torch.tensor([[W, 0, 0], [0, 2 * W, 0], [0, 0, 4 * W], [W, W, W]], dtype=torch.float64)
    g.connect("in", "E", w, name="in-E", delay=delay, sparse=sparse, receptor="exc")
    return g


@pytest.mark.parametrize("backend", ["torch", "engine"])
@pytest.mark.parametrize("delay", [0, 3])
def test_a_spike_arrives_one_plus_delay_steps_later(backend: str, delay: int) -> None:
    g = _feedforward(delay)
    mon = g.monitor("E", "i:exc")
    g.run(20, inputs={"in": _spikes_at(20, 4, [(5, 0)])}, backend=backend)
    cur = torch.from_numpy(mon.data()["values"][:, 0, 0])
    arrive = 6 + delay          # emitted in step 5, enters the current in step 6 + delay
    assert torch.all(cur[:arrive] == 0)
    a_e = float(np.exp(-DT / 5e-3))
    assert cur[arrive] == pytest.approx(a_e * W, rel=1e-15)
    assert cur[arrive + 1] == pytest.approx(a_e ** 2 * W, rel=1e-14)


@pytest.mark.parametrize("backend", ["torch", "engine"])
def test_per_synapse_delays(backend: str) -> None:
    delay = torch.tensor([[1, 0, 0], [0, 2, 0], [0, 0, 4], [0, 0, 0]])
    g = _feedforward(delay)
    mon = g.monitor("E", "i:exc")
    g.run(20, inputs={"in": _spikes_at(20, 4, [(2, 0), (2, 1), (2, 2)])}, backend=backend)
    cur = mon.data()["values"][:, 0, :]
    first = [int(np.argmax(cur[:, j] != 0)) for j in range(3)]
    assert first == [3 + 1, 3 + 2, 3 + 4]


def test_sparse_equals_dense_and_torch_sparse_layouts() -> None:
    x = (torch.rand(60, 1, 4, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    outs = []
    for make in ("dense", "sparse", "coo", "csr"):
        g = Graph(dt=DT).double()
        g.add(InputRegion("in", 4))
        g.add(SpikingRegion("E", 3, "cuba_refractory", CubaRefractoryParameters(
            threshold=-0.0495)))
        w = torch.tensor([[W, 0, 0], [0, 2 * W, 0], [0, 0, 4 * W], [W, W, W]],
                         dtype=torch.float64) * 16
        if make == "coo":
            w = w.to_sparse_coo()
        elif make == "csr":
            w = w.to_sparse_csr()
        p = g.connect("in", "E", w, sparse=make == "sparse", receptor="exc")
        assert p.sparse == (make != "dense")
        r = g.run(60, inputs={"in": x}, record=["E"], backend="torch")
        outs.append((r.outputs["E"], r.state.regions["E"].v))
    for s, v in outs[1:]:
        assert torch.equal(s, outs[0][0]) and torch.equal(v, outs[0][1])
    assert outs[0][0].sum() > 0


def test_sign_constraints() -> None:
    with pytest.raises(ParameterError, match=r"sign='exc'.*1 are not"):
        Projection("p", "a", "b", torch.tensor([[1.0, -0.5]]), sign="exc")
    with pytest.raises(ParameterError, match="sign='inh'"):
        Projection("p", "a", "b", torch.tensor([[0.0, 0.5]]), sign="inh")
    p = Projection("p", "a", "b", torch.tensor([[1.0, 0.5]]), sign="exc", learnable=True)
    p.apply_update(torch.tensor([[-2.0, 0.25]]))
    # the change goes to the plastic part; the learned Parameter is never written
    assert torch.equal(p.weight.data, torch.tensor([[1.0, 0.5]]))
    assert torch.equal(p.effective_weight(), torch.tensor([[0.0, 0.75]]))
    with torch.no_grad():
        p.weight.data[0, 1] = -1.0   # e.g. an optimizer step crossed zero: -1 + 0.25 < 0
    assert torch.equal(p.effective_weight(), torch.tensor([[0.0, 0.0]]))
    q = Projection("q", "a", "b", torch.tensor([[-1.0, -0.5]]), sign="inh", w_min=-0.8)
    q.apply_update(torch.tensor([[0.0, 1.0]]))
    assert torch.equal(q.effective_weight(), torch.tensor([[-0.8, 0.0]]))
    assert torch.equal(q.weight, torch.tensor([[-1.0, -0.5]]))


def test_cycles_use_the_previous_step_and_order_does_not_matter() -> None:
    def build(order: list[str]) -> Graph:
        g = Graph(dt=DT).double()
        regions = {
            "in": InputRegion("in", 2),
            "A": SpikingRegion("A", 3, "lif", init={"v": 0.5}),
            "B": SpikingRegion("B", 3, "lif"),
        }
        for n in order:
            g.add(regions[n])
        g.connect("in", "A", torch.full((2, 3), 0.75, dtype=torch.float64) * 16)
        g.connect("A", "B", torch.eye(3, dtype=torch.float64) * 40)
        g.connect("B", "A", -torch.eye(3, dtype=torch.float64) * 8)
        return g
    x = (torch.rand(80, 1, 2, generator=torch.Generator().manual_seed(2)) < 0.2).double()
    r1 = build(["in", "A", "B"]).run(80, inputs={"in": x}, record=["A", "B"], backend="torch")
    g2 = build(["B", "A", "in"])
    r2 = g2.run(80, inputs={"in": x}, record=["A", "B"], backend="torch")
    assert torch.equal(r1.outputs["A"], r2.outputs["A"])
    assert torch.equal(r1.outputs["B"], r2.outputs["B"])
    assert r1.outputs["B"].sum() > 0
    assert g2.topological_order() == ["in", "A", "B"]


def test_continuing_a_run_equals_one_long_run() -> None:
    x = (torch.rand(200, 1, 4, generator=torch.Generator().manual_seed(3)) < 0.2).double()

    def build() -> Graph:
        g = Graph(dt=DT, seed=4).double()
        g.add(InputRegion("in", 4))
        g.add(PoissonRegion("noise", 5, rate=200.0))
        g.add(SpikingRegion("E", 6, "cuba_refractory",
                            init={"v": {"uniform": [-0.06, -0.05]}}))
        g.connect("in", "E", torch.full((4, 6), 16 * W, dtype=torch.float64), delay=2)
        g.connect("noise", "E", torch.full((5, 6), 8 * W, dtype=torch.float64))
        return g
    g = build()
    full = g.run(200, inputs={"in": x}, record=["E"], backend="torch").outputs["E"]
    g = build()
    a = g.run(120, inputs={"in": x[:120]}, record=["E"], backend="torch").outputs["E"]
    b = g.run(80, inputs={"in": x[120:]}, record=["E"], backend="torch").outputs["E"]
    assert torch.equal(torch.cat([a, b]), full) and full.sum() > 0


# -- hybrid training -----------------------------------------------------------------
def test_gradients_reach_dense_and_spiking_parts_and_a_hybrid_graph_trains() -> None:
    torch.manual_seed(0)
    T, B, d = 25, 16, 6
    g = Graph(dt=1e-3)
    g.add(DenseRegion("enc", nn.Sequential(nn.Linear(d, 20), nn.ReLU()), size=20, in_size=d))
    g.add(SpikingRegion("hid", 20, LIF(tau_mem=10e-3, dt=1e-3, learn_tau=True)))
    g.add(DenseRegion("out", nn.Linear(20, 2), size=2, in_size=20))
    g.connect("enc", "hid", torch.randn(20, 20) * 0.5, learnable=True)
    g.connect("hid", "out", torch.eye(20))
    # two classes of constant inputs
    x0 = torch.randn(d)
    x = torch.stack([x0 if k % 2 == 0 else -x0 for k in range(B)])
    y = torch.tensor([k % 2 for k in range(B)])
    feed = {"enc": x.unsqueeze(0).expand(T, B, d).contiguous()}
    opt = torch.optim.Adam(g.parameters(), lr=0.03)
    losses = []
    for it in range(25):
        r = g.run(T, inputs=feed, record=["out"], reset=True)
        assert r.backend == "torch"
        logits = r.outputs["out"][5:].mean(0)
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        if it == 0:
            enc_w = g.regions["enc"].module[0].weight
            proj_w = g.projections["enc-hid"].weight
            tau = g.regions["hid"].neuron.tau_mem
            for t in (enc_w, proj_w, tau):   # ordinary + surrogate gradients
                assert t.grad is not None and t.grad.abs().sum() > 0
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_module_region_wraps_cell_populations() -> None:
    centres = torch.rand(30, 2, generator=torch.Generator().manual_seed(0))
    pc = cells.PlaceCells(centres, cells.PlaceParams(sigma=0.2, r_max=200.0, sparsity=1.0))
    g = Graph(dt=1e-3)
    g.add(ModuleRegion("place", pc, 30, seed=3))
    g.add(SpikingRegion("ca1", 5, "lif"))
    g.connect("place", "ca1", torch.full((30, 5), 8.0))
    pos = torch.tensor([[0.5, 0.5]])
    r = g.run(400, inputs={"place": pos}, record=["place", "ca1"])
    rate = r.outputs["place"].mean(0)[0] / 1e-3
    expect = pc(pos)[0]
    # Poisson counts over 0.4 s: within 5 sd of the expected rate (sd = sqrt(r / 0.4 s))
    assert torch.all((rate - expect).abs() <= 5 * torch.sqrt(expect / 0.4) + 5)
    assert r.outputs["ca1"].sum() > 0
    # straight-through: the rates' module receives a gradient from the spikes
    g2 = Graph(dt=1e-3)
    lin = nn.Linear(2, 4)
    g2.add(ModuleRegion("m", nn.Sequential(lin, nn.Softplus()), 4))
    with torch.enable_grad():
        out = g2.run(50, inputs={"m": pos * 100}, record=["m"]).outputs["m"]
        out.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


# -- plasticity socket ----------------------------------------------------------------
class HebbianTraceRule:
    """Test rule: dw_ij = eta * mean_b(x_pre,i * S_post,j) (pre trace times post spike)."""

    def __init__(self, eta: float) -> None:
        self.eta, self.calls = eta, 0

    def __call__(self, proj, pre, post, traces):  # noqa: ANN001, ANN204
        self.calls += 1
        assert not torch.is_grad_enabled()
        return self.eta * torch.einsum("bi,bj->ij", traces.pre, post) / pre.shape[0]


def test_plasticity_hook_sees_traces_and_updates_weights() -> None:
    T, tau = 300, 20e-3
    x = (torch.rand(T, 1, 3, generator=torch.Generator().manual_seed(5)) < 0.3).double()
    g = Graph(dt=1e-3).double()
    g.add(InputRegion("in", 3))
    g.add(SpikingRegion("post", 2, "lif", init={"v": 0.0}))
    w0 = torch.tensor([[0.9, 0.0], [0.9, 0.0], [0.0, 0.0]], dtype=torch.float64) * 4
    p = g.connect("in", "post", w0.clone())
    p.enable_traces(tau_pre=tau, tau_post=tau)
    rule = HebbianTraceRule(eta=1e-3)
    handle = p.add_rule(rule)
    with pytest.raises(ParameterError, match="engine"):
        g.run(T, inputs={"in": x}, backend="engine")
    r = g.run(T, inputs={"in": x}, record=["post"])
    assert r.backend == "torch" and rule.calls == T
    # recompute the expected weights from the recorded spikes: a spike emitted in step
    # t reaches the synapse (and the pre trace) in step t + 1 (delay 0)
    a = float(np.exp(-1e-3 / tau))
    tr = torch.zeros(1, 3, dtype=torch.float64)
    w = w0.clone()
    post = r.outputs["post"]
    for t in range(T):
        arrived = x[t - 1] if t > 0 else torch.zeros_like(x[0])
        tr = a * tr + arrived
        w = w + 1e-3 * tr[0][:, None] * post[t, 0][None, :]
    assert torch.allclose(p.effective_weight(), w, rtol=1e-12, atol=1e-15)
    assert torch.equal(p.weight, w0)          # the learned part is untouched
    assert torch.equal(p.pre_trace, r.state.traces[p.name].pre)
    assert p.effective_weight()[0, 0] > w0[0, 0]
    handle.remove()
    assert not p.rules


# -- state --------------------------------------------------------------------------
def _stateful_graph() -> Graph:
    g = Graph(dt=DT, seed=2).double()
    g.add(PoissonRegion("noise", 8, rate=300.0))
    g.add(SpikingRegion("E", 5, "cuba_refractory", init={"v": {"uniform": [-0.06, -0.05]}}))
    g.connect("noise", "E", torch.full((8, 5), 32 * W, dtype=torch.float64), delay=3)
    return g


def test_state_save_load_round_trip(tmp_path) -> None:  # noqa: ANN001
    g = _stateful_graph()
    g.run(300, backend="torch")
    g.save_state(tmp_path / "s.safetensors")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    cont = g.run(200, record=["E"], backend="torch").outputs["E"]
    h = _stateful_graph()
    st = h.load_state(tmp_path / "s.safetensors")
    assert st.t == 300
    again = h.run(200, record=["E"], backend="torch").outputs["E"]
    assert torch.equal(cont, again) and cont.sum() > 0
    # detach and reset
    h.detach_state()
    h.reset_state()
    assert h.state is None


def test_corrupt_or_foreign_state_files(tmp_path) -> None:  # noqa: ANN001
    g = _stateful_graph()
    g.run(10, backend="torch")
    path = tmp_path / "s.safetensors"
    g.save_state(path)
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError):
        _stateful_graph().load_state(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CorruptFileError):
        _stateful_graph().load_state(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CorruptFileError, match="not an aura-snn graph state"):
        _stateful_graph().load_state(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        _stateful_graph().load_state(tmp_path / "missing.safetensors")


def test_describe_is_plain_and_complete() -> None:
    g = _stateful_graph()
    d = g.describe()
    assert d["order"] == ["noise", "E"]
    assert d["regions"][1]["model"] == "cuba_refractory"
    assert d["regions"][1]["params"]["tau_syn"] == [5e-3, 10e-3]
    assert d["projections"][0]["delay"] == 3 and d["projections"][0]["receptor"] == "exc"
    pre, post, w, dl = g.projections["noise-E"].to_coo()
    assert pre.size == 40 and np.all(dl == 3)


def test_one_to_one_connectivity_projection() -> None:
    g = Graph(dt=1e-3).double()
    g.add(InputRegion("in", 4))
    g.add(SpikingRegion("E", 4, "lif"))
    g.connect("in", "E", 12.0, connectivity=one_to_one(4))
    x = _spikes_at(10, 4, [(1, 2)])
    r = g.run(10, inputs={"in": x}, record=["E"])
    assert r.outputs["E"][:, 0].nonzero().tolist() == [[2, 2]]


def test_graph_runs_in_float32_and_projection_from_connectivity() -> None:
    g = Graph(dt=1e-4, seed=1)
    g.add(PoissonRegion("in", 50, rate=50.0))
    g.add(SpikingRegion("E", 20, "cuba_refractory"))
    g.connect("in", "E", 4e-3, connectivity=fixed_probability(50, 20, 0.3, seed=1))
    with torch.no_grad():
        r1 = g.run(2000, record=["E"], backend="engine", reset=True)
        r2 = g.run(2000, record=["E"], backend="torch", reset=True)
    assert r1.outputs["E"].dtype == torch.float32
    assert torch.equal(r1.outputs["E"], r2.outputs["E"]) and r1.outputs["E"].sum() > 0
