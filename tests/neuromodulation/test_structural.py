"""Structural plasticity checked from the projection's COO arrays: the pruned synapses are
exactly the weakest (an argsort written here), regrowth keeps the count, never exceeds the
in-degree budget and never duplicates a pair, a seed reproduces a run, rule state moves
with its synapse; and long plastic runs (STDP + scaling + rewiring) in a subprocess: no
NaN, weights in bounds, rates bounded, constant synapse count, flat RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from aura_snn.errors import ParameterError, ParameterTypeError
from aura_snn.functional.lif import LIFParameters
from aura_snn.graph import Graph, PoissonRegion, SpikingRegion
from aura_snn.graph.connectivity import from_indices
from neuromodulation import (
    PairSTDP,
    PairSTDPParameters,
    StructuralParameters,
    StructuralPlasticity,
    SynapticScaling,
    SynapticScalingParameters,
    run_chunked,
)
from neuromodulation.structural import draw_pairs, weakest


def _net(seed: int = 0, n_in: int = 30, n: int = 10, k: int = 6, stdp: bool = False
         ) -> tuple[Graph, object]:
    """Poisson(n_in) -> LIF(n), each LIF neuron with k distinct random inputs, weights
    uniform in [0, 0.5] (distinct values)."""
    rng = np.random.default_rng(seed)
    pre = np.concatenate([rng.choice(n_in, k, replace=False) for _ in range(n)])
    post = np.repeat(np.arange(n), k)
    g = Graph(dt=1e-3, seed=1).double()
    g.add(PoissonRegion("in", n_in, rate=20.0))
    g.add(SpikingRegion("E", n, "lif", LIFParameters(tau_mem=20e-3, threshold=1.0,
                                                      input_scaling="direct")))
    p = g.connect("in", "E", connectivity=from_indices(pre, post, n_in, n),
                  weight=rng.uniform(0.0, 0.5, pre.size), sign="exc")
    if stdp:
        p.add_rule(PairSTDP(PairSTDPParameters(a_plus=0.02, a_minus=0.021)))
        p.add_rule(SynapticScaling(SynapticScalingParameters(r_target=5.0, eta=1e-2,
                                                             w_min=0.0, w_max=1.0)))
    return g, p


def _pairs(p: object) -> list[tuple[int, int]]:
    pre, post, _, _ = p.to_coo()
    return list(zip(pre.tolist(), post.tolist(), strict=True))


@pytest.mark.parametrize("fraction,below", [(0.2, None), (None, 0.15), (0.1, 0.15)])
def test_pruned_are_exactly_the_weakest(fraction: float | None, below: float | None) -> None:
    g, p = _net()
    pre, post, w, _ = p.to_coo()
    order = np.argsort(np.abs(w))                       # oracle: the weakest first
    expect = order[np.abs(w[order]) < below] if below is not None else order
    if fraction is not None:
        expect = expect[:int(round(fraction * w.size))]
    sp = StructuralPlasticity(p.name, StructuralParameters(
        max_in_degree=8, prune_fraction=fraction, prune_below=below, w_new=0.01, seed=4))
    ev = sp.rewire(g)
    assert sorted(ev.pruned.tolist()) == sorted(expect.tolist()) and expect.size > 0
    gone = set(expect.tolist())
    kept = {(int(a), int(b)): float(v)
            for k, (a, b, v) in enumerate(zip(pre, post, w, strict=True)) if k not in gone}
    pre2, post2, w2, _ = p.to_coo()
    after = {(int(a), int(b)): float(v) for a, b, v in zip(pre2, post2, w2, strict=True)}
    grown = set(zip(ev.grown_pre.tolist(), ev.grown_post.tolist(), strict=True))
    assert p.nnz == w.size and len(grown) == expect.size
    assert {k: v for k, v in after.items() if k not in grown} == kept   # the rest untouched
    assert all(after[k] == 0.01 for k in grown)


def test_budget_count_and_uniqueness_over_many_rewirings() -> None:
    """STDP + scaling + a rewiring every 200 steps, 25 times: after each, the synapse
    count is the starting one, no in-degree exceeds 8 and no (pre, post) pair repeats."""
    g, p = _net(stdp=True)
    n0 = p.nnz
    sp = StructuralPlasticity(p.name, StructuralParameters(
        max_in_degree=8, every=200, prune_fraction=0.25, w_new=0.05, seed=9))
    seen_growth = 0
    for _ in range(25):
        run = run_chunked(g, 200, structural=[sp])
        assert run.rewirings == 1 and run.replaced == n0 // 4
        pre, post, w, _ = p.to_coo()
        assert pre.size == n0
        assert np.bincount(post, minlength=p.n_post).max() <= 8
        assert np.unique(pre * p.n_post + post).size == n0
        assert np.isfinite(w).all() and w.min() >= 0.0 and w.max() <= 1.0
        seen_growth = max(seen_growth, int(np.bincount(post).max()))
    assert seen_growth == 8            # the budget is reached, so it is what binds


def test_a_seed_reproduces_the_rewiring() -> None:
    def run(seed: int) -> list[tuple[int, int]]:
        g, p = _net(stdp=True)
        sp = StructuralPlasticity(p.name, StructuralParameters(
            max_in_degree=8, every=100, prune_fraction=0.2, w_new=0.05, seed=seed))
        run_chunked(g, 500, structural=[sp])
        return _pairs(p)

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_a_split_run_draws_what_one_run_draws() -> None:
    """Draws are seeded by (seed, absolute step): 600 steps as 600 or as 200 + 400 (a
    chunk boundary off the period) give the same synapses and weights."""
    def run(parts: list[int]) -> tuple[list[tuple[int, int]], np.ndarray]:
        g, p = _net(stdp=True)
        sp = StructuralPlasticity(p.name, StructuralParameters(
            max_in_degree=8, every=150, prune_fraction=0.2, w_new=0.05, seed=2))
        for n in parts:
            run_chunked(g, n, structural=[sp])
        return _pairs(p), p.to_coo()[2]

    (a, wa), (b, wb) = run([600]), run([200, 400])
    assert a == b and np.array_equal(wa, wb)


def test_rule_state_moves_with_its_synapse() -> None:
    """The STDP presynaptic trace of a kept synapse keeps its value (found by its pair),
    a grown synapse's starts at 0; the scaling estimate (per neuron) is untouched."""
    g, p = _net(stdp=True)
    g.run(300)
    key_stdp, key_scale = (f"{p.name}.{r.slot}" for r in p.rules)
    before = dict(zip(_pairs(p), g.state.rules[key_stdp].x_pre[0].tolist(), strict=True))
    rate = g.state.rules[key_scale].rate.clone()
    ev = StructuralPlasticity(p.name, StructuralParameters(
        max_in_degree=8, prune_fraction=0.3, w_new=0.05, seed=1)).rewire(g)
    grown = set(zip(ev.grown_pre.tolist(), ev.grown_post.tolist(), strict=True))
    after = dict(zip(_pairs(p), g.state.rules[key_stdp].x_pre[0].tolist(), strict=True))
    assert any(v > 0 for k, v in after.items() if k not in grown)
    for pair, v in after.items():
        assert v == (0.0 if pair in grown else before[pair])
    assert torch.equal(g.state.rules[key_scale].rate, rate)
    idx = g.state.rules[key_stdp].post_idx
    assert torch.equal(idx, p.post_idx)


def test_nearly_full_projection_regrows_by_enumeration() -> None:
    """22 of 24 pairs connected, budget = n_pre: random draws rarely hit a free pair, the
    free pairs are enumerated; still no duplicates and the count is kept."""
    rng = np.random.default_rng(0)
    keys = np.sort(rng.choice(24, 22, replace=False))
    pre, post = keys // 4, keys % 4
    existing = set(keys.tolist())
    g_pre, g_post = draw_pairs(pre, post, 6, 4, 6, 2, rng)
    new = (g_pre * 4 + g_post).tolist()
    assert len(set(new)) == 2 and not existing & set(new)
    assert set(new) == set(range(24)) - existing       # the only two free pairs
    with pytest.raises(ParameterError, match="max_in_degree"):
        draw_pairs(pre, post, 6, 4, 6, 3, rng)


def test_weakest_breaks_ties_by_index() -> None:
    assert weakest(np.array([0.3, -0.1, 0.1, 0.2]), 0.5, None).tolist() == [1, 2]


def test_bad_input_is_named() -> None:
    with pytest.raises(ParameterError, match="prune_fraction"):
        StructuralParameters(max_in_degree=3, prune_fraction=1.5)
    with pytest.raises(ParameterError, match="both None"):
        StructuralParameters(max_in_degree=3, prune_fraction=None)
    with pytest.raises(ParameterError, match="max_in_degree"):
        StructuralParameters(max_in_degree=0)
    with pytest.raises(ParameterError, match="every"):
        StructuralParameters(max_in_degree=3, every=0)
    with pytest.raises(ParameterError, match="w_new"):
        StructuralParameters(max_in_degree=3, w_new=float("nan"))
    with pytest.raises(ParameterTypeError, match="StructuralParameters"):
        StructuralPlasticity("x", {"max_in_degree": 3})
    g, p = _net()
    with pytest.raises(ParameterError, match=r"10 neurons x 5 < the 60 synapses"):
        StructuralPlasticity(p.name, StructuralParameters(max_in_degree=5)).check(g)
    h = Graph(dt=1e-3)
    h.add(PoissonRegion("a", 12, rate=1.0))
    h.add(SpikingRegion("b", 10, "lif"))
    h.connect("a", "b", connectivity=from_indices(np.r_[np.arange(9), np.arange(1, 10)],
                                                  np.r_[np.zeros(9, int), np.arange(1, 10)],
                                                  12, 10), weight=0.1, name="ab")
    with pytest.raises(ParameterError, match="neuron 0 of projection 'ab' already has 9"):
        StructuralPlasticity("ab", StructuralParameters(max_in_degree=8)).check(h)
    with pytest.raises(ParameterError, match="exceeds the 30"):
        StructuralPlasticity(p.name, StructuralParameters(max_in_degree=31)).check(g)
    with pytest.raises(ParameterError, match="sign='exc'"):
        StructuralPlasticity(p.name, StructuralParameters(max_in_degree=8,
                                                          w_new=-0.1)).check(g)
    with pytest.raises(ParameterError, match="unknown projection"):
        StructuralPlasticity("nope", StructuralParameters(max_in_degree=8)).check(g)
    g.connect("E", "E", torch.zeros(10, 10, dtype=torch.float64), name="rec")
    with pytest.raises(ParameterError, match="sparse"):
        StructuralPlasticity("rec", StructuralParameters(max_in_degree=8)).check(g)
    sp = StructuralPlasticity(p.name, StructuralParameters(max_in_degree=8, every=300))
    with pytest.raises(ParameterError, match="not a multiple"):
        run_chunked(g, 10, every=200, structural=[sp])


# -- long runs: a child process, so that RSS is its own ------------------------------------
_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from aura_snn.functional.lif import LIFParameters
    from aura_snn.graph import Graph, PoissonRegion, SpikingRegion
    from aura_snn.graph.connectivity import from_indices
    from neuromodulation import (PairSTDP, PairSTDPParameters, StructuralParameters,
                                 StructuralPlasticity, SynapticScaling,
                                 SynapticScalingParameters, run_chunked)

    def rss():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024

    steps, sample = int(sys.argv[1]), int(sys.argv[2])
    n_in, n, k = 100, 50, 10
    rng = np.random.default_rng(0)
    pre = np.concatenate([rng.choice(n_in, k, replace=False) for _ in range(n)])
    post = np.repeat(np.arange(n), k)
    g = Graph(dt=1e-3, seed=1)
    g.add(PoissonRegion("in", n_in, rate=10.0))
    g.add(SpikingRegion("E", n, "lif", LIFParameters(
        tau_mem=20e-3, threshold=1.0, reset="zero", input_scaling="direct")))
    p = g.connect("in", "E", connectivity=from_indices(pre, post, n_in, n),
                  weight={"dist": "uniform", "low": 0.0, "high": 0.5}, seed=2, sign="exc")
    p.add_rule(PairSTDP(PairSTDPParameters(a_plus=0.01, a_minus=0.0105)))
    p.add_rule(SynapticScaling(SynapticScalingParameters(r_target=5.0, eta=1e-2, tau_r=1.0,
                                                         w_min=0.0, w_max=1.0)))
    sp = StructuralPlasticity(p.name, StructuralParameters(
        max_in_degree=15, every=1000, prune_fraction=0.1, w_new=0.1, seed=3))
    out = dict(rss=[], nnz=[], wmin=[], wmax=[], maxdeg=[], rate_max=[], nan=False,
               nnz0=p.nnz, replaced=0)
    done = 0
    while done < steps:
        run = run_chunked(g, sample, structural=[sp])
        done += sample
        out["replaced"] += run.replaced
        w = p.effective_weight().detach()
        rate = g.state.rules[p.name + "." + p.rules[1].slot].rate
        out["nan"] |= bool(torch.isnan(w).any() or torch.isnan(rate).any())
        out["rss"].append(rss())
        out["nnz"].append(p.nnz)
        out["wmin"].append(float(w.min()))
        out["wmax"].append(float(w.max()))
        out["maxdeg"].append(int(np.bincount(p.post_idx.numpy(), minlength=n).max()))
        out["rate_max"].append(float(rate.max()))
    print(json.dumps(out))
""")


def _long_run(steps: int, sample: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _CHILD, str(steps), str(sample)],
                         capture_output=True, text=True, env=env, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _check_long_run(out: dict, steps: int, rss_bound_mib: float) -> None:
    assert not out["nan"]
    assert set(out["nnz"]) == {out["nnz0"]} == {500}
    assert out["replaced"] == 50 * (steps // 1000)       # 10 % of 500 every 1000 steps
    assert min(out["wmin"]) >= 0.0 and max(out["wmax"]) <= 1.0
    assert max(out["maxdeg"]) <= 15
    # bounded activity: the scaling holds the rate estimate near 5 Hz, far from runaway
    assert max(out["rate_max"][len(out["rate_max"]) // 2:]) < 40.0
    # flat memory: RSS after the first sample (warm) vs every later one
    assert max(out["rss"]) - out["rss"][0] < rss_bound_mib, out["rss"]


def test_50k_steps_of_stdp_scaling_and_rewiring_stay_bounded_and_flat() -> None:
    """50,000 steps (50 s, 50 rewirings): RSS grows by less than 8 MiB (measured: 0)."""
    _check_long_run(_long_run(50_000, 5_000), 50_000, 8.0)


@pytest.mark.slow
def test_1m_steps_of_stdp_scaling_and_rewiring_stay_bounded_and_flat() -> None:
    """1,000,000 steps (1000 s of model time, 1000 rewirings, ~5 min): RSS grows by less
    than 8 MiB."""
    _check_long_run(_long_run(1_000_000, 20_000), 1_000_000, 8.0)
