"""SpikingFFN: the once-applied second projection equals the per-step form (values and
gradients), spikes follow a LIF recurrence written here, the meter counts what it says."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from hybrid.spiking_ffn import DenseFFN, SpikingFFN, gelu


class _HeavisideFastSigmoid(torch.autograd.Function):
    """H(x) forward, 1 / (1 + k|x|)^2 backward (SuperSpike), written for this test."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, k: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.k = k
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return g / (1.0 + ctx.k * x.abs()) ** 2, None


class _HeavisideTriangle(torch.autograd.Function):
    """H(x) forward, g max(0, 1 - g|x|) backward (Esser et al. 2016), written for this test."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, g: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.g = g
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.g * (1.0 - ctx.g * x.abs()).clamp_min(0.0), None


ORACLE_SURROGATES = {"fast_sigmoid": (_HeavisideFastSigmoid, 25.0),
                     "triangle": (_HeavisideTriangle, 1.0)}


def _per_step_oracle(ffn: SpikingFFN, x: torch.Tensor, tau: float, dt: float, theta: float,
                     direct: bool, readout: str, surrogate: str = "triangle"
                     ) -> tuple[torch.Tensor, ...]:
    """(1/T) sum_t (W2 r_t + b2) with r_t = s_t (or v_t), the LIF recurrence written out:
    u = a v + g c, s = H(u - theta), v = u - theta s (subtract reset, from rest)."""
    a = math.exp(-dt / tau)
    g = 1.0 if direct else 1.0 - a
    c = x.reshape(-1, x.shape[-1]) @ ffn.fc1.weight.T + ffn.fc1.bias
    v = torch.zeros_like(c)
    outs, spikes = [], []
    for _ in range(ffn.T):
        u = a * v + g * c
        fn, k = ORACLE_SURROGATES[surrogate]
        s = fn.apply(u - theta, k)
        v = u - theta * s
        spikes.append(s)
        r = s if readout == "rate" else v
        outs.append(r @ ffn.fc2.weight.T + ffn.fc2.bias)  # W2 applied at every step
    y = torch.stack(outs).mean(0).reshape(x.shape)
    return y, torch.stack(spikes)


@pytest.mark.parametrize("surrogate", [None, "fast_sigmoid"])  # None: the default, triangle
@pytest.mark.parametrize("readout", ["rate", "membrane"])
@pytest.mark.parametrize("direct", [True, False])
def test_once_applied_projection_equals_per_step_form(readout: str, direct: bool,
                                                      surrogate: str | None) -> None:
    torch.manual_seed(3)
    tau, dt, theta, T = 8e-3, 1e-3, 0.7, 6
    kw = {} if surrogate is None else {"surrogate": surrogate}
    ffn = SpikingFFN(12, 40, T=T, readout=readout, tau_mem=tau, dt=dt, threshold=theta,
                     input_scaling="direct" if direct else "ode", **kw).double()
    with torch.no_grad():
        ffn.fc1.weight.mul_(2.0 if direct else 8.0)  # some neurons fire, some stay silent
    x = torch.randn(3, 5, 12, dtype=torch.float64, requires_grad=True)
    y = ffn(x)
    x2 = x.detach().clone().requires_grad_(True)
    y_ref, s_ref = _per_step_oracle(ffn, x2, tau, dt, theta, direct, readout,
                                    surrogate or "triangle")
    _, spikes = ffn.hidden(x.detach())
    assert torch.equal(spikes, s_ref.detach())
    rate = float(s_ref.detach().mean())
    assert 0.05 < rate < 0.95, rate  # the comparison exercises both spikes and silence
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    w = torch.randn_like(y)
    grads = torch.autograd.grad((y * w).sum(), [x, ffn.fc1.weight, ffn.fc2.weight, ffn.fc2.bias])
    ffn.zero_grad()
    grads_ref = torch.autograd.grad((y_ref * w).sum(),
                                    [x2, ffn.fc1.weight, ffn.fc2.weight, ffn.fc2.bias])
    for g, gr in zip(grads, grads_ref, strict=True):
        assert float(gr.abs().max()) > 0
        torch.testing.assert_close(g, gr, rtol=0, atol=1e-12)


def test_stats_count_spikes_and_silent_entries() -> None:
    torch.manual_seed(0)
    ffn = SpikingFFN(8, 16, T=5)
    x = torch.randn(4, 7, 8)
    ffn(x)
    _, spikes = ffn.hidden(x)  # [T, N, d_ff]
    st = ffn.last_stats
    n_spikes = int(spikes.sum())
    assert n_spikes > 0
    assert float(st.firing_rate) == pytest.approx(n_spikes / (5 * 28 * 16), abs=1e-7)
    silent = sum(1 for i in range(28) for j in range(16) if spikes[:, i, j].sum() == 0)
    assert float(st.count_sparsity) == pytest.approx(silent / (28 * 16), abs=1e-7)
    assert float(st.spike_sparsity) == pytest.approx(1 - n_spikes / (5 * 28 * 16), abs=1e-6)
    assert int(st.tokens) == 28


def test_position_wise_and_bad_input() -> None:
    torch.manual_seed(1)
    ffn = SpikingFFN(6, 10, T=3).double()
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    whole = ffn(x)
    one = torch.stack([ffn(x[:, i:i + 1]) for i in range(9)], dim=1).squeeze(2)
    assert torch.equal(whole, one)  # each token from rest: no state crosses tokens
    with pytest.raises(ValueError, match=r"\[\.\.\., 6\]"):
        ffn(torch.randn(2, 5))
    with pytest.raises(ValueError, match="T"):
        SpikingFFN(6, 10, T=0)
    with pytest.raises(ValueError, match="readout"):
        SpikingFFN(6, 10, readout="count")


def test_last_rate_carries_the_surrogate_gradient_of_the_mean_spike() -> None:
    torch.manual_seed(4)
    tau, dt, theta = 10e-3, 1e-3, 1.0
    ffn = SpikingFFN(10, 30, T=4, tau_mem=tau, dt=dt, threshold=theta).double()
    with torch.no_grad():
        ffn.fc1.weight.mul_(3.0)
    x = torch.randn(2, 6, 10, dtype=torch.float64, requires_grad=True)
    ffn(x)
    x2 = x.detach().clone().requires_grad_(True)
    _, s_ref = _per_step_oracle(ffn, x2, tau, dt, theta, True, "rate")
    rate_ref = s_ref.mean()                          # spikes per neuron per step
    assert 0.05 < float(rate_ref) < 0.95
    assert float(ffn.last_rate) == pytest.approx(float(rate_ref), rel=1e-14)
    assert float(ffn.last_stats.firing_rate) == pytest.approx(float(rate_ref), rel=1e-6)
    g, gw = torch.autograd.grad(ffn.last_rate, [x, ffn.fc1.weight])
    ffn.zero_grad()
    g_ref, gw_ref = torch.autograd.grad(rate_ref, [x2, ffn.fc1.weight])
    assert float(g_ref.abs().max()) > 0
    torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-13)
    torch.testing.assert_close(gw, gw_ref, rtol=0, atol=1e-13)
    with torch.no_grad():
        ffn(x)
    assert ffn.last_rate is None                     # nothing recorded, nothing kept


def test_dense_ffn_gelu_is_the_exact_gelu() -> None:
    """The dense twin's GELU against :math:`x\\Phi(x)` from Python's ``math.erf`` per
    value (float64), against torch's own exact GELU (float32, a few ulp), and against the
    tanh form it is not (their difference reaches ~1e-3 near |x| = 2)."""
    x = torch.linspace(-8.0, 8.0, 4001, dtype=torch.float64)
    want = torch.tensor([v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.tolist()],
                        dtype=torch.float64)
    torch.testing.assert_close(gelu(x), want, rtol=0, atol=2e-15)
    x32 = x.float()
    torch.testing.assert_close(gelu(x32), torch.nn.functional.gelu(x32), rtol=0, atol=1e-6)
    tanh = torch.nn.functional.gelu(x, approximate="tanh")
    assert float((gelu(x) - tanh).abs().max()) > 1e-4
    torch.manual_seed(3)
    ffn = DenseFFN(6, 10).double()
    h = torch.randn(4, 6, dtype=torch.float64)
    ref = ffn.fc2.bias + torch.stack([ffn.fc2.weight @ torch.tensor(
        [u * 0.5 * (1.0 + math.erf(u / math.sqrt(2.0)))
         for u in (ffn.fc1.weight @ r + ffn.fc1.bias).tolist()], dtype=torch.float64)
        for r in h])
    torch.testing.assert_close(ffn(h), ref, rtol=0, atol=1e-14)
