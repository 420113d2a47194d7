"""NIR interchange with Norse 1.1 (the oracle: Norse's own modules and forward).

Our model exported here and imported by ``norse.torch.from_nir`` spikes exactly as
ours (float64; parameters chosen dyadic because Norse stores every NIR parameter as
float32, so ``tau = 2**-6`` s, ``dt = 2**-10`` s and weights on a 2**-8 grid lose
nothing). Norse's deviations from the NIR specification, pinned as Norse 1.1 behaves:

* ``norse.torch.to_nir`` writes ``tau = dt / tau_mem_inv``, i.e. the time constant
  multiplied by ``dt`` (``tau_mem_inv`` is already an inverse time in 1/s);
* ``from_nir`` ignores a ``LIF`` node's ``v_reset`` (resets to 0) and its ``r`` (warns);
* ``from_nir`` runs ``IF`` as :math:`v \\leftarrow v + x`, ignoring ``r`` and ``dt``
  (NIR: :math:`dv/dt = R I`, i.e. :math:`v \\leftarrow v + \\Delta t\\,R\\,x` per step).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.neurons import LIF, CubaLIF
from hardware.nir import from_nir, to_nir

norse = pytest.importorskip("norse.torch")
nir = pytest.importorskip("nir")
pytestmark = [pytest.mark.peers,
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]
DT = 2.0 ** -10


def norse_forward(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    module = module.double()
    out, state = [], None
    for t in range(x.shape[0]):
        y, state = module(x[t], state)
        out.append(y)
    return torch.stack(out)


def dyadic(layer: torch.nn.Linear, scale: float, bias: float) -> torch.nn.Linear:
    with torch.no_grad():
        layer.weight.copy_(torch.round(layer.weight * scale * 256) / 256)
        layer.bias.copy_(torch.round(layer.bias * 256) / 256 + bias)
    return layer


def test_our_export_imported_by_norse_spikes_as_ours() -> None:
    torch.manual_seed(5)
    net = torch.nn.Sequential(
        dyadic(torch.nn.Linear(6, 5), 3.0, 0.5), LIF(2.0 ** -6, dt=DT, reset="zero",
                                                integration="euler"),
        dyadic(torch.nn.Linear(5, 4), 2.0, 0.25), CubaLIF(2.0 ** -6, 2.0 ** -8, dt=DT, reset="zero",
                                                    integration="euler", threshold=0.5),
    ).double()
    x = torch.rand(200, 3, 6, dtype=torch.float64) * 2.0
    ref = net(x)
    got = norse_forward(norse.from_nir(to_nir(net), dt=DT), x)
    assert 0.05 < float(ref.mean()) < 0.6
    assert torch.equal(got, ref)                      # 200 x 3 x 4 = 2400 spike slots


def test_deviation_norse_to_nir_multiplies_tau_by_dt() -> None:
    tau, dt = 2e-2, 1e-3
    cell = norse.LIFBoxCell(norse.LIFBoxParameters(
        tau_mem_inv=torch.full((3,), 1 / tau), v_leak=torch.zeros(3), v_th=torch.ones(3)))
    g = norse.to_nir(torch.nn.Sequential(torch.nn.Linear(2, 3), cell), torch.zeros(1, 2),
                     dt=dt)
    node = next(n for n in g.nodes.values() if isinstance(n, nir.LIF))
    assert np.allclose(node.tau, tau * dt)            # NIR wants tau itself (2e-2 s)


def test_deviation_norse_from_nir_drops_v_reset_and_r_of_lif() -> None:
    n = 3
    node = nir.LIF(tau=np.full(n, 2e-2), r=np.full(n, 2.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n), v_reset=np.full(n, 0.3))
    cell = next(m for m in norse.from_nir(nir.NIRGraph.from_list(node), dt=1e-3).modules()
                if isinstance(m, norse.LIFBoxCell))
    assert float(cell.p.v_reset) == 0.0               # NIR says 0.3
    x = torch.full((30, 1, n), 3.0, dtype=torch.float64)
    ours = from_nir(node, dt=1e-3, dtype=torch.float64)(x)
    theirs = norse_forward(norse.from_nir(nir.NIRGraph.from_list(node), dt=1e-3), x)
    assert not torch.equal(ours, theirs)              # r = 2 doubles our drive, not Norse's


def test_deviation_norse_runs_if_as_v_plus_x() -> None:
    n = 2
    node = nir.IF(r=np.full(n, 5.0), v_threshold=np.ones(n), v_reset=np.zeros(n))
    x = torch.full((12, 1, n), 0.3, dtype=torch.float64)
    theirs = norse_forward(norse.from_nir(nir.NIRGraph.from_list(node), dt=1e-3), x)
    assert theirs[:, 0, 0].nonzero().flatten().tolist() == [3, 7, 11]  # 0.3 per step
    ours = from_nir(node, dt=1e-3, dtype=torch.float64)(x)            # 1.5e-3 per step
    assert float(ours.sum()) == 0.0
    same = nir.IF(r=np.full(n, 1e3), v_threshold=np.ones(n), v_reset=np.zeros(n))
    assert torch.equal(from_nir(same, dt=1e-3, dtype=torch.float64)(x), theirs)
