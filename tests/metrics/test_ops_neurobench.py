"""Equality of :mod:`aura_snn.metrics.ops` with NeuroBench 2.3 on the same snnTorch model.

Oracle: NeuroBench's own metrics (passed as classes) on an snnTorch network; ours run on
the same network rebuilt from ``aura_snn.neurons.LIF`` with the same weights (mapping
of tests/peers/test_snntorch.py: ``Leaky(beta)`` == ``LIF(tau_from_beta(beta, dt),
input_scaling="direct", reset_at="next_step", detach_reset=True)``).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

snn = pytest.importorskip("snntorch")
nb = pytest.importorskip("neurobench")
from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.static import ConnectionSparsity  # noqa: E402
from neurobench.metrics.workload import (  # noqa: E402
    ActivationSparsity,
    MembraneUpdates,
    SynapticOperations,
)
from neurobench.models import SNNTorchModel  # noqa: E402

from aura_snn.functional.conventions import tau_from_beta  # noqa: E402
from aura_snn.metrics.ops import connection_sparsity, count_ops  # noqa: E402
from aura_snn.neurons import LIF  # noqa: E402

DT, BETA, THR = 1e-3, 0.9, 1.0
B, T, NIN, NH, NOUT = 3, 12, 10, 16, 5


def _nets() -> tuple[nn.Module, nn.Module, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    l1, l2 = nn.Linear(NIN, NH), nn.Linear(NH, NOUT)
    with torch.no_grad():
        l1.weight.copy_(torch.randn(NH, NIN, generator=g))
        l1.weight[torch.rand(NH, NIN, generator=g) < 0.3] = 0.0
        l2.weight.copy_(torch.randn(NOUT, NH, generator=g))
        l2.weight[torch.rand(NOUT, NH, generator=g) < 0.5] = 0.0
    peer = nn.Sequential(l1, snn.Leaky(beta=BETA, threshold=THR, init_hidden=True),
                         l2, snn.Leaky(beta=BETA, threshold=THR, init_hidden=True, output=True))
    m = dict(dt=DT, threshold=THR, input_scaling="direct", reset_at="next_step",
             detach_reset=True)
    tau = tau_from_beta(BETA, DT)
    ours = nn.Sequential(l1, LIF(tau, **m), l2, LIF(tau, **m))
    x = torch.randn(B, T, NIN, generator=g).abs() * 1.5
    x[x < 0.8] = 0.0  # zeros in the real-valued input: effective < dense
    return peer, ours, x


def _neurobench(peer: nn.Module, x: torch.Tensor) -> dict:
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(B)),
                                         batch_size=B)
    bench = Benchmark(SNNTorchModel(peer), loader, [], [],
                      [[ConnectionSparsity], [ActivationSparsity, SynapticOperations,
                                              MembraneUpdates]])
    return bench.run()


def test_counts_equal_neurobench() -> None:
    peer, ours, x = _nets()
    ref = _neurobench(peer, x)
    got = count_ops(ours, x.transpose(0, 1).contiguous())
    syn = ref["SynapticOperations"]
    assert got.per_sample("macs") == pytest.approx(syn["Effective_MACs"], rel=1e-12)
    assert got.per_sample("acs") == pytest.approx(syn["Effective_ACs"], rel=1e-12)
    assert got.per_sample("dense") == pytest.approx(syn["Dense"], rel=1e-12)
    assert got.activation_sparsity == pytest.approx(ref["ActivationSparsity"], rel=1e-12)
    assert connection_sparsity(ours) == pytest.approx(ref["ConnectionSparsity"], rel=1e-12)
    assert got.per_sample("membrane_updates") == pytest.approx(ref["MembraneUpdates"], rel=1e-12)


def test_footprint_equals_neurobench() -> None:
    from neurobench.metrics.static import Footprint

    from aura_snn.metrics.ops import footprint

    peer, _, _ = _nets()
    assert footprint(peer) == Footprint()(SNNTorchModel(peer))


def test_conv2d_effective_by_brute_force() -> None:
    """Oracle: an explicit loop over output positions and kernel taps."""
    g = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(3, 2, 3, 3, generator=g))
        conv.weight[torch.rand(3, 2, 3, 3, generator=g) < 0.4] = 0.0
    x = (torch.rand(2, 2, 5, 5, generator=g) < 0.3).float()  # spikes: ACs
    got = count_ops(nn.Sequential(conv), x, batch_dim=0)
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    eff = dense = 0
    for b in range(2):
        for o in range(3):
            for i in range(5):
                for j in range(5):
                    for c in range(2):
                        for u in range(3):
                            for v in range(3):
                                dense += int(0 <= i + u - 1 < 5 and 0 <= j + v - 1 < 5)
                                eff += int(xp[b, c, i + u, j + v] != 0
                                           and conv.weight[o, c, u, v] != 0)
    assert got.total("acs") == eff and got.total("macs") == 0
    assert got.total("dense") == dense


def _resting_nets() -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """Zero-reset LIFs (reset in the spike's step) with no bias, a weight row of zeros
    and strong drive: resting membranes (0 in, 0 out) and neurons that spike two steps
    running (reset to 0 twice) keep their recorded membrane, which NeuroBench does not
    count as an update. snnTorch twin: ``Leaky(beta, reset_mechanism="zero",
    reset_delay=False)`` is ``LIF(tau_from_beta(beta), input_scaling="direct",
    reset="zero", reset_at="spike")``."""
    g = torch.Generator().manual_seed(3)
    l1, l2 = nn.Linear(NIN, NH, bias=False), nn.Linear(NH, NOUT, bias=False)
    with torch.no_grad():
        l1.weight.copy_(torch.randn(NH, NIN, generator=g).abs() * 0.5)
        l1.weight[:4] = 0.0  # four hidden neurons never leave rest
        l2.weight.copy_(torch.randn(NOUT, NH, generator=g))
    m = dict(dt=DT, threshold=THR, input_scaling="direct", reset="zero", reset_at="spike")
    tau = tau_from_beta(BETA, DT)
    ours = nn.Sequential(l1, LIF(tau, **m), l2, LIF(tau, **m))
    z = dict(beta=BETA, threshold=THR, reset_mechanism="zero", reset_delay=False,
             init_hidden=True)
    peer = nn.Sequential(l1, snn.Leaky(**z), l2, snn.Leaky(**z, output=True))
    x = (torch.rand(B, T, NIN, generator=g) < 0.4).float()
    x[:, :3] = 0.0  # silent first steps: every membrane rests at 0
    return peer, ours, x


@pytest.mark.parametrize("mode", ["changed", "all"])
def test_membrane_updates_modes_against_neurobench(mode: str) -> None:
    """``"changed"`` is NeuroBench's MembraneUpdates exactly; ``"all"`` is every
    neuron-step, ``T * B * n`` (oracle: the arithmetic), and more than NeuroBench's here."""
    peer, ours, x = _resting_nets()
    with torch.no_grad():  # the twin computes what ours does
        assert torch.equal(SNNTorchModel(peer)(x), ours(x.transpose(0, 1)).transpose(0, 1))
    full = _neurobench(peer, x)
    ref = full["MembraneUpdates"]
    got = count_ops(ours, x.transpose(0, 1).contiguous(), membrane_updates=mode)
    # the hidden spikes feed a Linear with no zero weight: counted once, in the neuron's
    # observer, and reused for that Linear's input
    assert got.per_sample("acs") == full["SynapticOperations"]["Effective_ACs"]
    assert got.activation_sparsity == pytest.approx(full["ActivationSparsity"], rel=1e-12)
    if mode == "changed":
        assert got.per_sample("membrane_updates") == ref
    else:
        assert got.per_sample("membrane_updates") == T * (NH + NOUT)
        assert ref < T * (NH + NOUT) - 3 * (NH + NOUT)  # the resting steps at least


def test_membrane_updates_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="membrane_updates"):
        count_ops(nn.Sequential(LIF(0.02, dt=DT)), torch.zeros(2, 1, 3),
                  membrane_updates="some")
