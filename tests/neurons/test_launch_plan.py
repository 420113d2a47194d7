"""The neuron modules' kept launch plans (small no-grad CPU calls) against the
step-by-step reference loop of :mod:`aura_snn.functional`: the same spikes, trace and
state bit for bit, a fresh plan after any change of a parameter value (in place,
through ``.data``, or ``dt``), no plan under autograd, and nothing made under
``torch.inference_mode`` that a later autograd call cannot save."""

from __future__ import annotations

import pytest
import torch

from aura_snn.functional import cuba, lif, loop
from aura_snn.kernels import lif_multistep
from aura_snn.neurons import LIF, CubaLIF

F64 = torch.float64


def _reference(module: LIF | CubaLIF, x: torch.Tensor, state: object = None,
               record_v: bool = False) -> loop.MultiStep:
    fn = lif.step if isinstance(module, LIF) else cuba.step
    return loop.run(fn, x, state, module.neuron_parameters(), module.dt, record_v=record_v)


def _assert_same(got: loop.MultiStep, want: loop.MultiStep) -> None:
    assert torch.equal(got.spikes, want.spikes)
    for a, b in zip(got.state, want.state, strict=True):
        assert torch.equal(a, b)
    if want.v is not None:
        assert torch.equal(got.v, want.v)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("model", ["lif", "cuba"])
def test_planned_calls_equal_the_reference_loop(model: str, dtype: torch.dtype) -> None:
    torch.manual_seed(5)
    mod = (LIF(tau_mem=0.02, threshold=0.8, input_scaling="direct") if model == "lif"
           else CubaLIF(tau_mem=0.02, tau_syn=0.005, threshold=0.9))
    gain = 0.9 if model == "lif" else 40.0
    x = (torch.randn(6, 3, 40, dtype=dtype) + 0.4) * gain
    with torch.no_grad():
        first = mod.run(x, record_v=True)
        _assert_same(first, _reference(mod, x, record_v=True))
        assert 0 < int(first.spikes.sum()) < first.spikes.numel()
        assert len(mod._plans) == 1                      # the plan is kept ...
        again = mod.run(x, first.state)                  # ... and used from a given state
        _assert_same(again, _reference(mod, x, first.state))
        assert len(mod._plans) == 1


@pytest.mark.parametrize("change", ["in_place", "data", "dt"])
def test_a_changed_parameter_makes_a_new_plan(change: str) -> None:
    torch.manual_seed(6)
    mod = LIF(tau_mem=0.02, threshold=1.0, input_scaling="direct")
    x = torch.randn(8, 2, 64) + 0.5
    with torch.no_grad():
        before = mod(x)
        if change == "in_place":
            mod.threshold.fill_(0.6)
        elif change == "data":   # bumps no version counter: the key holds values
            mod.threshold.data.fill_(0.6)
        else:
            mod.dt = 2e-3
        after = mod.run(x)
    want = _reference(mod, x)
    _assert_same(after, want)
    assert not torch.equal(after.spikes, before)         # the change mattered


def test_no_plan_under_autograd_and_gradients_match_the_reference() -> None:
    torch.manual_seed(7)
    mod = LIF(tau_mem=0.02, threshold=0.8, input_scaling="direct", surrogate="triangle")
    x = (torch.randn(5, 2, 32, dtype=F64) + 0.4).requires_grad_()
    got = mod(x)
    assert mod._plans == {}
    (g,) = torch.autograd.grad((got * torch.arange(32, dtype=F64)).sum(), x)
    xr = x.detach().clone().requires_grad_()
    ref = _reference(mod, xr).spikes
    (gr,) = torch.autograd.grad((ref * torch.arange(32, dtype=F64)).sum(), xr)
    assert torch.equal(got, ref)
    torch.testing.assert_close(g, gr, rtol=1e-12, atol=1e-12)
    assert float(g.abs().sum()) > 0


def test_inference_mode_leaves_nothing_autograd_cannot_save() -> None:
    """A call under ``torch.inference_mode`` fills the coefficient cache and the plan; a
    later call under autograd on the same shape reuses cached coefficients and saves them
    for backward, which fails for inference tensors. Its gradient must equal the
    reference loop's."""
    torch.manual_seed(8)
    mod = LIF(tau_mem=0.015, threshold=0.7, surrogate="triangle")
    x = torch.rand(5, 2, 48, dtype=F64) * 3
    with torch.inference_mode():
        lif_multistep(x, None, mod.neuron_parameters(), mod.dt)  # fills the cache first
        mod(x)
    xg = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(mod(xg).sum(), xg)
    xr = x.clone().requires_grad_()
    (gr,) = torch.autograd.grad(_reference(mod, xr).spikes.sum(), xr)
    torch.testing.assert_close(g, gr, rtol=1e-12, atol=1e-12)
    assert float(g.abs().sum()) > 0
