"""Dopamine-modulated STDP (:mod:`neuromodulation.dopamine`) against Brian2 and closed forms.

Oracles:

* Brian2 (numpy target, float64) running the two-neuron protocol of its
  ``examples/frompapers/Izhikevich_2007.py`` (same neurons, inputs, reward times and
  constants: tau_c = 1 s, tau_d = 200 ms, tau_s = 1 ms, eligibility and weight clipped
  to +-gmax), written here with the dopamine-modulated mode for the whole 6 s (the
  example switches it on at 3 s; its rewards all come after that) and c = 0 at the
  start (the example's 1e-10): our rule fed Brian2's pre/post spikes and reward times
  gives Brian2's eligibility, dopamine and weight traces to 1e-12, step by step at the
  example's 0.1 ms, and through ``Graph.run(modulators=...)`` at 1 ms (dense and sparse).
* Closed forms: with ``integration="exact"`` one pairing then one reward moves the
  weight by :math:`A_+ e^{-\\Delta/\\tau_+} e^{-(t_r - t_\\text{post})/\\tau_c}\\,R\\,
  \\tau_{cd}/\\tau_s\\,(1 - e^{-T/\\tau_{cd}})`; the tonic level of dopamine; the
  Rescorla-Wagner prediction error :math:`R (1 - \\alpha)^n` of a repeated reward.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError, ShapeError
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion
from aura_snn.graph.plasticity import SynapseActivity, reduce_batch
from aura_snn.graph.projection import Projection
from neuromodulation.dopamine import (
    DopamineSTDP,
    DopamineSTDPParameters,
    RPEParameters,
    rpe_release,
)

b2 = pytest.importorskip("brian2", reason="Brian2 is the reference for dopamine-modulated "
                                          "STDP (pip install 'aura-snn[peers]')")

GMAX, EPS = 0.01, 5e-3
W0 = 1e-10                                  # the example's initial synaptic strength
DURATION = 6.0
INPUT_I = [0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0]
INPUT_MS = [500, 550, 1000, 1010, 1500, 1510, 3500, 3550, 4000, 4010, 4500, 4510]
REWARD_MS = [3520, 4020, 4520]


def _example_params(**kw: object) -> DopamineSTDPParameters:
    base = dict(a_plus=0.01 * GMAX, a_minus=0.01 * GMAX * 1.05, tau_plus=20e-3,
                tau_minus=20e-3, tau_c=1.0, tau_d=0.2, tau_s=1e-3, c_max=GMAX,
                w_min=-GMAX, w_max=GMAX, integration="euler")
    base.update(kw)
    return DopamineSTDPParameters(**base)  # type: ignore[arg-type]


def _brian2_protocol(dt: float) -> dict[str, np.ndarray]:
    """The example's network: rasters ``pre``, ``post``, ``reward`` ``[T]`` and the
    synapse's ``s``, ``c``, ``d`` at the end of every step."""
    from brian2 import (
        Network,
        NeuronGroup,
        SpikeGeneratorGroup,
        SpikeMonitor,
        StateMonitor,
        Synapses,
        defaultclock,
        ms,
        mV,
        prefs,
        second,
        start_scope,
    )
    prefs.codegen.target = "numpy"
    start_scope()
    defaultclock.dt = dt * second
    ns = {"taum": 10 * ms, "Ee": 0 * mV, "vt": -54 * mV, "vr": -60 * mV, "El": -74 * mV,
          "taue": 5 * ms, "taupre": 20 * ms, "taupost": 20 * ms, "gmax": GMAX,
          "dApre": 0.01 * GMAX, "dApost": -0.01 * GMAX * 1.05, "tauc": 1000 * ms,
          "taud": 200 * ms, "taus": 1 * ms, "epsilon_dopa": EPS}
    inp = SpikeGeneratorGroup(2, np.array(INPUT_I), np.array(INPUT_MS) * ms)
    neurons = NeuronGroup(2, """dv/dt = (ge * (Ee-vr) + El - v) / taum : volt
                                dge/dt = -ge / taue : 1""",
                          threshold="v>vt", reset="v = vr", method="exact", namespace=ns)
    neurons.v = ns["vr"]
    kick = Synapses(inp, neurons, model="s: volt", on_pre="v += s", namespace=ns)
    kick.connect(i=[0, 1], j=[0, 1])
    kick.s = 100 * mV
    stdp = Synapses(neurons, neurons, model="""dc/dt = -c / tauc : 1 (clock-driven)
                         dd/dt = -d / taud : 1 (clock-driven)
                         ds/dt = c * d / taus : 1 (clock-driven)
                         dApre/dt = -Apre / taupre : 1 (event-driven)
                         dApost/dt = -Apost / taupost : 1 (event-driven)""",
                    on_pre="""ge += s
                          Apre += dApre
                          c = clip(c + Apost, -gmax, gmax)
                          s = clip(s, -gmax, gmax)""",
                    on_post="""Apost += dApost
                          c = clip(c + Apre, -gmax, gmax)
                          s = clip(s, -gmax, gmax)""", method="euler", namespace=ns)
    stdp.connect(i=0, j=1)
    stdp.s, stdp.c, stdp.d = W0, 0.0, 0.0
    dopamine = SpikeGeneratorGroup(1, np.zeros(3, dtype=int), np.array(REWARD_MS) * ms)
    reward = Synapses(dopamine, stdp, on_pre="d_post += epsilon_dopa", namespace=ns)
    reward.connect()
    mon = StateMonitor(stdp, ["s", "c", "d"], record=[0], when="end")
    spikes = SpikeMonitor(neurons)
    Network(inp, neurons, kick, stdp, dopamine, reward, mon, spikes).run(DURATION * second)
    steps = round(DURATION / dt)
    out = {k: np.zeros(steps) for k in ("pre", "post", "reward")}
    for i, t in zip(np.asarray(spikes.i), np.asarray(spikes.t), strict=True):
        out["pre" if i == 0 else "post"][round(t / dt)] = 1.0
    out["reward"][[round(t * 1e-3 / dt) for t in REWARD_MS]] = EPS
    out.update(s=np.asarray(mon.s[0]), c=np.asarray(mon.c[0]), d=np.asarray(mon.d[0]))
    return out


@pytest.fixture(scope="module")
def brian2_runs() -> Iterator[dict[float, dict[str, np.ndarray]]]:
    yield {dt: _brian2_protocol(dt) for dt in (1e-4, 1e-3)}


def _drive(rule: DopamineSTDP, w0: np.ndarray, pre: np.ndarray, post: np.ndarray,
           release: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """``rule.update`` step by step on ``[T, B, n]`` rasters of a dense projection, its
    change handed on as the graph's stepper does; ``w``, ``c``, ``d`` after every step."""
    proj = Projection("p", "a", "b", torch.tensor(w0), same_step=True)
    proj.make_plastic()
    state = rule.initial_state(proj, pre.shape[1], torch.device("cpu"), torch.float64)
    pre_t, post_t, rel = (torch.tensor(a) for a in (pre, post, release))
    ws, cs, ds = [], [], []
    for t in range(pre.shape[0]):
        act = SynapseActivity(pre_t[t], post_t[t], None, None, t)
        dw, state = rule.update(act, proj.effective_weight().detach(), state, dt,
                                {"dopamine": rel[t]})
        proj.apply_update(reduce_batch(dw, rule.batch_reduction, proj.weight.shape))
        ws.append(proj.effective_weight().detach().numpy().copy())
        cs.append(state.c.numpy().copy())
        ds.append(state.d.numpy().copy())
    return {"w": np.array(ws), "c": np.array(cs), "d": np.array(ds)}


def test_two_neuron_protocol_equals_brian2_step_by_step(brian2_runs: dict) -> None:
    ref = brian2_runs[1e-4]
    assert ref["pre"].sum() == 6 and ref["post"].sum() == 6
    got = _drive(DopamineSTDP(_example_params()), np.full((1, 1), W0), ref["pre"][:, None, None],
                 ref["post"][:, None, None], ref["reward"], 1e-4)
    np.testing.assert_allclose(got["c"][:, 0, 0, 0], ref["c"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["d"][:, 0], ref["d"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["w"][:, 0, 0], ref["s"], rtol=0, atol=1e-12)
    # the protocol's story: two causal pairings rewarded raise w, the anti-causal one lowers it
    at = [round(t * 10) for t in REWARD_MS] + [len(ref["s"]) - 1]
    steps = np.diff(ref["s"][at])
    assert steps[0] > 0 and steps[1] > 0 and steps[2] < 0
    assert ref["s"][round(3.5e4)] == pytest.approx(W0, abs=1e-15)   # no reward, no change


@pytest.mark.parametrize("sparse", [False, True])
def test_graph_run_with_dopamine_modulator_equals_brian2(brian2_runs: dict, sparse: bool) -> None:
    dt = 1e-3
    ref = brian2_runs[dt]
    g = Graph(dt=dt).double()
    g.add(InputRegion("pre", 1))
    g.add(InputRegion("teach", 1))
    # the teacher makes 'post' spike exactly when Brian2's post neuron did: the membrane
    # forgets within a step and the plastic input (< gmax) never reaches the threshold
    g.add(SpikingRegion("post", 1, "lif", LIFParameters(tau_mem=1.1e-3, threshold=100.0,
                                                          input_scaling="direct", reset="zero")))
    g.connect("teach", "post", torch.full((1, 1), 1000.0, dtype=torch.float64), same_step=True)
    p = g.connect("pre", "post", torch.full((1, 1), W0, dtype=torch.float64), same_step=True,
                  sparse=sparse, name="syn")
    rule = DopamineSTDP(_example_params())
    p.add_rule(rule)
    mon = g.monitor("syn", "weights")
    x = {"pre": torch.tensor(ref["pre"])[:, None, None],
         "teach": torch.tensor(ref["post"])[:, None, None]}
    release = torch.tensor(ref["reward"])
    chunk, c, d = 1000, [], []
    for k in range(0, len(release), chunk):
        g.run(chunk, inputs={n: v[k:k + chunk] for n, v in x.items()},
              modulators={"dopamine": release[k:k + chunk]})
        st = g.state.rules[f"syn.{rule.slot}"]
        c.append(float(st.c.reshape(())))
        d.append(float(st.d.reshape(())))
    w = np.asarray(mon.data()["values"]).reshape(-1)
    np.testing.assert_allclose(w, ref["s"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, ref["c"][chunk - 1::chunk], rtol=0, atol=1e-12)
    np.testing.assert_allclose(d, ref["d"][chunk - 1::chunk], rtol=0, atol=1e-12)
    assert np.abs(ref["s"]).max() > 1e-5


def _one_pair_then_reward(delay: float, integration: str, dt: float) -> float:
    """Pre at 0.2 s, post ``delay`` s later (negative: before), a release of 0.5 at
    0.5 s; the weight change after 3 s."""
    steps = round(3.0 / dt)
    pre, post, rel = np.zeros((steps, 1, 1)), np.zeros((steps, 1, 1)), np.zeros(steps)
    pre[round(0.2 / dt)] = 1.0
    post[round((0.2 + delay) / dt)] = 1.0
    rel[round(0.5 / dt)] = 0.5
    p = _example_params(integration=integration, c_max=math.inf, w_min=-1.0, w_max=1.0)
    return float(_drive(DopamineSTDP(p), np.zeros((1, 1)), pre, post, rel, dt)["w"][-1, 0, 0])


@pytest.mark.parametrize("delay", [10e-3, -15e-3])
def test_exact_integration_matches_the_closed_form_of_one_rewarded_pair(delay: float) -> None:
    p, dt = _example_params(), 1e-3
    dw = _one_pair_then_reward(delay, "exact", dt)
    t_late = 0.2 + max(delay, 0.0)                       # the second spike of the pair
    c0 = p.a_plus * math.exp(-delay / p.tau_plus) if delay >= 0 else \
        -p.a_minus * math.exp(delay / p.tau_minus)
    tau_cd = 1.0 / (1.0 / p.tau_c + 1.0 / p.tau_d)
    horizon = 3.0 - dt - 0.5                             # reward to the last step
    expected = c0 * math.exp(-(0.5 - t_late) / p.tau_c) * 0.5 * tau_cd / p.tau_s * \
        -math.expm1(-horizon / tau_cd)
    assert dw == pytest.approx(expected, rel=1e-9)
    # Euler approaches it at first order in dt
    err = [abs(_one_pair_then_reward(delay, "euler", h) / expected - 1) for h in (1e-3, 5e-4)]
    assert err[0] < 1e-2 and err[0] / err[1] == pytest.approx(2.0, rel=0.15)


def test_without_dopamine_no_weight_changes_whatever_the_spikes() -> None:
    rng = np.random.default_rng(0)
    pre, post = (rng.random((2000, 2, 3)) < 0.05).astype(float), \
        (rng.random((2000, 2, 4)) < 0.05).astype(float)
    got = _drive(DopamineSTDP(_example_params()), np.full((3, 4), 0.005), pre, post,
                 np.zeros(2000), 1e-3)
    assert np.abs(got["c"]).max() > 1e-5                 # eligibility is built ...
    np.testing.assert_array_equal(got["w"], 0.005)       # ... and nothing consolidates it


def test_tonic_release_holds_dopamine_at_its_analytic_level() -> None:
    dt, steps, tonic = 1e-3, 3000, 0.05
    rel = rpe_release(torch.zeros(steps, 1, dtype=torch.float64), RPEParameters(tonic=tonic),
                      dt).release
    got = _drive(DopamineSTDP(DopamineSTDPParameters()), np.zeros((1, 1)), np.zeros((steps, 1, 1)),
                 np.zeros((steps, 1, 1)), rel[:, 0].numpy(), dt)
    a = math.exp(-dt / 0.2)
    level = tonic * dt * (1 - a ** steps) / (1 - a)       # the geometric sum of releases
    assert got["d"][-1, 0] == pytest.approx(level, rel=1e-9)
    assert tonic * dt / (1 - a) == pytest.approx(tonic * 0.2, rel=3e-3)


def test_prediction_error_of_a_repeated_reward_and_of_its_omission() -> None:
    alpha, R, n = 0.2, 2.0, 12
    reward = torch.zeros(10 * n + 10, dtype=torch.float64)
    reward[torch.arange(n) * 10] = R
    outcome = reward != 0
    outcome[10 * n] = True                                # a due reward that does not come
    out = rpe_release(reward, RPEParameters(alpha=alpha, gain=3.0, tonic=0.0), 1e-3,
                      outcome=outcome)
    got = out.phasic[outcome].numpy()
    expected = [3.0 * R * (1 - alpha) ** k for k in range(n)] + \
        [-3.0 * R * (1 - (1 - alpha) ** n)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert float(out.phasic[~outcome].abs().max()) == 0.0
    assert float(out.expectation[-1]) == pytest.approx(R * (1 - (1 - alpha) ** n) * (1 - alpha))


def test_batch_moves_the_shared_weight_by_the_mean_change() -> None:
    rng = np.random.default_rng(1)
    T = 1500
    pre, post = (rng.random((T, 2, 2)) < 0.04).astype(float), \
        (rng.random((T, 2, 2)) < 0.04).astype(float)
    rel = np.zeros((T, 2))
    rel[::100, 0], rel[50::100, 1] = 0.5, -0.3
    p = _example_params(w_min=-1.0, w_max=1.0, c_max=math.inf)
    both = _drive(DopamineSTDP(p), np.zeros((2, 2)), pre, post, rel, 1e-3)["w"][-1]
    # with unbounded weights each sample's change is additive in w, so the shared
    # weight moves by the mean of the two single-sample runs
    singles = [_drive(DopamineSTDP(p), np.zeros((2, 2)), pre[:, b:b + 1], post[:, b:b + 1],
                      rel[:, b], 1e-3)["w"][-1] for b in range(2)]
    np.testing.assert_allclose(both, (singles[0] + singles[1]) / 2, rtol=1e-9, atol=1e-15)
    assert np.abs(both).max() > 1e-6


def test_weights_stay_in_bounds_under_a_flood_of_dopamine() -> None:
    T = 500
    pre = np.zeros((T, 1, 1))
    post = np.zeros((T, 1, 1))
    pre[10::20], post[12::20] = 1.0, 1.0
    got = _drive(DopamineSTDP(_example_params(w_min=0.0)), np.full((1, 1), 0.005), pre, post,
                 np.full(T, 10.0), 1e-3)
    assert got["w"].max() == GMAX and got["w"].min() >= 0.0
    assert np.abs(got["c"]).max() <= GMAX


@pytest.mark.parametrize("kw, name", [({"tau_c": 0.0}, "tau_c"), ({"tau_d": -1.0}, "tau_d"),
                                      ({"a_plus": float("nan")}, "a_plus"),
                                      ({"w_min": 1.0, "w_max": 0.0}, "w_min"),
                                      ({"c_max": 0.0}, "c_max"),
                                      ({"integration": "rk4"}, "integration")])
def test_bad_parameters_name_themselves(kw: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        DopamineSTDPParameters(**kw)


def test_a_missing_or_misshapen_modulator_is_named() -> None:
    rule = DopamineSTDP()
    proj = Projection("p", "a", "b", torch.zeros(2, 3, dtype=torch.float64), same_step=True)
    st = rule.initial_state(proj, 2, torch.device("cpu"), torch.float64)
    act = SynapseActivity(torch.zeros(2, 2, dtype=torch.float64),
                          torch.zeros(2, 3, dtype=torch.float64), None, None, 0)
    w = proj.weight.detach()
    with pytest.raises(ParameterError, match="'dopamine'"):
        rule.update(act, w, st, 1e-3, {"dopa": torch.tensor(0.0)})
    with pytest.raises(ShapeError, match="B=2"):
        rule.update(act, w, st, 1e-3, {"dopamine": torch.zeros(3)})
    with pytest.raises(ParameterError, match="alpha"):
        RPEParameters(alpha=1.5)
