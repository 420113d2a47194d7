"""Same-step edges: a graph of stacked spiking layers computes what the module stack does.

Oracle: the same block written as ``aura_snn.neurons.LIF`` modules with plain
``torch`` matrix products between them (no graph code), run on the whole sequence:
:math:`s^{(l)} = \\text{LIF}(s^{(l-1)} W_l)`. Its spikes, membrane and BPTT gradients
must equal the graph's, spike for spike (float64, dyadic weights so every sum is exact
in any order). The delayed version of the same graph must lag by exactly one step per
layer: its layer-``l`` spikes are the module stack's shifted by ``l`` steps.
"""

from __future__ import annotations

import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion
from aura_snn.neurons import LIF

DT, TAU = 1e-3, 5e-3
T, B = 120, 3
SIZES = [6, 8, 7, 5]          # input, then three spiking layers


def _weights(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # multiples of 1/2 in [-3, 6): sums of a few of them are exact in float64
    return [torch.randint(-6, 12, (a, b), generator=g).double() / 2
            for a, b in zip(SIZES[:-1], SIZES[1:], strict=True)]


def _input(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, SIZES[0], generator=g, dtype=torch.float64) < 0.3).double()


def _graph(ws: list[torch.Tensor], same_step: bool, learnable: bool = False) -> Graph:
    g = Graph(dt=DT).double()
    g.add(InputRegion("L0", SIZES[0]))
    p = LIFParameters(tau_mem=TAU, threshold=1.0)
    for k in range(1, len(SIZES)):
        g.add(SpikingRegion(f"L{k}", SIZES[k], "lif", p))
    for k, w in enumerate(ws):
        g.connect(f"L{k}", f"L{k + 1}", w.clone(), same_step=same_step, learnable=learnable)
    return g


def _module_stack(ws: list[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    out, s = [], x
    for w in ws:
        s = LIF(tau_mem=TAU, dt=DT, threshold=1.0, backend="reference").double()(s @ w)
        out.append(s)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_step_graph_equals_the_module_stack_spike_for_spike(seed: int) -> None:
    ws, x = _weights(seed), _input(seed + 10)
    ref = _module_stack(ws, x)
    r = _graph(ws, same_step=True).run(T, inputs={"L0": x}, record=["L1", "L2", "L3"])
    assert r.backend == "torch"
    for k, s in enumerate(ref, start=1):
        assert torch.equal(r.outputs[f"L{k}"], s), f"layer {k}"
    assert ref[-1].sum() > 20  # the last layer is active, so the comparison means something


def test_delayed_graph_lags_one_step_per_layer() -> None:
    ws, x = _weights(3), _input(13)
    ref = _module_stack(ws, x)
    r = _graph(ws, same_step=False).run(T, inputs={"L0": x}, record=["L1", "L2", "L3"])
    for k, s in enumerate(ref, start=1):
        assert torch.equal(r.outputs[f"L{k}"][k:], s[:T - k]), f"layer {k}"
        assert r.outputs[f"L{k}"][:k].sum() == 0


def test_same_step_gradients_equal_the_module_stack() -> None:
    ws, x = _weights(4), _input(14)
    g = _graph(ws, same_step=True, learnable=True)
    r = g.run(T, inputs={"L0": x}, record=["L3"])
    readout = torch.linspace(-1, 1, SIZES[-1], dtype=torch.float64)
    (r.outputs["L3"] * readout).sum().backward()
    leaves = [w.clone().requires_grad_(True) for w in ws]
    (_module_stack(leaves, x)[-1] * readout).sum().backward()
    for k, leaf in enumerate(leaves):
        got = g.projection(f"L{k}-L{k + 1}").weight.grad
        assert leaf.grad.abs().sum() > 0
        torch.testing.assert_close(got, leaf.grad, rtol=1e-12, atol=1e-12)


def test_a_cycle_of_same_step_edges_is_refused_by_name() -> None:
    g = Graph(dt=DT)
    for n in ("a", "b", "c"):
        g.add(SpikingRegion(n, 2, "lif"))
    g.connect("a", "b", torch.eye(2), same_step=True)
    g.connect("b", "c", torch.eye(2), same_step=True, name="bc")
    g.connect("c", "a", torch.eye(2), same_step=True, name="ca")
    with pytest.raises(ParameterError, match=r"\['a-b', 'bc', 'ca'\] form a cycle"):
        g.run(3)
    g.projections.pop("ca")
    g.connect("c", "a", torch.eye(2), name="ca")       # a delayed edge closes the cycle
    assert g.step_order() == ["a", "b", "c"]
    g.run(3)


def test_same_step_edges_have_no_delay_and_fall_back_from_the_engine() -> None:
    g = Graph(dt=DT)
    g.add(InputRegion("in", 2))
    g.add(SpikingRegion("E", 2, "lif"))
    with pytest.raises(ParameterError, match="same-step edge has no delay"):
        g.connect("in", "E", torch.eye(2), same_step=True, delay=2)
    g.connect("in", "E", torch.eye(2), same_step=True)
    assert "same-step" in g.engine_reason()
    with pytest.raises(ParameterError, match="same-step"):
        g.run(2, inputs={"in": torch.zeros(2, 1, 2)}, backend="engine")
