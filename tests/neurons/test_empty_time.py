"""Inputs with T = 0 steps: empty outputs of the right shape and the initial state, for
every neuron module and backend, the reference loop and the fused kernels; a graph run
of 0 steps is refused naming ``steps``."""

from __future__ import annotations

import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional import cuba, lif, loop
from aura_snn.kernels import cuba_multistep, lif_multistep
from aura_snn.neurons import ALIF, LIF, CubaLIF

MODULES = [(LIF, "auto"), (LIF, "reference"), (CubaLIF, "auto"), (CubaLIF, "reference"),
           (ALIF, "auto")]


@pytest.mark.parametrize(("cls", "backend"), MODULES)
def test_module_with_no_steps(cls, backend):
    m = cls(backend=backend, v_reset=0.0, v_leak=0.1)
    x = torch.zeros(0, 3, 4, dtype=torch.float64, requires_grad=True)
    out = m.run(x, record_v=True)
    assert out.spikes.shape == (0, 3, 4) and out.v.shape == (0, 3, 4)
    rest = m.initial_state(torch.zeros(3, 4, dtype=torch.float64))
    for got, want in zip(out.state, rest, strict=True):
        assert torch.equal(got, want)
    assert torch.equal(out.state.v, torch.full((3, 4), 0.1, dtype=torch.float64))  # v_leak
    out.spikes.sum().backward()                      # a loss over no steps: zero gradient
    assert x.grad.shape == (0, 3, 4)
    # a given state comes back unchanged, and a later run continues from it
    y = torch.rand(6, 3, 4, dtype=torch.float64) * 3
    first = m.run(y[:2])
    empty = m.run(y[:0], first.state)
    assert all(torch.equal(a, b) for a, b in zip(empty.state, first.state, strict=True))
    assert torch.equal(m.run(y[2:], empty.state).spikes, m(y)[2:])


@pytest.mark.parametrize(("kernel", "mod", "params"),
                         [(lif_multistep, lif, lif.LIFParameters(tau_mem=0.02)),
                          (cuba_multistep, cuba, cuba.CubaLIFParameters(tau_mem=0.02))])
def test_fused_kernels_and_reference_loop_with_no_steps(kernel, mod, params):
    x = torch.zeros(0, 2, 5)
    state = mod.initial_state(torch.ones(2, 5), params)
    state = type(state)(*(t + 0.25 for t in state))
    for out in (kernel(x, state, params, 1e-3, record_v=True),
                loop.run(mod.step, x, state, params, 1e-3, record_v=True)):
        assert out.spikes.shape == (0, 2, 5) and out.v.shape == (0, 2, 5)
        assert all(torch.equal(a, b) for a, b in zip(out.state, state, strict=True))
    fresh = kernel(x, None, params, 1e-3)
    assert torch.equal(fresh.state.v, torch.zeros(2, 5))


def test_graph_run_of_zero_steps_is_refused():
    from aura_snn.functional.lif import LIFParameters
    from aura_snn.graph import Graph, PoissonRegion, SpikingRegion

    g = Graph(dt=1e-3, seed=0)
    g.add(PoissonRegion("p", 5, rate=10.0))
    g.add(SpikingRegion("L", 4, "lif", LIFParameters(tau_mem=0.01)))
    g.connect("p", "L", torch.full((5, 4), 0.5))
    for backend in ("torch", "engine"):
        with pytest.raises(ParameterError, match="steps must be >= 1, got 0"):
            g.run(0, backend=backend)
