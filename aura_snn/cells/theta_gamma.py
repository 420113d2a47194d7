r"""Theta-gamma code as a positional encoding (Lisman & Jensen 2013).

In the theta-gamma code a sequence of items is replayed within each theta cycle
(~8 Hz), one item per nested gamma cycle (~40 Hz), so about :math:`f_\gamma/f_\theta = 5`
items fit in a cycle and an item's order is read from the theta phase of its gamma
cycle. Here token position :math:`p = 0, 1, \dots` maps to

.. math::
    c = \lfloor p / S \rfloor \ \text{(theta cycle)}, \qquad
    s = p \bmod S \ \text{(gamma slot)}, \qquad
    t_p = \frac{c}{f_\theta} + \frac{s + 1/2}{f_\gamma},

the centre of gamma cycle :math:`s` of theta cycle :math:`c` (:math:`S \le f_\gamma/f_\theta`
slots must fit in one theta cycle). The code of :math:`p` is ``dim`` numbers in two blocks:

1. **slot block**, :math:`2H` values: :math:`\sin(h\varphi_s), \cos(h\varphi_s)` for
   :math:`h = 1..H`, where :math:`\varphi_s = 2\pi f_\theta (s + 1/2)/f_\gamma` is the theta
   phase of gamma slot :math:`s`. It repeats every theta cycle. (The gamma phase at an
   item's centre is the same, :math:`\pi`, for every item: items differ in *which*
   gamma cycle they occupy, i.e. in :math:`\varphi_s`, not in gamma phase.)
2. **cycle block**, :math:`2J = \text{dim} - 2H` values: :math:`\sin(2\pi f_\theta t_p / P_j),
   \cos(2\pi f_\theta t_p / P_j)`, slow envelopes of the theta rhythm whose periods
   :math:`P_j` (in theta cycles) grow geometrically from 2 to ``max_cycles``
   (:math:`P_j = 2\,(M/2)^{j/(J-1)}`; :math:`P_0 = M` when :math:`J = 1`). They tell theta
   cycles apart, much as the sinusoidal encoding of Vaswani et al. (2017) tells tokens
   apart.

Positions ``p`` and ``p + S`` share the slot block and differ in the cycle block.
Codes are distinct for :math:`0 \le p < S\cdot M` (the slowest envelope has not wrapped).

Symbols: ``theta_hz`` :math:`f_\theta` (Hz), ``gamma_hz`` :math:`f_\gamma` (Hz, > theta_hz),
``n_slots`` :math:`S` (default :math:`\lfloor f_\gamma/f_\theta \rfloor`), ``slot_harmonics``
:math:`H`, ``max_cycles`` :math:`M` (theta cycles), ``dim`` (even, >= 2H + 2).
All values are dimensionless, in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_int, check_positive, check_tensor
from ..errors import ParameterError, ShapeError


@dataclass(frozen=True)
class ThetaGammaParams:
    """Parameters of the theta-gamma code (module docstring).

    Attributes:
        dim: code size, even and >= 2 * slot_harmonics + 2.
        theta_hz: theta frequency :math:`f_\\theta` (Hz), > 0.
        gamma_hz: gamma frequency :math:`f_\\gamma` (Hz), > theta_hz.
        n_slots: gamma slots per theta cycle, 1 <= S <= gamma_hz / theta_hz; ``None`` for
            the largest that fits.
        slot_harmonics: :math:`H` >= 1.
        max_cycles: period of the slowest envelope :math:`M` (theta cycles), >= 2.
    """

    dim: int
    theta_hz: float = 8.0
    gamma_hz: float = 40.0
    n_slots: int | None = None
    slot_harmonics: int = 2
    max_cycles: float = 10000.0

    def __post_init__(self) -> None:
        check_positive("theta_hz", self.theta_hz, "Hz")
        check_positive("gamma_hz", self.gamma_hz, "Hz")
        if self.gamma_hz <= self.theta_hz:
            raise ParameterError(f"gamma_hz must be > theta_hz, got gamma_hz={self.gamma_hz!r}, "
                                 f"theta_hz={self.theta_hz!r}")
        fit = math.floor(self.gamma_hz / self.theta_hz + 1e-9)
        if self.n_slots is None:
            object.__setattr__(self, "n_slots", fit)
        slots = check_int("n_slots", self.n_slots, minimum=1)
        if slots > fit:
            raise ParameterError(f"n_slots must be <= gamma_hz / theta_hz = {fit} (slots must fit "
                                 f"in one theta cycle), got {slots}")
        h = check_int("slot_harmonics", self.slot_harmonics, minimum=1)
        dim = check_int("dim", self.dim, minimum=2 * h + 2)
        if dim % 2:
            raise ParameterError(f"dim must be even (sin/cos pairs), got {dim}")
        check_positive("max_cycles", self.max_cycles)
        if self.max_cycles < 2:
            raise ParameterError(f"max_cycles must be >= 2 theta cycles, got {self.max_cycles!r}")

    @property
    def n_cycle_pairs(self) -> int:
        """:math:`J`, the number of slow-envelope sin/cos pairs."""
        return self.dim // 2 - self.slot_harmonics

    @property
    def max_positions(self) -> int:
        """Positions with distinct codes: :math:`S \\cdot M`."""
        return int(self.n_slots * self.max_cycles)


def cycle_and_slot(positions: torch.Tensor, n_slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Theta cycle :math:`c = \\lfloor p/S \\rfloor` and gamma slot :math:`s = p \\bmod S`.

    ``positions`` are integers (token indices); both outputs have their shape.
    """
    return torch.div(positions, n_slots, rounding_mode="floor"), torch.remainder(positions, n_slots)


def theta_gamma_code(positions: torch.Tensor, p: ThetaGammaParams) -> torch.Tensor:
    """Code ``[..., dim]`` of integer positions ``[...]`` (module docstring), positions' device.

    Computed in float64 (float32 on devices without float64); cast the result as needed.
    """
    if positions.is_floating_point() or positions.is_complex() or positions.dtype == torch.bool:
        raise ParameterError(f"positions must be an integer tensor, got dtype {positions.dtype}")
    if bool((positions < 0).any()):
        raise ParameterError(f"positions must be >= 0, got minimum {int(positions.min())}")
    wd = torch.float32 if positions.device.type == "mps" else torch.float64
    cycle, slot = cycle_and_slot(positions, p.n_slots)
    ratio = p.theta_hz / p.gamma_hz
    slot_phase = 2.0 * math.pi * ratio * (slot.to(wd) + 0.5)  # theta phase of the gamma slot
    h = torch.arange(1, p.slot_harmonics + 1, dtype=wd, device=positions.device)
    slot_angles = slot_phase.unsqueeze(-1) * h
    time_cycles = cycle.to(wd) + ratio * (slot.to(wd) + 0.5)  # f_theta * t_p
    J = p.n_cycle_pairs
    if J == 1:
        periods = torch.full((1,), float(p.max_cycles), dtype=wd, device=positions.device)
    else:
        j = torch.arange(J, dtype=wd, device=positions.device)
        periods = 2.0 * (p.max_cycles / 2.0) ** (j / (J - 1))
    cycle_angles = 2.0 * math.pi * torch.remainder(time_cycles.unsqueeze(-1) / periods, 1.0)
    blocks = [torch.stack([torch.sin(a), torch.cos(a)], dim=-1).flatten(-2)
              for a in (slot_angles, cycle_angles)]
    return torch.cat(blocks, dim=-1)


def theta_gamma_encoding(seq_len: int, dim: int, theta_hz: float = 8.0, gamma_hz: float = 40.0,
                         n_slots: int | None = None, slot_harmonics: int = 2,
                         max_cycles: float = 10000.0, offset: int = 0,
                         dtype: torch.dtype = torch.float32,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """Theta-gamma positional encoding ``[seq_len, dim]`` of positions ``offset + arange(seq_len)``.

    Parameters as in :class:`ThetaGammaParams` (frequencies in Hz, ``max_cycles`` in theta
    cycles). Values in [-1, 1], dimensionless.
    """
    p = ThetaGammaParams(dim, theta_hz, gamma_hz, n_slots, slot_harmonics, max_cycles)
    seq_len = check_int("seq_len", seq_len, minimum=0)
    offset = check_int("offset", offset, minimum=0)
    positions = torch.arange(offset, offset + seq_len, device=device)
    return theta_gamma_code(positions, p).to(dtype)


class ThetaGammaEncoding(nn.Module):
    """Adds the theta-gamma code to token embeddings.

    ``forward(x, offset=0)`` takes ``x`` ``[B, seq, dim]`` (``batch_first=True``) or
    ``[seq, B, dim]`` (``batch_first=False``) and returns ``x + scale * code`` with the
    code of positions ``offset .. offset + seq - 1``, in ``x``'s dtype and device.
    Nothing is learnable; the code is recomputed per call (cheap), so no buffer needs
    moving between devices.

    Args:
        dim, theta_hz, gamma_hz, n_slots, slot_harmonics, max_cycles: see
            :class:`ThetaGammaParams`.
        batch_first: layout of ``x``.
        scale: multiplies the code before adding it (dimensionless).
    """

    def __init__(self, dim: int, theta_hz: float = 8.0, gamma_hz: float = 40.0,
                 n_slots: int | None = None, slot_harmonics: int = 2,
                 max_cycles: float = 10000.0, batch_first: bool = True,
                 scale: float = 1.0) -> None:
        super().__init__()
        self.params = ThetaGammaParams(dim, theta_hz, gamma_hz, n_slots, slot_harmonics,
                                       max_cycles)
        self.batch_first = bool(batch_first)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """``x`` plus the code; shapes in the class docstring."""
        check_tensor("x", x, ndim=3)
        if not x.is_floating_point():
            raise ParameterError(f"x must be a floating tensor, got dtype {x.dtype}")
        if x.shape[-1] != self.params.dim:
            layout = "[B, seq, dim]" if self.batch_first else "[seq, B, dim]"
            raise ShapeError(f"x must have shape {layout} with dim={self.params.dim}, "
                             f"got {tuple(x.shape)}")
        offset = check_int("offset", offset, minimum=0)
        seq = x.shape[1] if self.batch_first else x.shape[0]
        positions = torch.arange(offset, offset + seq, device=x.device)
        code = theta_gamma_code(positions, self.params).to(x.dtype)
        code = code.unsqueeze(0) if self.batch_first else code.unsqueeze(1)
        return x + self.scale * code

    def extra_repr(self) -> str:
        return f"{self.params}, batch_first={self.batch_first}, scale={self.scale}"
