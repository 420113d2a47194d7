"""The compiled engine runs STDP (pair, triplet) and Tsodyks-Markram STP itself.

Oracles:

1. the torch stepper, which calls the rules of :mod:`neuromodulation` (tested against
   Brian2 to 1e-9 in ``tests/neuromodulation``) after every step: the same plastic
   graph (Poisson inputs, CUBA and LIF neurons, dense and sparse, delays, recurrence,
   every variant of both rules, STP with and without a rule) gives identical spikes and
   weights, traces and synapse states equal to ``TOL`` of their scale. The engine reads
   a trace as :math:`x a^k` (Brian2's event-driven traces) where torch multiplies by
   :math:`a` every step: each read differs by at most ``k + 2`` roundings, each weight
   change by that much of :math:`A x`; over a few thousand updates that stays below
   ``1e-12`` of the weights' range (measured: a few ``1e-15``);
2. Brian2 (numpy target): ``Synapses`` with ``on_pre``/``on_post`` and event-driven
   traces written here from the papers' equations, driving CUBA neurons in a closed
   loop: identical spikes and weights to 1e-9 of ``w_max``;
3. the fallbacks: whatever the engine cannot run names itself and runs on torch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError
from aura_snn.functional.cuba import CubaLIFParameters
from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import (
    Graph,
    InputRegion,
    PoissonRegion,
    SpikingRegion,
    fixed_probability,
    from_indices,
)
from neuromodulation.stdp import (
    PairSTDP,
    PairSTDPParameters,
    TripletSTDP,
    TripletSTDPParameters,
)
from neuromodulation.stp import TsodyksMarkram, TsodyksMarkramParameters

TOL = 1e-12
W_MAX = 1.0
TAUS = dict(tau_plus=17e-3, tau_minus=34e-3)
PAIRS = {
    "additive": PairSTDPParameters(a_plus=0.02, a_minus=0.015, **TAUS, w_max=W_MAX),
    "multiplicative": PairSTDPParameters(a_plus=0.05, a_minus=0.06, **TAUS, w_max=W_MAX,
                                         weight_dependence="multiplicative"),
    "nearest": PairSTDPParameters(a_plus=0.02, a_minus=0.021, **TAUS, w_max=W_MAX,
                                  pairing="nearest"),
    "nearest_multiplicative": PairSTDPParameters(
        a_plus=0.05, a_minus=0.06, **TAUS, w_max=W_MAX, weight_dependence="multiplicative",
        pairing="nearest"),
}
TRIPLETS = {
    "triplet": TripletSTDPParameters(a2_plus=5e-3, a3_plus=6.2e-3, a2_minus=7e-3,
                                     a3_minus=2.3e-3, w_max=W_MAX),
    "triplet_nearest": TripletSTDPParameters(a2_plus=5e-3, a3_plus=6.2e-3, a2_minus=7e-3,
                                             a3_minus=2.3e-3, w_max=W_MAX,
                                             pairing="nearest"),
}


def _rule(name: str) -> PairSTDP | TripletSTDP:
    return PairSTDP(PAIRS[name]) if name in PAIRS else TripletSTDP(TRIPLETS[name])


def plastic_net(ff: str, rec: str, ei: str, sparse: bool,
                dtype: torch.dtype = torch.float64) -> Graph:
    """Poisson -> E (CUBA) through a plastic projection, rule ``ff`` (dense or sparse,
    delay 1); E -> E recurrent, rule ``rec`` (sparse, delay 2); E -> I (LIF) dense,
    rule ``ei`` and depressing (STP), delay 0; I -> E inhibitory, facilitating, not
    plastic; a static sparse input with per-synapse delays beside them."""
    g = Graph(dt=1e-3, seed=5).to(dtype)
    g.add(PoissonRegion("noise", 50, rate=torch.linspace(10.0, 40.0, 50), seed=7))
    g.add(SpikingRegion("E", 24, "cuba", CubaLIFParameters(tau_mem=20e-3, tau_syn=5e-3,
                                                            threshold=1.0, reset="zero")))
    g.add(SpikingRegion("I", 8, "lif", LIFParameters(tau_mem=10e-3, threshold=0.4,
                                                      input_scaling="direct",
                                                      reset="subtract")))
    gen = torch.Generator().manual_seed(0)
    w_ff = torch.rand(50, 24, generator=gen, dtype=dtype) * 0.4
    if sparse:
        w_ff = w_ff * (torch.rand(50, 24, generator=gen, dtype=dtype) < 0.5)
    g.connect("noise", "E", w_ff, sparse=sparse, delay=1, name="ff").add_rule(_rule(ff))
    g.connect("E", "E", 0.3, connectivity=fixed_probability(24, 24, 0.25, seed=2), delay=2,
              name="rec").add_rule(_rule(rec))
    g.connect("E", "I", torch.rand(24, 8, generator=gen, dtype=dtype) * 0.5, name="EI",
              synapse=TsodyksMarkram(TsodyksMarkramParameters(U=0.4, tau_f=20e-3,
                                                              tau_d=100e-3))
              ).add_rule(_rule(ei))
    g.connect("I", "E", -0.4, connectivity=fixed_probability(8, 24, 0.5, seed=3),
              sign="inh", name="IE",
              synapse=TsodyksMarkram(TsodyksMarkramParameters(U=0.1, tau_f=200e-3,
                                                              tau_d=50e-3)))
    static = fixed_probability(50, 24, 0.2, seed=4)
    g.connect("noise", "E", 0.15, connectivity=static, name="static",
              delay=torch.randint(0, 4, (static.n_synapses,), generator=gen))
    return g


def _run(g: Graph, T: int, backend: str) -> tuple:
    mons = {n: g.monitor(n) for n in ("E", "I")}
    with torch.no_grad():
        r = g.run(T, backend=backend)
    assert r.backend == backend
    return r, {n: m.data() for n, m in mons.items()}


def _assert_equal_runs(ga: Graph, ra: object, sa: dict, gb: Graph, rb: object, sb: dict,
                       moved: float = 0.05) -> None:
    """Spikes identical; weights, rule and synapse states, histories, currents and
    potentials to ``TOL`` of their scale; the weights really moved."""
    for n in sa:
        assert sa[n]["t"].size > 100, f"{n} hardly spikes"
        assert np.array_equal(sa[n]["t"], sb[n]["t"]) and np.array_equal(sa[n]["i"],
                                                                          sb[n]["i"]), n
    for name, p in ga.projections.items():
        wa = p.effective_weight().detach().double()
        wb = gb.projections[name].effective_weight().detach().double()
        assert (wa - wb).abs().max() <= TOL * W_MAX, name
        if p.rules:
            assert (wa - p.weight.detach().double()).abs().max() > moved, name
    sta, stb = ra.state, rb.state
    for store in ("rules", "synapses", "history"):
        a, b = getattr(sta, store), getattr(stb, store)
        assert a.keys() == b.keys(), store
        for key in a:
            for x, y in zip(a[key], b[key], strict=True):
                assert x.shape == y.shape and x.dtype == y.dtype, (store, key)
                if not x.is_floating_point():        # e.g. a sparse rule's post_idx
                    assert torch.equal(x, y), (store, key)
                elif x.numel():
                    scale = max(1.0, float(x.abs().max()))
                    assert (x - y).abs().max() <= TOL * scale, (store, key)
    for name in ("E", "I"):
        for x, y in zip(sta.regions[name], stb.regions[name], strict=True):
            assert (x.double() - y.double()).abs().max() <= TOL, name
    assert sta.t == stb.t


CASES = [("additive", "multiplicative", "triplet_nearest", False),     # every variant
         ("nearest_multiplicative", "triplet", "nearest", True)]       # on dense and sparse


@pytest.mark.parametrize(("ff", "rec", "ei", "sparse"), CASES)
def test_engine_equals_torch_stepper_with_stdp_and_stp(ff: str, rec: str, ei: str,
                                                       sparse: bool) -> None:
    T = 3000
    ga, gb = plastic_net(ff, rec, ei, sparse), plastic_net(ff, rec, ei, sparse)
    assert gb.engine_reason() is None
    ra, sa = _run(ga, T, "torch")
    rb, sb = _run(gb, T, "engine")
    _assert_equal_runs(ga, ra, sa, gb, rb, sb)


def test_states_interchange_between_engine_and_torch() -> None:
    """Half a run on the engine, half on torch (and the other way round), equals a whole
    run on torch: traces, histories (arrivals in flight) and synapse states carry over."""
    T = 1500
    ref = plastic_net(*CASES[1])
    r_ref, s_ref = _run(ref, 2 * T, "torch")
    for first, second in (("engine", "torch"), ("torch", "engine")):
        g = plastic_net(*CASES[1])
        mons = {n: g.monitor(n) for n in ("E", "I")}
        with torch.no_grad():
            g.run(T, backend=first)
            r = g.run(T, backend=second)
        _assert_equal_runs(ref, r_ref, s_ref, g, r, {n: m.data() for n, m in mons.items()})


def test_float32_engine_follows_torch() -> None:
    """float32: the same spikes over a shorter run, weights to float32 rounding."""
    T = 800
    ga = plastic_net(*CASES[1], dtype=torch.float32)
    gb = plastic_net(*CASES[1], dtype=torch.float32)
    _, sa = _run(ga, T, "torch")
    _, sb = _run(gb, T, "engine")
    for n in sa:
        assert np.array_equal(sa[n]["t"], sb[n]["t"]) and np.array_equal(sa[n]["i"],
                                                                          sb[n]["i"])
    for name, p in ga.projections.items():
        w = gb.projections[name].effective_weight().detach()
        assert w.dtype == torch.float32
        assert (p.effective_weight().detach() - w).abs().max() <= 1e-5 * W_MAX, name


def test_stp_alone_runs_a_batch_on_the_engine() -> None:
    """A synapse model keeps one state per sample: a batch of 3 (different Poisson
    streams) on the engine equals torch, sample by sample."""
    def net() -> Graph:
        g = Graph(dt=1e-3, seed=2).double()
        g.add(PoissonRegion("p", 30, 40.0, seed=3))
        g.add(SpikingRegion("n", 6, "lif", LIFParameters(tau_mem=10e-3, threshold=0.15,
                                                         input_scaling="direct")))
        g.connect("p", "n", 0.2, connectivity=fixed_probability(30, 6, 0.5, seed=1),
                  delay=1, synapse=TsodyksMarkram(TsodyksMarkramParameters(
                      U=0.3, tau_f=0.0, tau_d=80e-3)))
        return g
    (ra, sa), (rb, sb) = (_run_batch(net(), backend) for backend in ("torch", "engine"))
    assert sa["t"].size > 200
    for k in ("t", "b", "i"):
        assert np.array_equal(sa[k], sb[k])
    for x, y in zip(ra.state.synapses["p-n"], rb.state.synapses["p-n"], strict=True):
        assert x.shape == (3, 30) and (x - y).abs().max() <= TOL


def _run_batch(g: Graph, backend: str) -> tuple:
    mon = g.monitor("n")
    with torch.no_grad():
        r = g.run(1000, batch_size=3, backend=backend)
    assert r.backend == backend
    return r, mon.data()


# -- bounds: initial weights outside the rule's range, signs ----------------------------------

def test_out_of_bound_start_and_projection_clamps_as_torch() -> None:
    """Starting weights outside [w_min, w_max] are clipped in the first step (the torch
    rule clips every synapse each step, the oracle computed here), also before a first
    step's potentiation (weights set below w_min between runs, a forced post spike: soft
    bounds read the clipped weight), and a projection's own bounds and sign clamp what
    the rule returns (w_min = 0.1 > the rule's -0.2)."""
    def net() -> Graph:
        g = Graph(dt=1e-3).double()
        g.add(PoissonRegion("p", 20, 30.0, seed=1))
        g.add(InputRegion("teach", 5))
        g.add(SpikingRegion("n", 5, "lif", LIFParameters(tau_mem=10e-3, threshold=0.5,
                                                         input_scaling="direct")))
        g.connect("teach", "n", torch.eye(5, dtype=torch.float64) * 10.0)
        w = torch.linspace(-0.5, 1.5, 100, dtype=torch.float64).reshape(20, 5)
        g.connect("p", "n", w, name="a").add_rule(PairSTDP(PairSTDPParameters(
            a_plus=0.05, a_minus=0.06, w_min=-0.2, w_max=1.0,
            weight_dependence="multiplicative")))
        g.connect("p", "n", w.abs(), sign="exc", w_min=0.1, name="b").add_rule(
            PairSTDP(PairSTDPParameters(a_plus=0.05, a_minus=0.06, w_min=-0.2, w_max=1.2)))
        return g
    def quiet(T: int) -> dict[str, torch.Tensor]:
        return {"teach": torch.zeros(T, 1, 5, dtype=torch.float64)}
    gb = net()
    w0 = {n: p.effective_weight().detach().clone() for n, p in gb.projections.items()}
    with torch.no_grad():
        gb.run(1, quiet(1), backend="engine")  # no arrivals, no post spike yet: clips only
    assert torch.equal(gb.projections["a"].effective_weight(), w0["a"].clamp(-0.2, 1.0))
    assert torch.equal(gb.projections["b"].effective_weight(), w0["b"].clamp(0.1, 1.2))
    ga, gb = net(), net()
    mons = [g.monitor("n") for g in (ga, gb)]
    kick = quiet(2000)
    kick["teach"][-1] = 1.0      # arrives in the next run's first step: n spikes there
    with torch.no_grad():
        ga.run(2000, kick, backend="torch")
        gb.run(2000, kick, backend="engine")
    sa, sb = (m.data() for m in mons)
    assert sa["t"].size > 100
    assert np.array_equal(sa["t"], sb["t"]) and np.array_equal(sa["i"], sb["i"])
    for name in ("a", "b"):
        wa, wb = (g.projections[name].effective_weight().detach() for g in (ga, gb))
        assert (wa - wb).abs().max() <= TOL
    assert float(wb.min()) >= 0.1 and float(wb.max()) <= 1.2
    for g, backend in ((ga, "torch"), (gb, "engine")):
        with torch.no_grad():
            g.projections["a"].weight.fill_(-0.5)
            g.projections["a"].plastic_weight.zero_()
            g.run(1, quiet(1), backend=backend)
    wa, wb = (g.projections["a"].effective_weight().detach() for g in (ga, gb))
    assert float(wa.max()) > -0.2 + 1e-3          # potentiated from the clipped -0.2
    assert (wa - wb).abs().max() <= TOL


# -- fallbacks ------------------------------------------------------------------------------

def _small() -> tuple[Graph, object]:
    g = Graph(dt=1e-3)
    g.add(PoissonRegion("p", 4, 20.0))
    g.add(SpikingRegion("n", 2, "lif"))
    return g, g.connect("p", "n", torch.full((4, 2), 0.1))


def test_what_the_engine_cannot_run_names_itself_and_runs_on_torch() -> None:
    g, p = _small()
    p.add_rule(lambda proj, pre, post, traces: None)
    assert "CallableRule" in g.engine_reason() and "no compiled form" in g.engine_reason()
    with torch.no_grad():
        assert g.run(5).backend == "torch"
    g, p = _small()
    p.add_rule(PairSTDP())
    p.add_rule(TripletSTDP())
    assert "2 plasticity rules" in g.engine_reason()
    g = Graph(dt=1e-3)
    g.add(PoissonRegion("p", 4, 20.0))
    g.add(SpikingRegion("n", 2, "lif"))
    g.connect("p", "n", torch.full((4, 2), 0.1), delay=np.arange(8).reshape(4, 2)).add_rule(
        PairSTDP())
    assert "per-synapse delays" in g.engine_reason()
    g, p = _small()
    p.add_rule(PairSTDP())
    g.monitor(p.name, "weights")
    assert "weights of plastic projection" in g.engine_reason()
    g, p = _small()
    p.add_rule(PairSTDP())
    with torch.no_grad():
        assert g.run(5, batch_size=2).backend == "torch"     # batch mean: torch only
        with pytest.raises(ParameterError, match="batch is 2"):
            g.run(5, batch_size=2, backend="engine")
        assert g.run(5, batch_size=1).backend == "engine"


# -- Brian2 ---------------------------------------------------------------------------------
CL_DT = 1e-4
CUBA = dict(tau_mem=20e-3, tau_syn=(5e-3, 10e-3), v_leak=-49e-3, threshold=-50e-3,
            v_reset=-60e-3, refractory=5e-3)   # Brian2's CUBA example (Vogels & Abbott 2005)
W_B2 = 4e-3                                      # V
B2_RULES = {
    "multiplicative_nearest": PairSTDPParameters(
        a_plus=0.05, a_minus=0.06, tau_plus=17e-3, tau_minus=34e-3, w_max=W_B2,
        weight_dependence="multiplicative", pairing="nearest"),
    "triplet": TripletSTDPParameters(a2_plus=1e-4, a3_plus=1.2e-4, a2_minus=1.4e-4,
                                     a3_minus=5e-5, w_max=W_B2),
}


def _brian2_run(p: PairSTDPParameters | TripletSTDPParameters, pre: np.ndarray,
                conn: object, w: np.ndarray, v0: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The closed loop in Brian2: the presynaptic spike lands in ``ge`` one step later
    (zero delay) and reaches the rule one step after emission (our arrival step)."""
    b2 = pytest.importorskip("brian2")
    from brian2 import (
        Network,
        NeuronGroup,
        SpikeGeneratorGroup,
        SpikeMonitor,
        Synapses,
        defaultclock,
        ms,
        prefs,
        second,
        start_scope,
        volt,
    )
    prefs.codegen.target = "numpy"
    start_scope()
    defaultclock.dt = CL_DT * second
    ns = {"taum": CUBA["tau_mem"] * second, "taue": CUBA["tau_syn"][0] * second,
          "taui": CUBA["tau_syn"][1] * second, "El": CUBA["v_leak"] * volt,
          "Vt": CUBA["threshold"] * volt, "Vr": CUBA["v_reset"] * volt,
          "wmin": p.w_min, "wmax": p.w_max}
    E = NeuronGroup(conn.n_post, """dv/dt = (ge + gi - (v - El)) / taum : volt (unless refractory)
                                  dge/dt = -ge / taue : volt
                                  dgi/dt = -gi / taui : volt""",
                    threshold="v > Vt", reset="v = Vr", refractory=CUBA["refractory"] * second,
                    method="exact", namespace=ns)
    E.v = v0 * volt
    t_i, i_i = np.nonzero(pre)
    G = SpikeGeneratorGroup(pre.shape[1], i_i, t_i * CL_DT * second)
    if isinstance(p, PairSTDPParameters):
        ns.update(taup=p.tau_plus * second, taum_=p.tau_minus * second, Ap=p.a_plus,
                  Am=p.a_minus)
        mult = p.weight_dependence == "multiplicative"
        jump = "= 1" if p.pairing == "nearest" else "+= 1"
        model = """w : 1
                   dx/dt = -x / taup : 1 (event-driven)
                   dy/dt = -y / taum_ : 1 (event-driven)"""
        on_stdp = f"w = clip(w - Am * {'(w - wmin) * ' if mult else ''}y, wmin, wmax)\nx {jump}"
        on_post = f"w = clip(w + Ap * {'(wmax - w) * ' if mult else ''}x, wmin, wmax)\ny {jump}"
    else:
        ns.update(tp=p.tau_plus * second, tx=p.tau_x * second, tm=p.tau_minus * second,
                  ty=p.tau_y * second, A2p=p.a2_plus, A3p=p.a3_plus, A2m=p.a2_minus,
                  A3m=p.a3_minus)
        model = """w : 1
                   dr1/dt = -r1 / tp : 1 (event-driven)
                   dr2/dt = -r2 / tx : 1 (event-driven)
                   do1/dt = -o1 / tm : 1 (event-driven)
                   do2/dt = -o2 / ty : 1 (event-driven)"""
        on_stdp = "w = clip(w - o1 * (A2m + A3m * r2), wmin, wmax)\nr1 += 1\nr2 += 1"
        on_post = "w = clip(w + r1 * (A2p + A3p * o2), wmin, wmax)\no1 += 1\no2 += 1"
    S = Synapses(G, E, model, on_pre={"pre": "ge_post += w * volt", "stdp": on_stdp},
                 on_post=on_post, namespace=ns)
    S.connect(i=conn.pre, j=conn.post)
    S.w = w
    S.pre.delay = 0 * second
    S.stdp.delay = CL_DT * second
    S.stdp.order = 0           # after the transmitting pathway (-1), before post (1)
    M = SpikeMonitor(E)
    Network(E, G, S, M).run(pre.shape[0] * CL_DT * second)
    t = np.round(np.asarray(M.t / ms) * 1e-3 / CL_DT).astype(np.int64)
    i = np.asarray(M.i, dtype=np.int64)
    o = np.lexsort((i, t))
    del b2
    return t[o], i[o], np.asarray(S.w)


@pytest.mark.peers
@pytest.mark.parametrize(("name", "sparse"), [("multiplicative_nearest", True),
                                              ("triplet", False)])
def test_engine_equals_brian2_in_a_closed_loop(name: str, sparse: bool) -> None:
    """40 inputs at 50 Hz into 5 CUBA neurons (Brian2's CUBA example) through a plastic
    edge, 0.4 s at 0.1 ms, on the engine: spikes and final weights equal Brian2's."""
    p = B2_RULES[name]
    steps, n_in, n_e = 4000, 40, 5
    rng = np.random.default_rng(21)
    pre = (rng.random((steps, n_in)) < 50.0 * CL_DT).astype(np.float64)
    conn = from_indices(*np.nonzero(rng.random((n_in, n_e)) < (0.6 if sparse else 2.0)),
                        n_in, n_e)
    w = rng.uniform(0.0, W_B2, conn.n_synapses)
    v0 = np.linspace(-60e-3, -50.5e-3, n_e)
    ref_t, ref_i, ref_w = _brian2_run(p, pre, conn, w, v0)

    g = Graph(dt=CL_DT).double()
    g.add(InputRegion("in", n_in))
    g.add(SpikingRegion("E", n_e, "cuba_refractory", CubaRefractoryParameters(**CUBA),
                        init={"v": torch.tensor(v0)}))
    if sparse:
        proj = g.connect("in", "E", w, connectivity=conn, receptor="exc")
    else:
        dense = np.zeros((n_in, n_e))
        dense[conn.pre, conn.post] = w
        proj = g.connect("in", "E", torch.tensor(dense), receptor="exc")
    proj.add_rule(PairSTDP(p) if isinstance(p, PairSTDPParameters) else TripletSTDP(p))
    mon = g.monitor("E")
    with torch.no_grad():
        r = g.run(steps, inputs={"in": torch.tensor(pre[:, None])}, backend="engine")
    assert r.backend == "engine"
    d = mon.data()
    o = np.lexsort((d["i"], d["t"]))
    ours = proj.effective_weight().detach().numpy()
    ours = ours if sparse else ours[conn.pre, conn.post]
    assert ref_t.size > 50 and np.abs(ref_w - w).max() > 0.2 * W_B2
    assert np.array_equal(d["t"][o], ref_t) and np.array_equal(d["i"][o], ref_i)
    assert np.abs(ours - ref_w).max() < 1e-9 * W_B2


def test_a_reused_layout_over_many_runs_equals_one_torch_run() -> None:
    """``layout=`` (built once, as a partitioned run's worker does for its windows):
    twelve runs of 125 steps on one layout equal one torch run of 1500 steps (spikes
    identical, weights and states to ``TOL``). The layout's weights are the ones the
    engine's STDP updated in place, so a stale layout would potentiate from the first
    run's weights and differ from the oracle."""
    from aura_snn.graph.engine import build_layout

    T, n = 1500, 12
    ref = plastic_net(*CASES[0])
    r_ref, s_ref = _run(ref, T, "torch")
    g = plastic_net(*CASES[0])
    mons = {name: g.monitor(name) for name in ("E", "I")}
    lay = build_layout(g)
    with torch.no_grad():
        for _ in range(n):
            r = g.run(T // n, backend="engine", layout=lay)
    _assert_equal_runs(ref, r_ref, s_ref, g, r, {k: m.data() for k, m in mons.items()})


def test_a_layout_of_another_graph_or_for_torch_is_refused() -> None:
    from aura_snn.graph.engine import build_layout

    g, _ = _small()
    other, _ = _small()
    with torch.no_grad(), pytest.raises(ParameterError, match="layout was built for another"):
        g.run(5, backend="engine", layout=build_layout(other))
    lay = build_layout(g)
    g.add(PoissonRegion("q", 3, 10.0))
    with torch.no_grad(), pytest.raises(ParameterError, match="layout was built for another"):
        g.run(5, backend="engine", layout=lay)
    with torch.no_grad(), pytest.raises(ParameterError, match="layout= is the compiled.*torch"):
        g.run(5, backend="torch", layout=build_layout(g))
    with torch.no_grad(), pytest.raises(ParameterError, match="layout must come from"):
        g.run(5, backend="engine", layout={"w": 1})
