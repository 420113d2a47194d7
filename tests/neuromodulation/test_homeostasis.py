"""Homeostasis against analytic results and a loop written here: synaptic scaling step by
step (a numpy loop, dense and sparse, batch mean), its closed form with the rate estimate
relaxing, its fixed point for a LIF driven by a constant input (the period of a discrete
LIF in closed form), and intrinsic threshold adaptation converging from above, below and
silence to the threshold at which the LIF rate formula gives the target,
:math:`r = 1/(\\tau \\ln(x/(x - \\vartheta)))`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _stdp_nets import DT, poisson_raster, teacher_graph

from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, InputRegion, SpikingRegion
from neuromodulation import run_chunked
from neuromodulation.homeostasis import (
    IntrinsicThreshold,
    IntrinsicThresholdParameters,
    SynapticScaling,
    SynapticScalingParameters,
)


def _scaling_reference(w0: np.ndarray, post: np.ndarray, *, r_target: float, eta: float,
                       tau_r: float, w_min: float, w_max: float, r0: float) -> np.ndarray:
    """Synaptic scaling neuron by neuron: EMA of the spike rate (exact decay, spikes held
    over the step), then w_ij <- clip(w_ij (1 + max(eta dt (r* - r_j), -1))) per sample,
    the shared weights moved by the batch mean."""
    T, B, m = post.shape
    a = math.exp(-DT / tau_r)
    rate = np.full((B, m), r0)
    w = w0.astype(np.float64).copy()
    for t in range(T):
        news = []
        for b in range(B):
            wb = w.copy()
            for j in range(m):
                rate[b, j] = a * rate[b, j] + (1 - a) * post[t, b, j] / DT
                f = max(eta * DT * (r_target - rate[b, j]), -1.0)
                for i in range(w.shape[0]):
                    wb[i, j] = min(max(w[i, j] * (1 + f), w_min), w_max)
            news.append(wb)
        w = w + np.mean([wb - w for wb in news], axis=0)
    return w


@pytest.mark.parametrize("sparse", [False, True])
def test_scaling_equals_a_loop_written_here(sparse: bool) -> None:
    """Poisson postsynaptic spikes imposed by a teacher, batch of 2, weights near both
    bounds (the clip acts): the graph's weights equal the loop's to 1e-12."""
    rng = np.random.default_rng(3)
    w0 = rng.uniform(0.05, 0.6, (5, 4))
    w0[rng.random((5, 4)) < 0.3] = 0.0 if not sparse else 0.3
    if sparse:
        w0[0, 1] = 0.0                  # an absent synapse stays absent
    params = SynapticScalingParameters(r_target=30.0, eta=0.5, tau_r=0.05, w_min=0.0,
                                       w_max=0.62, rate_init=10.0)
    g, p = teacher_graph(w0, SynapticScaling(params), sparse=sparse)
    T, B = 300, 2
    teach = poisson_raster(T, B, 4, 60.0, seed=4)
    teach[:, :, 2] = 0.0                # one silent neuron: its weights grow to w_max
    pre = poisson_raster(T, B, 5, 20.0, seed=5)
    g.run(T, {"pre": torch.tensor(pre), "teach": torch.tensor(teach)})
    expect = _scaling_reference(w0, teach, r_target=30.0, eta=0.5, tau_r=0.05, w_min=0.0,
                                w_max=0.62, r0=10.0)
    got = p.dense_weight().detach().numpy()
    np.testing.assert_allclose(got, expect, rtol=0, atol=1e-12)
    assert got.max() == pytest.approx(0.62) and (got[w0 == 0] == 0).all()


def test_scaling_follows_its_closed_form_while_the_estimate_relaxes() -> None:
    """Silent neurons, estimate from r0: r(t) = r0 e^{-t/tau}, so ln(w(T)/w(0)) =
    eta (r* T - r0 tau (1 - e^{-T/tau})) in continuous time (O(dt) apart), and exactly
    prod_k (1 + eta dt (r* - r0 a^k)) in discrete time."""
    r_target, eta, tau_r, r0, T = 8.0, 0.05, 0.3, 40.0, 1000
    w0 = np.array([[0.2, -0.3], [0.5, 0.1]])
    g, p = teacher_graph(w0, SynapticScaling(SynapticScalingParameters(
        r_target=r_target, eta=eta, tau_r=tau_r, rate_init=r0)))
    zeros = torch.zeros(T, 1, 2, dtype=torch.float64)
    g.run(T, {"pre": zeros, "teach": zeros})
    t = T * DT
    log_factor = eta * (r_target * t - r0 * tau_r * (1 - math.exp(-t / tau_r)))
    got = p.dense_weight().detach().numpy()
    assert log_factor < -0.1                            # the scaling is visible
    # first order in dt: the sum of r0 a^k dt falls short of the integral by ~ r0 dt / 2
    np.testing.assert_allclose(np.log(got / w0), log_factor, rtol=0,
                               atol=eta * r0 * DT)
    # in discrete time the same closed form is a product over the steps
    a = math.exp(-DT / tau_r)
    k = np.arange(1, T + 1)
    product = np.prod(1 + eta * DT * (r_target - r0 * a ** k))
    np.testing.assert_allclose(got / w0, product, rtol=1e-12)
    assert (np.sign(got) == np.sign(w0)).all()          # multiplicative: signs kept


def _lif_graph(dt: float, tau: float, x: list[float], rule: object) -> tuple[Graph, object]:
    """A constant input of 1 through weights ``x`` onto LIF neurons (threshold 1 V, reset
    to 0, exact integration: after a reset v_n = x (1 - a^n), a = e^{-dt/tau})."""
    g = Graph(dt=dt).double()
    g.add(InputRegion("in", 1))
    g.add(SpikingRegion("E", len(x), "lif", LIFParameters(tau_mem=tau, threshold=1.0,
                                                           reset="zero")))
    p = g.connect("in", "E", torch.tensor([x], dtype=torch.float64))
    p.add_rule(rule)
    return g, p


def _periods(spikes: torch.Tensor) -> np.ndarray:
    """Mean inter-spike interval of each neuron (steps) from a ``[T, n]`` raster."""
    return np.array([np.diff(np.nonzero(s)[0]).mean() for s in spikes.T.numpy()])


def test_scaling_drives_a_lif_to_the_target_rate() -> None:
    """A LIF with constant input x fires every n steps, n the least with x (1 - a^n) >= 1.
    Scaling towards r* = 1/(100 dt) must end with period ~100 steps from above and below,
    i.e. weights in the closed-form interval [1/(1 - a^101), 1/(1 - a^98)]."""
    dt, tau, n = 5e-4, 20e-3, 100
    r_target = 1.0 / (n * dt)
    params = SynapticScalingParameters(r_target=r_target, eta=0.02, tau_r=0.05, w_min=0.0,
                                       w_max=5.0)
    g, p = _lif_graph(dt, tau, [1.03, 1.06, 1.15, 1.3], SynapticScaling(params))
    T = 6000
    out = g.run(T, {"in": torch.ones(T, 1, 1, dtype=torch.float64)}, record=["E"])
    period = _periods(out.outputs["E"][-2000:, 0])
    a = math.exp(-dt / tau)
    w = p.effective_weight().detach().numpy()[0]
    assert np.all((w >= 1 / (1 - a ** (n + 1))) & (w <= 1 / (1 - a ** (n - 2)))), w
    np.testing.assert_allclose(1.0 / (period * dt), r_target, rtol=0.015)  # 1 step: 1 %
    rate = g.state.rules[f"{p.name}.{p.rules[0].slot}"].rate
    assert float(rate.min()) > 0                         # the estimate has seen the spikes


@pytest.mark.parametrize("x", [[0.9, 1.05, 1.5]])
def test_threshold_adaptation_reaches_the_analytic_threshold(x: list[float]) -> None:
    """Constant input x, target r* = 50 Hz, tau = 10 ms, threshold 1 V at the start: the
    x = 0.9 neuron is silent, 1.05 fires too slowly, 1.5 too fast. Oracle: the LIF rate
    r(theta) = 1 / (tau ln(x / (x - theta))) (reset 0, no refractoriness), so the final
    threshold must be theta* = x (1 - e^{-1/(r* tau)}) and the measured rate r(theta)."""
    dt, tau, r_target = 2e-4, 10e-3, 50.0
    rule = IntrinsicThreshold(IntrinsicThresholdParameters(
        r_target=r_target, eta_theta=0.02, tau_r=0.05, shift_min=-0.5, shift_max=2.0))
    g, p = _lif_graph(dt, tau, x, rule)
    T = 8000
    ones = torch.ones(T + 1000, 1, 1, dtype=torch.float64)
    run = run_chunked(g, T, every=250, inputs={"in": ones})
    assert run.chunks == T // 250
    shift = g.state.rules[f"{p.name}.{rule.slot}"].shift
    theta = 1.0 + shift[0].numpy()
    xs = np.array(x)
    np.testing.assert_allclose(theta, xs * (1 - math.exp(-1 / (r_target * tau))), rtol=1e-2)
    out = g.run(1000, {"in": ones[:1000]}, record=["E"],
                modulation={"E": {"threshold": shift.expand(1000, *shift.shape)}})
    measured = 1.0 / (_periods(out.outputs["E"][:, 0]) * dt)
    formula = 1.0 / (tau * np.log(xs / (xs - theta)))
    # periods are whole steps (100 at the target): one step is 1 %
    np.testing.assert_allclose(measured, formula, rtol=2e-2)
    np.testing.assert_allclose(measured, r_target, rtol=1.5e-2)


def test_threshold_shift_stays_within_its_bounds() -> None:
    """A silent neuron (input far below threshold) lowers its threshold only to shift_min."""
    rule = IntrinsicThreshold(IntrinsicThresholdParameters(r_target=50.0, eta_theta=0.05,
                                                           tau_r=0.02, shift_min=-0.25))
    g, p = _lif_graph(1e-3, 10e-3, [0.1], rule)
    run_chunked(g, 400, every=100, inputs={"in": torch.ones(400, 1, 1, dtype=torch.float64)})
    # d(shift)/dt = -eta r* = -2.5 V/s: the bound is reached after 0.1 s
    assert float(g.state.rules[f"{p.name}.{rule.slot}"].shift) == -0.25


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ParameterError, match="tau_r"):
        SynapticScalingParameters(tau_r=-1.0)
    with pytest.raises(ParameterError, match="eta"):
        SynapticScalingParameters(eta=float("nan"))
    with pytest.raises(ParameterError, match="w_min"):
        SynapticScalingParameters(w_min=1.0, w_max=0.5)
    with pytest.raises(ParameterError, match="r_target"):
        SynapticScalingParameters(r_target=-3.0)
    with pytest.raises(ParameterError, match="shift_min"):
        IntrinsicThresholdParameters(shift_min=0.1)
    with pytest.raises(ParameterError, match="eta_theta"):
        IntrinsicThresholdParameters(eta_theta=float("nan"))
    with pytest.raises(ParameterTypeError, match="SynapticScalingParameters"):
        SynapticScaling(IntrinsicThresholdParameters())


def test_rule_refuses_activity_that_does_not_fit() -> None:
    """A state built for 4 postsynaptic neurons fed 3: a ShapeError naming both shapes."""
    from aura_snn.graph.plasticity import SynapseActivity
    from aura_snn.graph.projection import Projection

    rule = SynapticScaling()
    proj = Projection("p", "a", "b", torch.ones(2, 4, dtype=torch.float64))
    state = rule.initial_state(proj, 1, torch.device("cpu"), torch.float64)
    act = SynapseActivity(torch.zeros(1, 2), torch.zeros(1, 3), None, None, 0)
    with pytest.raises(ShapeError, match=r"\(1, 3\).*\(1, 4\)"):
        rule.update(act, proj.weight, state, DT, {})


def test_two_threshold_rules_on_one_region_are_refused() -> None:
    g, p = _lif_graph(1e-3, 10e-3, [1.0], IntrinsicThreshold())
    p.add_rule(IntrinsicThreshold())
    with pytest.raises(ParameterError, match="two IntrinsicThreshold"):
        run_chunked(g, 10, every=5, inputs={"in": torch.ones(10, 1, 1, dtype=torch.float64)})
