"""Prioritised replay: sampling frequencies match P(i), IS weights, updates, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from aura_snn.errors import InputValueError, ParameterError, ShapeError
from aura_snn.memory import PrioritizedReplay, SumTree

# Frequency tests draw 40,000 items from 8 slots and apply Pearson's chi-square test
# against the expected counts N P(i) (every expected count >= 1,000, far above the 5
# the chi-square approximation needs). Draws are seeded, so each test is deterministic;
# a correct sampler would fail the 1e-3 level for only 0.1 % of seeds, while a sampler
# that ignored alpha (P ∝ p instead of p^0.6) is off by ~50 sigma at this sample size.
N_DRAWS = 40_000
P_VALUE = 1e-3


def test_sum_tree_find_matches_cumulative_search() -> None:
    rng = np.random.default_rng(0)
    tree = SumTree(13)  # not a power of two: 16 leaves, 3 unused
    values = rng.random(13)
    values[[2, 7]] = 0.0
    tree.set(np.arange(13), values)
    assert np.isclose(tree.total, values.sum())
    assert tree.minimum == values[values > 0].min()  # the min-tree skips undrawable zeros
    u = rng.random(5000) * values.sum()
    expected = np.searchsorted(np.cumsum(values), u, side="right")
    assert np.array_equal(tree.find(u), expected)
    assert not np.isin(tree.find(u), [2, 7]).any()


@pytest.mark.parametrize("stratified", [False, True])
def test_sampling_frequencies_match_priorities_chi_square(stratified) -> None:
    buf = PrioritizedReplay(8, alpha=0.6, seed=1)
    p = np.arange(1.0, 9.0)
    buf.add(torch.arange(100, 108), torch.from_numpy(p))
    expected = (p + buf.eps) ** 0.6 / ((p + buf.eps) ** 0.6).sum()
    torch.testing.assert_close(buf.probabilities(), torch.from_numpy(expected))
    counts = np.zeros(8)
    for _ in range(N_DRAWS // 500):
        s = buf.sample(500, stratified=stratified)
        np.add.at(counts, s.slots.numpy(), 1)
        assert torch.equal(s.ids, s.slots + 100)
    stat = chisquare(counts, expected * N_DRAWS)
    assert stat.pvalue > P_VALUE
    # the alpha = 1 distribution (plain p / sum p) is firmly rejected by the same counts
    assert chisquare(counts, p / p.sum() * N_DRAWS).pvalue < 1e-12


def test_importance_sampling_weights_follow_the_formula() -> None:
    buf = PrioritizedReplay(5, alpha=0.7, beta=0.5, eps=0.0, seed=2)
    p = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    buf.add(torch.arange(5), torch.from_numpy(p))
    s = buf.sample(64)
    prob = p ** 0.7 / (p ** 0.7).sum()
    n = 5
    w = (n * prob) ** -0.5 / ((n * prob.min()) ** -0.5)
    torch.testing.assert_close(s.probabilities, torch.from_numpy(prob[s.slots.numpy()]))
    torch.testing.assert_close(s.weights, torch.from_numpy(w[s.slots.numpy()]))
    assert float(s.weights.max()) <= 1.0
    assert torch.all(buf.sample(10, beta=0.0).weights == 1.0)  # beta = 0: no correction


def test_priority_updates_change_the_distribution_and_zero_is_never_drawn() -> None:
    buf = PrioritizedReplay(4, alpha=1.0, eps=0.0, seed=3)
    slots = buf.add(torch.tensor([10, 11, 12, 13]), torch.tensor([1.0, 1.0, 1.0, 1.0]))
    buf.update_priorities(slots[:2], torch.tensor([0.0, 6.0]))
    torch.testing.assert_close(buf.probabilities(),
                               torch.tensor([0.0, 6 / 8, 1 / 8, 1 / 8], dtype=torch.float64))
    s = buf.sample(5000)
    assert not (s.ids == 10).any()
    assert abs(float((s.ids == 11).double().mean()) - 0.75) < 0.02  # 4.8 sigma band
    with pytest.raises(InputValueError, match="slots must lie in"):
        buf.update_priorities(torch.tensor([4]), 1.0)
    with pytest.raises(ParameterError, match="priorities must be finite and >= 0"):
        buf.update_priorities(slots[:1], -1.0)
    with pytest.raises(ShapeError):
        buf.update_priorities(slots[:2], torch.tensor([1.0, 2.0, 3.0]))


def test_new_items_get_max_priority_and_full_buffer_overwrites_oldest() -> None:
    buf = PrioritizedReplay(3, alpha=1.0, eps=0.0, seed=4)
    buf.add(torch.tensor([1, 2]), torch.tensor([5.0, 1.0]))
    buf.add(torch.tensor([3]))  # default priority = the largest seen, 5
    torch.testing.assert_close(buf.probabilities(),
                               torch.tensor([5 / 11, 1 / 11, 5 / 11], dtype=torch.float64))
    slots = buf.add(torch.tensor([4, 5]), torch.tensor([2.0, 2.0]))
    assert slots.tolist() == [0, 1] and len(buf) == 3
    assert sorted(buf.ids.tolist()) == [3, 4, 5]


def test_seed_makes_sampling_reproducible_and_state_round_trips() -> None:
    def draws(seed: int) -> list[int]:
        buf = PrioritizedReplay(50, seed=seed)
        buf.add(torch.arange(50), torch.rand(50, generator=torch.Generator().manual_seed(0)))
        return buf.sample(100).ids.tolist()

    assert draws(7) == draws(7) and draws(7) != draws(8)
    buf = PrioritizedReplay(10, seed=0)
    buf.add(torch.arange(6), torch.arange(1.0, 7.0))
    other = PrioritizedReplay(10, seed=0)
    other.load_state_dict(buf.state_dict())
    torch.testing.assert_close(other.probabilities(), buf.probabilities())
    assert other.add(torch.tensor([99])).tolist() == [6]


def test_bad_parameters_and_empty_buffer_raise() -> None:
    with pytest.raises(ParameterError, match="alpha must lie in"):
        PrioritizedReplay(4, alpha=1.5)
    with pytest.raises(ParameterError, match="capacity must be >= 1"):
        PrioritizedReplay(0)
    with pytest.raises(InputValueError, match="empty"):
        PrioritizedReplay(4).sample(2)
    buf = PrioritizedReplay(4, eps=0.0)
    buf.add(torch.tensor([1]), 0.0)
    with pytest.raises(InputValueError, match="zero"):
        buf.sample(1)
