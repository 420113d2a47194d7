"""Theta-gamma positional code: nesting, distinctness, shapes, dtype/device, bad parameters."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.cells import (
    ThetaGammaEncoding,
    ThetaGammaParams,
    cycle_and_slot,
    theta_gamma_code,
    theta_gamma_encoding,
)
from aura_snn.errors import ParameterError, ParameterTypeError, ShapeError


def test_default_slots_and_equations() -> None:
    p = ThetaGammaParams(dim=16)
    assert p.n_slots == 5  # 40 Hz / 8 Hz
    code = theta_gamma_encoding(12, 16, dtype=torch.float64)
    assert code.shape == (12, 16)
    cycle, slot = cycle_and_slot(torch.arange(12), 5)
    assert cycle.tolist() == [0] * 5 + [1] * 5 + [2] * 2
    assert slot.tolist() == [0, 1, 2, 3, 4] * 2 + [0, 1]
    # first pair: sin/cos of the theta phase of the gamma slot, 2 pi (s + 1/2) 8 / 40
    phase = 2 * math.pi * (slot.double() + 0.5) * 8.0 / 40.0
    assert torch.allclose(code[:, 0], torch.sin(phase))
    assert torch.allclose(code[:, 1], torch.cos(phase))
    assert torch.allclose(code[:, 2], torch.sin(2 * phase))  # second harmonic
    # first cycle pair: period 2 theta cycles of time f_theta t_p = c + (s + 1/2) / 5
    tc = cycle.double() + (slot.double() + 0.5) / 5.0
    assert torch.allclose(code[:, 4], torch.sin(math.pi * tc), atol=1e-12)
    assert code.abs().max() <= 1.0


def test_nesting_k_and_k_plus_slots() -> None:
    p = ThetaGammaParams(dim=32, theta_hz=6.0, gamma_hz=42.0)  # 7 slots
    code = theta_gamma_code(torch.arange(200), p)
    h = 2 * p.slot_harmonics
    S = p.n_slots
    # same gamma slot: identical slot block; different theta cycle: cycle block differs
    assert torch.allclose(code[:-S, :h], code[S:, :h], atol=1e-12)
    assert ((code[:-S, h:] - code[S:, h:]).norm(dim=1) > 0.1).all()
    # within a theta cycle the slot blocks are all different
    d = torch.cdist(code[:S, :h], code[:S, :h])
    assert (d + torch.eye(S, dtype=d.dtype) * 10 > 0.1).all()


@pytest.mark.parametrize("max_cycles", [50.0, 10000.0])
def test_distinct_positions_within_range(max_cycles: float) -> None:
    p = ThetaGammaParams(dim=24, max_cycles=max_cycles)
    n = min(p.max_positions, 2000)
    code = theta_gamma_code(torch.arange(n), p)
    d = torch.cdist(code, code) + torch.eye(n, dtype=code.dtype) * 10
    assert d.min() > 1e-3, d.min()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_module_adds_code_in_both_layouts(dtype: torch.dtype) -> None:
    enc = ThetaGammaEncoding(16)
    x = torch.randn(3, 11, 16).to(dtype)
    y = enc(x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    ref = theta_gamma_encoding(11, 16, dtype=dtype)
    assert torch.equal(y, x + ref)  # the code is cast to x's dtype, then added
    exact = theta_gamma_encoding(11, 16, dtype=torch.float64)
    tol = {torch.float32: 1e-6, torch.float64: 1e-12, torch.bfloat16: 1e-2}[dtype]
    assert torch.allclose(ref.double(), exact, atol=tol)
    seq_first = ThetaGammaEncoding(16, batch_first=False)
    y2 = seq_first(x.transpose(0, 1))
    assert torch.equal(y2.transpose(0, 1), y)
    # offset continues the sequence (incremental decoding)
    tail = enc(torch.zeros(1, 4, 16, dtype=dtype), offset=7)
    assert torch.equal(tail[0], theta_gamma_encoding(4, 16, offset=7, dtype=dtype))


def test_gradient_flows_through_module() -> None:
    x = torch.randn(2, 5, 8, requires_grad=True)
    ThetaGammaEncoding(8)(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.gpu
def test_device_follows_input() -> None:
    x = torch.randn(2, 9, 12, device="cuda")
    y = ThetaGammaEncoding(12)(x)
    assert y.device == x.device
    cpu = ThetaGammaEncoding(12)(x.cpu())
    assert torch.allclose(y.cpu(), cpu, atol=1e-6)
    half = ThetaGammaEncoding(12, batch_first=False)(x.transpose(0, 1).half())
    assert half.dtype == torch.float16 and half.device == x.device


def test_bad_parameters_raise() -> None:
    with pytest.raises(ParameterError, match="gamma_hz must be > theta_hz"):
        ThetaGammaParams(dim=16, theta_hz=40.0, gamma_hz=8.0)
    with pytest.raises(ParameterError, match="gamma_hz must be > theta_hz"):
        ThetaGammaParams(dim=16, theta_hz=8.0, gamma_hz=8.0)
    with pytest.raises(ParameterError, match="dim must be even"):
        ThetaGammaParams(dim=15)
    with pytest.raises(ParameterError, match="dim"):
        ThetaGammaParams(dim=4)  # needs 2 * slot_harmonics + 2 = 6
    with pytest.raises(ParameterError, match="n_slots"):
        ThetaGammaParams(dim=16, n_slots=6)  # only 5 fit in a theta cycle
    with pytest.raises(ParameterError, match="theta_hz"):
        ThetaGammaParams(dim=16, theta_hz=-1.0)
    with pytest.raises(ParameterError, match="max_cycles"):
        ThetaGammaParams(dim=16, max_cycles=1.0)
    with pytest.raises(ParameterTypeError, match="dim"):
        ThetaGammaParams(dim=16.5)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="integer"):
        theta_gamma_code(torch.tensor([0.5]), ThetaGammaParams(dim=8))
    with pytest.raises(ParameterError, match=">= 0"):
        theta_gamma_code(torch.tensor([-1]), ThetaGammaParams(dim=8))
    enc = ThetaGammaEncoding(8)
    with pytest.raises(ShapeError, match="dim=8"):
        enc(torch.zeros(2, 3, 6))
    with pytest.raises(ShapeError, match="3 dimensions"):
        enc(torch.zeros(3, 8))
    with pytest.raises(ParameterError, match="floating"):
        enc(torch.zeros(2, 3, 8, dtype=torch.long))
