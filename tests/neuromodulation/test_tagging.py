"""Synaptic tagging and capture: the capture window against the analytic integral of
tag(t) p(t) (scipy quadrature written here), the classic protocols of Frey & Morris (1997)
(weak alone decays back; weak before strong and strong before weak within the window are
consolidated, outside it not, with an analytic upper bound), resources per neuron vs
global, state moved by rewiring, and named errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _stdp_nets import DT, teacher_graph
from scipy.integrate import quad

from aura_snn.errors import InputValueError, ParameterError, ParameterTypeError
from aura_snn.graph.plasticity import SynapseActivity, reduce_batch
from aura_snn.graph.projection import Projection
from neuromodulation import PairSTDP, PairSTDPParameters, SynapticTagging, TaggingParameters

STDP = PairSTDPParameters(a_plus=0.01, a_minus=0.0105)


def _captured(t_p: float, tau_tag: float, tau_p: float, tau_e: float, k: float) -> float:
    """l(inf)/e(0) for a tag set at t = 0 and resources p = e^{-(t - t_p)/tau_p} from t_p
    (t_p may be negative: resources already there), no other plasticity:
    int_0^inf k c p exp(-t/tau_e - k int_0^t c p ds) dt, c = e^{-t/tau_tag}."""
    s0 = max(0.0, t_p)
    beta = 1 / tau_tag + 1 / tau_p

    def cp(t: float) -> float:
        return math.exp(t_p / tau_p - beta * t)

    def big_g(t: float) -> float:
        return math.exp(t_p / tau_p) * (math.exp(-beta * s0) - math.exp(-beta * t)) / beta

    val, _ = quad(lambda t: k * cp(t) * math.exp(-t / tau_e - k * big_g(t)), s0, math.inf,
                  limit=200, epsabs=1e-12)
    return val


def _drive(rule: SynapticTagging, w0: np.ndarray, pre: np.ndarray, post: np.ndarray,
           dopamine: np.ndarray) -> tuple[Projection, object]:
    """The stepper's plasticity call by hand on a dense same-step projection, with the
    modulator ``dopamine[t]``; returns the projection and the rule state."""
    proj = Projection("p", "a", "b", torch.tensor(w0), same_step=True)
    proj.make_plastic()
    state = rule.initial_state(proj, 1, torch.device("cpu"), torch.float64)
    pre_t, post_t, da = torch.tensor(pre), torch.tensor(post), torch.tensor(dopamine)
    for t in range(pre.shape[0]):
        act = SynapseActivity(pre_t[t], post_t[t], None, None, t)
        dw, state = rule.update(act, proj.effective_weight().detach(), state, DT,
                                {"dopamine": da[t]})
        proj.apply_update(reduce_batch(dw, rule.batch_reduction, proj.weight.shape))
    return proj, state


def test_capture_window_matches_the_analytic_integral() -> None:
    """Synapse k gets one simultaneous pre/post pair at t_k (a tag and early change
    A+ = 0.01), one dopamine pulse at 2 s gives resources everywhere; the lasting part of
    each synapse is the integral's fraction of A+, with resources 1.8 s after the tag down
    to 2.5 s before it."""
    tau_tag, tau_p, tau_e, k = 0.5, 0.5, 1.0, 10.0
    tags = [0.2, 1.0, 1.6, 1.9, 2.0, 2.3, 2.8, 4.5]
    t_d = 2.0
    n, T = len(tags), int(10.0 / DT)
    pre, post = np.zeros((T, 1, n)), np.zeros((T, 1, n))
    for i, t in enumerate(tags):
        pre[round(t / DT), 0, i] = post[round(t / DT), 0, i] = 1.0
    da = np.zeros(T)
    da[round(t_d / DT)] = 1.0
    params = TaggingParameters(tag_threshold=5e-3, prp_threshold=math.inf, tau_tag=tau_tag,
                               tau_prp=tau_p, tau_early=tau_e, k=k)
    proj, state = _drive(SynapticTagging(PairSTDP(STDP), params), np.full((n, n), 0.5),
                         pre, post, da)
    got = np.diag(state.late.numpy()) / STDP.a_plus
    expect = np.array([_captured(t_d - t, tau_tag, tau_p, tau_e, k) for t in tags])
    np.testing.assert_allclose(got, expect, rtol=1e-2, atol=1e-3)
    assert expect[4] > 0.6 and expect[0] < 0.02 and expect[-1] < 0.02     # a window
    # off the diagonal no pair was close enough to tag: nothing lasting there
    assert np.abs(state.late.numpy() - np.diag(np.diag(state.late.numpy()))).max() < 1e-6
    # the weight is the start plus the rule's account (nothing clipped), and what was not
    # captured decays back: e <= A+ e^{-(T dt - t_k)/tau_e}
    early = state.early.numpy()
    np.testing.assert_allclose(proj.effective_weight().numpy(),
                               0.5 + early + state.late.numpy(), rtol=0, atol=1e-12)
    bound = STDP.a_plus * np.exp(-(T * DT - np.array(tags)) / tau_e)
    assert np.all(np.abs(np.diag(early)) <= bound * (1 + 1e-9))


NW, NS = 4, 8                      # weak and strong pathway sizes, per postsynaptic neuron
CASES = [("weak", None), ("weak", ("strong", 0.3)), ("weak", ("strong", 5.0)),
         ("strong", ("weak", 0.3)), ("strong", ("weak", 5.0)), ("strong", None)]


def _protocols() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Six independent neurons, one protocol each (``CASES``), on a sparse projection with
    a weak pathway (4 synapses: 3 pre->post pairings, 2 ms apart, at 20 Hz) and a strong
    one (8 synapses: 15 pairings at 100 Hz) per neuron; the first tetanus at 0.1 s."""
    nc, npre = len(CASES), NW + NS
    T = int(11.5 / DT)
    pre, post = np.zeros((T, 1, nc * npre)), np.zeros((T, 1, nc))
    last = np.zeros(nc)

    def tetanus(kind: str, t0: float, j: int) -> float:
        n, period, idx = (3, 50, range(NW)) if kind == "weak" else (15, 10, range(NW, npre))
        for q in range(n):
            t = round(t0 / DT) + q * period
            pre[t, 0, [j * npre + i for i in idx]] = 1.0
            post[t + 2, 0, j] = 1.0
        return (t + 2) * DT

    for j, (first, second) in enumerate(CASES):
        last[j] = tetanus(first, 0.1, j)
        if second is not None:
            t_second = tetanus(second[0], 0.1 + second[1], j)
            if second[0] == "weak":
                last[j] = t_second
    return pre, post, last


def test_weak_and_strong_tetani_frey_morris() -> None:
    """A weak tetanus tags but makes no proteins (E = 4 x 0.025 < 0.25), a strong one does
    (8 x 0.05): weak alone decays back to nothing lasting; weak then strong 0.3 s later,
    or strong then weak 0.3 s later, turns most of the weak pathway's early change into a
    lasting one; 5 s apart (5 tag lifetimes) next to nothing. Bound for weak-then-strong
    at 5 s (resources <= 1 only after the strong tetanus starts, at Delta after the last
    weak tag): l/e <= k e^{-Delta (1/tau_tag + 1/tau_e)} / (1/tau_tag + 1/tau_e)."""
    pre, post, last_weak = _protocols()
    nc, npre = len(CASES), NW + NS
    w0 = np.zeros((nc * npre, nc))
    for j in range(nc):
        w0[j * npre:(j + 1) * npre, j] = 0.5
    params = TaggingParameters(tag_threshold=5e-3, prp_threshold=0.25, tau_tag=1.0,
                               tau_prp=1.0, tau_early=2.0, k=5.0, modulator=None)
    rule = SynapticTagging(PairSTDP(STDP), params)
    g, p = teacher_graph(w0, rule, sparse=True)
    key = f"{p.name}.{rule.slot}"
    pi, po = p.pre_idx.numpy() % npre, p.post_idx.numpy()

    def pathway(field: str, j: int, weak: bool) -> float:
        v = getattr(g.state.rules[key], field).numpy()
        return float(v[(po == j) & ((pi < NW) if weak else (pi >= NW))].mean())

    peak_w = np.zeros(nc)
    t_split = [0.3, 5.4]                    # just after each weak tetanus, to read e_W
    done = 0
    for t_read in t_split + [pre.shape[0] * DT]:
        stop = round(t_read / DT)
        g.run(stop - done, {"pre": torch.tensor(pre[done:stop]),
                            "teach": torch.tensor(post[done:stop])})
        done = stop
        for j in range(nc):
            peak_w[j] = max(peak_w[j], pathway("early", j, True) + pathway("late", j, True))
    late = np.array([pathway("late", j, True) for j in range(nc)])
    frac = np.divide(late, peak_w, out=np.zeros(nc), where=peak_w > 0)
    # weak alone: no resources ever, so nothing lasting, and e decays back with tau_e
    # (peak_w[0] is e at the first reading, t_split[0])
    decayed = peak_w[0] * math.exp(-(pre.shape[0] * DT - t_split[0]) / params.tau_early)
    assert late[0] == 0.0
    assert pathway("early", 0, True) == pytest.approx(decayed, rel=1e-3)
    assert frac[1] > 0.5 and frac[3] > 0.5                                   # captured
    beta = 1 / params.tau_tag + 1 / params.tau_early
    delta = 0.1 + 5.0 - last_weak[2]
    assert frac[2] <= params.k * math.exp(-delta * beta) / beta
    assert frac[4] < 0.05
    for j in (1, 2, 3, 4, 5):                         # the strong pathway consolidates
        assert pathway("late", j, False) > 0.5 * 0.075
    w = p.effective_weight().detach().numpy()
    assert w.min() >= 0.0 and w.max() <= 1.0


@pytest.mark.parametrize("scope", ["neuron", "global"])
def test_resources_per_neuron_or_shared(scope: str) -> None:
    """Neuron 0 gets a strong tetanus, neuron 1 a weak one 0.15 s later: the weak change
    is captured only when resources are shared (scope='global'); per neuron, neuron 1
    never makes any (late stays exactly 0)."""
    n_pre, T = 6, 3000
    pre, post = np.zeros((T, 1, n_pre)), np.zeros((T, 1, 2))
    for q in range(15):
        pre[100 + 10 * q, 0, :4] = 1.0
        post[102 + 10 * q, 0, 0] = 1.0
    for q in range(3):          # after the strong one, so the two never pair (dense w)
        pre[400 + 50 * q, 0, 4:] = 1.0
        post[402 + 50 * q, 0, 1] = 1.0
    w0 = np.zeros((n_pre, 2))
    w0[:4, 0] = w0[4:, 1] = 0.5
    params = TaggingParameters(prp_threshold=0.15, modulator=None, scope=scope)
    _, state = _drive(SynapticTagging(PairSTDP(STDP), params), w0, pre, post, np.zeros(T))
    weak_late = float(state.late.numpy()[4:, 1].mean())
    assert float(state.late.numpy()[:4, 0].mean()) > 0.01
    if scope == "global":
        assert weak_late > 5e-3
    else:
        assert weak_late == 0.0


def test_rewire_carries_tags_with_their_synapses() -> None:
    """Sparse projection: after pruning one synapse and growing one, every kept synapse's
    early, late, tag and STDP trace are those it had (found by its pair); the grown one
    starts at rest."""
    w0 = np.array([[0.5, 0.0, 0.5], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    rule = SynapticTagging(PairSTDP(STDP), TaggingParameters(prp_threshold=0.01,
                                                             modulator=None))
    g, p = teacher_graph(w0, rule, sparse=True)
    T = 60
    pre, teach = np.zeros((T, 1, 3)), np.zeros((T, 1, 3))
    pre[[10, 20, 30, 50], 0, :] = [[1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 1]]
    teach[[12, 22, 32, 51], 0, :] = [[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]]
    g.run(T, {"pre": torch.tensor(pre), "teach": torch.tensor(teach)})
    key = f"{p.name}.{rule.slot}"
    fields = ("early", "late", "tag", "inner_x_pre")

    def by_pair() -> dict:
        st = g.state.rules[key]
        pairs = zip(p.pre_idx.tolist(), p.post_idx.tolist(), strict=True)
        return {pair: tuple(float(getattr(st, f)[..., s].reshape(-1)[0]) for f in fields)
                for s, pair in enumerate(pairs)}

    before = by_pair()
    assert all(any(v != 0 for v in vals) for vals in before.values())
    g.rewire(p.name, prune=np.array([2]), grow=(np.array([0]), np.array([1]), np.array([0.2])))
    after = by_pair()
    gone = list(before)[2]
    assert set(after) == (set(before) - {gone}) | {(0, 1)}
    for pair, vals in after.items():
        assert vals == ((0.0,) * 4 if pair == (0, 1) else before[pair])
    assert torch.equal(g.state.rules[key].syn_post, p.post_idx)


def test_bad_input_is_named() -> None:
    with pytest.raises(ParameterError, match="tau_tag"):
        TaggingParameters(tau_tag=-1.0)
    with pytest.raises(ParameterError, match="prp_threshold"):
        TaggingParameters(prp_threshold=0.0)
    with pytest.raises(ParameterError, match="prp_threshold"):
        TaggingParameters(prp_threshold=float("nan"))
    with pytest.raises(ParameterError, match="k must"):
        TaggingParameters(k=float("nan"))
    with pytest.raises(ParameterError, match="scope"):
        TaggingParameters(scope="cell")
    with pytest.raises(ParameterTypeError, match="inner"):
        SynapticTagging(STDP)
    with pytest.raises(ParameterTypeError, match="TaggingParameters"):
        SynapticTagging(PairSTDP(STDP), STDP)
    rule = SynapticTagging(PairSTDP(STDP))
    pre = np.zeros((3, 1, 2))
    with pytest.raises(InputValueError, match="dopamine"):
        _drive(rule, np.full((2, 2), 0.5), pre, pre, np.array([0.0, float("nan"), 0.0]))
