"""Place cells: Gaussian tuning, hard kWTA sparsity, learned (relaxed) sparsity."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.cells import (
    PlaceCells,
    PlaceParams,
    k_from_sparsity,
    kwta_gate,
    place_activation,
    sparsity_penalty,
)
from aura_snn.errors import InputValueError, ParameterError, ParameterTypeError, ShapeError


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gaussian_tuning_matches_equation(dtype: torch.dtype) -> None:
    centres = torch.tensor([[0.2, 0.3], [0.7, 0.1], [0.5, 0.5]], dtype=dtype)
    x = torch.tensor([[0.25, 0.35], [0.5, 0.5]], dtype=dtype)
    u = place_activation(x, centres, 0.1)
    # the squared distance is expanded as |x|^2 - 2 x.c + |c|^2: absolute rounding
    # ~ eps (|x|^2 + |c|^2), i.e. relative error in u ~ eps (|x|^2 + |c|^2) / (2 sigma^2)
    rel = 50 * torch.finfo(dtype).eps
    for b in range(2):
        for i in range(3):
            d2 = float(((x[b].double() - centres[i].double()) ** 2).sum())
            assert u[b, i].item() == pytest.approx(math.exp(-d2 / (2 * 0.01)), rel=rel)
    # a cell fires r_max at its own centre (sparsity 1: no cell silenced)
    cells = PlaceCells(centres, PlaceParams(sigma=0.1, r_max=20.0, sparsity=1.0))
    assert torch.allclose(torch.diagonal(cells(centres)), torch.full((3,), 20.0, dtype=dtype))


def test_embedding_space_and_batch_shapes() -> None:
    centres = torch.randn(50, 8)
    cells = PlaceCells(centres, PlaceParams(sigma=1.0, sparsity=0.1))
    x = torch.randn(3, 4, 8)
    rates = cells(x)
    assert rates.shape == (3, 4, 50)
    assert ((rates > 0).sum(-1) == 5).all()  # k = round(0.1 * 50) winners per input
    # the winners are the cells closest to the input
    nearest = torch.cdist(x.reshape(-1, 8), centres).topk(5, largest=False).indices.sort().values
    active = (rates.reshape(-1, 50) > 0).nonzero()[:, 1].reshape(-1, 5).sort().values
    assert torch.equal(nearest, active)


@pytest.mark.parametrize("n", [100, 250, 1000, 1337])
def test_hard_kwta_achieves_target_sparsity(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    cells = PlaceCells.uniform(n, generator=g)  # default sparsity 3 %
    x = torch.rand(2000, 2, generator=g)
    achieved = cells.active_fraction(x)
    assert achieved == pytest.approx(k_from_sparsity(n, 0.03) / n)
    assert abs(achieved - 0.03) <= 0.005  # within 0.5 percentage point
    cells(x)
    assert cells.measured_sparsity == pytest.approx(achieved)


def test_kwta_gate_exact_k_with_ties_and_gradients() -> None:
    u = torch.ones(4, 10, requires_grad=True)  # all tied
    gate = kwta_gate(u.detach(), 3)
    assert (gate.sum(-1) == 3).all()
    cells = PlaceCells(torch.rand(40, 2), PlaceParams(sparsity=0.1))
    x = torch.rand(5, 2, requires_grad=True)
    cells(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_learned_sparsity_moves_to_target(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    cells = PlaceCells.uniform(400, mode="soft", threshold=0.2, generator=g, dtype=dtype)
    x_eval = torch.rand(2048, 2, generator=g, dtype=dtype)
    start = cells.active_fraction(x_eval)
    assert start > 0.07  # starts far from the 3 % target (about 8.5 %)
    for _ in range(60):  # plain gradient descent on the penalty alone
        loss = cells.sparsity_loss(torch.rand(256, 2, generator=g, dtype=dtype))
        (grad,) = torch.autograd.grad(loss, cells.threshold)
        with torch.no_grad():
            cells.threshold -= 5.0 * grad
    achieved = cells.active_fraction(x_eval)
    assert abs(achieved - 0.03) < 0.005, (start, achieved)


def test_sparsity_penalty_value_is_measured_fraction() -> None:
    gate = torch.tensor([0.9, 0.6, 0.4, 0.1], requires_grad=True)
    active = gate.detach() > 0.5
    loss = sparsity_penalty(gate, active, 0.25)
    assert loss.item() == pytest.approx((0.5 - 0.25) ** 2)
    loss.backward()
    # gradient of the mean gate, scaled by 2 (a - s): pushes every gate down
    assert torch.allclose(gate.grad, torch.full((4,), 2 * 0.25 / 4))


def test_bad_input_raises() -> None:
    with pytest.raises(ParameterError, match="sigma"):
        PlaceParams(sigma=0.0)
    with pytest.raises(ParameterError, match="sparsity"):
        PlaceParams(sparsity=1.5)
    with pytest.raises(ParameterError, match="sparsity"):
        PlaceParams(sparsity=0.0)
    with pytest.raises(ParameterError, match="mode"):
        PlaceCells(torch.rand(10, 2), mode="medium")
    with pytest.raises(ParameterError, match="threshold"):
        PlaceCells(torch.rand(10, 2), mode="soft", threshold=1.5)
    with pytest.raises(ShapeError, match="centres"):
        PlaceCells(torch.rand(10))
    cells = PlaceCells(torch.rand(10, 2))
    with pytest.raises(ShapeError, match=r"\[\.\.\., 2\]"):
        cells(torch.rand(5, 3))
    with pytest.raises(InputValueError, match="NaN"):
        cells(torch.tensor([[math.nan, 0.0]]))
    with pytest.raises(ParameterTypeError, match="x"):
        cells([[0.1, 0.2]])  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="k"):
        kwta_gate(torch.rand(3, 4), 5)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    cells = PlaceCells.uniform(200, mode="soft", threshold=0.3)
    x = torch.rand(64, 2)
    ref = cells(x)
    cells_gpu = cells.to("cuda")
    out = cells_gpu(x.cuda())
    assert out.device.type == "cuda" and torch.allclose(out.cpu(), ref, atol=1e-5)
    cells_gpu.sparsity_loss(x.cuda()).backward()
    assert cells_gpu.threshold.grad is not None and cells_gpu.threshold.grad.device.type == "cuda"
