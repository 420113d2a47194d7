"""Peer equality: our ``CubaLIF`` with the Loihi 2 decay mapping against Lava's ``LIF``
(lava-nc 0.10, ``floating_pt`` process model), 1,000 steps, float64.

Lava's floating-point LIF (``lava/proc/lif/models.py``, ``AbstractPyLifModelFloat``)
updates, per step and in this order,

.. math::
    u \\leftarrow u\\,(1 - d_u) + a_\\text{in}, \\qquad
    v \\leftarrow v\\,(1 - d_v) + u + b, \\qquad s = [v > v_\\text{th}], \\qquad
    v \\leftarrow 0 \\text{ where } s

with ``du``/``dv`` fractions in [0, 1]; on Loihi 2 (and in Lava's ``fixed_pt`` model)
they are 12-bit integers ``D`` meaning ``D / 4096``. Mapping under test, from our time
constants (s) to Lava's decays through :mod:`aura_snn.functional.conventions`:

* ``D_u = loihi_decay_from_tau(tau_syn, dt)``, ``D_v = loihi_decay_from_tau(tau_mem, dt)``;
* Lava ``LIF(du=D_u / 4096, dv=D_v / 4096, vth=threshold, bias_mant=0)``, fed ``x[t]``
  at ``a_in`` in step ``t`` (a ``RingBuffer`` source: Lava delivers a step's output to
  its target in the same step);
* ours ``CubaLIF(tau_mem=tau_from_decay(decay_from_loihi(D_v), dt), tau_syn=(same for
  D_u), dt, threshold, reset="zero", v_reset=0, input_scaling="direct",
  order="current_first")``: the 12-bit quantised decays, so the two run the same
  recurrence (our decay factor ``exp(-dt/tau)`` equals ``1 - D/4096`` to an ulp).

What this does not test: Lava's ``fixed_pt`` (bit-accurate Loihi) model, whose integer
state, 6-bit threshold and activation shifts and rounding are a separate mapping
(``tests/hardware/test_lava_compat.py`` only runs it).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from aura_snn import CubaLIF
from aura_snn.functional.conventions import (
    LOIHI_DECAY_SCALE,
    decay_from_loihi,
    loihi_decay_from_tau,
)
from aura_snn.functional.decay import tau_from_decay

pytestmark = [pytest.mark.peers,
              pytest.mark.skipif(importlib.util.find_spec("lava") is None,
                                 reason="lava-nc not installed (make setup installs it)")]

DT = 1e-3  # s
TAU_MEM, TAU_SYN = 20e-3, 5e-3  # s
V_TH = 1.0  # V
T, N = 1000, 256


def _lava_lif(x: np.ndarray, du: float, dv: float) -> tuple[np.ndarray, np.ndarray]:
    """Lava's LIF in ``floating_pt`` fed ``x`` ``[N, T]``; returns (spikes, v) ``[T, N]``."""
    from hardware.lava_compat import import_lava

    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    src = RingBuffer(data=x)
    lif = LIF(shape=(x.shape[0],), du=du, dv=dv, bias_mant=0.0, vth=V_TH)
    src.s_out.connect(lif.a_in)
    mon_v, mon_s = Monitor(), Monitor()
    mon_v.probe(lif.v, x.shape[1])
    mon_s.probe(lif.s_out, x.shape[1])
    try:
        lif.run(condition=RunSteps(num_steps=x.shape[1]),
                run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        v = mon_v.get_data()[lif.name]["v"]
        s = mon_s.get_data()[lif.name]["s_out"]
    finally:
        lif.stop()
    return np.asarray(s, dtype=np.float64), np.asarray(v, dtype=np.float64)


def test_lava_float_lif_matches_cubalif_with_loihi_decays(build64, assert_same_trains):
    d_u, d_v = loihi_decay_from_tau(TAU_SYN, DT), loihi_decay_from_tau(TAU_MEM, DT)
    assert (d_u, d_v) == (742, 200)  # 4096 (1 - e^{-dt/tau}) = 742.48, 199.76, rounded
    rng = np.random.default_rng(4)
    # steady state v = x / (D_u D_v / 4096^2) ~ 113 x: a mean drive of 0.015 V per step
    x = rng.random((N, T)) * 0.03
    s_peer, v_peer = _lava_lif(x, d_u / LOIHI_DECAY_SCALE, d_v / LOIHI_DECAY_SCALE)
    ours = build64(CubaLIF, tau_mem=tau_from_decay(decay_from_loihi(d_v), DT),
                   tau_syn=tau_from_decay(decay_from_loihi(d_u), DT), dt=DT, threshold=V_TH,
                   reset="zero", v_reset=0.0, input_scaling="direct", order="current_first")
    out = ours.run(torch.from_numpy(x.T.copy()).unsqueeze(1), record_v=True)  # [T, 1, N]
    assert_same_trains(out.spikes[:, 0], out.v[:, 0], torch.from_numpy(s_peer),
                       torch.from_numpy(v_peer))
