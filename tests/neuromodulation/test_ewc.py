"""EWC: the Fisher diagonal, the penalty and its online form against softmax
regression, whose per-sample score is known in closed form:
d log p(y|x) / dW = (e_y - p) x^T, d/db = e_y - p (p = softmax(W x + b))."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuromodulation.ewc import EWC, count_log_probs, diagonal_fisher, penalty


def _model(f: int = 5, c: int = 3, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(f, c).double()


def _log_probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(model(x), -1)


def _analytic(model: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Mean squared score by hand, sample by sample (the oracle)."""
    with torch.no_grad():
        p = torch.softmax(x @ model.weight.T + model.bias, -1)
        e = torch.nn.functional.one_hot(y, p.shape[1]).double()
        d = e - p                                           # [N, C]
        fw = (d.unsqueeze(2) * x.unsqueeze(1)).pow(2).mean(0)   # [C, F]
        fb = d.pow(2).mean(0)
    return fw, fb


def test_empirical_fisher_equals_the_closed_form_per_sample_score() -> None:
    m = _model()
    x = torch.randn(40, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    f = diagonal_fisher(m, [(x[:25], y[:25]), (x[25:], y[25:])], _log_probs)
    fw, fb = _analytic(m, x, y)
    torch.testing.assert_close(f["weight"], fw, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(f["bias"], fb, rtol=1e-12, atol=1e-15)
    # the square of the batch-mean gradient (a common shortcut) is a different number
    assert not torch.allclose(f["bias"], _analytic(m, x.mean(0, keepdim=True), y[:1])[1])


def test_true_fisher_matches_its_expectation_over_the_model_labels() -> None:
    """E_{y ~ p}[(e_y - p)^2] = p (1 - p)^2 + (1 - p) p^2 ... per class c:
    sum_k p_k (delta_kc - p_c)^2 = p_c (1 - p_c). N draws on one input: the estimate
    of a Bernoulli-like mean; 6 standard errors bound it."""
    m = _model()
    x = torch.randn(1, 5, dtype=torch.float64).expand(4000, 5).contiguous()
    f = diagonal_fisher(m, [(x, torch.zeros(4000, dtype=torch.long))], _log_probs,
                        fisher="true", generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        p = torch.softmax(m(x[:1]), -1)[0]
    expect = p * (1 - p)
    # per-draw value (delta - p)^2 lies in [0, 1]: its std <= 0.5
    assert torch.all((f["bias"] - expect).abs() < 6 * 0.5 / 4000 ** 0.5)
    # and the empirical Fisher with the all-zero labels is not it
    fe = diagonal_fisher(m, [(x[:50], torch.zeros(50, dtype=torch.long))], _log_probs)
    assert (fe["bias"] - expect).abs().max() > 0.05


def test_penalty_value_and_gradient_are_the_quadratic_form() -> None:
    m = _model()
    ewc = EWC(m, lam=7.0)
    x, y = torch.randn(30, 5, dtype=torch.float64), torch.randint(0, 3, (30,))
    a = ewc.consolidate([(x, y)], _log_probs)
    with torch.no_grad():
        m.weight.add_(0.3)
        m.bias.sub_(0.2)
    om = ewc.penalty()
    want = 0.5 * 7.0 * ((a.fisher["weight"] * 0.09).sum() + (a.fisher["bias"] * 0.04).sum())
    torch.testing.assert_close(om, want, rtol=1e-12, atol=0)
    om.backward()
    torch.testing.assert_close(m.weight.grad, 7.0 * a.fisher["weight"] * 0.3, rtol=1e-12,
                               atol=0)
    torch.testing.assert_close(m.bias.grad, 7.0 * a.fisher["bias"] * -0.2, rtol=1e-12, atol=0)


def test_online_ewc_keeps_one_decayed_term_and_plain_ewc_one_per_task() -> None:
    x1, y1 = torch.randn(20, 5, dtype=torch.float64), torch.randint(0, 3, (20,))
    x2, y2 = torch.randn(20, 5, dtype=torch.float64), torch.randint(0, 3, (20,))
    m = _model()
    w1, b1 = m.weight.detach().clone(), m.bias.detach().clone()
    on, plain = EWC(m, 1.0, online=True, gamma=0.6), EWC(m, 1.0)
    f1 = _analytic(m, x1, y1)
    on.consolidate([(x1, y1)], _log_probs)
    plain.consolidate([(x1, y1)], _log_probs)
    with torch.no_grad():
        m.weight.mul_(1.5)
    w2 = m.weight.detach().clone()
    f2 = _analytic(m, x2, y2)
    on.consolidate([(x2, y2)], _log_probs)
    plain.consolidate([(x2, y2)], _log_probs)
    assert len(on.anchors) == 1 and len(plain.anchors) == 2
    torch.testing.assert_close(on.anchors[0].fisher["weight"], 0.6 * f1[0] + f2[0],
                               rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(on.anchors[0].params["weight"], w2)
    # plain: the sum of both tasks' quadratic forms, each around its own anchor
    with torch.no_grad():
        m.weight.add_(0.1)
    w, b = m.weight.detach(), m.bias.detach()
    want = 0.5 * ((f1[0] * (w - w1) ** 2).sum() + (f1[1] * (b - b1) ** 2).sum()
                  + (f2[0] * (w - w2) ** 2).sum() + (f2[1] * (b - b1) ** 2).sum())
    torch.testing.assert_close(penalty(m, plain.anchors, 1.0), want, rtol=1e-10, atol=0)


def test_count_log_probs_of_a_spiking_model_is_log_softmax_of_counts() -> None:
    class Counter(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:   # [T, B, F] -> spikes-ish
            return (x > 0.5).double()

    x = torch.rand(4, 6, dtype=torch.float64)
    got = count_log_probs(3)(Counter(), x)
    want = torch.log_softmax(3 * (x > 0.5).double(), -1)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("kw,name", [({"lam": -1.0}, "lam"), ({"lam": 1.0, "gamma": 1.5},
                                                              "gamma"),
                                     ({"lam": 1.0, "fisher": "exact"}, "fisher")])
def test_bad_parameters_are_named(kw: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        EWC(_model(), **kw)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="samples"):
        diagonal_fisher(_model(), [], _log_probs)
