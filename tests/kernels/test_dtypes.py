"""Every neuron module and fused kernel on float16, bfloat16, float32 and float64 (CPU),
forward and backward, against the functional reference run in float64 on the same
(rounded) input. Half-precision inputs are computed in float32 and returned in their
own dtype, so spikes match the float64 oracle (0 of 25,600 differ in 19 of the 20 cases
here, 1 in the other: a tie within float32 rounding of the threshold; 0.1 % allowed)
and the input gradient differs only by the rounding of the returned values."""

from __future__ import annotations

import pytest
import torch

from aura_snn.functional import cuba, lif, loop
from aura_snn.kernels import cuba_multistep, lif_multistep
from aura_snn.neurons import ALIF, LIF, CubaLIF

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
# relative error of the input gradient (norm): half precision rounds the returned
# gradient (2 eps covers it: measured 3.2e-4 for float16, 2.4e-3 for bfloat16); float32
# accumulates ~T eps over T = 50 steps (measured 4e-6 to 1e-5)
GRAD_TOL = {torch.float16: 2 * 2**-10, torch.bfloat16: 2 * 2**-7, torch.float32: 1e-4,
            torch.float64: 1e-10}
# membrane error relative to 1 + |v|: one rounding to the dtype of a float32 value
# (eps; measured 1.6e-4 for float16, 1.3e-3 for bfloat16) or T steps of float32 (1.5e-6)
V_TOL = {torch.float16: 2**-10, torch.bfloat16: 2**-7, torch.float32: 1e-5,
         torch.float64: 1e-12}


def _oracle(step, p, dt: float, x: torch.Tensor, weights: torch.Tensor):
    x64 = x.detach().double().requires_grad_()
    ref = loop.run(step, x64, None, p, dt, record_v=True)
    (ref.spikes * weights.double()).sum().backward()
    return ref, x64.grad


def _check(spikes, v, grad, x, ref, ref_grad, dtype) -> None:
    assert spikes.dtype == dtype and grad.dtype == dtype
    mismatch = (spikes.double() != ref.spikes).double().mean().item()
    assert mismatch <= 1e-3
    assert ref.spikes.mean() > 0.05  # the comparison covers real spiking
    rel = ((grad.double() - ref_grad).norm() / ref_grad.norm()).item()
    # a flipped spike (a threshold tie) changes the gradient downstream of it: then only
    # a loose bound holds (seen once: 1 of 25,600 spikes, CubaLIF float16, rel 4.6e-3)
    assert rel <= (GRAD_TOL[dtype] if mismatch == 0 else 2e-2)
    if v is not None:
        assert v.dtype == dtype
        same = (spikes.double() == ref.spikes).all(0)  # neurons without a flipped spike
        err = ((v.double() - ref.v).abs() / (1 + ref.v.abs()))[:, same].max().item()
        assert err <= V_TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cls", [LIF, CubaLIF, ALIF], ids=lambda c: c.__name__)
def test_module_in_every_dtype(cls, dtype):
    torch.manual_seed(0)
    m = cls(tau_mem=0.02, dt=1e-3)
    x = (torch.rand(50, 8, 64, dtype=torch.float64) * 4.0).to(dtype).requires_grad_()
    w = torch.linspace(0, 1, 64)
    out = m.run(x, record_v=True)
    (out.spikes * w.to(dtype)).sum().backward()
    ref, ref_grad = _oracle(m.functional.step, m.neuron_parameters(), m.dt, x, w)
    _check(out.spikes, out.v, x.grad, x, ref, ref_grad, dtype)
    assert all(t.dtype == dtype for t in out.state)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("kernel", "mod", "params"),
                         [(lif_multistep, lif, lif.LIFParameters(tau_mem=0.02)),
                          (cuba_multistep, cuba, cuba.CubaLIFParameters(tau_mem=0.02))],
                         ids=["lif", "cuba"])
def test_fused_kernel_in_every_dtype(kernel, mod, params, dtype):
    torch.manual_seed(1)
    x = (torch.rand(50, 8, 64, dtype=torch.float64) * 4.0).to(dtype).requires_grad_()
    w = torch.linspace(0, 1, 64)
    out = kernel(x, None, params, 1e-3, record_v=True)
    (out.spikes * w.to(dtype)).sum().backward()
    ref, ref_grad = _oracle(mod.step, params, 1e-3, x, w)
    _check(out.spikes, out.v, x.grad, x, ref, ref_grad, dtype)
