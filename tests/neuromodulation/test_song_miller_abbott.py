"""Song, Miller & Abbott (2000) with the conductance-based LIF: STDP makes the weights bimodal.

The experiment of Brian2's ``examples/synapses/STDP.py``: 1,000 Poisson inputs at 15 Hz
onto a conductance-based integrate-and-fire neuron (``lif_cond``: tau_m = 10 ms,
E_e = 0 mV, v_t = -54 mV, v_r = -60 mV, E_l = -74 mV, tau_e = 5 ms), additive all-to-all
pair STDP (tau_pre = tau_post = 20 ms, A_- = 1.05 A_+, A_+ = 0.01 gmax), weights uniform
in [0, gmax] at the start and clipped to it, 100 s at dt = 0.1 ms. Here the drive is
``ge * (Ee - v)``, the paper's conductance, in both simulators (the shipped example
writes ``Ee - vr``). Four postsynaptic neurons share the inputs, each with its own
1,000 synapses, so that each simulator gives four samples of the final distribution.

Oracles: bimodality measured on the weights (against the uniform start: more than 15 %
within 0.1 gmax of each bound, under 30 % between 0.3 and 0.7 gmax), and Brian2 (numpy
target) running the same model: the pooled final histogram of ours is within the stated
total-variation distance of Brian2's, and that distance is of the order of the spread
between neurons of one simulator. Poisson streams differ between the simulators, so only
distributions are compared. Slow: about 5 minutes for
ours (torch stepper, one core) and 2 for Brian2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from aura_snn.functional.conductance import CondLIFParameters
from aura_snn.graph import Graph, PoissonRegion, SpikingRegion
from neuromodulation.stdp import PairSTDP, PairSTDPParameters

DT, N, N_POST, RATE, GMAX = 1e-4, 1000, 4, 15.0, 0.01
TAUM, TAUE, EE, VT, VR, EL = 10e-3, 5e-3, 0.0, -54e-3, -60e-3, -74e-3
BINS = np.linspace(0.0, 1.0, 21)


def run_ours(seconds: float, seed: int = 1234) -> tuple[np.ndarray, int]:
    """Final weights / gmax ``[N, N_POST]`` and the number of postsynaptic spikes."""
    g = Graph(dt=DT, seed=seed).double()
    g.add(PoissonRegion("in", N, RATE, seed=seed))
    g.add(SpikingRegion("n", N_POST, "lif_cond", CondLIFParameters(
        tau_mem=TAUM, receptors=("exc",), tau_syn=(TAUE,), e_rev=(EE,), v_leak=EL,
        threshold=VT, v_reset=VR, integration="euler")))
    w0 = torch.rand(N, N_POST, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed)) * GMAX
    p = g.connect("in", "n", w0, receptor="exc", name="syn")
    p.add_rule(PairSTDP(PairSTDPParameters(a_plus=0.01 * GMAX, a_minus=0.0105 * GMAX,
                                           tau_plus=20e-3, tau_minus=20e-3, w_min=0.0,
                                           w_max=GMAX)))
    mon = g.monitor("n")
    with torch.no_grad():
        g.run(round(seconds / DT))
    return p.effective_weight().detach().numpy() / GMAX, int(mon.data()["t"].size)


def brian2_network(seed: int = 1234, target: str = "numpy") -> tuple[Any, Any, Any]:
    """The same model in Brian2 on code-generation ``target``, not yet run:
    ``(Network, Synapses, SpikeMonitor)``."""
    b2 = pytest.importorskip("brian2")
    from brian2 import (
        Network,
        NeuronGroup,
        PoissonGroup,
        SpikeMonitor,
        Synapses,
        defaultclock,
        prefs,
        second,
        start_scope,
        volt,
    )
    prefs.codegen.target = target
    start_scope()
    b2.seed(seed)
    defaultclock.dt = DT * second
    ns = {"taum": TAUM * second, "taue": TAUE * second, "Ee": EE * volt, "vt": VT * volt,
          "vr": VR * volt, "El": EL * volt, "taupre": 20e-3 * second,
          "taupost": 20e-3 * second, "gmax": GMAX, "dApre": 0.01 * GMAX,
          "dApost": -0.0105 * GMAX}
    inp = PoissonGroup(N, RATE * b2.Hz)
    neurons = NeuronGroup(N_POST, """dv/dt = (ge * (Ee - v) + El - v) / taum : volt
                                     dge/dt = -ge / taue : 1""",
                          threshold="v > vt", reset="v = vr", method="euler", namespace=ns)
    neurons.v = EL * volt
    S = Synapses(inp, neurons, """w : 1
                 dApre/dt = -Apre / taupre : 1 (event-driven)
                 dApost/dt = -Apost / taupost : 1 (event-driven)""",
                 on_pre="""ge += w
                 Apre += dApre
                 w = clip(w + Apost, 0, gmax)""",
                 on_post="""Apost += dApost
                 w = clip(w + Apre, 0, gmax)""", namespace=ns)
    S.connect()
    S.w = np.random.default_rng(seed).random(N * N_POST) * GMAX
    spikes = SpikeMonitor(neurons)
    return Network(inp, neurons, S, spikes), S, spikes


def brian2_weights(S: Any) -> np.ndarray:
    """Final weights / gmax ``[N, N_POST]`` of the Brian2 synapses ``S``."""
    w = np.zeros((N, N_POST))
    w[np.asarray(S.i), np.asarray(S.j)] = np.asarray(S.w) / GMAX
    return w


def run_brian2(seconds: float, seed: int = 1234) -> tuple[np.ndarray, int]:
    """The same model in Brian2 (numpy target): final weights / gmax ``[N, N_POST]``."""
    from brian2 import second

    net, S, spikes = brian2_network(seed)
    net.run(seconds * second)
    return brian2_weights(S), int(spikes.num_spikes)


def histogram(w: np.ndarray) -> np.ndarray:
    """Fraction of weights in each of 20 bins of w/gmax over [0, 1]."""
    h, _ = np.histogram(np.clip(w, 0.0, 1.0), BINS)
    return h / h.sum()


def tv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two 20-bin histograms of weights (0..1)."""
    return 0.5 * float(np.abs(histogram(a) - histogram(b)).sum())


def bimodality(w: np.ndarray) -> tuple[float, float, float]:
    """Fractions of weights below 0.1 gmax, above 0.9 gmax, and between 0.3 and 0.7."""
    return float((w < 0.1).mean()), float((w > 0.9).mean()), \
        float(((w > 0.3) & (w < 0.7)).mean())


@pytest.mark.slow
def test_song_miller_abbott_weights_become_bimodal_as_in_brian2() -> None:
    ours, n_ours = run_ours(100.0)
    ref, n_ref = run_brian2(100.0)
    low, high, mid = bimodality(ours)
    b_low, b_high, b_mid = bimodality(ref)
    print(f"\nours: {low:.1%} < 0.1 gmax, {high:.1%} > 0.9 gmax, {mid:.1%} in 0.3-0.7, "
          f"mean {ours.mean():.3f}, {n_ours} spikes; Brian2: {b_low:.1%}, {b_high:.1%}, "
          f"{b_mid:.1%}, mean {ref.mean():.3f}, {n_ref} spikes")
    spread = max(tv_distance(ours[:, i], ours[:, j]) for i in range(N_POST)
                 for j in range(i))
    spread_b2 = max(tv_distance(ref[:, i], ref[:, j]) for i in range(N_POST) for j in range(i))
    d = tv_distance(ours, ref)
    print(f"TV(ours, Brian2) = {d:.3f}; largest TV between two neurons: ours {spread:.3f}, "
          f"Brian2 {spread_b2:.3f}")
    # the uniform start has 10 % in each tail and 40 % in the middle
    for frac_low, frac_high, frac_mid in ((low, high, mid), (b_low, b_high, b_mid)):
        assert frac_low > 0.15 and frac_high > 0.15 and frac_mid < 0.30
    assert d < 0.1
    assert d < max(spread, spread_b2) + 0.05
