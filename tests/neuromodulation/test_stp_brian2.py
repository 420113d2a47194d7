"""Tsodyks-Markram short-term plasticity against Brian2: the efficacy of every spike of
Poisson trains, through a graph, equal to Brian2's ``Synapses`` in both of its
documented forms, to 1e-12 (float64):

* the event-driven form of Brian2's Stimberg et al. (2018) COBA example
  (``u += U (1 - u); r = u x; x -= r``, u decaying to 0, x recovering to 1);
* the user guide's explicit ``lastupdate`` form (u relaxing to U, transmit ``w u x``,
  then ``x *= 1 - u``, ``u += U (1 - u)``);
* depression only (``tau_f = 0``: every spike uses U).

A batch of two samples is checked against Brian2 neurons carrying each sample's train.
Brian2 runs with the ``numpy`` target (no compiler).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion
from neuromodulation.stp import TsodyksMarkram, TsodyksMarkramParameters

b2 = pytest.importorskip("brian2", reason="Brian2 is the reference for short-term "
                                          "plasticity (pip install 'aura-snn[peers]')")
pytestmark = pytest.mark.peers

DT = 1e-3
STEPS, N, B = 3000, 6, 2
PARAMS = {"depressing": TsodyksMarkramParameters(U=0.5, tau_f=20e-3, tau_d=200e-3),
          "facilitating": TsodyksMarkramParameters(U=0.15, tau_f=750e-3, tau_d=50e-3),
          "depression_only": TsodyksMarkramParameters(U=0.4, tau_f=0.0, tau_d=120e-3)}


def _rasters() -> np.ndarray:
    """``[STEPS, B, N]`` Poisson trains at 5-60 Hz (a different seed per sample)."""
    rates = np.linspace(5.0, 60.0, N)
    return np.stack([(np.random.default_rng(40 + b).random((STEPS, N)) < rates * DT)
                     for b in range(B)], axis=1).astype(np.float64)


def _brian2(p: TsodyksMarkramParameters, raster: np.ndarray, form: str) -> np.ndarray:
    """Brian2's efficacy ``r`` after every step ``[STEPS, n]`` for a raster ``[STEPS, n]``
    (one synapse per generator)."""
    from brian2 import (
        Network,
        NeuronGroup,
        SpikeGeneratorGroup,
        StateMonitor,
        Synapses,
        defaultclock,
        prefs,
        second,
        start_scope,
    )

    prefs.codegen.target = "numpy"
    start_scope()
    defaultclock.dt = DT * second
    t, i = np.nonzero(raster)
    n = raster.shape[1]
    G = SpikeGeneratorGroup(n, i, t * DT * second)
    P = NeuronGroup(n, "g : 1")
    ns = {"U": p.U, "tau_f": p.tau_f * second, "tau_d": p.tau_d * second}
    if p.tau_f == 0:
        model = "dx/dt = (1 - x) / tau_d : 1 (event-driven)\nr : 1"
        on_pre = "r = U * x\nx -= r\ng_post += r"
    elif form == "event-driven":
        model = """du/dt = -u / tau_f : 1 (event-driven)
                   dx/dt = (1 - x) / tau_d : 1 (event-driven)
                   r : 1"""
        on_pre = "u += U * (1 - u)\nr = u * x\nx -= r\ng_post += r"
    else:
        model = "u : 1\nx : 1\nr : 1\nlastupdate : second"
        on_pre = """u = U + (u - U) * exp(-(t - lastupdate) / tau_f)
                    x = 1 + (x - 1) * exp(-(t - lastupdate) / tau_d)
                    r = u * x
                    g_post += r
                    x *= (1 - u)
                    u += U * (1 - u)
                    lastupdate = t"""
    S = Synapses(G, P, model, on_pre=on_pre, namespace=ns)
    S.connect(j="i")
    S.x = 1.0
    if form == "user-guide" and p.tau_f > 0:
        S.u = p.U                                    # at rest u = U in this form
    mon = StateMonitor(S, "r", record=True, when="end")
    Network(G, P, S, mon).run(STEPS * DT * second)
    return np.asarray(mon.r).T


def _ours(p: TsodyksMarkramParameters, x: np.ndarray, w: float) -> np.ndarray:
    """What reaches ``post`` in every step ``[STEPS - 1, B, N]``: ``v[t+1] - a v[t]`` of
    a quiet membrane (direct input), one-to-one weights ``w``."""
    lif = LIFParameters(threshold=1e6, input_scaling="direct", tau_mem=5e-3)
    g = Graph(dt=DT).double()
    g.add(InputRegion("in", N))
    g.add(SpikingRegion("post", N, "lif", lif))
    g.connect("in", "post", torch.eye(N, dtype=torch.float64) * w, synapse=TsodyksMarkram(p))
    mon = g.monitor("post", "v")
    g.run(STEPS, inputs={"in": torch.tensor(x)})
    v = np.asarray(mon.data()["values"])
    return v[1:] - math.exp(-DT / lif.tau_mem) * v[:-1]


@pytest.mark.parametrize("name, form", [("depressing", "event-driven"),
                                        ("depressing", "user-guide"),
                                        ("facilitating", "event-driven"),
                                        ("facilitating", "user-guide"),
                                        ("depression_only", "event-driven")])
def test_efficacies_equal_brian2(name: str, form: str) -> None:
    p, w = PARAMS[name], 0.625
    x = _rasters()
    ref = _brian2(p, x.reshape(STEPS, B * N), form).reshape(STEPS, B, N)
    received = _ours(p, x, w)
    spiked = x[:-1] > 0                              # emitted at t, received at t + 1
    ours = received[spiked] / w
    theirs = ref[:-1][spiked]
    err = np.abs(ours - theirs).max()
    spread = theirs.max() - theirs.min()
    print(f"\n[{name}, {form}] {spiked.sum()} spikes, efficacies {theirs.min():.3f}.."
          f"{theirs.max():.3f}; max |e - e_brian2| = {err:.1e}")
    assert spread > 0.1                              # the trains change the efficacy
    assert err < 1e-12
    assert np.abs(received[~spiked]).max() < 1e-15   # nothing arrives without a spike
