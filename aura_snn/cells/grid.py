r"""Grid cells: hexagonal firing maps from three plane waves, driven by path integration.

Firing map of one cell (three-cosine model: Solstad, Moser & Einevoll 2006; grid
cells: Hafting et al. 2005):

.. math::
    s(x) = \sum_{j=1}^{3} \cos\!\big(k_j \cdot (x - c)\big), \qquad
    u = \frac{s + 3/2}{9/2} \in [0, 1], \qquad
    r = r_\text{max}\, \frac{\max(u - \vartheta, 0)}{1 - \vartheta}

with wave vectors of length :math:`|k_j| = 4\pi / (\sqrt{3}\,\lambda)` at angles
:math:`\psi - 30°, \psi + 30°, \psi + 90°`. The peaks then form a triangular lattice
spanned by :math:`a_1 = \lambda(\cos\psi, \sin\psi)` and
:math:`a_2 = \lambda(\cos(\psi + 60°), \sin(\psi + 60°))`: :math:`\lambda` is the
distance between neighbouring fields and :math:`\psi` the angle of a grid axis.

Cells form modules (Stensola et al. 2012): module :math:`m` has spacing
:math:`\lambda_m = \lambda_0 \rho^m` and orientation :math:`\psi_m = \psi_0 + m\,\delta\psi`;
cells in a module differ only in their phase offset :math:`c` (m).

Path integration (state explicit). Each module keeps its own position estimate as a
phase on the lattice torus, :math:`\phi = A^{-1} x \bmod 1` with :math:`A = [a_1\ a_2]`:

.. math::
    \phi_m[t] = \big(\phi_m[t-1] + A_m^{-1}(v[t]\,\Delta t + \xi_m[t])\big) \bmod 1,
    \qquad \xi_m[t] \sim \mathcal N(0, \sigma_v^2 \Delta t\, I_2)

and rates are read out at :math:`x = A_m \phi_m`, which gives the same rates as the true
position because every :math:`k_j \cdot a_i` is a multiple of :math:`2\pi`. Modules
draw independent noise, so their estimates drift apart (as in the animal).

Symbols: ``x`` position (m), ``velocity`` :math:`v` (m/s), ``dt`` :math:`\Delta t` (s),
``spacing`` :math:`\lambda_0` (m), ``spacing_ratio`` :math:`\rho` (dimensionless),
``orientation`` :math:`\psi_0` and ``orientation_step`` :math:`\delta\psi` (rad),
offsets :math:`c` (m), ``r_max`` (Hz), ``threshold`` :math:`\vartheta` (dimensionless,
[0, 1)), ``noise_std`` :math:`\sigma_v` (m/√s). Rates have shape ``[..., n]`` with
``n = n_modules * cells_per_module``, module-major.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .._checks import (
    check_finite_param,
    check_in_range,
    check_int,
    check_nonnegative,
    check_positive,
    check_tensor,
)
from ..errors import ShapeError

# angles of the three wave vectors relative to the grid axis (rad)
_WAVE_ANGLES = (-math.pi / 6, math.pi / 6, math.pi / 2)
# additive recurrence for 2-D low-discrepancy offsets (Roberts' R2 sequence; plastic number)
_PLASTIC = 1.324717957244746


@dataclass(frozen=True)
class GridParams:
    """Parameters of a grid-cell population (module docstring for the equations).

    Attributes:
        n_modules: number of modules, >= 1.
        cells_per_module: cells per module (distinct phase offsets), >= 1.
        spacing: field spacing of module 0, :math:`\\lambda_0` (m), > 0.
        spacing_ratio: ratio between consecutive modules, :math:`\\rho` (> 0; ~1.42 in rats).
        orientation: grid axis of module 0, :math:`\\psi_0` (rad).
        orientation_step: orientation change per module, :math:`\\delta\\psi` (rad).
        r_max: peak rate (Hz), > 0.
        threshold: :math:`\\vartheta` in [0, 1); 0 gives the plain (non-negative) cosine sum.
        noise_std: path-integration noise :math:`\\sigma_v` (m/√s), >= 0.
    """

    n_modules: int = 4
    cells_per_module: int = 16
    spacing: float = 0.3
    spacing_ratio: float = 1.42
    orientation: float = 0.0
    orientation_step: float = 0.0
    r_max: float = 15.0
    threshold: float = 0.0
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        check_int("n_modules", self.n_modules, minimum=1)
        check_int("cells_per_module", self.cells_per_module, minimum=1)
        check_positive("spacing", self.spacing, "m")
        check_positive("spacing_ratio", self.spacing_ratio)
        check_finite_param("orientation", self.orientation)
        check_finite_param("orientation_step", self.orientation_step)
        check_positive("r_max", self.r_max, "Hz")
        check_in_range("threshold", self.threshold, 0.0, 1.0, high_inclusive=False)
        check_nonnegative("noise_std", self.noise_std)

    @property
    def n(self) -> int:
        """Total number of cells."""
        return self.n_modules * self.cells_per_module

    def spacings(self) -> list[float]:
        """:math:`\\lambda_m = \\lambda_0 \\rho^m` (m) for each module."""
        return [self.spacing * self.spacing_ratio**m for m in range(self.n_modules)]

    def orientations(self) -> list[float]:
        """:math:`\\psi_m = \\psi_0 + m\\,\\delta\\psi` (rad) for each module."""
        return [self.orientation + m * self.orientation_step for m in range(self.n_modules)]


class GridState(NamedTuple):
    """Path-integration state: ``phase`` ``[..., n_modules, 2]``, lattice coordinates in [0, 1)."""

    phase: torch.Tensor


def lattice_basis(spacing: torch.Tensor, orientation: torch.Tensor) -> torch.Tensor:
    """Lattice matrices :math:`A_m = [a_1\\ a_2]` (m), ``[M, 2, 2]``, columns are the axes."""
    angles = torch.stack([orientation, orientation + math.pi / 3], dim=-1)  # [M, 2]
    axes = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-2)  # [M, xy, axis]
    return spacing[:, None, None] * axes


def wave_vectors(spacing: torch.Tensor, orientation: torch.Tensor) -> torch.Tensor:
    """Wave vectors :math:`k_j` (rad/m), ``[M, 3, 2]``, length :math:`4\\pi/(\\sqrt3\\lambda)`."""
    offsets = torch.tensor(_WAVE_ANGLES, dtype=spacing.dtype, device=spacing.device)
    angles = orientation[:, None] + offsets  # [M, 3]
    length = 4.0 * math.pi / (math.sqrt(3.0) * spacing)
    return length[:, None, None] * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)


def spread_offsets(basis: torch.Tensor, cells_per_module: int) -> torch.Tensor:
    """Phase offsets (m) ``[M, m, 2]`` spread evenly over each module's unit cell.

    Lattice coordinates follow the R2 low-discrepancy sequence
    :math:`(\\{1/2 + j/g\\}, \\{1/2 + j/g^2\\})`, :math:`g` the plastic number, mapped by
    :math:`A_m`; deterministic, no generator needed.
    """
    j = torch.arange(cells_per_module, dtype=basis.dtype, device=basis.device)
    frac = torch.stack([(0.5 + j / _PLASTIC) % 1.0, (0.5 + j / _PLASTIC**2) % 1.0], dim=-1)
    return torch.einsum("mxa,ja->mjx", basis, frac)


def grid_rates(x: torch.Tensor, waves: torch.Tensor, offsets: torch.Tensor, r_max: float,
               threshold: float = 0.0) -> torch.Tensor:
    """Three-cosine rates (Hz) of every cell; the equation of the module docstring.

    Args:
        x: positions ``[..., M, 2]`` per module (or ``[..., 1, 2]`` shared), m.
        waves: wave vectors ``[M, 3, 2]`` (rad/m).
        offsets: phase offsets ``[M, m, 2]`` (m).
        r_max: peak rate (Hz).
        threshold: :math:`\\vartheta` in [0, 1).

    Returns:
        ``[..., M * m]`` rates (Hz), module-major.
    """
    proj_x = torch.einsum("...md,mjd->...mj", x, waves)  # [..., M, 3]
    proj_c = torch.einsum("mcd,mjd->mcj", offsets, waves)  # [M, m, 3]
    s = torch.cos(proj_x.unsqueeze(-2) - proj_c).sum(-1)  # [..., M, m]
    u = (s + 1.5) / 4.5
    rates = r_max * torch.clamp(u - threshold, min=0.0) / (1.0 - threshold)
    return rates.flatten(-2)


def _noise(shape: torch.Size, std: float, dt: float, like: torch.Tensor,
           generator: torch.Generator | None) -> torch.Tensor | float:
    if std == 0.0:
        return 0.0
    return std * math.sqrt(dt) * torch.randn(shape, generator=generator, dtype=like.dtype,
                                             device=like.device)


def path_integrate(phase: torch.Tensor, velocity: torch.Tensor, dt: float,
                   basis_inv: torch.Tensor, noise_std: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """One path-integration step (module docstring).

    :math:`\\phi \\leftarrow (\\phi + A^{-1}(v\\Delta t + \\xi)) \\bmod 1`.

    Args:
        phase: ``[..., M, 2]`` lattice coordinates.
        velocity: ``[..., 2]`` (m/s).
        dt: step (s).
        basis_inv: :math:`A_m^{-1}` ``[M, 2, 2]`` (1/m).
        noise_std: :math:`\\sigma_v` (m/√s), independent per module and axis.
        generator: for the noise.

    Returns:
        New phase ``[..., M, 2]`` in [0, 1).
    """
    step = velocity.unsqueeze(-2) * dt
    step = step + _noise(phase.shape, noise_std, dt, phase, generator)
    return torch.remainder(phase + torch.einsum("mab,...mb->...ma", basis_inv, step), 1.0)


def path_integrate_sequence(phase: torch.Tensor, velocity: torch.Tensor, dt: float,
                            basis_inv: torch.Tensor, noise_std: float = 0.0,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """:func:`path_integrate` over ``T`` steps at once (the sum is linear, so a cumsum).

    Args:
        phase: initial ``[..., M, 2]``.
        velocity: ``[T, ..., 2]`` (m/s), time-major.

    Returns:
        Phases after each step, ``[T, ..., M, 2]`` in [0, 1).
    """
    steps = velocity.unsqueeze(-2) * dt
    shape = velocity.shape[:1] + phase.shape
    steps = steps + _noise(shape, noise_std, dt, phase, generator)
    lattice_steps = torch.einsum("mab,t...mb->t...ma", basis_inv, steps)
    return torch.remainder(phase + torch.cumsum(lattice_steps, dim=0), 1.0)


class GridCells(nn.Module):
    """Grid-cell modules with explicit path-integration state.

    * ``forward(x)``: rates (Hz) ``[..., n]`` at positions ``x`` ``[..., 2]`` (m).
    * ``initial_state(x0)``: :class:`GridState` for start positions ``[..., 2]`` (m).
    * ``step(velocity, state, dt)``: integrate ``velocity`` ``[..., 2]`` (m/s) over
      ``dt`` (s); returns ``(rates [..., n], state)``.
    * ``integrate(velocity, state, dt)``: the same over ``[T, ..., 2]`` (time-major);
      returns ``(rates [T, ..., n], final state)``.

    All geometry (lattice matrices, wave vectors, offsets) is held in buffers, so
    ``.to(device, dtype)`` moves everything; computations follow the dtype of the input
    (``x``, ``x0``, or the state's phase), casting the buffers to it.

    Args:
        params: :class:`GridParams`.
        offsets: optional phase offsets ``[n_modules, cells_per_module, 2]`` (m); default
            :func:`spread_offsets`.
        dtype, device: of the buffers.
    """

    def __init__(self, params: GridParams | None = None, offsets: torch.Tensor | None = None,
                 dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.params = p = params if params is not None else GridParams()
        spacing = torch.tensor(p.spacings(), dtype=torch.float64)
        orientation = torch.tensor(p.orientations(), dtype=torch.float64)
        basis = lattice_basis(spacing, orientation)
        if offsets is None:
            offsets = spread_offsets(basis, p.cells_per_module)
        else:
            check_tensor("offsets", offsets, ndim=3)
            expected = (p.n_modules, p.cells_per_module, 2)
            if tuple(offsets.shape) != expected:
                raise ShapeError(f"offsets must have shape {expected}, got {tuple(offsets.shape)}")
        for name, value in (("spacing", spacing), ("orientation", orientation),
                            ("basis", basis), ("basis_inv", torch.linalg.inv(basis)),
                            ("waves", wave_vectors(spacing, orientation)),
                            ("offsets", offsets.detach())):
            self.register_buffer(name, value.to(dtype=dtype, device=device))

    @property
    def n(self) -> int:
        """Total number of cells."""
        return self.params.n

    def _geometry(self, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """``basis, basis_inv, waves, offsets`` in ``dtype``."""
        return tuple(b.to(dtype) for b in (self.basis, self.basis_inv, self.waves, self.offsets))

    def _check_xy(self, name: str, x: torch.Tensor) -> None:
        check_tensor(name, x)
        if x.dim() < 1 or x.shape[-1] != 2:
            raise ShapeError(f"{name} must have shape [..., 2], got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rates (Hz) ``[..., n]`` at positions ``x`` ``[..., 2]`` (m)."""
        self._check_xy("x", x)
        _, _, waves, offsets = self._geometry(x.dtype)
        return grid_rates(x.unsqueeze(-2), waves, offsets, self.params.r_max,
                          self.params.threshold)

    def initial_state(self, x0: torch.Tensor) -> GridState:
        """State whose every module encodes position ``x0`` ``[..., 2]`` (m)."""
        self._check_xy("x0", x0)
        phase = torch.einsum("mab,...b->...ma", self._geometry(x0.dtype)[1], x0)
        return GridState(torch.remainder(phase, 1.0))

    def decode_position(self, state: GridState) -> torch.Tensor:
        """Each module's position estimate ``[..., M, 2]`` (m), within its unit cell."""
        return torch.einsum("mab,...mb->...ma", self.basis.to(state.phase.dtype), state.phase)

    def _check_step(self, velocity: torch.Tensor, state: GridState, dt: float) -> None:
        self._check_xy("velocity", velocity)
        check_positive("dt", dt, "s")
        expected = (self.params.n_modules, 2)
        if tuple(state.phase.shape[-2:]) != expected:
            raise ShapeError(f"state.phase must have shape [..., {expected[0]}, 2], "
                             f"got {tuple(state.phase.shape)}")

    def step(self, velocity: torch.Tensor, state: GridState, dt: float,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, GridState]:
        """One step: integrate ``velocity`` ``[..., 2]`` (m/s) over ``dt`` (s).

        Returns ``(rates [..., n] in Hz, new state)``.
        """
        self._check_step(velocity, state, dt)
        _, basis_inv, waves, offsets = self._geometry(state.phase.dtype)
        phase = path_integrate(state.phase, velocity.to(state.phase.dtype), dt, basis_inv,
                               self.params.noise_std, generator)
        rates = grid_rates(self.decode_position(GridState(phase)), waves, offsets,
                           self.params.r_max, self.params.threshold)
        return rates, GridState(phase)

    def integrate(self, velocity: torch.Tensor, state: GridState, dt: float,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, GridState]:
        """Multi-step :meth:`step` over ``velocity`` ``[T, ..., 2]`` (m/s), vectorised.

        Returns ``(rates [T, ..., n] in Hz, state after the last step)``.
        """
        if velocity.dim() < 2:
            raise ShapeError(f"velocity must have shape [T, ..., 2], got {tuple(velocity.shape)}")
        self._check_step(velocity[0], state, dt)
        _, basis_inv, waves, offsets = self._geometry(state.phase.dtype)
        phases = path_integrate_sequence(state.phase, velocity.to(state.phase.dtype), dt,
                                         basis_inv, self.params.noise_std, generator)
        rates = grid_rates(self.decode_position(GridState(phases)), waves, offsets,
                           self.params.r_max, self.params.threshold)
        return rates, GridState(phases[-1])

    def extra_repr(self) -> str:
        return str(self.params)


class Trajectory(NamedTuple):
    """A sampled path: ``positions[t] = start + sum_{tau<=t} velocities[tau] * dt``.

    Attributes:
        start: start position ``[2]`` (m).
        positions: ``[T, 2]`` (m), the position after each step.
        velocities: ``[T, 2]`` (m/s), the velocity of each step.
        dt: sampling step (s).
    """

    start: torch.Tensor
    positions: torch.Tensor
    velocities: torch.Tensor
    dt: float


def random_walk(duration: float, dt: float, arena: tuple[float, float] = (1.0, 1.0),
                mean_speed: float = 0.15, speed_sd: float = 0.08, speed_tau: float = 1.0,
                turn_sd: float = 1.5, generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float64) -> Trajectory:
    """Smooth random foraging walk in the box ``[0, w] x [0, h]`` (m), for path integration.

    Speed follows an Ornstein-Uhlenbeck process (mean ``mean_speed`` m/s, stationary s.d.
    ``speed_sd`` m/s, time constant ``speed_tau`` s, clipped at 0); heading diffuses with
    ``turn_sd`` (rad/√s). A step that would leave the box is reflected off the wall
    (heading mirrored too). Velocities are the exact finite differences of positions,
    so integrating them reproduces the path. Starts at the centre.

    Args:
        duration: length (s); ``T = round(duration / dt)`` steps.
        dt: sampling step (s), e.g. 0.02 for 50 Hz.
        generator: torch generator for reproducibility.
    """
    check_positive("duration", duration, "s")
    check_positive("dt", dt, "s")
    for name, value in (("arena width", arena[0]), ("arena height", arena[1]),
                        ("speed_tau", speed_tau)):
        check_positive(name, value)
    for name, value in (("mean_speed", mean_speed), ("speed_sd", speed_sd), ("turn_sd", turn_sd)):
        check_nonnegative(name, value)
    steps = check_int("steps", max(1, round(duration / dt)), minimum=1)
    noise = torch.randn(steps, 2, generator=generator, dtype=torch.float64).tolist()
    w, h = float(arena[0]), float(arena[1])
    x, y = w / 2.0, h / 2.0
    heading = 2.0 * math.pi * float(torch.rand((), generator=generator, dtype=torch.float64))
    speed = mean_speed
    decay = math.exp(-dt / speed_tau)
    kick = speed_sd * math.sqrt(1.0 - decay * decay)
    positions = []
    for n_speed, n_turn in noise:
        speed = max(0.0, mean_speed + decay * (speed - mean_speed) + kick * n_speed)
        heading += turn_sd * math.sqrt(dt) * n_turn
        nx, ny = x + speed * dt * math.cos(heading), y + speed * dt * math.sin(heading)
        if nx < 0.0 or nx > w:
            nx = -nx if nx < 0.0 else 2.0 * w - nx
            heading = math.pi - heading
        if ny < 0.0 or ny > h:
            ny = -ny if ny < 0.0 else 2.0 * h - ny
            heading = -heading
        x, y = nx, ny
        positions.append((x, y))
    start = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float64)
    pos = torch.tensor(positions, dtype=torch.float64)
    vel = torch.diff(torch.cat([start[None], pos]), dim=0) / dt
    return Trajectory(start.to(dtype), pos.to(dtype), vel.to(dtype), float(dt))
