"""Coefficient rows of the fused kernels: cached blocks hold exactly the broadcast values
(torch.as_tensor(value, dtype) expanded, written here), are shared only between calls
with the same exact values, shape and dtype, stay within their byte bound, and leave
per-neuron or learnable coefficients (and their gradients) to the plain path."""

from __future__ import annotations

import pytest
import torch

from aura_snn.functional import lif, loop
from aura_snn.kernels import _coeffs, lif_multistep


@pytest.fixture(autouse=True)
def _fresh_cache():
    _coeffs.clear_cache()
    yield
    _coeffs.clear_cache()


def _broadcast(values, shape, dtype):  # noqa: ANN001, ANN202 - the oracle
    return [torch.as_tensor(v, dtype=dtype).expand(shape).reshape(-1) for v in values]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scalar_rows_equal_the_broadcast_values_bit_for_bit(dtype: torch.dtype) -> None:
    like = torch.zeros(2, 3, 5, dtype=dtype)
    values = (torch.tensor(0.1, dtype=torch.float64).exp(), 1.0, 0.0, 1 / 3,
              torch.tensor(-0.07, dtype=torch.float64), 0.8, 2)
    rows = _coeffs.coefficient_rows(values, like.shape[1:], like)
    again = _coeffs.coefficient_rows(values, like.shape[1:], like)
    for r, a, o in zip(rows, again, _broadcast(values, (3, 5), dtype), strict=True):
        assert r.dtype == dtype and r.is_contiguous() and r.shape == (15,)
        assert torch.equal(r, o)
        assert a.data_ptr() == r.data_ptr()          # the second call reuses the block


def test_blocks_are_keyed_by_exact_values_shape_and_dtype() -> None:
    like = torch.zeros(4, 8)
    base = _coeffs.coefficient_rows((1.0, 0.0), like.shape, like)
    neg = _coeffs.coefficient_rows((1.0, -0.0), like.shape, like)
    assert neg[1].data_ptr() != base[1].data_ptr()
    assert torch.equal(torch.signbit(neg[1]), torch.ones(32, dtype=torch.bool))
    wider = _coeffs.coefficient_rows((1.0, 0.0), torch.Size([4, 9]), like)
    assert wider[0].shape == (36,)
    f64 = _coeffs.coefficient_rows((1.0, 0.0), like.shape, like.double())
    assert f64[0].dtype == torch.float64
    nudged = _coeffs.coefficient_rows((1.0 + 2 ** -52, 0.0), like.shape, like.double())
    assert float(nudged[0][0]) == 1.0 + 2 ** -52


def test_cache_stays_within_its_byte_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_coeffs, "CACHE_BYTES", 3 * 2 * 1000 * 4)   # three [2, 1000] blocks
    like = torch.zeros(1000)
    for v in range(5):
        _coeffs.coefficient_rows((float(v), 1.0), like.shape, like)
    held = sum(r.numel() * r.element_size() for rows in _coeffs._cache.values() for r in rows)
    assert held <= _coeffs.CACHE_BYTES and len(_coeffs._cache) == 3
    big = torch.zeros(10 ** 4)
    rows = _coeffs.coefficient_rows((7.0, 1.0), big.shape, big)     # too big to keep
    assert torch.equal(rows[0], torch.full((10 ** 4,), 7.0))
    assert len(_coeffs._cache) == 3


def test_per_neuron_and_learnable_coefficients_take_the_plain_path() -> None:
    like = torch.zeros(2, 4, dtype=torch.float64)
    per_neuron = torch.tensor([0.5, 0.6, 0.7, 0.8], dtype=torch.float64)
    rows = _coeffs.coefficient_rows((per_neuron, 1.0), like.shape, like)
    assert torch.equal(rows[0], per_neuron.repeat(2))
    assert len(_coeffs._cache) == 0
    th = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    rows = _coeffs.coefficient_rows((th, 1.0), like.shape, like)
    assert rows[0].requires_grad and len(_coeffs._cache) == 0


def test_kernel_with_cached_rows_equals_reference_and_learnable_threshold_grads() -> None:
    torch.manual_seed(0)
    x = (torch.randn(12, 3, 20, dtype=torch.float64) * 2 + 0.5).requires_grad_()
    p = lif.LIFParameters(tau_mem=0.02, threshold=0.8, input_scaling="direct")
    for _ in range(2):                                  # miss, then hit
        out = lif_multistep(x, None, p, 1e-3, record_v=True)
        ref = loop.run(lif.step, x, None, p, 1e-3, record_v=True)
        assert torch.equal(out.spikes, ref.spikes)
        torch.testing.assert_close(out.v, ref.v, rtol=0, atol=1e-13)
    assert len(_coeffs._cache) == 1
    th = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    q = lif.LIFParameters(tau_mem=0.02, threshold=th, input_scaling="direct")
    w = torch.randn_like(x)
    g, = torch.autograd.grad((lif_multistep(x, None, q, 1e-3).spikes * w).sum(), th)
    g_ref, = torch.autograd.grad((loop.run(lif.step, x, None, q, 1e-3).spikes * w).sum(), th)
    torch.testing.assert_close(g, g_ref, rtol=1e-11, atol=1e-12)
    assert float(g_ref) != 0.0
