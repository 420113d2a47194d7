"""STDP against analytic results and a plain-Python reference: the classic pair window
:math:`A_+ e^{-\\Delta t/\\tau_+}` / :math:`-A_- e^{\\Delta t/\\tau_-}`, soft bounds,
nearest vs all-to-all pairing, the triplet terms of Pfister & Gerstner (2006, eq. 3),
the batch (one shared weight moved by the batch mean), bounds and bad parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _stdp_nets import DT, drive, poisson_raster, reference_pair, teacher_graph

from aura_snn.errors import ParameterError, ParameterTypeError
from neuromodulation.stdp import (
    PairSTDP,
    PairSTDPParameters,
    TripletSTDP,
    TripletSTDPParameters,
)

T = 80


def _pair_at(t_pre: list[int], t_post: list[int]) -> tuple[np.ndarray, np.ndarray]:
    pre, post = np.zeros((T, 1, 1)), np.zeros((T, 1, 1))
    pre[t_pre, 0, 0] = 1.0
    post[t_post, 0, 0] = 1.0
    return pre, post


@pytest.mark.parametrize("form", ["additive", "multiplicative"])
@pytest.mark.parametrize("lag", [-30, -7, -1, 0, 1, 5, 30])
def test_one_pair_gives_the_classic_window(form: str, lag: int) -> None:
    """Pre at step 20, post at 20 + lag (lag >= 0 potentiates, simultaneous included)."""
    p = PairSTDPParameters(a_plus=0.01, a_minus=0.012, tau_plus=17e-3, tau_minus=34e-3,
                           w_min=-0.25, w_max=1.0, weight_dependence=form)
    w0 = 0.375
    w = drive(PairSTDP(p), np.array([[w0]]), *_pair_at([40], [40 + lag]))[-1, 0, 0]
    dt_s = abs(lag) * DT
    if lag >= 0:
        f = (p.w_max - w0) if form == "multiplicative" else 1.0
        expect = p.a_plus * f * math.exp(-dt_s / p.tau_plus)
    else:
        f = (w0 - p.w_min) if form == "multiplicative" else 1.0
        expect = -p.a_minus * f * math.exp(-dt_s / p.tau_minus)
    assert w - w0 == pytest.approx(expect, rel=1e-12, abs=0)


@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
def test_nearest_pairs_only_with_the_latest_spike(pairing: str) -> None:
    """Pre at 10, 20; post at 25 (two potentiating pairs); post at 40, 43; pre at 47
    (two depressing pairs). Nearest keeps only the latest partner of each."""
    p = PairSTDPParameters(a_plus=0.01, a_minus=0.02, tau_plus=20e-3, tau_minus=10e-3,
                           pairing=pairing)
    w0 = 0.5
    w = drive(PairSTDP(p), np.array([[w0]]), *_pair_at([10, 20, 47], [25, 40, 43]))
    e = math.exp
    pot = p.a_plus * (e(-5 * DT / p.tau_plus) + (0 if pairing == "nearest" else
                                                  e(-15 * DT / p.tau_plus)))
    # the posts at 40 and 43 also pair with the pres at 10 and 20 (potentiation)
    for t_post in (40, 43):
        pot += p.a_plus * (e(-(t_post - 20) * DT / p.tau_plus) + (
            0 if pairing == "nearest" else e(-(t_post - 10) * DT / p.tau_plus)))
    dep = p.a_minus * (e(-4 * DT / p.tau_minus) + (0 if pairing == "nearest" else
                                                    e(-7 * DT / p.tau_minus)))
    # ... and the pre at 47 with the post at 25 (all-to-all only: nearest resets at 40)
    if pairing == "all_to_all":
        dep += p.a_minus * e(-22 * DT / p.tau_minus)
    assert w[-1, 0, 0] - w0 == pytest.approx(pot - dep, rel=1e-12)
    assert w[24, 0, 0] == w0 and w[26, 0, 0] > w0          # nothing happens before 25


@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
def test_triplet_terms(pairing: str) -> None:
    """pre-post-post: post 2 adds A3+ o2 r1; post-pre-pre: pre 2 adds A3- r2 o1 (eq. 3)."""
    p = TripletSTDPParameters(a2_plus=4e-3, a3_plus=6e-3, a2_minus=7e-3, a3_minus=3e-3,
                              pairing=pairing)
    e = math.exp
    w0 = 0.5
    w = drive(TripletSTDP(p), np.array([[w0]]), *_pair_at([10], [15, 25]))[-1, 0, 0]
    expect = p.a2_plus * e(-5 * DT / p.tau_plus) + e(-15 * DT / p.tau_plus) * (
        p.a2_plus + p.a3_plus * e(-10 * DT / p.tau_y))
    assert w - w0 == pytest.approx(expect, rel=1e-12)
    w = drive(TripletSTDP(p), np.array([[w0]]), *_pair_at([15, 25], [10]))[-1, 0, 0]
    expect = -p.a2_minus * e(-5 * DT / p.tau_minus) - e(-15 * DT / p.tau_minus) * (
        p.a2_minus + p.a3_minus * e(-10 * DT / p.tau_x))
    assert w - w0 == pytest.approx(expect, rel=1e-12)
    # two pres then a post: all-to-all sums both, nearest keeps the latest (r1 resets)
    w = drive(TripletSTDP(p), np.array([[w0]]), *_pair_at([10, 14], [20]))[-1, 0, 0]
    r1 = e(-6 * DT / p.tau_plus) + (0 if pairing == "nearest" else e(-10 * DT / p.tau_plus))
    assert w - w0 == pytest.approx(p.a2_plus * r1, rel=1e-12)


@pytest.mark.parametrize("form", ["additive", "multiplicative"])
@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
def test_batch_moves_one_shared_weight_by_the_batch_mean(form: str, pairing: str) -> None:
    """B = 2 samples with different rasters through the graph (postsynaptic spikes imposed
    by a teacher) against the synapse-by-synapse reference of the same batch rule."""
    steps, n_pre, n_post = 300, 4, 3
    pre = poisson_raster(steps, 2, n_pre, 60.0, 1)
    post = poisson_raster(steps, 2, n_post, 40.0, 2)
    w0 = np.random.default_rng(3).uniform(0.2, 0.8, (n_pre, n_post))
    kw = dict(a_plus=0.02, a_minus=0.025, tau_plus=15e-3, tau_minus=25e-3, w_min=0.0,
              w_max=1.0)
    rule = PairSTDP(PairSTDPParameters(**kw, weight_dependence=form, pairing=pairing))
    g, p = teacher_graph(w0, rule)
    r = g.run(steps, inputs={"pre": torch.tensor(pre), "teach": torch.tensor(post)},
              record=["post"])
    assert torch.equal(r.outputs["post"], torch.tensor(post))     # the teacher decides
    ref = reference_pair(w0, pre, post, **kw, multiplicative=form == "multiplicative",
                         nearest=pairing == "nearest")
    assert np.abs(ref - w0).max() > 0.05                            # weights moved
    np.testing.assert_allclose(p.effective_weight().numpy(), ref, rtol=0, atol=1e-12)
    # one copy of a sample = that sample alone; two copies = the same
    single = reference_pair(w0, pre[:, :1], post[:, :1], **kw,
                            multiplicative=form == "multiplicative",
                            nearest=pairing == "nearest")
    both = drive(rule, w0, np.repeat(pre[:, :1], 2, 1), np.repeat(post[:, :1], 2, 1))
    np.testing.assert_allclose(both[-1], single, rtol=0, atol=1e-12)


def test_float32_follows_the_float64_reference() -> None:
    """The same batch run in float32: weights within float32 rounding of the reference."""
    steps = 300
    pre, post = poisson_raster(steps, 2, 4, 60.0, 7), poisson_raster(steps, 2, 3, 40.0, 8)
    w0 = np.random.default_rng(9).uniform(0.2, 0.8, (4, 3))
    kw = dict(a_plus=0.02, a_minus=0.025, tau_plus=15e-3, tau_minus=25e-3, w_min=0.0,
              w_max=1.0)
    g, p = teacher_graph(w0, PairSTDP(PairSTDPParameters(**kw)), dtype=torch.float32)
    g.run(steps, inputs={"pre": torch.tensor(pre, dtype=torch.float32),
                         "teach": torch.tensor(post, dtype=torch.float32)})
    ref = reference_pair(w0, pre, post, **kw, multiplicative=False, nearest=False)
    assert p.effective_weight().dtype == torch.float32
    np.testing.assert_allclose(p.effective_weight().double().numpy(), ref, rtol=0, atol=2e-6)


def test_activity_that_does_not_fit_the_traces_is_refused() -> None:
    from aura_snn.errors import ShapeError
    from aura_snn.graph.plasticity import SynapseActivity
    from aura_snn.graph.projection import Projection

    proj = Projection("p", "a", "b", torch.zeros(4, 3, dtype=torch.float64))
    rule = PairSTDP()
    st = rule.initial_state(proj, 1, torch.device("cpu"), torch.float64)
    act = SynapseActivity(torch.zeros(1, 5, dtype=torch.float64),
                          torch.zeros(1, 3, dtype=torch.float64), None, None, 0)
    with pytest.raises(ShapeError, match=r"activity pre \(1, 5\) / post \(1, 3\) does not "
                                         r"fit its traces \(1, 4\) / \(1, 3\)"):
        rule.update(act, proj.weight, st, DT, {})


@pytest.mark.parametrize("rule", [
    PairSTDP(PairSTDPParameters(a_plus=3.0, a_minus=3.0, weight_dependence="multiplicative",
                                w_min=-0.5, w_max=0.5)),
    PairSTDP(PairSTDPParameters(a_plus=0.7, a_minus=0.9, w_min=-0.5, w_max=0.5)),
    TripletSTDP(TripletSTDPParameters(a2_plus=0.5, a3_plus=0.5, a2_minus=0.6, a3_minus=0.6,
                                      w_min=-0.5, w_max=0.5))])
def test_weights_never_leave_their_bounds(rule: object) -> None:
    """Amplitudes far past the bounds (soft-bound factors above 1 overshoot): every step's
    weights stay in [w_min, w_max], in the pure update and through the graph."""
    steps = 400
    pre = poisson_raster(steps, 3, 6, 150.0, 4)
    post = poisson_raster(steps, 3, 2, 150.0, 5)
    w0 = np.random.default_rng(6).uniform(-0.5, 0.5, (6, 2))
    w = drive(rule, w0, pre, post)
    assert w.min() >= -0.5 and w.max() <= 0.5 and np.isfinite(w).all()
    assert (w == -0.5).any() and (w == 0.5).any()                  # the bounds were hit
    g, p = teacher_graph(w0, rule)
    mon = g.monitor(p.name, "weights")
    g.run(steps, inputs={"pre": torch.tensor(pre), "teach": torch.tensor(post)})
    ws = np.asarray(mon.data()["values"])
    assert ws.min() >= -0.5 and ws.max() <= 0.5 and np.isfinite(ws).all()


@pytest.mark.parametrize("cls, kwargs, match", [
    (PairSTDPParameters, {"tau_plus": -0.02}, r"tau_plus must be finite and > 0 s, got -0.02"),
    (PairSTDPParameters, {"tau_minus": 0.0}, r"tau_minus .* got 0.0"),
    (PairSTDPParameters, {"a_plus": float("nan")}, r"a_plus must be finite and >= 0, got nan"),
    (PairSTDPParameters, {"a_minus": -0.0105}, r"a_minus must be finite and >= 0, got -0.0105"),
    (PairSTDPParameters, {"w_min": 1.0, "w_max": 0.5}, r"w_min must be <= w_max, got "
                                                        r"w_min=1.0 and w_max=0.5"),
    (PairSTDPParameters, {"w_max": float("inf")}, r"w_max must be finite, got inf"),
    (PairSTDPParameters, {"weight_dependence": "soft"}, r"weight_dependence must be one of "
                                                          r"'additive', 'multiplicative'"),
    (PairSTDPParameters, {"pairing": "nn"}, r"pairing must be one of 'all_to_all', "
                                             r"'nearest'; got 'nn'"),
    (TripletSTDPParameters, {"tau_y": -1.0}, r"tau_y must be finite and > 0 s, got -1.0"),
    (TripletSTDPParameters, {"a3_minus": float("nan")}, r"a3_minus .* got nan"),
    (TripletSTDPParameters, {"w_min": 2.0}, r"w_min must be <= w_max"),
])
def test_bad_parameters_are_named(cls: type, kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        cls(**kwargs)


def test_rule_refuses_foreign_parameters() -> None:
    with pytest.raises(ParameterTypeError, match="PairSTDPParameters, got "
                                                 "TripletSTDPParameters"):
        PairSTDP(TripletSTDPParameters())
