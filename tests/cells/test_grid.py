"""Grid cells: three-cosine maps, module geometry, path integration (step, sequence, noise)."""

from __future__ import annotations

import math

import pytest
import torch

from aura_snn.cells import GridCells, GridParams, GridState, path_integrate_sequence, random_walk
from aura_snn.errors import InputValueError, ParameterError, ShapeError


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fields_form_a_hexagonal_lattice(dtype: torch.dtype) -> None:
    p = GridParams(n_modules=2, cells_per_module=3, spacing=0.4, orientation=0.3)
    cells = GridCells(p, dtype=dtype)
    offset = cells.offsets[0, 1]
    # peak (r_max) at the offset and at every lattice translate of it
    for i, j in [(0, 0), (1, 0), (0, 1), (-1, 1), (2, -1)]:
        x = offset + i * cells.basis[0, :, 0] + j * cells.basis[0, :, 1]
        assert cells(x)[1].item() == pytest.approx(p.r_max, rel=1e-5)
    # six neighbours at distance lambda, 60 degrees apart, along the orientation
    for k in range(6):
        angle = 0.3 + k * math.pi / 3
        x = offset + 0.4 * torch.tensor([math.cos(angle), math.sin(angle)], dtype=dtype)
        assert cells(x)[1].item() == pytest.approx(p.r_max, rel=1e-5)
    # minimum (s = -3/2, rate 0) at the centre of a lattice triangle
    centre = offset + (cells.basis[0, :, 0] + cells.basis[0, :, 1]) / 3
    assert cells(centre)[1].item() == pytest.approx(0.0, abs=1e-4)


def test_module_spacing_ratio_orientation_and_shapes() -> None:
    p = GridParams(n_modules=4, cells_per_module=5, spacing=0.3, spacing_ratio=1.42,
                   orientation=0.1, orientation_step=0.05)
    cells = GridCells(p, dtype=torch.float64)
    assert torch.allclose(cells.spacing, 0.3 * 1.42 ** torch.arange(4, dtype=torch.float64))
    assert torch.allclose(cells.orientation, 0.1 + 0.05 * torch.arange(4, dtype=torch.float64))
    # wave-vector length 4 pi / (sqrt(3) lambda); lattice axes have length lambda
    assert torch.allclose(cells.waves.norm(dim=-1),
                          (4 * math.pi / (math.sqrt(3) * cells.spacing))[:, None].expand(4, 3))
    assert torch.allclose(cells.basis.norm(dim=1), cells.spacing[:, None].expand(4, 2))
    x = torch.rand(7, 3, 2, dtype=torch.float64)
    rates = cells(x)
    assert rates.shape == (7, 3, 20) and rates.dtype == torch.float64
    assert rates.min() >= 0 and rates.max() <= p.r_max + 1e-9
    # a float32 module evaluates float64 input in float64 (buffers follow the input)
    as32 = GridCells(p)
    assert torch.allclose(as32(x), rates, atol=1e-4) and as32(x).dtype == torch.float64
    # threshold silences the low part of the map, peak stays r_max
    sharp = GridCells(GridParams(n_modules=1, threshold=0.5), dtype=torch.float64)
    grid = torch.rand(4000, 2, dtype=torch.float64)
    assert (sharp(grid) == 0).float().mean() > 0.4
    assert sharp(sharp.offsets[0, 0])[0].item() == pytest.approx(15.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_path_integration_reproduces_position_code(dtype: torch.dtype) -> None:
    cells = GridCells(GridParams(n_modules=3, cells_per_module=4, orientation_step=0.2),
                      dtype=dtype)
    walk = random_walk(20.0, 0.02, generator=torch.Generator().manual_seed(3), dtype=dtype)
    state = cells.initial_state(walk.start.expand(2, 2))  # batch of 2 identical animals
    seq_rates, final = cells.integrate(walk.velocities[:, None].expand(-1, 2, -1), state, 0.02)
    assert seq_rates.shape == (1000, 2, 12)
    tol = 1e-2 if dtype == torch.float32 else 1e-8  # Hz; float32 rounding over 1000 steps
    assert torch.allclose(seq_rates[:, 0], cells(walk.positions), atol=tol)
    # step-by-step equals the vectorised sequence
    s = state
    for t in range(200):
        r, s = cells.step(walk.velocities[t].expand(2, 2), s, 0.02)
        assert torch.allclose(r, seq_rates[t], atol=tol)
    assert isinstance(final, GridState) and final.phase.shape == (2, 3, 2)
    assert (final.phase >= 0).all() and (final.phase < 1).all()


def test_path_integration_noise_diffuses_per_module() -> None:
    sigma, dt, steps = 0.01, 0.02, 500  # m/sqrt(s), s; 10 s
    cells = GridCells(GridParams(n_modules=2, noise_std=sigma), dtype=torch.float64)
    start = torch.full((2000, 2), 0.5, dtype=torch.float64)
    state = cells.initial_state(start)
    velocity = torch.zeros(steps, 2000, 2, dtype=torch.float64)
    phases = path_integrate_sequence(state.phase, velocity, dt, cells.basis_inv, sigma,
                                     generator=torch.Generator().manual_seed(0))
    dphase = torch.remainder(phases[-1] - state.phase + 0.5, 1.0) - 0.5
    displacement = torch.einsum("mab,...mb->...ma", cells.basis, dphase)  # m
    var = displacement.var(dim=0)  # [module, axis]
    expected = sigma**2 * steps * dt  # sigma^2 t
    # sample variance of 2000 Gaussians: relative s.d. sqrt(2/2000) ~ 3 %; allow 5 s.d.
    assert torch.allclose(var, torch.full_like(var, expected), rtol=0.16)
    # the module's own noise setting is used by step() too
    _, s1 = cells.step(torch.zeros(2000, 2, dtype=torch.float64), state, 1.0,
                       generator=torch.Generator().manual_seed(1))
    d1 = torch.remainder(s1.phase - state.phase + 0.5, 1.0) - 0.5
    d1 = torch.einsum("mab,...mb->...ma", cells.basis, d1)
    assert torch.allclose(d1.var(dim=0), torch.full((2, 2), sigma**2, dtype=torch.float64),
                          rtol=0.16)
    # modules drift independently
    corr = torch.corrcoef(torch.stack([displacement[:, 0, 0], displacement[:, 1, 0]]))[0, 1]
    assert abs(corr) < 0.1


def test_random_walk_is_smooth_bounded_and_consistent() -> None:
    walk = random_walk(60.0, 0.02, arena=(1.0, 0.8), generator=torch.Generator().manual_seed(2))
    pos, vel = walk.positions, walk.velocities
    assert pos.shape == vel.shape == (3000, 2)
    assert (pos[:, 0] >= 0).all() and (pos[:, 0] <= 1.0).all()
    assert (pos[:, 1] >= 0).all() and (pos[:, 1] <= 0.8).all()
    assert torch.allclose(walk.start + torch.cumsum(vel * 0.02, 0), pos, atol=1e-9)
    speed = vel.norm(dim=1)
    assert 0.08 < speed.mean() < 0.25  # rat-like foraging speeds (m/s)
    assert speed.max() < 0.8


def test_bad_input_raises() -> None:
    with pytest.raises(ParameterError, match="spacing"):
        GridParams(spacing=-0.1)
    with pytest.raises(ParameterError, match="threshold"):
        GridParams(threshold=1.0)
    with pytest.raises(ParameterError, match="noise_std"):
        GridParams(noise_std=-1.0)
    with pytest.raises(ParameterError, match="n_modules"):
        GridParams(n_modules=0)
    with pytest.raises(ShapeError, match="offsets"):
        GridCells(GridParams(n_modules=2, cells_per_module=3), offsets=torch.zeros(2, 4, 2))
    cells = GridCells(GridParams(n_modules=2))
    with pytest.raises(ShapeError, match="x"):
        cells(torch.zeros(4, 3))
    with pytest.raises(InputValueError, match="NaN"):
        cells(torch.tensor([math.inf, 0.0]))
    state = cells.initial_state(torch.zeros(2))
    with pytest.raises(ParameterError, match="dt"):
        cells.step(torch.zeros(2), state, 0.0)
    with pytest.raises(ShapeError, match="state.phase"):
        cells.step(torch.zeros(2), GridState(torch.zeros(3, 2)), 0.02)
    with pytest.raises(ShapeError, match="velocity"):
        cells.integrate(torch.zeros(2), state, 0.02)
    with pytest.raises(ParameterError, match="duration"):
        random_walk(0.0, 0.02)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    cells = GridCells(GridParams(n_modules=2, noise_std=0.0), dtype=torch.float64)
    walk = random_walk(5.0, 0.02, generator=torch.Generator().manual_seed(0))
    ref, _ = cells.integrate(walk.velocities, cells.initial_state(walk.start), 0.02)
    gpu = cells.to("cuda")
    out, state = gpu.integrate(walk.velocities.cuda(), gpu.initial_state(walk.start.cuda()), 0.02)
    assert out.device.type == "cuda" and torch.allclose(out.cpu(), ref, atol=1e-9)
    noisy = GridCells(GridParams(n_modules=2, noise_std=0.01), device="cuda")
    r, s = noisy.step(torch.zeros(3, 2, device="cuda"), noisy.initial_state(
        torch.zeros(3, 2, device="cuda")), 0.02)
    assert r.device.type == "cuda" and s.phase.device.type == "cuda"
