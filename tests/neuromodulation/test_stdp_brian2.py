"""STDP against Brian2: the same Poisson spike trains, the same trace equations in
``Synapses(on_pre=..., on_post=...)`` with event-driven traces, weights equal to 1e-9
at every step (float64), for the additive, multiplicative, nearest-neighbour and
triplet forms.

1. Open loop: presynaptic and postsynaptic trains are two ``SpikeGeneratorGroup``\\ s in
   Brian2; in our graph a fed ``pre`` region drives ``post`` through the plastic
   same-step edge (Brian2's zero-delay ``on_pre``), and a teacher input makes ``post``
   spike exactly on the given train. The rule is also driven directly.
2. Closed loop: delayed plastic edges into CUBA neurons (``cuba_refractory``, as in
   ``tests/graph/test_brian2.py``) whose spikes the changing weights shape. Brian2 gets
   the socket's timing: a transmitting pathway at delay ``d`` and a plasticity pathway
   at ``d + 1`` steps, ordered after it.

Brian2 runs with the ``numpy`` target (no compiler).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _stdp_nets import DT, drive, poisson_raster, teacher_graph

from aura_snn.functional.cuba_refractory import CubaRefractoryParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion, from_indices
from neuromodulation.stdp import (
    PairSTDP,
    PairSTDPParameters,
    TripletSTDP,
    TripletSTDPParameters,
)

b2 = pytest.importorskip("brian2", reason="Brian2 is the reference for STDP "
                                          "(pip install 'aura-snn[peers]')")
pytestmark = pytest.mark.peers

TAUS = dict(tau_plus=17e-3, tau_minus=34e-3)
VARIANTS = {  # name: our parameters
    "additive": PairSTDPParameters(a_plus=0.02, a_minus=0.021, **TAUS),
    "multiplicative": PairSTDPParameters(a_plus=0.08, a_minus=0.09, **TAUS,
                                         weight_dependence="multiplicative"),
    "nearest": PairSTDPParameters(a_plus=0.02, a_minus=0.021, **TAUS, pairing="nearest"),
    "nearest_multiplicative": PairSTDPParameters(
        a_plus=0.08, a_minus=0.09, **TAUS, weight_dependence="multiplicative",
        pairing="nearest"),
    "triplet": TripletSTDPParameters(a2_plus=5e-3, a3_plus=6.2e-3, a2_minus=7e-3,
                                     a3_minus=2.3e-3),
    "triplet_nearest": TripletSTDPParameters(a2_plus=5e-3, a3_plus=6.2e-3, a2_minus=7e-3,
                                             a3_minus=2.3e-3, pairing="nearest"),
}


def _rule(p: PairSTDPParameters | TripletSTDPParameters) -> PairSTDP | TripletSTDP:
    return PairSTDP(p) if isinstance(p, PairSTDPParameters) else TripletSTDP(p)


def _brian2_synapses(src: object, tgt: object, p: object, on_pre: dict | None = None,
                     delay: dict | None = None) -> object:
    """Brian2 ``Synapses`` of our parameters ``p``, written from the paper's equations.
    ``on_pre`` (a dict) adds pathways, e.g. a transmitting one; the plasticity pathway
    is then ``"stdp"``."""
    from brian2 import Synapses, second

    jump = "= 1" if p.pairing == "nearest" else "+= 1"
    ns = {"wmin": p.w_min, "wmax": p.w_max}
    if isinstance(p, PairSTDPParameters):
        model = """w : 1
                   dx/dt = -x / taup : 1 (event-driven)
                   dy/dt = -y / taum : 1 (event-driven)"""
        ns.update(Ap=p.a_plus, Am=p.a_minus, taup=p.tau_plus * second,
                  taum=p.tau_minus * second)
        mult = p.weight_dependence == "multiplicative"
        pre = f"x {jump}\nw = clip(w - Am * {'(w - wmin) * ' if mult else ''}y, wmin, wmax)"
        post = f"y {jump}\nw = clip(w + Ap * {'(wmax - w) * ' if mult else ''}x, wmin, wmax)"
    else:
        model = """w : 1
                   dr1/dt = -r1 / taup : 1 (event-driven)
                   dr2/dt = -r2 / taux : 1 (event-driven)
                   do1/dt = -o1 / taum : 1 (event-driven)
                   do2/dt = -o2 / tauy : 1 (event-driven)"""
        ns.update(A2p=p.a2_plus, A3p=p.a3_plus, A2m=p.a2_minus, A3m=p.a3_minus,
                  taup=p.tau_plus * second, taux=p.tau_x * second,
                  taum=p.tau_minus * second, tauy=p.tau_y * second)
        pre = f"w = clip(w - o1 * (A2m + A3m * r2), wmin, wmax)\nr1 {jump}\nr2 {jump}"
        post = f"w = clip(w + r1 * (A2p + A3p * o2), wmin, wmax)\no1 {jump}\no2 {jump}"
    if on_pre is None:
        return Synapses(src, tgt, model, on_pre=pre, on_post=post, namespace=ns)
    S = Synapses(src, tgt, model, on_pre={**on_pre, "stdp": pre}, on_post=post,
                 delay=delay, namespace=ns)
    S.stdp.order = 0               # after the transmitting pathway (-1), before post (1)
    return S


def _generator(raster: np.ndarray) -> object:
    from brian2 import SpikeGeneratorGroup, second

    t, i = np.nonzero(raster)
    return SpikeGeneratorGroup(raster.shape[1], i, t * DT * second)


@pytest.fixture(scope="module")
def open_loop() -> dict:
    """Rasters, initial weights and Brian2's weights after every step, per variant."""
    from brian2 import Network, StateMonitor, defaultclock, prefs, second, start_scope

    steps, n_pre, n_post = 3000, 10, 3
    pre = poisson_raster(steps, 1, n_pre, 30.0, 11)[:, 0]
    post = poisson_raster(steps, 1, n_post, 20.0, 12)[:, 0]
    pre[[100, 101, 700], :4] = 1.0                  # simultaneous and adjacent pairs
    post[[100, 700, 702], :2] = 1.0
    w0 = np.random.default_rng(13).uniform(0.3, 0.7, (n_pre, n_post))
    prefs.codegen.target = "numpy"
    start_scope()
    defaultclock.dt = DT * second
    G, P = _generator(pre), _generator(post)
    objs, mons = [G, P], {}
    for name, p in VARIANTS.items():
        S = _brian2_synapses(G, P, p)
        S.connect(i=np.repeat(np.arange(n_pre), n_post), j=np.tile(np.arange(n_post), n_pre))
        S.w = w0.ravel()
        mons[name] = StateMonitor(S, "w", record=True, when="end")
        objs += [S, mons[name]]
    Network(*objs).run(steps * DT * second)
    ref = {k: np.asarray(m.w).T.reshape(steps, n_pre, n_post) for k, m in mons.items()}
    return {"pre": pre, "post": post, "w0": w0, "brian2": ref}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_rule_driven_directly_equals_brian2(open_loop: dict, name: str) -> None:
    ref = open_loop["brian2"][name]
    ours = drive(_rule(VARIANTS[name]), open_loop["w0"], open_loop["pre"][:, None],
                 open_loop["post"][:, None])
    assert np.abs(ref[-1] - open_loop["w0"]).max() > 0.05          # weights moved
    err = np.abs(ours - ref).max()
    print(f"\n[{name}] direct: max |w - w_brian2| over {ref.shape[0]} steps = {err:.2e}")
    assert err < 1e-9


@pytest.mark.parametrize("name, sparse", [(n, False) for n in VARIANTS] +
                         [("additive", True), ("triplet_nearest", True)])
def test_graph_equals_brian2(open_loop: dict, name: str, sparse: bool) -> None:
    """Same-step plastic edge (dense or sparse storage); the teacher imposes ``post``."""
    g, p = teacher_graph(open_loop["w0"], _rule(VARIANTS[name]), sparse=sparse)
    mon = g.monitor(p.name, "weights")
    r = g.run(open_loop["pre"].shape[0], record=["post"],
              inputs={"pre": torch.tensor(open_loop["pre"][:, None]),
                      "teach": torch.tensor(open_loop["post"][:, None])})
    assert torch.equal(r.outputs["post"][:, 0], torch.tensor(open_loop["post"]))
    ref = open_loop["brian2"][name]
    ws = np.asarray(mon.data()["values"]).reshape(ref.shape)   # sparse: row-major nonzeros
    err = np.abs(ws - ref).max()
    print(f"\n[{name}, sparse={sparse}] graph: max |w - w_brian2| = {err:.2e}")
    assert err < 1e-9


@pytest.mark.parametrize("name, sparse, delay", [
    ("additive", True, "per-synapse"), ("triplet", False, "per-synapse"),
    ("nearest_multiplicative", False, 3)])
def test_delayed_edges_see_spikes_on_arrival(name: str, sparse: bool, delay: str | int
                                             ) -> None:
    """Delayed edges (teacher too): ``post`` spikes one step after ``teach``, and a
    presynaptic spike reaches the rule ``1 + d`` steps after emission, so Brian2's
    plasticity pathway gets delay ``d + 1`` and its post train is the teacher's shifted
    by one step. Per-synapse delays 0-5 (sparse and dense storage), or one delay."""
    from brian2 import Network, StateMonitor, defaultclock, prefs, second, start_scope

    steps, n_pre, n_post = 2000, 8, 3
    pre = poisson_raster(steps, 1, n_pre, 40.0, 31)[:, 0]
    teach = poisson_raster(steps, 1, n_post, 30.0, 32)[:, 0]
    teach[-1] = 0.0
    w0 = np.random.default_rng(33).uniform(0.3, 0.7, (n_pre, n_post))
    d = np.random.default_rng(34).integers(0, 6, (n_pre, n_post)) if delay == "per-synapse" \
        else np.full((n_pre, n_post), delay)
    prefs.codegen.target = "numpy"
    start_scope()
    defaultclock.dt = DT * second
    G, P = _generator(pre), _generator(np.roll(teach, 1, axis=0))
    S = _brian2_synapses(G, P, VARIANTS[name], on_pre={})
    S.connect(i=np.repeat(np.arange(n_pre), n_post), j=np.tile(np.arange(n_post), n_pre))
    S.w = w0.ravel()
    S.stdp.delay = (d.ravel() + 1) * DT * second
    mon = StateMonitor(S, "w", record=True, when="end")
    Network(G, P, S, mon).run(steps * DT * second)
    ref = np.asarray(mon.w).T.reshape(steps, n_pre, n_post)

    g, p = teacher_graph(w0, _rule(VARIANTS[name]), same_step=False, sparse=sparse,
                         delay=d if delay == "per-synapse" else int(delay))
    m = g.monitor(p.name, "weights")
    r = g.run(steps, inputs={"pre": torch.tensor(pre[:, None]),
                             "teach": torch.tensor(teach[:, None])}, record=["post"])
    assert torch.equal(r.outputs["post"][1:, 0], torch.tensor(teach[:-1]))
    ws = np.asarray(m.data()["values"]).reshape(ref.shape)
    err = np.abs(ws - ref).max()
    print(f"\n[{name}, sparse={sparse}, delay={delay}] max |w - w_brian2| = {err:.2e}")
    assert np.abs(ref[-1] - w0).max() > 0.05 and err < 1e-9


# -- closed loop: delayed plastic edges into CUBA neurons --------------------------------
CL_DT = 1e-4
CUBA = dict(tau_mem=20e-3, tau_syn=(5e-3, 10e-3), v_leak=-49e-3, threshold=-50e-3,
            v_reset=-60e-3, refractory=5e-3)   # Brian2's CUBA example (Vogels & Abbott 2005)
W_MAX = 4e-3                                     # V
CLOSED = {  # name: (our parameters, sparse storage)
    "additive_sparse": (
        PairSTDPParameters(a_plus=2e-4, a_minus=2.1e-4, tau_plus=17e-3, tau_minus=34e-3,
                           w_max=W_MAX), True),
    "triplet_nearest_dense": (
        TripletSTDPParameters(a2_plus=1e-4, a3_plus=1.2e-4, a2_minus=1.4e-4, a3_minus=5e-5,
                              w_max=W_MAX, pairing="nearest"), False),
}


def _closed_graph(p: object, sparse: bool, conn: object, w: np.ndarray, v0: np.ndarray
                  ) -> tuple[Graph, object]:
    g = Graph(dt=CL_DT).double()
    g.add(InputRegion("in", conn.n_pre))
    g.add(SpikingRegion("E", conn.n_post, "cuba_refractory", CubaRefractoryParameters(**CUBA),
                        init={"v": torch.tensor(v0)}))
    if sparse:
        proj = g.connect("in", "E", w, connectivity=conn, receptor="exc")
    else:
        dense = np.zeros((conn.n_pre, conn.n_post))
        dense[conn.pre, conn.post] = w
        proj = g.connect("in", "E", torch.tensor(dense), receptor="exc")
    proj.add_rule(_rule(p))
    return g, proj


def _closed_brian2(p: object, pre: np.ndarray, conn: object, w: np.ndarray, v0: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from brian2 import (
        Network,
        NeuronGroup,
        SpikeMonitor,
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
    eqs = """dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
             dge/dt = -ge/taue : volt
             dgi/dt = -gi/taui : volt"""
    ns = {"taum": CUBA["tau_mem"] * second, "taue": CUBA["tau_syn"][0] * second,
          "taui": CUBA["tau_syn"][1] * second, "El": CUBA["v_leak"] * volt,
          "Vt": CUBA["threshold"] * volt, "Vr": CUBA["v_reset"] * volt}
    E = NeuronGroup(conn.n_post, eqs, threshold="v>Vt", reset="v = Vr",
                    refractory=CUBA["refractory"] * second, method="exact", namespace=ns)
    E.v = v0 * volt
    G = _generator_dt(pre)
    S = _brian2_synapses(G, E, p, on_pre={"pre": "ge_post += w*volt"})
    S.connect(i=conn.pre, j=conn.post)
    S.w = w
    S.pre.delay = 0 * second                     # the current lands in the next step,
    S.stdp.delay = CL_DT * second                # when the rule sees the spike arrive
    M = SpikeMonitor(E)
    Network(E, G, S, M).run(pre.shape[0] * CL_DT * second)
    t = np.round(np.asarray(M.t / ms) * 1e-3 / CL_DT).astype(np.int64)
    i = np.asarray(M.i, dtype=np.int64)
    o = np.lexsort((i, t))
    return t[o], i[o], np.asarray(S.w)


def _generator_dt(raster: np.ndarray) -> object:
    from brian2 import SpikeGeneratorGroup, second

    t, i = np.nonzero(raster)
    return SpikeGeneratorGroup(raster.shape[1], i, t * CL_DT * second)


@pytest.mark.parametrize("name", list(CLOSED))
def test_closed_loop_spikes_and_weights_equal_brian2(name: str, tmp_path: object) -> None:
    """40 Poisson inputs (50 Hz) into 5 CUBA neurons through a plastic edge (delay 0:
    arrival one step after emission), 0.5 s. The run is split in two, saved to a file and
    resumed in a fresh graph (the rule's traces and synapse index travel in the graph
    state)."""
    p, sparse = CLOSED[name]
    steps, n_in, n_e = 5000, 40, 5
    rng = np.random.default_rng(21)
    pre = (rng.random((steps, n_in)) < 50.0 * CL_DT).astype(np.float64)
    # sparse: 60 % of the pairs; dense: all of them (every entry of a dense matrix is a
    # plastic synapse, zeros included)
    conn = from_indices(*np.nonzero(rng.random((n_in, n_e)) < (0.6 if sparse else 2.0)),
                        n_in, n_e)
    w = rng.uniform(0.0, W_MAX, conn.n_synapses)
    v0 = np.linspace(-60e-3, -50.5e-3, n_e)
    ref_t, ref_i, ref_w = _closed_brian2(p, pre, conn, w, v0)

    x = torch.tensor(pre[:, None])
    half = steps // 2
    g1, p1 = _closed_graph(p, sparse, conn, w, v0)
    m1 = g1.monitor("E")
    g1.run(half, inputs={"in": x[:half]})
    g1.save_state(tmp_path / "half.safetensors")
    g2, p2 = _closed_graph(p, sparse, conn, w, v0)
    g2.load_state(tmp_path / "half.safetensors")
    m2 = g2.monitor("E")
    g2.run(steps - half, inputs={"in": x[half:]})
    d1, d2 = m1.data(), m2.data()
    t = np.concatenate([d1["t"], d2["t"]])
    i = np.concatenate([d1["i"], d2["i"]])
    o = np.lexsort((i, t))
    ours_w = p2.effective_weight().detach().numpy()
    ours_w = ours_w if sparse else ours_w[conn.pre, conn.post]
    moved = np.abs(ref_w - w).max()
    err = np.abs(ours_w - ref_w).max()
    print(f"\n[{name}] spikes: ours {t.size}, Brian2 {ref_t.size}; max |dw| {moved:.2e} V; "
          f"max |w - w_brian2| = {err:.2e} V")
    assert ref_t.size > 50 and moved > 0.2 * W_MAX
    assert np.array_equal(t[o], ref_t) and np.array_equal(i[o], ref_i)
    assert err < 1e-9 * W_MAX
