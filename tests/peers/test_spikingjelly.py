"""Peer equality: our ``LIF`` against SpikingJelly 2.0 ``LIFNode`` (multi-step, float64).

Mapping under test (SpikingJelly counts ``tau`` in steps, integrates with Euler and
leaks towards ``v_reset``; ``tau_from_tau_steps`` from
:mod:`aura_snn.functional.conventions`):

* ``LIFNode(tau, decay_input=True, v_threshold, v_reset=r, surrogate_function=
  ATan(alpha), detach_reset=d, step_mode="m")`` == ``LIF(tau_mem=tau_from_tau_steps(tau,
  dt), dt=dt, threshold=v_threshold, v_leak=r, v_reset=r, integration="euler",
  reset="zero", surrogate="arctan", slope=alpha, detach_reset=d)``;
* ``v_reset=None`` (soft reset; the leak then goes to 0) == the same with
  ``reset="subtract"``, ``v_leak=0``.

SpikingJelly fires at ``h >= v_threshold``, we at ``u > threshold``: the two differ
only when the membrane lands exactly on the threshold, which random float64 input
does not produce. In float64 SpikingJelly runs its Torch reference loop (its
hand-written CPU op takes float32 only), so gradients here are autograd's.
"""

from __future__ import annotations

import pytest
import torch

sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron",
                                reason="peer oracle: pip install spikingjelly")
sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate",
                                   reason="peer oracle: spikingjelly surrogates")

from aura_snn import LIF  # noqa: E402
from aura_snn.functional.conventions import tau_from_tau_steps  # noqa: E402

pytestmark = pytest.mark.peers

DT = 1e-3  # s
TAU_STEPS = 8.0  # SpikingJelly's tau (steps) = 8 ms at DT
V_TH, ALPHA = 1.0, 2.0
T, B, N = 1000, 4, 128
BACKENDS = ["auto", "reference"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("v_reset", [-0.1, None])
def test_lif_node_matches_lif(v_reset, detach_reset, backend, build64, assert_same_trains):
    x = (torch.rand(T, B, N, dtype=torch.float64) * 2.4).requires_grad_()
    node = sj_neuron.LIFNode(tau=TAU_STEPS, decay_input=True, v_threshold=V_TH,
                             v_reset=v_reset, surrogate_function=sj_surrogate.ATan(ALPHA),
                             detach_reset=detach_reset, step_mode="m", store_v_seq=True)
    s_peer = node(x)
    v_peer = node.v_seq
    leak = 0.0 if v_reset is None else v_reset
    ours = build64(LIF, tau_from_tau_steps(TAU_STEPS, DT), dt=DT, threshold=V_TH,
                   v_leak=leak, v_reset=leak, integration="euler",
                   reset="subtract" if v_reset is None else "zero", surrogate="arctan",
                   slope=ALPHA, detach_reset=detach_reset, backend=backend)
    out = ours.run(x, record_v=True)
    assert_same_trains(out.spikes, out.v.detach(), s_peer, v_peer.detach())

    w_s = torch.randn(T, B, N, dtype=torch.float64)
    (g_peer,) = torch.autograd.grad((s_peer * w_s).sum() + v_peer.sum(), x)
    (g_ours,) = torch.autograd.grad((out.spikes * w_s).sum() + out.v.sum(), x)
    assert float((g_ours - g_peer).abs().max()) <= 1e-10
