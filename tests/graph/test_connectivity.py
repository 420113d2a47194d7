"""Connectivity builders: exact degrees, binomial counts, distance dependence, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError
from aura_snn.graph import connectivity as C


def test_fixed_probability_count_is_binomial_and_pairs_are_unique() -> None:
    n_pre, n_post, p = 400, 300, 0.05
    counts = []
    for seed in range(8):
        c = C.fixed_probability(n_pre, n_post, p, seed=seed)
        pairs = c.pre * n_post + c.post
        assert np.unique(pairs).size == pairs.size
        assert np.all(np.diff(pairs) > 0)          # sorted by (pre, post)
        counts.append(c.n_synapses)
    mean = n_pre * n_post * p
    sd = math.sqrt(n_pre * n_post * p * (1 - p))
    # each count within 4.5 sd of the binomial mean (false alarm < 1e-4 per draw)
    assert all(abs(k - mean) < 4.5 * sd for k in counts)
    # the 8 counts together: their mean within 4.5 sd / sqrt(8)
    assert abs(np.mean(counts) - mean) < 4.5 * sd / math.sqrt(8)


def test_fixed_probability_is_uniform_over_pairs() -> None:
    # every pre neuron's out-degree ~ Binomial(n_post, p): chi-square-like check on the
    # spread (variance within 20 % of n p (1 - p) for 2000 rows)
    c = C.fixed_probability(2000, 500, 0.04, seed=3)
    out = c.outdegree()
    assert out.mean() == pytest.approx(20.0, rel=0.03)
    assert out.var() == pytest.approx(500 * 0.04 * 0.96, rel=0.2)
    assert c.indegree().mean() == pytest.approx(80.0, rel=0.03)


def test_seed_reproduces_and_differs() -> None:
    a = C.fixed_probability(100, 100, 0.1, seed=5)
    b = C.fixed_probability(100, 100, 0.1, seed=5)
    c = C.fixed_probability(100, 100, 0.1, seed=6)
    assert np.array_equal(a.pre, b.pre) and np.array_equal(a.post, b.post)
    assert not (a.n_synapses == c.n_synapses and np.array_equal(a.post, c.post))


def test_no_autapses() -> None:
    c = C.fixed_probability(50, 50, 0.5, seed=1, autapses=False)
    assert not np.any(c.pre == c.post)
    d = C.fixed_indegree(50, 50, 49, seed=1, autapses=False)
    assert not np.any(d.pre == d.post) and np.all(d.indegree() == 49)


@pytest.mark.parametrize("n_pre,n_post,k", [(1000, 300, 80), (50, 40, 50), (5000, 2000, 3)])
def test_fixed_indegree_is_exact_and_distinct(n_pre: int, n_post: int, k: int) -> None:
    c = C.fixed_indegree(n_pre, n_post, k, seed=2)
    assert np.all(c.indegree() == k)
    pairs = c.pre * n_post + c.post
    assert np.unique(pairs).size == pairs.size
    # pre neurons are used uniformly: mean out-degree k n_post / n_pre
    assert c.outdegree().mean() == pytest.approx(k * n_post / n_pre)


def test_fixed_outdegree_is_exact() -> None:
    c = C.fixed_outdegree(300, 1000, 20, seed=4)
    assert np.all(c.outdegree() == 20)
    assert np.all(np.diff(c.pre * 1000 + c.post) > 0)


def test_one_to_one_and_all_to_all() -> None:
    c = C.one_to_one(7)
    assert np.array_equal(c.pre, np.arange(7)) and np.array_equal(c.post, np.arange(7))
    a = C.all_to_all(3, 4)
    assert a.n_synapses == 12 and a.dense().all()
    b = C.all_to_all(5, 5, autapses=False)
    assert b.n_synapses == 20 and not np.diag(b.dense()).any()


def test_distance_dependence_follows_the_profile() -> None:
    pos = C.sheet_positions(900, width=1.0, layout="grid")      # 30 x 30 grid
    sigma, p_max = 0.1, 0.8
    c = C.distance(pos, pos, p_max=p_max, sigma=sigma, seed=7, periodic=1.0)
    d = pos[c.pre] - pos[c.post]
    d = np.abs(d)
    d = np.minimum(d, 1.0 - d)
    dist = np.sqrt((d ** 2).sum(1))
    # empirical connection probability in distance shells vs p_max exp(-d^2 / 2 sigma^2)
    allp = pos[:, None, :] - pos[None, :, :]
    allp = np.abs(allp)
    allp = np.minimum(allp, 1.0 - allp)
    alld = np.sqrt((allp ** 2).sum(-1)).ravel()
    for lo, hi in [(0.0, 0.05), (0.05, 0.1), (0.1, 0.15), (0.15, 0.2)]:
        n_pairs = ((alld >= lo) & (alld < hi)).sum()
        n_syn = ((dist >= lo) & (dist < hi)).sum()
        expect = (p_max * np.exp(-alld[(alld >= lo) & (alld < hi)] ** 2 / (2 * sigma ** 2))).sum()
        sd = math.sqrt(expect)
        assert abs(n_syn - expect) < 5 * sd + 1, (lo, hi, n_syn, expect, n_pairs)
    assert dist.max() < 6 * sigma  # exp(-18) * 810k pairs: none expected beyond


def test_distance_exponential_profile_and_no_autapses() -> None:
    pos = C.sheet_positions(400, layout="random", seed=1)
    c = C.distance(pos, pos, p_max=1.0, sigma=0.05, profile="exponential", autapses=False,
                   seed=2)
    assert not np.any(c.pre == c.post)
    near = C.distance(pos, pos, p_max=1.0, sigma=0.05, seed=2)
    assert near.n_synapses >= 400  # p(0) = 1: every autapse present


def test_builders_validate_arguments() -> None:
    with pytest.raises(ParameterError, match="probability"):
        C.fixed_probability(10, 10, 1.5)
    with pytest.raises(ParameterError, match="probability"):
        C.fixed_probability(10, 10, -0.1)
    with pytest.raises(ParameterTypeError):
        C.fixed_probability(10, 10, "0.1")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="n_pre"):
        C.fixed_probability(0, 10, 0.1)
    with pytest.raises(ParameterError, match="cannot draw"):
        C.fixed_indegree(10, 10, 11)
    with pytest.raises(ParameterError, match="equal sizes"):
        C.one_to_one(3, 4)
    with pytest.raises(ShapeError):
        C.distance(np.zeros((3, 3)), np.zeros((3, 2)), p_max=0.1, sigma=1.0)
    with pytest.raises(ParameterError, match="sigma"):
        C.distance(np.zeros((3, 2)), np.zeros((3, 2)), p_max=0.1, sigma=0.0)
    with pytest.raises(ParameterError, match="duplicate"):
        C.from_indices([0, 0], [1, 1], 2, 2)
    with pytest.raises(ParameterError, match="post indices"):
        C.from_indices([0], [5], 2, 2)


def test_draw_values() -> None:
    assert np.all(C.draw_values(2.0, 5) == 2.0)
    x = C.draw_values({"dist": "normal", "mean": 1.0, "std": 0.1}, 20000, seed=1)
    assert x.mean() == pytest.approx(1.0, abs=0.005) and x.std() == pytest.approx(0.1, rel=0.03)
    with pytest.raises(ParameterError, match="needs the key"):
        C.draw_values({"dist": "uniform", "low": 0.0}, 3)
    with pytest.raises(ShapeError):
        C.draw_values(np.ones(4), 3)
