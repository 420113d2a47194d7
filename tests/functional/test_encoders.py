"""Encoders: statistics, determinism under a seed, latency times, delta modulation."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.errors import InputValueError, ParameterError
from aura_snn.functional import encoders


def test_rate_mean_matches_probability_within_binomial_tolerance() -> None:
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    s = encoders.rate(p.expand(2000, 5).T.contiguous(), 100, seed=1)  # [100, 5, 2000]
    assert s.shape == (100, 5, 2000)
    mean = s.mean(dim=(0, 2))
    n = 100 * 2000
    for i, pi in enumerate(p.tolist()):
        tol = 5 * math.sqrt(max(pi * (1 - pi), 1e-12) / n)  # 5 sigma
        assert abs(mean[i].item() - pi) <= tol


def test_rate_is_reproducible_with_seed_and_generator() -> None:
    x = torch.rand(4, 8)
    assert torch.equal(encoders.rate(x, 20, seed=3), encoders.rate(x, 20, seed=3))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(encoders.rate(x, 20, generator=g1), encoders.rate(x, 20, generator=g2))


def test_poisson_probability_per_step() -> None:
    rates = torch.full((20000,), 50.0)
    s = encoders.poisson(rates, 200, 1e-3, seed=0)
    p = 1 - math.exp(-50.0 * 1e-3)
    assert abs(s.mean().item() - p) < 5 * math.sqrt(p * (1 - p) / s.numel())
    with pytest.raises(InputValueError, match="rates_hz must be >= 0"):
        encoders.poisson(torch.tensor([-1.0]), 10, 1e-3)


def test_latency_linear_and_log() -> None:
    x = torch.tensor([[1.0, 0.5, 0.0]])
    s = encoders.latency(x, 11)
    assert s.sum(0).tolist() == [[1.0, 1.0, 0.0]]
    assert s[:, 0, 0].argmax().item() == 0 and s[:, 0, 1].argmax().item() == 5
    s = encoders.latency(torch.tensor([[2.0, 0.005]]), 50, mode="log", tau=5.0, threshold=0.01)
    t_expected = round(5.0 * math.log(2.0 / (2.0 - 0.01)))
    assert s[:, 0, 0].argmax().item() == t_expected
    assert s[:, 0, 1].sum().item() == 0.0


def test_delta_modulation() -> None:
    x = torch.tensor([0.0, 0.05, 0.2, 0.25, 0.0, -0.3]).view(6, 1)
    on = encoders.delta(x, 0.1)
    both = encoders.delta(x, 0.1, off_spikes=True)
    assert on[:, 0].tolist() == [0, 0, 1, 0, 0, 0]
    assert both[:, 0].tolist() == [0, 0, 1, 0, -1, -1]


def test_bad_arguments() -> None:
    with pytest.raises(ParameterError, match="steps must be >= 1"):
        encoders.rate(torch.rand(3), 0)
    with pytest.raises(ParameterError, match="mode must be one of"):
        encoders.latency(torch.rand(3), 5, mode="exp")
    with pytest.raises(InputValueError, match="NaN"):
        encoders.rate(torch.tensor([float("nan")]), 5)
