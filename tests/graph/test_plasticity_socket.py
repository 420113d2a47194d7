"""The plasticity socket: rules see activity at the synapse, keep their state in the graph
state, get dt and modulators, declare their batch reduction, and change only the
plastic part of the weights; synapse models, modulation inputs and rewiring.

Oracles are hand-written: arrival steps from the delay rule (``t + 1 + d``), unrolled
loops written here with plain tensors, and analytic counts.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError, ShapeError
from aura_snn.functional import lif
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import (
    Graph,
    InputRegion,
    PlasticityRule,
    SpikingRegion,
    SynapseModel,
    from_indices,
)

DT = 1e-3
QUIET = LIFParameters(threshold=1e6, input_scaling="direct")   # never spikes


class Seen(PlasticityRule):
    """Records what it is given; changes nothing."""

    batch_reduction = "none"

    def __init__(self) -> None:
        super().__init__()
        self.pre: list[torch.Tensor] = []
        self.pre_syn: list[torch.Tensor | None] = []
        self.mods: list[dict[str, torch.Tensor]] = []
        self.dts: list[float] = []

    def update(self, activity, w, state, dt, modulators):  # noqa: ANN001, ANN201
        self.pre.append(activity.pre.clone())
        self.pre_syn.append(None if activity.pre_syn is None else activity.pre_syn.clone())
        self.mods.append(dict(modulators))
        self.dts.append(dt)
        return None, state


def _spike_input(T: int, n: int, at: dict[int, int]) -> torch.Tensor:
    x = torch.zeros(T, 1, n, dtype=torch.float64)
    for i, t in at.items():
        x[t, 0, i] = 1.0
    return x


def test_rules_see_presynaptic_spikes_when_they_arrive_after_the_delay() -> None:
    T, d = 20, 3
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("post", 2, "lif", QUIET))
    p = g.connect("in", "post", torch.ones(2, 2, dtype=torch.float64), delay=d)
    rule = Seen()
    p.add_rule(rule)
    g.run(T, inputs={"in": _spike_input(T, 2, {0: 5, 1: 9})})
    arrivals = {int(i): t for t, pre in enumerate(rule.pre) for i in pre[0].nonzero()}
    assert arrivals == {0: 5 + 1 + d, 1: 9 + 1 + d}
    assert rule.dts == [DT] * T


def test_per_synapse_delays_give_per_synapse_activity() -> None:
    T = 20
    conn = from_indices([0, 0, 1], [0, 1, 1], 2, 2)
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("post", 2, "lif", QUIET))
    p = g.connect("in", "post", connectivity=conn, weight=1.0, delay=np.array([1, 4, 2]))
    rule = Seen()
    p.add_rule(rule)
    g.run(T, inputs={"in": _spike_input(T, 2, {0: 3, 1: 6})})
    arrivals = {int(s): t for t, ps in enumerate(rule.pre_syn) for s in ps[0].nonzero()}
    # synapse s = 0->0 (d 1), 0->1 (d 4), 1->1 (d 2); spikes at 3 (pre 0) and 6 (pre 1)
    assert arrivals == {0: 3 + 1 + 1, 1: 3 + 1 + 4, 2: 6 + 1 + 2}


class Counter(NamedTuple):
    n: torch.Tensor            # [B, n_pre] arrived presynaptic spikes, per neuron


class CountingRule(PlasticityRule):
    """State: presynaptic spikes that arrived; dw = eta * dopamine * count_i * post_j."""

    batch_reduction = "mean"

    def __init__(self, eta: float) -> None:
        super().__init__()
        self.eta = eta

    def initial_state(self, projection, batch, device, dtype):  # noqa: ANN001, ANN201
        return Counter(torch.zeros(batch, projection.n_pre, device=device, dtype=dtype))

    def update(self, activity, w, state, dt, modulators):  # noqa: ANN001, ANN201
        n = state.n + activity.pre
        da = modulators.get("dopamine", torch.ones(()))
        da = da.reshape(-1, 1, 1) if da.dim() else da
        dw = self.eta * da * n[:, :, None] * activity.post[:, None, :]
        return dw, Counter(n)


def _counting_graph(B: int = 2) -> tuple[Graph, Any]:
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 3))
    g.add(SpikingRegion("post", 2, "lif", LIFParameters(threshold=0.5,
                                                        input_scaling="direct")))
    p = g.connect("in", "post", torch.full((3, 2), 0.75, dtype=torch.float64))
    p.add_rule(CountingRule(eta=1e-3))
    return g, p


def _poisson(T: int, B: int, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n, generator=gen, dtype=torch.float64) < 0.2).double()


def test_rule_state_lives_in_the_graph_state_and_resumes_from_a_file(tmp_path: Any) -> None:
    T, B = 200, 2
    x = _poisson(T, B, 3, 1)
    da = torch.linspace(0.5, 1.5, T, dtype=torch.float64)
    g1, p1 = _counting_graph(B)
    r1 = g1.run(T, inputs={"in": x}, record=["post"], modulators={"dopamine": da})
    key = f"{p1.name}.rule0"
    # oracle: the count is the number of spikes that arrived (emitted up to step T-2)
    assert torch.equal(r1.state.rules[key].n, x[:T - 1].sum(0))
    # hand-written unrolled weights: eta * mean_b(da[t] * n_b[t] * post_b[t])
    n = torch.zeros(B, 3, dtype=torch.float64)
    w = torch.full((3, 2), 0.75, dtype=torch.float64)
    post = r1.outputs["post"]
    assert post.sum() > 10
    for t in range(T):
        n = n + (x[t - 1] if t else 0 * x[0])
        w = w + 1e-3 * (da[t] * n[:, :, None] * post[t][:, None, :]).mean(0)
    torch.testing.assert_close(p1.effective_weight(), w, rtol=1e-12, atol=1e-14)

    # the same run in two halves, saved to a file and loaded into a fresh graph
    g2, p2 = _counting_graph(B)
    g2.run(T // 2, inputs={"in": x[:T // 2]}, modulators={"dopamine": da[:T // 2]})
    g2.save_state(tmp_path / "half.safetensors")
    g3, p3 = _counting_graph(B)
    g3.load_state(tmp_path / "half.safetensors")
    assert torch.equal(g3.state.rules[key].n, x[:T // 2 - 1].sum(0))
    r3 = g3.run(T - T // 2, inputs={"in": x[T // 2:]}, record=["post"],
                modulators={"dopamine": da[T // 2:]})
    assert torch.equal(r3.outputs["post"], post[T // 2:])
    assert torch.equal(p3.effective_weight(), p1.effective_weight())
    g3.reset_state()
    assert torch.equal(g3.initial_state(B).rules[key].n, torch.zeros(B, 3, dtype=torch.float64))


def test_batch_reduction_is_declared() -> None:
    class Const(PlasticityRule):
        def update(self, activity, w, state, dt, modulators):  # noqa: ANN001, ANN201
            b = activity.post.shape[0]
            dw = torch.arange(1.0, b + 1, dtype=w.dtype).reshape(b, 1, 1)
            return dw.expand(b, *w.shape), state

    for reduction, expect in (("mean", 2.0), ("sum", 6.0)):
        g = Graph(dt=DT).double()
        g.add(InputRegion("in", 2))
        g.add(SpikingRegion("post", 2, "lif", QUIET))
        p = g.connect("in", "post", torch.zeros(2, 2, dtype=torch.float64))
        rule = Const()
        rule.batch_reduction = reduction
        p.add_rule(rule)
        g.run(1, inputs={"in": torch.zeros(1, 3, 2, dtype=torch.float64)})
        assert torch.equal(p.effective_weight(), torch.full((2, 2), expect, dtype=torch.float64))
    rule.batch_reduction = "mean"

    class Bad(PlasticityRule):
        def update(self, activity, w, state, dt, modulators):  # noqa: ANN001, ANN201
            return torch.zeros_like(w), state          # no batch axis, but declares "mean"
    p.rules.clear()
    p.add_rule(Bad())
    with pytest.raises(ShapeError, match=r"batch_reduction='mean'.*\[B, 2, 2\]"):
        g.run(1, inputs={"in": torch.zeros(1, 3, 2, dtype=torch.float64)})


def test_learnable_and_plastic_projection_gets_the_right_gradient() -> None:
    """The bug: rules wrote ``weight.data`` in place, so the weights autograd saved in
    earlier steps were overwritten and the gradient through time was silently wrong.
    A chain in -> hid -> out whose second projection is learnable *and* plastic: the
    gradient of the first projection flows through the second one's weights of every
    step. Oracle: the same computation unrolled here, with W_t = W + t dW at emission."""
    T = 40
    x = _poisson(T, 2, 3, 7)
    w1 = torch.tensor([[1.5, -0.5], [0.5, 1.0], [1.0, 0.5]], dtype=torch.float64)
    w2 = torch.tensor([[1.0, -0.5], [0.5, 1.5]], dtype=torch.float64)
    dW = torch.full((2, 2), -0.03125, dtype=torch.float64)
    p_lif = LIFParameters(threshold=0.4, tau_mem=5e-3)
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 3))
    g.add(SpikingRegion("hid", 2, "lif", p_lif))
    g.add(SpikingRegion("out", 2, "lif", p_lif))
    first = g.connect("in", "hid", w1.clone(), learnable=True)
    second = g.connect("hid", "out", w2.clone(), learnable=True)
    second.add_rule(lambda projection, pre, post, traces: dW)   # the callable form
    r = g.run(T, inputs={"in": x}, record=["out"])
    readout = torch.tensor([1.0, -2.0], dtype=torch.float64)
    (r.outputs["out"] * readout).sum().backward()

    W1 = w1.clone().requires_grad_(True)
    W2 = w2.clone().requires_grad_(True)
    P = torch.zeros(2, 2, dtype=torch.float64)
    s_h = s_o = None
    to_h = to_o = torch.zeros(2, 2, dtype=torch.float64)
    spikes = []
    for t in range(T):
        h, s_h = lif.step(to_h, s_h, p_lif, DT)
        o, s_o = lif.step(to_o, s_o, p_lif, DT)
        spikes.append(o)
        to_h, to_o = x[t] @ W1, h @ (W2 + P)     # transmitted with the weights of step t
        P = P + dW
    (torch.stack(spikes) * readout).sum().backward()
    assert torch.equal(r.outputs["out"], torch.stack(spikes).detach())
    assert W1.grad.abs().sum() > 0 and W2.grad.abs().sum() > 0
    torch.testing.assert_close(first.weight.grad, W1.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(second.weight.grad, W2.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(second.effective_weight(), w2 + T * dW)
    assert torch.equal(second.weight, w2)


class Depression(NamedTuple):
    x: torch.Tensor      # available resources [B, n_pre]


class Depressing(SynapseModel):
    """Tsodyks-Markram depression: e = U x; after a spike x -= U x; recovery with tau."""

    def __init__(self, U: float, tau: float) -> None:
        self.U, self.tau = U, tau

    def initial_state(self, n_pre, batch, device, dtype):  # noqa: ANN001, ANN201
        return Depression(torch.ones(batch, n_pre, device=device, dtype=dtype))

    def step(self, y, state, dt):  # noqa: ANN001, ANN201
        e = self.U * state.x
        x = state.x - e * y
        x = 1.0 - (1.0 - x) * math.exp(-dt / self.tau)
        return e, Depression(x)


def test_a_synapse_model_scales_what_is_transmitted_and_keeps_its_state() -> None:
    T, U, tau = 30, 0.5, 5e-3
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 1))
    g.add(SpikingRegion("post", 1, "lif", QUIET))
    g.connect("in", "post", torch.ones(1, 1, dtype=torch.float64), synapse=Depressing(U, tau))
    mon = g.monitor("post", "v")
    spikes_at = [2, 3, 4, 20]
    x = torch.zeros(T, 1, 1, dtype=torch.float64)
    x[spikes_at, 0, 0] = 1.0
    r = g.run(T, inputs={"in": x})
    v = torch.as_tensor(mon.data()["values"][:, 0, 0])
    a = math.exp(-DT / QUIET.tau_mem)
    received = v - a * torch.cat([torch.zeros(1, dtype=v.dtype), v[:-1]])
    # hand-written: resources R start at 1, each spike transmits U*R, then R -= U*R,
    # and R recovers towards 1 with tau every step
    R, expect = 1.0, torch.zeros(T, dtype=torch.float64)
    for t in range(T):
        if t in spikes_at:
            expect[t + 1] = U * R
            R -= U * R
        R = 1.0 - (1.0 - R) * math.exp(-DT / tau)
    torch.testing.assert_close(received, expect, rtol=1e-12, atol=1e-14)
    assert "synapse model" in g.engine_reason() and r.backend == "torch"


def test_modulation_gain_and_threshold_shift() -> None:
    """A LIF neuron with constant input c (direct): v climbs by c*(1 + a + ...) and
    fires when it reaches the threshold; the spike count over T steps is computed here."""
    T, c = 200, 0.3
    p_lif = LIFParameters(threshold=1.0, input_scaling="direct", reset="zero")

    def count(theta: float, gain: float) -> int:
        a, v, n = math.exp(-DT / p_lif.tau_mem), 0.0, 0
        for t in range(T):
            arrived = c * gain if t else 0.0       # input spikes arrive one step later
            v = a * v + arrived
            if v > theta:
                n, v = n + 1, 0.0
        return n

    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 1, spiking=False))
    g.add(SpikingRegion("E", 1, "lif", p_lif))
    g.connect("in", "E", torch.ones(1, 1, dtype=torch.float64))
    x = torch.full((T, 1, 1), c, dtype=torch.float64)
    base = int(g.run(T, inputs={"in": x}, record=["E"], reset=True).outputs["E"].sum())
    shift = torch.full((T,), 0.4, dtype=torch.float64)
    up = g.run(T, inputs={"in": x}, record=["E"], reset=True,
               modulation={"E": {"threshold": shift}}).outputs["E"].sum()
    gain = g.run(T, inputs={"in": x}, record=["E"], reset=True,
                 modulation={"E": {"gain": torch.full((T, 1, 1), 2.0)}}).outputs["E"].sum()
    assert (base, int(up), int(gain)) == (count(1.0, 1.0), count(1.4, 1.0), count(1.0, 2.0))
    assert count(1.4, 1.0) < count(1.0, 1.0) < count(1.0, 2.0)


class SynapseCount(PlasticityRule):
    """State: arrivals per synapse ``[B, nnz]``; changes nothing."""

    batch_reduction = "none"

    def initial_state(self, projection, batch, device, dtype):  # noqa: ANN001, ANN201
        return Counter(torch.zeros(batch, projection.nnz, device=device, dtype=dtype))

    def synapse_fields(self, projection):  # noqa: ANN001, ANN201
        return ("n",)

    def update(self, activity, w, state, dt, modulators):  # noqa: ANN001, ANN201
        return None, Counter(state.n + activity.pre_syn)


SPIKY = LIFParameters(threshold=0.04, input_scaling="direct")


class PostAndSynapse(NamedTuple):
    post: torch.Tensor   # [B, n_post]: per neuron
    syn: torch.Tensor    # [B, nnz]: per synapse


class PostAndSynapseRule(PlasticityRule):
    """Counts postsynaptic spikes per neuron and arrivals per synapse; changes nothing.
    ``declare=False`` leaves rewire to infer which field is per synapse."""

    batch_reduction = "none"

    def __init__(self, declare: bool) -> None:
        super().__init__()
        self.declare = declare

    def initial_state(self, projection, batch, device, dtype):  # noqa: ANN001, ANN201
        return PostAndSynapse(torch.zeros(batch, projection.n_post, dtype=dtype),
                              torch.zeros(batch, projection.nnz, dtype=dtype))

    def synapse_fields(self, projection):  # noqa: ANN001, ANN201
        return ("syn",) if self.declare else None

    def update(self, activity, w, state, dt, modulators):  # noqa: ANN001, ANN201
        return None, PostAndSynapse(state.post + activity.post, state.syn + activity.pre_syn)


def test_rewire_moves_declared_synapse_fields_and_never_permutes_a_neuron_field() -> None:
    """n_post == nnz: a per-neuron field has the shape of a per-synapse one. Declared,
    only the synapse field moves; undeclared, rewire refuses before changing anything."""
    T = 12
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("post", 3, "lif", SPIKY))
    conn = from_indices([0, 0, 1], [0, 1, 2], 2, 3)
    p = g.connect("in", "post", connectivity=conn, weight=np.array([0.03, 0.02, 0.05]))
    p.add_rule(PostAndSynapseRule(declare=True))
    x = torch.zeros(T, 1, 2, dtype=torch.float64)
    x[::2, 0, 0] = 1.0
    x[:, 0, 1] = 1.0
    g.run(T, inputs={"in": x})
    key = f"{p.name}.rule0"
    post_before = g.state.rules[key].post.clone()
    syn_before = g.state.rules[key].syn.clone()
    assert post_before.sum() > 0   # the neuron field holds something a permutation moves
    # prune synapse 0 (0->0), grow 1->0: nnz stays 3 = n_post; stored order is by pre
    g.rewire(p.name, prune=np.array([0]), grow=([1], [0], [0.04]))
    pre, post, _, _ = p.to_coo()
    assert (pre.tolist(), post.tolist()) == ([0, 1, 1], [1, 0, 2])
    st = g.state.rules[key]
    assert torch.equal(st.post, post_before)
    assert st.syn[0].tolist() == [syn_before[0, 1].item(), 0.0, syn_before[0, 2].item()]
    g2 = Graph(dt=DT).double()
    g2.add(InputRegion("in", 2))
    g2.add(SpikingRegion("post", 3, "lif", SPIKY))
    p2 = g2.connect("in", "post", connectivity=conn, weight=np.array([0.03, 0.02, 0.05]))
    p2.add_rule(PostAndSynapseRule(declare=False))
    g2.run(T, inputs={"in": x})
    coo = [a.tolist() for a in p2.to_coo()]
    with pytest.raises(ParameterError, match="synapse_fields"):
        g2.rewire(p2.name, prune=np.array([0]), grow=([1], [0], [0.04]))
    assert [a.tolist() for a in p2.to_coo()] == coo


def test_rewire_prunes_and_grows_without_rebuilding() -> None:
    T = 10
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", 3))
    g.add(SpikingRegion("post", 2, "lif", QUIET))
    conn = from_indices([0, 1, 2], [0, 1, 0], 3, 2)
    p = g.connect("in", "post", connectivity=conn, weight=np.array([0.5, 0.25, 0.125]))
    p.add_rule(SynapseCount())
    x = torch.ones(T, 1, 3, dtype=torch.float64)
    x[:, :, 2] = 0.0
    x[4, 0, 2] = 1.0
    g.run(T, inputs={"in": x})
    key = f"{p.name}.rule0"
    # arrivals per synapse so far (stored order 0->0, 1->1, 2->0): T - 1, T - 1, 1
    assert g.state.rules[key].n.tolist() == [[T - 1, T - 1, 1]]
    g.rewire(p.name, prune=np.array([1]), grow=([1, 2], [0, 1], [2.0, 4.0], [0, 2]))
    pre, post, w, d = p.to_coo()
    assert (pre.tolist(), post.tolist(), w.tolist(), d.tolist()) == \
        ([0, 1, 2, 2], [0, 0, 0, 1], [0.5, 2.0, 0.125, 4.0], [0, 0, 0, 2])
    # per-synapse rule state moved with its synapse; grown synapses start at 0
    assert g.state.rules[key].n.tolist() == [[T - 1, 0, 1, 0]]
    x[:, :, 2] = 1.0
    mon = g.monitor("post", "v")
    g.run(T, inputs={"in": x})
    v = torch.as_tensor(mon.data()["values"][:, 0, :])
    a = math.exp(-DT / QUIET.tau_mem)
    received = v[1:] - a * v[:-1]
    # every input neuron spikes every step: post 0 gets 0.5 + 2.0 + 0.125 per step, post 1
    # gets 4.0 from step 3 of the new run on (delay 2), nothing before
    torch.testing.assert_close(received[:, 0], torch.full((T - 1,), 2.625, dtype=torch.float64))
    assert received[:1, 1].abs().max() < 1e-12 and torch.allclose(
        received[2:, 1], torch.full((T - 3,), 4.0, dtype=torch.float64))
