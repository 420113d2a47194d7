"""Neuron modules: shapes, state, options, errors, step vs multi-step, devices and dtypes."""

from __future__ import annotations

import pytest
import torch

import aura_snn as A
from aura_snn.errors import InputValueError, ParameterError, ShapeError
from aura_snn.neurons import detach_state

MODELS = [
    lambda **kw: A.LIF(20e-3, **kw),
    lambda **kw: A.CubaLIF(20e-3, 5e-3, **kw),
    lambda **kw: A.ALIF(20e-3, 100e-3, **kw),
]


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multistep_equals_step_by_step(make, dtype) -> None:
    m = make().to(dtype)
    x = torch.rand(50, 3, 4, 5, dtype=dtype) * 8
    run = m.run(x, record_v=True)
    state = None
    spikes, vs = [], []
    for x_t in x.unbind(0):
        s, state = m.step(x_t, state)
        spikes.append(s)
        vs.append(state.v)
    assert run.spikes.dtype == dtype and run.spikes.shape == x.shape
    assert torch.equal(run.spikes, torch.stack(spikes))
    torch.testing.assert_close(run.v, torch.stack(vs))
    assert 0 < run.spikes.mean() < 1


@pytest.mark.parametrize("make", MODELS[:2])
def test_fused_and_reference_backends_agree(make) -> None:
    x = (torch.rand(40, 2, 16) * 6).requires_grad_()
    a, b = make(), make(backend="reference")
    sa, sb = a(x), b(x)
    assert torch.equal(sa, sb)
    ga, = torch.autograd.grad(sa.sum(), x)
    gb, = torch.autograd.grad(sb.sum(), x)
    torch.testing.assert_close(ga, gb)


def test_state_continues_across_chunks_and_detaches() -> None:
    m = A.CubaLIF()
    x = (torch.rand(60, 2, 8) * 4).requires_grad_()
    whole = m.run(x)
    first = m.run(x[:25])
    second = m.run(x[25:], detach_state(first.state))
    assert torch.equal(torch.cat([first.spikes, second.spikes]), whole.spikes)
    assert all(not t.requires_grad for t in detach_state(first.state))
    second.spikes.sum().backward()  # graph of the second chunk only


def test_learnable_parameters_and_state_dict() -> None:
    m = A.LIF(torch.full((8,), 20e-3), learn_tau=True, learn_threshold=True)
    names = {n for n, _ in m.named_parameters()}
    assert names == {"tau_mem", "threshold"}
    fixed = A.LIF(20e-3)
    assert set(fixed.state_dict()) == {"threshold", "tau_mem"} and not list(fixed.parameters())
    x = torch.rand(30, 4, 8) * 5
    m(x).sum().backward()
    assert m.tau_mem.grad.shape == (8,) and m.tau_mem.grad.abs().sum() > 0
    assert m.threshold.grad is not None
    # learnable values are clamped into the valid range (documented)
    with torch.no_grad():
        m.tau_mem.fill_(1e-5)
        m.threshold.fill_(-1.0)
    p = m.neuron_parameters()
    assert float(p.tau_mem.detach().min()) > m.dt and float(p.threshold.detach()) > 0


def test_record_v_and_observers_do_not_change_outputs() -> None:
    m = A.LIF()
    x = torch.rand(20, 2, 3) * 4
    plain = m(x)
    seen = []
    h = m.add_observer(lambda mod, out: seen.append(out.v), needs_v=True)
    assert torch.equal(m(x), plain)
    assert seen and seen[0].shape == x.shape
    h.remove()
    assert m.run(x).v is None


def test_input_and_state_validation() -> None:
    m = A.LIF()
    with pytest.raises(ShapeError, match=r"at least 2 dimensions \[T, B, ...\]"):
        m(torch.rand(10))
    with pytest.raises(InputValueError, match="NaN"):
        m(torch.tensor([[float("nan")]]))
    with pytest.raises(InputValueError, match="NaN"):
        A.ALIF()(torch.tensor([[float("inf")]]))
    with pytest.raises(ShapeError, match=r"state.v must have shape \(2, 3\)"):
        m.run(torch.rand(5, 2, 3), A.functional.LIFState(torch.zeros(2, 4)))
    with pytest.raises(ShapeError, match="floating-point"):
        m(torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        m([1.0, 2.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"tau_mem": 0.0}, "tau_mem must be finite and > 0"),
     ({"tau_mem": 1e-3}, "dt must be smaller than tau_mem"),
     ({"dt": -1.0}, "dt must be finite and > 0"),
     ({"threshold": -1.0}, "threshold must be finite and > 0"),
     ({"reset": "hard"}, "reset must be one of"),
     ({"surrogate": "erf"}, "surrogate must be one of"),
     ({"backend": "cuda"}, "backend must be one of")],
)
def test_invalid_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        A.LIF(**kwargs)


def test_alif_has_no_fused_backend() -> None:
    with pytest.raises(ParameterError, match="no fused kernel"):
        A.ALIF(backend="fused")


@pytest.mark.gpu
def test_modules_run_on_cuda_and_match_cpu() -> None:
    x = torch.rand(30, 4, 64) * 5
    for make in MODELS:
        m = make()
        cpu = m(x)
        gpu = m.to("cuda")(x.cuda())
        assert torch.equal(gpu.cpu(), cpu)
