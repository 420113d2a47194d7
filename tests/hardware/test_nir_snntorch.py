"""NIR interchange with snnTorch 1.0.0 (the oracle: snnTorch's own forward pass).

1. An snnTorch model exported by ``snntorch.export_to_nir`` and imported here spikes
   exactly as snnTorch's forward (float64, random input, in memory and through a file).
2. Our model exported here and imported by ``snntorch.import_from_nir`` spikes exactly
   as ours.
3. snnTorch's deviations from the NIR specification, pinned as they behave in 1.0.0:

* its export writes a subtract-reset or delayed-reset ``Leaky`` as the same NIR ``LIF``
  as a reset-to-zero one (NIR's LIF resets to ``v_reset``): the reset mode is lost;
* its import turns NIR ``IF`` (``dv/dt = R I``, no leak) into ``Leaky(beta=0.9)`` with
  reset by subtraction (a leak of 10 % per step, not reset to ``v_reset``);
* its ``CubaLIF`` import rescales the threshold by ``w_in dt / tau_syn`` instead of the
  input, and asserts ``r == tau_mem / dt`` rather than scaling by ``r``; its ``LIF``
  import likewise divides the threshold by ``r dt / tau`` and so refuses per-neuron
  ``tau`` unless ``r = tau / dt`` (our ``input_scaling="direct"``);
* it fixes ``dt = 1e-4`` s in both directions.

snnTorch's spike functions return float32 whatever the input; the models here use a
Heaviside with the same forward (``(x > 0)``) that keeps float64, so the comparison
runs in float64 throughout.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.neurons import LIF, CubaLIF
from hardware.nir import from_nir, to_nir, write

snn = pytest.importorskip("snntorch")
pytest.importorskip("nir")
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402

pytestmark = pytest.mark.peers
DT = 1e-4  # snnTorch's fixed NIR step


def heaviside(x: torch.Tensor) -> torch.Tensor:
    return (x > 0).to(x.dtype)


def snn_model(reset: str = "zero", delay: bool = False) -> torch.nn.Sequential:
    torch.manual_seed(1)
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        try:
            return torch.nn.Sequential(
                torch.nn.Linear(6, 5),
                snn.Leaky(beta=torch.full((5,), 0.8), threshold=torch.ones(5),
                          spike_grad=heaviside, init_hidden=True, reset_mechanism=reset,
                          reset_delay=delay),
                torch.nn.Linear(5, 4),
                snn.Synaptic(alpha=torch.full((4,), 0.7), beta=torch.full((4,), 0.9),
                             threshold=torch.full((4,), 0.5), spike_grad=heaviside,
                             init_hidden=True, output=True, reset_mechanism="zero",
                             reset_delay=False))
        finally:
            torch.set_default_dtype(torch.float32)


def snn_forward(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = []
    for t in range(x.shape[0]):
        h = x[t]
        for layer in net:
            h = layer(h)
            h = h[0] if isinstance(h, tuple) else h
        out.append(h)
    return torch.stack(out)


def export_snn(net: torch.nn.Module) -> object:
    return export_to_nir(net, torch.zeros(1, 6, dtype=torch.float64), ignore_dims=[0])


def test_snntorch_export_imported_here_spikes_as_snntorch(tmp_path) -> None:
    net = snn_model()
    x = torch.rand(120, 3, 6, dtype=torch.float64) * 2.0
    graph = export_snn(net)
    ref = snn_forward(net, x)
    ours = from_nir(graph, dt=DT, dtype=torch.float64)(x)
    assert 0.05 < float(ref.mean()) < 0.6          # a comparison with spikes in it
    assert torch.equal(ours, ref)                  # 120 x 3 x 4 = 1440 spike slots
    write(tmp_path / "snn.nir", graph)
    assert torch.equal(from_nir(tmp_path / "snn.nir", dt=DT, dtype=torch.float64)(x), ref)


def _use_heaviside(module: torch.nn.Module) -> torch.nn.Module:
    for m in module.modules():
        if isinstance(m, snn.SpikingNeuron):
            m.spike_grad = heaviside
    return module.double()


def snn_import_forward(graph: object, x: torch.Tensor) -> torch.Tensor:
    m = _use_heaviside(import_from_nir(graph))
    out, state = [], None
    for t in range(x.shape[0]):
        y, state = m(x[t], state)
        out.append(y)
    return torch.stack(out)


def ours_model() -> torch.nn.Sequential:
    torch.manual_seed(2)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 5), LIF(torch.linspace(4e-4, 9e-4, 5), dt=DT, reset="zero",
                                   integration="exact", input_scaling="direct"),
        torch.nn.Linear(5, 4), CubaLIF(8e-4, 3e-4, dt=DT, reset="zero", threshold=0.7,
                                       input_scaling="direct")).double()


def test_our_export_imported_by_snntorch_spikes_as_ours() -> None:
    net = ours_model()
    x = torch.rand(150, 3, 6, dtype=torch.float64) * 3.0
    ref = net(x)
    got = snn_import_forward(to_nir(net), x)
    assert 0.05 < float(ref.mean()) < 0.6
    assert torch.equal(got, ref)                   # 150 x 3 x 4 = 1800 spike slots


def test_deviation_snntorch_export_loses_the_reset_mechanism() -> None:
    zero, sub = export_snn(snn_model("zero")), export_snn(snn_model("subtract", delay=True))
    for key in ("tau", "r", "v_threshold", "v_reset", "v_leak"):
        assert np.array_equal(getattr(zero.nodes["1"], key), getattr(sub.nodes["1"], key))
    x = torch.rand(120, 3, 6, dtype=torch.float64) * 2.0
    assert not torch.equal(snn_forward(snn_model("subtract", delay=True), x),
                           from_nir(sub, dt=DT, dtype=torch.float64)(x))


def test_deviation_snntorch_imports_if_as_a_leaky_with_beta_09_and_subtract_reset() -> None:
    nir = pytest.importorskip("nir")
    g = nir.NIRGraph.from_list(nir.IF(r=np.ones(3), v_threshold=np.ones(3),
                                      v_reset=np.zeros(3)))
    leaky = next(m for m in import_from_nir(g).modules() if isinstance(m, snn.Leaky))
    assert float(leaky.beta) == pytest.approx(0.9)
    assert leaky.reset_mechanism == "subtract"


def test_deviation_snntorch_cubalif_scales_threshold_and_requires_r() -> None:
    nir = pytest.importorskip("nir")
    n = 3
    tau_syn, tau_mem = np.full(n, 5e-4), np.full(n, 1e-3)
    node = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / DT, v_leak=np.zeros(n),
                       v_threshold=np.ones(n), w_in=2 * tau_syn / DT)
    syn = next(m for m in import_from_nir(nir.NIRGraph.from_list(node)).modules()
               if isinstance(m, snn.Synaptic))
    assert float(syn.threshold) == pytest.approx(0.5)  # 1 / (w_in dt / tau_syn)
    ode = torch.nn.Sequential(torch.nn.Linear(2, n),
                              CubaLIF(1e-3, 5e-4, dt=DT, reset="zero")).double()
    with pytest.raises(AssertionError, match="r not supported"):
        import_from_nir(to_nir(ode))               # our r = 1, snnTorch wants tau_mem/dt
