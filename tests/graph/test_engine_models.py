"""The compiled engine runs conductance-based (``lif_cond``) and Izhikevich regions itself.

These models are outside the compiled LIF family: each gives the engine its per-neuron
scalar step (``kernel_step``, beside its torch ``step``), which
:mod:`aura_snn.graph._kernels_models` compiles.

Oracle: the torch stepper, which runs the models' torch ``step`` (each checked against
Brian2 in ``tests/functional``) and the rules of :mod:`neuromodulation` (checked against
Brian2 in ``tests/neuromodulation``). Float64 throughout. Spikes must be identical.
Weights of plastic projections: to ``1e-12`` of their range, the bound of
``tests/graph/test_engine_plasticity.py`` (the engine reads an STDP trace as
:math:`x a^k`, torch multiplies by :math:`a` every step; measured here a few 1e-16).
State: the steps do the same operations in the same order; what differs is the order
in which the synaptic inputs of one step are summed (one by one in the engine, a matrix
product in torch), the plastic weights' last bits, and ``exp`` (numba's libm vs torch's)
in exponential Euler. ``lif_cond`` potentials then agree to ``1e-12`` V; Izhikevich
ones to ``V_TOL`` (its upstroke amplifies the last bits). Conductances, refractory
counts and recovery variables are compared relative to their scale.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.functional.conductance import CondLIFParameters
from aura_snn.functional.izhikevich import IzhikevichParameters
from aura_snn.graph import Graph, PoissonRegion, SpikingRegion
from neuromodulation.dopamine import DopamineSTDP
from neuromodulation.stdp import PairSTDP, PairSTDPParameters

TOL = 1e-12
GMAX = 0.03
#: Potentials (V): lif_cond, Izhikevich. The Izhikevich upstroke amplifies a difference
#: by about :math:`1 + \Delta t\,(2 k_2 v + k_1)` per step (up to ~3x at 30 mV,
#: dt = 0.5 ms) until the reset erases it: the ~1e-16 relative weight differences and
#: the summation order reach ~3e-11 V (measured); 1e-9 V is 1e-6 of the 1 mV scale.
V_TOL = (TOL, 1e-9)


def _cond_graph(integration: str, two_receptors: bool) -> Graph:
    """Song-Miller-Abbott's neuron (smaller): Poisson inputs onto ``lif_cond`` with
    additive, clipped STDP; optionally an inhibitory receptor, a refractory period and a
    per-neuron threshold."""
    g = Graph(dt=1e-4, seed=7).double()
    g.add(PoissonRegion("in", 300, 20.0, seed=7))
    rec = ("exc", "inh") if two_receptors else ("exc",)
    g.add(SpikingRegion("n", 5, "lif_cond", CondLIFParameters(
        tau_mem=10e-3, receptors=rec, tau_syn=(5e-3, 8e-3)[:len(rec)],
        e_rev=(0.0, -80e-3)[:len(rec)], v_leak=-74e-3, v_reset=-60e-3,
        threshold=(torch.linspace(-55e-3, -53e-3, 5, dtype=torch.float64) if two_receptors
                   else -54e-3),
        refractory=2e-3 if two_receptors else 0.0, integration=integration)))
    w0 = torch.rand(300, 5, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(7)) * GMAX
    p = g.connect("in", "n", w0, receptor="exc", name="syn")
    p.add_rule(PairSTDP(PairSTDPParameters(a_plus=0.03 * GMAX, a_minus=0.0315 * GMAX,
                                           tau_plus=20e-3, tau_minus=20e-3, w_min=0.0,
                                           w_max=GMAX)))
    if two_receptors:
        g.add(PoissonRegion("inh_in", 50, 30.0, seed=8))
        g.connect("inh_in", "n", torch.full((50, 5), 0.01, dtype=torch.float64),
                  receptor="inh", name="inh")
    return g


def _izh_graph(integration: str) -> Graph:
    """Poisson inputs onto regular-spiking Izhikevich neurons (STDP on the inputs), which
    drive fast-spiking ones that inhibit them back."""
    g = Graph(dt=5e-4, seed=3).double()
    g.add(PoissonRegion("in", 100, 10.0, seed=3))
    g.add(SpikingRegion("E", 40, "izhikevich", IzhikevichParameters.preset(
        "RS", integration=integration, d=torch.linspace(6.0, 8.0, 40, dtype=torch.float64))))
    g.add(SpikingRegion("I", 10, "izhikevich", IzhikevichParameters.preset(
        "FS", integration=integration)))
    w0 = torch.rand(100, 40, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(3)) * 40.0
    p = g.connect("in", "E", w0, name="syn")
    p.add_rule(PairSTDP(PairSTDPParameters(a_plus=1.0, a_minus=1.05, tau_plus=20e-3,
                                           tau_minus=20e-3, w_min=0.0, w_max=40.0)))
    g.connect("E", "I", torch.full((40, 10), 20.0, dtype=torch.float64), name="ei")
    g.connect("I", "E", torch.full((10, 40), -30.0, dtype=torch.float64), name="ie")
    return g


def _both(build: object, steps: int, regions: tuple[str, ...]) -> tuple[list, list]:
    out = []
    for backend in ("torch", "engine"):
        g = build()  # type: ignore[operator]
        mons = {n: g.monitor(n) for n in regions}
        with torch.no_grad():
            r = g.run(steps, backend=backend)
        assert r.backend == backend
        out.append((g, r, {n: m.data() for n, m in mons.items()}))
    return out[0], out[1]


def _assert_same(a: tuple, b: tuple, w_range: float, min_spikes: int, v_tol: float) -> None:
    (ga, ra, sa), (gb, rb, sb) = a, b
    for n in sa:
        assert sa[n]["t"].size >= min_spikes, f"{n} hardly spikes"
        assert np.array_equal(sa[n]["t"], sb[n]["t"]) and np.array_equal(sa[n]["i"],
                                                                          sb[n]["i"]), n
        va, vb = ra.state.regions[n].v, rb.state.regions[n].v
        assert (va - vb).abs().max() <= v_tol, n
        for f in type(ra.state.regions[n])._fields[1:]:
            xa, xb = getattr(ra.state.regions[n], f), getattr(rb.state.regions[n], f)
            scale = max(1.0, float(xa.abs().max()))
            assert (xa - xb).abs().max() <= v_tol * scale, (n, f)
    wa = ga.projections["syn"].effective_weight().detach()
    wb = gb.projections["syn"].effective_weight().detach()
    assert (wa - wb).abs().max() <= TOL * w_range
    # the rule really moved the weights, and clipped some at each bound
    assert (wa - ga.projections["syn"].weight.detach()).abs().max() > 0.05 * w_range
    assert bool((wa == 0.0).any()) and bool((wa == w_range).any())


@pytest.mark.parametrize("integration", ["euler", "exponential_euler"])
@pytest.mark.parametrize("two_receptors", [False, True])
def test_lif_cond_with_stdp_equals_torch(integration: str, two_receptors: bool) -> None:
    g = _cond_graph(integration, two_receptors)
    assert g.engine_reason() is None
    a, b = _both(lambda: _cond_graph(integration, two_receptors), 8000, ("n",))
    _assert_same(a, b, GMAX, 50, V_TOL[0])


@pytest.mark.parametrize("integration", ["euler", "paper"])
def test_izhikevich_with_stdp_equals_torch(integration: str) -> None:
    a, b = _both(lambda: _izh_graph(integration), 4000, ("E", "I"))
    _assert_same(a, b, 40.0, 30, V_TOL[1])


def test_dopamine_rule_still_names_itself() -> None:
    """DopamineSTDP has no compiled form yet: the graph falls back and says why."""
    g = _izh_graph("euler")
    g.projections["syn"].rules.clear()
    g.projections["syn"].add_rule(DopamineSTDP())
    assert "DopamineSTDP" in (g.engine_reason() or "")
